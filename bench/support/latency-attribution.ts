/**
 * Which of the server's events the slow requests of a run overlapped
 * (issue 12, target 3): the load generator's record of each request
 * (`tally bench --latency-log`) against the server's timeline
 * (`TALLY_LATENCY_TRACE`, `src/server/latency-trace.ts`). Pure: arrays in,
 * a summary out.
 *
 * A request is slow at `slowMs` or more, counted from its due time (open
 * loop). For each cause, the share of slow requests whose interval
 * overlapped at least one such event, beside the same share among all
 * requests: a cause that explains the tail is over-represented among slow
 * requests. Each slow request is also given one primary cause, the one that
 * covered the most of its interval ("none" when nothing did).
 */
import type { LatencyTraceEvent } from '../../src/server/index.ts'

/** One request as the load generator saw it, wall-clock ms. */
export interface TimedRequest {
  /** When its latency counts from (open loop: its due time). */
  readonly fromMs: number
  readonly sentMs: number
  readonly answeredMs: number
}

/** An interval that may explain a wait. */
interface CauseInterval {
  readonly startMs: number
  readonly endMs: number
}

/** The causes, each with what of the timeline counts as one (the thresholds say "long enough to matter"). */
export const causes = [
  { name: 'GC pause, minor', of: (event: LatencyTraceEvent) => event.kind === 'gc' && (event.value & 1) !== 0 },
  { name: 'GC pause, major or incremental', of: (event: LatencyTraceEvent) => event.kind === 'gc' && (event.value & 6) !== 0 },
  { name: 'loop late, JS thread on a CPU ≥ half', of: (event: LatencyTraceEvent) => event.kind === 'loop-late' && event.value >= 0 && event.value * 2 >= event.endMs - event.startMs },
  { name: 'loop late, JS thread waiting for a CPU ≥ half', of: (event: LatencyTraceEvent) => event.kind === 'loop-late' && event.extra >= 0 && event.extra * 2 >= event.endMs - event.startMs },
  { name: 'loop late, otherwise (blocked, or mixed)', of: (event: LatencyTraceEvent) => event.kind === 'loop-late' && !((event.value >= 0 && event.value * 2 >= event.endMs - event.startMs) || (event.extra >= 0 && event.extra * 2 >= event.endMs - event.startMs)) },
  { name: 'WAL fdatasync ≥ 5 ms', of: (event: LatencyTraceEvent) => event.kind === 'wal-fsync' && event.endMs - event.startMs >= 5 },
  { name: 'apply of a store batch ≥ 2 ms', of: (event: LatencyTraceEvent) => event.kind === 'apply' && event.endMs - event.startMs >= 2 },
  { name: 'store batch write ≥ 2 ms', of: (event: LatencyTraceEvent) => event.kind === 'store-write' && event.endMs - event.startMs >= 2 },
  { name: 'store checkpoint', of: (event: LatencyTraceEvent) => event.kind === 'checkpoint' },
  { name: 'cache rotation', of: (event: LatencyTraceEvent) => event.kind === 'rotation' },
  { name: 'gathering to append ≥ 5 ms', of: (event: LatencyTraceEvent) => event.kind === 'gather' && event.endMs - event.startMs >= 5 },
] as const

/** The client's own cause: the request was sent this late after its due time (all connections busy, or the client's loop late). */
export const sendLagCause = 'sent ≥ 2 ms after due (client)'
const sendLagMsMin = 2

export interface CauseShare {
  readonly cause: string
  /** Slow requests that overlapped at least one such event. */
  readonly slowShare: number
  /** All requests that did. */
  readonly allShare: number
  /** Slow requests for which it was the primary cause. */
  readonly primaryShare: number
  /** Of the slow requests' summed latency, the part this cause covered. */
  readonly timeShare: number
}

export interface Attribution {
  readonly requests: number
  readonly slow: number
  readonly slowMs: number
  readonly shares: readonly CauseShare[]
  /** Slow requests no cause covered. */
  readonly unexplainedShare: number
  /** The server's own time per request (`request` events in the window): p50, p99, max ms. */
  readonly serverRequestMs: { readonly count: number; readonly p50: number; readonly p99: number; readonly max: number }
}

/** Sorted, merged intervals. */
function merged(intervals: CauseInterval[]): CauseInterval[] {
  intervals.sort((a, b) => a.startMs - b.startMs)
  const out: { startMs: number; endMs: number }[] = []
  for (const interval of intervals) {
    const last = out.at(-1)
    if (last !== undefined && interval.startMs <= last.endMs) last.endMs = Math.max(last.endMs, interval.endMs)
    else out.push({ startMs: interval.startMs, endMs: interval.endMs })
  }
  return out
}

/**
 * The first index of a sorted list at which `before` turns false (the list's
 * length if it never does): a binary search; `before` holds for a prefix.
 */
export function firstNotBefore<T>(list: readonly T[], before: (item: T) => boolean): number {
  let low = 0
  let high = list.length
  while (low < high) {
    const middle = (low + high) >> 1
    if (before(list[middle] as T)) low = middle + 1
    else high = middle
  }
  return low
}

/** The first of `intervals` (sorted, merged) that ends at or after `fromMs`. */
function firstEndingFrom(intervals: readonly CauseInterval[], fromMs: number): number {
  return firstNotBefore(intervals, (interval) => interval.endMs < fromMs)
}

/** Milliseconds of [fromMs, toMs] covered by `intervals` (sorted, merged). */
export function coveredMs(intervals: readonly CauseInterval[], fromMs: number, toMs: number): number {
  const low = firstEndingFrom(intervals, fromMs)
  let covered = 0
  for (let at = low; at < intervals.length; at++) {
    const interval = intervals[at] as CauseInterval
    if (interval.startMs > toMs) break
    covered += Math.max(0, Math.min(toMs, interval.endMs) - Math.max(fromMs, interval.startMs))
  }
  return covered
}

