/**
 * The simulated node's store: the rows the FSM's `WriteBatch`es leave,
 * kept in memory by key, with the one canonical digest of the whole row set
 * (`stateDigest`, `src/check/state-digest.ts`) maintained as rows change. Two stores with equal digests
 * hold the same rows byte for byte, whatever order they were written in,
 * which is what "replicas in sync hold byte-identical state" compares.
 *
 * It also serves the store's read interface (`StoreReader`, sorted ranges),
 * so that `tally check` itself (`runCheck`) can run over a simulated node.
 */
import type { RowWrite } from '../store/layout.ts'
import { Zone } from '../store/layout.ts'
import { addTerm, removeTerm, rowDigestTerm } from '../check/state-digest.ts'

export { stateDigest } from '../check/state-digest.ts'

/** One stored row and its term of the state digest. */
interface StoredRow {
  readonly key: Buffer
  readonly value: Buffer
  readonly hash: bigint
}

/** A frozen copy of a store's rows: a checkpoint, a snapshot or a full base, at `lsn`. */
export interface LedgerImage {
  readonly lsn: number
  readonly digest: bigint
  readonly rows: ReadonlyMap<string, StoredRow>
}

const VOLUMES_PREFIX = String.fromCharCode(Zone.attributes) + 'v'

export class MemoryStore {
  readonly #rows: Map<string, StoredRow>
  #digest: bigint
  /** Latin1 keys of the volumes rows (balances are checked every step: no full scan). */
  readonly #volumes = new Set<string>()
  /** Bumped on every write: checks run again only on a changed store. */
  version = 0

  constructor(image?: LedgerImage) {
    this.#rows = new Map(image?.rows ?? [])
    this.#digest = image?.digest ?? 0n
    for (const id of this.#rows.keys()) if (id.startsWith(VOLUMES_PREFIX)) this.#volumes.add(id)
  }

  get digest(): bigint {
    return this.#digest
  }

  get size(): number {
    return this.#rows.size
  }

  /** Applies one atomic batch (a deleted row leaves nothing behind). */
  write(rows: readonly RowWrite[]): void {
    for (const { key, value } of rows) {
      const id = key.toString('latin1')
      const previous = this.#rows.get(id)
      if (previous !== undefined) this.#digest = removeTerm(this.#digest, previous.hash)
      if (value === null) {
        this.#rows.delete(id)
        this.#volumes.delete(id)
        continue
      }
      const stored = { key, value, hash: rowDigestTerm(key, value) }
      this.#rows.set(id, stored)
      this.#digest = addTerm(this.#digest, stored.hash)
      if (id.startsWith(VOLUMES_PREFIX)) this.#volumes.add(id)
    }
    this.version += 1
  }

  read(key: Buffer): Buffer | undefined {
    return this.#rows.get(key.toString('latin1'))?.value
  }

  /** The volumes rows: [row key, row value]. */
  *volumesRows(): Iterable<[Buffer, Buffer]> {
    for (const id of this.#volumes) {
      const row = this.#rows.get(id)
      if (row !== undefined) yield [row.key, row.value]
    }
  }

  /** Every row, unordered (the digest needs no order). */
  *entries(): Iterable<[Buffer, Buffer]> {
    for (const row of this.#rows.values()) yield [row.key, row.value]
  }

  image(lsn: number): LedgerImage {
    return { lsn, digest: this.#digest, rows: new Map(this.#rows) }
  }

  /** Rows in key order within [gte, lt) (latin1 strings order as the bytes do). */
  sortedRange(gte: Buffer, lt: Buffer | undefined): [Buffer, Buffer][] {
    const from = gte.toString('latin1')
    const to = lt?.toString('latin1')
    const ids = [...this.#rows.keys()].filter((id) => id >= from && (to === undefined || id < to)).sort()
    return ids.map((id) => {
      const row = this.#rows.get(id) as StoredRow
      return [row.key, row.value]
    })
  }

  // ---- the StoreReader interface, for `runCheck` over a simulated node

  async get(key: Buffer): Promise<Buffer | undefined> {
    return this.read(key)
  }

  async getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    return keys.map((key) => this.read(key))
  }

  async *range(options: { readonly gte: Buffer; readonly lt?: Buffer | undefined; readonly reverse?: boolean; readonly limit?: number }): AsyncIterable<[Buffer, Buffer]> {
    const rows = this.sortedRange(options.gte, options.lt)
    if (options.reverse === true) rows.reverse()
    const limit = options.limit ?? rows.length
    for (const row of rows.slice(0, limit)) yield row
  }
}
