import { readdirSync, readFileSync } from 'node:fs'
import { invariant } from '../domain/index.ts'

/**
 * CPU time spent by the load generator and by the server, so a run reports
 * both per transaction: on a shared machine the client's cost is part of
 * what the server did not get, and a generator that costs as much as the
 * server measures itself.
 *
 * The server's time comes from Linux's `/proc/<pid>/stat` (every thread of
 * the process) and `/proc/<pid>/task/<pid>/stat` (its main thread: for Node,
 * the JavaScript thread; the rest is libuv's pool, RocksDB's threads and GC
 * helpers). It works for any local process id, not only a child, and asks
 * nothing of the server's API.
 */

/** Kernel clock ticks per second for `/proc` times. USER_HZ is 100 on every Linux ABI Node supports. */
export const procTicksPerSecond = 100

export interface CpuTimes {
  /** User plus system CPU, microseconds. */
  readonly micros: number
}

export interface ServerCpuTimes {
  /** Every thread of the process. */
  readonly micros: number
  /** The main (JavaScript) thread alone. */
  readonly mainThreadMicros: number
}

/**
 * utime + stime of one `/proc/…/stat` line, in microseconds. The command
 * name (field 2) is parenthesised and may itself hold spaces and parentheses,
 * so fields are counted from the last `)`.
 */
export function parseProcStatCpuMicros(line: string): number {
  const close = line.lastIndexOf(')')
  invariant(close > 0, 'a /proc stat line names its command in parentheses')
  // After ") ": state is field 3, so utime (14) and stime (15) are at 11 and 12.
  const fields = line.slice(close + 2).trim().split(' ')
  const userTicks = Number(fields[11])
  const systemTicks = Number(fields[12])
  invariant(Number.isSafeInteger(userTicks) && userTicks >= 0, `utime is a tick count in ${line}`)
  invariant(Number.isSafeInteger(systemTicks) && systemTicks >= 0, `stime is a tick count in ${line}`)
  return ((userTicks + systemTicks) * 1_000_000) / procTicksPerSecond
}

/** Undefined when the process is gone or `/proc` is not Linux's. */
export function readServerCpu(pid: number): ServerCpuTimes | undefined {
  invariant(Number.isSafeInteger(pid) && pid > 0, 'a process id is a positive integer')
  try {
    return {
      micros: parseProcStatCpuMicros(readFileSync(`/proc/${pid}/stat`, 'utf8')),
      mainThreadMicros: parseProcStatCpuMicros(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8')),
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** The parent pid (field 4) of a `/proc/…/stat` line. */
export function parseProcStatParentPid(line: string): number {
  const close = line.lastIndexOf(')')
  invariant(close > 0, 'a /proc stat line names its command in parentheses')
  const parent = Number(line.slice(close + 2).split(' ')[1])
  invariant(Number.isSafeInteger(parent) && parent >= 0, `ppid is a process id in ${line}`)
  return parent
}

/**
 * A server made of processes (PostgreSQL: a postmaster and one backend per
 * connection, each its direct child): the CPU of `pid` and its live direct
 * children. Children that exit between two readings take their time with
 * them, so readings are only comparable while the connections stay open.
 * The main-thread figure is the sum of every process's main thread.
 */
export function readProcessFamilyCpu(pid: number): ServerCpuTimes | undefined {
  const own = readServerCpu(pid)
  if (own === undefined) return undefined
  let micros = own.micros
  let mainThreadMicros = own.mainThreadMicros
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry) || Number(entry) === pid) continue
    let line: string
    try {
      line = readFileSync(`/proc/${entry}/stat`, 'utf8')
    } catch {
      continue // exited while we looked
    }
    if (parseProcStatParentPid(line) !== pid) continue
    const child = readServerCpu(Number(entry))
    if (child === undefined) continue
    micros += child.micros
    mainThreadMicros += child.mainThreadMicros
  }
  return { micros, mainThreadMicros }
}

export function readClientCpu(): CpuTimes {
  const usage = process.cpuUsage()
  return { micros: usage.user + usage.system }
}

/**
 * CPU spent over a run, in total, per committed transaction and per
 * operation attempted (a transaction or a read): a read-only run commits
 * no transaction, so only the second says what a read costs. Each is null
 * when there was none.
 */
export interface CpuCost {
  readonly micros: number
  readonly microsPerTransaction: number | null
  readonly microsPerOperation: number | null
}

export interface RunCpu {
  readonly client: CpuCost
  /** Null when no server pid was given or it could not be read. */
  readonly server:
    | (CpuCost & {
        readonly mainThreadMicros: number
        readonly mainThreadMicrosPerTransaction: number | null
        readonly mainThreadMicrosPerOperation: number | null
      })
    | null
  /** The granularity of the server figures: `/proc` counts whole ticks. */
  readonly serverResolutionMicros: number
}

/** What a run did, to divide its CPU by. */
export interface RunWork {
  /** Transactions committed. */
  readonly transactions: number
  /** Operations attempted: transactions (a bulk counts its elements) and reads, failed ones included (they cost too). */
  readonly operations: number
}

export function costOf(micros: number, work: RunWork): CpuCost {
  invariant(micros >= 0, 'CPU time does not run backwards')
  invariant(work.transactions >= 0 && work.operations >= 0, 'work is counted, not owed')
  return {
    micros,
    microsPerTransaction: work.transactions > 0 ? micros / work.transactions : null,
    microsPerOperation: work.operations > 0 ? micros / work.operations : null,
  }
}

/**
 * A running meter: start before the load, `finish` with what the run did
 * (a bare number is the transactions committed, each one operation).
 */
export function startCpuMeter(
  serverPid: number | undefined,
  readServer: (pid: number) => ServerCpuTimes | undefined = readServerCpu,
): { finish(work: RunWork | number): RunCpu } {
  const clientBefore = readClientCpu()
  const serverBefore = serverPid === undefined ? undefined : readServer(serverPid)
  return {
    finish(workOrTransactions) {
      const work = typeof workOrTransactions === 'number' ? { transactions: workOrTransactions, operations: workOrTransactions } : workOrTransactions
      const client = costOf(readClientCpu().micros - clientBefore.micros, work)
      const serverAfter = serverPid === undefined ? undefined : readServer(serverPid)
      let server: RunCpu['server'] = null
      if (serverBefore !== undefined && serverAfter !== undefined) {
        const total = costOf(serverAfter.micros - serverBefore.micros, work)
        const main = costOf(serverAfter.mainThreadMicros - serverBefore.mainThreadMicros, work)
        server = {
          ...total,
          mainThreadMicros: main.micros,
          mainThreadMicrosPerTransaction: main.microsPerTransaction,
          mainThreadMicrosPerOperation: main.microsPerOperation,
        }
      }
      return { client, server, serverResolutionMicros: 1_000_000 / procTicksPerSecond }
    },
  }
}
