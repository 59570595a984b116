import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { packItems } from '../../src/domain/index.ts'
import type { Json } from '../../src/domain/index.ts'
import type { PlannedOrder } from '../../src/fsm/proposal.ts'
import type { OrderResult } from '../../src/fsm/state-machine.ts'
import { auditOrder, auditOutcome } from '../../src/fsm/state-machine.ts'

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
