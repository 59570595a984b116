import fc from 'fast-check'
import type { LedgerNode } from '../../src/server/index.ts'
import type { Order, ProposedOrder } from '../../src/orders/index.ts'
import type { AccountAddress, Asset, Json, LedgerName } from '../../src/domain/index.ts'
import { TallyError, canonicalJson } from '../../src/domain/index.ts'

const acct = (s: string) => s as AccountAddress
const asset = (s: string) => s as Asset
const ACCOUNTS = ['world', 'users:1', 'users:2', 'users:3', 'bank'] as const
const ASSETS = ['USD/2', 'EUR', 'BTC/8'] as const

/** A fixed clock: stores built twice from the same workload are byte-identical. */
export function clock(start = Date.UTC(2026, 0, 1)): () => number {
  let t = start
  return () => (t += 1000)
}

export type Step =
  | { kind: 'send'; ledger: number; postings: { from: number; to: number; amount: bigint; asset: number }[]; force: boolean; reference: number | null; meta: string | null; accountMeta: number | null; ik: string | null; schema?: string | null }
  | { kind: 'revert'; ledger: number; target: number; force: boolean; atEffectiveDate: boolean }
  | { kind: 'txMeta'; ledger: number; target: number; value: string | null }
  | { kind: 'accountMeta'; ledger: number; account: number; value: string | null }
  | { kind: 'ledgerMeta'; ledger: number; value: string | null }
  | { kind: 'bulk'; ledger: number; size: number; atomic: boolean; continueOnFailure: boolean; seed: number }
  | { kind: 'schema'; ledger: number; version: string }
  /** An exporter, a pipeline of the ledger to it, stopped (the check replays the orders; nothing delivers here). */
  | { kind: 'outputs'; ledger: number }

const posting = fc.record({ from: fc.integer({ min: 0, max: 4 }), to: fc.integer({ min: 0, max: 4 }), amount: fc.bigInt({ min: 0n, max: 50n }), asset: fc.integer({ min: 0, max: 2 }) })

export const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('send' as const), ledger: fc.integer({ min: 0, max: 1 }), postings: fc.array(posting, { minLength: 1, maxLength: 3 }), force: fc.boolean(), reference: fc.option(fc.integer({ min: 0, max: 5 }), { nil: null }), meta: fc.option(fc.string({ maxLength: 3 }), { nil: null }), accountMeta: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }), ik: fc.option(fc.constantFrom('k1', 'k2', 'k3'), { nil: null }), schema: fc.option(fc.constantFrom('v1', 'v2'), { nil: null }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('revert' as const), ledger: fc.integer({ min: 0, max: 1 }), target: fc.nat({ max: 20 }), force: fc.boolean(), atEffectiveDate: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('txMeta' as const), ledger: fc.integer({ min: 0, max: 1 }), target: fc.nat({ max: 20 }), value: fc.option(fc.string({ maxLength: 3 }), { nil: null }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('accountMeta' as const), ledger: fc.integer({ min: 0, max: 1 }), account: fc.integer({ min: 1, max: 4 }), value: fc.option(fc.string({ maxLength: 3 }), { nil: null }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ledgerMeta' as const), ledger: fc.integer({ min: 0, max: 1 }), value: fc.option(fc.string({ maxLength: 3 }), { nil: null }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bulk' as const), ledger: fc.integer({ min: 0, max: 1 }), size: fc.integer({ min: 1, max: 6 }), atomic: fc.boolean(), continueOnFailure: fc.boolean(), seed: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('schema' as const), ledger: fc.integer({ min: 0, max: 1 }), version: fc.constantFrom('v1', 'v2') }) },
)

/** A chart holding some of the workload's accounts: `users:3` and `bank` are outside it under v1. */
function schemaData(version: string): { [key: string]: Json } {
  const users: Json = version === 'v1' ? { $id: { '.pattern': '^[12]$' } } : { $id: {} }
  return { chart: { world: {}, users, ...(version === 'v1' ? {} : { bank: {} }) } }
}

