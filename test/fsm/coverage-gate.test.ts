import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AttributeCache } from '../../src/cache/index.ts'
import { LedgerStateMachine, WriteBatch } from '../../src/fsm/index.ts'
import type { CoverageEntry, Proposal, OrderResult } from '../../src/fsm/index.ts'
import type { Order } from '../../src/orders/index.ts'
import type { AccountAddress, Asset, CanonicalKey, LedgerName } from '../../src/domain/index.ts'
import { GENESIS, decodeAuditEntry } from '../../src/audit/index.ts'
import { InvariantViolation, accountKey, encodeAttribute, ledgerKey, volumesKey } from '../../src/domain/index.ts'
import { Zone } from '../../src/store/index.ts'

const L = 'main' as LedgerName
const usd = 'USD' as Asset
const acct = (s: string) => s as AccountAddress

/** world → users:1, 10 USD: the order both tests plan with and without its keys. */
const send: Order = {
  type: 'CREATE_TRANSACTION',
  ledger: L,
  postings: [{ source: acct('world'), destination: acct('users:1'), amount: 10n, asset: usd }],
  metadata: {},
  accountMetadata: {},
  force: false,
}

function proposal(index: number, order: Order, coverage: CoverageEntry[], covered = coverage.map((_, i) => i)): Proposal {
  return {
    id: `p${index}`,
    date: '2026-01-01T00:00:00.000Z',
    predictedIndex: index,
    cacheEpoch: 0,
    storeIndexAtLoad: index - 1,
    coverage,
    orders: [{ order, coverageIndexes: covered }],
    atomic: false,
    continueOnFailure: false,
  }
}

function auditOutcomes(batch: WriteBatch): unknown[] {
  return batch
    .rows()
    .filter((row) => row.key[0] === Zone.audit && row.value !== null)
    .map((row) => decodeAuditEntry(row.value as Buffer).outcome)
}

test('coverage gate: reading an undeclared key fails loudly with COVERAGE_MISS, and the failure is in the audit chain', () => {
  const misses: string[] = []
  const fsm = new LedgerStateMachine({
    cache: new AttributeCache(100),
    clusterId: 'test-cluster',
    appliedIndex: 0,
    auditHead: GENESIS,
    onCoverageMiss: (error) => misses.push(error.message),
  })
  const first = new WriteBatch()
  const created = fsm.apply(1, proposal(1, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} }, [{ key: ledgerKey(L), seed: null }]), first)
  assert.equal(created.outcome === 'applied' && created.results[0]?.status, 'applied')

  const declared: CanonicalKey[] = [ledgerKey(L), volumesKey(L, acct('world'), usd), accountKey(L, acct('world')), accountKey(L, acct('users:1'))]
  // users:1's volumes are not declared.
  const batch = new WriteBatch()
  const result = fsm.apply(2, proposal(2, send, declared.map((key) => (key === ledgerKey(L) ? { key } : { key, seed: null }))), batch)
  assert.equal(result.outcome, 'applied')
  const [orderResult] = (result as { results: readonly OrderResult[] }).results
  assert.equal(orderResult?.status, 'failed')
  assert.equal(orderResult?.status === 'failed' && orderResult.error.code, 'COVERAGE_MISS')
  assert.match(misses[0] ?? '', /users:1/)
  const [outcome] = auditOutcomes(batch) as [[{ status: string; code: string }]]
  assert.deepEqual({ status: outcome[0].status, code: outcome[0].code }, { status: 'failed', code: 'COVERAGE_MISS' })
  // Nothing of the failed order reached the store.
  assert.ok(batch.rows().every((row) => row.key[0] !== Zone.logs && row.key[0] !== Zone.attributes || row.key.toString('utf8').includes('world')))
  assert.ok(!batch.rows().some((row) => row.key[0] === Zone.logs))
})

test('coverage gate: a key declared for another order of the proposal is still a miss', () => {
  const fsm = new LedgerStateMachine({ cache: new AttributeCache(100), clusterId: 'c', appliedIndex: 0, auditHead: GENESIS })
  const coverage: CoverageEntry[] = [{ key: ledgerKey(L), seed: null }, { key: ledgerKey('other' as LedgerName), seed: null }]
  const p: Proposal = {
    ...proposal(1, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} }, coverage, [1]),
  }
  const result = fsm.apply(1, p, new WriteBatch())
  assert.equal(result.outcome === 'applied' && result.results[0]?.status === 'failed' && result.results[0].error.code, 'COVERAGE_MISS')
})

test('a coverage-only entry the cache does not hold is a miss, never served from nowhere', () => {
  const fsm = new LedgerStateMachine({ cache: new AttributeCache(100), clusterId: 'c', appliedIndex: 0, auditHead: GENESIS })
  const result = fsm.apply(1, proposal(1, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} }, [{ key: ledgerKey(L) }]), new WriteBatch())
  assert.equal(result.outcome === 'applied' && result.results[0]?.status === 'failed' && result.results[0].error.code, 'COVERAGE_MISS')
})

