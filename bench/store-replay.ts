/**
 * RocksDB's options compared on the server's own writes, without the server
 * (issue 12, targets 3 and 4): what each option costs RocksDB's background
 * threads (flushes, compactions), the JavaScript thread's writes, the disk,
 * and point reads, as the store grows.
 *
 *   node --import tsx bench/store-replay.ts --capture FILE [--transfers N] [--batches N] [--transfers-max N] [--segment 500000] [--reads 50000]
 *        [--compression-dictionaries true|false] [--memtable-budget-mib 32] [--background-jobs N]
 *        [--block-bytes 4096] [--block-cache-mib 8] [--indexes-in-block-cache true|false]
 *        [--filter-policy bloomfilter:10:false|nullptr|…] [--pipelined-write true|false]
 *        [--compaction-priority overlappingRatio|roundRobin|…] [--label TEXT]
 *
 * FILE holds the store batches a server wrote, in order, as
 * `bench/store-capture.ts` documents (its `captureStoreWrites` records them
 * from a `tally serve` under load). Each batch is written to a fresh store
 * opened with the options given (the others at the server's defaults) with
 * a turn of the event loop between, as the apply loop does; synced batches
 * (checkpoints) stay synced. Then the store is left until RocksDB has no
 * flush or compaction running or pending, so that work a configuration only
 * defers is counted too. Printed, one Markdown row and one JSON line: CPU
 * per transfer of the JavaScript thread, of RocksDB's flush (`rocksdb:high`)
 * and compaction (`rocksdb:low`) threads and of the rest (libuv's pool, V8's
 * helpers), from Linux's per-thread schedstat; the bytes RocksDB wrote in
 * compactions and flushes (its own "Sum" line); the table files' size; the
 * memory its table readers hold (indexes and filters kept beside the block
 * cache); the longest write and the writes over 100 ms; and `--reads` point
 * reads on the JavaScript thread of keys written (sampled evenly) and of
 * keys never written, µs each. Figures are per transfer: per ledger log row
 * written (one per transaction), or per `--transfers` when given.
 * `--batches N` or `--transfers-max N` replays only a prefix (the batches
 * until N log rows). A `# segment` line every `--segment` transfers gives
 * the CPU per transfer over it (RocksDB's threads lag their writes). Columns: label, load average, then µs per transfer:
 * JS thread (reading the capture included, the same for every
 * configuration), flushes, compactions, other threads, all; RocksDB's
 * threads by the end of the writes (before settling); the JS thread's time
 * inside store writes; then RocksDB's GB written, table files MiB, table
 * readers MiB, longest write ms / writes over 100 ms, point read µs of a
 * present / absent key, seconds writing + settling.
 *
 * Run each configuration in its own process, alternated with the defaults,
 * at least twice (docs/performance.md, "RocksDB's options"). A benchmark, not a test.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Store, type RowWrite, type StoreTuning } from '../src/store/index.ts'
import { Zone } from '../src/store/layout.ts'
import { readCapturedBatches } from './store-capture.ts'

const { values } = parseArgs({
  options: {
    capture: { type: 'string' },
    transfers: { type: 'string' },
    reads: { type: 'string', default: '50000' },
    batches: { type: 'string' },
    'transfers-max': { type: 'string' },
    segment: { type: 'string', default: '500000' },
    label: { type: 'string', default: '' },
    'compression-dictionaries': { type: 'string' },
    'memtable-budget-mib': { type: 'string' },
    'background-jobs': { type: 'string' },
    'block-bytes': { type: 'string' },
    'block-cache-mib': { type: 'string' },
    'indexes-in-block-cache': { type: 'string' },
    'filter-policy': { type: 'string' },
    'pipelined-write': { type: 'string' },
    'compaction-priority': { type: 'string' },
  },
})
if (values.capture === undefined) throw new Error('--capture FILE is required (see bench/store-capture.ts)')
const flag = (text: string | undefined): boolean | undefined => (text === undefined ? undefined : text === 'true')
const number = (text: string | undefined, scale = 1): number | undefined => (text === undefined ? undefined : Number(text) * scale)
const tuning: StoreTuning = Object.fromEntries(
  Object.entries({
    compressionDictionaries: flag(values['compression-dictionaries']),
    memtableMemoryBudget: number(values['memtable-budget-mib'], 1048576),
    backgroundJobs: number(values['background-jobs']),
    blockBytes: number(values['block-bytes']),
    blockCacheBytes: number(values['block-cache-mib'], 1048576),
    indexesInBlockCache: flag(values['indexes-in-block-cache']),
    filterPolicy: values['filter-policy'],
    pipelinedWrite: flag(values['pipelined-write']),
    compactionPriority: values['compaction-priority'],
  }).filter(([, value]) => value !== undefined),
)
const readsWanted = Number(values.reads)

/** Each thread's time on a CPU so far, ns, by thread id, with its name (Linux schedstat). */
function threadTimes(): Map<string, { name: string; ns: number }> {
  const times = new Map<string, { name: string; ns: number }>()
  for (const task of readdirSync('/proc/self/task')) {
    try {
      const name = readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim()
      const ns = Number(readFileSync(`/proc/self/task/${task}/schedstat`, 'utf8').split(' ')[0])
      times.set(task, { name, ns })
    } catch {
      continue // the thread ended
    }
  }
  return times
}

