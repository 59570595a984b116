import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync } from 'node:fs'
import path from 'node:path'
import { LedgerNode } from '../../src/server/index.ts'
import type { LedgerNodeOptions } from '../../src/server/index.ts'
import type { Order } from '../../src/orders/index.ts'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'
import { AttributeCache, MIRROR_ZONE } from '../../src/cache/index.ts'
import { decodeCacheState } from '../../src/fsm/index.ts'
import { MetaKey, Store, metaKey } from '../../src/store/index.ts'
import type { BatchedRangeOptions, BatchedRangeReader, RangeOptions, StoreReader } from '../../src/store/index.ts'
import { restoreCache } from '../../src/server/cache-restore.ts'
import { runCheck } from '../../src/check/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { submitRetrying } from '../support/ledger.ts'
import { storeRows } from '../support/ledger.ts'
import { clock } from '../check/workload.ts'

const L = 'main' as LedgerName
const CLUSTER = 'cache-bytes-cluster'
const budget = 128 * 1024

function bulk(round: number, size: number): Order[] {
  return Array.from({ length: size }, (_, i) => ({
    type: 'CREATE_TRANSACTION' as const,
    ledger: L,
    postings: [{ source: 'world' as AccountAddress, destination: `users:${round}:${i}` as AccountAddress, amount: BigInt(1 + i), asset: 'USD/2' as Asset }],
    metadata: { round: String(round), note: 'x'.repeat(40) },
    accountMetadata: {},
    force: false,
  }))
}

test('byte budget: big bulks keep Gen0 + Gen1 under 2 × (budget + one proposal); rotation points are replicated state; restart and check agree', async () => {
  const live = tempDirectory('tally-bytes-')
  const replayA = tempDirectory('tally-bytes-a-')
  const replayB = tempDirectory('tally-bytes-b-')
  try {
    const options: Omit<LedgerNodeOptions, 'dataDirectory'> = { cacheRotationThreshold: 1000, cacheGenerationBytesMax: budget, clusterId: CLUSTER, sync: false }
    const node = await LedgerNode.open({ ...options, dataDirectory: live.directory, now: clock() })
    // Watch every apply: the bound must hold at every index, not only at the end.
    let heldMax = 0
    let proposalMax = 0
    const apply = node.fsm.apply.bind(node.fsm)
    node.fsm.apply = (index, proposal, batch) => {
      const before = node.cache.bytes.gen0
      const result = apply(index, proposal, batch)
      const { gen0, gen1 } = node.cache.bytes
      proposalMax = Math.max(proposalMax, gen0 - (node.cache.gen0FirstIndex === index ? 0 : before))
      heldMax = Math.max(heldMax, gen0 + gen1)
      return result
    }
    await submitRetrying(node, [{ type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} }])
    // Four bulks in flight at a time: some are overtaken by rotations they could not foresee.
    for (let round = 0; round < 24; round += 4) {
      await Promise.all([0, 1, 2, 3].map((offset) => submitRetrying(node, bulk(round + offset, 60))))
    }
    const applied = node.fsm.appliedIndex
    assert.ok(node.cache.generation >= 6, `rotations by bytes, not by count (generation ${node.cache.generation} at index ${applied})`)
    assert.ok(heldMax > budget, 'the workload fills the budget')
    assert.ok(heldMax <= 2 * (budget + proposalMax), `held ${heldMax} bytes, bound ${2 * (budget + proposalMax)}`)
    const bytesBefore = node.cache.bytes
    const mirrorBefore = node.cache.contents()
    await node.close()

    // Restart: the same cache, byte counts included.
    const reopened = await LedgerNode.open({ ...options, dataDirectory: live.directory })
    assert.deepEqual(reopened.cache.bytes, bytesBefore)
    assert.deepEqual(reopened.cache.contents(), mirrorBefore)
    await reopened.close()

    // Every replica (a replay of the same WAL) rotates at the same indexes: byte-identical stores.
    for (const replay of [replayA, replayB]) {
      cpSync(path.join(live.directory, 'wal'), path.join(replay.directory, 'wal'), { recursive: true })
      const replayed = await LedgerNode.open({ ...options, dataDirectory: replay.directory })
      assert.equal(replayed.fsm.appliedIndex, applied)
      await replayed.close()
    }
    const [rowsLive, rowsA, rowsB] = await Promise.all([storeRows(live.directory), storeRows(replayA.directory), storeRows(replayB.directory)])
    assert.deepEqual(rowsA, rowsB)
    assert.deepEqual(rowsA, rowsLive)

    const store = await Store.open(path.join(live.directory, 'store'))
    const result = await runCheck(store)
    await store.close()
    assert.equal(result.ok, true, JSON.stringify(result.findingsList).slice(0, 2000))
  } finally {
    live.remove()
    replayA.remove()
    replayB.remove()
  }
})

test('restore streams: each batch of mirror segment rows reaches the cache before the store yields the next batch, and batches are bounded in bytes', async () => {
  const tmp = tempDirectory('tally-stream-')
  try {
    const node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: 1000, clusterId: CLUSTER, sync: false, now: clock() })
    await submitRetrying(node, [{ type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} }])
    // One segment row per applied index: many small proposals, many rows.
    for (let round = 0; round < 110; round++) await submitRetrying(node, bulk(round, 1))
    const applied = node.fsm.appliedIndex
    await node.close()
    const store = await Store.open(path.join(tmp.directory, 'store'))
    try {
      let restored = 0
      const restoreSegment = AttributeCache.prototype.restoreSegment
      AttributeCache.prototype.restoreSegment = function (this: AttributeCache, key: Buffer, value: Buffer): void {
        restored++
        restoreSegment.call(this, key, value)
      }
      let yielded = 0
      let batches = 0
      // Batches of 10 rows here (the store's would hold them all): the restore must take them one at a time.
      const watched: StoreReader & BatchedRangeReader = {
        get: (key) => store.get(key),
        getMany: (keys) => store.getMany(keys),
        range: (options: RangeOptions) => store.range(options),
        rangeBatches: (options: BatchedRangeOptions) =>
          (async function* () {
            assert.ok(options.batchBytes <= 16 * 1024 * 1024, `a restore batch of ${options.batchBytes} bytes`)
            let batch: [Buffer, Buffer][] = []
            for await (const row of store.range(options)) {
              if (row[0][0] !== MIRROR_ZONE) continue
              batch.push(row)
              if (batch.length < 10) continue
              assert.equal(restored, yielded, 'the previous batch was restored before this one is read')
              yielded += batch.length
              batches++
              yield batch
              batch = []
            }
            assert.equal(restored, yielded, 'the previous batch was restored before the last one is read')
            yielded += batch.length
            if (batch.length > 0) yield batch
          })(),
      }
      try {
        const state = decodeCacheState((await store.get(metaKey(MetaKey.cacheState))) as Buffer)
        const cache = await restoreCache(watched, state, applied)
        assert.ok(yielded > 100 && batches > 10, `${yielded} rows streamed in ${batches} batches`)
        assert.equal(restored, yielded)
        assert.ok(cache.size.gen0 + cache.size.gen1 >= yielded, 'every segment wrote at least one key')
      } finally {
        AttributeCache.prototype.restoreSegment = restoreSegment
      }
    } finally {
      await store.close()
    }
  } finally {
    tmp.remove()
  }
})
