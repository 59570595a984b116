import type { CanonicalKey } from '../domain/index.ts'
import { decodeAttribute, invariant, kindOf, transactionKey } from '../domain/index.ts'
import type { AuditEntry, AuditHead } from '../audit/index.ts'
import type { CacheSettings } from '../cache/index.ts'
import { AttributeCache } from '../cache/index.ts'
import type { CoverageEntry, PlannedOrder, Proposal, ProposalResult } from '../fsm/index.ts'
import { LedgerStateMachine, WriteBatch, cacheSettingsFromJson, coverageSeed, encodeCacheState, planCoverage } from '../fsm/index.ts'
import type { KnownValue, ProposedOrder } from '../orders/index.ts'
import { planRound } from '../admission/index.ts'
import { MetaKey, Zone, auditRowKey, metaKey } from '../store/index.ts'

/**
 * The replay's attribute rows, read synchronously while planning (the FSM's
 * seeds, by canonical key) and written as the FSM writes them (by store row
 * key, as the batch holds it: no key decoded per write; null deletes).
 * `tally check` gives one that spills to disk beyond its memory bound.
 */
export interface AttributeRows {
  get(key: CanonicalKey): Buffer | undefined
  set(rowKey: Buffer, row: Buffer | null): void
}

/** Attribute rows held in memory, for replays of small chains. */
export class MemoryAttributeRows implements AttributeRows {
  private readonly rows = new Map<CanonicalKey, Buffer>()
  get(key: CanonicalKey): Buffer | undefined {
    return this.rows.get(key)
  }
  set(rowKey: Buffer, row: Buffer | null): void {
    const key = rowKey.toString('utf8', 1) as CanonicalKey
    if (row === null) this.rows.delete(key)
    else this.rows.set(key, row)
  }
}

/** A proposal that consumes an index without applying anything, as a stale one did. */
const STALE: Proposal = Object.freeze({
  id: 'check:stale',
  date: '',
  predictedIndex: -1,
  cacheEpoch: 0,
  storeIndexAtLoad: 0,
  coverage: [],
  orders: [],
  atomic: false,
  continueOnFailure: false,
})

/**
 * The scratch state a replay of the audit chain builds, row by row, through
 * the real FSM and a fresh cache. Attribute rows are kept whole (they are the
 * FSM's seeds); other rows are handed to `sink` as they are written.
 */
export class Replayer {
  readonly cache: AttributeCache
  private fsm: LedgerStateMachine
  ordersReplayed = 0

  /**
   * `settings`: what the data directory was created with; later changes are
   * audited entries, replayed like any other. `created`: the store wrote its
   * cache state at creation (ADR 0007), so the replay does too.
   */
  constructor(
    private readonly clusterId: string,
    settings: CacheSettings,
    private readonly sink: (key: Buffer, value: Buffer | null) => void,
    created = false,
    /** Canonical key → attribute row bytes: what the store's 0xf1 zone should hold (in memory unless given). */
    readonly attributes: AttributeRows = new MemoryAttributeRows(),
  ) {
    this.cache = new AttributeCache(settings, 0)
    this.fsm = new LedgerStateMachine({ cache: this.cache, clusterId, appliedIndex: 0, auditHead: { seq: 0n, hash: '' } })
    if (created) sink(metaKey(MetaKey.cacheState), encodeCacheState(this.cache.snapshot))
  }

  get appliedIndex(): number {
    return this.fsm.appliedIndex
  }

  /** Applies stale proposals up to `index` (exclusive of nothing): rotation happens at the same indexes. */
  fillTo(index: number): void {
    while (this.fsm.appliedIndex < index) {
      const batch = new WriteBatch()
      const result = this.fsm.apply(this.fsm.appliedIndex + 1, STALE, batch)
      invariant(result.outcome === 'stale', 'a fill proposal is stale')
      this.fold(batch)
    }
  }

