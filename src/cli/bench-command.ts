import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { BearerToken, credentialsHelp } from './credentials.ts'
import {
  buildReport,
  createDefaultRegistry,
  createHttpTransport,
  createLeanHttpTransport,
  ensureLedger,
  formatProgress,
  formatSummary,
  LedgerSetupError,
  runBench,
  fillLedger,
  FillError,
  fillTransactionsMax,
  TargetUnreachableError,
  startCpuMeter,
  concurrencyMax,
  ratePerSecondMax,
  type BenchEnvironment,
  type FillResult,
  type Clock,
  type HttpTransport,
  type StopCondition,
  type WorkloadPlan,
  type WorkloadRegistry,
  type WorkloadSettings,
} from '../bench/index.ts'

/** Exit codes of `tally bench`. */
export const benchExit = {
  ok: 0,
  errorRateExceeded: 1,
  usage: 2,
  targetFailed: 3,
} as const

const optionSpecs = {
  target: { type: 'string', env: 'TALLY_BENCH_TARGET', value: 'URL', help: 'server base URL (default http://127.0.0.1:3068)' },
  ledger: { type: 'string', env: 'TALLY_BENCH_LEDGER', value: 'NAME', help: 'ledger to write to, created if missing (default bench)' },
  workload: {
    type: 'string',
    env: 'TALLY_BENCH_WORKLOAD',
    value: 'LIST',
    help: 'comma-separated NAME[:CONCURRENCY][@RATE] items run at the same time (default transactions)',
  },
  concurrency: { type: 'string', env: 'TALLY_BENCH_CONCURRENCY', value: 'N', help: 'clients per workload unless the item says (default 8)' },
  rate: {
    type: 'string',
    env: 'TALLY_BENCH_RATE',
    value: 'R',
    help: 'open loop: R requests/s per workload, latency from the due time; concurrency caps in-flight requests (default: closed loop)',
  },
  'bulk-size': { type: 'string', env: 'TALLY_BENCH_BULK_SIZE', value: 'B', help: 'elements per _bulk request (default 100)' },
  duration: { type: 'string', env: 'TALLY_BENCH_DURATION', value: 'SECONDS', help: 'run for this long (default 10)' },
  requests: { type: 'string', env: 'TALLY_BENCH_REQUESTS', value: 'COUNT', help: 'instead of --duration: stop each workload after COUNT requests' },
  accounts: { type: 'string', env: 'TALLY_BENCH_ACCOUNTS', value: 'A', help: 'spread postings over users:0 … users:A-1 (default 1000)' },
  'force-ratio': {
    type: 'string',
    env: 'TALLY_BENCH_FORCE_RATIO',
    value: 'F',
    help: 'fraction of transactions moving money users:i → users:j with force: true (default 0)',
  },
  fill: {
    type: 'string',
    env: 'TALLY_BENCH_FILL',
    value: 'N',
    help: 'before the load (not measured): commit N transactions by _bulk, funding every users:k first, so reads find a used ledger (default 0)',
  },
  seed: { type: 'string', env: 'TALLY_BENCH_SEED', value: 'S', help: 'seed of the deterministic request generator (default 1)' },
  'max-error-rate': {
    type: 'string',
    env: 'TALLY_BENCH_MAX_ERROR_RATE',
    value: 'X',
    help: 'exit 1 when failed/attempted operations exceeds X (default 0)',
  },
  'request-timeout-ms': { type: 'string', env: 'TALLY_BENCH_REQUEST_TIMEOUT_MS', value: 'MS', help: 'give up on a request after MS (default 30000)' },
  client: {
    type: 'string',
    env: 'TALLY_BENCH_CLIENT',
    value: 'lean|node',
    help: 'HTTP client: lean (bare keep-alive sockets, cheapest; http only) or node (node:http; default for https)',
  },
  'server-pid': {
    type: 'string',
    env: 'TALLY_BENCH_SERVER_PID',
    value: 'PID',
    help: "also report the server's CPU per transaction, read from /proc/PID (Linux, same machine)",
  },
  'latency-log': {
    type: 'string',
    env: 'TALLY_BENCH_LATENCY_LOG',
    value: 'FILE',
    help: 'write each request\'s due (or start), send and answer times (wall-clock ms) to FILE as JSON, for attributing slow requests',
  },
  json: { type: 'boolean', env: 'TALLY_BENCH_JSON', value: '', help: 'print the result as JSON on stdout' },
  help: { type: 'boolean', env: '', value: '', help: 'show this help' },
} as const

