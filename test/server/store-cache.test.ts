// The node's store opens RocksDB with the block cache the operator gave
// (`tally serve --store-cache-bytes`, `--store-indexes-in-cache`), or the store's defaults.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { LedgerNode } from '../../src/server/index.ts'
import { Store, blockCacheBytesDefault, blockCacheBytesMax, blockCacheBytesMin } from '../../src/store/index.ts'
import { tempDirectory } from '../support/temp.ts'

test('a node opens its store with storeCacheBytes as RocksDB block cache capacity, the default without it', async () => {
  for (const storeCacheBytes of [undefined, 24 * 1024 * 1024]) {
    const temp = tempDirectory('tally-store-cache-')
    try {
      const node = await LedgerNode.open({ dataDirectory: temp.directory, clusterId: 'store-cache', ...(storeCacheBytes === undefined ? {} : { storeCacheBytes }) })
      try {
        assert.equal(node.store.numericProperty('rocksdb.block-cache-capacity'), storeCacheBytes ?? blockCacheBytesDefault)
      } finally {
        await node.close()
      }
    } finally {
      temp.remove()
    }
  }
})

/** `cache_index_and_filter_blocks` in the newest OPTIONS file RocksDB wrote for the node's store. */
function indexesInCacheOption(dataDirectory: string): string | undefined {
  const directory = path.join(dataDirectory, 'store')
  const newest = readdirSync(directory)
    .filter((name) => name.startsWith('OPTIONS-'))
    .sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)))
    .at(-1)
  assert.ok(newest !== undefined)
  return /^\s*cache_index_and_filter_blocks=(.*)$/m.exec(readFileSync(path.join(directory, newest), 'utf8'))?.[1]?.trim()
}

test('a node keeps index and filter blocks beside the block cache by default, in it with storeIndexesInCache', async () => {
  for (const storeIndexesInCache of [undefined, true, false]) {
    const temp = tempDirectory('tally-store-cache-')
    try {
      const node = await LedgerNode.open({ dataDirectory: temp.directory, clusterId: 'store-cache', ...(storeIndexesInCache === undefined ? {} : { storeIndexesInCache }) })
      await node.close()
      assert.equal(indexesInCacheOption(temp.directory), String(storeIndexesInCache ?? false), String(storeIndexesInCache))
    } finally {
      temp.remove()
    }
  }
})

test('a store refuses a block cache outside what the binding reads (0 would be no cache, 4 GiB would wrap)', async () => {
  const temp = tempDirectory('tally-store-cache-')
  try {
    for (const blockCacheBytes of [0, blockCacheBytesMin - 1, blockCacheBytesMax + 1, 1.5 * 1024 * 1024 + 0.5]) {
      await assert.rejects(Store.open(temp.directory, { blockCacheBytes }), RangeError, `${blockCacheBytes}`)
    }
  } finally {
    temp.remove()
  }
})
