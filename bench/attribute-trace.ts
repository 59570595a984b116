/**
 * Attributes one run's slow requests offline, from the files
 * `bench/half-load.ts --attribute p99 --keep-traces DIR` keeps (issue 12
 * target 3): the server's timeline (`TALLY_LATENCY_TRACE`) and the load
 * generator's record of each request (`tally bench --latency-log`).
 *
 *   node --import tsx bench/attribute-trace.ts --trace T.json --requests R.json [--slow MS|p99] [--title TEXT]
 *
 * Prints the client's and the server's view (`formatAttribution`), then what
 * a write waits once its WAL group is durable: for each store write, the
 * time from the end of the last fdatasync before it to the write's end (the
 * apply when it runs after durability, the store write, the turns between).
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { readLatencyTraceFile, type LatencyTraceFile } from '../src/server/index.ts'
import { attribute, formatAttribution } from './support/latency-attribution.ts'

const { values } = parseArgs({ options: { trace: { type: 'string' }, requests: { type: 'string' }, slow: { type: 'string' }, title: { type: 'string' } } })
if (values.trace === undefined || values.requests === undefined) throw new Error('--trace FILE --requests FILE')
const slow = values.slow === undefined || values.slow === 'p99' ? 'p99' : Number(values.slow)
const events = readLatencyTraceFile(JSON.parse(readFileSync(values.trace, 'utf8')) as LatencyTraceFile)
const logged = (JSON.parse(readFileSync(values.requests, 'utf8')) as { requests: [number, number, number][] }).requests
const requests = logged.map(([fromMs, sentMs, answeredMs]) => ({ fromMs, sentMs, answeredMs }))
const firstMs = Math.min(...requests.map((request) => request.fromMs))
const lastMs = Math.max(...requests.map((request) => request.answeredMs))
const inWindow = events.filter((event) => event.startMs >= firstMs && event.endMs <= lastMs)
const served = inWindow.filter((event) => event.kind === 'request').map((event) => ({ fromMs: event.startMs, sentMs: event.startMs, answeredMs: event.endMs }))
console.log(formatAttribution(values.title ?? values.requests, attribute(requests, events, slow), attribute(served, events, slow)).join('\n'))

const fsyncEnds = events
  .filter((event) => event.kind === 'wal-fsync')
  .map((event) => event.endMs)
  .sort((a, b) => a - b)
const afterDurable: number[] = []
for (const write of inWindow.filter((event) => event.kind === 'store-write')) {
  let low = 0
  let high = fsyncEnds.length
  while (low < high) {
    const middle = (low + high) >> 1
    if ((fsyncEnds[middle] as number) <= write.startMs) low = middle + 1
    else high = middle
  }
  const durableMs = fsyncEnds[low - 1]
  if (durableMs !== undefined) afterDurable.push(write.endMs - durableMs)
}
afterDurable.sort((a, b) => a - b)
const at = (p: number): string => (afterDurable[Math.min(afterDurable.length - 1, Math.max(0, Math.ceil(p * afterDurable.length) - 1))] ?? Number.NaN).toFixed(2)
console.log('')
console.log(
  `From a WAL group's fdatasync end to its store write's end, over ${afterDurable.length} store writes: p50 ${at(0.5)} / p90 ${at(0.9)} / p99 ${at(0.99)} / max ${at(1)} ms, ` +
    `${(afterDurable.reduce((sum, value) => sum + value, 0) / 1000).toFixed(2)} s in all.`,
)
