/**
 * Tally against a Postgres ledger, same workload shapes, same run, same machine.
 *
 *   node --import tsx bench/compare.ts [--duration 10] [--warmup 2] [--shapes a,b] [--accounts 1000] [--json FILE]
 *
 * Starts a fresh `tally serve` (its own temp data directory, WAL fsync on
 * before every reply, as by default) and a private PostgreSQL cluster
 * (`src/bench/peer/`: fsync and synchronous_commit on; needs Debian's
 * `postgresql` package), then runs each shape on Tally and on the peer in
 * turn with the same generator, seed and concurrency, and prints Tally ÷ peer
 * for throughput beside both sides' p99 and CPU per transaction (client: this
 * process; server: Tally's process, or the postmaster and its backends).
 * Both servers are stopped and their directories deleted at the end.
 *
 * At one client Tally's JIT settles only after ~4,000 requests (15–20 s:
 * TurboFan's compiles and the first cache rotations' deopts), while the
 * peer needs no warm-up: give `--warmup 20` for steady-state one-client
 * figures (bench/results/2026-12-07-lone-inline-fdatasync.md, section 7).
 *
 * Shapes: single transfers from a hot source (`world` → users:k) and between
 * random pairs (users:i → users:j, forced as the peer's are), and batches of
 * 100 and 1000 (Tally's `_bulk?atomic=false`, the peer's one-transaction
 * PL/pgSQL batch).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import pg from 'pg'
import {
  bulkWorkload,
  createLeanHttpTransport,
  ensureLedger,
  readProcessFamilyCpu,
  readServerCpu,
  runBench,
  startCpuMeter,
  transactionsWorkload,
  type HttpTransport,
  type RunCpu,
  type ServerCpuTimes,
  type WorkloadDefinition,
  type WorkloadResult,
} from '../src/bench/index.ts'
import { findPostgresBinaries, startPostgresCluster } from '../src/bench/peer/cluster.ts'
import { createPeerTransport } from '../src/bench/peer/peer-transport.ts'
import { installPeerSchema, peerCounts } from '../src/bench/peer/postgres-ledger.ts'

interface Shape {
  readonly name: string
  readonly summary: string
  readonly definition: WorkloadDefinition
  readonly concurrency: number
  readonly bulkSize: number
  readonly forceRatio: number
}

const shapes: readonly Shape[] = [
  { name: 'single-hot-c1', summary: 'one transfer per request, world → users:k, 1 client', definition: transactionsWorkload, concurrency: 1, bulkSize: 1, forceRatio: 0 },
  { name: 'single-hot-c16', summary: 'one transfer per request, world → users:k, 16 clients', definition: transactionsWorkload, concurrency: 16, bulkSize: 1, forceRatio: 0 },
  { name: 'single-pairs-c16', summary: 'one transfer per request, users:i → users:j (forced), 16 clients', definition: transactionsWorkload, concurrency: 16, bulkSize: 1, forceRatio: 1 },
  { name: 'single-pairs-c64', summary: 'one transfer per request, users:i → users:j (forced), 64 clients', definition: transactionsWorkload, concurrency: 64, bulkSize: 1, forceRatio: 1 },
  { name: 'batch100-hot-c4', summary: 'batches of 100, world → users:k, 4 clients', definition: bulkWorkload, concurrency: 4, bulkSize: 100, forceRatio: 0 },
  { name: 'batch100-pairs-c4', summary: 'batches of 100, users:i → users:j (forced), 4 clients', definition: bulkWorkload, concurrency: 4, bulkSize: 100, forceRatio: 1 },
  { name: 'batch1000-hot-c2', summary: 'batches of 1000, world → users:k, 2 clients', definition: bulkWorkload, concurrency: 2, bulkSize: 1000, forceRatio: 0 },
]

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    shapes: { type: 'string' },
    accounts: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    json: { type: 'string' },
  },
})
const durationMs = Number(values.duration) * 1000
const warmupMs = Number(values.warmup) * 1000
const accounts = Number(values.accounts)
const seed = Number(values.seed)
if (!(durationMs > 0 && warmupMs >= 0 && Number.isSafeInteger(accounts) && accounts >= 2 && Number.isSafeInteger(seed))) {
  throw new Error('--duration > 0, --warmup >= 0, --accounts >= 2 and an integer --seed please')
}
const chosen = values.shapes === undefined ? shapes : values.shapes.split(',').map((name) => {
  const shape = shapes.find((candidate) => candidate.name === name)
  if (shape === undefined) throw new Error(`unknown shape ${name}; known: ${shapes.map((candidate) => candidate.name).join(', ')}`)
  return shape
})

const binaries = findPostgresBinaries()
if (binaries === undefined) {
  process.stderr.write('compare: PostgreSQL is not installed (Debian: apt-get install -y postgresql)\n')
  process.exit(2)
}

interface Side {
  readonly transport: HttpTransport
  readonly serverPid: number
  readonly readServer: (pid: number) => ServerCpuTimes | undefined
}

interface Measured {
  readonly result: WorkloadResult
  readonly cpu: RunCpu
}

async function measure(side: Side, shape: Shape, ms: number): Promise<Measured> {
  const settings = { ledger: 'compare', accounts, bulkSize: shape.bulkSize, forceRatio: shape.forceRatio }
  const meter = startCpuMeter(side.serverPid, side.readServer)
  const run = await runBench({
    transport: side.transport,
    plans: [{ definition: shape.definition, concurrency: shape.concurrency }],
    settings,
    stop: { kind: 'duration', durationMs: ms },
    seed,
  })
  const result = run.workloads[0]
  if (result === undefined) throw new Error('one workload, one result')
  return { result, cpu: meter.finish(result.transactions) }
}

function startTally(dataDirectory: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [path.join(repositoryRoot, 'bin', 'tally.mjs'), 'serve', '--data', dataDirectory, '--listen', '127.0.0.1:0'], {
    cwd: repositoryRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`tally serve exited (${code ?? signal}) before listening`)))
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const match = /^listening (\S+):(\d+)$/.exec(line.trim())
      if (match !== null) resolve({ child, url: `http://127.0.0.1:${match[2]}` })
    })
  })
}

function fixed(value: number | null, digits = 0): string {
  return value === null ? '–' : value.toFixed(digits)
}

const directory = await mkdtemp(path.join(os.tmpdir(), 'tally-compare-'))
const tally = await startTally(path.join(directory, 'data'))
const cluster = await startPostgresCluster({ binaries })
const concurrencyMax = Math.max(...chosen.map((shape) => shape.concurrency))
const pool = new pg.Pool({ host: cluster.host, port: cluster.port, user: cluster.user, database: cluster.database, max: concurrencyMax })
const rows: { shape: Shape; tally: Measured; peer: Measured }[] = []
try {
  await installPeerSchema(pool)
  const tallyTransport = createLeanHttpTransport({ target: new URL(tally.url), socketsMax: concurrencyMax, requestTimeoutMs: 120_000 })
  await ensureLedger(tallyTransport, tally.url, 'compare')
  const tallySide: Side = { transport: tallyTransport, serverPid: tally.child.pid ?? 0, readServer: readServerCpu }
  const peerSide: Side = { transport: createPeerTransport(pool), serverPid: cluster.serverPid, readServer: readProcessFamilyCpu }
  for (const shape of chosen) {
    process.stderr.write(`compare: ${shape.name} (${shape.summary})\n`)
    if (warmupMs > 0) {
      await measure(tallySide, shape, warmupMs)
      await measure(peerSide, shape, warmupMs)
    }
    const tallyRun = await measure(tallySide, shape, durationMs)
    const peerRun = await measure(peerSide, shape, durationMs)
    rows.push({ shape, tally: tallyRun, peer: peerRun })
    process.stderr.write(`  tally ${tallyRun.result.transactionsPerSecond.toFixed(0)} tx/s, peer ${peerRun.result.transactionsPerSecond.toFixed(0)} tx/s\n`)
  }
  tallyTransport.close()
  // The peer's books after the run: a sanity check that it did the work it was credited with.
  const counts = await peerCounts(pool)
  const peerCommitted = rows.reduce((sum, row) => sum + row.peer.result.transactions, 0)
  process.stderr.write(`compare: peer holds ${counts.transfers} transfers (${peerCommitted} in measured windows), ${counts.entries} entries summing to ${counts.entrySum}\n`)
  if (counts.entries !== 2n * counts.transfers || counts.entrySum !== 0n || counts.transfers < BigInt(peerCommitted)) {
    throw new Error('the peer\'s books do not balance or miss credited transfers')
  }
} finally {
  await pool.end()
  await cluster.stop()
  tally.child.kill('SIGTERM')
  await new Promise((resolve) => tally.child.once('exit', resolve))
  await rm(directory, { recursive: true, force: true })
}

const header = [
  '| shape | clients | Tally tx/s | peer tx/s | **Tally ÷ peer** | Tally p99 ms | peer p99 ms | Tally server µs/tx (JS thread) | peer server µs/tx | client µs/tx Tally / peer | failed Tally / peer |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
]
const lines = rows.map(({ shape, tally: t, peer: p }) => {
  const ratio = p.result.transactionsPerSecond > 0 ? t.result.transactionsPerSecond / p.result.transactionsPerSecond : null
  return [
    shape.name,
    String(shape.concurrency),
    fixed(t.result.transactionsPerSecond),
    fixed(p.result.transactionsPerSecond),
    `**${fixed(ratio, 2)}**`,
    fixed(t.result.latency.p99Ms, 1),
    fixed(p.result.latency.p99Ms, 1),
    `${fixed(t.cpu.server?.microsPerTransaction ?? null)} (${fixed(t.cpu.server?.mainThreadMicrosPerTransaction ?? null)})`,
    fixed(p.cpu.server?.microsPerTransaction ?? null),
    `${fixed(t.cpu.client.microsPerTransaction, 1)} / ${fixed(p.cpu.client.microsPerTransaction, 1)}`,
    `${t.result.operationsFailed} / ${p.result.operationsFailed}`,
  ].join(' | ')
})
process.stdout.write([...header, ...lines.map((line) => `| ${line} |`)].join('\n') + '\n')
if (values.json !== undefined) {
  const { writeFile } = await import('node:fs/promises')
  await writeFile(
    values.json,
    JSON.stringify({ durationMs, warmupMs, accounts, seed, rows: rows.map(({ shape, tally: t, peer: p }) => ({ shape: { ...shape, definition: shape.definition.name }, tally: t, peer: p })) }, null, 2) + '\n',
  )
}
