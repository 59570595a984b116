// The recovery engine's RecoveryDriver running on a real primary WAL, its
// transport ports implemented by the peer transport over loopback TCP: an
// empty replica bootstraps, a replica with a divergent tail of an older
// epoch is cut at the match point and caught up, both then follow live
// shipping, and all three WALs end byte-identical. A connect to a stale
// replica epoch, and sessions that lose their connection, report ok: false
// (and the loss reaches the transport's onDisconnect, named by replica).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  Epoch,
  Lsn,
  RecoveryDriver,
  RecoveryLog,
  Registry,
  ReplicaId,
  Tick,
  unlimitedBudget,
  type BaseTransferReport,
  type DriverOptions,
  type PinOwner,
  type PinResult,
  type RetainedHistory,
} from '../../src/replication/index.ts'
import { PeerTransport, ReplicaServer } from '../../src/cluster/peer/index.ts'
import type { Wal } from '../../src/wal/index.ts'
import { Cleanup, MemoryReplicaState, appendEntries, openWal, records, segmentImages, until } from './peer-harness.ts'

/** The storage ports over the primary's real WAL; no snapshots in this test (base transfer is out of scope). */
function adaptersFor(wal: Wal, transport: PeerTransport, committed: () => Lsn): DriverOptions['adapters'] {
  const refuse = (reason: string): BaseTransferReport => ({ ok: false, reason })
  return {
    retainedHistory: (): RetainedHistory => ({
      headLsn: Lsn.of(wal.durable),
      tailLsn: Lsn.of(wal.tail),
      committedLsn: committed(),
      checkpointLsn: Lsn.zero,
      checkpointTrusted: false,
    }),
    pinWalRetention: (_owner: PinOwner, fromLsnExclusive: Lsn): PinResult => {
      if (fromLsnExclusive < wal.tail) return { ok: false, reason: 'wal_recycled' }
      return { ok: true, release: wal.pinRetention(fromLsnExclusive) }
    },
    pinSnapshot: () => ({ ok: false, reason: 'no_snapshot' }),
    pinFullBase: () => ({ ok: false, reason: 'no_full_base' }),
    transferSnapshot: () => refuse('base_transfer_not_implemented'),
    transferFullBase: () => refuse('base_transfer_not_implemented'),
    connect: (request) => transport.connect(request),
    streamWal: (request) => transport.streamWal(request),
    truncate: (request) => transport.truncate(request),
  }
}

async function replicaNode(cleanup: Cleanup, id: string, epoch: number, knownCommittedLsn = 0) {
  const node = await openWal(cleanup)
  const state = new MemoryReplicaState({ epoch, knownCommittedLsn })
  const server = await ReplicaServer.listen({ replicaId: id, wal: node.wal, state })
  cleanup.add(() => server.close())
  return { ...node, state, server, dataAddress: `${server.address.host}:${server.address.port}` }
}

