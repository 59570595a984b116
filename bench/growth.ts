/**
 * Cost growth up to 10M transactions (issue 12, targets 3 and 4).
 *
 *   nice -n 5 node --import tsx bench/growth.ts [--transactions 10000000] [--segment 1000000]
 *        [--bulk-min 100] [--bulk-max 1000] [--accounts 100000] [--force-ratio 1] [--concurrency 4]
 *        [--probe-rate 20] [--healthz-rate 10] [--stall-seconds 30] [--minutes-max 110]
 *        [--dir DIR] [--keep] [--json FILE] [--seed 1]
 *
 * Starts a fresh `tally serve` with its default options on its own data
 * directory (a temporary one, or --dir, which must not exist yet) and loads
 * --transactions transactions with non-atomic `_bulk` requests of a size
 * drawn uniformly from [--bulk-min, --bulk-max], --concurrency at a time
 * (closed loop). By default every transaction is a forced transfer between
 * two of --accounts `users:k` accounts (--force-ratio below 1 funds the rest
 * from `world`, a hot account). Beside the load, in open loop (latency
 * counted from the due time, so a stall is not hidden by queueing):
 *   - single transactions at --probe-rate per second (`POST …/transactions`);
 *   - GET /_/healthz at --healthz-rate per second;
 *   - once a second, /_/metrics (`nodejs_eventloop_lag_max_seconds` is the
 *     server's longest event-loop delay since the previous scrape, heap) and
 *     the server's RSS from /proc.
 * After every --segment transactions it prints one line and records: tx/s of
 * that segment, bulk latency p50/p99/max, the probes' p50/p99/max, server
 * RSS and heap (maximum over the segment and at its end), store and WAL
 * bytes on disk, the longest event-loop delay, server and client CPU per
 * transaction (/proc; less sensitive to a shared machine than tx/s) and the
 * load average.
 *
 * After the load: a stall probe (single transactions and healthz at their
 * rates, nothing else, for --stall-seconds, starting as soon as the last bulk
 * is answered), then the restart: SIGTERM, then `tally serve` again on the
 * same directory, timed to its `listening` line (the cache restore happens
 * before it) and to the first answered transaction.
 *
 * --minutes-max bounds the loading phase: the segment running at that time
 * is cut short and recorded as partial. --json FILE is rewritten after every
 * segment, so an interrupted run keeps what it measured. The data directory
 * is deleted at the end unless --keep.
 * BENCH_SERVER_NODE_FLAGS passes node flags to the server (e.g. --cpu-prof).
 * A benchmark, not a test.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  createBulkCounter,
  createLeanHttpTransport,
  drawTransaction,
  encodeTransaction,
  ensureLedger,
  LatencyHistogram,
  ledgerPath,
  runBench,
  startCpuMeter,
  systemClock,
  transactionsWorkload,
  type HttpTransport,
  type LatencySummaryMs,
  type WorkloadDefinition,
  type WorkloadResult,
} from '../src/bench/index.ts'

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    transactions: { type: 'string', default: '10000000' },
    segment: { type: 'string', default: '1000000' },
    'bulk-min': { type: 'string', default: '100' },
    'bulk-max': { type: 'string', default: '1000' },
    accounts: { type: 'string', default: '100000' },
    'force-ratio': { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '4' },
    'probe-rate': { type: 'string', default: '20' },
    'healthz-rate': { type: 'string', default: '10' },
    'stall-seconds': { type: 'string', default: '30' },
    'minutes-max': { type: 'string', default: '110' },
    'restart-minutes-max': { type: 'string', default: '15' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    json: { type: 'string' },
    seed: { type: 'string', default: '1' },
  },
})

function positiveInteger(name: keyof typeof values): number {
  const value = Number(values[name])
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`)
  return value
}
const transactionsWanted = positiveInteger('transactions')
const segmentTransactions = Math.min(positiveInteger('segment'), transactionsWanted)
const bulkMin = positiveInteger('bulk-min')
const bulkMax = positiveInteger('bulk-max')
if (bulkMax < bulkMin || bulkMax > 10_000) throw new Error('--bulk-min ≤ --bulk-max ≤ 10000 (the server\'s default bulk bound)')
const probeRate = Number(values['probe-rate'])
const healthzRate = Number(values['healthz-rate'])
if (!(probeRate > 0 && probeRate <= 1000) || !(healthzRate > 0 && healthzRate <= 1000)) throw new Error('probe rates must be in (0, 1000] per second')
const forceRatio = Number(values['force-ratio'])
if (!(forceRatio >= 0 && forceRatio <= 1)) throw new Error('--force-ratio must be in [0, 1]')
const stallSeconds = positiveInteger('stall-seconds')
const restartTimeoutMs = Number(values['restart-minutes-max']) * 60_000
const loadDeadlineMs = performance.now() + Number(values['minutes-max']) * 60_000
const settings = { ledger: 'growth', accounts: positiveInteger('accounts'), bulkSize: bulkMax, forceRatio }
const concurrency = positiveInteger('concurrency')
const seed = positiveInteger('seed')

const workDirectory = mkdtempSync(path.join(os.tmpdir(), 'tally-growth-'))
const dataDirectory = values.dir === undefined ? path.join(workDirectory, 'data') : path.resolve(values.dir)
if (existsSync(dataDirectory)) throw new Error(`${dataDirectory} exists: the bench loads a fresh ledger`)
const serverLog = path.join(workDirectory, 'server.log')
const progress = (line: string): void => void process.stderr.write(`growth: ${line}\n`)

// ---------------------------------------------------------------- the server

interface Server {
  readonly child: ChildProcess
  readonly url: URL
  readonly pid: number
  /** From spawn to the `listening` line. */
  readonly startMs: number
}

