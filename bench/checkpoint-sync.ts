/**
 * A store checkpoint's synced write, with and without RocksDB's log synced
 * ahead in the background (`src/store/log-sync-ahead.ts`), alternated in one
 * run on the same disk: the server's cost of a checkpoint without its HTTP,
 * WAL and apply around it.
 *
 *   node --import tsx bench/checkpoint-sync.ts [--periods N] [--batches-per-checkpoint B]
 *     [--rows R] [--row-bytes S] [--rate BATCHES_PER_S] [--ahead-bytes A] [--sync-before-checkpoint 0|1]
 *
 * Two stores (one per variant) in fresh directories. A period writes B
 * unsynced batches of R rows of about S bytes to one store at a paced rate
 * (a bulk of 100 transfers is about 100 KB of rows), then one synced write,
 * timed on this thread as the node times a checkpoint. Periods alternate
 * between the variants. Prints each variant's checkpoint durations
 * (mean, p50, p90, max) and the CPU this thread spent in them.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Store } from '../src/store/index.ts'
import type { RowWrite } from '../src/store/index.ts'

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name)
  return at < 0 ? fallback : Number(process.argv[at + 1])
}

const periods = option('--periods', 12)
const batchesPerCheckpoint = option('--batches-per-checkpoint', 100)
const rowsPerBatch = option('--rows', 700)
const rowBytes = option('--row-bytes', 140)
const rate = option('--rate', 35)
const aheadBytes = option('--ahead-bytes', 4 * 1024 * 1024)
/** 0: only the syncs ahead by bytes written (the first version), not the one before each checkpoint. */
const beforeCheckpoint = option('--sync-before-checkpoint', 1) !== 0

interface Variant {
  readonly name: string
  readonly store: Store
  readonly directory: string
  readonly durationsMs: number[]
  cpuMicros: number
}

let sequence = 0
function batch(): RowWrite[] {
  const rows: RowWrite[] = []
  for (let i = 0; i < rowsPerBatch; i++) {
    const key = Buffer.alloc(24)
    key.writeUInt32BE(i % 7, 0)
    key.writeBigUInt64BE(BigInt(sequence++), 8)
    rows.push({ key, value: Buffer.alloc(rowBytes, sequence & 0xff) })
  }
  return rows
}

function quantile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN
}

async function main(): Promise<void> {
  const variants: Variant[] = []
  for (const [name, bytes] of [['ahead', aheadBytes], ['none', 0]] as const) {
    const directory = mkdtempSync(path.join(os.tmpdir(), `tally-checkpoint-sync-${name}-`))
    variants.push({ name, directory, store: await Store.open(directory, { logSyncAheadBytes: bytes }), durationsMs: [], cpuMicros: 0 })
  }
  console.log(`${periods} periods per variant, alternated; each ${batchesPerCheckpoint} batches of ${rowsPerBatch} rows × ${rowBytes} B at ${rate} batches/s, then a synced write; sync ahead every ${aheadBytes} B${beforeCheckpoint ? ' and before each synced write (untimed)' : ''}; load ${os.loadavg()[0]?.toFixed(1)}`)
  try {
    for (let period = 0; period < periods * 2; period++) {
      const variant = variants[period % 2] as Variant
      const started = performance.now()
      for (let b = 0; b < batchesPerCheckpoint; b++) {
        await variant.store.write(batch(), { sync: false })
        const due = started + ((b + 1) * 1000) / rate
        const wait = due - performance.now()
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      }
      // As the node's checkpoint does: the logs synced on libuv's pool first (untimed: the JavaScript thread is free meanwhile).
      if (beforeCheckpoint) await variant.store.syncLogAhead()
      const cpu = process.cpuUsage()
      const before = performance.now()
      await variant.store.write([{ key: Buffer.from('checkpoint'), value: Buffer.from(String(period)) }], { sync: true })
      variant.durationsMs.push(performance.now() - before)
      const used = process.cpuUsage(cpu)
      variant.cpuMicros += used.user + used.system
    }
  } finally {
    for (const variant of variants) {
      await variant.store.close()
      rmSync(variant.directory, { recursive: true, force: true })
    }
  }
  console.log('')
  console.log('| variant | checkpoints | mean ms | p50 ms | p90 ms | max ms | CPU in them, mean µs | syncs ahead (s on the pool) | load after |')
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  for (const variant of variants) {
    const sorted = [...variant.durationsMs].sort((a, b) => a - b)
    const mean = sorted.reduce((sum, value) => sum + value, 0) / sorted.length
    const figures = variant.store.logSyncAheadFigures
    console.log(
      `| ${variant.name} | ${sorted.length} | ${mean.toFixed(1)} | ${quantile(sorted, 0.5).toFixed(1)} | ${quantile(sorted, 0.9).toFixed(1)} | ${(sorted.at(-1) ?? 0).toFixed(1)} | ${Math.round(variant.cpuMicros / sorted.length)} | ${figures.syncs} (${figures.seconds.toFixed(2)}) | ${os.loadavg()[0]?.toFixed(1)} |`,
    )
  }
  console.log('')
  console.log(`durations, in order: ${variants.map((variant) => `${variant.name} ${variant.durationsMs.map((ms) => ms.toFixed(1)).join(' ')}`).join('; ')}`)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
