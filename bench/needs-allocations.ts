/**
 * Allocation and time of planning one deposit order's keys (`needsOf`), the
 * shape `bench/bulk-apply.ts` submits:
 *   node --import tsx bench/needs-allocations.ts [--orders N] [--heap-sample FILE]
 */
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import { needsOf } from '../src/orders/index.ts'
import type { LedgerName } from '../src/domain/index.ts'
import { depositBulks } from './deposits.ts'
import { startAllocationSampling } from './allocation-sampling.ts'

const { values } = parseArgs({ options: { orders: { type: 'string' }, 'heap-sample': { type: 'string' } } })
const count = Number(values.orders ?? 200_000)
const orders = depositBulks('bench' as LedgerName, count, 10_000)().map((proposed) => proposed.order)
let keys = 0
for (const order of orders.slice(0, 20_000)) keys += needsOf(order, () => 'unknown').keys.length
const sampling = values['heap-sample'] === undefined ? undefined : await startAllocationSampling(256)
const started = performance.now()
for (const order of orders) keys += needsOf(order, () => 'unknown').keys.length
const elapsed = performance.now() - started
console.log(`${count} orders: ${((elapsed * 1000) / count).toFixed(3)} µs per order (${keys} keys)`)
if (sampling !== undefined) await sampling.stop(values['heap-sample'] as string, count, 'order')