test('the RecoveryDriver bootstraps and catches up real replicas over TCP, then live shipping keeps them identical', async () => {
  const cleanup = new Cleanup()
  try {
    const primary = await openWal(cleanup)
    await appendEntries(primary.wal, { epoch: 1, count: 60, origin: 'shared' })
    await appendEntries(primary.wal, { epoch: 2, count: 40, origin: 'p-new' })
    const fresh = await replicaNode(cleanup, 'r1', 2)
    const diverged = await replicaNode(cleanup, 'r2', 2, 50)
    await appendEntries(diverged.wal, { epoch: 1, count: 60, origin: 'shared' })
    await appendEntries(diverged.wal, { epoch: 1, count: 10, origin: 'p-old' })

    const committed = () => Lsn.of(primary.wal.durable)
    const acked = new Map<string, number>()
    const transport = new PeerTransport({
      localId: 'p1',
      wal: primary.wal,
      epoch: Epoch.of(2),
      committedLsn: committed,
      link: { backoffMsMin: 5, backoffMsMax: 50 },
      onAck: (replicaId, lsn) => acked.set(replicaId, lsn),
    })
    cleanup.add(() => transport.close())
    const log = new RecoveryLog()
    const registry = new Registry({ log, sessionScope: { primaryId: ReplicaId.of('p1'), incarnation: 1 } })
    registry.reconcile({
      epoch: Epoch.of(2),
      replicas: [
        { replicaId: ReplicaId.of('r1'), endpoint: { dataAddress: fresh.dataAddress, controlAddress: fresh.dataAddress, version: 1 } },
        { replicaId: ReplicaId.of('r2'), endpoint: { dataAddress: diverged.dataAddress, controlAddress: diverged.dataAddress, version: 1 } },
      ],
    })
    const driver = new RecoveryDriver({
      registry,
      adapters: adaptersFor(primary.wal, transport, committed),
      chunkEntriesMax: 16,
      catchUpBudget: unlimitedBudget,
      catchUpTimeoutTicks: 100_000,
      reservationTimeoutTicks: 100_000,
      rebuildStallTicks: 100_000,
      recoveryRetryTicks: 5,
      connectTimeoutTicks: 100_000,
    })
    const completed = new Map<string, number>()
    let now = 0
    await until('both replicas recovered', () => {
      now += 1
      const ready = driver.tick(Tick.of(now))
      assert.deepEqual(ready.failed, [], 'no recovery failed')
      for (const done of ready.completed) {
        completed.set(done.replicaId, done.syncedToLsn)
        transport.follow(done.replicaId)
      }
      return completed.size === 2
    })
    assert.deepEqual([...completed.entries()].sort(), [
      ['r1', 100],
      ['r2', 100],
    ])
    assert.equal(diverged.server.counters.truncations, 1, 'the old epoch’s tail was cut once')
    assert.equal(transport.link(ReplicaId.of('r2'))?.lastMatch?.flushedLsn, 60)
    assert.ok(log.has('session_completed'), 'the recovery log records both completions')

    // Live shipping after recovery.
    await appendEntries(primary.wal, { epoch: 2, count: 30, origin: 'p-new' })
    for (const replica of [fresh, diverged]) {
      await until(`${replica.server.address.port} caught up live`, () => replica.wal.durable === 130)
      assert.deepEqual(await records(replica.wal), await records(primary.wal))
      assert.deepEqual(await segmentImages(replica.directory), await segmentImages(primary.directory))
    }
    await until('the acks reached the commit input', () => acked.get('r1') === 130 && acked.get('r2') === 130)
  } finally {
    await cleanup.run()
  }
})

