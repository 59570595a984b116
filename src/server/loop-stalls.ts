import { closeSync, openSync, readSync } from 'node:fs'
import { PerformanceObserver } from 'node:perf_hooks'
import type { NodeLog } from './log.ts'

/**
 * Names what held the event loop when it stalls (issue 12, target 3: no
 * stall over 100 ms). A timer ticks every `intervalMs`; a tick that comes
 * `thresholdMs` or more late reports the window since the previous tick:
 * how long the JavaScript thread ran on a CPU (of it, in garbage collection,
 * in the FSM's apply and in store writes — a RocksDB write stall waits there), how long it
 * waited for a CPU (the machine's other threads, RocksDB's flushes and
 * compactions among them), and the rest (blocked in a system call, or
 * asleep). Once a second it also reads RocksDB's cumulative write-stall
 * time and reports any growth.
 *
 * The arithmetic is `describeStall`, a pure function; `watchLoopStalls` is
 * the adapter that samples the clock, the thread's scheduler figures
 * (Linux `/proc`), GC entries (`perf_hooks`) and the store.
 */

/** Counters sampled at a tick, each cumulative (milliseconds). */
export interface LoopSample {
  /** Monotonic clock. */
  readonly at: number
  /** The JavaScript thread on a CPU; undefined where the platform does not say. */
  readonly onCpu: number | undefined
  /** The JavaScript thread runnable, waiting for a CPU; undefined where the platform does not say. */
  readonly waitingForCpu: number | undefined
  /** Garbage collection pauses (the main thread's share). */
  readonly gc: number
  /** Store writes holding the thread (row copies and RocksDB's write, a write stall included). */
  readonly storeWrites: number
  /** The FSM's apply holding the thread. */
  readonly apply: number
}

/** One stalled window, in milliseconds. */
export interface LoopStall {
  /** How late the tick came: the time the loop could not run its timers. */
  readonly delayMs: number
  /** The window the figures below cover: from the previous tick to this one. */
  readonly windowMs: number
  readonly onCpuMs: number | undefined
  readonly gcMs: number
  readonly storeWritesMs: number
  readonly applyMs: number
  readonly waitingForCpuMs: number | undefined
  /** Neither on a CPU nor waiting for one: blocked in a system call (disk, a lock) or asleep. */
  readonly blockedMs: number | undefined
}

export function describeStall(previous: LoopSample, current: LoopSample, intervalMs: number): LoopStall {
  const windowMs = current.at - previous.at
  const onCpuMs = current.onCpu === undefined || previous.onCpu === undefined ? undefined : current.onCpu - previous.onCpu
  const waitingForCpuMs =
    current.waitingForCpu === undefined || previous.waitingForCpu === undefined ? undefined : current.waitingForCpu - previous.waitingForCpu
  return {
    delayMs: Math.max(0, windowMs - intervalMs),
    windowMs,
    onCpuMs,
    gcMs: current.gc - previous.gc,
    storeWritesMs: current.storeWrites - previous.storeWrites,
    applyMs: current.apply - previous.apply,
    waitingForCpuMs,
    blockedMs: onCpuMs === undefined || waitingForCpuMs === undefined ? undefined : Math.max(0, windowMs - onCpuMs - waitingForCpuMs),
  }
}

/** What the watch reads of the store. */
export interface StallWatchedStore {
  readonly writeTime: { readonly milliseconds: number }
  writeStallSeconds(): number | undefined
  numericProperty(name: string): number | undefined
}

export interface LoopStallObserver {
  /** A stalled window (`LoopStall`), reported once. */
  loopStalled(stall: LoopStall): void
  /** RocksDB delayed or stopped writes for this many more seconds. */
  storeWriteStalled(seconds: number): void
}

export interface LoopStallWatchOptions {
  readonly store: StallWatchedStore
  /** The node's apply time (`LedgerNode.applyTime`); none = not counted. */
  readonly apply?: { readonly milliseconds: number }
  readonly log: NodeLog
  readonly observer?: LoopStallObserver
  /** A tick this late is a stall (default `loopStallThresholdMsDefault`). */
  readonly thresholdMs?: number
  /** Between two ticks (default 20 ms). */
  readonly intervalMs?: number
  /** Between two reads of RocksDB's write-stall time (default 1000 ms; a read costs ~50 µs). */
  readonly storeStallCheckMs?: number
}

export const loopStallThresholdMsDefault = 100

