import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { packProposalOrders, planCoverage, WriteBatch } from '../../src/fsm/index.ts'
import type { PlannedOrder } from '../../src/fsm/index.ts'
import { plannedOrder } from '../../src/admission/admission.ts'
import { AttributeCache } from '../../src/cache/index.ts'
import type { AccountAddress, Asset, CanonicalKey, LedgerName } from '../../src/domain/index.ts'
import { accountKey, encodeAttribute, ledgerKey, schemaKey, volumesKey } from '../../src/domain/index.ts'
import { needsOf } from '../../src/orders/index.ts'
import type { Order, ProposedOrder } from '../../src/orders/index.ts'
import { LedgerNode } from '../../src/server/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { USD, transfer } from '../support/ledger.ts'

/**
 * Planning's keys, built once per proposal: each fast form held to the
 * code it replaced (kept here as the model), so the plan's positions — and
 * so the logged proposal's bytes — do not change.
 */

const L = 'main' as LedgerName
const keyOf = (n: number): CanonicalKey => volumesKey(L, `users:${n}` as AccountAddress, 'USD' as Asset)

/** The replaced planning: every key once in first-seen order, positions from a map, each order's through a set and a sort. */
function modelPlan(perOrderKeys: readonly (readonly CanonicalKey[])[]): { keys: CanonicalKey[]; coverageIndexes: number[][] } {
  const keys = [...new Set(perOrderKeys.flat())]
  const position = new Map(keys.map((key, i) => [key, i]))
  const coverageIndexes = perOrderKeys.map((orderKeys) => [...new Set(orderKeys.map((key) => position.get(key) as number))].sort((a, b) => a - b))
  return { keys, coverageIndexes }
}

test('planCoverage: the keys and coverage positions of the set-and-sort planning it replaced', () => {
  // Short orders (the insertion sort) and long ones (past it), repeats within and across orders.
  const orderKeys = fc.oneof(fc.array(fc.nat(40), { maxLength: 12 }), fc.array(fc.nat(400), { minLength: 30, maxLength: 120 }))
  fc.assert(
    fc.property(fc.array(orderKeys, { maxLength: 30 }), (orders) => {
      const perOrderKeys = orders.map((numbers) => numbers.map(keyOf))
      assert.deepEqual(planCoverage(perOrderKeys), modelPlan(perOrderKeys))
    }),
    { numRuns: 300 },
  )
})

test('needsOf a transaction: the keys of the spread-and-set code it replaced, first occurrences in order', () => {
  const account = fc.constantFrom('world', 'users:1', 'users:2', 'users:3', 'bank') as fc.Arbitrary<AccountAddress>
  const asset = fc.constantFrom('USD', 'EUR/2') as fc.Arbitrary<Asset>
  const posting = fc.record({ source: account, destination: account, amount: fc.bigInt({ min: 0n, max: 100n }), asset })
  fc.assert(
    fc.property(
      fc.array(posting, { minLength: 1, maxLength: 8 }),
      fc.uniqueArray(account, { maxLength: 3 }),
      fc.option(fc.constantFrom('v1', 'v2'), { nil: undefined }),
      (postings, metadataAccounts, schemaVersion) => {
        const accountMetadata = Object.create(null) as Record<string, Record<string, string>>
        for (const address of metadataAccounts) accountMetadata[address] = Object.create(null) as Record<string, string>
        const order: Order = {
          type: 'CREATE_TRANSACTION',
          ledger: L,
          postings,
          metadata: {},
          accountMetadata,
          force: false,
          ...(schemaVersion === undefined ? {} : { schemaVersion }),
        }
        const model: CanonicalKey[] = [ledgerKey(L)]
        if (schemaVersion !== undefined) model.push(schemaKey(L, schemaVersion))
        for (const p of postings) model.push(volumesKey(L, p.source, p.asset), volumesKey(L, p.destination, p.asset), accountKey(L, p.source), accountKey(L, p.destination))
        for (const address of Object.keys(accountMetadata)) model.push(accountKey(L, address as AccountAddress))
        const needs = needsOf(order, () => 'unknown')
        assert.equal(needs.complete, true)
        assert.deepEqual(needs.keys, [...new Set(model)])
      },
    ),
    { numRuns: 300 },
  )
})

