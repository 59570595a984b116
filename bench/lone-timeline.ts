/**
 * Where a lone write's time goes, request by request, from one closed-loop
 * run at one connection (issue 12 target 2): the server's latency trace
 * (`TALLY_LATENCY_TRACE`) joined with the load generator's record of each
 * request (`tally bench --latency-log`).
 *
 *   TALLY_LATENCY_TRACE=/tmp/t.json tally serve --data DIR --listen 127.0.0.1:PORT &
 *   tally bench --target http://127.0.0.1:PORT --workload transactions --concurrency 1 --duration 5 --latency-log /tmp/r.json
 *   kill -INT %1    # the trace is written at shutdown
 *   node --import tsx bench/lone-timeline.ts --trace /tmp/t.json --requests /tmp/r.json
 *
 * For each request the server saw whose gathering, fdatasync and store write
 * it can place (one client: one of each per request), prints the p10 / p50 /
 * p90 of each step, in order: arrival (fastify's `onRequest`) → gathering
 * opened (admission) → appended → the WAL group's fdatasync started → ended →
 * store write → `onResponse`; the FSM's apply, which runs beside the
 * fdatasync; and from the client's side its send → the server's arrival, and
 * the last fdatasync's end → the client's answer (what a write waits once it
 * is durable, as its client sees it: the answer, the store write if it comes
 * first, the wake-ups). Times are wall-clock in both files.
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { readLatencyTraceFile, type LatencyTraceEvent, type LatencyTraceFile, type LatencyTraceKind } from '../src/server/index.ts'
import { firstNotBefore } from './support/latency-attribution.ts'

const { values } = parseArgs({ options: { trace: { type: 'string' }, requests: { type: 'string' } } })
if (values.trace === undefined || values.requests === undefined) throw new Error('--trace FILE --requests FILE')
const events = readLatencyTraceFile(JSON.parse(readFileSync(values.trace, 'utf8')) as LatencyTraceFile)
const logged = (JSON.parse(readFileSync(values.requests, 'utf8')) as { requests: [number, number, number][] }).requests
const sent = logged.map(([, sentMs, answeredMs]) => ({ sentMs, answeredMs })).sort((a, b) => a.sentMs - b.sentMs)
const firstMs = sent[0]?.sentMs ?? 0
const lastMs = sent.at(-1)?.answeredMs ?? 0

const byKind = new Map<LatencyTraceKind, LatencyTraceEvent[]>()
for (const event of events) {
  const list = byKind.get(event.kind) ?? []
  list.push(event)
  byKind.set(event.kind, list)
}
for (const list of byKind.values()) list.sort((a, b) => a.startMs - b.startMs)
const of = (kind: LatencyTraceKind): LatencyTraceEvent[] => byKind.get(kind) ?? []

/** Events of `kind` that start at or after `fromMs` and before `toMs`. */
function startingIn(kind: LatencyTraceKind, fromMs: number, toMs: number): LatencyTraceEvent[] {
  const list = of(kind)
  const found: LatencyTraceEvent[] = []
  for (let i = firstNotBefore(list, (event) => event.startMs < fromMs); i < list.length && (list[i] as LatencyTraceEvent).startMs < toMs; i++) found.push(list[i] as LatencyTraceEvent)
  return found
}

const steps = new Map<string, number[]>()
const add = (step: string, ms: number): void => {
  const list = steps.get(step) ?? []
  list.push(ms)
  steps.set(step, list)
}
let placed = 0
let unplaced = 0
const requests = of('request').filter((request) => request.startMs >= firstMs && request.endMs <= lastMs)
for (const request of requests) {
  const gathering = startingIn('gather', request.startMs, request.endMs)
  const fsyncs = startingIn('wal-fsync', request.startMs, request.endMs)
  // A store write starts before `onResponse` whichever goes first, the answer or the write.
  const writes = startingIn('store-write', request.startMs, request.endMs)
  const applies = startingIn('apply', request.startMs, request.endMs)
  const [gather] = gathering
  const [write] = writes
  const firstSync = fsyncs[0]
  const lastSync = fsyncs.at(-1)
  if (gathering.length !== 1 || gather === undefined || firstSync === undefined || lastSync === undefined || writes.length !== 1 || write === undefined) {
    unplaced++
    continue
  }
  placed++
  add('arrival → gathering opened', gather.startMs - request.startMs)
  add('gathering: plan, encode, append', gather.endMs - gather.startMs)
  add('append → fdatasync started', firstSync.startMs - gather.endMs)
  add('fdatasync', lastSync.endMs - firstSync.startMs)
  add('fdatasync end → store write started', write.startMs - lastSync.endMs)
  add('store write (with the answers when they go first)', write.endMs - write.startMs)
  add('fdatasync end → onResponse', request.endMs - lastSync.endMs)
  add('arrival → onResponse', request.endMs - request.startMs)
  if (applies.length > 0) add('apply (beside the fdatasync)', applies.reduce((sum, apply) => sum + apply.endMs - apply.startMs, 0))
}
const arrivals = requests.map((request) => request.startMs)
const syncEnds = of('wal-fsync').map((sync) => sync.endMs)
/** Index of the first value ≥ `ms` in sorted `list`. */
function firstAtOrAfter(list: readonly number[], ms: number): number {
  let low = 0
  let high = list.length
  while (low < high) {
    const middle = (low + high) >> 1
    if ((list[middle] as number) < ms) low = middle + 1
    else high = middle
  }
  return low
}
for (const { sentMs, answeredMs } of sent) {
  add('client: send → answer', answeredMs - sentMs)
  const arrival = arrivals[firstAtOrAfter(arrivals, sentMs - 0.05)]
  if (arrival !== undefined && arrival <= answeredMs) add('client send → server arrival', arrival - sentMs)
  const lastSync = firstAtOrAfter(syncEnds, answeredMs) - 1
  const syncEnd = syncEnds[lastSync]
  if (syncEnd !== undefined && syncEnd >= sentMs) add('fdatasync end → client answered', answeredMs - syncEnd)
}

const micros = (list: readonly number[], p: number): string => ((list[Math.min(list.length - 1, Math.floor(p * list.length))] ?? Number.NaN) * 1000).toFixed(0)
console.log(`${placed} server requests placed (${unplaced} not: no single gathering, fdatasync and store write within them), ${sent.length} client requests`)
console.log('| step | n | p10 µs | p50 µs | p90 µs |\n| --- | --- | --- | --- | --- |')
for (const [step, list] of steps) {
  list.sort((a, b) => a - b)
  console.log(`| ${step} | ${list.length} | ${micros(list, 0.1)} | ${micros(list, 0.5)} | ${micros(list, 0.9)} |`)
}
