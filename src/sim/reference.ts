/**
 * The reference model: what clients were told. It records every write the
 * primary accepted and, when the control plane acknowledges a commit, the
 * committed entries, recomputing the digest chain itself. A commit of an
 * entry that no client wrote at that (epoch, lsn), or that was written in an
 * older epoch than the committing primary's, is a revival of uncommitted
 * data and is reported.
 */
import { Lsn, type Epoch } from '../replication/index.ts'
import { genesisDigest, type WalEntry } from './node.ts'
import { chainDigest } from './prng.ts'

export interface ReferenceProblem {
  readonly kind: 'uncommitted_revived' | 'unknown_write' | 'reference_diverged'
  readonly detail: string
}

export class ReferenceModel {
  readonly #writes = new Map<string, number>()
  readonly #digests: number[] = [genesisDigest]
  #committedLsn: Lsn = Lsn.zero

  get committedLsn(): Lsn {
    return this.#committedLsn
  }

  recordWrite(epoch: Epoch, lsn: Lsn, value: number): void {
    this.#writes.set(`${epoch}:${lsn}`, value)
  }

  digestAt(lsn: Lsn): number | undefined {
    return this.#digests[lsn]
  }

  /**
   * An operator's desperate promotion declared the committed entries above
   * `keptLsn` lost: clients are told (the recovery log says so), and the
   * reference forgets them, so what is committed next is checked afresh.
   */
  declareLoss(keptLsn: Lsn): void {
    if (keptLsn >= this.#committedLsn) return
    this.#digests.length = keptLsn + 1
    this.#committedLsn = keptLsn
  }

  /** Entries (committed, entries.at(-1).lsn] become committed by a primary at `epoch`. */
  commit(entries: readonly WalEntry[], epoch: Epoch): ReferenceProblem[] {
    const problems: ReferenceProblem[] = []
    for (const entry of entries) {
      const lsn = Lsn.after(this.#committedLsn)
      if (entry.lsn !== lsn) {
        problems.push({ kind: 'reference_diverged', detail: `commit skipped from ${lsn - 1} to ${entry.lsn}` })
        return problems
      }
      const written = this.#writes.get(`${entry.epoch}:${entry.lsn}`)
      if (written === undefined || written !== entry.value) {
        problems.push({ kind: 'unknown_write', detail: `lsn ${lsn} epoch ${entry.epoch} value ${entry.value} was never written` })
      }
      if (entry.epoch !== epoch) {
        problems.push({ kind: 'uncommitted_revived', detail: `lsn ${lsn} written at epoch ${entry.epoch} committed at epoch ${epoch}` })
      }
      const previous = this.#digests[lsn - 1] ?? genesisDigest
      const digest = chainDigest(previous, lsn, entry.epoch, entry.value)
      if (digest !== entry.digest) problems.push({ kind: 'reference_diverged', detail: `lsn ${lsn} digest differs from the reference chain` })
      this.#digests.push(digest)
      this.#committedLsn = lsn
    }
    return problems
  }
}
