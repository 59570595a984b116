/**
 * The event loop while a snapshot image is taken (docs/cluster.md,
 * "Snapshots and rebuild"; issue #11): a single node's store is filled with
 * `--rows` rows of `--row-bytes` random bytes (as `_bulk` transactions with
 * large metadata make), then `SnapshotCatalog.take` runs while
 * `perf_hooks.monitorEventLoopDelay` (10 ms resolution) watches the loop. Reported: the image's size, the take's wall time,
 * the longest event-loop delay during it (what a lease renewal or a peer
 * heartbeat would wait, machine noise included: an idle process on a
 * loaded machine sees gaps too), and the store reads done on the JavaScript
 * thread (the binding's synchronous `nextv`, timed call by call: a stall
 * that is the take's own).
 *
 *   node --import tsx bench/snapshot-take.ts [--rows 6000] [--row-bytes 32768] [--runs 3]
 *
 * A benchmark, not a test.
 */
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { SnapshotCatalog } from '../src/cluster/snapshot/index.ts'
import { LedgerNode } from '../src/server/index.ts'
import { tempDirectory } from '../test/support/temp.ts'
import { CLUSTER, createLedger, runWorkload } from '../test/cluster/node-support.ts'

function argument(name: string, fallback: string): string {
  const at = process.argv.indexOf(name)
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback
}
const rows = Number(argument('--rows', '6000'))
const rowBytes = Number(argument('--row-bytes', '32768'))
const runs = Number(argument('--runs', '3'))

const data = tempDirectory('tally-bench-take-')
let clock = Date.parse('2026-01-01T00:00:00Z')
const node = await LedgerNode.open({ dataDirectory: data.directory, clusterId: CLUSTER, sync: false, stateHash: true, now: () => (clock += 1000), log: () => {} })
try {
  await runWorkload(node, [createLedger])
  await node.checkpoint()
  // Rows of a zone no ledger uses, written 256 at a time: the take copies every row.
  for (let at = 0; at < rows; at += 256) {
    const batch = Array.from({ length: Math.min(256, rows - at) }, (_, i) => ({ key: Buffer.concat([Buffer.of(0x50), Buffer.from(String(at + i).padStart(8, '0'))]), value: randomBytes(rowBytes) }))
    await node.store.write(batch, { sync: false })
  }
  process.stdout.write(`node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, load average ${os.loadavg().map((load) => load.toFixed(2)).join(' ')}, ${new Date().toISOString()}\n\n`)
  // The binding's synchronous iterator read, timed call by call (its exports are looked up at each call).
  const binding = createRequire(import.meta.url)('@nxtedition/rocksdb/binding') as Record<string, (...args: unknown[]) => { rows: (Buffer | null)[] }>
  const syncRead = binding.iterator_nextv_sync as (...args: unknown[]) => { rows: (Buffer | null)[] }
  let syncCalls = 0
  let syncBytes = 0
  let syncLongestMs = 0
  binding.iterator_nextv_sync = (...args: unknown[]) => {
    const startedAt = performance.now()
    const result = syncRead(...args)
    syncLongestMs = Math.max(syncLongestMs, performance.now() - startedAt)
    syncCalls += 1
    syncBytes += result.rows.reduce((sum, row) => sum + (row?.byteLength ?? 0), 0)
    return result
  }
  process.stdout.write('| run | image MiB | take ms | longest event-loop delay ms | p99 delay ms | store reads on the JS thread | their MiB | longest one ms |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n')
  for (let run = 1; run <= runs; run++) {
    const catalog = await SnapshotCatalog.open({ directory: path.join(data.directory, `snapshots-${run}`) })
    syncCalls = 0
    syncBytes = 0
    syncLongestMs = 0
    const delay = monitorEventLoopDelay({ resolution: 10 })
    delay.enable()
    const startedAt = performance.now()
    const manifest = await catalog.take(node.store, { epoch: 1 })
    const tookMs = performance.now() - startedAt
    delay.disable()
    const mib = manifest.files.reduce((sum, file) => sum + file.bytes, 0) / (1024 * 1024)
    process.stdout.write(`| ${run} | ${mib.toFixed(1)} | ${tookMs.toFixed(0)} | ${(delay.max / 1e6).toFixed(0)} | ${(delay.percentile(99) / 1e6).toFixed(0)} | ${syncCalls} | ${(syncBytes / (1024 * 1024)).toFixed(1)} | ${syncLongestMs.toFixed(0)} |\n`)
  }
  process.stdout.write(`\nload average at the end ${os.loadavg().map((load) => load.toFixed(2)).join(' ')}\n`)
} finally {
  await node.close()
  data.remove()
}
