import { setTimeout as delay } from 'node:timers/promises'
import { invariant } from '../domain/index.ts'
import { NetworkError, type HttpTransport } from './http.ts'
import { LatencyHistogram, type LatencySummaryMs } from './latency.ts'
import { Random, deriveSeed } from './random.ts'
import type { BenchRequest, RequestGenerator, RequestOutcome, WorkloadDefinition, WorkloadSettings } from './workload.ts'

/**
 * The load runner. Every workload gets its own pool of clients and its own
 * accounting; all pools share one transport and start together, so a read
 * workload can run beside a write workload and each is reported separately.
 *
 * Closed loop (no rate): each client sends, waits for the answer, sends the
 * next. Throughput is what the server sustains at that concurrency, but a
 * slow answer delays the requests behind it, so the latency percentiles
 * under-report stalls ("coordinated omission").
 *
 * Open loop (`ratePerSecond`): request i is *due* at start + i / rate, whether
 * or not earlier ones have answered. Clients (at most `concurrency` requests
 * in flight) take the next due slot, wait for its time, send, and record
 * latency from the *due* time, so queueing behind a stall is counted.
 */

/** Time source; injected so tests drive time without sleeping. */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number
  sleepUntil(timeMs: number): Promise<void>
}

export const systemClock: Clock = {
  now: () => performance.now(),
  sleepUntil: async (timeMs) => {
    // libuv schedules timers against a loop time cached at the start of the
    // iteration, so one timer can fire early by up to a loop turn: re-check.
    for (let waitMs = timeMs - performance.now(); waitMs > 0; waitMs = timeMs - performance.now()) {
      await delay(Math.ceil(waitMs))
    }
  },
}

export interface WorkloadPlan {
  readonly definition: WorkloadDefinition
  readonly concurrency: number
  /** Open-loop request rate; undefined runs a closed loop. */
  readonly ratePerSecond?: number | undefined
}

/** `requests` applies to each workload separately. */
export type StopCondition =
  | { readonly kind: 'duration'; readonly durationMs: number }
  | { readonly kind: 'requests'; readonly requests: number }

export interface ProgressSnapshot {
  readonly elapsedMs: number
  readonly intervalMs: number
  readonly requests: number
  readonly transactions: number
  readonly operationsFailed: number
  readonly intervalRequests: number
  readonly intervalTransactions: number
  readonly intervalLatency: LatencySummaryMs
}

export interface RunOptions {
  readonly transport: HttpTransport
  readonly plans: readonly WorkloadPlan[]
  readonly settings: WorkloadSettings
  readonly stop: StopCondition
  readonly seed: number
  readonly clock?: Clock
  readonly onProgress?: (snapshot: ProgressSnapshot) => void
  readonly progressIntervalMs?: number
  /** Aborting stops new requests (e.g. on Ctrl-C); in-flight ones finish and are counted. */
  readonly signal?: AbortSignal
  /**
   * Told of every request answered (clock times, ms): when its latency
   * counts from (open loop: its due time), when it was sent, when its answer
   * came. For attributing slow requests (`tally bench --latency-log`).
   */
  readonly onRequestDone?: (fromMs: number, sentMs: number, completedMs: number) => void
}

export interface Tally {
  readonly requests: number
  /** Requests that did not fully succeed: non-2xx, partial bulk, or no answer. */
  readonly requestErrors: number
  readonly operations: number
  readonly operationsFailed: number
  readonly transactions: number
  /** Failed operations by cause, e.g. `HTTP 400 INSUFFICIENT_FUND`, `element VALIDATION`, `network ECONNRESET`. */
  readonly failures: Readonly<Record<string, number>>
  readonly elapsedMs: number
  readonly requestsPerSecond: number
  readonly transactionsPerSecond: number
  readonly errorRate: number
  readonly latency: LatencySummaryMs
}

export interface WorkloadResult extends Tally {
  readonly name: string
  readonly kind: 'write' | 'read'
  readonly mode: 'closed-loop' | 'open-loop'
  readonly concurrency: number
  readonly ratePerSecond: number | null
  /** Open loop only: the worst delay between a request's due time and its send (a saturated generator). */
  readonly startLagMsMax: number | null
}

export interface RunResult {
  readonly elapsedMs: number
  readonly workloads: WorkloadResult[]
  readonly total: Tally
}

/** Named bounds on the run's configuration. */
export const concurrencyMax = 10_000
export const ratePerSecondMax = 1_000_000

class WorkloadState {
  claimed = 0
  requests = 0
  requestErrors = 0
  operations = 0
  operationsFailed = 0
  transactions = 0
  startLagMsMax = 0
  lastCompletionMs: number
  readonly failures = new Map<string, number>()
  readonly latency = new LatencyHistogram()
  intervalLatency = new LatencyHistogram()
  intervalRequests = 0
  intervalTransactions = 0

  constructor(
    readonly plan: WorkloadPlan,
    readonly index: number,
    startMs: number,
  ) {
    this.lastCompletionMs = startMs
  }

