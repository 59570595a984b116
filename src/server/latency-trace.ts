import { writeFileSync } from 'node:fs'
import { PerformanceObserver, performance } from 'node:perf_hooks'
import { ThreadSchedule } from './loop-stalls.ts'

/**
 * A timeline of what the server did, for attributing slow requests to their
 * cause (issue 12, target 3: p99 < 10 ms at half load). A debug tool, off
 * unless `TALLY_LATENCY_TRACE` names a file (`tally serve`): when off, the
 * node and the app hold `undefined` and pay one comparison per call site.
 * When on, each event is a few numbers in preallocated arrays, at most
 * `latencyTraceEventsMax` of them (later ones are counted, not kept), written
 * as JSON when the server closes. `bench/half-load.ts --attribute` reads it
 * beside the load generator's own record of each request.
 *
 * Times are wall-clock milliseconds (`performance.timeOrigin + now()`), so
 * that two processes' timelines line up to well under a millisecond.
 */

/** What the server was doing. */
export const latencyTraceKinds = [
  /** A garbage collection pause (V8's `gc` entries; value: its kind, 1 minor, 2 major, 4 incremental, 8 weak callbacks). */
  'gc',
  /** The event loop ran its 2 ms watch timer this late (value: the main thread's ms on a CPU in the window; extra: ms runnable, waiting for a CPU). */
  'loop-late',
  /** One WAL group's fdatasync (value: entries in the group). */
  'wal-fsync',
  /** The FSM applying a store batch's proposals on the JavaScript thread (value: proposals). */
  'apply',
  /** A store batch written (RocksDB's write, not synced; value: rows). */
  'store-write',
  /** A store checkpoint: the sync of RocksDB's log ahead, then its synced write. */
  'checkpoint',
  /** The cache rotated its generations while applying (an instant; value: the new generation). */
  'rotation',
  /** A gathering of single writes from its first submit to its proposal's append (value: orders). */
  'gather',
  /** An HTTP request from its arrival (`onRequest`) to its answer sent (`onResponse`; value: status code). */
  'request',
] as const
export type LatencyTraceKind = (typeof latencyTraceKinds)[number]

/** Events kept at most (~28 bytes each): a 10 s run at 3,500 requests/s makes ~60k. */
export const latencyTraceEventsMax = 2_000_000
/** The loop watch's interval, and how late a tick must be to be an event. */
export const loopWatchIntervalMs = 2
export const loopLateMsMin = 3

export interface LatencyTraceEvent {
  readonly kind: LatencyTraceKind
  readonly startMs: number
  readonly endMs: number
  readonly value: number
  readonly extra: number
}

export interface LatencyTraceFile {
  readonly kinds: readonly LatencyTraceKind[]
  /** Events not kept (the bound was reached). */
  readonly dropped: number
  /** Columns: kind index, start ms, end ms, value, extra. */
  readonly events: readonly (readonly [number, number, number, number, number])[]
}

/** Wall-clock milliseconds, comparable between processes on one machine. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now()
}

export class LatencyTrace {
  private readonly kinds: Uint8Array
  private readonly starts: Float64Array
  private readonly ends: Float64Array
  private readonly values: Float64Array
  private readonly extras: Float32Array
  private count = 0
  private droppedCount = 0

  constructor(readonly capacity = latencyTraceEventsMax) {
    this.kinds = new Uint8Array(capacity)
    this.starts = new Float64Array(capacity)
    this.ends = new Float64Array(capacity)
    this.values = new Float64Array(capacity)
    this.extras = new Float32Array(capacity)
  }

  get size(): number {
    return this.count
  }

  get dropped(): number {
    return this.droppedCount
  }

  record(kind: LatencyTraceKind, startMs: number, endMs: number, value = 0, extra = 0): void {
    if (this.count === this.capacity) {
      this.droppedCount++
      return
    }
    const at = this.count++
    this.kinds[at] = latencyTraceKinds.indexOf(kind)
    this.starts[at] = startMs
    this.ends[at] = endMs
    this.values[at] = value
    this.extras[at] = extra
  }

  /** An interval measured on this process's monotonic clock (`performance.now()`). */
  recordMonotonic(kind: LatencyTraceKind, startMonotonicMs: number, endMonotonicMs: number, value = 0, extra = 0): void {
    this.record(kind, performance.timeOrigin + startMonotonicMs, performance.timeOrigin + endMonotonicMs, value, extra)
  }

  events(): LatencyTraceEvent[] {
    const events: LatencyTraceEvent[] = []
    for (let at = 0; at < this.count; at++) {
      events.push({ kind: latencyTraceKinds[this.kinds[at] as number] as LatencyTraceKind, startMs: this.starts[at] as number, endMs: this.ends[at] as number, value: this.values[at] as number, extra: this.extras[at] as number })
    }
    return events
  }

  toFile(): LatencyTraceFile {
    const events: [number, number, number, number, number][] = []
    for (let at = 0; at < this.count; at++) {
      events.push([this.kinds[at] as number, round3(this.starts[at] as number), round3(this.ends[at] as number), this.values[at] as number, round3(this.extras[at] as number)])
    }
    return { kinds: latencyTraceKinds, dropped: this.droppedCount, events }
  }
}

const round3 = (value: number): number => Math.round(value * 1000) / 1000

export function readLatencyTraceFile(file: LatencyTraceFile): LatencyTraceEvent[] {
  return file.events.map(([kind, startMs, endMs, value, extra]) => ({ kind: file.kinds[kind] as LatencyTraceKind, startMs, endMs, value, extra }))
}

export interface LatencyTraceWatch {
  /** Stops the watches and writes the trace to its file. */
  stop(): void
}

/**
 * The watches that need no call site: GC pauses and late turns of the event
 * loop (with the main thread's time on a CPU and waiting for one, from
 * Linux's schedstat). The trace is written to `file` on `stop`.
 */
export function watchLatencyTrace(trace: LatencyTrace, file: string): LatencyTraceWatch {
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0
      trace.recordMonotonic('gc', entry.startTime, entry.startTime + entry.duration, kind)
    }
  })
  gc.observe({ entryTypes: ['gc'] })
  const schedule = new ThreadSchedule()
  let previousAt = performance.now()
  let previousSchedule = schedule.read()
  const timer = setInterval(() => {
    const at = performance.now()
    const current = schedule.read()
    const lateMs = at - previousAt - loopWatchIntervalMs
    if (lateMs >= loopLateMsMin) {
      const onCpuMs = current === undefined || previousSchedule === undefined ? -1 : current.onCpu - previousSchedule.onCpu
      const waitingMs = current === undefined || previousSchedule === undefined ? -1 : current.waitingForCpu - previousSchedule.waitingForCpu
      trace.recordMonotonic('loop-late', previousAt, at, onCpuMs, waitingMs)
    }
    previousAt = at
    previousSchedule = current
  }, loopWatchIntervalMs)
  timer.unref()
  return {
    stop() {
      clearInterval(timer)
      gc.disconnect()
      schedule.close()
      writeFileSync(file, JSON.stringify(trace.toFile()))
    },
  }
}
