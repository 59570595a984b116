/**
 * Reads against checkouts, alternated in one run (docs/performance.md, "Reads").
 *
 *   node --import tsx bench/reads.ts [--root DIR]... [--workload get-account:16]... [--fill 100000]
 *                                    [--accounts 1000] [--duration 10] [--rounds 3] [--log-level info]
 *                                    [--answer-cache-bytes B] [--one-server] [--warmup 2] [--warmup-requests N] [--auth]
 *
 * Starts one `tally serve` per `--root` (a checkout; default this one), each
 * on its own temporary data directory, fills each with `--fill`
 * transactions by `_bulk` (every `users:k` funded), then drives them in
 * turn, round after round, with this checkout's `tally bench` (the same
 * client for every root), so machine noise falls on all of them alike.
 * Prints, per round and root: requests/s of each workload, p99, and the
 * server's CPU per operation (all threads and JavaScript thread) read from
 * /proc, with the load average; then the median of each root and its ratio
 * to the first root's.
 *
 * Each `--workload` is a `tally bench` list, run in turn within each round:
 * reads beside writes are measured as `--workload bulk:4@40 --workload
 * bulk:4@40,get-account:16@3000`, the write rows compared (docs/performance.md).
 *
 * With `--one-server` only one server runs at a time: each root's data
 * directory is filled once by a server that then stops, and every run
 * starts that root's server on its directory again, warms it up for
 * `--warmup` seconds (not measured), measures, and stops it. Without it,
 * every root's server stays up through the whole run, idle while another is
 * measured: its timers, memory and caches still share the machine, which
 * may tilt a comparison of cheap reads (the kept get-account's two signs,
 * docs/performance.md).
 *
 * With `--auth` every server requires bearer tokens (`--auth-clients`, one
 * API client with every scope) and the load generator gets its token from
 * the token endpoint and sends it with every request, as an SDK does: what
 * authentication costs a request.
 *
 * `--answer-cache-bytes 0` serves every read from the store (the servers'
 * `--answer-cache-bytes`): what a read that misses the kept answers costs,
 * without writes beside it. A root whose `tally serve` has no such flag
 * cannot be driven with it.
 *
 * What decides a comparison is the **paired ratio**: in each round, each
 * root's server CPU per operation over the first root's, from runs a few
 * seconds apart; the median and the range of those per-round ratios are
 * printed last. The machine's speed drifts between rounds (on a shared VM
 * the same build's figure moved × 1.8 between quiet runs, the load
 * generator's own CPU per request with it), which a ratio of medians over
 * the whole run mixes in. Beside each run: the server's read syscalls per
 * operation (`/proc/PID/io`): a request's socket read is one, each RocksDB
 * block read from a file (a block-cache miss: the binding reads files with
 * `pread`, no mmap) one more; and, from the server's metrics at the start
 * of the measured run, RocksDB's level-0 files, memtable bytes and running
 * compactions: a store that differs between runs is seen. With
 * `--warmup-requests N` the warm-up of each run is N requests rather than
 * `--warmup` seconds, so each run's block cache is warmed by the same reads.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { BenchReport } from '../src/bench/index.ts'
import { median } from './support/stats.ts'

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    root: { type: 'string', multiple: true },
    workload: { type: 'string', multiple: true },
    fill: { type: 'string', default: '100000' },
    accounts: { type: 'string', default: '1000' },
    'bulk-size': { type: 'string', default: '100' },
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    'log-level': { type: 'string', default: 'info' },
    'answer-cache-bytes': { type: 'string' },
    'one-server': { type: 'boolean', default: false },
    warmup: { type: 'string', default: '2' },
    'warmup-requests': { type: 'string' },
    auth: { type: 'boolean', default: false },
  },
})
const oneServer = values['one-server']
const roots = (values.root ?? [here]).map((root) => path.resolve(root))
const workloads = values.workload ?? ['get-account:16']
const rounds = Number(values.rounds)
const common = ['--ledger', 'reads', '--accounts', values.accounts, '--bulk-size', values['bulk-size']]

interface Server {
  readonly root: string
  readonly child: ChildProcess
  readonly url: string
  readonly directory: string
}

/** With --auth: the clients file every server reads, and the client's credentials for `tally bench`. */
async function makeApiClient(): Promise<{ file: string; env: Record<string, string> }> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'tally-reads-auth-'))
  const child = spawn(process.execPath, [path.join(here, 'bin', 'tally.mjs'), 'auth-client', '--id', 'bench', '--scopes', 'ledger:read,ledger:write,ledger:admin'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  const secret = /: (\S+)\s*$/.exec(stderr)?.[1]
  if (code !== 0 || secret === undefined) throw new Error(`tally auth-client exited ${code}: ${stderr}`)
  const file = path.join(directory, 'clients.json')
  await writeFile(file, JSON.stringify({ clients: [JSON.parse(stdout) as unknown] }))
  return { file, env: { TALLY_CLIENT_ID: 'bench', TALLY_CLIENT_SECRET: secret } }
}
const apiClient = values.auth ? await makeApiClient() : undefined

async function startServer(root: string, existing?: string): Promise<Server> {
  const directory = existing ?? (await mkdtemp(path.join(os.tmpdir(), 'tally-reads-')))
  // Logs go to a file, as a deployment's would go somewhere: their cost is part of the server's.
  const log = await open(path.join(directory, 'serve.log'), 'a')
  const answerCache = values['answer-cache-bytes'] === undefined ? [] : ['--answer-cache-bytes', values['answer-cache-bytes']]
  const auth = apiClient === undefined ? [] : ['--auth-clients', apiClient.file]
  const child = spawn(process.execPath, [path.join(root, 'bin', 'tally.mjs'), 'serve', '--data', path.join(directory, 'data'), '--listen', '127.0.0.1:0', ...answerCache, ...auth], {
    cwd: root,
    env: { ...process.env, TALLY_LOG_LEVEL: values['log-level'] },
    stdio: ['ignore', 'pipe', log.fd],
  })
  await log.close()
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`tally serve in ${root} exited (${code ?? signal}) before listening`)))
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const match = /^listening (\S+):(\d+)$/.exec(line.trim())
      if (match !== null) resolve(`http://127.0.0.1:${match[2]}`)
    })
  })
  return { root, child, url, directory }
}