  account(request: BenchRequest, outcome: RequestOutcome, latencyMs: number, completedMs: number): void {
    const failed = outcome.failures.reduce((sum, failure) => sum + failure.operations, 0)
    invariant(outcome.operationsSucceeded + failed === request.operations, () =>
      `workload ${this.plan.definition.name}: ${outcome.operationsSucceeded} succeeded + ${failed} failed ≠ ${request.operations} attempted`,
    )
    invariant(outcome.transactions <= request.operations, 'more transactions than operations attempted')
    this.requests += 1
    this.intervalRequests += 1
    if (!outcome.ok) this.requestErrors += 1
    this.operations += request.operations
    this.operationsFailed += failed
    this.transactions += outcome.transactions
    this.intervalTransactions += outcome.transactions
    for (const failure of outcome.failures) {
      this.failures.set(failure.key, (this.failures.get(failure.key) ?? 0) + failure.operations)
    }
    this.latency.recordMs(latencyMs)
    this.intervalLatency.recordMs(latencyMs)
    this.lastCompletionMs = Math.max(this.lastCompletionMs, completedMs)
  }
}

/** Validates plans and stop condition once, up front. */
export function validateRunOptions(options: RunOptions): void {
  invariant(options.plans.length > 0, 'at least one workload')
  for (const plan of options.plans) {
    invariant(Number.isSafeInteger(plan.concurrency), 'concurrency must be an integer')
    invariant(plan.concurrency >= 1 && plan.concurrency <= concurrencyMax, `concurrency must be in [1, ${concurrencyMax}]`)
    if (plan.ratePerSecond !== undefined) {
      invariant(plan.ratePerSecond > 0 && plan.ratePerSecond <= ratePerSecondMax, `rate must be in (0, ${ratePerSecondMax}]`)
    }
  }
  if (options.stop.kind === 'duration') invariant(options.stop.durationMs > 0, 'duration must be positive')
  else invariant(Number.isSafeInteger(options.stop.requests) && options.stop.requests >= 1, 'requests must be a positive integer')
  invariant(options.settings.accounts >= 1, 'accounts must be at least 1')
  invariant(options.settings.bulkSize >= 1, 'bulk size must be at least 1')
  invariant(options.settings.forceRatio >= 0 && options.settings.forceRatio <= 1, 'force ratio must be in [0, 1]')
}

export async function runBench(options: RunOptions): Promise<RunResult> {
  validateRunOptions(options)
  const clock = options.clock ?? systemClock
  const setupDone = new Set<WorkloadDefinition>()
  for (const plan of options.plans) {
    if (plan.definition.setup === undefined || setupDone.has(plan.definition)) continue
    setupDone.add(plan.definition)
    await plan.definition.setup({ settings: options.settings, transport: options.transport })
  }

  const startMs = clock.now()
  const deadlineMs = options.stop.kind === 'duration' ? startMs + options.stop.durationMs : Number.POSITIVE_INFINITY
  const requestsMax = options.stop.kind === 'requests' ? options.stop.requests : Number.POSITIVE_INFINITY
  const states = options.plans.map((plan, index) => new WorkloadState(plan, index, startMs))
  let aborted: unknown = undefined
  const stopped = (): boolean => aborted !== undefined || options.signal?.aborted === true

  async function execute(state: WorkloadState, generator: RequestGenerator, request: BenchRequest, latencyFromMs: number): Promise<void> {
    const sentMs = options.onRequestDone === undefined ? 0 : clock.now()
    let outcome: RequestOutcome
    try {
      const response = await options.transport.send(request)
      outcome = generator.classify(request, response)
    } catch (error) {
      if (!(error instanceof NetworkError)) throw error
      outcome = { ok: false, transactions: 0, operationsSucceeded: 0, failures: [{ key: `network ${error.code}`, operations: request.operations }] }
    }
    const completedMs = clock.now()
    state.account(request, outcome, completedMs - latencyFromMs, completedMs)
    options.onRequestDone?.(latencyFromMs, sentMs, completedMs)
  }

  async function closedLoopClient(state: WorkloadState, generator: RequestGenerator): Promise<void> {
    while (!stopped() && state.claimed < requestsMax && clock.now() < deadlineMs) {
      state.claimed += 1
      const request = generator.next()
      await execute(state, generator, request, clock.now())
    }
  }

  async function openLoopClient(state: WorkloadState, generator: RequestGenerator, ratePerSecond: number): Promise<void> {
    const intervalMs = 1000 / ratePerSecond
    while (!stopped() && state.claimed < requestsMax) {
      const dueMs = startMs + state.claimed * intervalMs
      if (dueMs >= deadlineMs) return
      state.claimed += 1
      const request = generator.next()
      await clock.sleepUntil(dueMs)
      if (stopped()) return
      const lagMs = clock.now() - dueMs
      invariant(lagMs >= 0, 'sleepUntil returned before the due time')
      state.startLagMsMax = Math.max(state.startLagMsMax, lagMs)
      await execute(state, generator, request, dueMs)
    }
  }

  function client(state: WorkloadState, clientIndex: number): Promise<void> {
    const random = new Random(deriveSeed(options.seed, state.index, clientIndex))
    const generator = state.plan.definition.createGenerator(options.settings, random)
    const run =
      state.plan.ratePerSecond === undefined
        ? closedLoopClient(state, generator)
        : openLoopClient(state, generator, state.plan.ratePerSecond)
    return run.catch((error: unknown) => {
      aborted ??= error
    })
  }

  const progress = startProgress(options, clock, states, startMs)
  try {
    const clients: Promise<void>[] = []
    for (const state of states) {
      for (let clientIndex = 0; clientIndex < state.plan.concurrency; clientIndex++) clients.push(client(state, clientIndex))
    }
    await Promise.all(clients)
  } finally {
    progress.stop()
  }
  if (aborted !== undefined) throw aborted

  const endMs = clock.now()
  const workloads = states.map((state) => workloadResult(state, startMs))
  const totalLatency = new LatencyHistogram()
  for (const state of states) totalLatency.merge(state.latency)
  const total = tallyOf({
    requests: sum(states, (state) => state.requests),
    requestErrors: sum(states, (state) => state.requestErrors),
    operations: sum(states, (state) => state.operations),
    operationsFailed: sum(states, (state) => state.operationsFailed),
    transactions: sum(states, (state) => state.transactions),
    failures: mergeFailures(states.map((state) => state.failures)),
    elapsedMs: Math.max(...states.map((state) => state.lastCompletionMs)) - startMs,
    latency: totalLatency,
  })
  return { elapsedMs: endMs - startMs, workloads, total }
}

