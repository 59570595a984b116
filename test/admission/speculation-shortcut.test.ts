import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { AccountAddress, Asset, AttributeValue, CanonicalKey, LedgerName } from '../../src/domain/index.ts'
import { idempotencyKey as idempotencyRecordKey, volumesKey } from '../../src/domain/index.ts'
import type { KnownValue, Order, ProposedOrder } from '../../src/orders/index.ts'
import { ledgerOfOrder, needsOf, needsReadValues } from '../../src/orders/index.ts'
import { planRound, speculate } from '../../src/admission/index.ts'

/**
 * Planning runs each bulk element's handler speculatively only where a later
 * element's needs read values (a revert, a script): an element whose effects
 * no later element's planning reads is not run. The plan — keys per order,
 * and the order as proposed — must be the one that running every element
 * gives, over random bulks mixing transfers, reverts (of transactions created
 * before and inside the bulk), scripts and metadata writes.
 */
const L = 'main' as LedgerName
const USD = 'USD' as Asset
const DATE = '2026-12-06T12:00:00.000Z'
const users = Array.from({ length: 5 }, (_, i) => `users:${i}`)

function send(source: string, destination: string, amount: bigint): Order {
  return { type: 'CREATE_TRANSACTION', ledger: L, postings: [{ source: source as AccountAddress, destination: destination as AccountAddress, amount, asset: USD }], metadata: {}, accountMetadata: {}, force: false }
}

function sweep(source: string, destination: string): Order {
  const plain = `vars { monetary $all = balance(@${source}, USD) }\nsend $all ( source = @${source} destination = @${destination} )`
  return { type: 'CREATE_TRANSACTION', ledger: L, postings: [], script: { plain, vars: {} }, metadata: {}, accountMetadata: {}, force: false }
}

/** The ledger before the bulk: opened, each user funded by one transaction (ids 0–4). */
function ledgerState(): Map<CanonicalKey, AttributeValue> {
  const state = new Map<CanonicalKey, AttributeValue>()
  const read = (key: CanonicalKey): KnownValue => state.get(key) ?? null
  const setup: Order[] = [{ type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} }, ...users.map((user) => send('world', user, 100n))]
  for (const order of setup) assert.equal(speculate(order, DATE, undefined, read, state), true)
  return state
}

const userName = fc.constantFrom(...users)
const element: fc.Arbitrary<ProposedOrder> = fc
  .tuple(
    fc.oneof(
      { weight: 6, arbitrary: fc.tuple(fc.constantFrom('world', ...users), userName, fc.bigInt({ min: 1n, max: 150n })).map(([from, to, amount]) => send(from, to, amount)) },
      { weight: 2, arbitrary: fc.bigInt({ min: 0n, max: 12n }).map((id): Order => ({ type: 'REVERT_TRANSACTION', ledger: L, id: id as never, force: false, atEffectiveDate: false, metadata: {} })) },
      { weight: 1, arbitrary: fc.tuple(userName, userName).map(([from, to]) => sweep(from, to)) },
      { weight: 1, arbitrary: userName.map((address): Order => ({ type: 'SAVE_ACCOUNT_METADATA', ledger: L, address: address as AccountAddress, metadata: { tier: 'gold' } })) },
    ),
    fc.option(fc.constantFrom('k1', 'k2'), { nil: undefined }),
  )
  .map(([order, idempotencyKey]) => (idempotencyKey === undefined ? { order } : { order, idempotencyKey }))

/** Planning before the shortcut: every element of a bulk run speculatively. */
function planSpeculatingAll(orders: readonly ProposedOrder[], date: string, lookup: (key: CanonicalKey) => KnownValue) {
  const overlay = new Map<CanonicalKey, AttributeValue>()
  const withOverlay = (key: CanonicalKey): KnownValue => overlay.get(key) ?? lookup(key)
  return orders.map((proposed) => {
    const needs = needsOf(proposed.order, withOverlay)
    const keys = [...needs.keys]
    const ledger = ledgerOfOrder(proposed.order)
    if (proposed.idempotencyKey !== undefined && ledger !== undefined) keys.push(idempotencyRecordKey(ledger, proposed.idempotencyKey))
    const order = needs.order ?? proposed.order
    const complete = needs.complete && (orders.length === 1 || speculate(order, date, proposed.idempotencyKey, withOverlay, overlay))
    return { keys, complete, order }
  })
}

