/**
 * The audit entry of one `_bulk` proposal, in isolation: `chainEntry` over a
 * body of 100 transaction orders and their outcomes, as the FSM writes it.
 *
 *   node --import tsx bench/audit-entry.ts [--root DIR] [--bulk-size 100] [--iterations 2000] [--rounds 5]
 *
 * --root points at another checkout so that two versions are timed
 * alternately in one run; the best round is printed, in ns per transaction.
 */
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type { Json } from '../src/domain/index.ts'

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: path.resolve(import.meta.dirname, '..') },
    'bulk-size': { type: 'string', default: '100' },
    iterations: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
  },
})
const root = path.resolve(values.root)
const audit = (await import(pathToFileURL(path.join(root, 'src/audit/chain.ts')).href)) as typeof import('../src/audit/chain.ts')
const bulkSize = Number(values['bulk-size'])

// Shaped like a bulk element's audited order and outcome (amounts as the canonical printer takes them).
const orders: Json[] = Array.from({ length: bulkSize }, (_, i) => ({
  order: {
    type: 'CREATE_TRANSACTION',
    ledger: 'bench',
    postings: [{ source: `users:${i * 7 % 1000}`, destination: `users:${i * 13 % 1000}`, amount: '1', asset: 'USD/2' }],
    metadata: {},
    accountMetadata: {},
    force: false,
  },
}))
const outcome: Json[] = Array.from({ length: bulkSize }, (_, i) => ({ status: 'applied', transactionId: String(1_000_000 + i), logId: String(2_000_000 + i) }))

const iterations = Number(values.iterations)
let sink = 0
function round(): number {
  let head = audit.GENESIS
  const started = process.hrtime.bigint()
  for (let index = 0; index < iterations; index++) {
    const entry = audit.chainEntry('bench-cluster', head, {
      index: index + 1,
      date: '2026-12-06T12:00:00.000Z',
      proposalId: `p${index}`,
      orders,
      atomic: false,
      continueOnFailure: false,
      outcome,
      idempotencyKeys: [],
    })
    head = { seq: entry.seq, hash: entry.hash }
    const stored = entry as unknown as { row?: Buffer; text?: string }
    sink += stored.row?.length ?? stored.text?.length ?? 0 // a row since ADR 0009, text before (--root)
  }
  return Number(process.hrtime.bigint() - started) / (iterations * bulkSize)
}

const rounds = Array.from({ length: Number(values.rounds) }, round)
console.log(JSON.stringify({ root, bulkSize, iterations, nsPerTransaction: Math.min(...rounds), rounds: rounds.map((value) => Math.round(value)), sink }))
