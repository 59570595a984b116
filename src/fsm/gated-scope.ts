import type { AttributeValue, CanonicalKey, LedgerName } from '../domain/index.ts'
import { TallyError, invariant } from '../domain/index.ts'
import type { AttributeCache } from '../cache/index.ts'
import type { LedgerLog, Scope } from '../orders/index.ts'
import type { CoverageEntry } from './proposal.ts'

export class CoverageMiss extends TallyError {
  constructor(key: CanonicalKey, reason: string) {
    super({
      code: 'COVERAGE_MISS',
      kind: 'internal',
      message: `coverage miss on ${JSON.stringify(key)}: ${reason}`,
      details: { key },
    })
  }
}

/**
 * The proposal's read-your-writes overlay: what its orders wrote so far. An
 * order runs inside `beginOrder` … `endOrder`: every write it makes is
 * recorded with what it replaced, so a failed order is undone whole (and a
 * failed atomic proposal discards the whole set). One map for the whole
 * proposal, not one per order: no per-order map to build, look through and
 * merge. Keys keep the order in which the proposal first wrote them (a failed
 * order's new keys leave it), as a merge of per-order overlays kept them. A
 * `null` value is a deletion.
 */
export class WriteSet {
  readonly values = new Map<CanonicalKey, AttributeValue | null>()
  readonly logs: { ledger: LedgerName; log: LedgerLog }[] = []
  /**
   * While an order runs: each write's key and what it replaced (`ABSENT`: the
   * set did not hold the key). One array for the proposal, emptied at each
   * order's start, not one per order.
   */
  private readonly undo: (CanonicalKey | AttributeValue | null | typeof ABSENT)[] = []
  private inOrder = false
  private logsAtOrder = 0

  /** undefined: the proposal has not written the key; null: it deleted it. */
  lookup(key: CanonicalKey): AttributeValue | null | undefined {
    return this.values.get(key)
  }

  set(key: CanonicalKey, value: AttributeValue | null): void {
    if (this.inOrder) {
      const previous = this.values.get(key)
      this.undo.push(key, previous === undefined ? ABSENT : previous)
    }
    this.values.set(key, value)
  }

  appendLog(ledger: LedgerName, log: LedgerLog): void {
    this.logs.push({ ledger, log })
  }

  beginOrder(): void {
    invariant(!this.inOrder, 'an order begun while another one runs')
    this.inOrder = true
    this.logsAtOrder = this.logs.length
  }

  /** Keeps the order's writes (`kept`), or undoes them, newest first. */
  endOrder(kept: boolean): void {
    invariant(this.inOrder, 'an order ended that was not begun')
    this.inOrder = false
    const undo = this.undo
    if (!kept) {
      for (let at = undo.length - 2; at >= 0; at -= 2) {
        const key = undo[at] as CanonicalKey
        const previous = undo[at + 1] as AttributeValue | null | typeof ABSENT
        if (previous === ABSENT) this.values.delete(key)
        else this.values.set(key, previous)
      }
      this.logs.length = this.logsAtOrder
    }
    // Emptied for the next order (and so it holds no replaced value past its order).
    undo.length = 0
  }
}

const ABSENT: unique symbol = Symbol('absent')

/**
 * The scope handlers see (contract §2.2 step 4): every read checks the
 * order's coverage, then the write set, then the cache. There is no store
 * here, by construction.
 *
 * A key the plan declares is looked up, and written, as the plan's own
 * string: a handler builds its keys again from the order (the same text),
 * and a string hashes once, when a map first meets it. The plan's keys were
 * hashed by planning (the cache's check, the coverage), so the write set,
 * the cache and the seeds look up a hash already made instead of hashing a
 * key built a second time; the write set then holds the plan's strings,
 * which the cache takes at completion.
 */
export class GatedScope implements Scope {
  /** The order's coverage (each key to the plan's own string), built on first use when the order covers many keys. */
  private allowedMap: Map<CanonicalKey, CanonicalKey> | undefined

  /**
   * `coverage` is the proposal's plan; the order may read the entries at
   * `coverageIndexes` (few for most orders: they are compared in place).
   * One scope serves a proposal's orders in turn (`nextOrder`).
   */
  constructor(
    readonly date: string,
    private idempotencyKeyOfOrder: string | undefined,
    private readonly coverage: readonly CoverageEntry[],
    private coverageIndexes: readonly number[],
    private readonly seeds: ReadonlyMap<CanonicalKey, AttributeValue | null>,
    private readonly cache: AttributeCache,
    private readonly writes: WriteSet,
  ) {}

  get idempotencyKey(): string | undefined {
    return this.idempotencyKeyOfOrder
  }

  /** The scope of the proposal's next order: its idempotency key and coverage (the plan, the seeds, the cache and the write set stay). */
  nextOrder(idempotencyKey: string | undefined, coverageIndexes: readonly number[]): void {
    this.idempotencyKeyOfOrder = idempotencyKey
    this.coverageIndexes = coverageIndexes
    this.allowedMap = undefined
  }

  /** The plan's own string for `key` when this order's coverage declares it (the same text), else undefined. */
  private planned(key: CanonicalKey): CanonicalKey | undefined {
    const indexes = this.coverageIndexes
    if (indexes.length <= COVERAGE_SCAN_MAX) {
      for (const i of indexes) {
        const declared = this.entry(i).key
        if (declared === key) return declared
      }
      return undefined
    }
    if (this.allowedMap === undefined) {
      this.allowedMap = new Map()
      for (const i of indexes) {
        const declared = this.entry(i).key
        this.allowedMap.set(declared, declared)
      }
    }
    return this.allowedMap.get(key)
  }

  /** An entry of the plan (`runOrder` checked every index of the order against it). */
  private entry(i: number): CoverageEntry {
    return this.coverage[i] as CoverageEntry
  }

  read(built: CanonicalKey): AttributeValue | undefined {
    const key = this.planned(built)
    if (key === undefined) throw new CoverageMiss(built, 'read of a key the plan does not declare for this order')
    const written = this.writes.lookup(key)
    if (written !== undefined) return written ?? undefined
    const cached = this.cache.get(key)
    if (cached.state === 'live') return cached.attribute.value
    if (cached.state === 'deleted') return undefined
    const seed = this.seeds.get(key)
    if (seed !== undefined) return seed ?? undefined
    throw new CoverageMiss(key, 'declared coverage-only but the cache does not hold it')
  }

  /** Writes need no coverage (contract: reads and deletes do): a new transaction's key is unknown at admission. */
  write(key: CanonicalKey, value: AttributeValue): void {
    this.writes.set(this.planned(key) ?? key, value)
  }

  /**
   * Deletes an attribute (contract §2.2: deletes are gated like reads).
   * Returns false when there was nothing to delete. No order deletes a whole
   * attribute yet; the path exists so that tombstones are exercised end to
   * end (flush writes a cache tombstone and deletes the store row).
   */
  delete(key: CanonicalKey): boolean {
    if (this.read(key) === undefined) return false
    this.writes.set(this.planned(key) ?? key, null)
    return true
  }

  appendLog(ledger: LedgerName, log: LedgerLog): void {
    this.writes.appendLog(ledger, log)
  }
}

/** Up to this many coverage entries an order's gate compares keys in place; past it, a map. */
const COVERAGE_SCAN_MAX = 8