type OptionName = keyof typeof optionSpecs

export interface BenchCommandIo {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly stdout: { write(text: string): unknown }
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean }
  readonly registry?: WorkloadRegistry
  /** Injected by tests; defaults to node:http against the target. */
  readonly transport?: HttpTransport
  readonly clock?: Clock
  readonly signal?: AbortSignal
  readonly progressIntervalMs?: number
}

export interface BenchConfig {
  readonly target: URL
  readonly plans: WorkloadPlan[]
  readonly settings: WorkloadSettings
  readonly stop: StopCondition
  readonly seed: number
  readonly maxErrorRate: number
  readonly requestTimeoutMs: number
  readonly json: boolean
  readonly serverPid: number | undefined
  /** `--latency-log`: where each request's times go. */
  readonly latencyLog: string | undefined
  readonly client: 'lean' | 'node'
  /** Transactions committed by `_bulk` before the measured load (`--fill`). */
  readonly fillTransactions: number
}

class UsageError extends Error {}

export async function benchCommand(argv: string[]): Promise<number> {
  const controller = new AbortController()
  const onInterrupt = (): void => {
    process.stderr.write('\ntally bench: interrupted, finishing in-flight requests (Ctrl-C again to quit)\n')
    controller.abort()
  }
  process.once('SIGINT', onInterrupt)
  try {
    return await runBenchCommand(argv, { env: process.env, stdout: process.stdout, stderr: process.stderr, signal: controller.signal })
  } finally {
    process.removeListener('SIGINT', onInterrupt)
  }
}

export async function runBenchCommand(argv: string[], io: BenchCommandIo): Promise<number> {
  const registry = io.registry ?? createDefaultRegistry()
  let config: BenchConfig
  try {
    const values = readOptions(argv, io.env)
    if (values.help === true) {
      io.stdout.write(helpText(registry))
      return benchExit.ok
    }
    config = resolveConfig(values, registry)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    io.stderr.write(`tally bench: ${error.message}\nRun \`tally bench --help\` for usage.\n`)
    return benchExit.usage
  }

  const socketsMax = config.plans.reduce((total, plan) => total + plan.concurrency, 0)
  const transportOptions = { target: config.target, socketsMax, requestTimeoutMs: config.requestTimeoutMs }
  const credentials = credentialsFor(config.target)
  const transport =
    // The lean client sends no credentials: a server that wants tokens is driven through node:http.
    io.transport ?? (config.client === 'lean' && credentials.credentials === undefined ? createLeanHttpTransport(transportOptions) : createHttpTransport({ ...transportOptions, ...credentials }))
  const targetText = config.target.href.replace(/\/$/, '')
  try {
    const ledgerState = await ensureLedger(transport, targetText, config.settings.ledger)
    io.stderr.write(`tally bench: ledger ${config.settings.ledger} ${ledgerState === 'created' ? 'created' : 'exists'} at ${targetText}\n`)
    const fill = config.fillTransactions === 0 ? null : await runFill(transport, config, io.stderr)
    const startedAt = new Date()
    const progress = progressWriter(io.stderr)
    const cpuMeter = startCpuMeter(config.serverPid)
    const latencyLog = config.latencyLog === undefined ? undefined : new RequestTimes(io.clock === undefined ? performance.timeOrigin : 0)
    const result = await runBench({
      ...(latencyLog === undefined ? {} : { onRequestDone: (fromMs: number, sentMs: number, completedMs: number) => latencyLog.add(fromMs, sentMs, completedMs) }),
      transport,
      plans: config.plans,
      settings: config.settings,
      stop: config.stop,
      seed: config.seed,
      onProgress: progress.write,
      ...(io.clock === undefined ? {} : { clock: io.clock }),
      ...(io.signal === undefined ? {} : { signal: io.signal }),
      ...(io.progressIntervalMs === undefined ? {} : { progressIntervalMs: io.progressIntervalMs }),
    })
    const cpu = cpuMeter.finish({ transactions: result.total.transactions, operations: result.total.operations })
    if (latencyLog !== undefined && config.latencyLog !== undefined) writeFileSync(config.latencyLog, JSON.stringify(latencyLog.toJson()))
    progress.end()
    const report = buildReport({
      startedAt,
      target: targetText,
      seed: config.seed,
      stop: config.stop,
      settings: config.settings,
      environment: environment(),
      maxErrorRate: config.maxErrorRate,
      result,
      cpu,
      fill,
    })
    if (config.json) {
      io.stdout.write(JSON.stringify(report, null, 2) + '\n')
      if (!report.passed) io.stderr.write(formatSummary(report))
    } else {
      io.stdout.write(formatSummary(report))
    }
    return report.passed ? benchExit.ok : benchExit.errorRateExceeded
  } catch (error) {
    if (error instanceof TargetUnreachableError || error instanceof LedgerSetupError || error instanceof FillError) {
      io.stderr.write(`tally bench: ${error.message}\n`)
      return benchExit.targetFailed
    }
    throw error
  } finally {
    if (io.transport === undefined) transport.close()
  }
}

