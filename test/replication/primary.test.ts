// The primary side in one object: live shipping goes to in-sync replicas
// only, an epoch change resets acks and barriers and re-handshakes every
// replica, a membership update with a new endpoint becomes a reassign, and
// an ack counts only through an open barrier.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvariantViolation } from '../../src/domain/index.ts'
import { Epoch, Lsn, PrimaryProtocol, RecoveryLog, ReplicaId, Tick, unlimitedBudget } from '../../src/replication/index.ts'
import { FakeStorage, FakeTransport, endpoint, history } from './fakes.ts'

const [p1, r1, r2] = ['p1', 'r1', 'r2'].map((id) => ReplicaId.of(id)) as [ReplicaId, ReplicaId, ReplicaId]

function primary(): PrimaryProtocol {
  const storage = new FakeStorage(history({ headLsn: Lsn.of(10), committedLsn: Lsn.of(10) }))
  const transport = new FakeTransport(Lsn.of(10))
  const protocol = new PrimaryProtocol({
    primaryId: p1,
    incarnation: 1,
    epoch: Epoch.of(1),
    committedLsn: Lsn.of(10),
    durability: 'sync_quorum',
    memberCount: 3,
    barrierTimeoutTicks: 4,
    log: new RecoveryLog(),
    recovery: {
      chunkEntriesMax: 8,
      catchUpBudget: unlimitedBudget,
      catchUpTimeoutTicks: 30,
      reservationTimeoutTicks: 40,
      rebuildStallTicks: 5,
      recoveryRetryTicks: 2,
    },
    adapters: () => ({
      connect: () => ({ ok: true, flushedLsn: transport.durableLsn }),
      retainedHistory: () => storage.retainedHistory(),
      pinWalRetention: (owner, from) => storage.pinWalRetention(owner, from),
      pinSnapshot: (owner, at) => storage.pinSnapshot(owner, at),
      pinFullBase: (owner, at) => storage.pinFullBase(owner, at),
      streamWal: (request) => transport.streamWal(request),
      transferSnapshot: (request) => transport.transferSnapshot(request),
      transferFullBase: (request) => transport.transferFullBase(request),
      truncate: (request) => transport.truncate(request),
    }),
  })
  protocol.registry.reconcile({
    epoch: Epoch.of(1),
    replicas: [
      { replicaId: r1, endpoint: endpoint('a') },
      { replicaId: r2, endpoint: endpoint('b') },
    ],
  })
  return protocol
}

function syncAll(protocol: PrimaryProtocol, from: number): void {
  for (let at = from; at < from + 3; at += 1) protocol.driver.tick(Tick.of(at))
}

test('live shipping goes to in-sync replicas only', () => {
  const protocol = primary()
  assert.deepEqual(protocol.liveShipTargets(), [])
  syncAll(protocol, 1)
  assert.deepEqual(protocol.liveShipTargets().map((sender) => sender.replicaId), ['r1', 'r2'])
})

test('an ack counts through an open barrier only; an epoch change expires barriers, clears acks and re-handshakes replicas', () => {
  const protocol = primary()
  syncAll(protocol, 1)
  protocol.barriers.open({ barrierId: 1, replicaId: r1, lsn: Lsn.of(12), live: true, deliveredAt: Tick.of(5) })
  protocol.barriers.open({ barrierId: 2, replicaId: r2, lsn: Lsn.of(12), live: true, deliveredAt: Tick.of(5) })
  assert.equal(protocol.receiveAck({ barrierId: 1, from: r1, durableLsn: Lsn.of(12) }), 'accepted')
  assert.equal(protocol.commit.ackedLsn(r1), 12)
  assert.equal(protocol.receiveAck({ barrierId: 9, from: r1, durableLsn: Lsn.of(99) }), 'barrier_unknown')
  assert.equal(protocol.commit.ackedLsn(r1), 12, 'an ack without an open barrier does not count')
  protocol.changeEpoch(Epoch.of(2), Tick.of(6), [
    { replicaId: r1, endpoint: endpoint('a') },
    { replicaId: r2, endpoint: endpoint('b') },
  ])
  assert.equal(protocol.epoch, 2)
  assert.equal(protocol.commit.ackedLsn(r1), 0)
  assert.equal(protocol.receiveAck({ barrierId: 2, from: r2, durableLsn: Lsn.of(12) }), 'barrier_expired')
  assert.deepEqual(protocol.liveShipTargets(), [], 'every replica handshakes again at the new epoch')
  assert.throws(() => protocol.changeEpoch(Epoch.of(2), Tick.of(7), []), InvariantViolation)
})

