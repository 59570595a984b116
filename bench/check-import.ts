/**
 * Check, export and import throughput on a large ledger.
 *
 *   node --max-old-space-size=8192 --import tsx bench/check-import.ts [--transactions N] [--bulk B] [--dir DIR]
 *
 * Builds a ledger of N transactions (default 1,000,000) through LedgerNode
 * with `sync: false` in proposals of B orders (default 1000, a `_bulk`), then
 * measures, each on its own: `tally check` over the whole store (audit
 * entries/s and orders/s replayed), the v2 export of the ledger (logs/s) and
 * the import of that export into a fresh data directory (logs/s). Prints a
 * Markdown report on stdout.
 *
 * With `--dir`, the ledger built under DIR/source is kept and reused by the
 * next run (the build of 1M transactions takes minutes); `--only
 * check,export,import` picks the measures (the export file is written when
 * an import needs it). `--memory-mb M` bounds the check's memory (default
 * the check's own, 256 MiB): a small bound measures its spill.
 */
import { createReadStream, createWriteStream, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { once } from 'node:events'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import { LedgerNode } from '../src/server/index.ts'
import { Store } from '../src/store/index.ts'
import type { AccountAddress, Asset, LedgerName } from '../src/domain/index.ts'
import type { ProposedOrder } from '../src/orders/index.ts'
import { exportLogChunks, exportWriteQueueBytes, importLogStream, runCheck } from '../src/check/index.ts'

const { values } = parseArgs({
  options: { transactions: { type: 'string' }, bulk: { type: 'string' }, dir: { type: 'string' }, keep: { type: 'boolean' }, only: { type: 'string' }, 'memory-mb': { type: 'string' } },
})
/** Measures to run (comma-separated: build, check, export, import); all by default. */
const only = new Set((values.only ?? 'build,check,export,import').split(','))
const transactions = Number(values.transactions ?? 1_000_000)
const bulk = Number(values.bulk ?? 1000)
const checkMemoryBytes = values['memory-mb'] === undefined ? undefined : Number(values['memory-mb']) * 2 ** 20
const root = values.dir ?? mkdtempSync(path.join(os.tmpdir(), 'tally-bench-check-'))
const ledger = 'bench' as LedgerName
const accounts = 10_000
const log = (message: string): void => void process.stderr.write(`${new Date().toISOString()} ${message}\n`)

function clock(): () => number {
  let t = Date.UTC(2026, 0, 1)
  return () => (t += 1)
}

function proposalOrders(first: number, count: number): ProposedOrder[] {
  const orders: ProposedOrder[] = []
  for (let i = first; i < first + count; i++) {
    const source = i % 2 === 0 ? 'world' : `users:${(i * 7919) % accounts}`
    const destination = `users:${i % accounts}`
    orders.push({
      order: {
        type: 'CREATE_TRANSACTION',
        ledger,
        postings: [{ source: source as AccountAddress, destination: destination as AccountAddress, amount: BigInt(1 + (i % 997)), asset: (i % 3 === 0 ? 'EUR/2' : 'USD/2') as Asset }],
        metadata: i % 10 === 0 ? { order: String(i) } : {},
        accountMetadata: {},
        force: true,
      },
    })
  }
  return orders
}

async function build(directory: string): Promise<number> {
  const node = await LedgerNode.open({ dataDirectory: directory, sync: false, now: clock() })
  const started = performance.now()
  await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: {}, features: {} } }], { atomic: true, continueOnFailure: false })
  const inFlightMax = 4
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < transactions) {
      const first = next
      const count = Math.min(bulk, transactions - first)
      next += count
      await node.admission.submit(proposalOrders(first, count), { atomic: true, continueOnFailure: false })
      if (Math.floor(next / 100_000) !== Math.floor((next - count) / 100_000)) log(`build: ${next} transactions`)
    }
  }
  await Promise.all(Array.from({ length: inFlightMax }, worker))
  await node.close()
  return (performance.now() - started) / 1000
}

/** CPU of every thread of this process since `started`: steadier than wall time on a shared machine. */
function cpuSecondsSince(started: NodeJS.CpuUsage): number {
  const cpu = process.cpuUsage(started)
  return (cpu.user + cpu.system) / 1e6
}

interface Row {
  readonly measure: string
  readonly count: string
  readonly seconds: number
  readonly throughput: string
}

