/**
 * Where a growing server's memory goes (issue 12, target 4), in one process.
 *
 *   node --import tsx bench/growth-memory.ts [--transactions 300000] [--every 50000] [--bulk-size 500]
 *                                            [--accounts 100000] [--concurrency 4] [--gc-every N]
 *                                            [--indexes-in-block-cache true|false] [--block-cache-mib N] [--keep DIR]
 *
 * `bench/growth.ts` sees the server's RSS grow with the ledger while the V8
 * heap stays flat, and glibc's `malloc_stats` puts the growth in live
 * allocations of the JavaScript thread's arena. This opens a `LedgerNode`
 * and its API in this process on a fresh temporary directory, posts `_bulk`
 * forced transfers through `app.inject` (no sockets), and every --every
 * transactions prints the process's memory beside RocksDB's own accounts
 * (`getProperty`): memtables (live and pinned: `size-all-mem-tables` counts
 * memtables kept alive by iterators or snapshots, `cur-size-all-mem-tables`
 * only the active and unflushed ones), live versions, snapshots, table
 * readers and the block cache. With --gc-every N (needs `node --expose-gc`)
 * a full garbage collection runs after every N transactions: if memory
 * outside the V8 heap then stops growing, it was held by native objects
 * that only a collection frees (finalizers of V8 externals). A benchmark,
 * not a test.
 *
 * `--indexes-in-block-cache` and `--block-cache-mib` open the store with
 * that `StoreTuning` (else the server's defaults): with indexes in the
 * block cache, `block-cache-usage` holds what `estimate-table-readers-mem`
 * held beside it.
 * `--keep DIR` moves the data directory to DIR at the end instead of
 * removing it (a grown store for the read benches: `bench/read-views.ts --store DIR/store`).
 */
import { mkdtempSync, renameSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { buildApi } from '../src/api/index.ts'
import { drawTransaction, encodeTransaction, Random } from '../src/bench/index.ts'
import { LedgerNode } from '../src/server/index.ts'
import { Store, type StoreTuning } from '../src/store/index.ts'

const { values } = parseArgs({
  options: {
    transactions: { type: 'string', default: '300000' },
    every: { type: 'string', default: '50000' },
    'bulk-size': { type: 'string', default: '500' },
    accounts: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '4' },
    'gc-every': { type: 'string', default: '0' },
    'indexes-in-block-cache': { type: 'string' },
    'block-cache-mib': { type: 'string' },
    keep: { type: 'string' },
  },
})
const transactionsWanted = Number(values.transactions)
const every = Number(values.every)
const bulkSize = Number(values['bulk-size'])
const concurrency = Number(values.concurrency)
const gcEvery = Number(values['gc-every'])
const collect = (globalThis as { gc?: () => void }).gc
if (gcEvery > 0 && collect === undefined) throw new Error('--gc-every needs node --expose-gc')
const tuning: StoreTuning = {
  ...(values['indexes-in-block-cache'] === undefined ? {} : { indexesInBlockCache: values['indexes-in-block-cache'] === 'true' }),
  ...(values['block-cache-mib'] === undefined ? {} : { blockCacheBytes: Number(values['block-cache-mib']) * 1048576 }),
}
const settings = { ledger: 'growth', accounts: Number(values.accounts), bulkSize, forceRatio: 1 }

/** The RocksDB handle inside a Store: protected, read here for its properties only. */
interface PropertyReader {
  getProperty(property: string): string
}
let rocks: PropertyReader | undefined
const directory = mkdtempSync(path.join(os.tmpdir(), 'tally-growth-memory-'))
const node = await LedgerNode.open({
  dataDirectory: directory,
  log: () => {},
  openStore: async (storeDirectory) => {
    const store = await Store.open(storeDirectory, tuning)
    rocks = (store as unknown as { db: PropertyReader }).db
    return store
  },
})
const app = await buildApi(node, {})
await app.inject({ method: 'POST', url: '/v2/growth', payload: {} })

const properties = [
  'rocksdb.cur-size-all-mem-tables',
  'rocksdb.size-all-mem-tables',
  'rocksdb.num-immutable-mem-table',
  'rocksdb.num-live-versions',
  'rocksdb.num-snapshots',
  'rocksdb.estimate-table-readers-mem',
  'rocksdb.block-cache-usage',
  'rocksdb.block-cache-pinned-usage',
  'rocksdb.total-sst-files-size',
]
const mib = (bytes: number): string => (bytes / 1048576).toFixed(0)
function report(loaded: number): void {
  const memory = process.memoryUsage()
  const rocksdb = properties.map((name) => {
    let value = Number.NaN
    try {
      value = Number(rocks?.getProperty(name))
    } catch {
      // a property this RocksDB build does not know
    }
    return `${name.replace('rocksdb.', '')} ${name.endsWith('-table') || name.endsWith('versions') || name.endsWith('snapshots') ? value : mib(value)}`
  })
  console.log(`${loaded} tx: rss ${mib(memory.rss)} MiB, heapTotal ${mib(memory.heapTotal)}, heapUsed ${mib(memory.heapUsed)}, external ${mib(memory.external)}, arrayBuffers ${mib(memory.arrayBuffers)} | ${rocksdb.join(', ')}`)
}

let loaded = 0
let nextReport = every
let nextCollection = gcEvery
const random = new Random(7)
const body = (): string => {
  let text = '['
  for (let index = 0; index < bulkSize; index++) text += `${index === 0 ? '' : ','}{"action":"CREATE_TRANSACTION","data":${encodeTransaction(drawTransaction(settings, random))}}`
  return `${text}]`
}
try {
  report(0)
  const client = async (): Promise<void> => {
    while (loaded < transactionsWanted) {
      loaded += bulkSize
      const reply = await app.inject({ method: 'POST', url: '/v2/growth/_bulk?atomic=false', headers: { 'content-type': 'application/json' }, payload: body() })
      if (reply.statusCode !== 200) throw new Error(`bulk answered ${reply.statusCode}: ${reply.body.slice(0, 200)}`)
      if (gcEvery > 0 && loaded >= nextCollection) {
        nextCollection += gcEvery
        collect?.()
      }
      if (loaded >= nextReport) {
        nextReport += every
        report(loaded)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, client))
  report(loaded)
} finally {
  await app.close()
  await node.close()
  if (values.keep === undefined) rmSync(directory, { recursive: true, force: true })
  else renameSync(directory, path.resolve(values.keep))
}