function sum(states: readonly WorkloadState[], pick: (state: WorkloadState) => number): number {
  return states.reduce((accumulator, state) => accumulator + pick(state), 0)
}

function mergeFailures(maps: ReadonlyArray<ReadonlyMap<string, number>>): Map<string, number> {
  const merged = new Map<string, number>()
  for (const map of maps) for (const [key, count] of map) merged.set(key, (merged.get(key) ?? 0) + count)
  return merged
}

function tallyOf(input: {
  requests: number
  requestErrors: number
  operations: number
  operationsFailed: number
  transactions: number
  failures: ReadonlyMap<string, number>
  elapsedMs: number
  latency: LatencyHistogram
}): Tally {
  invariant(input.operationsFailed <= input.operations, 'more failed operations than attempted')
  invariant(input.requestErrors <= input.requests, 'more failed requests than sent')
  const seconds = input.elapsedMs / 1000
  const failures = Object.fromEntries([...input.failures].sort(([left], [right]) => left.localeCompare(right)))
  return {
    requests: input.requests,
    requestErrors: input.requestErrors,
    operations: input.operations,
    operationsFailed: input.operationsFailed,
    transactions: input.transactions,
    failures,
    elapsedMs: input.elapsedMs,
    requestsPerSecond: seconds > 0 ? input.requests / seconds : 0,
    transactionsPerSecond: seconds > 0 ? input.transactions / seconds : 0,
    errorRate: input.operations > 0 ? input.operationsFailed / input.operations : 0,
    latency: input.latency.summaryMs(),
  }
}

function workloadResult(state: WorkloadState, startMs: number): WorkloadResult {
  const openLoop = state.plan.ratePerSecond !== undefined
  return {
    name: state.plan.definition.name,
    kind: state.plan.definition.kind,
    mode: openLoop ? 'open-loop' : 'closed-loop',
    concurrency: state.plan.concurrency,
    ratePerSecond: state.plan.ratePerSecond ?? null,
    startLagMsMax: openLoop ? state.startLagMsMax : null,
    ...tallyOf({ ...state, failures: state.failures, latency: state.latency, elapsedMs: state.lastCompletionMs - startMs }),
  }
}

function startProgress(options: RunOptions, clock: Clock, states: readonly WorkloadState[], startMs: number): { stop(): void } {
  const onProgress = options.onProgress
  if (onProgress === undefined) return { stop: () => undefined }
  let lastTickMs = startMs
  const timer = setInterval(() => {
    const nowMs = clock.now()
    const intervalLatency = new LatencyHistogram()
    let intervalRequests = 0
    let intervalTransactions = 0
    for (const state of states) {
      intervalLatency.merge(state.intervalLatency)
      intervalRequests += state.intervalRequests
      intervalTransactions += state.intervalTransactions
      state.intervalLatency = new LatencyHistogram()
      state.intervalRequests = 0
      state.intervalTransactions = 0
    }
    onProgress({
      elapsedMs: nowMs - startMs,
      intervalMs: nowMs - lastTickMs,
      requests: sum(states, (state) => state.requests),
      transactions: sum(states, (state) => state.transactions),
      operationsFailed: sum(states, (state) => state.operationsFailed),
      intervalRequests,
      intervalTransactions,
      intervalLatency: intervalLatency.summaryMs(),
    })
    lastTickMs = nowMs
  }, options.progressIntervalMs ?? 1000)
  timer.unref()
  return { stop: () => clearInterval(timer) }
}
