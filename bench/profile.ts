/**
 * A CPU profile of the server under load, summarised per transaction.
 *
 *   node --import tsx bench/profile.ts [--workload bulk|transactions] [--bulk-size 100] [--concurrency 4]
 *                                      [--duration 20] [--warmup 3] [--accounts 1000] [--force-ratio 0] [--keep DIR]
 *                                      [--data DIR] [--ledger profile]
 *
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
import {
  bulkWorkload,
  createLeanHttpTransport,
  ensureLedger,
  runBench,
  startCpuMeter,
  transactionsWorkload,
} from '../src/bench/index.ts'
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
    keep: { type: 'string' },
  },
})
const definition = values.workload === 'transactions' ? transactionsWorkload : values.workload === 'bulk' ? bulkWorkload : undefined
if (definition === undefined) throw new Error('--workload bulk or transactions')
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
let transactions: number
let cpu: ReturnType<ReturnType<typeof startCpuMeter>['finish']>
try {
  await ensureLedger(transport, server.url, settings.ledger)
  const plans = [{ definition, concurrency }]
  if (warmupMs > 0) await runBench({ transport, plans, settings, stop: { kind: 'duration', durationMs: warmupMs }, seed: 2 })
  const meter = startCpuMeter(server.child.pid)
  const fromMicros = monotonicMicros()
  const run = await runBench({ transport, plans, settings, stop: { kind: 'duration', durationMs }, seed: 1 })
  window = { fromMicros, toMicros: monotonicMicros() }
  transactions = run.total.transactions
  cpu = meter.finish(transactions)
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

const perTransaction = (micros: number): string => (micros / transactions).toFixed(1)
const seconds = (window.toMicros - window.fromMicros) / 1e6
const out: string[] = []
out.push(`workload ${definition.name}${definition === bulkWorkload ? ` of ${settings.bulkSize}` : ''}, ${concurrency} clients, ${seconds.toFixed(1)} s: ${transactions} transactions, ${(transactions / seconds).toFixed(0)} tx/s`)
out.push('')
out.push(`| measure | µs per transaction |`)
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
out.push('| category (JS thread self time) | share | µs/tx (share × JS-thread CPU) |')
out.push('| --- | --- | --- |')
for (const category of profileCategories) {
  const micros = summary.byCategory.get(category) ?? 0
  if (micros === 0) continue
  out.push(`| ${category} | ${((100 * micros) / summary.busyMicros).toFixed(1)} % | ${scaled(micros)} |`)
}
out.push('')
out.push('| heaviest functions (self) | category | share | µs/tx |')
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
