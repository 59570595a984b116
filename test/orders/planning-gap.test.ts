import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AttributeCache } from '../../src/cache/index.ts'
import { LedgerStateMachine, WriteBatch } from '../../src/fsm/index.ts'
import type { CoverageEntry, OrderResult, Proposal } from '../../src/fsm/index.ts'
import type { KnownValue, Order } from '../../src/orders/index.ts'
import { needsOf } from '../../src/orders/index.ts'
import type { AccountAddress, Asset, CanonicalKey, LedgerName } from '../../src/domain/index.ts'
import { volumesKey } from '../../src/domain/index.ts'
import { GENESIS, decodeAuditEntry } from '../../src/audit/index.ts'
import { Zone } from '../../src/store/index.ts'

/**
 * Issue #9 point 14 (second half): a planning gap — a read the plan should
 * have declared — is a loud COVERAGE_MISS (audited, reported through
 * onCoverageMiss), never the retryable STALE_INPUTS of ordinary contention.
 * STALE_INPUTS is for a declared input whose value changed since planning.
 * Plans come from the real planner (`needsOf`); a gap is planted by dropping
 * one of its keys.
 */
const L = 'main' as LedgerName
const USD = 'USD' as Asset
const account = (name: string) => name as AccountAddress

class Ledger {
  readonly cache = new AttributeCache(100)
  readonly misses: string[] = []
  readonly fsm = new LedgerStateMachine({ cache: this.cache, clusterId: 'gap', appliedIndex: 0, auditHead: GENESIS, onCoverageMiss: (error) => this.misses.push(error.message) })
  private index = 0

  known = (key: CanonicalKey): KnownValue => {
    const cached = this.cache.get(key)
    return cached.state === 'live' ? cached.attribute.value : null
  }

  /** Plans `order` as admission does, on what the ledger holds now. */
  plan(order: Order): { order: Order; keys: CanonicalKey[] } {
    const needs = needsOf(order, this.known)
    assert.equal(needs.complete, true)
    return { order: needs.order ?? order, keys: [...needs.keys] }
  }

  /** Applies a planned order with coverage for `keys` (seeded null where the cache holds nothing). */
  apply(planned: { order: Order; keys: readonly CanonicalKey[] }): { result: OrderResult; audited: { status: string; code?: string } } {
    this.index++
    const coverage: CoverageEntry[] = planned.keys.map((key) => (this.cache.get(key).state === 'live' ? { key } : { key, seed: null }))
    const proposal: Proposal = {
      id: `p${this.index}`,
      date: '2026-01-01T00:00:00.000Z',
      predictedIndex: this.index,
      cacheEpoch: 0,
      storeIndexAtLoad: this.index - 1,
      coverage,
      orders: [{ order: planned.order, coverageIndexes: coverage.map((_, i) => i) }],
      atomic: true,
      continueOnFailure: false,
    }
    const batch = new WriteBatch()
    const applied = this.fsm.apply(this.index, proposal, batch)
    assert.equal(applied.outcome, 'applied')
    const result = (applied as { results: readonly OrderResult[] }).results[0] as OrderResult
    const auditRow = batch.rows().find((row) => row.key[0] === Zone.audit && row.value !== null)
    const audited = (decodeAuditEntry((auditRow?.value as Buffer)).outcome as { status: string; code?: string }[])[0] as { status: string; code?: string }
    return { result, audited }
  }

  run(order: Order): OrderResult {
    return this.apply(this.plan(order)).result
  }
}

const codeOf = (result: OrderResult) => (result.status === 'failed' ? result.error.code : result.status)

function send(source: string, destination: string, amount: bigint): Order {
  return { type: 'CREATE_TRANSACTION', ledger: L, postings: [{ source: account(source), destination: account(destination), amount, asset: USD }], metadata: {}, accountMetadata: {}, force: false }
}

const revert: Order = { type: 'REVERT_TRANSACTION', ledger: L, id: 0n, force: false, atEffectiveDate: false, metadata: {} }

const SCRIPT: Order = {
  type: 'CREATE_TRANSACTION',
  ledger: L,
  postings: [],
  script: { plain: 'vars { monetary $all = balance(@users:1, USD) }\nsend $all ( source = @users:1 destination = @users:2 )', vars: {} },
  metadata: {},
  accountMetadata: {},
  force: false,
}

function opened(): Ledger {
  const ledger = new Ledger()
  assert.equal(codeOf(ledger.run({ type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} })), 'applied')
  return ledger
}

function withoutKey(planned: { order: Order; keys: CanonicalKey[] }, dropped: CanonicalKey): { order: Order; keys: CanonicalKey[] } {
  assert.ok(planned.keys.includes(dropped), 'the planted gap drops a key the planner declared')
  return { ...planned, keys: planned.keys.filter((key) => key !== dropped) }
}

test('planning gap in a revert: COVERAGE_MISS, audited and reported, never STALE_INPUTS', () => {
  const ledger = opened()
  assert.equal(codeOf(ledger.run(send('world', 'users:1', 10n))), 'applied')
  const gap = ledger.apply(withoutKey(ledger.plan(revert), volumesKey(L, account('users:1'), USD)))
  assert.equal(codeOf(gap.result), 'COVERAGE_MISS')
  assert.deepEqual({ status: gap.audited.status, code: gap.audited.code }, { status: 'failed', code: 'COVERAGE_MISS' })
  assert.equal(ledger.misses.length, 1)
  assert.match(ledger.misses[0] ?? '', /users:1/)
  // Planned whole, the same revert applies.
  assert.equal(codeOf(ledger.run(revert)), 'applied')
})

test('a revert planned before its transaction existed is STALE_INPUTS (its value changed), with no coverage miss', () => {
  const ledger = opened()
  const early = ledger.plan(revert)
  assert.equal(codeOf(ledger.run(send('world', 'users:1', 10n))), 'applied')
  const stale = ledger.apply(early)
  assert.equal(codeOf(stale.result), 'STALE_INPUTS')
  assert.equal(ledger.misses.length, 0)
  assert.equal(codeOf(ledger.run(revert)), 'applied')
})

test('planning gap in a script: COVERAGE_MISS, audited and reported, never STALE_INPUTS', () => {
  const ledger = opened()
  assert.equal(codeOf(ledger.run(send('world', 'users:1', 10n))), 'applied')
  const gap = ledger.apply(withoutKey(ledger.plan(SCRIPT), volumesKey(L, account('users:1'), USD)))
  assert.equal(codeOf(gap.result), 'COVERAGE_MISS')
  assert.deepEqual({ status: gap.audited.status, code: gap.audited.code }, { status: 'failed', code: 'COVERAGE_MISS' })
  assert.equal(ledger.misses.length, 1)
  assert.equal(codeOf(ledger.run(SCRIPT)), 'applied')
})

test('a script whose input moved after planning is STALE_INPUTS, with no coverage miss', () => {
  const ledger = opened()
  assert.equal(codeOf(ledger.run(send('world', 'users:1', 10n))), 'applied')
  const early = ledger.plan(SCRIPT)
  assert.equal(codeOf(ledger.run(send('world', 'users:1', 5n))), 'applied')
  const stale = ledger.apply(early)
  assert.equal(codeOf(stale.result), 'STALE_INPUTS')
  assert.equal(ledger.misses.length, 0)
})
