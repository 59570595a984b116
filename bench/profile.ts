/**
 * A CPU profile of the server under load, summarised per transaction.
 *
 *   node --import tsx bench/profile.ts [--workload bulk|transactions|get-account|list-filter|aggregate-balances]
 *                                      [--bulk-size 100] [--concurrency 4] [--duration 20] [--warmup 3]
 *                                      [--accounts 1000] [--force-ratio 0] [--fill N] [--keep DIR]
 *                                      [--data DIR] [--ledger profile] [--answer-cache-bytes B]
 *
 * Read workloads profile a used ledger: `--fill` transactions (default
 * 100,000 for a read workload, 0 for a write one) are committed by `_bulk`
 * first, every `users:k` funded (`src/bench/fill.ts`), before the warm-up;
 * their figures are per operation (one read) rather than per transaction.
 * Starts a fresh `tally serve` under `node --cpu-prof`, warms it up, then
 * drives it for --duration with the bench's load generator. The profile is
 * cut to that window (V8's profile clock and `process.hrtime` are both
 * CLOCK_MONOTONIC), and the JavaScript thread's self time is printed by
 * category (`src/bench/profile-summary.ts`) in µs per committed transaction,
 * beside the server's whole-process and main-thread CPU from /proc (the
 * difference is RocksDB's threads, libuv's pool — the WAL fsync — and GC
 * helpers) and the client's own CPU. With --keep the `.cpuprofile` is kept
 * (open it in Chrome DevTools or speedscope). With --data the server runs on
 * that existing data directory (e.g. the 10M-transaction store
 * `bench/growth.ts --keep` leaves) instead of a fresh one, and it is kept;
 * `--ledger growth` then goes on writing to the ledger that holds them. The
 * same load profiled on a fresh and on a large ledger shows what grows.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { bulkWorkload, createDefaultRegistry, createLeanHttpTransport, ensureLedger, fillLedger, runBench, startCpuMeter } from '../src/bench/index.ts'
import { profileCategories, summariseProfile, type CpuProfile } from '../src/bench/profile-summary.ts'

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    workload: { type: 'string', default: 'bulk' },
    'bulk-size': { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '4' },
    duration: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    accounts: { type: 'string', default: '1000' },
    'force-ratio': { type: 'string', default: '0' },
    data: { type: 'string' },
    ledger: { type: 'string', default: 'profile' },
    'sampling-interval-us': { type: 'string', default: '500' },
    fill: { type: 'string' },
    keep: { type: 'string' },
    // The server's --answer-cache-bytes: 0 profiles reads that miss the kept answers.
    'answer-cache-bytes': { type: 'string' },
  },
})
const registry = createDefaultRegistry()
const definition = registry.get(values.workload)
if (definition === undefined) throw new Error(`--workload: one of ${registry.names().join(', ')}`)
const reads = definition.kind === 'read'
const fillTransactions = Number(values.fill ?? (reads ? 100_000 : 0))
// What the figures are divided by: committed transactions for writes, reads answered for reads.
const unit = reads ? 'operation' : 'transaction'
const settings = { ledger: values.ledger, accounts: Number(values.accounts), bulkSize: Number(values['bulk-size']), forceRatio: Number(values['force-ratio']) }
const concurrency = Number(values.concurrency)
const durationMs = Number(values.duration) * 1000
const warmupMs = Number(values.warmup) * 1000

const directory = await mkdtemp(path.join(os.tmpdir(), 'tally-profile-'))
const profileDirectory = path.join(directory, 'profile')
await mkdir(profileDirectory)

function startServer(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [
      '--cpu-prof',
      `--cpu-prof-dir=${profileDirectory}`,
      `--cpu-prof-interval=${Number(values['sampling-interval-us'])}`,
      path.join(repositoryRoot, 'bin', 'tally.mjs'),
      'serve',
      '--data',
      values.data === undefined ? path.join(directory, 'data') : path.resolve(values.data),
      '--listen',
      '127.0.0.1:0',
      ...(values['answer-cache-bytes'] === undefined ? [] : ['--answer-cache-bytes', values['answer-cache-bytes']]),
    ],
    { cwd: repositoryRoot, stdio: ['ignore', 'pipe', 'inherit'] },
  )
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`tally serve exited (${code ?? signal}) before listening`)))
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const match = /^listening (\S+):(\d+)$/.exec(line.trim())
      if (match !== null) resolve({ child, url: `http://127.0.0.1:${match[2]}` })
    })
  })
}

const monotonicMicros = (): number => Number(process.hrtime.bigint() / 1000n)

const server = await startServer()
const transport = createLeanHttpTransport({ target: new URL(server.url), socketsMax: concurrency, requestTimeoutMs: 120_000 })
let window: { fromMicros: number; toMicros: number }
let counted: number
let cpu: ReturnType<ReturnType<typeof startCpuMeter>['finish']>
try {
  await ensureLedger(transport, server.url, settings.ledger)
  if (fillTransactions > 0) {
    const fill = await fillLedger({ transport, settings, transactions: fillTransactions, seed: 3 })
    process.stderr.write(`profile: filled ${fill.transactions} transactions in ${(fill.elapsedMs / 1000).toFixed(1)} s\n`)
  }
  const plans = [{ definition, concurrency }]
  if (warmupMs > 0) await runBench({ transport, plans, settings, stop: { kind: 'duration', durationMs: warmupMs }, seed: 2 })
  const meter = startCpuMeter(server.child.pid)
  const fromMicros = monotonicMicros()
  const run = await runBench({ transport, plans, settings, stop: { kind: 'duration', durationMs }, seed: 1 })
  window = { fromMicros, toMicros: monotonicMicros() }
  counted = reads ? run.total.operations - run.total.operationsFailed : run.total.transactions
  cpu = meter.finish(counted)
  if (run.total.operationsFailed > 0) process.stderr.write(`profile: ${run.total.operationsFailed} operations failed: ${JSON.stringify(run.total.failures)}\n`)
} finally {
  transport.close()
  server.child.kill('SIGTERM')
  await new Promise((resolve) => server.child.once('exit', resolve))
}

const profileFile = (await readdir(profileDirectory)).find((name) => name.endsWith('.cpuprofile'))
if (profileFile === undefined) throw new Error('the server wrote no .cpuprofile (did it exit cleanly on SIGTERM?)')
const profile = JSON.parse(await readFile(path.join(profileDirectory, profileFile), 'utf8')) as CpuProfile
const summary = summariseProfile(profile, window)
if (summary.samples === 0) throw new Error('no profile samples fell in the load window: clocks disagree?')

const perTransaction = (micros: number): string => (micros / counted).toFixed(1)
const seconds = (window.toMicros - window.fromMicros) / 1e6
const out: string[] = []
out.push(
  `workload ${definition.name}${definition === bulkWorkload ? ` of ${settings.bulkSize}` : ''}, ${concurrency} clients, ${seconds.toFixed(1)} s` +
    `${fillTransactions > 0 ? ` after a fill of ${fillTransactions} transactions` : ''}: ${counted} ${unit}s, ${(counted / seconds).toFixed(0)} ${reads ? 'req' : 'tx'}/s`,
)
out.push('')
out.push(`| measure | µs per ${unit} |`)
out.push(`| --- | --- |`)
out.push(`| server CPU, all threads (/proc) | ${cpu.server === null ? '–' : perTransaction(cpu.server.micros)} |`)
out.push(`| server CPU, JavaScript thread (/proc) | ${cpu.server === null ? '–' : perTransaction(cpu.server.mainThreadMicros)} |`)
out.push(`| server CPU, other threads (RocksDB, libuv pool/fsync, GC helpers) | ${cpu.server === null ? '–' : perTransaction(cpu.server.micros - cpu.server.mainThreadMicros)} |`)
out.push(`| JavaScript thread non-idle wall time in the profile (≥ its CPU when the machine is shared) | ${perTransaction(summary.busyMicros)} |`)
out.push(`| client (load generator) CPU | ${perTransaction(cpu.client.micros)} |`)
out.push('')
// The profiler samples wall time: on a shared machine the thread is also
// descheduled while "busy", so the profile's shares are applied to the JS
// thread's CPU from /proc rather than its own busy total.
const jsThreadMicros = cpu.server?.mainThreadMicros ?? summary.busyMicros
const scaled = (micros: number): string => perTransaction((micros * jsThreadMicros) / summary.busyMicros)
out.push(`| category (JS thread self time) | share | µs/${reads ? 'op' : 'tx'} (share × JS-thread CPU) |`)
out.push('| --- | --- | --- |')
for (const category of profileCategories) {
  const micros = summary.byCategory.get(category) ?? 0
  if (micros === 0) continue
  out.push(`| ${category} | ${((100 * micros) / summary.busyMicros).toFixed(1)} % | ${scaled(micros)} |`)
}
out.push('')
out.push(`| heaviest functions (self) | category | share | µs/${reads ? 'op' : 'tx'} |`)
out.push('| --- | --- | --- | --- |')
for (const cost of summary.topFunctions) {
  out.push(`| \`${cost.name.replaceAll('|', '\\|')}\` | ${cost.category} | ${((100 * cost.micros) / summary.busyMicros).toFixed(1)} % | ${scaled(cost.micros)} |`)
}
process.stdout.write(out.join('\n') + '\n')

if (values.keep !== undefined) {
  await cp(path.join(profileDirectory, profileFile), values.keep)
  process.stderr.write(`profile: kept ${values.keep}\n`)
}
await rm(directory, { recursive: true, force: true })