/** Starts `tally serve`; past `timeoutMs` without a `listening` line it is killed and the start fails. */
function startServer(timeoutMs = 600_000): Promise<Server> {
  const nodeFlags = (process.env.BENCH_SERVER_NODE_FLAGS ?? '').split(' ').filter((flag) => flag !== '')
  const spawnedAt = performance.now()
  const child = spawn(process.execPath, [...nodeFlags, path.join(repositoryRoot, 'bin', 'tally.mjs'), 'serve', '--data', dataDirectory, '--listen', '127.0.0.1:0'], {
    cwd: repositoryRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  // The server's JSON log goes to a file: warnings stay readable afterwards without flooding the progress lines.
  child.stderr?.pipe(createWriteStream(serverLog, { flags: 'a' }))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`tally serve was not listening after ${Math.round(timeoutMs / 1000)} s; see ${serverLog}`))
    }, timeoutMs)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`tally serve exited (${code ?? signal}) before listening; see ${serverLog}`))
    })
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const match = /^listening (\S+):(\d+)$/.exec(line.trim())
      if (match === null || child.pid === undefined) return
      clearTimeout(timer)
      resolve({ child, url: new URL(`http://127.0.0.1:${match[2]}`), pid: child.pid, startMs: performance.now() - spawnedAt })
    })
  })
}

async function stopServer(server: Server): Promise<number> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return 0
  const started = performance.now()
  const exited = new Promise<void>((resolve) => server.child.once('exit', () => resolve()))
  server.child.kill('SIGTERM')
  await exited
  return performance.now() - started
}

/** Resident and peak resident memory of a process, from /proc (bytes). */
function residentBytes(pid: number): { rss: number; peak: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024
    return { rss: kib('VmRSS'), peak: kib('VmHWM') }
  } catch {
    return { rss: Number.NaN, peak: Number.NaN }
  }
}

/** Bytes and file count under a directory (recursive). */
function diskUsage(directory: string): { bytes: number; files: number } {
  let bytes = 0
  let files = 0
  if (!existsSync(directory)) return { bytes, files }
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name)
    try {
      if (entry.isDirectory()) {
        const inner = diskUsage(full)
        bytes += inner.bytes
        files += inner.files
      } else {
        bytes += statSync(full).size
        files += 1
      }
    } catch {
      // removed while we looked (a compacted SST file, a recycled WAL segment)
    }
  }
  return { bytes, files }
}

