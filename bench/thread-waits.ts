/**
 * Where a running server's threads spent their time, from Linux's schedstat
 * (issue 12, target 3): per thread class (the JavaScript thread, RocksDB's
 * `rocksdb:*` threads, the others), time on a CPU and time runnable but
 * waiting for one, summed over the threads' lives while watched.
 *
 *   node --import tsx bench/thread-waits.ts --match 'tally-growth-' [--every-ms 1000] [--json FILE]
 *
 * Waits for a `tally serve` process whose command line contains --match,
 * then samples `/proc/PID/task/` until that process ends (a thread that ended
 * keeps its last sample), and prints one line per class, with the JavaScript
 * thread's wait per ms on a CPU: the share of the machine it did not get
 * when it could run. Run beside `bench/growth.ts` (or any load) to compare
 * builds, e.g. RocksDB's threads reniced (docs/performance.md, "Measured,
 * not adopted: RocksDB's background threads at a lower priority"): the
 * niceness column shows what each class ran at. A benchmark, not a test.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

const { values } = parseArgs({ options: { match: { type: 'string' }, 'every-ms': { type: 'string', default: '1000' }, json: { type: 'string' } } })
const match = values.match
if (match === undefined) throw new Error('--match TEXT: part of the server command line')
const everyMs = Number(values['every-ms'])
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function findServer(): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      const command = readFileSync(`/proc/${entry}/cmdline`, 'latin1').split('\0').join(' ')
      if (command.includes('tally.mjs serve') && command.includes(match as string)) return Number(entry)
    } catch {
      continue
    }
  }
  return undefined
}

let pid: number | undefined
while ((pid = findServer()) === undefined) await sleep(100)
const threads = new Map<number, { name: string; onCpuMs: number; waitingMs: number; nice: number }>()
const started = performance.now()
for (;;) {
  let tasks: string[]
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    break // the server ended
  }
  for (const task of tasks) {
    try {
      const [onCpu, waiting] = readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'latin1').split(' ').map(Number)
      const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'latin1')
      const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
      const name = Number(task) === pid ? 'javascript' : readFileSync(`/proc/${pid}/task/${task}/comm`, 'latin1').trimEnd()
      threads.set(Number(task), { name, onCpuMs: (onCpu as number) / 1e6, waitingMs: (waiting as number) / 1e6, nice })
    } catch {
      continue
    }
  }
  await sleep(everyMs)
}
const classes = new Map<string, { threads: number; onCpuMs: number; waitingMs: number; nice: Set<number> }>()
for (const thread of threads.values()) {
  const key = thread.name === 'javascript' ? 'javascript' : thread.name.startsWith('rocksdb:') ? thread.name : 'other'
  const sum = classes.get(key) ?? { threads: 0, onCpuMs: 0, waitingMs: 0, nice: new Set<number>() }
  sum.threads++
  sum.onCpuMs += thread.onCpuMs
  sum.waitingMs += thread.waitingMs
  sum.nice.add(thread.nice)
  classes.set(key, sum)
}
const rows = [...classes.entries()].map(([name, sum]) => ({ name, threads: sum.threads, nice: [...sum.nice].join('/'), onCpuS: Math.round(sum.onCpuMs / 100) / 10, waitingS: Math.round(sum.waitingMs / 100) / 10, waitPerCpu: Math.round((sum.waitingMs / sum.onCpuMs) * 100) / 100 }))
console.log(`server ${pid} watched ${Math.round((performance.now() - started) / 1000)} s`)
console.log('| threads | count | nice | on CPU s | waiting s | wait ÷ CPU |')
console.log('| --- | --- | --- | --- | --- | --- |')
for (const row of rows) console.log(`| ${row.name} | ${row.threads} | ${row.nice} | ${row.onCpuS} | ${row.waitingS} | ${row.waitPerCpu} |`)
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(rows, null, 1))
