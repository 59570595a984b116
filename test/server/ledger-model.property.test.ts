import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { LedgerNode } from '../../src/server/index.ts'
import type { Order } from '../../src/orders/index.ts'
import type { OrderResult } from '../../src/fsm/index.ts'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'
import { canonicalJson } from '../../src/domain/index.ts'
import { Views } from '../../src/api/views.ts'
import { tempDirectory } from '../support/temp.ts'

const L = 'main' as LedgerName
const USD = 'USD/2' as Asset
const ACCOUNTS = ['world', 'users:1', 'users:2', 'users:3', 'users:4'] as const
const acct = (i: number) => ACCOUNTS[i] as AccountAddress

type Op =
  | { kind: 'send'; from: number; to: number; amount: bigint; force: boolean; ik: string | undefined }
  | { kind: 'revert'; target: number; force: boolean }
  | { kind: 'meta'; account: number; value: string }
  | { kind: 'retry'; pick: number; tamper: boolean }

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('send' as const), from: fc.integer({ min: 0, max: 4 }), to: fc.integer({ min: 1, max: 4 }), amount: fc.bigInt({ min: 0n, max: 60n }), force: fc.integer({ min: 0, max: 9 }).map((n) => n < 2), ik: fc.option(fc.constantFrom('k1', 'k2', 'k3', 'k4'), { nil: undefined }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('revert' as const), target: fc.nat({ max: 30 }), force: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('meta' as const), account: fc.integer({ min: 1, max: 4 }), value: fc.string({ maxLength: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('retry' as const), pick: fc.nat(), tamper: fc.boolean() }) },
)

/** The reference model: balances of one asset and the transaction list. */
class Model {
  readonly balances = new Map<string, bigint>(ACCOUNTS.map((a) => [a, 0n]))
  readonly transactions: { from: string; to: string; amount: bigint; reverted: boolean }[] = []
  readonly idempotency = new Map<string, { order: string; result: string }>()
  readonly forced = new Set<string>()

  send(from: string, to: string, amount: bigint, force: boolean): string {
    const balance = this.balances.get(from) as bigint
    if (from !== "world" && !force && balance < amount) return 'INSUFFICIENT_FUND'
    if (force && from !== 'world') this.forced.add(from)
    this.balances.set(from, (this.balances.get(from) as bigint) - amount)
    this.balances.set(to, (this.balances.get(to) as bigint) + amount)
    this.transactions.push({ from, to, amount, reverted: false })
    return `tx:${this.transactions.length - 1}`
  }

  revert(id: number, force: boolean): string {
    const tx = this.transactions[id]
    if (tx === undefined) return 'NOT_FOUND'
    if (tx.reverted) return 'ALREADY_REVERT'
    const outcome = this.send(tx.to, tx.from, tx.amount, force)
    if (outcome.startsWith('tx:')) tx.reverted = true
    return outcome
  }
}

function summary(result: OrderResult): string {
  if (result.status === 'failed') return result.error.code
  if (result.status === 'skipped') return 'skipped'
  const output = result.output
  return output.type === 'TRANSACTION' ? `tx:${String((output.transaction as { id: bigint }).id)}` : output.type
}

test('property: random orders through the real pipeline agree with a reference model; Σ = 0; only forced accounts go negative', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArbitrary, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 6 }), async (ops, threshold) => {
      const tmp = tempDirectory()
      const node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: threshold, sync: false })
      try {
        const model = new Model()
        const submitted: { order: Order; ik: string }[] = []
        const run = async (order: Order, ik?: string): Promise<OrderResult> => {
          const [result] = await node.admission.submit([{ order, ...(ik ? { idempotencyKey: ik, requestHash: canonicalJson(order) } : {}) }], { atomic: true, continueOnFailure: false })
          return result as OrderResult
        }
        await run({ type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} })
        for (const op of ops) {
          if (op.kind === 'send') {
            const order: Order = { type: 'CREATE_TRANSACTION', ledger: L, postings: [{ source: acct(op.from), destination: acct(op.to), amount: op.amount, asset: USD }], metadata: {}, accountMetadata: {}, force: op.force }
            const key = op.ik
            const previous = key === undefined ? undefined : model.idempotency.get(key)
            let expected: string
            if (previous !== undefined) expected = previous.order === canonicalJson(order) ? previous.result : 'VALIDATION'
            else expected = model.send(ACCOUNTS[op.from] as string, ACCOUNTS[op.to] as string, op.amount, op.force)
            if (key !== undefined && previous === undefined && expected.startsWith('tx:')) model.idempotency.set(key, { order: canonicalJson(order), result: expected })
            assert.equal(summary(await run(order, key)), expected)
            if (key !== undefined) submitted.push({ order, ik: key })
          } else if (op.kind === 'revert') {
            const expected = model.revert(op.target, op.force)
            assert.equal(summary(await run({ type: 'REVERT_TRANSACTION', ledger: L, id: BigInt(op.target), force: op.force, atEffectiveDate: false, metadata: {} })), expected)
          } else if (op.kind === 'meta') {
            assert.equal(summary(await run({ type: 'SAVE_ACCOUNT_METADATA', ledger: L, address: acct(op.account), metadata: { note: op.value } })), 'METADATA')
          } else if (submitted.length > 0) {
            const chosen = submitted[op.pick % submitted.length] as { order: Order; ik: string }
            const record = model.idempotency.get(chosen.ik)
            const order = op.tamper ? { ...chosen.order, metadata: { tampered: 'yes' } } : chosen.order
            let expected: string
            if (record === undefined) {
              // The key never succeeded: the retry is a fresh attempt.
              const posting = (order as Extract<Order, { type: 'CREATE_TRANSACTION' }>).postings[0]
              if (posting === undefined) throw new Error('unreachable')
              expected = model.send(posting.source, posting.destination, posting.amount, (order as { force: boolean }).force)
              if (expected.startsWith('tx:')) model.idempotency.set(chosen.ik, { order: canonicalJson(order), result: expected })
            } else expected = record.order === canonicalJson(order) ? record.result : 'VALIDATION'
            const result = await run(order, chosen.ik)
            assert.equal(summary(result), expected)
            if (record !== undefined && expected !== 'VALIDATION') assert.equal(result.status === 'applied' && result.idempotencyHit, true)
          }
        }
        const views = new Views(node.store)
        let sum = 0n
        for (const account of ACCOUNTS) {
          const volumes = (await views.volumesOf(L, account as AccountAddress)) as Record<string, { balance: bigint }>
          const balance = volumes[USD]?.balance ?? 0n
          assert.equal(balance, model.balances.get(account), `balance of ${account}`)
          if (account !== 'world' && !model.forced.has(account)) assert.ok(balance >= 0n, `${account} negative without force`)
          sum += balance
        }
        assert.equal(sum, 0n, 'Σ balances = 0')
      } finally {
        await node.close()
        tmp.remove()
      }
    }),
    { numRuns: 40 },
  )
})
