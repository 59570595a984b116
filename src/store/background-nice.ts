import { readFileSync, readdirSync } from 'node:fs'
import os from 'node:os'

/**
 * RocksDB's compaction threads at a lower CPU priority than the JavaScript
 * thread (issue 12, target 3: no stall over 100 ms). On 2 cores, RocksDB's
 * background work competes with the JavaScript thread for a CPU; a stall of
 * the event loop was mostly the thread waiting for one (docs/performance.md,
 * "Event-loop stalls"). On Linux a thread's niceness is its own
 * (`setpriority(PRIO_PROCESS, tid)`), so some threads alone can yield, while
 * libuv's pool (the WAL's fdatasync) and V8's GC helpers (whose work a GC
 * pause waits for) keep the process's priority.
 *
 * Only compactions (`rocksdb:low`, `rocksdb:bottom`) by default: they are
 * work RocksDB can defer (L0 files pile up, up to its slowdown trigger),
 * while a flush (`rocksdb:high`) that falls behind fills the memtables and
 * RocksDB then delays or stops writes on the JavaScript thread — measured:
 * flushes reniced with compactions stalled writes where compactions alone
 * did not (docs/performance.md, "Measured: RocksDB's compaction threads at a
 * lower priority").
 *
 * Threads are found by name under `/proc/self/task`; RocksDB may start a pool
 * thread after the store opened (a new thread inherits its creator's
 * niceness, not ours), so the server sweeps again now and then
 * (`keepStoreThreadsNiced`). Raising one's own threads' niceness needs no
 * privilege; where it cannot apply (not Linux, no such thread, a refusal)
 * the result says so and nothing fails.
 */

/** Name prefixes of RocksDB's compaction pools (its flush pool is `rocksdb:high`). */
export const compactionThreadNames: readonly string[] = ['rocksdb:low', 'rocksdb:bottom']

/**
 * The server's default niceness for RocksDB's compaction threads (`tally
 * serve --store-compaction-nice`); 0 leaves them at the process's.
 */
export const storeCompactionNiceDefault = 0

/** Between two sweeps for threads started later (a sweep reads ~15 small `/proc` files, ~0.1 ms). */
export const storeThreadSweepMsDefault = 10_000

/** What a sweep did. */
export interface StoreThreadNiceSweep {
  /** Threads of the names asked for seen. */
  readonly found: number
  /** Given the niceness now (the others already had it or more). */
  readonly changed: number
  /** Refused by the system (the first refusal's message in `failure`). */
  readonly failed: number
  readonly failure?: string
}

/** The system calls a sweep makes, replaceable in tests. */
export interface ThreadPriorityIo {
  /** Thread ids of this process. */
  threads(): readonly number[]
  /** A thread's name (`comm`); undefined when it ended meanwhile. */
  name(thread: number): string | undefined
  getPriority(thread: number): number
  setPriority(thread: number, nice: number): void
}

export const linuxThreadPriorityIo: ThreadPriorityIo = {
  threads: () => readdirSync('/proc/self/task').map(Number),
  name(thread) {
    try {
      return readFileSync(`/proc/self/task/${thread}/comm`, 'latin1').trimEnd()
    } catch {
      return undefined // the thread ended between the listing and the read
    }
  },
  getPriority: (thread) => os.getPriority(thread),
  setPriority: (thread, nice) => os.setPriority(thread, nice),
}

/** The per-thread niceness of this platform; null where there is none (not Linux). */
export function platformThreadPriorityIo(): ThreadPriorityIo | null {
  return process.platform === 'linux' ? linuxThreadPriorityIo : null
}

/** Niceness is -20..19 on Linux; 0 means "leave them at the process's". */
export function validStoreThreadNice(nice: number): boolean {
  return Number.isSafeInteger(nice) && nice >= 0 && nice <= 19
}

/**
 * Gives every thread of this process whose name starts with one of `names`
 * at least niceness `nice` (a thread already nicer is left alone).
 * Undefined where the platform has no per-thread niceness (not Linux).
 */
export function niceStoreThreads(nice: number, io: ThreadPriorityIo | null = platformThreadPriorityIo(), names: readonly string[] = compactionThreadNames): StoreThreadNiceSweep | undefined {
  if (!validStoreThreadNice(nice)) throw new RangeError(`a thread niceness of 0..19, got ${nice}`)
  if (io === null) return undefined
  let found = 0
  let changed = 0
  let failed = 0
  let failure: string | undefined
  for (const thread of io.threads()) {
    const name = io.name(thread)
    if (name === undefined || !names.some((prefix) => name.startsWith(prefix))) continue
    found++
    try {
      if (io.getPriority(thread) >= nice) continue
      io.setPriority(thread, nice)
      changed++
    } catch (error) {
      // ESRCH: it ended meanwhile; EACCES/EPERM: a sandbox refused. Either way the thread keeps running as it was.
      failed++
      failure ??= (error as Error).message
    }
  }
  return { found, changed, failed, ...(failure === undefined ? {} : { failure }) }
}

export interface StoreThreadNiceKeeper {
  stop(): void
}

export interface StoreThreadNiceOptions {
  readonly nice: number
  /** Warnings (cannot apply) and the first sweep's figures. */
  readonly log: (message: string, fields: { readonly level: 'info' | 'warn'; readonly [field: string]: string | number | undefined }) => void
  readonly sweepMs?: number
  /** Thread name prefixes (default `compactionThreadNames`). */
  readonly names?: readonly string[]
  /** Default `platformThreadPriorityIo()`; null: a platform without per-thread niceness. */
  readonly io?: ThreadPriorityIo | null
}

/**
 * Sweeps now and every `sweepMs` (an unreferenced timer). Warns once when it
 * cannot apply (and goes on serving): not Linux, no RocksDB thread found, or a refusal.
 */
export function keepStoreThreadsNiced(options: StoreThreadNiceOptions): StoreThreadNiceKeeper {
  const io = options.io === undefined ? platformThreadPriorityIo() : options.io
  if (io === null) {
    options.log(`store threads: a niceness of ${options.nice} cannot apply on ${process.platform} (no per-thread niceness); RocksDB's compactions keep the process's`, { level: 'warn' })
    return { stop() {} }
  }
  let warned = false
  const sweep = (first: boolean): void => {
    const result = niceStoreThreads(options.nice, io, options.names ?? compactionThreadNames) as StoreThreadNiceSweep
    if (result.failed > 0 && !warned) {
      warned = true
      options.log(`store threads: ${result.failed} of RocksDB's compaction threads refused a niceness of ${options.nice}: ${result.failure ?? ''}`, { level: 'warn', ...result })
    } else if (first && result.found === 0 && !warned) {
      warned = true
      options.log(`store threads: no RocksDB compaction thread found to give a niceness of ${options.nice}`, { level: 'warn' })
    } else if (first) {
      options.log(`store threads: ${result.found} RocksDB compaction threads at niceness ${options.nice}`, { level: 'info', ...result })
    }
  }
  sweep(true)
  const timer = setInterval(() => sweep(false), options.sweepMs ?? storeThreadSweepMsDefault)
  timer.unref()
  return {
    stop() {
      clearInterval(timer)
    },
  }
}