// ---------------------------------------------------------------- observers

/** Open-loop GET /_/healthz: request i is due at start + i / rate; latency counts from the due time. */
function startHealthzProbe(transport: HttpTransport, ratePerSecond: number): { take(): { histogram: LatencyHistogram; failures: number }; stop(): Promise<void> } {
  let histogram = new LatencyHistogram()
  let failures = 0
  let stopped = false
  const inFlight = new Set<Promise<void>>()
  const intervalMs = 1000 / ratePerSecond
  const loop = (async () => {
    const startMs = performance.now()
    for (let index = 0; !stopped; index++) {
      const dueMs = startMs + index * intervalMs
      await systemClock.sleepUntil(dueMs)
      if (stopped) break
      const sent = transport
        .send({ method: 'GET', path: '/_/healthz', body: undefined })
        .then(
          (response) => {
            if (response.status === 200) histogram.recordMs(performance.now() - dueMs)
            else failures++
          },
          () => void failures++,
        )
        .finally(() => inFlight.delete(sent))
      inFlight.add(sent)
    }
  })()
  return {
    /** The window since the previous take: latencies and failed requests. */
    take() {
      const taken = { histogram, failures }
      histogram = new LatencyHistogram()
      failures = 0
      return taken
    },
    async stop() {
      stopped = true
      await loop
      await Promise.all(inFlight)
    },
  }
}

/**
 * One unlabelled metric from a `/_/metrics` answer. The lean client sends
 * `Accept: application/json`, so the server answers v2's JSON shape
 * (`{name: {values: [{value}]}}`); the text exposition is read too.
 */
function metricValue(answer: string, name: string): number {
  if (answer.startsWith('{')) {
    try {
      const parsed = JSON.parse(answer) as Record<string, { values?: Array<{ value?: unknown }> } | undefined>
      const value = parsed[name]?.values?.[0]?.value
      return typeof value === 'number' ? value : Number.NaN
    } catch {
      return Number.NaN
    }
  }
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(answer)?.[1] ?? Number.NaN)
}

interface ServerSample {
  readonly loopLagMaxMs: number
  readonly heapUsedBytes: number
  readonly rssBytes: number
}

/** Once a second: the server's event-loop delay maximum since the last scrape, heap and RSS. Folded into a running window. */
function startSampler(transport: HttpTransport, pid: () => number): {
  take(): { loopLagMaxMs: number; heapUsedMaxBytes: number; rssMaxBytes: number; last: ServerSample | undefined; loadAverage: number[]; scrapeFailures: number }
  stop(): Promise<void>
} {
  let window = { loopLagMaxMs: 0, heapUsedMaxBytes: 0, rssMaxBytes: 0, last: undefined as ServerSample | undefined, loadAverage: [] as number[], scrapeFailures: 0 }
  let stopped = false
  const loop = (async () => {
    for (let next = performance.now() + 1000; !stopped; next += 1000) {
      await systemClock.sleepUntil(next)
      if (stopped) break
      let text = ''
      try {
        const response = await transport.send({ method: 'GET', path: '/_/metrics', body: undefined })
        if (response.status === 200) text = response.body
        else window.scrapeFailures++
      } catch {
        window.scrapeFailures++
      }
      const metric = (name: string): number => metricValue(text, name)
      const sample = { loopLagMaxMs: metric('nodejs_eventloop_lag_max_seconds') * 1000, heapUsedBytes: metric('nodejs_heap_size_used_bytes'), rssBytes: residentBytes(pid()).rss }
      if (Number.isFinite(sample.loopLagMaxMs)) window.loopLagMaxMs = Math.max(window.loopLagMaxMs, sample.loopLagMaxMs)
      if (Number.isFinite(sample.heapUsedBytes)) window.heapUsedMaxBytes = Math.max(window.heapUsedMaxBytes, sample.heapUsedBytes)
      if (Number.isFinite(sample.rssBytes)) window.rssMaxBytes = Math.max(window.rssMaxBytes, sample.rssBytes)
      window.last = sample
      window.loadAverage.push(os.loadavg()[0] ?? Number.NaN)
      if (next < performance.now() - 1000) next = performance.now() // a stalled scrape: do not catch up in a burst
    }
  })()
  return {
    take() {
      const taken = window
      window = { loopLagMaxMs: 0, heapUsedMaxBytes: 0, rssMaxBytes: 0, last: taken.last, loadAverage: [], scrapeFailures: 0 }
      return taken
    },
    async stop() {
      stopped = true
      await loop
    },
  }
}

