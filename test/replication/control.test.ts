// The control plane's rules: membership updates on a moved endpoint,
// assignments re-sent to members behind the epoch (rate-limited), the lease
// before a promotion, commits acknowledged only from the current epoch and
// only forward, and lineage resets recorded by desperate promotions.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvariantViolation } from '../../src/domain/index.ts'
import { AssignmentStore, ControlPlane, Epoch, Lsn, RecoveryLog, ReplicaId, Tick } from '../../src/replication/index.ts'
import { endpoint } from './fakes.ts'

const [n1, n2, n3] = ['n1', 'n2', 'n3'].map((id) => ReplicaId.of(id)) as [ReplicaId, ReplicaId, ReplicaId]

function controlPlane(): ControlPlane {
  const plane = new ControlPlane({
    members: [n1, n2, n3].map((replicaId) => ({ replicaId, endpoint: endpoint(replicaId) })),
    log: new RecoveryLog(),
    leaseTicks: 3,
    reportFreshTicks: 2,
    assignmentResendTicks: 2,
  })
  plane.assignInitialPrimary(n1)
  return plane
}

const beat = (replicaId: ReplicaId, values: { epoch?: number; version?: number; durable?: number } = {}) => ({
  replicaId,
  epoch: Epoch.of(values.epoch ?? 1),
  endpoint: endpoint(replicaId, values.version ?? 1),
  durableLsn: Lsn.of(values.durable ?? 0),
  safeLsn: Lsn.of(values.durable ?? 0),
})

test('a moved endpoint is a membership change; a member behind the epoch is re-sent its assignment, at most every 2 ticks', () => {
  const plane = controlPlane()
  assert.deepEqual(plane.receiveHeartbeat(beat(n2), Tick.of(1)), { endpointChanged: false, sendAssignment: false })
  assert.deepEqual(plane.receiveHeartbeat(beat(n2, { version: 2 }), Tick.of(2)), { endpointChanged: true, sendAssignment: false })
  assert.equal(plane.bumpEpoch(), 2)
  assert.equal(plane.receiveHeartbeat(beat(n3), Tick.of(3)).sendAssignment, true)
  assert.equal(plane.receiveHeartbeat(beat(n3), Tick.of(5)).sendAssignment, false)
  assert.equal(plane.receiveHeartbeat(beat(n3), Tick.of(6)).sendAssignment, true)
  assert.equal(plane.receiveHeartbeat(beat(n1), Tick.of(6)).sendAssignment, false, 'the primary is re-assigned by its own path')
})

test('a promotion is due only after the primary has been gone for the whole lease', () => {
  const plane = controlPlane()
  assert.equal(plane.promotionDue(true, Tick.of(1)), false)
  assert.equal(plane.promotionDue(false, Tick.of(2)), false)
  assert.equal(plane.promotionDue(false, Tick.of(4)), false)
  assert.equal(plane.promotionDue(false, Tick.of(5)), true)
  assert.equal(plane.promotionDue(true, Tick.of(6)), false, 'a serving primary resets the lease')
  assert.equal(plane.promotionDue(false, Tick.of(7)), false)
})

test('promotion decisions use the reports: the lapsed primary is not re-picked, an eligible member is', () => {
  const plane = controlPlane()
  plane.acknowledgeCommit(Epoch.of(1), Lsn.of(4))
  for (const replicaId of [n1, n2, n3]) plane.receiveHeartbeat(beat(replicaId, { durable: replicaId === n3 ? 3 : 4 }), Tick.of(10))
  plane.promotionDue(false, Tick.of(10))
  const decision = plane.decidePromotion(Tick.of(11))
  assert.equal(decision.kind === 'promote' && decision.replicaId, 'n2')
  assert.equal(plane.ineligibility(n3, Tick.of(11), false), 'missing_committed_prefix')
  plane.promoted(n2, Epoch.of(2))
  assert.equal(plane.primaryId, 'n2')
  assert.throws(() => plane.promoted(n3, Epoch.of(2)), InvariantViolation)
})

test('commits are acknowledged only from the current epoch and only forward; a desperate promotion records its reset', () => {
  const plane = controlPlane()
  assert.equal(plane.acknowledgeCommit(Epoch.of(1), Lsn.of(5)), true)
  plane.bumpEpoch()
  assert.equal(plane.acknowledgeCommit(Epoch.of(1), Lsn.of(9)), false, 'an old-epoch primary lost its lease')
  assert.equal(plane.committedLsn, 5)
  assert.throws(() => plane.acknowledgeCommit(Epoch.of(2), Lsn.of(4)), InvariantViolation)
  plane.promoted(n2, Epoch.of(3))
  plane.declareLoss(Epoch.of(3), Lsn.of(2))
  assert.equal(plane.committedLsn, 2)
  assert.deepEqual(plane.lineageResets, [{ epoch: 3, keptLsn: 2 }])
})

