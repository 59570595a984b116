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
 * order (or a failed atomic proposal) is discarded whole.
 */
export class WriteSet {
  readonly values = new Map<CanonicalKey, AttributeValue>()
  readonly logs: { ledger: LedgerName; log: LedgerLog }[] = []

  constructor(readonly parent: WriteSet | undefined) {}

  lookup(key: CanonicalKey): AttributeValue | undefined {
    return this.values.get(key) ?? this.parent?.lookup(key)
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
    if (written !== undefined) return written
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

  appendLog(ledger: LedgerName, log: LedgerLog): void {
    this.writes.logs.push({ ledger, log })
  }
}
