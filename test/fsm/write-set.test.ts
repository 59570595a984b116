import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { AttributeCache } from '../../src/cache/index.ts'
import { GatedScope, LedgerStateMachine, WriteBatch } from '../../src/fsm/index.ts'
import type { CoverageEntry, Proposal } from '../../src/fsm/index.ts'
import { WriteSet } from '../../src/fsm/gated-scope.ts'
import type { LedgerLog, Order, OrderOutput } from '../../src/orders/index.ts'
import type { AccountAddress, Asset, AttributeValue, CanonicalKey, LedgerName } from '../../src/domain/index.ts'
import { TallyError, volumesKey } from '../../src/domain/index.ts'
import { GENESIS } from '../../src/audit/index.ts'
import { attributeRowKey } from '../../src/store/index.ts'

/**
 * The proposal's one write set with per-order undo, against what it replaced:
 * an overlay per order, merged into the proposal's on success. Same values,
 * same key order (the cache segment and the batch follow it), same logs.
 */

const L = 'main' as LedgerName
const key = (i: number) => volumesKey(L, `users:${i}` as AccountAddress, 'USD' as Asset)
const value = (n: bigint): AttributeValue => ({ kind: 'v', value: { input: n, output: 0n } })

type Op = { kind: 'set'; key: number; value: bigint | null } | { kind: 'log'; id: bigint }
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key: fc.nat(6), value: fc.option(fc.bigInt({ min: 0n, max: 99n }), { nil: null }) }),
  fc.record({ kind: fc.constant('log' as const), id: fc.bigInt({ min: 0n, max: 99n }) }),
)
const orders = fc.array(fc.record({ ops: fc.array(op, { maxLength: 8 }), kept: fc.boolean() }), { maxLength: 12 })

/** The overlay-and-merge model the write set replaced. */
function merged(run: { ops: Op[]; kept: boolean }[]) {
  const values = new Map<CanonicalKey, AttributeValue | null>()
  const logs: bigint[] = []
  for (const order of run) {
    const overlay = new Map<CanonicalKey, AttributeValue | null>()
    const overlayLogs: bigint[] = []
    for (const o of order.ops) {
      if (o.kind === 'set') overlay.set(key(o.key), o.value === null ? null : value(o.value))
      else overlayLogs.push(o.id)
    }
    if (!order.kept) continue
    for (const [k, v] of overlay) values.set(k, v)
    logs.push(...overlayLogs)
  }
  return { values: [...values], logs }
}

test('write set: a failed order is undone whole, and what is kept is the merge of the kept orders, in the same key order (property)', () => {
  fc.assert(
    fc.property(orders, (run) => {
      const writes = new WriteSet()
      for (const order of run) {
        writes.beginOrder()
        for (const o of order.ops) {
          if (o.kind === 'set') writes.set(key(o.key), o.value === null ? null : value(o.value))
          else writes.appendLog(L, { id: o.id } as unknown as LedgerLog)
        }
        writes.endOrder(order.kept)
      }
      const expected = merged(run)
      assert.deepEqual([...writes.values], expected.values)
      assert.deepEqual(
        writes.logs.map((entry) => entry.log.id),
        expected.logs,
      )
    }),
    { numRuns: 2000 },
  )
})

type TestOrder = { type: 'TEST'; action: 'put' | 'put-then-fail' | 'read'; key: number; n?: string }
const testOrder = (action: TestOrder['action'], k: number, n?: bigint): Order => ({ type: 'TEST', action, key: k, ...(n === undefined ? {} : { n: String(n) }) }) as unknown as Order

function proposal(orderList: { order: Order; covered: number[] }[], coverage: CoverageEntry[]): Proposal {
  return {
    id: 'p1',
    date: '2026-01-01T00:00:00.000Z',
    predictedIndex: 1,
    cacheEpoch: 0,
    storeIndexAtLoad: 0,
    coverage,
    orders: orderList.map(({ order, covered }) => ({ order, coverageIndexes: covered })),
    atomic: false,
    continueOnFailure: true,
  }
}