test('a membership update the primary missed is sent again while its published endpoints lag, rate-limited', () => {
  const plane = controlPlane()
  plane.receiveHeartbeat(beat(n2, { version: 2 }), Tick.of(1))
  plane.recordMembershipSent(Tick.of(1))
  const lagging = [{ replicaId: n2, state: 'disconnected' as const, endpointVersion: 1 }]
  assert.equal(plane.publishStates(lagging, Tick.of(2)), false, 'the first update may still be in flight')
  assert.equal(plane.publishStates(lagging, Tick.of(4)), true)
  assert.equal(plane.publishStates(lagging, Tick.of(5)), false)
  assert.equal(plane.replicaStates.get(n2), 'disconnected')
  assert.equal(plane.publishStates([{ replicaId: n2, state: 'in_sync', endpointVersion: 2 }], Tick.of(9)), false)
})

test('a heartbeat carrying an older endpoint version than the control plane knows (reordered) does not move the member back', () => {
  const plane = controlPlane()
  assert.equal(plane.receiveHeartbeat(beat(n2, { version: 3 }), Tick.of(1)).endpointChanged, true)
  assert.equal(plane.receiveHeartbeat(beat(n2, { version: 2 }), Tick.of(2)).endpointChanged, false)
  assert.equal(plane.knownEndpoints.get(n2)?.version, 3)
})

test('a restarted coordinator re-reads the versioned assignment and waits a whole lease before promoting', () => {
  const store = new AssignmentStore({ epoch: Epoch.of(4), primaryId: n2, committedLsn: Lsn.of(9), lineageResets: [{ epoch: Epoch.of(3), keptLsn: Lsn.of(6) }] })
  const plane = ControlPlane.restore(
    { members: [n1, n2, n3].map((replicaId) => ({ replicaId, endpoint: endpoint(replicaId) })), log: new RecoveryLog(), leaseTicks: 3, reportFreshTicks: 2, assignmentResendTicks: 2 },
    store.read(),
  )
  assert.equal(plane.epoch, Epoch.of(4))
  assert.equal(plane.primaryId, n2)
  assert.equal(plane.committedLsn, Lsn.of(9))
  assert.deepEqual(plane.lineageResets, [{ epoch: Epoch.of(3), keptLsn: Lsn.of(6) }])
  // Not heard from the primary since the restart: no promotion before a whole lease has passed.
  assert.equal(plane.promotionDue(false, Tick.of(50)), false)
  assert.equal(plane.promotionDue(false, Tick.of(52)), false)
  assert.equal(plane.promotionDue(false, Tick.of(53)), true)
  assert.equal(plane.acknowledgeCommit(Epoch.of(3), Lsn.of(10)), false, 'a commit from the deposed epoch is refused after the restart too')
  assert.throws(() => ControlPlane.restore({ members: [n1].map((replicaId) => ({ replicaId, endpoint: endpoint(replicaId) })), log: new RecoveryLog(), leaseTicks: 3, reportFreshTicks: 2, assignmentResendTicks: 2 }, store.read()), InvariantViolation)
})

test('a suspected primary is replaced only when a quorum of the other members suspects it at the current epoch, and is never re-picked', () => {
  const plane = controlPlane()
  plane.acknowledgeCommit(Epoch.of(1), Lsn.of(4))
  const at = (tick: number): void => {
    for (const replicaId of [n1, n2, n3]) plane.receiveHeartbeat(beat(replicaId, { epoch: 2, durable: replicaId === n3 ? 4 : 6 }), Tick.of(tick))
  }
  // One replica cut off from the primary (a one-sided partition): the primary still commits with the other.
  assert.equal(plane.primarySuspected(new Map([[n2, Epoch.of(1)]])), false)
  // Suspicions of an older epoch speak of a primary already replaced; the primary's own "suspicion" is no vote.
  plane.bumpEpoch()
  assert.equal(plane.primarySuspected(new Map([[n2, Epoch.of(1)], [n3, Epoch.of(2)]])), false)
  assert.equal(plane.primarySuspected(new Map([[n1, Epoch.of(2)], [n3, Epoch.of(2)]])), false)
  const both = new Map([[n2, Epoch.of(2)], [n3, Epoch.of(2)]])
  assert.equal(plane.primarySuspected(both), true)
  at(10)
  assert.equal(plane.promotionDue(true, Tick.of(10), false), false, 'no suspicion, a serving primary')
  at(15)
  // The suspecting members waited their own grace before they said so: due at once.
  assert.equal(plane.promotionDue(true, Tick.of(15), true), true)
  // n1 still reports (it runs, with the longest log): it is the one suspected, so it is not a candidate.
  const decision = plane.decidePromotion(Tick.of(15))
  assert.equal(decision.kind === 'promote' && decision.replicaId, 'n2')
  assert.equal(decision.kind === 'promote' && decision.verdicts.find((verdict) => verdict.replicaId === n1)?.ineligibility, 'lease_lapsed')
})