/** The `--fill` load, with a progress line about once a second. */
async function runFill(transport: HttpTransport, config: BenchConfig, stderr: BenchCommandIo['stderr']): Promise<FillResult> {
  let lastReportMs = performance.now()
  const result = await fillLedger({
    transport,
    settings: config.settings,
    transactions: config.fillTransactions,
    seed: config.seed,
    onProgress: (committed) => {
      const nowMs = performance.now()
      if (nowMs - lastReportMs < 1000) return
      lastReportMs = nowMs
      stderr.write(`tally bench: fill ${committed} of ${config.fillTransactions} transactions\n`)
    },
  })
  stderr.write(`tally bench: filled ${result.transactions} transactions in ${(result.elapsedMs / 1000).toFixed(1)} s\n`)
  return result
}

type OptionValues = Partial<Record<OptionName, string | boolean>>

/** Flags first, then `TALLY_BENCH_*` environment variables. */
export function readOptions(argv: string[], env: Readonly<Record<string, string | undefined>>): OptionValues {
  const parseOptions = Object.fromEntries(
    Object.entries(optionSpecs).map(([name, spec]) => [name, { type: spec.type }]),
  ) as Record<OptionName, { type: 'string' | 'boolean' }>
  let flags: OptionValues
  try {
    flags = parseArgs({ args: argv, options: parseOptions, strict: true, allowPositionals: false }).values as OptionValues
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) throw new UsageError((error as Error).message)
    throw error
  }
  const merged: OptionValues = {}
  const stopFlagGiven = flags.duration !== undefined || flags.requests !== undefined
  for (const name of Object.keys(optionSpecs) as OptionName[]) {
    const spec = optionSpecs[name]
    const flag = flags[name]
    if (flag !== undefined) {
      merged[name] = flag
      continue
    }
    if (spec.env === '') continue
    // A stop flag on the command line overrides both stop variables.
    if (stopFlagGiven && (name === 'duration' || name === 'requests')) continue
    const fromEnv = env[spec.env]
    if (fromEnv === undefined || fromEnv === '') continue
    merged[name] = spec.type === 'boolean' ? parseBooleanEnv(spec.env, fromEnv) : fromEnv
  }
  return merged
}

