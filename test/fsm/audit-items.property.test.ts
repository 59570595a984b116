import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { packItems } from '../../src/domain/index.ts'
import type { Json } from '../../src/domain/index.ts'
import type { PlannedOrder } from '../../src/fsm/proposal.ts'
import type { OrderResult } from '../../src/fsm/state-machine.ts'
import { auditOrder, auditOutcome } from '../../src/fsm/state-machine.ts'
import { packAuditOrders } from '../../src/fsm/audit-orders.ts'
import type { LedgerName } from '../../src/domain/index.ts'
import { depositBulks } from '../../bench/deposits.ts'

/**
 * The audit body's items per order (`auditOrder`, `auditOutcome`) are built
 * whole, without spreads; the audit chain's bytes depend on every field they
 * hold. They must pack (keys sorted, as the FSM packs them) to the bytes of
 * the objects built by spreading, as the first version of each built them
 * (kept here as the oracle).
 */

function spreadOrder({ order, idempotencyKey, requestHash }: PlannedOrder): Json {
  return { order, ...(idempotencyKey === undefined ? {} : { idempotencyKey }), ...(requestHash === undefined ? {} : { requestHash }) } as unknown as Json
}

function spreadOutcome(result: OrderResult): Json {
  switch (result.status) {
    case 'applied': {
      const output = result.output
      const ids: Record<string, Json> =
        output.type === 'TRANSACTION'
          ? { transactionId: (output.transaction as { id: bigint }).id, logId: output.logId }
          : (output.type === 'METADATA' && output.logId !== null) || output.type === 'SCHEMA'
            ? { logId: output.logId }
            : {}
      return { status: 'applied', idempotencyHit: result.idempotencyHit, ...ids }
    }
    case 'failed':
      return { status: 'failed', code: result.error.code, message: result.error.message }
    case 'skipped':
      return { status: 'skipped' }
  }
}

const text = fc.string({ maxLength: 8 })
const id = fc.bigInt({ min: 0n, max: 2n ** 64n })

const plannedOrder = fc.record({
  order: fc.record({ type: fc.constantFrom('CREATE_TRANSACTION', 'REVERT_TRANSACTION'), ledger: text, force: fc.boolean() }),
  idempotencyKey: fc.option(text, { nil: undefined }),
  requestHash: fc.option(text, { nil: undefined }),
  coverageIndexes: fc.array(fc.nat(), { maxLength: 3 }),
}) as unknown as fc.Arbitrary<PlannedOrder>

const output = fc.oneof(
  fc.record({ type: fc.constant('TRANSACTION' as const), transaction: fc.record({ id }), logId: id }),
  fc.record({ type: fc.constant('METADATA' as const), logId: fc.option(id, { nil: null }) }),
  fc.record({ type: fc.constant('SCHEMA' as const), logId: id }),
  fc.record({ type: fc.constantFrom('LEDGER' as const, 'OUTPUTS' as const) }),
)

const result: fc.Arbitrary<OrderResult> = fc.oneof(
  fc.record({ status: fc.constant('applied' as const), output, idempotencyHit: fc.boolean() }),
  fc.record({ status: fc.constant('failed' as const), error: fc.record({ code: fc.constantFrom('INSUFFICIENT_FUND', 'VALIDATION'), kind: fc.constant('business'), message: text }) }),
  fc.constant({ status: 'skipped' as const }),
) as unknown as fc.Arbitrary<OrderResult>

test('audit orders and outcomes pack to the bytes of the spread-built objects, in order and with absent fields left out', () => {
  fc.assert(
    fc.property(fc.array(plannedOrder, { maxLength: 4 }), fc.array(result, { maxLength: 4 }), (orders, results) => {
      assert.ok(packItems(orders.map(auditOrder), true).equals(packItems(orders.map(spreadOrder), true)))
      assert.ok(packItems(results.map(auditOutcome), true).equals(packItems(results.map(spreadOutcome), true)))
    }),
    { numRuns: 500 },
  )
})

