/**
 * Single transactions below the peak (issue 12 target 3): open-loop load at
 * fixed rates against a fresh `tally serve`, for several builds or settings
 * alternated in one run, with what the server's metrics say about each run:
 * the WAL's fdatasync per group, GC pauses, the longest event-loop delay and
 * stalls.
 *
 *   node --import tsx bench/half-load.ts --variant NAME=ROOT[:serve args] ...
 *   (a serve argument written node:FLAG is given to node instead, e.g. node:--max-semi-space-size=64)
 *     [--rates 1000,2500] [--duration S] [--rounds R] [--concurrency C]
 *     [--workload bulk --bulk-size B]   (rates are then requests/s, each of B transactions)
 *     [--attribute MS|p99 [--keep-traces DIR]]   (also: what the requests of MS or more, or the slowest 1 %, overlapped
 *                             on the server's timeline, TALLY_LATENCY_TRACE; a build without the trace prints none)
 *
 * e.g. --variant 'base=/tmp/base-latency' --variant 'zeros=.' \
 *      --variant 'appending=.:--wal-preallocate-bytes 0'
 *
 * Each round runs every variant once, in turn: a fresh data directory, a
 * short warm-up at the first rate (not measured), then each rate for S
 * seconds (`tally bench` from this checkout, so the client is the same for
 * every variant). Prints one Markdown row per variant, round and rate.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { serveTally, tallyBench } from './support/serve.ts'
import { attribute, formatAttribution, type Attribution, type TimedRequest } from './support/latency-attribution.ts'
import { readLatencyTraceFile, type LatencyTraceFile } from '../src/server/index.ts'

function argumentsOf(name: string): string[] {
  const values: string[] = []
  process.argv.forEach((value, at) => {
    if (value === name && process.argv[at + 1] !== undefined) values.push(process.argv[at + 1] as string)
  })
  return values
}

const here = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const rates = (argumentsOf('--rates')[0] ?? '1000,2500').split(',').map(Number)
const duration = Number(argumentsOf('--duration')[0] ?? '15')
const rounds = Number(argumentsOf('--rounds')[0] ?? '2')
const concurrency = Number(argumentsOf('--concurrency')[0] ?? '64')
const workload = argumentsOf('--workload')[0] ?? 'transactions'
const bulkSize = argumentsOf('--bulk-size')[0] ?? '100'
const attributeText = argumentsOf('--attribute')[0]
/** With --attribute: the trace and request logs are copied here, named by variant, round and rate. */
const keepTraces = argumentsOf('--keep-traces')[0]
const slowMs = attributeText === undefined ? undefined : attributeText === 'p99' ? 'p99' : Number(attributeText)
const variants = argumentsOf('--variant').map((text) => {
  const [name, rest] = text.split(/=(.*)/s) as [string, string]
  const [root, args] = rest.split(/:(.*)/s) as [string, string | undefined]
  const words = args === undefined || args === '' ? [] : args.split(' ')
  return {
    name,
    root: path.resolve(root),
    args: words.filter((word) => !word.startsWith('node:')),
    nodeFlags: words.filter((word) => word.startsWith('node:')).map((word) => word.slice('node:'.length)),
  }
})
if (variants.length === 0) throw new Error('at least one --variant NAME=ROOT[:serve args]')

