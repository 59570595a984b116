/**
 * A simulated node's storage: a WAL whose prefix up to `durableLsn` survives
 * a crash and whose rest is volatile, a checkpoint image (restart starts from
 * it plus the durable WAL), and the recycle boundary `tailLsn`. The "data" is
 * a hash chain: each entry's digest folds the previous one, so equal digests
 * at an LSN mean equal state at that LSN, and a replica can verify that an
 * entry extends its own prefix (the log-matching check).
 *
 * Structural invariant: tail <= checkpoint <= durable <= head, and every LSN
 * in (tail, head] is present (unless a test-only planted bug punched a hole).
 */
import { invariant } from '../domain/index.ts'
import { Lsn, type Endpoint, type Epoch, type ReplicaId, type ReplicaLogView } from '../replication/index.ts'
import { chainDigest } from './prng.ts'

export interface WalEntry {
  readonly lsn: Lsn
  readonly epoch: Epoch
  readonly value: number
  readonly digest: number
}

/** A store image at an LSN (checkpoint, snapshot or full base). */
export interface Image {
  readonly lsn: Lsn
  readonly digest: number
}

export type AppendResult = 'appended' | 'duplicate' | 'gap' | 'lineage_mismatch'

/**
 * What happens to a node's storage, for whoever keeps state derived from it
 * (the ledger the node applies, `ledger-state.ts`). Called after the change.
 */
export interface NodeStateObserver {
  /** This node, as primary, wrote `entry`. */
  written(entry: WalEntry): void
  /** Entries above `toLsn` were dropped (a truncation, not a crash). */
  truncated(toLsn: Lsn): void
  /** Power loss: everything in memory is gone. */
  crashed(): void
  restarted(): void
  checkpointed(lsn: Lsn): void
  /** The store was replaced by `image` (a rebuild's snapshot or full base, or genesis). */
  installed(image: Image): void
}

export const genesisDigest = 0

export class SimNode implements ReplicaLogView {
  readonly id: ReplicaId
  running = true
  epoch: Epoch
  endpoint: Endpoint
  readonly #entries = new Map<Lsn, WalEntry>()
  #tailLsn: Lsn = Lsn.zero
  #headLsn: Lsn = Lsn.zero
  #durableLsn: Lsn = Lsn.zero
  #checkpoint: Image & { trusted: boolean } = { lsn: Lsn.zero, digest: genesisDigest, trusted: true }
  /** Highest LSN this node knows is committed and holds on the committed lineage. */
  knownCommittedLsn: Lsn = Lsn.zero
  /** Told of every storage change (the simulated ledger), when set. */
  observer: NodeStateObserver | undefined

  constructor(id: ReplicaId, epoch: Epoch, endpoint: Endpoint) {
    this.id = id
    this.epoch = epoch
    this.endpoint = endpoint
  }

  get tailLsn(): Lsn {
    return this.#tailLsn
  }
  get headLsn(): Lsn {
    return this.#headLsn
  }
  get durableLsn(): Lsn {
    return this.#durableLsn
  }
  get checkpoint(): Readonly<Image & { trusted: boolean }> {
    return this.#checkpoint
  }

  entry(lsn: Lsn): WalEntry | undefined {
    return this.#entries.get(lsn)
  }

