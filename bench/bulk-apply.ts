/**
 * In-process pipeline throughput for bulk proposals (no HTTP):
 *   node --import tsx bench/bulk-apply.ts [--proposals P] [--orders N] [--sync] [--cache-rotation K] [--idempotency-keys] [--heap-sample FILE]
 * Submits P proposals of N CREATE_TRANSACTION orders, 4 in flight, and
 * prints orders/s and the process's CPU per order (all threads, and the
 * JavaScript thread alone, from /proc). Isolates admission + WAL + FSM +
 * store from HTTP. A small
 * `--cache-rotation` (the cache's rotation threshold) makes most rows leave
 * the cache between uses, so proposals carry them as seeds.
 * `--idempotency-keys` gives every order its own idempotency key (a bulk
 * element's `ik`): each order also writes an idempotency record.
 *
 * `--heap-sample FILE` samples allocations during the measured run (V8's
 * sampling heap profiler, objects the GC collected included) and writes the
 * profile to FILE (open it in Chrome DevTools' Memory tab), and prints the
 * bytes allocated per order and the heaviest allocating functions. Sampling
 * costs CPU: compare CPU figures from runs without it.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import { LedgerNode } from '../src/server/index.ts'
import type { LedgerName } from '../src/domain/index.ts'
import { depositBulks } from './deposits.ts'
import { readServerCpu } from '../src/bench/cpu.ts'
import { startAllocationSampling } from './allocation-sampling.ts'

const { values } = parseArgs({ options: { proposals: { type: 'string' }, orders: { type: 'string' }, sync: { type: 'boolean' }, 'cache-rotation': { type: 'string' }, 'idempotency-keys': { type: 'boolean' }, 'heap-sample': { type: 'string' } } })
const proposals = Number(values.proposals ?? 40)
const ordersPerProposal = Number(values.orders ?? 1000)
const directory = mkdtempSync(path.join(os.tmpdir(), 'tally-bulk-apply-'))
const ledger = 'bench' as LedgerName
const rotation = values['cache-rotation'] === undefined ? {} : { cacheRotationThreshold: Number(values['cache-rotation']) }
const node = await LedgerNode.open({ dataDirectory: directory, sync: values.sync === true, ...rotation })
await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: {}, features: {} } }], { atomic: true, continueOnFailure: false })
const orders = depositBulks(ledger, ordersPerProposal, 10_000, values['idempotency-keys'] === true)
const sampling = values['heap-sample'] === undefined ? undefined : await startAllocationSampling()
const cpuBefore = readServerCpu(process.pid)
const started = performance.now()
let submitted = 0
async function client(): Promise<void> {
  while (submitted < proposals) {
    submitted++
    await node.admission.submit(orders(), { atomic: false, continueOnFailure: true })
  }
}
await Promise.all([client(), client(), client(), client()])
const seconds = (performance.now() - started) / 1000
const cpuAfter = readServerCpu(process.pid)
const total = proposals * ordersPerProposal
const cpu =
  cpuBefore === undefined || cpuAfter === undefined
    ? ''
    : `; CPU ${((cpuAfter.micros - cpuBefore.micros) / total).toFixed(1)} µs/order (JavaScript thread ${((cpuAfter.mainThreadMicros - cpuBefore.mainThreadMicros) / total).toFixed(1)})`
console.log(`${proposals} proposals × ${ordersPerProposal} orders in ${seconds.toFixed(2)} s: ${Math.round(total / seconds)} orders/s (sync ${values.sync === true}${values['idempotency-keys'] === true ? ', idempotency keys' : ''})${cpu}`)
if (sampling !== undefined) await sampling.stop(values['heap-sample'] as string, total, 'order')
await node.close()
rmSync(directory, { recursive: true, force: true })
