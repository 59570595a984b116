/**
 * RocksDB write stalls seen from the JavaScript thread (issue 12, target 3): the store alone, no ledger.
 *
 *   node --import tsx bench/store-stalls.ts [--transactions 2000000] [--segment 250000] [--bulk 1000]
 *        [--background-jobs N] [--memtable-budget-mib 32] [--wal-compression true|false] [--background-nice N]
 *        [--background-nice-threads rocksdb:|rocksdb:low|rocksdb:high]
 *
 * Writes proposals shaped like the growth bench's (`bench/growth.ts`): per
 * transfer, three rows appended under increasing keys (~300, ~600 and ~40
 * bytes) and four rows rewritten among 200,000 hot keys (~70 bytes), about
 * the 7 rows and ~1.2 KB a forced transfer costs (docs/performance.md), one
 * `Store.write` per bulk with a turn between. Prints per segment the
 * longest write (it holds the event loop: the binding writes on the
 * calling thread), the writes over 100 ms, RocksDB's own stall figures,
 * and the writes' wall time beside the JavaScript thread's CPU time and
 * run-queue wait during them (Linux schedstat): a write that takes long
 * while the thread waits for a CPU is the machine's contention, not RocksDB.
 * A benchmark, not a test.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Store, type RowWrite } from '../src/store/index.ts'

/**
 * Gives RocksDB's background threads (`rocksdb:low` compactions,
 * `rocksdb:high` flushes) the niceness `nice`, on Linux where a thread's
 * niceness is its own. Returns how many threads were changed.
 */
function reniceBackgroundThreads(nice: number, prefix: string): number {
  if (process.platform !== 'linux') return 0
  let changed = 0
  for (const task of readdirSync('/proc/self/task')) {
    let name: string
    try {
      name = readFileSync(`/proc/self/task/${task}/comm`, 'utf8')
    } catch {
      continue // the thread ended
    }
    if (!name.trimEnd().startsWith(prefix)) continue
    try {
      if (os.getPriority(Number(task)) < nice) {
        os.setPriority(Number(task), nice)
        changed++
      }
    } catch {
      continue
    }
  }
  return changed
}

const { values } = parseArgs({
  options: {
    transactions: { type: 'string', default: '2000000' },
    segment: { type: 'string', default: '250000' },
    bulk: { type: 'string', default: '1000' },
    'background-jobs': { type: 'string' },
    'memtable-budget-mib': { type: 'string' },
    'wal-compression': { type: 'string' },
    'background-nice': { type: 'string' },
    // Which threads --background-nice applies to, by name prefix: all of RocksDB's (default), compactions only, flushes only.
    'background-nice-threads': { type: 'string', default: 'rocksdb:' },
  },
})
const transactions = Number(values.transactions)
const segment = Number(values.segment)
const bulk = Number(values.bulk)
const directory = mkdtempSync(path.join(os.tmpdir(), 'tally-store-stalls-'))
const store = await Store.open(path.join(directory, 'store'), {
  ...(values['background-jobs'] === undefined ? {} : { backgroundJobs: Number(values['background-jobs']) }),
  ...(values['wal-compression'] === undefined ? {} : { walCompression: values['wal-compression'] === 'true' }),
  ...(values['memtable-budget-mib'] === undefined ? {} : { memtableMemoryBudget: Number(values['memtable-budget-mib']) * 1048576 }),
})
if (values['background-nice'] !== undefined) console.log(`reniced ${reniceBackgroundThreads(Number(values['background-nice']), values['background-nice-threads'] as string)} RocksDB threads`)
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
const filler = randomBytes(1 << 20)
let fillerAt = 0
const bytes = (length: number): Buffer => {
  if (fillerAt + length > filler.length) fillerAt = 0
  const value = Buffer.from(filler.subarray(fillerAt, fillerAt + length))
  fillerAt += length + 7
  return value
}
const appended = (zone: number, index: number): Buffer => {
  const key = Buffer.alloc(12)
  key[0] = zone
  key.writeUInt32BE(Math.floor(index / 2 ** 32), 4)
  key.writeUInt32BE(index % 2 ** 32, 8)
  return key
}
const hot = (index: number): Buffer => {
  const key = Buffer.alloc(24)
  key[0] = 0x30
  key.writeUInt32BE(index, 20)
  return key
}
const property = (name: string): string => (store as unknown as { db: { getProperty(name: string): string } }).db.getProperty(name)
const cumulativeStall = (): string => /Cumulative stall: ([0-9:.]+) H:M:S, ([0-9.]+) percent/.exec(property('rocksdb.dbstats'))?.[1] ?? '?'

/** The JavaScript thread's time on a CPU and waiting for one (run queue), ms (/proc schedstat). */
const jsThreadSched = (): { cpu: number; queued: number } => {
  const [cpu, queued] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number)
  return { cpu: (cpu as number) / 1e6, queued: (queued as number) / 1e6 }
}

let written = 0
try {
  console.log('| transactions | store MiB | write ms p50 / p99 / max | writes > 100 ms | L0 files max | delayed rate seen | stopped seen | pending compaction MiB max | cumulative stall | write wall / JS-thread CPU / run-queue wait s |')
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  while (written < transactions) {
    const durations: number[] = []
    let l0Max = 0
    let pendingMax = 0
    let delayed = 0
    let stopped = 0
    let writeCpuMs = 0
    let writeQueuedMs = 0
    const segmentEnd = Math.min(transactions, written + segment)
    while (written < segmentEnd) {
      const rows: RowWrite[] = []
      const count = Math.min(bulk, segmentEnd - written)
      for (let at = 0; at < count; at++, written++) {
        rows.push({ key: appended(0x10, written), value: bytes(300) })
        rows.push({ key: appended(0x11, written), value: bytes(600) })
        rows.push({ key: appended(0x12, written), value: bytes(40) })
        for (let h = 0; h < 4; h++) rows.push({ key: hot(Math.floor(Math.random() * 200000)), value: bytes(70) })
      }
      const cpuBefore = jsThreadSched()
      const started = performance.now()
      await store.write(rows, { sync: false })
      durations.push(performance.now() - started)
      const cpuAfter = jsThreadSched()
      writeCpuMs += cpuAfter.cpu - cpuBefore.cpu
      writeQueuedMs += cpuAfter.queued - cpuBefore.queued
      l0Max = Math.max(l0Max, Number(property('rocksdb.num-files-at-level0')))
      pendingMax = Math.max(pendingMax, Number(property('rocksdb.estimate-pending-compaction-bytes')))
      if (Number(property('rocksdb.actual-delayed-write-rate')) > 0) delayed++
      if (property('rocksdb.is-write-stopped') === '1') stopped++
      await turn()
    }
    durations.sort((a, b) => a - b)
    const at = (q: number): string => (durations[Math.min(durations.length - 1, Math.floor(q * durations.length))] as number).toFixed(1)
    const storeMiB = Number(property('rocksdb.total-sst-files-size')) / 1048576
    console.log(
      `| ${written} | ${storeMiB.toFixed(0)} | ${at(0.5)} / ${at(0.99)} / ${at(1)} | ${durations.filter((d) => d > 100).length} | ${l0Max} | ${delayed} | ${stopped} | ${(pendingMax / 1048576).toFixed(0)} | ${cumulativeStall()} | ${(durations.reduce((a, b) => a + b, 0) / 1000).toFixed(1)} / ${(writeCpuMs / 1000).toFixed(1)} / ${(writeQueuedMs / 1000).toFixed(1)} |`,
    )
  }
  console.log(property('rocksdb.stats'))
} finally {
  await store.close()
  rmSync(directory, { recursive: true, force: true })
}