/** Whether any interval meets [fromMs, toMs] (an instant counts). */
function overlaps(intervals: readonly CauseInterval[], fromMs: number, toMs: number): boolean {
  const first = intervals[firstEndingFrom(intervals, fromMs)]
  return first !== undefined && first.startMs <= toMs
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number
}

/**
 * `slow`: a latency in ms, or 'p99' for the run's own 99th percentile (the
 * slowest 1 %: on a loaded machine most requests may pass a fixed bound).
 */
export function attribute(requests: readonly TimedRequest[], events: readonly LatencyTraceEvent[], slow: number | 'p99'): Attribution {
  const slowMs = slow === 'p99' ? percentile(requests.map((request) => request.answeredMs - request.fromMs).sort((a, b) => a - b), 0.99) : slow
  const named: { name: string; intervals: CauseInterval[] }[] = causes.map((cause) => ({ name: cause.name, intervals: merged(events.filter(cause.of)) }))
  const sendLags = merged(requests.filter((request) => request.sentMs - request.fromMs >= sendLagMsMin).map((request) => ({ startMs: request.fromMs, endMs: request.sentMs })))
  named.push({ name: sendLagCause, intervals: sendLags })
  const slowOnes = requests.filter((request) => request.answeredMs - request.fromMs >= slowMs)
  const slowLatencyMs = slowOnes.reduce((sum, request) => sum + (request.answeredMs - request.fromMs), 0)
  const primary = new Map<string, number>()
  let unexplained = 0
  for (const request of slowOnes) {
    let best: string | undefined
    let bestMs = 0
    for (const cause of named) {
      // The client's send lag is the request's own: only its own wait counts, not another request's.
      const lagMs = request.sentMs - request.fromMs
      const covered = cause.name === sendLagCause ? (lagMs >= sendLagMsMin ? lagMs : 0) : coveredMs(cause.intervals, request.fromMs, request.answeredMs)
      if (covered > bestMs) {
        bestMs = covered
        best = cause.name
      }
    }
    if (best === undefined) unexplained++
    else primary.set(best, (primary.get(best) ?? 0) + 1)
  }
  const shares = named.map((cause): CauseShare => {
    const own = cause.name === sendLagCause
    const hit = (request: TimedRequest): boolean => (own ? request.sentMs - request.fromMs >= sendLagMsMin : overlaps(cause.intervals, request.fromMs, request.answeredMs))
    const coveredTotal = slowOnes.reduce((sum, request) => sum + (own ? (hit(request) ? request.sentMs - request.fromMs : 0) : coveredMs(cause.intervals, request.fromMs, request.answeredMs)), 0)
    return {
      cause: cause.name,
      slowShare: slowOnes.length === 0 ? 0 : slowOnes.filter(hit).length / slowOnes.length,
      allShare: requests.length === 0 ? 0 : requests.filter(hit).length / requests.length,
      primaryShare: slowOnes.length === 0 ? 0 : (primary.get(cause.name) ?? 0) / slowOnes.length,
      timeShare: slowLatencyMs === 0 ? 0 : coveredTotal / slowLatencyMs,
    }
  })
  const first = requests.reduce((min, request) => Math.min(min, request.fromMs), Infinity)
  const last = requests.reduce((max, request) => Math.max(max, request.answeredMs), -Infinity)
  const serverTimes = events
    .filter((event) => event.kind === 'request' && event.startMs >= first && event.endMs <= last)
    .map((event) => event.endMs - event.startMs)
    .sort((a, b) => a - b)
  return {
    requests: requests.length,
    slow: slowOnes.length,
    slowMs,
    shares,
    unexplainedShare: slowOnes.length === 0 ? 0 : unexplained / slowOnes.length,
    serverRequestMs: { count: serverTimes.length, p50: percentile(serverTimes, 0.5), p99: percentile(serverTimes, 0.99), max: serverTimes.at(-1) ?? Number.NaN },
  }
}

/** Markdown: the client's view of a run's slow requests, then the server's own (`served`: each request from arrival to answer). */
export function formatAttribution(title: string, attribution: Attribution, served: Attribution): string[] {
  const percent = (share: number): string => `${(share * 100).toFixed(1)} %`
  const server = attribution.serverRequestMs
  const table = (shares: readonly CauseShare[]): string[] => [
    '| cause | slow requests overlapping | all requests overlapping | primary cause of slow | share of slow requests\' time |',
    '| --- | --- | --- | --- | --- |',
    ...shares.map((share) => `| ${share.cause} | ${percent(share.slowShare)} | ${percent(share.allShare)} | ${percent(share.primaryShare)} | ${percent(share.timeShare)} |`),
  ]
  return [
    `**${title}**: ${attribution.slow} of ${attribution.requests} requests took ≥ ${attribution.slowMs.toFixed(1)} ms from their due time (${percent(attribution.slow / Math.max(1, attribution.requests))}); ` +
      `the server's own time per request (arrival to answer sent) p50 ${server.p50.toFixed(2)} / p99 ${server.p99.toFixed(2)} / max ${server.max.toFixed(1)} ms over ${server.count}; ` +
      `no cause overlapped ${percent(attribution.unexplainedShare)} of the slow ones.`,
    '',
    ...table(attribution.shares),
    '',
    `The server's own view (arrival to answer sent): ${served.slow} of ${served.requests} requests ≥ ${served.slowMs.toFixed(1)} ms; no cause overlapped ${percent(served.unexplainedShare)} of them.`,
    '',
    ...table(served.shares.filter((share) => share.cause !== sendLagCause)),
  ]
}