test('stale proposals are refused before anything is applied or audited', () => {
  const fsm = new LedgerStateMachine({ cache: new AttributeCache(100), clusterId: 'c', appliedIndex: 0, auditHead: GENESIS })
  const order: Order = { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} }
  const batch = new WriteBatch()
  const wrongIndex = fsm.apply(1, { ...proposal(1, order, [{ key: ledgerKey(L), seed: null }]), predictedIndex: 7 }, batch)
  assert.equal(wrongIndex.outcome, 'stale')
  const wrongEpoch = fsm.apply(2, { ...proposal(2, order, [{ key: ledgerKey(L), seed: null }]), cacheEpoch: 3 }, batch)
  assert.equal(wrongEpoch.outcome, 'stale')
  assert.ok(!batch.rows().some((row) => row.key[0] === Zone.audit || row.key[0] === Zone.attributes))
  assert.throws(() => fsm.apply(5, proposal(5, order, []), batch), /apply of index 5 after 2/)
})

test('seeds older than the cache horizon are stale', () => {
  const cache = new AttributeCache(2)
  const fsm = new LedgerStateMachine({ cache, clusterId: 'c', appliedIndex: 0, auditHead: GENESIS })
  const order: Order = { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} }
  const batch = new WriteBatch()
  for (let index = 1; index <= 4; index++) fsm.apply(index, { ...proposal(index, order, []), predictedIndex: 0 }, batch)
  // Index 5 is generation 2; a seed read at store index 0 (generation 0 + 1) is too old.
  const result = fsm.apply(5, { ...proposal(5, order, [{ key: ledgerKey(L), seed: null }]), storeIndexAtLoad: 0 }, batch)
  assert.equal(result.outcome, 'stale')
})

test('a plan overtaken by a rotation it could not foresee (a byte budget filled in flight) is stale, never a coverage miss', () => {
  const cache = new AttributeCache({ rotationThreshold: 100, generationBytesMax: 250 })
  const misses: string[] = []
  const fsm = new LedgerStateMachine({ cache, clusterId: 'c', appliedIndex: 0, auditHead: GENESIS, onCoverageMiss: (error) => misses.push(error.message) })
  const create = (ledger: string): Order => ({ type: 'CREATE_LEDGER', ledger: ledger as LedgerName, bucket: '_default', metadata: {}, features: {} })
  const batch = new WriteBatch()
  assert.equal(fsm.apply(1, proposal(1, create(L), [{ key: ledgerKey(L), seed: null }]), batch).outcome, 'applied')
  assert.ok(cache.bytes.gen0 >= 250, 'the ledger record fills the budget')
  fsm.apply(2, { ...proposal(2, create(L), []), predictedIndex: 0 }, batch) // stale filler; rotation by bytes at 2
  assert.equal(cache.generation, 1)
  // Admission plans index 4 now: the ledger record sits in Gen1 and no rotation is due (Δ = 0): a hit.
  assert.equal(cache.check(ledgerKey(L), 4), 'hit')
  const planned: Proposal = { ...proposal(4, create(L), [{ key: ledgerKey(L) }]), cacheGeneration: cache.generationAt(4) }
  // Index 3, logged before it, fills Gen0's budget: a rotation at 4 that the plan could not foresee.
  assert.equal(fsm.apply(3, proposal(3, create('other'), [{ key: ledgerKey('other' as LedgerName), seed: null }]), batch).outcome, 'applied')
  const result = fsm.apply(4, planned, batch)
  assert.equal(cache.generation, 2, 'rotated at 4: the old Gen1, with the ledger record, is gone')
  assert.equal(result.outcome, 'stale', JSON.stringify(result))
  assert.deepEqual(misses, [])
})

test('a seed is the stored row bytes: the FSM applies on it, and refuses a seed of any other form (a base64 text seed) loudly', () => {
  const start = () => {
    const cache = new AttributeCache(100)
    const fsm = new LedgerStateMachine({ cache, clusterId: 'c', appliedIndex: 0, auditHead: GENESIS })
    fsm.apply(1, proposal(1, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} }, [{ key: ledgerKey(L), seed: null }]), new WriteBatch())
    return { cache, fsm }
  }
  const worldVolumes = volumesKey(L, acct('world'), usd)
  const stored = encodeAttribute({ kind: 'v', value: { input: 0n, output: 5n } }).bytes
  const coverage = (seed: unknown): CoverageEntry[] => [
    { key: ledgerKey(L) },
    { key: worldVolumes, seed: seed as Uint8Array },
    { key: accountKey(L, acct('world')), seed: null },
    { key: volumesKey(L, acct('users:1'), usd), seed: null },
    { key: accountKey(L, acct('users:1')), seed: null },
  ]
  const seeded = start()
  const result = seeded.fsm.apply(2, proposal(2, send, coverage(stored)), new WriteBatch())
  assert.equal(result.outcome === 'applied' && result.results[0]?.status, 'applied')
  const world = seeded.cache.get(worldVolumes)
  assert.ok(world.state === 'live')
  assert.deepStrictEqual(world.attribute.value, { kind: 'v', value: { input: 0n, output: 15n } }, 'the seeded output (5) plus the transfer')

  const text = start()
  assert.throws(() => text.fsm.apply(2, proposal(2, send, coverage(stored.toString('base64'))), new WriteBatch()), InvariantViolation)
})