test('FSM: an order that wrote and then failed leaves neither a row nor a value later orders see', () => {
  const observed: (AttributeValue | undefined)[] = []
  const execute = (scope: GatedScope, raw: Order): OrderOutput => {
    const order = raw as unknown as TestOrder
    if (order.action === 'read') observed.push(scope.read(key(order.key)))
    else {
      scope.write(key(order.key), value(BigInt(order.n ?? '0')))
      if (order.action === 'put-then-fail') throw new TallyError({ code: 'VALIDATION', kind: 'validation', message: 'refused after writing' })
    }
    return { type: 'LEDGER' }
  }
  const fsm = new LedgerStateMachine({ cache: new AttributeCache(100), clusterId: 'c', appliedIndex: 0, auditHead: GENESIS, execute })
  const coverage: CoverageEntry[] = [{ key: key(1), seed: null }, { key: key(2), seed: null }]
  const batch = new WriteBatch()
  const result = fsm.apply(
    1,
    proposal(
      [
        { order: testOrder('put', 1, 5n), covered: [] },
        { order: testOrder('put-then-fail', 1, 9n), covered: [] },
        { order: testOrder('put-then-fail', 2, 9n), covered: [] },
        { order: testOrder('read', 1), covered: [0] },
        { order: testOrder('read', 2), covered: [1] },
      ],
      coverage,
    ),
    batch,
  )
  assert.equal(result.outcome, 'applied')
  assert.deepEqual(
    result.outcome === 'applied' ? result.results.map((r) => r.status) : [],
    ['applied', 'failed', 'failed', 'applied', 'applied'],
  )
  assert.deepEqual(observed, [value(5n), undefined], 'the failed orders\' writes are invisible')
  const rows = new Map(batch.rows().map((row) => [row.key.toString('hex'), row.value]))
  assert.ok(rows.has(attributeRowKey(key(1)).toString('hex')))
  assert.equal(rows.has(attributeRowKey(key(2)).toString('hex')), false, 'no row for a key only a failed order wrote')
})

test('coverage gate with many keys per order (a set, not a scan): an undeclared key is still a miss', () => {
  const keys = Array.from({ length: 12 }, (_, i) => key(i))
  const coverage: CoverageEntry[] = keys.map((k) => ({ key: k, seed: null }))
  const covered = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11] // not 10
  const scope = new GatedScope('2026-01-01T00:00:00.000Z', undefined, coverage, covered, new Map(keys.map((k) => [k, null])), new AttributeCache(100), new WriteSet())
  for (const i of covered) assert.equal(scope.read(keys[i] as CanonicalKey), undefined)
  assert.throws(() => scope.read(keys[10] as CanonicalKey), (error: unknown) => error instanceof TallyError && error.code === 'COVERAGE_MISS')
  const few = new GatedScope('2026-01-01T00:00:00.000Z', undefined, coverage, [3], new Map(keys.map((k) => [k, null])), new AttributeCache(100), new WriteSet())
  assert.equal(few.read(keys[3] as CanonicalKey), undefined)
  assert.throws(() => few.read(keys[4] as CanonicalKey), (error: unknown) => error instanceof TallyError && error.code === 'COVERAGE_MISS')
})

test('a gated scope reads each declared key\'s own value and writes under it, by scan and by map (keys built again from text, as a handler builds them)', () => {
  const keys = Array.from({ length: 12 }, (_, i) => key(i))
  const coverage: CoverageEntry[] = keys.map((k) => ({ key: k, seed: null }))
  const seeds = new Map(keys.map((k, i) => [k, value(BigInt(100 + i))]))
  for (const covered of [[2, 5, 7], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]) {
    const writes = new WriteSet()
    const scope = new GatedScope('2026-01-01T00:00:00.000Z', undefined, coverage, covered, seeds, new AttributeCache(100), writes)
    for (const i of [...covered].reverse()) {
      // The same text, another string: what a handler builds from the order.
      const built = volumesKey(L, `users:${String(i)}` as AccountAddress, 'USD' as Asset)
      assert.deepEqual(scope.read(built), value(BigInt(100 + i)), `key ${i} of ${covered.length}`)
      scope.write(built, value(BigInt(200 + i)))
      assert.deepEqual(scope.read(built), value(BigInt(200 + i)))
    }
    assert.deepEqual([...writes.values.keys()], [...covered].reverse().map((i) => keys[i]))
  }
})

test('one gated scope for a proposal\'s orders: each order reads through its own coverage only (set or scan), and its own idempotency key', () => {
  const keys = Array.from({ length: 12 }, (_, i) => key(i))
  const coverage: CoverageEntry[] = keys.map((k) => ({ key: k, seed: null }))
  const miss = (error: unknown): boolean => error instanceof TallyError && error.code === 'COVERAGE_MISS'
  const many = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11] // past the scan: a set
  const scope = new GatedScope('2026-01-01T00:00:00.000Z', 'first', coverage, many, new Map(keys.map((k) => [k, null])), new AttributeCache(100), new WriteSet())
  assert.equal(scope.read(keys[9] as CanonicalKey), undefined, 'the set is built')
  scope.nextOrder(undefined, [10, 11])
  assert.equal(scope.idempotencyKey, undefined)
  assert.equal(scope.read(keys[10] as CanonicalKey), undefined)
  assert.throws(() => scope.read(keys[9] as CanonicalKey), miss, 'the previous order\'s coverage set is gone')
  scope.nextOrder('third', [...many.slice(1), 10])
  assert.equal(scope.idempotencyKey, 'third')
  assert.equal(scope.read(keys[10] as CanonicalKey), undefined)
  assert.throws(() => scope.read(keys[0] as CanonicalKey), miss, 'a new set for the new order')
})