// ---------------------------------------------------------------- the load

/**
 * `_bulk` requests of a size drawn in [bulkMin, bulkMax], shared by all
 * clients: the segment's budget of transactions is claimed as requests are
 * made, and the last request takes what is left, so a segment is exact.
 * When the budget is spent the run is aborted: the runner checks the signal
 * right before asking the next request, so no request is made past it.
 */
function segmentBulkWorkload(budget: { remaining: number; readonly done: AbortController }): WorkloadDefinition {
  return {
    name: 'growth-bulk',
    summary: `POST /v2/{ledger}/_bulk?atomic=false of ${bulkMin}–${bulkMax} transactions`,
    kind: 'write',
    createGenerator(runSettings, random) {
      const requestPath = `${ledgerPath(runSettings.ledger)}/_bulk?atomic=false`
      const count = createBulkCounter()
      return {
        next() {
          if (budget.remaining <= 0) throw new Error('a bulk was asked for after the segment budget was spent')
          const size = Math.min(budget.remaining, bulkMin + random.nextInt(bulkMax - bulkMin + 1))
          budget.remaining -= size
          if (budget.remaining === 0) budget.done.abort()
          let body = '['
          for (let index = 0; index < size; index++) {
            body += `${index === 0 ? '' : ','}{"action":"CREATE_TRANSACTION","data":${encodeTransaction(drawTransaction(runSettings, random))}}`
          }
          return { method: 'POST', path: requestPath, body: `${body}]`, operations: size }
        },
        classify: (request, response) => count(response, request.operations),
      }
    },
  }
}

// ---------------------------------------------------------------- records

const roundMs = (value: number): number => Math.round(value * 10) / 10
const latencyOf = (summary: LatencySummaryMs): { count: number; p50Ms: number; p99Ms: number; maxMs: number } => ({
  count: summary.count,
  p50Ms: roundMs(summary.p50Ms),
  p99Ms: roundMs(summary.p99Ms),
  maxMs: roundMs(summary.maxMs),
})
const mib = (bytes: number): number => Math.round(bytes / 1048576)

/**
 * The server's "event loop stalled" and "RocksDB delayed or stopped writes"
 * warnings (src/server/loop-stalls.ts) logged in [fromMs, toMs) (epoch ms),
 * summed: what held the loop in that window. Null for a build without the watch.
 */
interface StallSummary {
  readonly stalls: number
  readonly delayMaxMs: number
  readonly delaySumMs: number
  /** The most CPU one stall's window took on the JavaScript thread: the server's own share of its longest stall. */
  readonly onCpuMaxMs: number
  /** Sums over the stalled windows, ms. */
  readonly onCpuMs: number
  readonly gcMs: number
  readonly storeWritesMs: number
  readonly applyMs: number
  readonly waitingForCpuMs: number
  readonly blockedMs: number
  /** RocksDB's own write stalls, ms. */
  readonly rocksdbStallMs: number
}