function parseBooleanEnv(name: string, text: string): boolean {
  if (/^(1|true|yes)$/i.test(text)) return true
  if (/^(0|false|no)$/i.test(text)) return false
  throw new UsageError(`${name} must be 1/true/yes or 0/false/no, got ${text}`)
}

function stringOption(values: OptionValues, name: OptionName): string | undefined {
  const value = values[name]
  return typeof value === 'string' ? value : undefined
}

function integerOption(values: OptionValues, name: OptionName, fallback: number, bounds: { min: number; max: number }): number {
  const text = stringOption(values, name)
  if (text === undefined) return fallback
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`--${name} must be a whole number, got ${text}`)
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < bounds.min || value > bounds.max) {
    throw new UsageError(`--${name} must be between ${bounds.min} and ${bounds.max}, got ${text}`)
  }
  return value
}

function numberOption(values: OptionValues, name: OptionName, fallback: number, bounds: { min: number; max: number; minExclusive?: boolean }): number {
  const text = stringOption(values, name)
  if (text === undefined) return fallback
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text)) throw new UsageError(`--${name} must be a non-negative number, got ${text}`)
  return checkRange(name, Number(text), bounds)
}

function checkRange(name: string, value: number, bounds: { min: number; max: number; minExclusive?: boolean }): number {
  const belowMin = bounds.minExclusive === true ? value <= bounds.min : value < bounds.min
  if (belowMin || value > bounds.max) {
    const lower = bounds.minExclusive === true ? `above ${bounds.min}` : `at least ${bounds.min}`
    throw new UsageError(`--${name} must be ${lower} and at most ${bounds.max}, got ${value}`)
  }
  return value
}

export const defaults = {
  target: 'http://127.0.0.1:3068',
  ledger: 'bench',
  workload: 'transactions',
  concurrency: 8,
  bulkSize: 100,
  durationSeconds: 10,
  accounts: 1000,
  seed: 1,
  forceRatio: 0,
  maxErrorRate: 0,
  requestTimeoutMs: 30_000,
} as const

/** Named bounds on what the command accepts. */
export const limits = {
  bulkSizeMax: 10_000,
  accountsMax: 100_000_000,
  durationSecondsMax: 7 * 24 * 3600,
  requestsMax: 1_000_000_000,
  workloadsMax: 16,
  requestTimeoutMsMax: 600_000,
} as const

const workloadItemPattern = /^([a-z][a-z0-9-]*)(?::([0-9]+))?(?:@([0-9]+(?:\.[0-9]+)?))?$/