  /**
   * Replays one audited proposal at its index. The FSM's chain head is set to
   * the stored entry's predecessor first, so one broken link is reported once
   * instead of cascading. Returns the audit row the replay wrote.
   */
  replay(entry: AuditEntry): { result: ProposalResult; auditRow: Buffer | undefined } {
    invariant(entry.index > this.fsm.appliedIndex, 'audit entries replay in index order')
    this.fillTo(entry.index - 1)
    const head: AuditHead = { seq: entry.seq - 1n, hash: entry.previousHash }
    if (this.fsm.auditHead.seq !== head.seq || this.fsm.auditHead.hash !== head.hash) {
      this.fsm = new LedgerStateMachine({ cache: this.cache, clusterId: this.clusterId, appliedIndex: this.fsm.appliedIndex, auditHead: head })
    }
    const batch = new WriteBatch()
    const result = this.fsm.apply(entry.index, this.proposalOf(entry), batch)
    const auditKey = auditRowKey(entry.seq).toString('latin1')
    let auditRow: Buffer | undefined
    for (const row of batch.rows()) {
      if (row.key[0] === Zone.audit && row.key.toString('latin1') === auditKey && row.value !== null) auditRow = row.value
    }
    this.fold(batch)
    this.ordersReplayed += (entry.orders as unknown[]).length
    return { result, auditRow }
  }

  /**
   * The plan admission would have made, from the scratch state: needs
   * planned as admission plans them (`planRound`, each order on the
   * speculative effects of the earlier ones), every key seeded with its row.
   */
  private proposalOf(entry: AuditEntry): Proposal {
    const proposed = entry.orders as unknown as ProposedOrder[]
    const outcomes = entry.outcome as unknown as { status?: string; code?: string }[]
    const perOrderKeys = this.keysOf(proposed, outcomes, entry.date)
    // Every key once, in the order the orders first name it (admission's plan). As admission
    // does, a key the cache holds at this index goes unseeded (the FSM reads the cache); every
    // other key is seeded with its scratch row, so no row is read and decoded for nothing.
    const plan = planCoverage(perOrderKeys)
    const hits = this.cache.checkAll(plan.keys, entry.index)
    invariant(hits !== 'unreachable', 'the replay applies at the next index: the cache reaches it')
    const coverage: CoverageEntry[] = plan.keys.map((key, i) => (hits[i] === true ? { key } : { key, seed: coverageSeed(this.attributes.get(key)) }))
    const orders: PlannedOrder[] = proposed.map((order, i) => ({
      ...order,
      coverageIndexes: plan.coverageIndexes[i] as number[],
    }))
    return {
      id: entry.proposalId,
      date: entry.date,
      predictedIndex: entry.index,
      cacheEpoch: 0,
      storeIndexAtLoad: entry.index - 1,
      coverage,
      orders,
      atomic: entry.atomic,
      continueOnFailure: entry.continueOnFailure,
      ...(entry.cacheSettings === undefined ? {} : { cacheSettings: cacheSettingsFromJson(entry.cacheSettings) }),
    }
  }

  /**
   * Per-order coverage keys. A revert audited as STALE_INPUTS was planned
   * while its transaction did not exist yet (its order says so: its planned
   * postings are absent): it is planned the same way, blind to the
   * transaction, so the replay seeds the same keys and refuses it alike. A
   * revert audited as COVERAGE_MISS is a planning gap: planned as admission
   * plans, it misses alike. A script keeps its audited inputs, so a stale
   * one is refused alike.
   */
  private keysOf(proposed: readonly ProposedOrder[], outcomes: readonly { status?: string; code?: string }[], date: string): (readonly CanonicalKey[])[] {
    const blind = new Set<string>()
    proposed.forEach((order, i) => {
      const outcome = outcomes[i]
      const stale = outcome?.status === 'failed' && outcome.code === 'STALE_INPUTS'
      if (stale && order.order.type === 'REVERT_TRANSACTION') blind.add(transactionKey(order.order.ledger, order.order.id))
    })
    // Decoded once per proposal: planning reads the same keys many times.
    const decoded = new Map<CanonicalKey, KnownValue>()
    const known = (key: CanonicalKey): KnownValue => {
      if (blind.has(key)) return null
      let value = decoded.get(key)
      if (value === undefined) {
        const row = this.attributes.get(key)
        value = row === undefined ? null : decodeAttribute(kindOf(key), row).value
        decoded.set(key, value)
      }
      return value
    }
    const planned = planRound(proposed, date, known)
    invariant(
      planned.every((needs) => needs.complete),
      'needs resolve in one round from a complete state',
    )
    return planned.map((needs) => needs.keys)
  }

  private fold(batch: WriteBatch): void {
    for (const row of batch.rows()) {
      if (row.key[0] === Zone.attributes) {
        this.attributes.set(row.key, row.value)
      } else {
        this.sink(row.key, row.value)
      }
    }
  }
}