function stallSummary(fromMs: number, toMs: number): StallSummary | null {
  let text: string
  try {
    text = readFileSync(serverLog, 'utf8')
  } catch {
    return null
  }
  const sums = { stalls: 0, delayMaxMs: 0, delaySumMs: 0, onCpuMaxMs: 0, onCpuMs: 0, gcMs: 0, storeWritesMs: 0, applyMs: 0, waitingForCpuMs: 0, blockedMs: 0, rocksdbStallMs: 0 }
  let watched = false
  for (const line of text.split('\n')) {
    if (!line.includes('"component":"loop"')) continue
    watched = true
    let entry: Record<string, unknown>
    try {
      entry = JSON.parse(line) as Record<string, unknown>
    } catch {
      continue
    }
    const time = Number(entry.time)
    if (!(time >= fromMs && time < toMs) || (entry.delayMs === undefined && entry.stallMs === undefined)) continue
    const figure = (name: string): number => (typeof entry[name] === 'number' ? (entry[name] as number) : 0)
    if (typeof entry.stallMs === 'number') {
      sums.rocksdbStallMs += entry.stallMs
      continue
    }
    sums.stalls++
    sums.delayMaxMs = Math.max(sums.delayMaxMs, figure('delayMs'))
    sums.delaySumMs += figure('delayMs')
    sums.onCpuMs += figure('onCpuMs')
    sums.onCpuMaxMs = Math.max(sums.onCpuMaxMs, figure('onCpuMs'))
    sums.gcMs += figure('gcMs')
    sums.storeWritesMs += figure('storeWritesMs')
    sums.applyMs += figure('applyMs')
    sums.waitingForCpuMs += figure('waitingForCpuMs')
    sums.blockedMs += figure('blockedMs')
  }
  // A build with the watch logs its start (component "loop"), stalls or not.
  return watched ? sums : null
}

const stallLine = (label: string, summary: StallSummary | null): string =>
  summary === null
    ? `${label}: no stall watch in this build`
    : `${label}: ${summary.stalls} event-loop stalls ≥ 100 ms (max ${summary.delayMaxMs} ms, ${summary.delaySumMs} ms in all); ` +
      `in their windows: JS thread on CPU ${summary.onCpuMs} ms (at most ${summary.onCpuMaxMs} in one; GC ${summary.gcMs}, store writes ${summary.storeWritesMs}, apply ${summary.applyMs}), ` +
      `waiting for a CPU ${summary.waitingForCpuMs} ms, blocked ${summary.blockedMs} ms; RocksDB write stalls ${summary.rocksdbStallMs} ms`

interface SegmentRecord {
  readonly segment: number
  readonly partial: boolean
  readonly loadedBefore: number
  readonly loadedAfter: number
  readonly seconds: number
  readonly bulkTransactions: number
  readonly transactionsPerSecond: number
  readonly bulk: ReturnType<typeof latencyOf>
  readonly bulkFailures: Readonly<Record<string, number>>
  readonly probe: ReturnType<typeof latencyOf> & { transactions: number; failures: Readonly<Record<string, number>>; startLagMsMax: number | null }
  readonly healthz: ReturnType<typeof latencyOf> & { failures: number }
  readonly serverLoopLagMaxMs: number
  readonly rssMaxMiB: number
  readonly rssEndMiB: number
  readonly heapUsedMaxMiB: number
  readonly heapUsedEndMiB: number
  readonly storeMiB: number
  readonly storeFiles: number
  readonly walMiB: number
  readonly walFiles: number
  readonly serverCpuMicrosPerTx: number | null
  readonly serverJsThreadMicrosPerTx: number | null
  readonly clientCpuMicrosPerTx: number | null
  readonly loadAverage: { min: number; mean: number; max: number }
  readonly stalls: StallSummary | null
  readonly endedAt: string
}

function spread(samples: number[]): { min: number; mean: number; max: number } {
  const finite = samples.filter(Number.isFinite)
  if (finite.length === 0) return { min: Number.NaN, mean: Number.NaN, max: Number.NaN }
  const round = (value: number): number => Math.round(value * 100) / 100
  return { min: round(Math.min(...finite)), mean: round(finite.reduce((sum, value) => sum + value, 0) / finite.length), max: round(Math.max(...finite)) }
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repositoryRoot, encoding: 'utf8' }).trim()
  } catch {
    return 'unknown'
  }
}