  /** The digest of this node's prefix at `lsn`, or undefined when it no longer (or never) held it. */
  digestAt(lsn: Lsn): number | undefined {
    if (lsn === 0) return genesisDigest
    if (lsn === this.#checkpoint.lsn) return this.#checkpoint.digest
    if (lsn <= this.#tailLsn || lsn > this.#headLsn) return undefined
    return this.#entries.get(lsn)?.digest
  }

  /** Every LSN in (from, to] is present and the chain is intact. */
  holdsRange(fromLsn: Lsn, toLsn: Lsn): boolean {
    if (toLsn > this.#headLsn) return false
    for (let at = Math.max(fromLsn, this.#tailLsn) + 1; at <= toLsn; at += 1) {
      if (!this.#entries.has(Lsn.of(at))) return false
    }
    return this.digestAt(toLsn) !== undefined
  }

  get checkpointLsn(): Lsn {
    return this.#checkpoint.lsn
  }

  /** The epoch of the entry held at `lsn` (the replica side's log-matching key). */
  epochAt(lsn: Lsn): Epoch | undefined {
    if (lsn <= this.#tailLsn || lsn > this.#headLsn) return undefined
    return this.#entries.get(lsn)?.epoch
  }

  /** A new entry written by this node as primary. */
  appendLocal(epoch: Epoch, value: number): WalEntry {
    const previous = this.digestAt(this.#headLsn)
    invariant(previous !== undefined, () => `${this.id}: head ${this.#headLsn} digest missing`)
    const lsn = Lsn.after(this.#headLsn)
    const entry = { lsn, epoch, value, digest: chainDigest(previous, lsn, epoch, value) }
    this.#entries.set(lsn, entry)
    this.#headLsn = lsn
    this.observer?.written(entry)
    return entry
  }

  /**
   * A shipped entry: must extend the head exactly and chain onto this node's
   * own prefix. `allowGap` is a test-only planted bug (accept past a hole).
   */
  appendShipped(entry: WalEntry, allowGap: boolean): AppendResult {
    if (entry.lsn <= this.#headLsn) {
      const digest = this.digestAt(entry.lsn)
      if (digest === undefined && entry.lsn <= this.#tailLsn) return 'duplicate'
      return digest === entry.digest ? 'duplicate' : 'lineage_mismatch'
    }
    if (entry.lsn > this.#headLsn + 1) {
      if (!allowGap) return 'gap'
      this.#entries.set(entry.lsn, entry)
      this.#headLsn = entry.lsn
      return 'appended'
    }
    const previous = this.digestAt(this.#headLsn)
    if (previous === undefined || chainDigest(previous, entry.lsn, entry.epoch, entry.value) !== entry.digest) {
      return 'lineage_mismatch'
    }
    this.#entries.set(entry.lsn, entry)
    this.#headLsn = entry.lsn
    return 'appended'
  }

  /** fsync: everything written becomes durable. */
  flush(): void {
    this.#durableLsn = this.#headLsn
  }

  /** Power loss: the volatile part of the WAL is gone. */
  crash(): void {
    this.running = false
    this.#dropAbove(this.#durableLsn)
    this.observer?.crashed()
  }

  restart(endpoint: Endpoint | undefined): void {
    invariant(!this.running, () => `${this.id} restarted while running`)
    this.running = true
    if (endpoint !== undefined) this.endpoint = endpoint
    this.observer?.restarted()
  }

  /** Drops every entry above `toLsn` (never below the checkpoint). */
  truncate(toLsn: Lsn): void {
    invariant(toLsn >= this.#checkpoint.lsn, () => `${this.id}: truncate to ${toLsn} below checkpoint ${this.#checkpoint.lsn}`)
    this.#dropAbove(toLsn)
    this.observer?.truncated(toLsn)
  }

  takeCheckpoint(lsn: Lsn): boolean {
    if (lsn <= this.#checkpoint.lsn) return false
    invariant(lsn <= this.#durableLsn, () => `${this.id}: checkpoint ${lsn} beyond durable ${this.#durableLsn}`)
    const digest = this.digestAt(lsn)
    if (digest === undefined) return false
    this.#checkpoint = { lsn, digest, trusted: true }
    this.observer?.checkpointed(lsn)
    return true
  }

  distrustCheckpoint(): void {
    this.#checkpoint = { ...this.#checkpoint, trusted: false }
  }

  /** Recycles WAL entries up to `toLsn` (at most the checkpoint). */
  recycle(toLsn: Lsn): boolean {
    const target = Lsn.min(toLsn, this.#checkpoint.lsn)
    if (target <= this.#tailLsn) return false
    for (let at = this.#tailLsn + 1; at <= target; at += 1) this.#entries.delete(Lsn.of(at))
    this.#tailLsn = target
    return true
  }

  /** The whole store belonged to a lost lineage: back to empty (genesis), to be rebuilt. */
  wipe(): void {
    this.installImage({ lsn: Lsn.zero, digest: genesisDigest })
    this.knownCommittedLsn = Lsn.zero
  }

  /** A rebuild replaced this node's store with an image; its WAL restarts there. */
  installImage(image: Image): void {
    this.#entries.clear()
    this.#tailLsn = image.lsn
    this.#headLsn = image.lsn
    this.#durableLsn = image.lsn
    this.#checkpoint = { lsn: image.lsn, digest: image.digest, trusted: true }
    this.knownCommittedLsn = Lsn.max(this.knownCommittedLsn, image.lsn)
    this.observer?.installed(image)
  }

  checkStructure(): string | undefined {
    if (!(this.#tailLsn <= this.#checkpoint.lsn)) return `tail ${this.#tailLsn} > checkpoint ${this.#checkpoint.lsn}`
    if (!(this.#checkpoint.lsn <= this.#durableLsn)) return `checkpoint ${this.#checkpoint.lsn} > durable ${this.#durableLsn}`
    if (!(this.#durableLsn <= this.#headLsn)) return `durable ${this.#durableLsn} > head ${this.#headLsn}`
    return undefined
  }

  #dropAbove(lsn: Lsn): void {
    if (this.#headLsn <= lsn) return
    for (let at = lsn + 1; at <= this.#headLsn; at += 1) this.#entries.delete(Lsn.of(at))
    this.#headLsn = lsn
    this.#durableLsn = Lsn.min(this.#durableLsn, lsn)
  }
}