test('AttributeCache.checkAll answers as check does for each key, whatever the generations and the index asked about', () => {
  const step = fc.oneof(
    fc.record({ put: fc.array(fc.nat(30), { maxLength: 6 }) }),
    fc.record({ del: fc.nat(30) }),
  )
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.array(step, { maxLength: 25 }),
      fc.array(fc.nat(30), { maxLength: 12 }),
      fc.integer({ min: -2, max: 12 }),
      (threshold, steps, asked, ahead) => {
        const cache = new AttributeCache(threshold)
        const batch = new WriteBatch()
        steps.forEach((s, i) => {
          cache.enter(i + 1, batch)
          if ('put' in s) for (const n of s.put) cache.put(keyOf(n), encodeAttribute({ kind: 'v', value: { input: BigInt(n), output: 0n } }), batch)
          else cache.tombstone(keyOf(s.del), batch)
        })
        const keys = asked.map(keyOf)
        const index = steps.length + ahead
        const each = keys.map((key) => cache.check(key, index))
        const all = cache.checkAll(keys, index)
        if (each.includes('unreachable')) assert.equal(all, 'unreachable')
        else assert.deepEqual(all, each.map((check) => check === 'hit'))
      },
    ),
    { numRuns: 500 },
  )
})

/**
 * The cache is asked once per key, and again at stamping only when seeds
 * were loaded in between: during that await other proposals apply and the
 * cache may rotate, so a key that was a hit may be gone. Here one key of the
 * plan is in Gen1 when it is checked, and one rotation happens while the
 * proposal loads the seed of its new account: the key must be seeded, not
 * proposed as a hit the cache no longer holds (a COVERAGE_MISS at apply).
 */
test('admission checks the cache again after loading seeds: a hit that rotated out meanwhile is seeded', async () => {
  const tmp = tempDirectory()
  // Seeds read through the thread pool: the await is where the cache moves.
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: 2, gatherOrdersMax: 1, planSyncReadKeysMax: 0 })
  const once = { atomic: true, continueOnFailure: false }
  try {
    await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} } as Order }], once)
    await node.admission.submit([{ order: transfer('world', 'users:a', 10n) }], once)
    // One rotation: users:a's keys are in Gen1 only.
    const rotateOnce = async (from: number): Promise<void> => {
      const generation = node.cache.generation
      for (let i = from; node.cache.generation === generation; i++) {
        const [result] = await node.admission.submit([{ order: transfer('world', `users:filler${i}`, 1n) }], once)
        assert.equal(result?.status, 'applied')
      }
    }
    await rotateOnce(0)
    const usersA = volumesKey(L, 'users:a' as AccountAddress, USD)
    assert.equal(node.cache.check(usersA, node.nextIndex()), 'hit', 'users:a is a hit when the proposal is planned')
    const getMany = node.store.getMany.bind(node.store)
    let armed = true
    node.store.getMany = async (keys) => {
      if (armed) {
        armed = false
        // While the proposal awaits its seeds, others apply and the cache rotates once more.
        await rotateOnce(100)
      }
      return getMany(keys)
    }
    const [moved] = await node.admission.submit([{ order: transfer('users:a', 'users:new', 3n) }], once)
    assert.equal(armed, false, 'the proposal loaded a seed')
    assert.equal(moved?.status === 'failed' ? moved.error.code : moved?.status, 'applied')
  } finally {
    await node.close()
    tmp.remove()
  }
})

test('plannedOrder: the keys, in order, and the packed bytes of the spread it replaced', () => {
  const spread = (proposed: ProposedOrder, order: Order, coverageIndexes: number[]): PlannedOrder => ({ ...proposed, order, coverageIndexes })
  const order = transfer('world', 'users:1', 5n)
  const resolvedOrder = transfer('world', 'users:2', 7n)
  const shapes: ProposedOrder[] = [
    { order },
    { order, idempotencyKey: 'ik-1', requestHash: 'h1' },
    { order, requestHash: 'h2' },
    { order, idempotencyKey: 'ik-2' },
  ]
  shapes.forEach((proposed, i) => {
    const planned = plannedOrder(proposed, [{ order: resolvedOrder }], [[0, 2, 3]], 0)
    const model = spread(proposed, resolvedOrder, [0, 2, 3])
    assert.deepStrictEqual(Object.keys(planned), Object.keys(model), `shape ${i}`)
    assert.deepStrictEqual(planned, model, `shape ${i}`)
    assert.ok(packProposalOrders([planned]).equals(packProposalOrders([model])), `shape ${i}: the same packed bytes`)
  })
})