/** Prometheus text → series name with labels → value. */
async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/_/metrics`)).text()
  const series = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue
    const at = line.lastIndexOf(' ')
    series.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return series
}

/** Percentile (upper bucket bound, ms) of a histogram's growth between two scrapes. */
function histogramPercentile(before: Map<string, number>, after: Map<string, number>, name: string, p: number, labels = ''): string {
  const buckets: { le: number; count: number }[] = []
  for (const [key, value] of after) {
    if (!key.startsWith(`${name}_bucket{`) || !key.includes(labels)) continue
    const match = /le="([^"]+)"/.exec(key)
    if (match === null) continue
    buckets.push({ le: match[1] === '+Inf' ? Infinity : Number(match[1]), count: value - (before.get(key) ?? 0) })
  }
  buckets.sort((a, b) => a.le - b.le)
  const total = buckets.at(-1)?.count ?? 0
  if (total === 0) return '–'
  const bucket = buckets.find((candidate) => candidate.count >= total * p)
  return bucket === undefined || bucket.le === Infinity ? '> max' : `≤ ${+(bucket.le * 1000).toFixed(2)}`
}

function delta(before: Map<string, number>, after: Map<string, number>, key: string): number {
  return (after.get(key) ?? 0) - (before.get(key) ?? 0)
}

async function bench(url: string, pid: number, rate: number, seconds: number, latencyLog?: string): Promise<Record<string, any>> {
  const args = [...(latencyLog === undefined ? [] : ['--latency-log', latencyLog]), '--target', url, '--workload', `${workload}:${concurrency}@${rate}`, '--bulk-size', bulkSize, '--duration', String(seconds), '--server-pid', String(pid), '--json', '--max-error-rate', '1']
  return JSON.parse(await tallyBench(here, args)) as Record<string, any>
}

async function main(): Promise<void> {
  console.log(`workload ${workload}${workload === 'bulk' ? ` of ${bulkSize}` : ''}, rates ${rates.join(', ')} requests/s, ${concurrency} connections in flight at most, ${duration} s each, ${rounds} rounds; ${os.cpus().length} CPUs`)
  console.log('')
  console.log('| variant | round | rate | tx/s | p50 / p90 / p99 / p99.9 / max ms | WAL fdatasync p50 / p99 / max ms (buckets) | GC pauses: count, total ms, longest ≤ ms | store checkpoints: count, mean ms, p50 / longest ≤ ms | store log syncs ahead | loop delay max ms | stalls ≥ 100 ms | server µs/tx (JS thread) | load |')
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  const attributions: { variant: string; round: number; rate: number; attribution: Attribution; server: Attribution }[] = []
  for (let round = 1; round <= rounds; round++) {
    for (const variant of variants) {
      const data = mkdtempSync(path.join(os.tmpdir(), 'tally-half-load-'))
      const traceFile = path.join(data, 'trace.json')
      const server = await serveTally(variant.root, path.join(data, 'data'), variant.args, variant.nodeFlags, slowMs === undefined ? {} : { TALLY_LATENCY_TRACE: traceFile })
      const requestLogs: { rate: number; requests: TimedRequest[] }[] = []
      try {
        await bench(server.url, server.pid, rates[0] ?? 1000, 3)
        for (const rate of rates) {
          const before = await scrape(server.url)
          const latencyLog = slowMs === undefined ? undefined : path.join(data, `requests-${rate}.json`)
          const report = await bench(server.url, server.pid, rate, duration, latencyLog)
          if (latencyLog !== undefined) {
            const logged = JSON.parse(readFileSync(latencyLog, 'utf8')) as { requests: [number, number, number][] }
            requestLogs.push({ rate, requests: logged.requests.map(([fromMs, sentMs, answeredMs]) => ({ fromMs, sentMs, answeredMs })) })
          }
          const after = await scrape(server.url)
          const latency = report.total.latency
          const cpu = report.cpu?.server
          const gcCount = [...after.keys()].filter((key) => key.startsWith('nodejs_gc_duration_seconds_count')).reduce((sum, key) => sum + delta(before, after, key), 0)
          const gcSum = [...after.keys()].filter((key) => key.startsWith('nodejs_gc_duration_seconds_sum')).reduce((sum, key) => sum + delta(before, after, key), 0)
          const gcLongest = ['minor', 'major', 'incremental']
            .map((kind) => histogramPercentile(before, after, 'nodejs_gc_duration_seconds', 1, `kind="${kind}"`))
            .filter((text) => text !== '–')
            .join(', ')
          const fsyncMax = histogramPercentile(before, after, 'tally_wal_fsync_duration_seconds', 1)
          const stalls = delta(before, after, 'tally_event_loop_stall_seconds_count')
          const checkpoints = delta(before, after, 'tally_store_checkpoint_duration_seconds_count')
          const checkpointLongest = histogramPercentile(before, after, 'tally_store_checkpoint_duration_seconds', 1)
          const checkpointMean = checkpoints === 0 ? Number.NaN : (delta(before, after, 'tally_store_checkpoint_duration_seconds_sum') * 1000) / checkpoints
          const syncsAhead = delta(before, after, 'tally_store_log_syncs_ahead_total{outcome="synced"}')
          const loopMax = (after.get('nodejs_eventloop_lag_max_seconds') ?? Number.NaN) * 1000
          const f = (value: number): string => value.toFixed(value < 10 ? 2 : 1)
          console.log(
            `| ${variant.name} | ${round} | ${rate} | ${Math.round(report.total.transactionsPerSecond)} | ${f(latency.p50Ms)} / ${f(latency.p90Ms)} / ${f(latency.p99Ms)} / ${f(latency.p999Ms)} / ${f(latency.maxMs)} | ${histogramPercentile(before, after, 'tally_wal_fsync_duration_seconds', 0.5)} / ${histogramPercentile(before, after, 'tally_wal_fsync_duration_seconds', 0.99)} / ${fsyncMax} | ${gcCount}, ${f(gcSum * 1000)}, ${gcLongest} | ${checkpoints}, ${Number.isNaN(checkpointMean) ? '–' : f(checkpointMean)}, ${histogramPercentile(before, after, 'tally_store_checkpoint_duration_seconds', 0.5)} / ${checkpointLongest} | ${syncsAhead} | ${f(loopMax)} | ${stalls} | ${cpu === null || cpu === undefined ? '–' : `${Math.round(cpu.microsPerTransaction)} (${Math.round(cpu.mainThreadMicrosPerTransaction)})`} | ${(os.loadavg()[0] ?? 0).toFixed(1)} |`,
          )
        }
      } finally {
        await server.stop()
        if (slowMs !== undefined && existsSync(traceFile)) {
          const events = readLatencyTraceFile(JSON.parse(readFileSync(traceFile, 'utf8')) as LatencyTraceFile)
          if (keepTraces !== undefined) {
            mkdirSync(keepTraces, { recursive: true })
            copyFileSync(traceFile, path.join(keepTraces, `${variant.name}-${round}-trace.json`))
            for (const { rate } of requestLogs) copyFileSync(path.join(data, `requests-${rate}.json`), path.join(keepTraces, `${variant.name}-${round}-requests-${rate}.json`))
          }
          for (const { rate, requests } of requestLogs) {
            // The server's own view: each request from its arrival to its answer, against the same timeline.
            const firstMs = Math.min(...requests.map((request) => request.fromMs))
            const lastMs = Math.max(...requests.map((request) => request.answeredMs))
            const served = events
              .filter((event) => event.kind === 'request' && event.startMs >= firstMs && event.endMs <= lastMs)
              .map((event) => ({ fromMs: event.startMs, sentMs: event.startMs, answeredMs: event.endMs }))
            const server = attribute(served, events, slowMs)
            attributions.push({ variant: variant.name, round, rate, attribution: attribute(requests, events, slowMs), server })
          }
        }
        rmSync(data, { recursive: true, force: true })
      }
    }
  }
  for (const { variant, round, rate, attribution, server } of attributions) console.log(['', ...formatAttribution(`${variant}, round ${round}, ${rate}/s`, attribution, server)].join('\n'))
}


main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
