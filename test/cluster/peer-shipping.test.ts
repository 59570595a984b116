// WAL shipping between real WALs over loopback TCP: the replica's segment
// files end byte-identical to the primary's, a divergent tail of an older
// epoch is cut at the match point, an uncommitted tail is never revived,
// stale-epoch primaries are refused, newer epochs adopted, acks never run
// ahead of the replica's fsync, and bounds hold.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Epoch, Lsn } from '../../src/replication/index.ts'
import { PrimaryLink, ReplicaServer, type PrimaryLinkOptions } from '../../src/cluster/peer/index.ts'
import type { Wal, WalIo } from '../../src/wal/index.ts'
import { Cleanup, MemoryReplicaState, appendEntries, openWal, records, segmentImages, until } from './peer-harness.ts'

async function replicaNode(
  cleanup: Cleanup,
  options: { id: string; epoch: number; knownCommittedLsn?: number; io?: Partial<WalIo>; onAck?: (durableLsn: number) => void; frameBytesMax?: number },
) {
  const { wal, directory } = await openWal(cleanup, options.io === undefined ? {} : { io: options.io })
  const state = new MemoryReplicaState({ epoch: options.epoch, ...(options.knownCommittedLsn === undefined ? {} : { knownCommittedLsn: options.knownCommittedLsn }) })
  const violations: Error[] = []
  const acks: number[] = []
  const server = await ReplicaServer.listen({
    replicaId: options.id,
    wal,
    state,
    idleTimeoutMs: 5_000,
    ...(options.frameBytesMax === undefined ? {} : { frameBytesMax: options.frameBytesMax }),
    onInvariantViolation: (error) => violations.push(error),
    onAck: (lsn) => {
      acks.push(lsn)
      options.onAck?.(lsn)
    },
  })
  cleanup.add(() => server.close())
  return { wal, directory, state, server, violations, acks }
}

function link(cleanup: Cleanup, options: Omit<PrimaryLinkOptions, 'localId' | 'committedLsn'> & { committedLsn?: () => Lsn }): PrimaryLink {
  const created = new PrimaryLink({
    localId: 'p1',
    committedLsn: () => Lsn.of(options.wal.durable),
    backoffMsMin: 5,
    backoffMsMax: 50,
    ...options,
  })
  cleanup.add(() => created.stop())
  return created
}

async function assertSameLog(primary: { wal: Wal; directory: string }, replica: { wal: Wal; directory: string }): Promise<void> {
  assert.equal(replica.wal.durable, primary.wal.durable)
  assert.deepEqual(await records(replica.wal), await records(primary.wal))
  assert.deepEqual(await segmentImages(replica.directory), await segmentImages(primary.directory), 'segment files byte-identical')
}

test('live shipping keeps a replica byte-identical, within the in-flight bound, and teaches it the committed LSN', async () => {
  const cleanup = new Cleanup()
  try {
    const primary = await openWal(cleanup)
    await appendEntries(primary.wal, { epoch: 1, count: 300, origin: 'p1' })
    const replica = await replicaNode(cleanup, { id: 'r1', epoch: 2 })
    const inFlightBytesMax = 2_000
    const batchBytesMax = 600
    let inFlightPeak = 0
    const primaryLink = link(cleanup, {
      replicaId: 'r1',
      address: replica.server.address,
      wal: primary.wal,
      epoch: Epoch.of(2),
      inFlightBytesMax,
      batchBytesMax,
      batchEntriesMax: 16,
      committedLsn: () => Lsn.of(Math.max(0, primary.wal.durable - 10)),
      onAck: () => (inFlightPeak = Math.max(inFlightPeak, primaryLink.inFlightBytes)),
    })
    primaryLink.start()
    primaryLink.setFollow(true)
    await until('the first 300 entries acknowledged', () => primaryLink.ackedLsn === 300)
    // Entries appended while the link follows are shipped as they become durable, each with its own epoch.
    await appendEntries(primary.wal, { epoch: 2, count: 250, origin: 'p1' })
    await until('everything acknowledged', () => primaryLink.ackedLsn === 550)
    await assertSameLog(primary, replica)
    assert.ok(inFlightPeak <= inFlightBytesMax + batchBytesMax, `in flight peaked at ${inFlightPeak}`)
    assert.ok(primaryLink.counters.batches > 550 / 16, 'shipped in bounded batches')
    assert.equal(replica.server.counters.appended, 550, 'every entry appended once')
    assert.ok(replica.state.committed >= 530, `replica learned committed ${replica.state.committed}`)
    assert.ok(replica.state.committed <= replica.wal.durable)
    assert.deepEqual(replica.violations, [])
  } finally {
    await cleanup.run()
  }
})