// `packAuditOrders` writes the common create (postings only) field by field; anything else through the
// generic walk. Orders here are that create with its keys in any order, near misses of it (a key more or
// less, an undefined or mistyped field, `__proto__` or integer-like keys, a posting that is an array or
// has no prototype), and other orders.
const key = fc.constantFrom('a', 'b', 'z', '0', '10', '2', '__proto__', 'é', 'Z')
const metadataValue = fc.oneof(fc.constant('x'), text)
const record = (entries: [string, unknown][], nullPrototype: boolean): Record<string, unknown> => {
  const out: Record<string, unknown> = nullPrototype ? Object.create(null) : {}
  for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
  return out
}
const metadata = fc.tuple(fc.array(fc.tuple(key, metadataValue), { maxLength: 3 }), fc.boolean()).map(([entries, nullPrototype]) => record(entries, nullPrototype))
const amount = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 70n }), fc.integer({ min: 0, max: 1000 }))
const posting = fc
  .tuple(
    fc.shuffledSubarray(['source', 'destination', 'amount', 'asset'], { minLength: 3, maxLength: 4 }),
    text,
    text,
    amount,
    fc.constantFrom('USD/2', 'EUR', '2026-12-07T03:45:00.123Z'),
    fc.constantFrom('plain', 'nullPrototype', 'array', 'extraKey', 'undefinedField'),
  )
  .map(([keys, source, destination, value, asset, form]): unknown => {
    const values: Record<string, unknown> = { source, destination, amount: value, asset }
    if (form === 'array') return [source, destination, value, asset]
    const entries: [string, unknown][] = keys.map((k) => [k, values[k]])
    if (form === 'extraKey') entries.push(['__proto__', 'x'])
    if (form === 'undefinedField') entries.push([keys[0] as string, undefined])
    return record(entries, form === 'nullPrototype')
  })
const createFields = ['type', 'ledger', 'postings', 'metadata', 'accountMetadata', 'force']
const create = fc
  .tuple(
    fc.shuffledSubarray(createFields, { minLength: 5, maxLength: 6 }),
    fc.constantFrom('CREATE_TRANSACTION', 'REVERT_TRANSACTION'),
    text,
    fc.array(posting, { maxLength: 3 }),
    metadata,
    fc.oneof(metadata, fc.constant(undefined)),
    fc.oneof(fc.boolean(), fc.constant(1)),
    fc.array(fc.tuple(fc.constantFrom('timestamp', 'reference', 'schemaVersion', 'extra', '0'), fc.oneof(text, fc.constant(undefined))), { maxLength: 1 }),
  )
  .map(([keys, type, ledger, postings, meta, accountMetadata, force, extra]) => {
    const values: Record<string, unknown> = { type, ledger, postings, metadata: meta, accountMetadata, force }
    return record([...keys.map((k): [string, unknown] => [k, values[k]]), ...extra], false)
  })
const auditedOrder = fc.record({
  order: fc.oneof({ weight: 4, arbitrary: create }, { weight: 1, arbitrary: fc.record({ type: fc.constantFrom('CREATE_TRANSACTION', 'REVERT_TRANSACTION'), ledger: text, force: fc.boolean() }) }),
  idempotencyKey: fc.option(text, { nil: undefined }),
  requestHash: fc.option(text, { nil: undefined }),
  coverageIndexes: fc.array(fc.nat(), { maxLength: 3 }),
}) as unknown as fc.Arbitrary<PlannedOrder>

test('packAuditOrders writes the bytes of the orders packed generically, for common creates in any key order and every other order', () => {
  fc.assert(
    fc.property(fc.array(auditedOrder, { maxLength: 5 }), (orders) => {
      assert.ok(packAuditOrders(orders, auditOrder).equals(packItems(orders.map(auditOrder), true)))
    }),
    { numRuns: 3000 },
  )
})

test('packAuditOrders writes a bulk deposit as the generic walk does', () => {
  const orders = depositBulks('bench' as LedgerName, 50, 7, true)().map((proposed) => ({ ...proposed, coverageIndexes: [0, 1] }))
  const bare = depositBulks('bench' as LedgerName, 50)().map((proposed) => ({ ...proposed, coverageIndexes: [0] }))
  for (const batch of [orders, bare, [...bare.slice(0, 3), ...orders.slice(0, 3)]]) {
    assert.ok(packAuditOrders(batch, auditOrder).equals(packItems(batch.map(auditOrder), true)))
  }
})
