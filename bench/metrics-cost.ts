/**
 * What metrics cost the write path, in process (no disk noise, no HTTP client):
 *   node --import tsx bench/metrics-cost.ts [--rounds R] [--writes W]
 * 1. The hooks alone: ns per write for the calls one single-order write makes
 *    (proposal appended, WAL group, store batch, commit latency, HTTP request observed).
 * 2. Pipeline A/B: W single-order writes, 16 in flight, alternating rounds with
 *    the node reporting to ServerMetrics or to the silent observer; prints
 *    writes/s of each and the median ratio of paired rounds.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { LedgerNode, silentObserver } from '../src/server/index.ts'
import { ServerMetrics } from '../src/api/metrics.ts'
import type { AccountAddress, Asset, LedgerName } from '../src/domain/index.ts'
import { median } from './support/stats.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string' }, writes: { type: 'string' } } })
const rounds = Number(values.rounds ?? 10)
const writes = Number(values.writes ?? 4000)
const directory = mkdtempSync(path.join(os.tmpdir(), 'tally-metrics-cost-'))
const ledger = 'bench' as LedgerName
const node = await LedgerNode.open({ dataDirectory: directory, sync: false })
const metrics = new ServerMetrics(node)

// 1. hooks alone
const request = { routeOptions: { url: '/v2/:ledger/transactions' }, method: 'POST' } as unknown as FastifyRequest
const reply = { statusCode: 200, elapsedTime: 3.2 } as unknown as FastifyReply
const calls = 1_000_000
let started = performance.now()
for (let i = 0; i < calls; i++) {
  metrics.proposalAppended(1, 3, 1)
  metrics.walGroupDurable(1, 0.0002)
  metrics.batchApplied(1, 0.0001)
  metrics.proposalCommitted(0.002)
  metrics.requestAnswered(request, reply)
}
const hookNs = ((performance.now() - started) * 1e6) / calls
console.log(`hooks of one write: ${hookNs.toFixed(0)} ns`)

// 2. pipeline A/B
await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: {}, features: {} } }], { atomic: true, continueOnFailure: false })
let next = 0
async function round(): Promise<number> {
  const begin = performance.now()
  let issued = 0
  const worker = async (): Promise<void> => {
    while (issued < writes) {
      issued++
      const i = next++
      await node.admission.submit(
        [{ order: { type: 'CREATE_TRANSACTION', ledger, postings: [{ source: 'world' as AccountAddress, destination: `users:${i % 1000}` as AccountAddress, amount: 1n, asset: 'USD/2' as Asset }], metadata: {}, accountMetadata: {}, force: false } }],
        { atomic: true, continueOnFailure: false },
      )
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
  return (writes * 1000) / (performance.now() - begin)
}
await round() // warm-up
const ratios: number[] = []
const rates = { on: [] as number[], off: [] as number[] }
for (let r = 0; r < rounds; r++) {
  // ABBA order, so drift in the machine's load does not favour one side.
  const order = r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)
  const pair = { on: 0, off: 0 }
  for (const side of order) {
    node.observe(side === 'on' ? metrics : silentObserver)
    pair[side] = await round()
    rates[side].push(pair[side])
  }
  ratios.push(pair.on / pair.off)
}
console.log(`writes/s with metrics: median ${median(rates.on).toFixed(0)}; without: median ${median(rates.off).toFixed(0)}`)
console.log(`paired ratios (on/off): ${ratios.map((ratio) => ratio.toFixed(3)).join(' ')}; median ${median(ratios).toFixed(3)}`)
started = performance.now()
await node.close()
rmSync(directory, { recursive: true, force: true })
