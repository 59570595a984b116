import type { AttributeValue, CanonicalKey, LedgerName } from '../domain/index.ts'
import { TallyError } from '../domain/index.ts'
import type { AttributeCache } from '../cache/index.ts'
import type { LedgerLog, Scope } from '../orders/index.ts'

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
 * A read-your-writes overlay. Layers stack: proposal → order, so a failed
 * order (or a failed atomic proposal) is discarded whole. A `null` value is a
 * deletion.
 */
export class WriteSet {
  readonly values = new Map<CanonicalKey, AttributeValue | null>()
  readonly logs: { ledger: LedgerName; log: LedgerLog }[] = []

  constructor(readonly parent: WriteSet | undefined) {}

  /** undefined: this overlay has not written the key; null: it deleted it. */
  lookup(key: CanonicalKey): AttributeValue | null | undefined {
    const written = this.values.get(key)
    return written !== undefined ? written : this.parent?.lookup(key)
  }

  mergeIntoParent(): void {
    if (this.parent === undefined) return
    for (const [key, value] of this.values) this.parent.values.set(key, value)
    this.parent.logs.push(...this.logs)
  }
}

/**
 * The scope handlers see (contract §2.2 step 4): every read checks the
 * order's coverage, then the write set, then the cache. There is no store
 * here, by construction.
 */
export class GatedScope implements Scope {
  constructor(
    readonly date: string,
    readonly idempotencyKey: string | undefined,
    private readonly allowed: ReadonlySet<CanonicalKey>,
    private readonly seeds: ReadonlyMap<CanonicalKey, AttributeValue | null>,
    private readonly cache: AttributeCache,
    private readonly writes: WriteSet,
  ) {}

  read(key: CanonicalKey): AttributeValue | undefined {
    if (!this.allowed.has(key)) throw new CoverageMiss(key, 'read of a key the plan does not declare for this order')
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
    this.writes.values.set(key, value)
  }

  /**
   * Deletes an attribute (contract §2.2: deletes are gated like reads).
   * Returns false when there was nothing to delete. No order deletes a whole
   * attribute yet; the path exists so that tombstones are exercised end to
   * end (flush writes a cache tombstone and deletes the store row).
   */
  delete(key: CanonicalKey): boolean {
    if (this.read(key) === undefined) return false
    this.writes.values.set(key, null)
    return true
  }

  appendLog(ledger: LedgerName, log: LedgerLog): void {
    this.writes.logs.push({ ledger, log })
  }
}