test('connect reports ok: false when the replica holds a newer epoch, and a session whose connection is lost stops streaming', async () => {
  const cleanup = new Cleanup()
  try {
    const primary = await openWal(cleanup)
    await appendEntries(primary.wal, { epoch: 1, count: 10, origin: 'p1' })
    const newer = await replicaNode(cleanup, 'r1', 2)
    const deposedBy: number[] = []
    const disconnects: string[] = []
    const transport = new PeerTransport({
      localId: 'p1',
      wal: primary.wal,
      epoch: Epoch.of(1),
      committedLsn: () => Lsn.of(10),
      link: { backoffMsMin: 5 },
      onDeposed: (epoch) => deposedBy.push(epoch),
      onDisconnect: (replicaId, error) => disconnects.push(`${replicaId}:${error.reason}`),
    })
    cleanup.add(() => transport.close())
    const request = {
      replicaId: ReplicaId.of('r1'),
      sessionId: 'p1/1/e1/1' as Parameters<PeerTransport['connect']>[0]['sessionId'],
      endpoint: { dataAddress: newer.dataAddress, controlAddress: newer.dataAddress, version: 1 },
      epoch: Epoch.of(1),
    }
    assert.deepEqual(transport.connect(request), { ok: true, flushedLsn: undefined })
    let report = transport.connect(request)
    await until('the handshake is refused', () => {
      report = transport.connect(request)
      return !report.ok
    })
    assert.deepEqual(report, { ok: false, reason: 'deposed' })
    assert.equal(transport.link(ReplicaId.of('r1'))?.deposedBy, 2)
    assert.deepEqual(deposedBy, [2])
    assert.deepEqual(transport.connect({ ...request, epoch: Epoch.of(2) }), { ok: false, reason: 'epoch_mismatch' })

    // A reachable replica: matched, then the server goes away: the session's streams fail.
    const other = await replicaNode(cleanup, 'r2', 1)
    const second = { ...request, replicaId: ReplicaId.of('r2'), endpoint: { ...request.endpoint, dataAddress: other.dataAddress } }
    await until('matched', () => {
      const connected = transport.connect(second)
      return connected.ok && connected.flushedLsn !== undefined
    })
    const ticket = { replicaId: second.replicaId, sessionId: second.sessionId, kind: 'bootstrap' as const, epoch: Epoch.of(1), endpoint: second.endpoint }
    assert.deepEqual(transport.streamWal({ ticket, fromLsnExclusive: Lsn.zero, toLsnInclusive: Lsn.of(10) }).ok, true)
    await until('shipped', () => transport.streamWal({ ticket, fromLsnExclusive: Lsn.zero, toLsnInclusive: Lsn.of(10) }).ok && other.wal.durable === 10)
    assert.ok(!disconnects.some((entry) => entry.startsWith('r2:')), 'no loss reported while r2 is connected')
    await other.server.close()
    await until('the session noticed', () => !transport.streamWal({ ticket, fromLsnExclusive: Lsn.of(10), toLsnInclusive: Lsn.of(10) }).ok)
    // The runtime's commit input and sender state hear of the loss, named by replica.
    assert.ok(disconnects.some((entry) => entry.startsWith('r2:')), `r2's lost connection reported: ${disconnects.join(', ')}`)
    assert.equal(transport.truncate({ ticket, toLsn: Lsn.of(10) }).ok, false)
  } finally {
    await cleanup.run()
  }
})

test('truncate answers pending while the replica cuts its uncommitted tail, then the LSN it cut to', async () => {
  const cleanup = new Cleanup()
  try {
    const primary = await openWal(cleanup)
    await appendEntries(primary.wal, { epoch: 1, count: 10, origin: 'p1' })
    const replica = await replicaNode(cleanup, 'r1', 1)
    const transport = new PeerTransport({ localId: 'p1', wal: primary.wal, epoch: Epoch.of(1), committedLsn: () => Lsn.of(4), link: { backoffMsMin: 5 } })
    cleanup.add(() => transport.close())
    const endpoint = { dataAddress: replica.dataAddress, controlAddress: replica.dataAddress, version: 1 }
    const request = { replicaId: ReplicaId.of('r1'), sessionId: 'p1/1/e1/1' as Parameters<PeerTransport['connect']>[0]['sessionId'], endpoint, epoch: Epoch.of(1) }
    await until('matched', () => {
      const connected = transport.connect(request)
      return connected.ok && connected.flushedLsn !== undefined
    })
    const ticket = { replicaId: request.replicaId, sessionId: request.sessionId, kind: 'catchup' as const, epoch: Epoch.of(1), endpoint }
    await until('shipped', () => transport.streamWal({ ticket, fromLsnExclusive: Lsn.zero, toLsnInclusive: Lsn.of(10) }).ok && replica.wal.durable === 10)
    assert.deepEqual(transport.truncate({ ticket, toLsn: Lsn.of(6) }), { ok: true, truncatedToLsn: undefined }, 'the first call sends the cut')
    let report = transport.truncate({ ticket, toLsn: Lsn.of(6) })
    await until('the replica answered', () => {
      report = transport.truncate({ ticket, toLsn: Lsn.of(6) })
      return !report.ok || report.truncatedToLsn !== undefined
    })
    assert.deepEqual(report, { ok: true, truncatedToLsn: Lsn.of(6) })
    assert.equal(replica.wal.head, 6, 'the replica dropped entries 7..10')
    assert.deepEqual(transport.truncate({ ticket, toLsn: Lsn.of(6) }), { ok: true, truncatedToLsn: Lsn.of(6) }, 'asking again is idempotent')
  } finally {
    await cleanup.run()
  }
})
