// Barriers: an ack counts only while its barrier is open; a timeout expires
// it (late acks are refused as expired), degrades the replica only for live
// shipping, and an epoch change expires them all.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvariantViolation } from '../../src/domain/index.ts'
import { BarrierTracker, Lsn, ReplicaId, Tick, expiredBarrierTicksKept } from '../../src/replication/index.ts'

const r1 = ReplicaId.of('r1')
const r2 = ReplicaId.of('r2')

test('an ack closes its open barrier once; a second is unknown', () => {
  const barriers = new BarrierTracker({ timeoutTicks: 4 })
  assert.deepEqual(barriers.open({ barrierId: 1, replicaId: r1, lsn: Lsn.of(5), live: true, deliveredAt: Tick.of(10) }), { timeoutAt: 14 })
  assert.equal(barriers.ack(1, r1), 'accepted')
  assert.equal(barriers.ack(1, r1), 'barrier_unknown')
  assert.deepEqual(barriers.timedOut(1, Tick.of(14)), { kind: 'ignored', reason: 'acked_or_expired' })
})

test('a timed-out barrier refuses its late ack; only live shipping degrades the replica', () => {
  const barriers = new BarrierTracker({ timeoutTicks: 4 })
  barriers.open({ barrierId: 1, replicaId: r1, lsn: Lsn.of(5), live: true, deliveredAt: Tick.of(1) })
  barriers.open({ barrierId: 2, replicaId: r2, lsn: Lsn.of(5), live: false, deliveredAt: Tick.of(1) })
  assert.deepEqual(barriers.timedOut(1, Tick.of(5)), { kind: 'expired', replicaId: r1, lsn: 5, degradeReplica: true })
  assert.deepEqual(barriers.timedOut(2, Tick.of(5)), { kind: 'expired', replicaId: r2, lsn: 5, degradeReplica: false })
  assert.equal(barriers.ack(1, r1), 'barrier_expired')
  barriers.sweep(Tick.of(5 + expiredBarrierTicksKept))
  assert.equal(barriers.ack(1, r1), 'barrier_expired', 'kept for a while, so a late ack is named as late')
  barriers.sweep(Tick.of(6 + expiredBarrierTicksKept))
  assert.equal(barriers.openCount, 0)
})

test('an epoch change expires every barrier', () => {
  const barriers = new BarrierTracker({ timeoutTicks: 4 })
  barriers.open({ barrierId: 7, replicaId: r1, lsn: Lsn.of(2), live: true, deliveredAt: Tick.of(1) })
  barriers.expireAll(Tick.of(2))
  assert.equal(barriers.ack(7, r1), 'barrier_expired')
})

test('an ack from another replica than the barrier was sent to is an invariant violation', () => {
  const barriers = new BarrierTracker({ timeoutTicks: 4 })
  barriers.open({ barrierId: 3, replicaId: r1, lsn: Lsn.of(2), live: true, deliveredAt: Tick.of(1) })
  assert.throws(() => barriers.ack(3, r2), InvariantViolation)
  assert.throws(() => barriers.open({ barrierId: 3, replicaId: r1, lsn: Lsn.of(2), live: true, deliveredAt: Tick.of(1) }), InvariantViolation)
})
