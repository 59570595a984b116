// The RocksDB options the store opens with (src/store/store.ts), as RocksDB
// itself records them, and a store written under an earlier release's
// options (ZSTD dictionaries) read back under today's.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { Store } from '../../src/store/index.ts'
import type { StoreTuning } from '../../src/store/index.ts'
import { tempDirectory } from '../support/temp.ts'

/** The newest OPTIONS file RocksDB wrote in a store directory: the options it runs with. */
function rocksdbOptions(directory: string): string {
  const files = readdirSync(directory)
    .filter((name) => name.startsWith('OPTIONS-'))
    .sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)))
  const newest = files.at(-1)
  assert.ok(newest !== undefined, `no OPTIONS file in ${directory}`)
  return readFileSync(path.join(directory, newest), 'utf8')
}

/** One `name=value` line of an OPTIONS file (the first, the default column family's). */
function option(text: string, name: string): string {
  const found = new RegExp(`^\\s*${name}=(.*)$`, 'm').exec(text)
  assert.ok(found !== null, `no ${name} in the OPTIONS file`)
  return (found[1] as string).trim()
}

test('a store opens RocksDB without ZSTD dictionaries, its lower levels still ZSTD, its log uncompressed, round-robin compactions, a bloom filter per file, a 64 MiB block cache, index and filter blocks beside it', async () => {
  const tmp = tempDirectory()
  const directory = path.join(tmp.directory, 'store')
  const store = await Store.open(directory)
  try {
    const text = rocksdbOptions(directory)
    assert.match(option(text, 'compression_opts'), /(^|[{;])max_dict_bytes=0;/)
    assert.match(option(text, 'compression_opts'), /(^|[{;])zstd_max_train_bytes=0;/)
    assert.equal(option(text, 'compression_per_level'), 'kNoCompression:kNoCompression:kZSTD:kZSTD:kZSTD:kZSTD:kZSTD')
    assert.equal(option(text, 'wal_compression'), 'kNoCompression')
    assert.equal(option(text, 'write_buffer_size'), String(8 * 1024 * 1024))
    assert.equal(option(text, 'compaction_pri'), 'kRoundRobin')
    assert.equal(option(text, 'filter_policy'), 'bloomfilter:10:false')
    assert.equal(option(text, 'cache_index_and_filter_blocks'), 'false')
    // Not in the OPTIONS file: RocksDB's own property.
    assert.equal(store.numericProperty('rocksdb.block-cache-capacity'), 64 * 1024 * 1024)
  } finally {
    await store.close()
    tmp.remove()
  }
})

test("a StoreTuning reaches RocksDB: dictionaries back on, 16 KiB blocks, RocksDB's own compaction priority, the binding's 8 MiB block cache", async () => {
  const tmp = tempDirectory()
  const directory = path.join(tmp.directory, 'store')
  const store = await Store.open(directory, { compressionDictionaries: true, blockBytes: 16384, compactionPriority: 'overlappingRatio', blockCacheBytes: 8 * 1024 * 1024 })
  try {
    assert.equal(store.numericProperty('rocksdb.block-cache-capacity'), 8 * 1024 * 1024)
    const text = rocksdbOptions(directory)
    assert.match(option(text, 'compression_opts'), /(^|[{;])max_dict_bytes=16384;/)
    assert.equal(option(text, 'block_size'), '16384')
    assert.equal(option(text, 'compaction_pri'), 'kMinOverlappingRatio')
  } finally {
    await store.close()
    tmp.remove()
  }
})

/** Waits until RocksDB has no flush or compaction running or pending (polling, with a deadline). */
async function settled(store: Store): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    const busy = ['rocksdb.num-running-compactions', 'rocksdb.num-running-flushes', 'rocksdb.compaction-pending', 'rocksdb.mem-table-flush-pending'].reduce(
      (sum, name) => sum + (store.numericProperty(name) ?? 0),
      0,
    )
    if (busy === 0) return
    assert.ok(Date.now() < deadline, 'RocksDB still flushing or compacting after 60 s')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** The memory RocksDB holds for table files beside the block cache, and the block cache's usage, after `rows` rows reached table files and were read once. */
async function tableMemory(indexesInBlockCache: boolean | undefined, rows: number): Promise<{ tableReaders: number; blockCache: number; text: string }> {
  const tmp = tempDirectory()
  const directory = path.join(tmp.directory, 'store')
  const store = await Store.open(directory, { memtableMemoryBudget: 1024 * 1024, ...(indexesInBlockCache === undefined ? {} : { indexesInBlockCache }) })
  try {
    for (let from = 0; from < rows; from += 2000) {
      await store.write(
        Array.from({ length: 2000 }, (_, at) => ({ key: key(from + at), value: value(from + at) })),
        { sync: false },
      )
    }
    await settled(store)
    const read = store.getManySync(Array.from({ length: rows / 100 }, (_, i) => key(i * 100)))
    read.forEach((found, i) => assert.deepEqual(found, value(i * 100), `row ${i * 100}`))
    return { tableReaders: store.numericProperty('rocksdb.estimate-table-readers-mem') ?? Number.NaN, blockCache: store.numericProperty('rocksdb.block-cache-usage') ?? Number.NaN, text: rocksdbOptions(directory) }
  } finally {
    await store.close()
    tmp.remove()
  }
}

test('StoreTuning.indexesInBlockCache holds index and filter blocks in the block cache, not beside it in memory that grows with the table files (by default they are beside it)', async () => {
  const rows = 60_000
  const inCache = await tableMemory(true, rows)
  const beside = await tableMemory(undefined, rows)
  assert.equal(option(inCache.text, 'cache_index_and_filter_blocks'), 'true')
  // 60,000 keys: a 10-bit filter alone is ~73 KiB, held by the table readers when beside the cache.
  assert.ok(beside.tableReaders > 64 * 1024, `table readers hold ${beside.tableReaders} B with indexes beside the cache`)
  // In the cache, a table reader keeps only its own small bookkeeping (a few KiB per file) ...
  assert.ok(inCache.tableReaders < beside.tableReaders / 4, `table readers hold ${inCache.tableReaders} B with indexes in the cache, ${beside.tableReaders} B beside it`)
  // ... and the cache holds the index and filter blocks the reads used, beside their data blocks.
  assert.ok(inCache.blockCache > beside.blockCache + 64 * 1024, `block cache ${inCache.blockCache} B with indexes in it, ${beside.blockCache} B without`)
})

/** Table files holding a compression dictionary: their meta index names the block `rocksdb.compression_dict`. */
function tableFilesWithDictionaries(directory: string): number {
  return readdirSync(directory).filter((name) => name.endsWith('.sst') && readFileSync(path.join(directory, name)).includes('rocksdb.compression_dict')).length
}

const key = (i: number): Buffer => Buffer.from(`row-${String(i).padStart(7, '0')}`)
/** Compressible, different per row: what ZSTD and its dictionary have something to do with. */
const value = (i: number): Buffer => Buffer.from(`{"id":${i},"source":"users:${i % 977}","destination":"users:${(i * 7) % 977}","asset":"USD/2","amount":${i * 13}}`.repeat(4))

test("a store an earlier release wrote (ZSTD dictionaries, least-overlap compactions) reads every row under today's options", async () => {
  const tmp = tempDirectory()
  const directory = path.join(tmp.directory, 'store')
  const rows = 60_000
  // Small memtables so that a few MB reach the compressed levels.
  const small: StoreTuning = { memtableMemoryBudget: 1024 * 1024 }
  const earlier = await Store.open(directory, { ...small, compressionDictionaries: true, compactionPriority: 'overlappingRatio' })
  try {
    for (let from = 0; from < rows; from += 2000) {
      await earlier.write(
        Array.from({ length: 2000 }, (_, at) => ({ key: key(from + at), value: value(from + at) })),
        { sync: false },
      )
    }
    await earlier.write([{ key: Buffer.from('last'), value: Buffer.from('x') }], { sync: true })
    await settled(earlier)
  } finally {
    await earlier.close()
  }
  const store = await Store.open(directory, small)
  try {
    // The earlier release's files hold blocks compressed with a dictionary (a meta block of that name).
    assert.ok(tableFilesWithDictionaries(directory) > 0, 'no table file with a ZSTD dictionary')
    const values = store.getManySync(Array.from({ length: rows }, (_, i) => key(i)))
    values.forEach((read, i) => assert.deepEqual(read, value(i), `row ${i}`))
    // And what this store writes from now on goes to files without one.
    for (let from = rows; from < 2 * rows; from += 2000) {
      await store.write(
        Array.from({ length: 2000 }, (_, at) => ({ key: key(from + at), value: value(from + at) })),
        { sync: false },
      )
    }
    await settled(store)
    const all = store.getManySync(Array.from({ length: 2 * rows }, (_, i) => key(i)))
    all.forEach((read, i) => assert.deepEqual(read, value(i), `row ${i}`))
  } finally {
    await store.close()
    tmp.remove()
  }
})