const record = {
  command: `node --import tsx bench/growth.ts ${process.argv.slice(2).join(' ')}`.trim(),
  commit: gitCommit(),
  startedAt: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, niceness: os.getPriority() },
  options: { transactions: transactionsWanted, segment: segmentTransactions, bulkMin, bulkMax, accounts: settings.accounts, forceRatio, concurrency, probeRate, healthzRate, stallSeconds },
  segments: [] as SegmentRecord[],
  afterLoad: undefined as unknown,
  restart: undefined as unknown,
  finishedAt: undefined as string | undefined,
}

function saveRecord(): void {
  if (values.json === undefined) return
  const temporary = `${values.json}.tmp`
  writeFileSync(temporary, `${JSON.stringify(record, null, 2)}\n`)
  renameSync(temporary, values.json)
}

const header =
  '| segment | loaded after | tx/s | bulk p50 / p99 / max ms | probe tx p50 / p99 / max ms | healthz p99 / max ms | loop delay max ms | RSS max / end MiB | heap end MiB | store / WAL MiB | server µs/tx (JS) | client µs/tx | load avg |'
function rowOf(segment: SegmentRecord): string {
  return (
    `| ${segment.segment}${segment.partial ? ' (partial)' : ''} | ${segment.loadedAfter.toLocaleString('en')} | ${Math.round(segment.transactionsPerSecond).toLocaleString('en')} | ` +
    `${segment.bulk.p50Ms} / ${segment.bulk.p99Ms} / ${segment.bulk.maxMs} | ${segment.probe.p50Ms} / ${segment.probe.p99Ms} / ${segment.probe.maxMs} | ` +
    `${segment.healthz.p99Ms} / ${segment.healthz.maxMs} | ${Math.round(segment.serverLoopLagMaxMs)} | ${segment.rssMaxMiB} / ${segment.rssEndMiB} | ${segment.heapUsedEndMiB} | ` +
    `${segment.storeMiB} / ${segment.walMiB} | ${segment.serverCpuMicrosPerTx?.toFixed(0) ?? '–'} (${segment.serverJsThreadMicrosPerTx?.toFixed(0) ?? '–'}) | ` +
    `${segment.clientCpuMicrosPerTx?.toFixed(1) ?? '–'} | ${segment.loadAverage.mean} |`
  )
}

// ---------------------------------------------------------------- the run