const ledgerName = (i: number) => (i === 0 ? 'main' : 'other') as LedgerName

function stepOrders(step: Step): ProposedOrder[] {
  const ledger = ledgerName(step.ledger)
  switch (step.kind) {
    case 'send': {
      const order: Order = {
        type: 'CREATE_TRANSACTION',
        ledger,
        postings: step.postings.map((p) => ({ source: acct(ACCOUNTS[p.from] as string), destination: acct(ACCOUNTS[p.to] as string), amount: p.amount, asset: asset(ASSETS[p.asset] as string) })),
        ...(step.reference === null ? {} : { reference: `ref-${step.reference}` }),
        metadata: step.meta === null ? {} : { note: step.meta },
        accountMetadata: step.accountMeta === null ? {} : { [ACCOUNTS[step.accountMeta] as string]: { seen: 'yes' } },
        force: step.force,
        ...(step.schema === undefined || step.schema === null ? {} : { schemaVersion: step.schema }),
      }
      return [{ order, ...(step.ik === null ? {} : { idempotencyKey: step.ik, requestHash: canonicalJson(order) }) }]
    }
    case 'revert':
      return [{ order: { type: 'REVERT_TRANSACTION', ledger, id: BigInt(step.target), force: step.force, atEffectiveDate: step.atEffectiveDate, metadata: {} } }]
    case 'txMeta':
      return [{ order: step.value === null ? { type: 'DELETE_TRANSACTION_METADATA', ledger, id: BigInt(step.target), key: 'tag' } : { type: 'SAVE_TRANSACTION_METADATA', ledger, id: BigInt(step.target), metadata: { tag: step.value } } }]
    case 'accountMeta': {
      const address = acct(ACCOUNTS[step.account] as string)
      return [{ order: step.value === null ? { type: 'DELETE_ACCOUNT_METADATA', ledger, address, key: 'tag' } : { type: 'SAVE_ACCOUNT_METADATA', ledger, address, metadata: { tag: step.value } } }]
    }
    case 'ledgerMeta':
      return [{ order: step.value === null ? { type: 'DELETE_LEDGER_METADATA', ledger, key: 'tag' } : { type: 'SAVE_LEDGER_METADATA', ledger, metadata: { tag: step.value } } }]
    case 'bulk': {
      const orders: ProposedOrder[] = []
      for (let i = 0; i < step.size; i++) {
        const from = (step.seed + i) % 5
        orders.push({ order: { type: 'CREATE_TRANSACTION', ledger, postings: [{ source: acct(ACCOUNTS[from] as string), destination: acct(ACCOUNTS[(from + 1 + i) % 5] as string), amount: BigInt((step.seed + i * 7) % 40), asset: asset('USD/2') }], metadata: {}, accountMetadata: {}, force: false } })
      }
      return orders
    }
    case 'schema':
      return [{ order: { type: 'INSERT_SCHEMA', ledger, version: step.version, data: schemaData(step.version) } }]
    case 'outputs':
      return [
        { order: { type: 'PUT_EXPORTER', id: `exporter-${ledger}`, driver: 'stdout', config: { batchSize: 10n }, update: false } },
        { order: { type: 'PUT_PIPELINE', ledger, id: `pipeline-${ledger}`, exporterID: `exporter-${ledger}` } },
        { order: { type: 'SET_PIPELINE_ENABLED', ledger, id: `pipeline-${ledger}`, enabled: false } },
      ]
    default: {
      const never: never = step
      throw new Error(`unknown step ${JSON.stringify(never)}`)
    }
  }
}