test('three WALs: one primary ships to two replicas, both end byte-identical', async () => {
  const cleanup = new Cleanup()
  try {
    const primary = await openWal(cleanup)
    await appendEntries(primary.wal, { epoch: 3, count: 120, origin: 'p1' })
    const replicas = [await replicaNode(cleanup, { id: 'r1', epoch: 3 }), await replicaNode(cleanup, { id: 'r2', epoch: 3 })]
    const links = replicas.map((replica, i) => link(cleanup, { replicaId: `r${i + 1}`, address: replica.server.address, wal: primary.wal, epoch: Epoch.of(3) }))
    for (const each of links) {
      each.start()
      each.setFollow(true)
    }
    await appendEntries(primary.wal, { epoch: 3, count: 80, origin: 'p1' })
    await until('both replicas acknowledged 200', () => links.every((each) => each.ackedLsn === 200))
    for (const replica of replicas) await assertSameLog(primary, replica)
  } finally {
    await cleanup.run()
  }
})

test('a divergent tail of an older epoch is cut at the match point and replaced by the primary’s entries', async () => {
  const cleanup = new Cleanup()
  try {
    // Shared history 1..20 at epoch 1; the old primary (epoch 1) wrote 21..30 that only this replica got;
    // the new primary (epoch 2) wrote its own 21..35.
    const primary = await openWal(cleanup)
    await appendEntries(primary.wal, { epoch: 1, count: 20, origin: 'shared' })
    await appendEntries(primary.wal, { epoch: 2, count: 15, origin: 'p-new' })
    const replica = await replicaNode(cleanup, { id: 'r1', epoch: 2, knownCommittedLsn: 18 })
    await appendEntries(replica.wal, { epoch: 1, count: 20, origin: 'shared' })
    await appendEntries(replica.wal, { epoch: 1, count: 10, origin: 'p-old' })
    const primaryLink = link(cleanup, { replicaId: 'r1', address: replica.server.address, wal: primary.wal, epoch: Epoch.of(2) })
    primaryLink.start()
    await until('the handshake', () => primaryLink.lastMatch !== undefined)
    assert.equal(primaryLink.lastMatch?.flushedLsn, 20, 'the last entry both logs hold at the same epoch')
    assert.equal(replica.wal.head, 20, 'the old epoch’s tail is gone')
    assert.equal(replica.server.counters.truncations, 1)
    primaryLink.setFollow(true)
    await until('caught up', () => primaryLink.ackedLsn === 35)
    await assertSameLog(primary, replica)
  } finally {
    await cleanup.run()
  }
})

test('a replica ahead of the committed LSN drops its uncommitted tail even where it matches (never revived), then receives it again', async () => {
  const cleanup = new Cleanup()
  try {
    const primary = await openWal(cleanup)
    await appendEntries(primary.wal, { epoch: 1, count: 40, origin: 'p1' })
    const replica = await replicaNode(cleanup, { id: 'r1', epoch: 1 })
    await appendEntries(replica.wal, { epoch: 1, count: 40, origin: 'p1' })
    const primaryLink = link(cleanup, {
      replicaId: 'r1',
      address: replica.server.address,
      wal: primary.wal,
      epoch: Epoch.of(1),
      committedLsn: () => Lsn.of(25),
    })
    primaryLink.start()
    await until('the handshake', () => primaryLink.lastMatch !== undefined)
    assert.equal(primaryLink.lastMatch?.flushedLsn, 25)
    assert.equal(replica.wal.head, 25)
    primaryLink.setFollow(true)
    await until('caught up', () => primaryLink.ackedLsn === 40)
    await assertSameLog(primary, replica)
  } finally {
    await cleanup.run()
  }
})

test('a stale-epoch primary is refused with a typed error, ships nothing and stops for good', async () => {
  const cleanup = new Cleanup()
  try {
    const primary = await openWal(cleanup)
    await appendEntries(primary.wal, { epoch: 2, count: 10, origin: 'p-old' })
    const replica = await replicaNode(cleanup, { id: 'r1', epoch: 3 })
    const deposed: number[] = []
    const primaryLink = link(cleanup, {
      replicaId: 'r1',
      address: replica.server.address,
      wal: primary.wal,
      epoch: Epoch.of(2),
      onDeposed: (epoch) => deposed.push(epoch),
    })
    primaryLink.start()
    primaryLink.setFollow(true)
    await until('the link is deposed', () => primaryLink.stopped)
    assert.deepEqual(deposed, [3])
    assert.equal(primaryLink.lastError?.reason, 'STALE_EPOCH')
    assert.equal(replica.server.counters.refusedStale, 1)
    assert.equal(replica.wal.head, 0, 'nothing appended')
    assert.equal(primaryLink.counters.connections, 1, 'no redial after being deposed')
  } finally {
    await cleanup.run()
  }
})

