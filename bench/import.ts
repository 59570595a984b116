/**
 * Where `tally import`'s wall time and CPU go, on an export file
 * (`bench/check-import.ts --dir DIR` writes DIR/bench.jsonl; `head -n N` of it
 * is a smaller one):
 *
 *   node --import tsx bench/import.ts --in FILE [--root CHECKOUT] [--ledger bench] [--no-sync] [--planner worker|thread]
 *
 * Imports the file into a fresh data directory as `tally import --data` does
 * (a `LedgerNode` with the WAL synced per proposal unless `--no-sync`), with
 * the code of `--root` (another checkout, to time two versions alternately;
 * default this one), and prints one JSON line: logs, wall seconds and logs/s,
 * CPU seconds of the whole process and of its JavaScript thread alone
 * (`/proc/self/task/PID/stat`), each per log, the planner used and the load
 * average before and after. A checkout whose importer reads byte streams
 * (`importLogStream`) is given the file's chunks; an older one gets
 * `importLogs` over `parseJsonStream`. `--planner` picks where the stream's
 * logs are parsed and verified when the checkout offers the choice.
 */
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'

const { values } = parseArgs({
  options: {
    in: { type: 'string' },
    root: { type: 'string', default: path.resolve(import.meta.dirname, '..') },
    ledger: { type: 'string', default: 'bench' },
    'no-sync': { type: 'boolean', default: false },
    planner: { type: 'string' },
  },
})
if (values.in === undefined) throw new Error('usage: bench/import.ts --in FILE [--root CHECKOUT] [--no-sync] [--planner worker|thread]')
const root = path.resolve(values.root)
type CheckModule = typeof import('../src/check/index.ts')
const check = (await import(pathToFileURL(path.join(root, 'src/check/index.ts')).href)) as CheckModule & { importLogStream?: CheckModule['importLogStream'] }
const server = (await import(pathToFileURL(path.join(root, 'src/server/index.ts')).href)) as typeof import('../src/server/index.ts')
const ledger = values.ledger as import('../src/domain/index.ts').LedgerName

/** CPU seconds of this process's JavaScript thread (its main task), from the kernel's clock ticks. */
function jsThreadCpuSeconds(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // Fields 14 and 15 (utime, stime), counted from the state field (3rd).
  return (Number(fields[11]) + Number(fields[12])) / 100
}

const directory = mkdtempSync(path.join(os.tmpdir(), 'tally-bench-import-'))
try {
  const node = await server.LedgerNode.open({ dataDirectory: directory, sync: values['no-sync'] !== true })
  const source = createReadStream(values.in, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>
  const loadBefore = os.loadavg()[0] as number
  const started = performance.now()
  const cpuStarted = process.cpuUsage()
  const jsStarted = jsThreadCpuSeconds()
  let planner = 'thread (importLogs)'
  let summary: { logs: number }
  if (check.importLogStream !== undefined) {
    const chosen = values.planner === undefined ? {} : { planner: values.planner as 'worker' | 'thread' }
    planner = values.planner ?? 'default'
    summary = await check.importLogStream(node, ledger, source, chosen)
  } else {
    summary = await check.importLogs(node, ledger, check.parseJsonStream(source))
  }
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuStarted)
  const cpuSeconds = (cpu.user + cpu.system) / 1e6
  const jsSeconds = jsThreadCpuSeconds() - jsStarted
  await node.close()
  const logs = summary.logs
  process.stdout.write(
    `${JSON.stringify({
      root,
      planner,
      sync: values['no-sync'] !== true,
      logs,
      seconds: Number(seconds.toFixed(3)),
      logsPerSecond: Math.round(logs / seconds),
      cpuSeconds: Number(cpuSeconds.toFixed(2)),
      cpuMicrosPerLog: Number(((cpuSeconds * 1e6) / logs).toFixed(1)),
      jsThreadSeconds: Number(jsSeconds.toFixed(2)),
      jsMicrosPerLog: Number(((jsSeconds * 1e6) / logs).toFixed(1)),
      otherThreadsMicrosPerLog: Number((((cpuSeconds - jsSeconds) * 1e6) / logs).toFixed(1)),
      load: [loadBefore, os.loadavg()[0]].map((l) => Number((l as number).toFixed(1))),
    })}\n`,
  )
} finally {
  rmSync(directory, { recursive: true, force: true })
}