/** Submits, retrying what the contract says a client retries (503s). */
export async function submit(node: LedgerNode, orders: readonly ProposedOrder[], options: { atomic: boolean; continueOnFailure: boolean }): Promise<void> {
  for (;;) {
    try {
      await node.admission.submit(orders, options)
      return
    } catch (error) {
      if (!(error instanceof TallyError) || error.kind !== 'unavailable') throw error
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
}

/** Runs a workload: two ledgers, then the steps, some of them concurrently (admission plans against a moving cache). */
export async function runWorkload(node: LedgerNode, steps: readonly Step[]): Promise<void> {
  for (const ledger of ['main', 'other'] as LedgerName[]) {
    await submit(node, [{ order: { type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: { created: ledger }, features: {} } }], { atomic: true, continueOnFailure: false })
  }
  let pending: Promise<void>[] = []
  for (const [i, step] of steps.entries()) {
    const options = step.kind === 'bulk' ? { atomic: step.atomic, continueOnFailure: step.continueOnFailure } : { atomic: true, continueOnFailure: false }
    pending.push(submit(node, stepOrders(step), options))
    if (i % 4 === 3) {
      await Promise.all(pending)
      pending = []
    }
  }
  await Promise.all(pending)
}

/** A fixed workload touching every projection kind but outputs: volumes, accounts, transactions, references, ledgers, idempotency, schemas, logs. */
export const FIXED_STEPS: readonly Step[] = [
  { kind: 'send', ledger: 0, postings: [{ from: 0, to: 1, amount: 100n, asset: 0 }], force: false, reference: 1, meta: 'first', accountMeta: 1, ik: 'k1' },
  { kind: 'send', ledger: 0, postings: [{ from: 1, to: 2, amount: 30n, asset: 0 }, { from: 0, to: 3, amount: 5n, asset: 1 }], force: false, reference: 2, meta: null, accountMeta: null, ik: null },
  { kind: 'send', ledger: 1, postings: [{ from: 0, to: 4, amount: 7n, asset: 2 }], force: false, reference: null, meta: null, accountMeta: null, ik: 'k2' },
  { kind: 'revert', ledger: 0, target: 1, force: false, atEffectiveDate: false },
  { kind: 'txMeta', ledger: 0, target: 0, value: 'x' },
  { kind: 'accountMeta', ledger: 0, account: 2, value: 'y' },
  { kind: 'accountMeta', ledger: 0, account: 2, value: null },
  { kind: 'ledgerMeta', ledger: 0, value: 'z' },
  { kind: 'bulk', ledger: 0, size: 5, atomic: false, continueOnFailure: true, seed: 3 },
  { kind: 'send', ledger: 0, postings: [{ from: 0, to: 1, amount: 100n, asset: 0 }], force: false, reference: 1, meta: 'first', accountMeta: 1, ik: 'k1' },
  { kind: 'revert', ledger: 0, target: 1, force: false, atEffectiveDate: false },
  { kind: 'send', ledger: 0, postings: [{ from: 3, to: 1, amount: 1000n, asset: 0 }], force: false, reference: null, meta: null, accountMeta: null, ik: null },
  // A schema on the second ledger: a write naming it, one breaking it, one naming none (SCHEMA_NOT_SPECIFIED).
  { kind: 'schema', ledger: 1, version: 'v1' },
  { kind: 'send', ledger: 1, postings: [{ from: 0, to: 1, amount: 3n, asset: 0 }], force: false, reference: null, meta: null, accountMeta: null, ik: null, schema: 'v1' },
  { kind: 'send', ledger: 1, postings: [{ from: 0, to: 3, amount: 3n, asset: 0 }], force: false, reference: null, meta: null, accountMeta: null, ik: null, schema: 'v1' },
  { kind: 'send', ledger: 1, postings: [{ from: 0, to: 1, amount: 3n, asset: 0 }], force: false, reference: null, meta: null, accountMeta: null, ik: null },
]

/** FIXED_STEPS then an exporter and a pipeline: the outputs attribute too (kept apart: other tests depend on FIXED_STEPS' index count). */
export const FIXED_STEPS_WITH_OUTPUTS: readonly Step[] = [...FIXED_STEPS, { kind: 'outputs', ledger: 0 }]
