/**
 * Replicated benchmarks (issue #11, "Benchmark"; docs/bench.md, "Cluster"):
 * three `tally serve --cluster` processes on loopback and one etcd, beside a
 * single node in the same run.
 *
 *   node --import tsx bench/cluster.ts [--phases throughput,failover,catchup]
 *     [--seconds 10] [--concurrency 16] [--bulk-size 100] [--modes sync_quorum,sync_all,best_effort]
 *     [--failovers 20] [--ttl 3] [--catchup-entries 20000] [--json FILE]
 *
 * - throughput: `tally bench` (single transactions, then `_bulk`) against a
 *   single node, then against the primary of a fresh 3-node cluster per
 *   durability mode: transactions/s and p50/p99, and the ratio to the single node.
 * - failover: a cluster in `sync_quorum`; each round loads the primary with
 *   four clients, SIGKILLs it, and times kill → the first write acknowledged
 *   after it (probes sent to every survivor: a replica forwards to the new
 *   primary). The killed node restarts and the round ends when all three are
 *   caught up again. p50/p99/max over the rounds.
 * - catchup: a replica is stopped (SIGKILL), N single transactions are
 *   written, the replica restarts; the delay to its first applied entry (the
 *   primary's link backs off while the replica is gone) and entries/s from
 *   then until its applied LSN reaches the primary's head.
 *
 * A benchmark, not a test: prints a Markdown summary (and `--json FILE`).
 * Uses the test harness's etcd and process helpers (test/support/).
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { EtcdCluster } from '../test/support/etcd.ts'
import { killTally, repositoryRoot, spawnTally, type ServerProcess } from '../test/support/server-process.ts'
import { tempDirectory } from '../test/support/temp.ts'
import { freePort, until } from '../test/support/local.ts'
import type { ClusterStatusView } from '../src/cluster/runtime-status.ts'

function argument(name: string, fallback: string): string {
  const at = process.argv.indexOf(name)
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback
}

const phases = new Set(argument('--phases', 'throughput,failover,catchup').split(','))
const seconds = Number(argument('--seconds', '10'))
const concurrency = Number(argument('--concurrency', '16'))
const bulkSize = Number(argument('--bulk-size', '100'))
const modes = argument('--modes', 'sync_quorum,sync_all,best_effort').split(',')
const failovers = Number(argument('--failovers', '20'))
// The server's default lease TTL (`--cluster-lease-ttl-seconds`).
const ttlSeconds = Number(argument('--ttl', '3'))
const catchupEntries = Number(argument('--catchup-entries', '20000'))
const jsonFile = argument('--json', '')

type View = ClusterStatusView

/** Steps of a failover, found in the survivors' recovery logs (`/_/cluster`), in the order they happen. */
const failoverSteps: ReadonlyArray<readonly [string, RegExp]> = [
  ['replica suspects the primary', /^cluster: no connection from primary/],
  ['coordinator elected', /^coordinator: elected/],
  ['promotion written', /^coordinator: promoted/],
  ['new primary running', /^cluster: primary at epoch/],
  ['primary lease holding', /^cluster: primary lease holding/],
]

interface Member {
  readonly id: string
  readonly data: { directory: string; remove: () => void }
  readonly peerPort: number
  server: ServerProcess | undefined
}



async function view(server: ServerProcess | undefined): Promise<View | undefined> {
  if (server === undefined) return undefined
  try {
    const response = await fetch(`${server.baseUrl}/_/cluster`, { signal: AbortSignal.timeout(1_000) })
    return response.status === 200 ? ((await response.json()) as View) : undefined
  } catch {
    return undefined
  }
}

