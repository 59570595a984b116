/**
 * Admission's planning of one `_bulk` of postings-only transactions, in isolation.
 *
 *   node --import tsx bench/planning.ts [--root DIR] [--bulk-size 100] [--accounts 1000] [--iterations 2000] [--rounds 5]
 *
 * Plans bulks of transfers between random existing accounts with
 * `planRound` on a complete lookup (what the cache answers on a warm
 * ledger), as admission does before every append. --root points at another
 * checkout so that two versions are timed alternately in one run; the best
 * round is printed, in ns per transaction.
 */
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type { AccountAddress, Asset, AttributeValue, CanonicalKey, LedgerName } from '../src/domain/index.ts'
import type { KnownValue, Order, ProposedOrder } from '../src/orders/index.ts'

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: path.resolve(import.meta.dirname, '..') },
    'bulk-size': { type: 'string', default: '100' },
    accounts: { type: 'string', default: '1000' },
    iterations: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
  },
})
const root = path.resolve(values.root)
const admission = (await import(pathToFileURL(path.join(root, 'src/admission/speculation.ts')).href)) as typeof import('../src/admission/speculation.ts')
const L = 'bench' as LedgerName
const USD = 'USD/2' as Asset
const DATE = '2026-12-06T12:00:00.000Z'
const accounts = Array.from({ length: Number(values.accounts) }, (_, i) => `users:${i}` as AccountAddress)

function send(source: AccountAddress, destination: AccountAddress, amount: bigint): Order {
  return { type: 'CREATE_TRANSACTION', ledger: L, postings: [{ source, destination, amount, asset: USD }], metadata: {}, accountMetadata: {}, force: false }
}

// A warm ledger: opened, every account funded; built with the planner's own speculative run.
const state = new Map<CanonicalKey, AttributeValue>()
const read = (key: CanonicalKey): KnownValue => state.get(key) ?? null
const setup: Order[] = [{ type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} }, ...accounts.map((account) => send('world' as AccountAddress, account, 1_000_000n))]
for (const order of setup) admission.speculate(order, DATE, undefined, read, state)

// Deterministic pseudo-random pairs (a linear congruential walk), the same in every run.
let seed = 12345
const next = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648)
const bulkSize = Number(values['bulk-size'])
const bulks: ProposedOrder[][] = Array.from({ length: 64 }, () =>
  Array.from({ length: bulkSize }, () => ({ order: send(accounts[next() % accounts.length] as AccountAddress, accounts[next() % accounts.length] as AccountAddress, 1n) })),
)

const iterations = Number(values.iterations)
let sink = 0
function round(): number {
  const started = process.hrtime.bigint()
  for (let index = 0; index < iterations; index++) {
    const planned = admission.planRound(bulks[index & 63] as ProposedOrder[], DATE, read)
    for (const needs of planned) sink += needs.keys.length
  }
  return Number(process.hrtime.bigint() - started) / (iterations * bulkSize)
}

const rounds = Array.from({ length: Number(values.rounds) }, round)
console.log(JSON.stringify({ root, bulkSize, iterations, nsPerTransaction: Math.min(...rounds), rounds: rounds.map((value) => Math.round(value)), sink }))