export interface LoopStallWatch {
  stop(): void
}

/**
 * The JavaScript thread's scheduler figures, from Linux's
 * `/proc/self/task/<pid>/schedstat` (ns on a CPU, ns runnable on a run
 * queue), read through one open descriptor at offset 0: ~4 µs a read,
 * against ~60 µs to open and read the file each time (a loaded machine).
 */
export class ThreadSchedule {
  private descriptor: number | undefined
  private readonly buffer = Buffer.alloc(128)

  constructor() {
    if (process.platform !== 'linux') return
    try {
      this.descriptor = openSync(`/proc/self/task/${process.pid}/schedstat`, 'r')
    } catch {
      this.descriptor = undefined
    }
  }

  read(): { onCpu: number; waitingForCpu: number } | undefined {
    if (this.descriptor === undefined) return undefined
    try {
      const length = readSync(this.descriptor, this.buffer, 0, this.buffer.length, 0)
      const [onCpu, waiting] = this.buffer.toString('latin1', 0, length).split(' ')
      const result = { onCpu: Number(onCpu) / 1e6, waitingForCpu: Number(waiting) / 1e6 }
      return Number.isFinite(result.onCpu) && Number.isFinite(result.waitingForCpu) ? result : undefined
    } catch {
      return undefined
    }
  }

  close(): void {
    if (this.descriptor !== undefined) closeSync(this.descriptor)
    this.descriptor = undefined
  }
}

const rounded = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : Math.round(ms))

export function watchLoopStalls(options: LoopStallWatchOptions): LoopStallWatch {
  const intervalMs = options.intervalMs ?? 20
  const thresholdMs = options.thresholdMs ?? loopStallThresholdMsDefault
  const storeStallCheckMs = options.storeStallCheckMs ?? 1000
  const store = options.store
  let gcMs = 0
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration
  })
  gc.observe({ entryTypes: ['gc'] })
  const threadSchedule = new ThreadSchedule()
  const sample = (): LoopSample => {
    const schedule = threadSchedule.read()
    return { at: performance.now(), onCpu: schedule?.onCpu, waitingForCpu: schedule?.waitingForCpu, gc: gcMs, storeWrites: store.writeTime.milliseconds, apply: options.apply?.milliseconds ?? 0 }
  }
  let previous = sample()
  let storeStallSeconds = store.writeStallSeconds() ?? 0
  let lastStallCheck = previous.at
  const timer = setInterval(() => {
    // GC entries are delivered on a later turn: a stall's own GC lands in its window or the next one's.
    const current = sample()
    const stall = describeStall(previous, current, intervalMs)
    previous = current
    if (stall.delayMs >= thresholdMs) {
      options.observer?.loopStalled(stall)
      options.log(`event loop stalled ${Math.round(stall.delayMs)} ms`, {
        level: 'warn',
        delayMs: Math.round(stall.delayMs),
        windowMs: Math.round(stall.windowMs),
        onCpuMs: rounded(stall.onCpuMs),
        gcMs: Math.round(stall.gcMs),
        storeWritesMs: Math.round(stall.storeWritesMs),
        applyMs: Math.round(stall.applyMs),
        waitingForCpuMs: rounded(stall.waitingForCpuMs),
        blockedMs: rounded(stall.blockedMs),
      })
    }
    if (current.at - lastStallCheck >= storeStallCheckMs) {
      lastStallCheck = current.at
      const seconds = store.writeStallSeconds()
      if (seconds !== undefined && seconds > storeStallSeconds) {
        const added = seconds - storeStallSeconds
        storeStallSeconds = seconds
        options.observer?.storeWriteStalled(added)
        options.log(`RocksDB delayed or stopped writes for ${Math.round(added * 1000)} ms`, {
          level: 'warn',
          stallMs: Math.round(added * 1000),
          level0Files: store.numericProperty('rocksdb.num-files-at-level0'),
          immutableMemtables: store.numericProperty('rocksdb.num-immutable-mem-table'),
          pendingCompactionBytes: store.numericProperty('rocksdb.estimate-pending-compaction-bytes'),
          delayedWriteRate: store.numericProperty('rocksdb.actual-delayed-write-rate'),
        })
      }
    }
  }, intervalMs)
  timer.unref()
  return {
    stop() {
      clearInterval(timer)
      gc.disconnect()
      threadSchedule.close()
    },
  }
}