async function main(): Promise<void> {
  progress(`data ${dataDirectory}, server log ${serverLog}`)
  let server = await startServer()
  const bulkTransport = createLeanHttpTransport({ target: server.url, socketsMax: concurrency, requestTimeoutMs: 600_000 })
  const probeTransport = createLeanHttpTransport({ target: server.url, socketsMax: 32, requestTimeoutMs: 600_000 })
  const observerTransport = createLeanHttpTransport({ target: server.url, socketsMax: 40, requestTimeoutMs: 600_000 })
  let serverPid = server.pid
  const sampler = startSampler(observerTransport, () => serverPid)
  let healthz: ReturnType<typeof startHealthzProbe> | undefined
  try {
    await ensureLedger(bulkTransport, server.url.href, settings.ledger)
    healthz = startHealthzProbe(observerTransport, healthzRate)
    let loaded = 0
    console.log(header)
    console.log(`|${' --- |'.repeat(13)}`)
    for (let segment = 1; loaded < transactionsWanted && performance.now() < loadDeadlineMs; segment++) {
      const wanted = Math.min(segmentTransactions, transactionsWanted - loaded)
      const budget = { remaining: wanted, done: new AbortController() }
      const cutShort = setTimeout(() => budget.done.abort(), Math.max(0, loadDeadlineMs - performance.now()))
      sampler.take()
      healthz.take()
      const loadedBefore = loaded
      const startedMs = performance.now()
      const startedEpochMs = Date.now()
      const meter = startCpuMeter(serverPid)
      const probe = runBench({
        transport: probeTransport,
        plans: [{ definition: transactionsWorkload, concurrency: 32, ratePerSecond: probeRate }],
        settings,
        stop: { kind: 'duration', durationMs: 24 * 3600_000 },
        seed: seed * 1000 + segment,
        signal: budget.done.signal,
      })
      const bulk = await runBench({
        transport: bulkTransport,
        plans: [{ definition: segmentBulkWorkload(budget), concurrency }],
        settings,
        stop: { kind: 'requests', requests: Number.MAX_SAFE_INTEGER },
        seed: seed * 1000 + segment,
        signal: budget.done.signal,
        progressIntervalMs: 15_000,
        onProgress: (snapshot) =>
          progress(
            `segment ${segment}: ${(loadedBefore + snapshot.transactions).toLocaleString('en')} loaded, ` +
              `${Math.round((snapshot.intervalTransactions * 1000) / snapshot.intervalMs).toLocaleString('en')} tx/s, ` +
              `bulk p99 ${snapshot.intervalLatency.p99Ms.toFixed(0)} ms max ${snapshot.intervalLatency.maxMs.toFixed(0)} ms, load ${os.loadavg()[0]?.toFixed(1)}`,
          ),
      })
      clearTimeout(cutShort)
      const probed = await probe
      const seconds = (performance.now() - startedMs) / 1000
      const probeResult = probed.workloads[0] as WorkloadResult
      const bulkResult = bulk.workloads[0] as WorkloadResult
      const segmentTransactionsDone = bulk.total.transactions + probed.total.transactions
      loaded += segmentTransactionsDone
      const cpu = meter.finish(segmentTransactionsDone)
      const window = sampler.take()
      const healthzWindow = healthz.take()
      const store = diskUsage(path.join(dataDirectory, 'store'))
      const wal = diskUsage(path.join(dataDirectory, 'wal'))
      const entry: SegmentRecord = {
        segment,
        partial: bulk.total.operations < wanted,
        loadedBefore,
        loadedAfter: loaded,
        seconds: Math.round(seconds * 10) / 10,
        bulkTransactions: bulk.total.transactions,
        transactionsPerSecond: segmentTransactionsDone / seconds,
        bulk: latencyOf(bulkResult.latency),
        bulkFailures: bulk.total.failures,
        probe: { ...latencyOf(probeResult.latency), transactions: probed.total.transactions, failures: probed.total.failures, startLagMsMax: probeResult.startLagMsMax },
        healthz: { ...latencyOf(healthzWindow.histogram.summaryMs()), failures: healthzWindow.failures },
        serverLoopLagMaxMs: roundMs(window.loopLagMaxMs),
        rssMaxMiB: mib(window.rssMaxBytes),
        rssEndMiB: mib(window.last?.rssBytes ?? Number.NaN),
        heapUsedMaxMiB: mib(window.heapUsedMaxBytes),
        heapUsedEndMiB: mib(window.last?.heapUsedBytes ?? Number.NaN),
        storeMiB: mib(store.bytes),
        storeFiles: store.files,
        walMiB: mib(wal.bytes),
        walFiles: wal.files,
        serverCpuMicrosPerTx: cpu.server?.microsPerTransaction ?? null,
        serverJsThreadMicrosPerTx: cpu.server?.mainThreadMicrosPerTransaction ?? null,
        clientCpuMicrosPerTx: cpu.client.microsPerTransaction,
        loadAverage: spread(window.loadAverage),
        stalls: stallSummary(startedEpochMs, Date.now()),
        endedAt: new Date().toISOString(),
      }
      record.segments.push(entry)
      saveRecord()
      console.log(rowOf(entry))
      progress(stallLine(`segment ${segment}`, entry.stalls))
      if (bulk.total.operationsFailed > 0) progress(`segment ${segment}: ${bulk.total.operationsFailed} bulk operations failed: ${JSON.stringify(bulk.total.failures)}`)
    }
    if (loaded < transactionsWanted) progress(`--minutes-max reached after ${loaded.toLocaleString('en')} transactions`)

    // Right after the load: only the probes, at their rates.
    progress(`stall probe: ${stallSeconds} s of single transactions at ${probeRate}/s and healthz at ${healthzRate}/s`)
    sampler.take()
    healthz.take()
    const stallStartedEpochMs = Date.now()
    const stall = await runBench({
      transport: probeTransport,
      plans: [{ definition: transactionsWorkload, concurrency: 32, ratePerSecond: probeRate }],
      settings,
      stop: { kind: 'duration', durationMs: stallSeconds * 1000 },
      seed: seed * 1000 + 999,
    })
    const stallWindow = sampler.take()
    const stallProbe = stall.workloads[0] as WorkloadResult
    record.afterLoad = {
      seconds: stallSeconds,
      probe: { ...latencyOf(stallProbe.latency), transactions: stall.total.transactions, failures: stall.total.failures, startLagMsMax: stallProbe.startLagMsMax },
      healthz: (({ histogram, failures }) => ({ ...latencyOf(histogram.summaryMs()), failures }))(healthz.take()),
      serverLoopLagMaxMs: roundMs(stallWindow.loopLagMaxMs),
      rssEndMiB: mib(stallWindow.last?.rssBytes ?? Number.NaN),
      heapUsedEndMiB: mib(stallWindow.last?.heapUsedBytes ?? Number.NaN),
      loadAverage: spread(stallWindow.loadAverage),
      stalls: stallSummary(stallStartedEpochMs, Date.now()),
    }
    loaded += stall.total.transactions
    saveRecord()
    console.log(`\nafter the load: ${JSON.stringify(record.afterLoad)}`)

    // Restart on the loaded store: shutdown, then start to `listening` (cache restore included) and to a first transaction.
    await healthz.stop()
    healthz = undefined
    const peakBeforeRestart = residentBytes(serverPid).peak
    const shutdownMs = await stopServer(server)
    progress(`restart: shutdown took ${Math.round(shutdownMs)} ms; starting again on ${loaded.toLocaleString('en')} transactions`)
    const restartedAt = performance.now()
    try {
      server = await startServer(restartTimeoutMs)
    } catch (error) {
      record.restart = { transactions: loaded, shutdownMs: Math.round(shutdownMs), toListeningMs: null, failed: String(error) }
      saveRecord()
      throw error
    }
    serverPid = server.pid
    const restartTransport = createLeanHttpTransport({ target: server.url, socketsMax: 1, requestTimeoutMs: 600_000 })
    let firstTransactionMs = Number.NaN
    try {
      const reply = await restartTransport.send({ method: 'POST', path: `${ledgerPath(settings.ledger)}/transactions`, body: '{"postings":[{"source":"world","destination":"users:0","amount":1,"asset":"USD/2"}],"metadata":{}}' })
      if (reply.status >= 200 && reply.status < 300) firstTransactionMs = performance.now() - restartedAt
      else progress(`restart: first transaction answered ${reply.status} ${reply.body.slice(0, 200)}`)
    } finally {
      restartTransport.close()
    }
    record.restart = {
      transactions: loaded,
      shutdownMs: Math.round(shutdownMs),
      toListeningMs: Math.round(server.startMs),
      toFirstTransactionMs: Math.round(firstTransactionMs),
      rssAfterRestartMiB: mib(residentBytes(serverPid).rss),
      rssPeakBeforeRestartMiB: mib(peakBeforeRestart),
      storeMiB: mib(diskUsage(path.join(dataDirectory, 'store')).bytes),
      walMiB: mib(diskUsage(path.join(dataDirectory, 'wal')).bytes),
    }
    record.finishedAt = new Date().toISOString()
    saveRecord()
    console.log(`restart: ${JSON.stringify(record.restart)}`)
  } finally {
    await healthz?.stop()
    await sampler.stop()
    bulkTransport.close()
    probeTransport.close()
    observerTransport.close()
    await stopServer(server)
    if (!values.keep) rmSync(dataDirectory, { recursive: true, force: true })
    else progress(`kept ${dataDirectory}`)
    progress(`server log kept at ${serverLog}`)
  }
}

await main()