async function stopServer(server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  const exited = new Promise((resolve) => server.child.once('exit', resolve))
  server.child.kill('SIGTERM')
  await exited
}

async function bench(server: Server, args: string[]): Promise<BenchReport> {
  const child = spawn(process.execPath, [path.join(here, 'bin', 'tally.mjs'), 'bench', '--target', server.url, ...common, ...args, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...apiClient?.env },
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  if (code !== 0) throw new Error(`tally bench exited ${code}: ${stderr.slice(-2000)}`)
  return JSON.parse(stdout) as BenchReport
}

/** The server's read syscalls so far (`syscr` of /proc/PID/io); undefined where /proc is missing. */
async function readSyscalls(pid: number): Promise<number | undefined> {
  try {
    const found = /^syscr: (\d+)$/m.exec(await readFile(`/proc/${pid}/io`, 'utf8'))
    return found === null ? undefined : Number(found[1])
  } catch {
    return undefined
  }
}

/** RocksDB's shape as the server's metrics give it: level-0 files, memtable bytes, running compactions ('–' when unreadable). */
async function storeShape(server: Server): Promise<string> {
  try {
    const response = await fetch(`${server.url}/_/metrics`)
    if (!response.ok) return '–'
    const text = await response.text()
    const metric = (name: string): string => new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? '?'
    const memtable = Number(metric('tally_rocksdb_memtable_bytes'))
    return `L0 ${metric('tally_rocksdb_level0_files')}, mem ${Number.isFinite(memtable) ? `${(memtable / 2 ** 20).toFixed(1)} MiB` : '?'}, comp ${metric('tally_rocksdb_running_compactions')}`
  } catch {
    return '–'
  }
}

const loadAverage = async (): Promise<string> => (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')

// Every root's server, up for the whole run; with --one-server, each stopped after its fill and started again for each of its runs.
const servers: Server[] = []
try {
  for (const root of roots) {
    const server = await startServer(root)
    servers.push(server)
    if (Number(values.fill) > 0) await bench(server, ['--fill', values.fill, '--workload', 'get-account:1', '--requests', '1'])
    if (oneServer) await stopServer(server)
  }
  const rows: { root: string; workload: string; round: number; report: BenchReport; load: string }[] = []
  const warmup = values['warmup-requests'] === undefined ? ['--duration', values.warmup] : ['--requests', values['warmup-requests']]
  const warms = values['warmup-requests'] !== undefined || Number(values.warmup) > 0
  process.stdout.write(`workloads ${workloads.join(' | ')}, ${values.duration} s per run${apiClient === undefined ? '' : ', every request with a bearer token'}${oneServer ? `, one server at a time (each run on a server started for it, ${values['warmup-requests'] === undefined ? `${values.warmup} s` : `${values['warmup-requests']} requests of`} warm-up)` : ', every server up throughout'}, after a fill of ${values.fill} transactions over ${values.accounts} accounts, log level ${values['log-level']}${values['answer-cache-bytes'] === undefined ? '' : `, answer cache ${values['answer-cache-bytes']} bytes`}\n\n`)
  process.stdout.write('| round | root | load average | ' + 'workload req/s (tx/s) p99 ms | server µs/op (JS thread) | client µs/op | server read syscalls/op | store at start |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n')
  for (let round = 1; round <= rounds; round++) {
    for (const workload of workloads) for (const [at, kept] of servers.entries()) {
      let server = kept
      if (oneServer) {
        server = await startServer(kept.root, kept.directory)
        servers[at] = server
        if (warms) await bench(server, ['--workload', workload, ...warmup])
      }
      const load = await loadAverage()
      const pid = server.child.pid as number
      const shape = await storeShape(server)
      const syscallsBefore = await readSyscalls(pid)
      const report = await bench(server, ['--workload', workload, '--duration', values.duration, '--server-pid', String(pid)])
      const syscallsAfter = await readSyscalls(pid)
      if (oneServer) await stopServer(server)
      const operations = report.total.operations
      const syscalls = syscallsBefore === undefined || syscallsAfter === undefined || operations === 0 ? '–' : ((syscallsAfter - syscallsBefore) / operations).toFixed(2)
      rows.push({ root: server.root, workload, round, report, load })
      const measured = report.workloads
        .map((workload) => `${workload.name} ${workload.requestsPerSecond.toFixed(0)}${workload.kind === 'write' ? ` (${workload.transactionsPerSecond.toFixed(0)})` : ''} ${workload.latency.p99Ms.toFixed(1)}`)
        .join('; ')
      const cpu = report.cpu?.server
      process.stdout.write(
        `| ${round} | ${path.basename(server.root)} | ${load} | ${measured} | ${cpu?.microsPerOperation?.toFixed(1) ?? '–'} (${cpu?.mainThreadMicrosPerOperation?.toFixed(1) ?? '–'}) | ${report.cpu?.client.microsPerOperation?.toFixed(1) ?? '–'} | ${syscalls} | ${shape} |\n`,
      )
    }
  }
  process.stdout.write('\nmedians (ratio to the first root):\n\n| root | workload req/s (tx/s) p99 ms | server µs/op | JS thread µs/op |\n| --- | --- | --- | --- |\n')
  const medianOf = (selected: typeof rows, pick: (report: BenchReport) => number): number => median(selected.map((row) => pick(row.report)))
  for (const workload of workloads) for (const root of roots) {
    const first = rows.filter((row) => row.root === roots[0] && row.workload === workload)
    const mine = rows.filter((row) => row.root === root && row.workload === workload)
    const ratio = (pick: (report: BenchReport) => number): string => {
      const value = medianOf(mine, pick)
      return root === roots[0] ? value.toFixed(1) : `${value.toFixed(1)} (×${(value / medianOf(first, pick)).toFixed(2)})`
    }
    const measured = (mine[0]?.report.workloads ?? [])
      .map((workload, at) => {
        const rate = ratio((report) => report.workloads[at]?.requestsPerSecond ?? 0)
        const txRate = workload.kind === 'write' ? ` (${ratio((report) => report.workloads[at]?.transactionsPerSecond ?? 0)} tx/s)` : ''
        return `${workload.name} ${rate}${txRate} p99 ${ratio((report) => report.workloads[at]?.latency.p99Ms ?? 0)}`
      })
      .join('; ')
    process.stdout.write(
      `| ${path.basename(root)} | ${measured} | ${ratio((report) => report.cpu?.server?.microsPerOperation ?? 0)} | ${ratio((report) => report.cpu?.server?.mainThreadMicrosPerOperation ?? 0)} |\n`,
    )
  }
  if (roots.length > 1) {
    // Each round's ratio to the first root's run of the same round and workload: what decides on a machine whose speed drifts.
    process.stdout.write('\npaired ratios to the first root, per round (median, range):\n\n| root | workload | server µs/op | JS thread µs/op | req/s |\n| --- | --- | --- | --- | --- |\n')
    const paired = (workload: string, root: string, pick: (report: BenchReport) => number | null | undefined): string => {
      const ratios: number[] = []
      for (let round = 1; round <= rounds; round++) {
        const base = rows.find((row) => row.root === roots[0] && row.workload === workload && row.round === round)
        const mine = rows.find((row) => row.root === root && row.workload === workload && row.round === round)
        const over = base === undefined ? undefined : pick(base.report)
        const under = mine === undefined ? undefined : pick(mine.report)
        if (over !== undefined && over !== null && under !== undefined && under !== null && over > 0) ratios.push(under / over)
      }
      if (ratios.length === 0) return '–'
      return `×${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}; ${ratios.map((ratio) => ratio.toFixed(2)).join(', ')})`
    }
    for (const workload of workloads) for (const root of roots.slice(1)) {
      process.stdout.write(
        `| ${path.basename(root)} | ${workload} | ${paired(workload, root, (report) => report.cpu?.server?.microsPerOperation)} | ${paired(workload, root, (report) => report.cpu?.server?.mainThreadMicrosPerOperation)} | ${paired(workload, root, (report) => report.workloads[0]?.requestsPerSecond)} |\n`,
      )
    }
  }
} finally {
  for (const server of servers) {
    await stopServer(server)
    await rm(server.directory, { recursive: true, force: true })
  }
  if (apiClient !== undefined) await rm(path.dirname(apiClient.file), { recursive: true, force: true })
}
