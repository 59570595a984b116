/**
 * Rebuild from a snapshot on real processes (issue #11, "Benchmark": rebuild
 * MB/s; docs/cluster.md, "Snapshots and rebuild"): three `tally serve
 * --cluster` processes on loopback and one etcd. One replica is SIGKILLed
 * at once; the primary and the other replica commit until `--store-mb` MiB
 * of random metadata (base64, in `_bulk` transactions) is in
 * the store, take a trusted snapshot and recycle the WAL the dead replica
 * would need. The replica restarts: it is offered the snapshot, receives
 * it, installs it, reopens in place and takes the WAL tail.
 *
 *   node --import tsx bench/rebuild.ts [--store-mb 200] [--metadata-bytes 32768]
 *     [--bulk-size 10] [--concurrency 2] [--checkpoint-entries 20] [--json FILE]
 *
 * Reported, from the replica's `/_/cluster` polled every 25 ms: the image's
 * bytes and files, restart → first byte, the transfer (first byte → staged)
 * and its MB/s, staged → reopened (close, install, reopen), reopened →
 * caught up (the WAL tail and the apply), and restart → caught up. And, per
 * phase (fill, waiting for an image covering the fill, rebuild), the slowest
 * answer of any node's `/_/cluster` polled every 100 ms (a node whose event
 * loop is held answers late; past the 2 s lease TTL it loses its primacy)
 * and the nodes seen as primary (more than one: a failover happened).
 *
 * A benchmark, not a test: prints a Markdown summary (and `--json FILE`).
 */
import { randomBytes } from 'node:crypto'
import { readdirSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { EtcdCluster } from '../test/support/etcd.ts'
import { freePort, until } from '../test/support/local.ts'
import type { ClusterStatusView } from '../src/cluster/runtime-status.ts'
import { killTally, spawnTally, type ServerProcess } from '../test/support/server-process.ts'
import { tempDirectory } from '../test/support/temp.ts'

function argument(name: string, fallback: string): string {
  const at = process.argv.indexOf(name)
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback
}

const storeMb = Number(argument('--store-mb', '200'))
const metadataBytes = Number(argument('--metadata-bytes', '32768'))
const bulkSize = Number(argument('--bulk-size', '10'))
const concurrency = Number(argument('--concurrency', '2'))
const jsonFile = argument('--json', '')
/**
 * A snapshot at most this many WAL entries behind the head (an entry is one
 * proposal: a `_bulk` request is one), and a short WAL kept below it, so the
 * restarted replica is beyond the WAL and needs the image.
 */
const checkpointEntries = Number(argument('--checkpoint-entries', '20'))
const fillMsMax = 30 * 60_000

type View = ClusterStatusView

interface Member {
  readonly id: string
  readonly data: { directory: string; remove: () => void }
  readonly peerPort: number
  server: ServerProcess | undefined
}


async function view(server: ServerProcess | undefined, timeoutMs = 1_000): Promise<View | undefined> {
  if (server === undefined) return undefined
  try {
    const response = await fetch(`${server.baseUrl}/_/cluster`, { signal: AbortSignal.timeout(timeoutMs) })
    return response.status === 200 ? ((await response.json()) as View) : undefined
  } catch {
    return undefined
  }
}

/** Bytes of the files under `directory` (the store: the data directory without the snapshots kept beside it). */
function bytesUnder(directory: string, skip: ReadonlySet<string> = new Set()): number {
  let total = 0
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    if (skip.has(entry.name)) continue
    const full = path.join(directory, entry.name)
    if (entry.isDirectory()) total += bytesUnder(full)
    else if (entry.isFile()) total += statSync(full).size
  }
  return total
}

const lines: string[] = []
const print = (line: string): void => {
  lines.push(line)
  process.stdout.write(`${line}\n`)
}

