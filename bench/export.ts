/**
 * Where `tally export`'s wall time goes, on a ledger `bench/check-import.ts --dir DIR` built:
 *
 *   node --import tsx bench/export.ts --dir DIR [--root CHECKOUT] [--out FILE] [--ledger bench]
 *
 * Exports the ledger as `tally export --out` does (`exportLogChunks` into a
 * file stream of `exportWriteQueueBytes`), with the code of `--root` (another
 * checkout, to time two versions alternately; default this one), and prints
 * one JSON line: logs, bytes, wall seconds, CPU seconds of the whole process
 * and of its JavaScript thread alone (`/proc/self/task/PID/stat`), the wall
 * time spent waiting for the next chunk (the store's read and the printing
 * of a batch) and for the file to drain, and the load average. The output
 * file is kept (`sha256sum` it: byte-identical across versions).
 */
import { createWriteStream, readFileSync, statSync } from 'node:fs'
import { once } from 'node:events'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    root: { type: 'string', default: path.resolve(import.meta.dirname, '..') },
    out: { type: 'string' },
    ledger: { type: 'string', default: 'bench' },
  },
})
if (values.dir === undefined) throw new Error('usage: bench/export.ts --dir DIR [--root CHECKOUT] [--out FILE]')
const root = path.resolve(values.root)
const check = (await import(pathToFileURL(path.join(root, 'src/check/index.ts')).href)) as typeof import('../src/check/index.ts')
const storeModule = (await import(pathToFileURL(path.join(root, 'src/store/index.ts')).href)) as typeof import('../src/store/index.ts')
const ledger = values.ledger as import('../src/domain/index.ts').LedgerName
const outFile = values.out ?? path.join(os.tmpdir(), `tally-bench-export-${process.pid}.jsonl`)

/** CPU seconds of this process's JavaScript thread (its main task), from the kernel's clock ticks. */
function jsThreadCpuSeconds(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // Fields 14 and 15 (utime, stime), counted from the state field (3rd).
  return (Number(fields[11]) + Number(fields[12])) / 100
}

const store = await storeModule.Store.open(path.join(values.dir, 'source', 'store'))
const loadBefore = os.loadavg()[0] as number
const started = performance.now()
const cpuStarted = process.cpuUsage()
const jsStarted = jsThreadCpuSeconds()
const out = createWriteStream(outFile, { highWaterMark: check.exportWriteQueueBytes })
let logs = 0
let waitNext = 0
let waitDrain = 0
const chunks = check.exportLogChunks(store, ledger)[Symbol.asyncIterator]()
for (;;) {
  const asked = performance.now()
  const next = await chunks.next()
  waitNext += performance.now() - asked
  if (next.done === true) break
  const chunk = next.value
  logs += chunk.logs
  if (!out.write(chunk.bytes)) {
    const drainStarted = performance.now()
    await once(out, 'drain')
    waitDrain += performance.now() - drainStarted
  }
}
out.end()
const finishStarted = performance.now()
await once(out, 'finish')
waitDrain += performance.now() - finishStarted
const seconds = (performance.now() - started) / 1000
const cpu = process.cpuUsage(cpuStarted)
const cpuSeconds = (cpu.user + cpu.system) / 1e6
const jsSeconds = jsThreadCpuSeconds() - jsStarted
await store.close()
const bytes = statSync(outFile).size
process.stdout.write(
  `${JSON.stringify({
    root,
    logs,
    bytes,
    seconds: Number(seconds.toFixed(3)),
    logsPerSecond: Math.round(logs / seconds),
    cpuSeconds: Number(cpuSeconds.toFixed(3)),
    cpuMicrosPerLog: Number(((cpuSeconds * 1e6) / logs).toFixed(2)),
    jsThreadSeconds: Number(jsSeconds.toFixed(2)),
    jsMicrosPerLog: Number(((jsSeconds * 1e6) / logs).toFixed(2)),
    waitNextSeconds: Number((waitNext / 1000).toFixed(3)),
    waitDrainSeconds: Number((waitDrain / 1000).toFixed(3)),
    load: [loadBefore, os.loadavg()[0]].map((l) => Number((l as number).toFixed(1))),
    out: outFile,
  })}\n`,
)