export function resolveConfig(values: OptionValues, registry: WorkloadRegistry): BenchConfig {
  const targetText = stringOption(values, 'target') ?? defaults.target
  let target: URL
  try {
    target = new URL(targetText)
  } catch {
    throw new UsageError(`--target must be a URL such as ${defaults.target}, got ${targetText}`)
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new UsageError(`--target must be http or https, got ${targetText}`)

  const clientText = stringOption(values, 'client') ?? (target.protocol === 'https:' ? 'node' : 'lean')
  if (clientText !== 'lean' && clientText !== 'node') throw new UsageError(`--client must be lean or node, got ${clientText}`)
  if (clientText === 'lean' && target.protocol === 'https:') throw new UsageError('--client lean speaks plain http; use --client node for https')
  const client: 'lean' | 'node' = clientText

  const ledger = stringOption(values, 'ledger') ?? defaults.ledger
  if (!/^[a-zA-Z0-9_-]{1,63}$/.test(ledger)) throw new UsageError(`--ledger must match [a-zA-Z0-9_-]{1,63}, got ${ledger}`)

  const concurrency = integerOption(values, 'concurrency', defaults.concurrency, { min: 1, max: concurrencyMax })
  const rateText = stringOption(values, 'rate')
  const rate = rateText === undefined ? undefined : numberOption(values, 'rate', 0, { min: 0, max: ratePerSecondMax, minExclusive: true })
  const plans = parseWorkloads(stringOption(values, 'workload') ?? defaults.workload, registry, concurrency, rate)

  const durationGiven = stringOption(values, 'duration') !== undefined
  const requestsGiven = stringOption(values, 'requests') !== undefined
  if (durationGiven && requestsGiven) throw new UsageError('give either --duration or --requests, not both')
  const stop: StopCondition = requestsGiven
    ? { kind: 'requests', requests: integerOption(values, 'requests', 1, { min: 1, max: limits.requestsMax }) }
    : {
        kind: 'duration',
        durationMs: numberOption(values, 'duration', defaults.durationSeconds, { min: 0, max: limits.durationSecondsMax, minExclusive: true }) * 1000,
      }

  const settings: WorkloadSettings = {
    ledger,
    accounts: integerOption(values, 'accounts', defaults.accounts, { min: 1, max: limits.accountsMax }),
    bulkSize: integerOption(values, 'bulk-size', defaults.bulkSize, { min: 1, max: limits.bulkSizeMax }),
    forceRatio: numberOption(values, 'force-ratio', defaults.forceRatio, { min: 0, max: 1 }),
  }
  if (settings.forceRatio > 0 && settings.accounts < 2) throw new UsageError('--force-ratio needs --accounts of at least 2')

  return {
    target,
    plans,
    settings,
    stop,
    seed: integerOption(values, 'seed', defaults.seed, { min: 0, max: 0xffff_ffff }),
    maxErrorRate: numberOption(values, 'max-error-rate', defaults.maxErrorRate, { min: 0, max: 1 }),
    requestTimeoutMs: integerOption(values, 'request-timeout-ms', defaults.requestTimeoutMs, { min: 1, max: limits.requestTimeoutMsMax }),
    json: values.json === true,
    client,
    fillTransactions: integerOption(values, 'fill', 0, { min: 0, max: fillTransactionsMax }),
    serverPid: stringOption(values, 'server-pid') === undefined ? undefined : integerOption(values, 'server-pid', 1, { min: 1, max: 0x3fff_ffff }),
    latencyLog: stringOption(values, 'latency-log'),
  }
}

/** `transactions:16,bulk:2@50` → one plan per item; omitted parts take --concurrency and --rate. */
export function parseWorkloads(text: string, registry: WorkloadRegistry, concurrency: number, rate: number | undefined): WorkloadPlan[] {
  const items = text.split(',').map((item) => item.trim())
  if (items.length > limits.workloadsMax) throw new UsageError(`at most ${limits.workloadsMax} workloads at once`)
  const seen = new Set<string>()
  return items.map((item) => {
    const match = workloadItemPattern.exec(item)
    if (match === null) throw new UsageError(`--workload item ${JSON.stringify(item)} is not NAME[:CONCURRENCY][@RATE]`)
    const [, name = '', concurrencyText, rateText] = match
    const definition = registry.get(name)
    if (definition === undefined) throw new UsageError(`unknown workload ${name}; known: ${registry.names().join(', ')}`)
    if (seen.has(name)) throw new UsageError(`workload ${name} is listed twice`)
    seen.add(name)
    const itemConcurrency = concurrencyText === undefined ? concurrency : checkRange('workload concurrency', Number(concurrencyText), { min: 1, max: concurrencyMax })
    const itemRate = rateText === undefined ? rate : checkRange('workload rate', Number(rateText), { min: 0, max: ratePerSecondMax, minExclusive: true })
    return { definition, concurrency: itemConcurrency, ratePerSecond: itemRate }
  })
}

function progressWriter(stderr: BenchCommandIo['stderr']): { write: (snapshot: Parameters<typeof formatProgress>[0]) => void; end: () => void } {
  const tty = stderr.isTTY === true
  let wrote = false
  return {
    write: (snapshot) => {
      wrote = true
      stderr.write(tty ? `\r\x1b[K${formatProgress(snapshot)}` : `${formatProgress(snapshot)}\n`)
    },
    end: () => {
      if (tty && wrote) stderr.write('\n')
    },
  }
}

function environment(): BenchEnvironment {
  const cpus = os.cpus()
  return {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpus: os.availableParallelism(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
  }
}

export function helpText(registry: WorkloadRegistry): string {
  const optionLines = (Object.keys(optionSpecs) as OptionName[]).map((name) => {
    const spec = optionSpecs[name]
    const flag = `--${name}${spec.value === '' ? '' : ` ${spec.value}`}`
    const env = spec.env === '' ? '' : ` [${spec.env}]`
    return `  ${flag.padEnd(26)} ${spec.help}${env}`
  })
  const workloadLines = registry.list().map((definition) => `  ${definition.name.padEnd(26)} ${definition.summary}`)
  return [
    'Usage: tally bench [options]',
    '',
    'Drives a running Tally (or any Formance Ledger v2 server) with write load and',
    'prints throughput and latency percentiles. Closed loop by default: each client',
    'sends its next request when the previous one answers. With --rate, open loop:',
    'requests are due at a fixed rate and latency is measured from the due time,',
    'so stalls are not hidden (no coordinated omission).',
    '',
    'Options (each also read from the environment variable in brackets):',
    ...optionLines,
    '',
    'Workloads:',
    ...workloadLines,
    '',
    'Examples:',
    '  tally bench --workload transactions --concurrency 32 --duration 30',
    '  tally bench --workload bulk --bulk-size 100 --concurrency 4 --requests 500',
    '  tally bench --workload transactions:16@2000,bulk:2@20 --duration 60 --json',
    '  tally bench --fill 100000 --workload get-account:16 --duration 20 --server-pid PID   # reads of a used ledger, CPU per read',
    '  tally bench --workload bulk --server-pid "$(pgrep -nf \'tally.mjs serve\')"   # server CPU per transaction too',
    '',
    credentialsHelp,
    '',
    'Exit codes: 0 ok, 1 error rate above --max-error-rate, 2 usage error,',
    '3 target unreachable, the ledger could not be created, or the --fill failed.',
    '',
  ].join('\n')
}

/** A token source from the environment (TALLY_CLIENT_ID/SECRET or TALLY_TOKEN), when it names one. */
function credentialsFor(target: URL): { credentials?: () => Promise<Record<string, string>> } {
  const bearer = BearerToken.fromEnvironment(process.env, target)
  return bearer === undefined ? {} : { credentials: () => bearer.headers() }
}

/** Requests kept at most by `--latency-log` (24 bytes each); later ones are counted, not kept. */
export const latencyLogRequestsMax = 10_000_000

/** Each request's times for `--latency-log`, in wall-clock ms (the clock's origin added). */
class RequestTimes {
  private times: Float64Array = new Float64Array(3 * 4096)
  private count = 0
  private dropped = 0

  constructor(private readonly originMs: number) {}

  add(fromMs: number, sentMs: number, completedMs: number): void {
    if (this.count === latencyLogRequestsMax) {
      this.dropped++
      return
    }
    if (3 * (this.count + 1) > this.times.length) {
      const grown = new Float64Array(Math.min(this.times.length * 2, 3 * latencyLogRequestsMax))
      grown.set(this.times)
      this.times = grown
    }
    this.times.set([this.originMs + fromMs, this.originMs + sentMs, this.originMs + completedMs], 3 * this.count++)
  }

  /** `requests`: [from, sent, answered] per request, in the order they were answered. */
  toJson(): { readonly dropped: number; readonly requests: number[][] } {
    const requests: number[][] = []
    for (let at = 0; at < this.count; at++) requests.push([0, 1, 2].map((column) => Math.round((this.times[3 * at + column] as number) * 1000) / 1000))
    return { dropped: this.dropped, requests }
  }
}
