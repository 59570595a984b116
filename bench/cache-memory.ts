/**
 * Cache memory under big bulks (issue #9 point 9), in process (no HTTP):
 *   node --expose-gc --import tsx bench/cache-memory.ts [--proposals P] [--orders N]
 *        [--threshold K] [--budget BYTES|none] [--every E] [--accounts A]
 * Submits P proposals of N CREATE_TRANSACTION orders to new accounts (or
 * round robin to A accounts: their volumes rows are written again and again,
 * and each write's row is cached while older ones die), 4 in
 * flight, with rotation threshold K and Gen0 byte budget BYTES ("none": no
 * byte bound, the behaviour before the budget). Every E proposals it prints
 * the cache's entries and counted bytes, the heap and the ArrayBuffers'
 * memory (outside the heap: where cached rows' bytes live) after a full GC; then it
 * reopens the data directory and prints the same after the streaming restore.
 * Memory is measured here only: tests never assert on it.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import { LedgerNode } from '../src/server/index.ts'
import type { LedgerName } from '../src/domain/index.ts'
import { TallyError } from '../src/domain/index.ts'
import { depositBulks } from './deposits.ts'

const { values } = parseArgs({
  options: {
    proposals: { type: 'string' },
    orders: { type: 'string' },
    threshold: { type: 'string' },
    budget: { type: 'string' },
    every: { type: 'string' },
    accounts: { type: 'string' },
  },
})
const proposals = Number(values.proposals ?? 200)
const ordersPerProposal = Number(values.orders ?? 1000)
const threshold = Number(values.threshold ?? 1000)
const budget = values.budget === 'none' ? null : Number(values.budget ?? 64 * 1024 * 1024)
const every = Number(values.every ?? 25)
const gc = (globalThis as { gc?: () => void }).gc
const MiB = 1024 * 1024

const directory = mkdtempSync(path.join(os.tmpdir(), 'tally-cache-memory-'))
const ledger = 'bench' as LedgerName
const options = { dataDirectory: directory, sync: false, cacheRotationThreshold: threshold, cacheGenerationBytesMax: budget }

function report(label: string, node: LedgerNode): void {
  gc?.()
  const size = node.cache.size
  const bytes = node.cache.bytes
  // ArrayBuffers live outside the heap: a cached row that is a view into a larger buffer shows here.
  const { heapUsed: heap, arrayBuffers } = process.memoryUsage()
  console.log(
    `${label.padEnd(22)} index ${String(node.fsm.appliedIndex).padStart(6)}  generation ${String(node.cache.generation).padStart(4)}  ` +
      `entries ${String(size.gen0 + size.gen1).padStart(9)}  counted ${((bytes.gen0 + bytes.gen1) / MiB).toFixed(1).padStart(7)} MiB  ` +
      `heap ${(heap / MiB).toFixed(1).padStart(7)} MiB  array buffers ${(arrayBuffers / MiB).toFixed(1).padStart(7)} MiB`,
  )
}

let node = await LedgerNode.open(options)
console.log(`K ${threshold}, Gen0 budget ${budget === null ? 'none' : `${(budget / MiB).toFixed(1)} MiB`}, ${proposals} proposals × ${ordersPerProposal} orders to ${values.accounts ?? 'new'} accounts, gc ${gc === undefined ? 'unavailable (pass --expose-gc)' : 'forced before each sample'}`)
await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: {}, features: {} } }], { atomic: true, continueOnFailure: false })
const orders = depositBulks(ledger, ordersPerProposal, values.accounts === undefined ? undefined : Number(values.accounts))
const started = performance.now()
let submitted = 0
let completed = 0
let retried = 0
async function client(): Promise<void> {
  while (submitted < proposals) {
    const batch = orders()
    submitted++
    for (;;) {
      try {
        await node.admission.submit(batch, { atomic: false, continueOnFailure: true })
        break
      } catch (error) {
        if (!(error instanceof TallyError) || error.kind !== 'unavailable') throw error
        retried++
      }
    }
    if (++completed % every === 0) report(`after ${completed}`, node)
  }
}
await Promise.all([client(), client(), client(), client()])
const seconds = (performance.now() - started) / 1000
report('end of load', node)
console.log(`load: ${seconds.toFixed(1)} s, ${Math.round((proposals * ordersPerProposal) / seconds)} orders/s, ${retried} retried 503s`)
await node.close()
node = undefined as unknown as LedgerNode
gc?.()
const restoreStarted = performance.now()
node = await LedgerNode.open({ dataDirectory: directory, sync: false })
console.log(`restart: ${((performance.now() - restoreStarted) / 1000).toFixed(1)} s`)
report('after restart', node)
console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`)
await node.close()
rmSync(directory, { recursive: true, force: true })