test('an epoch change moves every sender to the new epoch, also one whose assignment names an older endpoint (kept, refused as stale)', () => {
  const protocol = primary()
  protocol.registry.reconcile({ epoch: Epoch.of(1), replicas: [{ replicaId: r1, endpoint: endpoint('a', 3) }, { replicaId: r2, endpoint: endpoint('b') }] })
  assert.equal(protocol.registry.sender(r1)?.endpoint.version, 3)
  protocol.changeEpoch(Epoch.of(2), Tick.of(5), [{ replicaId: r1, endpoint: endpoint('a') }, { replicaId: r2, endpoint: endpoint('b') }])
  assert.equal(protocol.registry.sender(r1)?.epoch, Epoch.of(2))
  assert.equal(protocol.registry.sender(r1)?.endpoint.version, 3, 'the newer address is kept')
  assert.equal(protocol.registry.sender(r2)?.epoch, Epoch.of(2))
})

test('a membership update with a new endpoint makes the next session a reassign', () => {
  const protocol = primary()
  syncAll(protocol, 1)
  assert.equal(
    protocol.applyMembership({
      epoch: Epoch.of(1),
      replicas: [
        { replicaId: r1, endpoint: endpoint('a2', 2) },
        { replicaId: r2, endpoint: endpoint('b') },
      ],
    }),
    'applied',
  )
  const kinds: string[] = []
  for (let at = 10; at < 13; at += 1) kinds.push(...protocol.driver.tick(Tick.of(at)).completed.map((done) => `${done.replicaId}:${done.kind}`))
  assert.deepEqual(kinds, ['r1:reassign'])
})

test('a replica rewound (truncated) drops its ack, and an ack still in flight from before cannot raise it again', () => {
  const protocol = primary()
  syncAll(protocol, 1)
  protocol.barriers.open({ barrierId: 1, replicaId: r1, lsn: Lsn.of(19), live: true, deliveredAt: Tick.of(5) })
  protocol.barriers.open({ barrierId: 2, replicaId: r2, lsn: Lsn.of(19), live: true, deliveredAt: Tick.of(5) })
  protocol.replicaRewound(r1, Lsn.of(10), Tick.of(6))
  assert.equal(protocol.receiveAck({ barrierId: 1, from: r1, durableLsn: Lsn.of(19) }), 'barrier_expired')
  assert.equal(protocol.commit.ackedLsn(r1), 0, 'never above what the primary learned at the rewind')
  assert.equal(protocol.receiveAck({ barrierId: 2, from: r2, durableLsn: Lsn.of(19) }), 'accepted', 'other replicas are untouched')
  protocol.barriers.open({ barrierId: 3, replicaId: r1, lsn: Lsn.of(12), live: true, deliveredAt: Tick.of(7) })
  protocol.replicaInstalled(r1, Lsn.of(12), Tick.of(8))
  assert.equal(protocol.commit.ackedLsn(r1), 12)
  assert.equal(protocol.receiveAck({ barrierId: 3, from: r1, durableLsn: Lsn.of(12) }), 'barrier_expired')
})

test('a membership update of another epoch changes nothing: an older one (delayed past an epoch change) is refused by the registry, a newer one waits for the epoch change', () => {
  const protocol = primary()
  syncAll(protocol, 1)
  protocol.changeEpoch(Epoch.of(2), Tick.of(5), [
    { replicaId: r1, endpoint: endpoint('a') },
    { replicaId: r2, endpoint: endpoint('b') },
  ])
  syncAll(protocol, 6)
  const moved = [
    { replicaId: r1, endpoint: endpoint('a0', 0) },
    { replicaId: r2, endpoint: endpoint('b') },
  ]
  assert.equal(protocol.applyMembership({ epoch: Epoch.of(1), replicas: moved }), 'stale')
  assert.equal(protocol.registry.sender(r1)?.endpoint.dataAddress, endpoint('a').dataAddress, 'the old epoch\'s endpoint is not applied')
  assert.equal(protocol.registry.sender(r1)?.state, 'in_sync')
  assert.equal(protocol.log.has('stale_assignment', 'assignment_epoch_older_than_sender'), true)
  assert.equal(protocol.applyMembership({ epoch: Epoch.of(3), replicas: moved }), 'ahead')
  assert.equal(protocol.registry.sender(r1)?.endpoint.dataAddress, endpoint('a').dataAddress)
  const kinds: string[] = []
  for (let at = 10; at < 13; at += 1) kinds.push(...protocol.driver.tick(Tick.of(at)).completed.map((done) => done.kind))
  assert.deepEqual(kinds, [], 'no reassign was requested')
})
