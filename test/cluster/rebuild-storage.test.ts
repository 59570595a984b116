/**
 * The storage port of a real primary (docs/cluster.md, "Snapshots and
 * rebuild"): snapshots are taken at checkpoints, the WAL is never recycled
 * past the newest trusted image nor a pinned range, and the engine's planner
 * then chooses snapshot + tail for a replica beyond retention.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { NodeSnapshotStorage, SnapshotCatalog } from '../../src/cluster/snapshot/index.ts'
import { Lsn, ReplicaId, SessionId, Epoch, proveRecoverability, selectRebuildSource } from '../../src/replication/index.ts'
import { LedgerNode } from '../../src/server/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { until } from './helpers.ts'
import { CLUSTER, createLedger, randomOrders, runWorkload } from './node-support.ts'

const temps: { remove: () => void }[] = []
after(() => {
  for (const temp of temps) temp.remove()
})

async function openWithStorage(snapshotEveryEntries: number): Promise<{ node: LedgerNode; storage: NodeSnapshotStorage; catalog: SnapshotCatalog }> {
  const temp = tempDirectory('tally-rebuild-storage-')
  temps.push(temp)
  let clock = Date.parse('2026-01-01T00:00:00Z')
  const node = await LedgerNode.open({ dataDirectory: temp.directory, clusterId: CLUSTER, cacheRotationThreshold: 16, sync: false, stateHash: true, checkpointEntries: 5, walRetainEntries: 3, walSegmentBytesMax: 2048, now: () => (clock += 1000), log: () => {} })
  const catalog = await SnapshotCatalog.open({ directory: path.join(temp.directory, 'snapshots') })
  const storage = new NodeSnapshotStorage({ node, catalog, snapshotEveryEntries })
  node.setRetention(storage)
  return { node, storage, catalog }
}

const owner = { replicaId: ReplicaId.of('n2'), sessionId: SessionId.of({ primaryId: ReplicaId.of('n1'), incarnation: 1 }, Epoch.of(1), 1) }

describe('snapshot storage port', () => {
  it('takes snapshots at checkpoints and keeps the WAL tail after the newest one', async () => {
    const { node, storage, catalog } = await openWithStorage(20)
    try {
      await runWorkload(node, [createLedger, ...randomOrders(3, 80)], 1)
      await node.checkpoint()
      await until('a snapshot', () => catalog.newest())
      await node.checkpoint()
      // Read in the same synchronous stretch as the history: a snapshot a checkpoint started may complete at any await.
      const newest = catalog.newest()
      const history = storage.retainedHistory()
      assert.ok(newest !== undefined)
      assert.equal(history.checkpointTrusted, true)
      assert.equal(history.checkpointLsn, newest.appliedIndex)
      assert.ok(history.tailLsn <= newest.appliedIndex, `tail ${history.tailLsn} after snapshot ${newest.appliedIndex}`)
      assert.ok(history.tailLsn > 0, 'the WAL was recycled up to the snapshot')
      // A replica that holds nothing is beyond retention: the planner rebuilds it from the snapshot and the tail.
      assert.equal(proveRecoverability(history, Lsn.zero).kind, 'gap_beyond_retention')
      assert.deepEqual(selectRebuildSource(history), { source: 'snapshot_tail', snapshotLsn: history.checkpointLsn, targetLsn: history.committedLsn })
      const pin = storage.pinSnapshot(owner, history.checkpointLsn)
      assert.ok(pin.ok)
      pin.release()
      assert.equal(storage.pinFullBase(owner, history.committedLsn).ok, false)
    } finally {
      await node.close()
    }
  })

  it('holds recycling at a pinned WAL range until it is released', async () => {
    const { node, storage, catalog } = await openWithStorage(5)
    try {
      await runWorkload(node, [createLedger, ...randomOrders(4, 10)], 1)
      await node.checkpoint()
      await until('a snapshot', () => catalog.newest())
      const pinnedAt = Lsn.of(node.wal.tail)
      const pin = storage.pinWalRetention(owner, pinnedAt)
      assert.ok(pin.ok)
      for (let round = 0; round < 4; round++) {
        await runWorkload(node, randomOrders(10 + round, 10), 1)
        await node.checkpoint()
      }
      assert.equal(node.wal.tail, pinnedAt, 'nothing above the pin was recycled')
      pin.release()
      await runWorkload(node, randomOrders(20, 10), 1)
      await node.checkpoint()
      await until('recycled past the released pin', () => (node.wal.tail > pinnedAt ? true : undefined))
      assert.equal(storage.pinWalRetention(owner, pinnedAt).ok, false, 'a recycled range cannot be pinned')
    } finally {
      await node.close()
    }
  })
})