let transferSeq = 0
/** One single transaction; true when acknowledged (200). */
async function transfer(base: string, timeoutMs: number): Promise<boolean> {
  transferSeq += 1
  try {
    const response = await fetch(`${base}/v2/bench/transactions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ postings: [{ source: 'world', destination: `users:${transferSeq % 1000}`, amount: 1, asset: 'USD' }] }),
      signal: AbortSignal.timeout(timeoutMs),
    })
    await response.arrayBuffer()
    return response.status === 200
  } catch {
    return false
  }
}

async function createLedger(base: string): Promise<void> {
  await until('the ledger created', async () => {
    try {
      const response = await fetch(`${base}/v2/bench`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(2_000) })
      await response.arrayBuffer()
      return response.status === 204 || response.status === 400 ? true : undefined
    } catch {
      return undefined
    }
  }, 60_000)
}

class Cluster {
  private constructor(
    readonly etcd: EtcdCluster,
    readonly members: Member[],
    readonly durability: string,
  ) {}

  static async start(durability: string): Promise<Cluster> {
    const etcd = await EtcdCluster.start({ size: 1 })
    const members: Member[] = []
    for (const id of ['n1', 'n2', 'n3']) members.push({ id, data: tempDirectory(`tally-bench-${id}-`), peerPort: await freePort(), server: undefined })
    const cluster = new Cluster(etcd, members, durability)
    await Promise.all(members.map((member) => cluster.startMember(member)))
    await cluster.converged()
    await createLedger((await cluster.primary()).server?.baseUrl as string)
    return cluster
  }

  async startMember(member: Member): Promise<void> {
    member.server = await spawnTally({
      dataDirectory: member.data.directory,
      args: [
        '--cluster', this.etcd.url, '--node-id', member.id, '--peer-listen', `127.0.0.1:${member.peerPort}`,
        '--durability', this.durability, '--cluster-lease-ttl-seconds', String(ttlSeconds), '--log-level', 'warn',
      ],
      startMsMax: 60_000,
    })
  }

  /** One primary holding its lease, two replicas, all caught up. */
  async converged(deadlineMs = 60_000): Promise<void> {
    await until('the cluster converged', async () => {
      const views = await Promise.all(this.members.map((member) => view(member.server)))
      if (views.some((v) => v === undefined || !v.caughtUp)) return undefined
      const primaries = views.filter((v) => v?.role === 'primary' && v.replication?.lease === 'holding')
      return primaries.length === 1 && views.filter((v) => v?.role === 'replica').length === 2 ? true : undefined
    }, deadlineMs)
  }

  async primary(): Promise<Member> {
    return until('a primary', async () => {
      for (const member of this.members) {
        const v = await view(member.server)
        if (v?.role === 'primary' && v.replication?.lease === 'holding') return member
      }
      return undefined
    }, 60_000)
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map(async (member) => (member.server === undefined ? undefined : killTally(member.server))))
    await this.etcd.close()
    for (const member of this.members) member.data.remove()
  }
}

interface BenchFigures {
  readonly transactionsPerSecond: number
  readonly requestsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: number
}

/** `tally bench` against a target, its JSON report reduced to the figures compared. */
async function tallyBench(target: string, workload: 'transactions' | 'bulk', extra: readonly string[] = []): Promise<BenchFigures> {
  const args = [path.join(repositoryRoot, 'bin', 'tally.mjs'), 'bench', '--target', target, '--workload', workload, '--concurrency', String(workload === 'bulk' ? Math.max(1, concurrency / 4) : concurrency), '--bulk-size', String(bulkSize), '--json', ...(extra.length > 0 ? extra : ['--duration', String(seconds)])]
  const child = spawn(process.execPath, args, { cwd: repositoryRoot, stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => (out += chunk))
  await new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const report = JSON.parse(out) as { total: { transactionsPerSecond: number; requestsPerSecond: number; requestErrors: number; latency: { p50Ms: number; p99Ms: number } } }
  return {
    transactionsPerSecond: report.total.transactionsPerSecond,
    requestsPerSecond: report.total.requestsPerSecond,
    p50Ms: report.total.latency.p50Ms,
    p99Ms: report.total.latency.p99Ms,
    errors: report.total.requestErrors,
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

const results: Record<string, unknown> = {}
const lines: string[] = []
const print = (line: string): void => {
  lines.push(line)
  process.stdout.write(`${line}\n`)
}

async function throughput(): Promise<void> {
  const rows: Array<{ setup: string; workload: string; figures: BenchFigures }> = []
  const single = tempDirectory('tally-bench-single-')
  const server = await spawnTally({ dataDirectory: single.directory, args: ['--log-level', 'warn'] })
  try {
    for (const workload of ['transactions', 'bulk'] as const) rows.push({ setup: 'single node', workload, figures: await tallyBench(server.baseUrl, workload) })
  } finally {
    await killTally(server)
    single.remove()
  }
  for (const mode of modes) {
    const cluster = await Cluster.start(mode)
    try {
      const primary = await cluster.primary()
      for (const workload of ['transactions', 'bulk'] as const) rows.push({ setup: `3 nodes ${mode}`, workload, figures: await tallyBench(primary.server?.baseUrl as string, workload) })
    } finally {
      await cluster.close()
    }
  }
  results.throughput = rows
  print(`\n## Replicated write throughput (${seconds} s each, ${concurrency} clients for single transactions, ${Math.max(1, concurrency / 4)} for _bulk of ${bulkSize})\n`)
  print('| setup | workload | transactions/s | ratio to single node | p50 ms | p99 ms | request errors |')
  print('|---|---|---:|---:|---:|---:|---:|')
  for (const row of rows) {
    const base = rows.find((candidate) => candidate.setup === 'single node' && candidate.workload === row.workload)?.figures.transactionsPerSecond ?? Number.NaN
    const f = row.figures
    print(`| ${row.setup} | ${row.workload === 'bulk' ? `_bulk ×${bulkSize}` : 'single'} | ${f.transactionsPerSecond.toFixed(0)} | ${(f.transactionsPerSecond / base).toFixed(2)} | ${f.p50Ms.toFixed(2)} | ${f.p99Ms.toFixed(2)} | ${f.errors} |`)
  }
}

async function failover(): Promise<void> {
  const cluster = await Cluster.start('sync_quorum')
  const times: number[] = []
  const acknowledgedUnderLoad: number[] = []
  const stepTimes = new Map<string, number[]>(failoverSteps.map(([name]) => [name, []]))
  try {
    for (let round = 0; round < failovers; round++) {
      const primary = await cluster.primary()
      const base = primary.server?.baseUrl as string
      let acknowledged = 0
      let loading = true
      const worker = async (): Promise<void> => {
        while (loading) if (await transfer(base, 2_000)) acknowledged += 1
      }
      const load = Promise.all([worker(), worker(), worker(), worker()])
      await until('load acknowledged', async () => (acknowledged >= 50 ? true : undefined), 30_000, 5)
      const killedAt = performance.now()
      const killedWallMs = Date.now()
      await killTally(primary.server as ServerProcess)
      loading = false
      acknowledgedUnderLoad.push(acknowledged)
      // The first write acknowledged after the kill, sent to every survivor (replicas forward to the new primary).
      const survivors = cluster.members.filter((member) => member !== primary)
      let firstAck: number | undefined
      await Promise.all(
        survivors.map(async (member) => {
          while (firstAck === undefined && performance.now() - killedAt < 60_000) {
            if (await transfer(member.server?.baseUrl as string, 1_000)) firstAck ??= performance.now()
            else await new Promise((resolve) => setTimeout(resolve, 5))
          }
        }),
      )
      await load
      if (firstAck === undefined) throw new Error(`round ${round}: no write acknowledged within 60 s of the kill`)
      times.push(firstAck - killedAt)
      // Where the time went: each step's first line after the kill in a survivor's recovery log (wall clock, ms resolution).
      const logs = (await Promise.all(survivors.map((member) => view(member.server)))).flatMap((v) => v?.replication?.recoveryLog ?? [])
      for (const [name, pattern] of failoverSteps) {
        const at = logs.filter((line) => pattern.test(line.message)).map((line) => Date.parse(line.at) - killedWallMs).filter((offset) => offset >= 0)
        if (at.length > 0) stepTimes.get(name)?.push(Math.min(...at))
      }
      process.stderr.write(`failover ${round + 1}/${failovers}: ${(firstAck - killedAt).toFixed(0)} ms\n`)
      await cluster.startMember(primary)
      await cluster.converged()
    }
  } finally {
    await cluster.close()
  }
  const sorted = [...times].sort((a, b) => a - b)
  results.failover = { ttlSeconds, times, steps: Object.fromEntries(stepTimes) }
  print(`\n## Failover (SIGKILL of the primary under load → first acknowledged write), ${times.length} rounds, lease TTL ${ttlSeconds} s\n`)
  print('| rounds | p50 ms | p99 ms | max ms | min ms |')
  print('|---:|---:|---:|---:|---:|')
  print(`| ${times.length} | ${percentile(sorted, 50).toFixed(0)} | ${percentile(sorted, 99).toFixed(0)} | ${(sorted.at(-1) ?? Number.NaN).toFixed(0)} | ${(sorted[0] ?? Number.NaN).toFixed(0)} |`)
  print(`\nEach: ${times.map((time) => time.toFixed(0)).join(', ')} ms`)
  print('\n| step after the kill (from the recovery logs) | rounds seen | p50 ms | max ms |')
  print('|---|---:|---:|---:|')
  for (const [name, offsets] of stepTimes) {
    const ordered = [...offsets].sort((a, b) => a - b)
    print(`| ${name} | ${ordered.length} | ${percentile(ordered, 50).toFixed(0)} | ${(ordered.at(-1) ?? Number.NaN).toFixed(0)} |`)
  }
  print(`| first write acknowledged | ${sorted.length} | ${percentile(sorted, 50).toFixed(0)} | ${(sorted.at(-1) ?? Number.NaN).toFixed(0)} |`)
}

async function catchup(): Promise<void> {
  const cluster = await Cluster.start('sync_quorum')
  try {
    const primary = await cluster.primary()
    const replica = cluster.members.find((member) => member !== primary) as Member
    await killTally(replica.server as ServerProcess)
    replica.server = undefined
    await tallyBench(primary.server?.baseUrl as string, 'transactions', ['--requests', String(catchupEntries)])
    const target = (await view(primary.server))?.headLsn ?? 0
    const startedAt = performance.now()
    await cluster.startMember(replica)
    const listeningAt = performance.now()
    const startApplied = (await view(replica.server))?.appliedIndex ?? 0
    // The link to a replica that was gone retries with a growing backoff: the first entry may come late; the rate counts from it.
    let firstAt: number | undefined
    let firstApplied = startApplied
    await until('the replica caught up', async () => {
      const applied = (await view(replica.server))?.appliedIndex ?? 0
      if (firstAt === undefined && applied > startApplied) {
        firstAt = performance.now()
        firstApplied = applied
      }
      return applied >= target ? true : undefined
    }, 300_000, 10)
    const doneAt = performance.now()
    const entries = target - startApplied
    const streamed = target - firstApplied
    const rate = streamed / (((doneAt - (firstAt ?? doneAt)) || 1) / 1000)
    results.catchup = { entries, startMs: listeningAt - startedAt, firstEntryMs: (firstAt ?? doneAt) - listeningAt, catchUpMs: doneAt - listeningAt, entriesPerSecond: rate }
    print(`\n## Catch-up (a replica SIGKILLed, ${entries} entries written meanwhile, then restarted)\n`)
    print('| entries behind | process start ms | listening → first entry applied ms | listening → caught up ms | entries/s (first entry → caught up) |')
    print('|---:|---:|---:|---:|---:|')
    print(`| ${entries} | ${(listeningAt - startedAt).toFixed(0)} | ${((firstAt ?? doneAt) - listeningAt).toFixed(0)} | ${(doneAt - listeningAt).toFixed(0)} | ${rate.toFixed(0)} |`)
  } finally {
    await cluster.close()
  }
}

print(`# Cluster benchmark\n\nnode ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, load average ${os.loadavg().map((load) => load.toFixed(2)).join(' ')}, ${new Date().toISOString()}`)
if (phases.has('throughput')) await throughput()
if (phases.has('failover')) await failover()
if (phases.has('catchup')) await catchup()
print(`\nload average at the end ${os.loadavg().map((load) => load.toFixed(2)).join(' ')}`)
if (jsonFile !== '') writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`)