/** Planning rounds as admission runs them: unknown keys are loaded from `state` and the round repeated. */
function resolve(plan: typeof planRound, orders: readonly ProposedOrder[], state: ReadonlyMap<CanonicalKey, AttributeValue>) {
  const known = new Map<CanonicalKey, AttributeValue | null>()
  for (let round = 0; round < 8; round++) {
    const unknown = new Set<CanonicalKey>()
    const planned = plan(orders, DATE, (key) => {
      if (known.has(key)) return known.get(key) as AttributeValue | null
      unknown.add(key)
      return 'unknown'
    })
    if (planned.every((needs) => needs.complete)) return planned.map(({ keys, order }) => ({ keys, order }))
    for (const key of unknown) known.set(key, state.get(key) ?? null)
  }
  assert.fail('planning did not resolve in 8 rounds')
}

test('planning skips speculation only where no later element reads values: same plan as speculating every element (property)', () => {
  const state = ledgerState()
  fc.assert(
    fc.property(fc.array(element, { minLength: 1, maxLength: 12 }), (orders) => {
      assert.deepEqual(resolve(planRound, orders, state), resolve(planSpeculatingAll, orders, state))
    }),
    { numRuns: 2_000 },
  )
})

test('a revert of a transaction created earlier in the same bulk is planned on that transaction', () => {
  const state = ledgerState()
  const orders: ProposedOrder[] = [{ order: send('users:0', 'users:1', 10n) }, { order: { type: 'REVERT_TRANSACTION', ledger: L, id: 5n as never, force: false, atEffectiveDate: false, metadata: {} } }]
  const [, revert] = resolve(planRound, orders, state)
  assert.notEqual((revert?.order as { plannedPostings?: string }).plannedPostings, 'absent', 'the revert saw the transaction the first element creates')
  assert.ok(revert?.keys.includes(volumesKey(L, 'users:1' as AccountAddress, USD)), 'and declares the volumes its postings move')
})

test('needsReadValues says which orders read values to plan: needsOf of any other order never calls its lookup', () => {
  const state = ledgerState()
  // Every order type, then a random sample of the bulk elements above.
  const everyType: Order[] = [
    { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} },
    { type: 'SAVE_LEDGER_METADATA', ledger: L, metadata: { a: 'b' } },
    { type: 'DELETE_LEDGER_METADATA', ledger: L, key: 'a' },
    { type: 'INSERT_SCHEMA', ledger: L, version: 'v1', data: {} },
    send('users:0', 'users:1', 1n),
    sweep('users:0', 'users:1'),
    { type: 'REVERT_TRANSACTION', ledger: L, id: 0n as never, force: false, atEffectiveDate: false, metadata: {} },
    { type: 'SAVE_TRANSACTION_METADATA', ledger: L, id: 0n as never, metadata: { a: 'b' } },
    { type: 'DELETE_TRANSACTION_METADATA', ledger: L, id: 0n as never, key: 'a' },
    { type: 'SAVE_ACCOUNT_METADATA', ledger: L, address: 'users:0' as AccountAddress, metadata: { a: 'b' } },
    { type: 'DELETE_ACCOUNT_METADATA', ledger: L, address: 'users:0' as AccountAddress, key: 'a' },
  ]
  const orders = [...everyType, ...fc.sample(element, { numRuns: 500, seed: 12 }).map((proposed) => proposed.order)]
  let reading = 0
  for (const order of orders) {
    let read = false
    needsOf(order, (key) => {
      read = true
      return state.get(key) ?? null
    })
    if (read) reading++
    if (!needsReadValues(order)) assert.equal(read, false, JSON.stringify(order, (_, value) => (typeof value === 'bigint' ? String(value) : value)))
  }
  assert.ok(reading > 0, 'the sample has orders that read values')
})