/** CPU seconds since `before`, by group: the JavaScript thread, RocksDB's flushes and compactions, the rest. */
function cpuSince(before: Map<string, { name: string; ns: number }>): Record<'js' | 'flush' | 'compaction' | 'other', number> {
  const groups = { js: 0, flush: 0, compaction: 0, other: 0 }
  for (const [task, now] of threadTimes()) {
    const seconds = (now.ns - (before.get(task)?.ns ?? 0)) / 1e9
    if (Number(task) === process.pid) groups.js += seconds
    else if (now.name.startsWith('rocksdb:high')) groups.flush += seconds
    else if (now.name.startsWith('rocksdb:')) groups.compaction += seconds
    else groups.other += seconds
  }
  return groups
}

const directory = mkdtempSync(path.join(os.tmpdir(), 'tally-store-replay-'))
const store = await Store.open(path.join(directory, 'store'), tuning)
const property = (name: string): string => (store as unknown as { db: { getProperty(name: string): string } }).db.getProperty(name)
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

try {
  const before = threadTimes()
  const startedAt = performance.now()
  let batches = 0
  let rows = 0
  let inputBytes = 0
  let slow = 0
  let longest = 0
  /** Every 997th key written, for the point reads after. */
  const sampled: Buffer[] = []
  const batchesMax = values.batches === undefined ? Infinity : Number(values.batches)
  const transfersMax = values['transfers-max'] === undefined ? Infinity : Number(values['transfers-max'])
  /** Ledger log rows written: one per transaction in a load of transfers. */
  let logRows = 0
  const segment = Number(values.segment)
  let segmentCpu = cpuSince(before)
  let segmentAt = performance.now()
  /** Per `--segment` transfers: CPU per transfer by group over the segment (RocksDB's lags its writes: read the settled totals too). */
  const segmentLine = (): void => {
    const now = cpuSince(before)
    const at = (group: keyof typeof now): string => (((now[group] - segmentCpu[group]) * 1e6) / segment).toFixed(1)
    console.log(`# segment to ${logRows}: µs/tx js ${at('js')} flush ${at('flush')} compaction ${at('compaction')} other ${at('other')}; ${((performance.now() - segmentAt) / 1000).toFixed(0)} s; table files ${(Number(property('rocksdb.total-sst-files-size')) / 1048576).toFixed(0)} MiB; load ${os.loadavg()[0]?.toFixed(1)}`)
    segmentCpu = now
    segmentAt = performance.now()
  }
  for (const batch of readCapturedBatches(values.capture)) {
    if (batches >= batchesMax || logRows >= transfersMax) break
    const started = performance.now()
    await store.write(batch.rows, { sync: batch.sync })
    const took = performance.now() - started
    longest = Math.max(longest, took)
    if (took > 100) slow++
    batches++
    for (const row of batch.rows as readonly RowWrite[]) {
      if (++rows % 997 === 0) sampled.push(Buffer.from(row.key))
      if (row.key[0] === Zone.logs && row.value !== null && ++logRows % segment === 0) segmentLine()
      inputBytes += row.key.length + (row.value?.length ?? 0)
    }
    await turn()
  }
  const writtenAt = performance.now()
  const cpuWritten = cpuSince(before)
  // Work deferred is work too: wait until RocksDB has nothing left to flush or compact.
  const settleDeadline = performance.now() + 600_000
  while (performance.now() < settleDeadline) {
    const busy =
      Number(property('rocksdb.num-running-compactions')) +
      Number(property('rocksdb.num-running-flushes')) +
      Number(property('rocksdb.compaction-pending')) +
      Number(property('rocksdb.mem-table-flush-pending'))
    if (busy === 0) break
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  const settledAt = performance.now()
  const cpu = cpuSince(before)
  const sum = /^\s*Sum\s+(.*)$/m.exec(property('rocksdb.cfstats'))?.[1]?.trim().split(/\s+/) ?? []
  // Sum row: Files Size(unit) Score Read(GB) Rn(GB) Rnp1(GB) Write(GB) Wnew(GB) Moved(GB) W-Amp Rd Wr Comp(sec) CompMergeCPU(sec) …
  const sizeShift = sum[1]?.match(/^[0-9.]+$/) ? 0 : 1 // "1.23 GB" prints as two fields
  const writeGB = Number(sum[7 + sizeShift])
  const compSeconds = Number(sum[13 + sizeShift])
  const compMergeCpuSeconds = Number(sum[14 + sizeShift])
  const sstBytes = Number(property('rocksdb.total-sst-files-size'))
  const tableReadersBytes = Number(property('rocksdb.estimate-table-readers-mem'))
  const levels = /^\s*L\d.*$/gm
  const levelLines = property('rocksdb.cfstats').match(levels) ?? []

  // Point reads on the JavaScript thread, as the API's get-account does: keys written, then keys never written.
  const readKeys = (keys: Buffer[]): number => {
    const started = performance.now()
    for (let at = 0; at < keys.length; at++) store.getManySync([keys[at] as Buffer])
    return ((performance.now() - started) * 1000) / Math.max(1, keys.length)
  }
  let seed = 7
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31)
  const present: Buffer[] = []
  const absent: Buffer[] = []
  for (let at = 0; at < readsWanted && sampled.length > 0; at++) {
    const key = sampled[Math.floor(random() * sampled.length)] as Buffer
    present.push(key)
    const missing = Buffer.concat([key, Buffer.of(0x01, Math.floor(random() * 256))]) // sorts beside it, never written
    absent.push(missing)
  }
  const presentUs = readKeys(present)
  const absentUs = readKeys(absent)

  const transfers = values.transfers === undefined ? logRows : Number(values.transfers)
  const per = (seconds: number): string => ((seconds * 1e6) / Math.max(1, transfers)).toFixed(1)
  const result = {
    label: values.label,
    tuning,
    loadAverage: os.loadavg().map((load) => Number(load.toFixed(2))),
    batches,
    rows,
    inputMiB: inputBytes / 1048576,
    transfers,
    writeSeconds: (writtenAt - startedAt) / 1000,
    settleSeconds: (settledAt - writtenAt) / 1000,
    cpuWrittenSeconds: cpuWritten,
    cpuSettledSeconds: cpu,
    compactionSeconds: compSeconds,
    compactionMergeCpuSeconds: compMergeCpuSeconds,
    rocksdbWriteGB: writeGB,
    sstMiB: sstBytes / 1048576,
    tableReadersMiB: tableReadersBytes / 1048576,
    storeWriteSeconds: store.writeTime.milliseconds / 1000,
    longestWriteMs: longest,
    writesOver100ms: slow,
    pointReadPresentUs: presentUs,
    pointReadAbsentUs: absentUs,
    levels: levelLines.map((line) => line.trim().split(/\s+/).slice(0, 4).join(' ')),
  }
  console.log(
    `| ${values.label} | ${os.loadavg()[0]?.toFixed(1)} | ${per(cpu.js)} | ${per(cpu.flush)} | ${per(cpu.compaction)} | ${per(cpu.other)} | ${per(cpu.js + cpu.flush + cpu.compaction + cpu.other)} | ` +
      `${per(cpuWritten.flush + cpuWritten.compaction)} | ${writeGB.toFixed(2)} | ${(sstBytes / 1048576).toFixed(0)} | ${(tableReadersBytes / 1048576).toFixed(1)} | ` +
      `${per(result.storeWriteSeconds)} | ${longest.toFixed(0)} / ${slow} | ${presentUs.toFixed(1)} / ${absentUs.toFixed(1)} | ${result.writeSeconds.toFixed(0)} + ${result.settleSeconds.toFixed(0)} |`,
  )
  console.log(JSON.stringify(result))
} finally {
  await store.close()
  rmSync(directory, { recursive: true, force: true })
}