test('a primary of a newer epoch is adopted through decideEpochAdoption; the old primary’s later frames are then refused', async () => {
  const cleanup = new Cleanup()
  try {
    const old = await openWal(cleanup)
    await appendEntries(old.wal, { epoch: 1, count: 10, origin: 'shared' })
    const replica = await replicaNode(cleanup, { id: 'r1', epoch: 1 })
    const oldLink = link(cleanup, { replicaId: 'r1', address: replica.server.address, wal: old.wal, epoch: Epoch.of(1), committedLsn: () => Lsn.of(8) })
    oldLink.start()
    oldLink.setFollow(true)
    await until('old primary shipped 10', () => oldLink.ackedLsn === 10)
    assert.equal(replica.state.committed, 8)

    // A new primary at epoch 2 with the shared prefix up to 9 and its own entries after.
    const next = await openWal(cleanup)
    await appendEntries(next.wal, { epoch: 1, count: 9, origin: 'shared' })
    await appendEntries(next.wal, { epoch: 2, count: 6, origin: 'p-new' })
    const newLink = link(cleanup, { replicaId: 'r1', address: replica.server.address, wal: next.wal, epoch: Epoch.of(2), committedLsn: () => Lsn.of(15) })
    newLink.start()
    await until('the new primary matched', () => newLink.lastMatch !== undefined)
    assert.equal(replica.state.adoptions.length, 1)
    assert.deepEqual(replica.state.adoptions[0], { kind: 'adopt', persistEpoch: 2, truncateToLsn: 8, knownCommittedLsn: 8, wipeStore: false })
    assert.equal(newLink.lastMatch?.flushedLsn, 8, 'adoption cut back to the known committed LSN')
    newLink.setFollow(true)
    await until('caught up with the new primary', () => newLink.ackedLsn === 15)
    await assertSameLog(next, replica)

    // The old primary keeps writing: its next frame carries epoch 1 and is fenced.
    await appendEntries(old.wal, { epoch: 1, count: 1, origin: 'p-old' })
    await until('the old link is deposed', () => oldLink.stopped)
    assert.equal(oldLink.deposedBy, 2)
    assert.equal(replica.wal.head, 15)
  } finally {
    await cleanup.run()
  }
})

test('an ack never runs ahead of the replica’s fsync (observed through the WAL’s io)', async () => {
  const cleanup = new Cleanup()
  try {
    const primary = await openWal(cleanup)
    await appendEntries(primary.wal, { epoch: 1, count: 30, origin: 'p1' })
    let release: (() => void) | undefined
    let gated = true
    let syncedUpTo = 0
    let replicaWal: Wal | undefined
    const io: Partial<WalIo> = {
      async sync(handle) {
        const headAtStart = replicaWal?.head ?? 0
        if (gated) await new Promise<void>((resolve) => (release = resolve))
        await handle.datasync()
        syncedUpTo = Math.max(syncedUpTo, headAtStart)
      },
    }
    const early: string[] = []
    // Checked where each ack is sent, synchronously, against what the WAL's io has fsynced.
    const replica = await replicaNode(cleanup, {
      id: 'r1',
      epoch: 1,
      io,
      onAck: (lsn) => {
        if (lsn > syncedUpTo) early.push(`ack ${lsn} with only ${syncedUpTo} fsynced`)
      },
    })
    replicaWal = replica.wal
    const primaryLink = link(cleanup, { replicaId: 'r1', address: replica.server.address, wal: primary.wal, epoch: Epoch.of(1), batchEntriesMax: 30 })
    primaryLink.start()
    primaryLink.setFollow(true)
    await until('the replica appended the batch', () => replica.wal.head === 30)
    await until('its group is at the gate', () => release !== undefined)
    gated = false
    release?.()
    await until('acknowledged after the fsync', () => primaryLink.ackedLsn === 30)
    assert.ok(replica.acks.includes(30))
    assert.deepEqual(early, [])
  } finally {
    await cleanup.run()
  }
})

test('batches fit the replica’s frame bound, learned at the handshake', async () => {
  const cleanup = new Cleanup()
  try {
    const primary = await openWal(cleanup)
    await appendEntries(primary.wal, { epoch: 1, count: 40, origin: 'p1', bytes: 10_000 })
    const replica = await replicaNode(cleanup, { id: 'r1', epoch: 1, frameBytesMax: 32 * 1024 })
    const disconnects: string[] = []
    const primaryLink = link(cleanup, { replicaId: 'r1', address: replica.server.address, wal: primary.wal, epoch: Epoch.of(1), onDisconnect: (error) => disconnects.push(error.reason) })
    primaryLink.start()
    primaryLink.setFollow(true)
    await until('everything acknowledged', () => primaryLink.ackedLsn === 40)
    await assertSameLog(primary, replica)
    assert.deepEqual(disconnects, [], 'no frame was refused')
    assert.ok(primaryLink.counters.batches >= 40 / 3, `${primaryLink.counters.batches} batches of at most 3 entries`)
  } finally {
    await cleanup.run()
  }
})