async function main(): Promise<void> {
  const source = path.join(root, 'source')
  const target = path.join(root, 'target')
  const exportFile = path.join(root, 'bench.jsonl')
  const rows: Row[] = []
  // The ledger is built once per directory and reused by later runs (a 1M build costs minutes).
  if (existsSync(path.join(source, 'store', 'CURRENT'))) {
    log(`reusing the ledger under ${source}`)
  } else {
    log(`building ${transactions} transactions in proposals of ${bulk} under ${root}`)
    const buildSeconds = await build(source)
    log(`built in ${buildSeconds.toFixed(1)}s`)
    rows.push({ measure: `build (LedgerNode, sync: false, ${bulk} orders/proposal)`, count: `${transactions} transactions`, seconds: buildSeconds, throughput: `${Math.round(transactions / buildSeconds)} tx/s` })
  }

  if (only.has('check')) {
    const store = await Store.open(path.join(source, 'store'))
    const started = performance.now()
    const cpuStarted = process.cpuUsage()
    const checked = await runCheck(store, { ...(checkMemoryBytes === undefined ? {} : { memoryBytesMax: checkMemoryBytes }), onProgress: (p) => p.phase === 'replay' && p.done % 100 === 0 && log(`check: ${p.done}/${p.total}`) })
    const checkSeconds = (performance.now() - started) / 1000
    const checkCpuSeconds = cpuSecondsSince(cpuStarted)
    await store.close()
    log(`check: ok=${checked.ok} ${checked.auditEntries} entries, ${checked.ordersReplayed} orders in ${checkSeconds.toFixed(1)}s, ${checked.spills} spills`)
    if (!checked.ok) throw new Error(`check found ${checked.findings} findings: ${JSON.stringify(checked.findingsList.slice(0, 3))}`)
    rows.push({
      measure: 'check (scan + replay + compare)',
      count: `${checked.auditEntries} audit entries / ${checked.ordersReplayed} orders`,
      seconds: checkSeconds,
      throughput: `${Math.round(checked.auditEntries / checkSeconds)} entries/s, ${Math.round(checked.ordersReplayed / checkSeconds)} orders/s; CPU ${checkCpuSeconds.toFixed(1)} s (${Math.round(checked.ordersReplayed / checkCpuSeconds)} orders per CPU-second)`,
    })
  }

  if (only.has('export') || (only.has('import') && !existsSync(exportFile))) {
    const store = await Store.open(path.join(source, 'store'))
    const started = performance.now()
    const cpuStarted = process.cpuUsage()
    const out = createWriteStream(exportFile, { highWaterMark: exportWriteQueueBytes })
    let exported = 0
    for await (const chunk of exportLogChunks(store, ledger)) {
      if (!out.write(chunk.bytes)) await once(out, 'drain')
      exported += chunk.logs
    }
    out.end()
    await once(out, 'finish')
    const exportSeconds = (performance.now() - started) / 1000
    // CPU of every thread of this process (the JS thread, RocksDB's reads on the thread pool, GC helpers): steadier than wall time on a shared machine.
    const cpuSeconds = cpuSecondsSince(cpuStarted)
    await store.close()
    log(`export: ${exported} logs, ${(statSync(exportFile).size / 1e6).toFixed(0)} MB in ${exportSeconds.toFixed(1)}s, CPU ${cpuSeconds.toFixed(2)}s`)
    rows.push({
      measure: `export (v2 JSON lines, ${(statSync(exportFile).size / 1e6).toFixed(0)} MB)`,
      count: `${exported} logs`,
      seconds: exportSeconds,
      throughput: `${Math.round(exported / exportSeconds)} logs/s; CPU ${cpuSeconds.toFixed(2)} s (${Math.round(exported / cpuSeconds)} logs per CPU-second)`,
    })
  }

  if (only.has('import')) {
    rmSync(target, { recursive: true, force: true })
    const node = await LedgerNode.open({ dataDirectory: target, sync: false })
    const started = performance.now()
    const cpuStarted = process.cpuUsage()
    const imported = await importLogStream(node, ledger, createReadStream(exportFile, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>, {
      onProgress: ({ logs }) => logs % 100_000 === 0 && log(`import: ${logs}`),
    })
    const importSeconds = (performance.now() - started) / 1000
    const importCpuSeconds = cpuSecondsSince(cpuStarted)
    await node.close()
    log(`import: ${imported.logs} logs in ${importSeconds.toFixed(1)}s, CPU ${importCpuSeconds.toFixed(1)}s`)
    rows.push({
      measure: 'import (verify on a worker + replay, sync: false)',
      count: `${imported.logs} logs`,
      seconds: importSeconds,
      throughput: `${Math.round(imported.logs / importSeconds)} logs/s; CPU ${importCpuSeconds.toFixed(1)} s (${Math.round(imported.logs / importCpuSeconds)} logs per CPU-second)`,
    })
  }

  const cpu = os.cpus()[0]?.model ?? 'unknown'
  process.stdout.write(
    [
      `| measure | count | seconds | throughput |`,
      `| --- | --- | --- | --- |`,
      ...rows.map((row) => `| ${row.measure} | ${row.count} | ${row.seconds.toFixed(1)} | ${row.throughput} |`),
      '',
      `machine: ${os.cpus().length} CPUs (${cpu}), node ${process.version}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
      '',
    ].join('\n'),
  )
  if (values.keep !== true && values.dir === undefined) rmSync(root, { recursive: true, force: true })
}

await main()