type Phase = 'fill' | 'cover' | 'rebuild'
let phase: Phase = 'fill'
const slowestAnswerMs: Record<Phase, number> = { fill: 0, cover: 0, rebuild: 0 }
const primariesSeen: Record<Phase, Set<string>> = { fill: new Set(), cover: new Set(), rebuild: new Set() }
/** Polls every live node's `/_/cluster` until stopped: the slowest answer per phase and who answered as primary. */
function sampleAnswers(members: readonly Member[]): () => Promise<void> {
  let sampling = true
  const loops = members.map(async (member) => {
    while (sampling) {
      const server = member.server
      if (server !== undefined) {
        const at = phase
        const startedAt = performance.now()
        const answer = await view(server, 10_000)
        // A node killed or restarting meanwhile does not count as slow.
        if (answer !== undefined && member.server === server) {
          slowestAnswerMs[at] = Math.max(slowestAnswerMs[at], performance.now() - startedAt)
          if (answer.role === 'primary') primariesSeen[at].add(member.id)
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })
  return async () => {
    sampling = false
    await Promise.all(loops)
  }
}

const etcd = await EtcdCluster.start({ size: 1 })
const members: Member[] = []
const start = async (member: Member): Promise<void> => {
  member.server = await spawnTally({
    dataDirectory: member.data.directory,
    args: [
      '--cluster', etcd.url, '--node-id', member.id, '--peer-listen', `127.0.0.1:${member.peerPort}`, '--cluster-lease-ttl-seconds', '2',
      '--checkpoint-entries', String(checkpointEntries), '--wal-retain-entries', '10', '--wal-segment-bytes-max', String(1024 * 1024),
      '--log-level', 'warn',
    ],
    startMsMax: 120_000,
  })
}
try {
  for (const id of ['n1', 'n2', 'n3']) members.push({ id, data: tempDirectory(`tally-bench-rebuild-${id}-`), peerPort: await freePort(), server: undefined })
  await Promise.all(members.map(start))
  const [primary, , lagging] = members as [Member, Member, Member]
  await until('the cluster formed', async () => {
    const views = await Promise.all(members.map((member) => view(member.server)))
    return views.every((v) => v?.caughtUp === true) && views[0]?.role === 'primary' ? true : undefined
  }, 60_000)
  const base = primary.server?.baseUrl as string
  await until('the ledger created', async () => {
    const response = await fetch(`${base}/v2/bench`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).catch(() => undefined)
    await response?.arrayBuffer()
    return response?.status === 204 ? true : undefined
  }, 30_000)
  await killTally(lagging.server as ServerProcess)
  lagging.server = undefined
  const stopSampling = sampleAnswers(members)

  // Fill: bulk requests of transactions whose metadata is random base64 (6 bits of entropy per byte: RocksDB's compression cannot shrink it much).
  const fillStartedAt = performance.now()
  let transactions = 0
  let filling = true
  const storeDirectory = path.join(primary.data.directory, 'store')
  const worker = async (): Promise<void> => {
    while (filling) {
      const elements = Array.from({ length: bulkSize }, () => ({
        action: 'CREATE_TRANSACTION',
        data: { postings: [{ source: 'world', destination: `users:${transactions % 1000}`, amount: 1, asset: 'USD' }], metadata: { blob: randomBytes((metadataBytes * 3) / 4).toString('base64') } },
      }))
      const response = await fetch(`${base}/v2/bench/_bulk?atomic=false`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(elements), signal: AbortSignal.timeout(60_000) }).catch(() => undefined)
      await response?.arrayBuffer()
      if (response?.status === 200) transactions += bulkSize
      else await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  const workers = Array.from({ length: concurrency }, () => worker())
  // Counted in metadata written (what the store must hold at least): RocksDB's own files (logs, preallocation) would mislead.
  await until(`${storeMb} MiB of metadata written`, async () => (transactions * metadataBytes >= storeMb * 1024 * 1024 ? true : undefined), fillMsMax, 1_000)
  filling = false
  await Promise.all(workers)
  const fillMs = performance.now() - fillStartedAt
  const storeBytes = bytesUnder(storeDirectory)
  // Snapshots are taken at store checkpoints (every `checkpointEntries` applied entries), one at a time: small
  // writes go on until one covers everything the fill wrote, so the image holds the whole store.
  const filledHead = (await view(primary.server))?.headLsn ?? 0
  phase = 'cover'
  let trickling = true
  const trickle = (async () => {
    while (trickling) {
      const response = await fetch(`${base}/v2/bench/transactions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ postings: [{ source: 'world', destination: 'users:trickle', amount: 1, asset: 'USD' }] }) }).catch(() => undefined)
      await response?.arrayBuffer()
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })()
  const newest = await until('a snapshot covering the fill', async () => {
    const index = (await view(primary.server))?.snapshots?.newest?.appliedIndex
    return index !== undefined && index >= filledHead ? index : undefined
  }, 20 * 60_000, 500)
  trickling = false
  await trickle
  const head = (await view(primary.server))?.headLsn ?? 0
  process.stderr.write(`filled ${transactions} transactions, store ${(storeBytes / 1e6).toFixed(0)} MB, head ${head}, snapshot at ${newest}, in ${(fillMs / 1000).toFixed(0)} s\n`)

  // The replica restarts, far beyond the WAL the primary kept.
  phase = 'rebuild'
  const restartAt = performance.now()
  await start(lagging)
  const listeningAt = performance.now()
  // Observed from the serving node's `serving` (bytes served to n3), the replica's `receiving` (the image's size, when a
  // poll catches it) and the replica's stderr (staged, closed for the reopen), each time-stamped when first seen.
  let firstByteAt: number | undefined
  let stagedAt: number | undefined
  let closedAt: number | undefined
  let reopenedAt: number | undefined
  let bytesServed = 0
  let image: { bytesTotal: number; filesTotal: number; appliedIndex: number } | undefined
  const caughtUpAt = await until('the replica caught up', async () => {
    // Any live node may serve it: a failover during the run (a primary that stalls past its lease) moves the source.
    const [sources, v] = await Promise.all([Promise.all(members.filter((member) => member !== lagging).map((member) => view(member.server))), view(lagging.server)])
    const now = performance.now()
    const served = Math.max(0, ...sources.map((p) => p?.snapshots?.serving?.find((entry) => entry.replicaId === lagging.id)?.bytesServed ?? 0))
    if (served > 0) firstByteAt ??= now
    bytesServed = Math.max(bytesServed, served)
    const receiving = v?.snapshots?.receiving
    if (receiving !== undefined) image = { bytesTotal: receiving.bytesTotal, filesTotal: receiving.filesTotal, appliedIndex: receiving.appliedIndex }
    const stderr = lagging.server?.stderr() ?? ''
    if (/ staged /.test(stderr)) stagedAt ??= now
    if (/closed for the rebuild/.test(stderr)) closedAt ??= now
    if (closedAt !== undefined && v !== undefined) reopenedAt ??= now
    return v !== undefined && v.caughtUp && v.appliedIndex >= head && reopenedAt !== undefined ? now : undefined
  }, 30 * 60_000)
  await stopSampling()
  const imageBytes = image?.bytesTotal ?? bytesServed
  const mb = imageBytes / (1024 * 1024)
  const transferMs = (stagedAt ?? caughtUpAt) - (firstByteAt ?? listeningAt)
  const figures = {
    transactions,
    metadataBytes,
    storeBytes,
    head,
    snapshotIndex: newest,
    filledHead,
    imageBytes,
    imageFiles: image?.filesTotal,
    processStartMs: listeningAt - restartAt,
    listeningToFirstByteMs: (firstByteAt ?? Number.NaN) - listeningAt,
    transferMs,
    transferMbPerSecond: mb / (transferMs / 1000),
    stagedToClosedMs: (closedAt ?? Number.NaN) - (stagedAt ?? Number.NaN),
    closedToReopenedMs: (reopenedAt ?? Number.NaN) - (closedAt ?? Number.NaN),
    reopenedToCaughtUpMs: caughtUpAt - (reopenedAt ?? Number.NaN),
    restartToCaughtUpMs: caughtUpAt - restartAt,
    slowestAnswerMs,
    primariesSeen: Object.fromEntries(Object.entries(primariesSeen).map(([name, ids]) => [name, [...ids].sort()])),
  }
  print(`# Rebuild from a snapshot\n\nnode ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, load average ${os.loadavg().map((load) => load.toFixed(2)).join(' ')}, ${new Date().toISOString()}`)
  print(`\nStore filled with ${transactions} transactions (${metadataBytes} B of random metadata each, bulk ${bulkSize}, ${concurrency} clients) in ${(fillMs / 1000).toFixed(0)} s: ${(storeBytes / 1e6).toFixed(0)} MB on the primary, head ${head}, snapshot at ${newest}.\n`)
  print('| image | files | process start ms | listening → first byte served ms | transfer ms (first byte → staged) | transfer MiB/s | staged → node closed ms | closed → reopened ms (install, reopen) | reopened → caught up ms (WAL tail) | restart → caught up ms |')
  print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  const ms = (value: number): string => (Number.isFinite(value) ? value.toFixed(0) : '-')
  print(
    `| ${mb.toFixed(1)} MiB | ${figures.imageFiles ?? '-'} | ${ms(figures.processStartMs)} | ${ms(figures.listeningToFirstByteMs)} | ${ms(transferMs)} | ${figures.transferMbPerSecond.toFixed(1)} | ${ms(figures.stagedToClosedMs)} | ${ms(figures.closedToReopenedMs)} | ${ms(figures.reopenedToCaughtUpMs)} | ${ms(figures.restartToCaughtUpMs)} |`,
  )
  print('\n| phase | slowest `/_/cluster` answer of any node ms | nodes seen as primary |')
  print('|---|---:|---|')
  for (const name of ['fill', 'cover', 'rebuild'] as const) print(`| ${name} | ${ms(slowestAnswerMs[name])} | ${[...primariesSeen[name]].sort().join(', ')} |`)
  print(`\nload average at the end ${os.loadavg().map((load) => load.toFixed(2)).join(' ')}`)
  // Where the replica's time went: its recovery log (every level, wall-clock times) and the end of its stderr.
  const replicaLog = ((await view(lagging.server)) as (View & { replication?: { recoveryLog?: Array<{ at: string; message: string }> } }) | undefined)?.replication?.recoveryLog ?? []
  if (jsonFile !== '') writeFileSync(jsonFile, `${JSON.stringify({ ...figures, replicaLog, replicaStderr: ((lagging.server as ServerProcess | undefined)?.stderr() ?? '').slice(-20_000) }, null, 2)}\n`)
} finally {
  await Promise.all(members.map(async (member) => (member.server === undefined ? undefined : killTally(member.server))))
  await etcd.close()
  for (const member of members) member.data.remove()
}
