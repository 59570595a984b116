// A coordinator process acts only through compare-and-swap on the versioned
// assignment: two processes at once (a restart the old one has not noticed)
// never both win, the loser is refused, logs it and resumes from a fresh
// read; a process whose view is outdated grants no lease.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AssignmentStore, Coordinator, Epoch, Lsn, RecoveryLog, ReplicaId, Tick } from '../../src/replication/index.ts'
import type { CoordinatorOptions } from '../../src/replication/index.ts'

const [n1, n2, n3] = ['n1', 'n2', 'n3'].map((id) => ReplicaId.of(id)) as [ReplicaId, ReplicaId, ReplicaId]

function setup(): { store: AssignmentStore; options: CoordinatorOptions; log: RecoveryLog } {
  const store = new AssignmentStore({ epoch: Epoch.first, primaryId: n1, committedLsn: Lsn.zero, lineageResets: [] })
  const log = new RecoveryLog()
  const plane = {
    members: [n1, n2, n3].map((replicaId) => ({ replicaId, endpoint: { dataAddress: `${replicaId}:d`, controlAddress: `${replicaId}:c`, version: 1 } })),
    log,
    leaseTicks: 8,
    reportFreshTicks: 2,
    assignmentResendTicks: 2,
  }
  return { store, options: { plane, store, lease: { leaseTicks: 8, safetyMarginTicks: 2 } }, log }
}

test('two processes acting at once: the first write wins, the outdated one is refused, logged, and resumes from the store', () => {
  const { store, options, log } = setup()
  const old = new Coordinator(options, Tick.zero)
  const restarted = new Coordinator(options, Tick.of(5))
  assert.equal(restarted.acknowledgeCommit(Epoch.first, Lsn.of(3), Tick.of(5)), 'acknowledged')
  assert.equal(store.read().record.committedLsn, Lsn.of(3))
  // The old process still believes revision 1: its promotion is refused, not written over the commit.
  assert.equal(old.promote(n2, Epoch.of(2), Tick.of(6)), false)
  assert.equal(old.writesRefused, 1)
  assert.equal(store.read().record.primaryId, n1)
  assert.ok(log.events().some((event) => event.kind === 'assignment_write_refused' && event.reason === 'revision_mismatch'))
  // It re-read: its view is the store's now, and it acts from it.
  assert.equal(old.revision, store.read().revision)
  assert.equal(old.plane.committedLsn, Lsn.of(3))
  assert.equal(old.promote(n2, Epoch.of(2), Tick.of(7)), true)
  // Now the restarted one is outdated: its commit of the old epoch is refused by the epoch check once it re-read.
  assert.equal(restarted.acknowledgeCommit(Epoch.first, Lsn.of(4), Tick.of(8)), 'write_refused')
  assert.equal(restarted.acknowledgeCommit(Epoch.first, Lsn.of(4), Tick.of(8)), 'epoch_mismatch')
  assert.deepEqual(store.read().record, { epoch: Epoch.of(2), primaryId: n2, committedLsn: Lsn.of(3), lineageResets: [] })
})

test('a process whose view is outdated is not current (grants no lease), re-reads, and restarts its lease count', () => {
  const { options } = setup()
  const a = new Coordinator(options, Tick.zero)
  const b = new Coordinator(options, Tick.zero)
  assert.equal(a.viewCurrent(Tick.of(1)), true)
  assert.equal(b.bumpEpoch(Tick.of(2)), Epoch.of(2))
  assert.equal(a.viewCurrent(Tick.of(3)), false, 'someone else wrote since a read')
  assert.equal(a.plane.epoch, Epoch.of(2))
  assert.equal(a.lease?.lastHeardAt(), Tick.of(3), 'a whole lease from the re-read before a promotion')
  assert.equal(a.viewCurrent(Tick.of(4)), true)
})

test('a desperate promotion writes the new primary and the declared loss in one swap', () => {
  const { store, options } = setup()
  const coordinator = new Coordinator(options, Tick.zero)
  assert.equal(coordinator.acknowledgeCommit(Epoch.first, Lsn.of(9), Tick.of(1)), 'acknowledged')
  assert.equal(coordinator.promoteDesperately(n3, Epoch.of(2), Lsn.of(6), Tick.of(2)), true)
  assert.deepEqual(store.read().record, { epoch: Epoch.of(2), primaryId: n3, committedLsn: Lsn.of(6), lineageResets: [{ epoch: Epoch.of(2), keptLsn: Lsn.of(6) }] })
  assert.equal(coordinator.plane.committedLsn, Lsn.of(6))
  // A restarted process reads the loss back.
  assert.deepEqual(new Coordinator(options, Tick.of(3)).plane.lineageResets, [{ epoch: Epoch.of(2), keptLsn: Lsn.of(6) }])
})

test('a heartbeat of a newer epoch than the view makes the process re-read (found by seed 878: it waited forever for reports of a gone epoch)', () => {
  const { options } = setup()
  const acting = new Coordinator(options, Tick.zero)
  const other = new Coordinator(options, Tick.zero)
  assert.equal(other.promote(n3, Epoch.of(2), Tick.of(1)), true)
  const endpoint = { dataAddress: 'n2:d', controlAddress: 'n2:c', version: 1 }
  acting.receiveHeartbeat({ replicaId: n2, epoch: Epoch.of(2), endpoint, durableLsn: Lsn.zero, safeLsn: Lsn.zero }, Tick.of(2))
  assert.equal(acting.plane.epoch, Epoch.of(2))
  assert.equal(acting.plane.primaryId, n3)
  assert.equal(acting.writesRefused, 0, 'learned without losing a write')
})

test('a membership change is a compare-and-swap at the next epoch; an outdated process loses it and re-reads the membership', () => {
  const store = new AssignmentStore({ epoch: Epoch.first, primaryId: n1, committedLsn: Lsn.of(4), lineageResets: [], membership: { primaryId: n1, replicaIds: [n2], learnerIds: [] } })
  const { options } = setup()
  const withMembership = { ...options, store }
  const acting = new Coordinator(withMembership, Tick.zero)
  const outdated = new Coordinator(withMembership, Tick.zero)
  const joined = { primaryId: n1, replicaIds: [n2], learnerIds: [n3] }
  assert.equal(acting.changeMembership(joined, Tick.of(1)), Epoch.of(2))
  assert.deepEqual(store.read().record, { epoch: Epoch.of(2), primaryId: n1, committedLsn: Lsn.of(4), lineageResets: [], membership: joined })
  assert.deepEqual(acting.membership, joined)
  assert.equal(outdated.changeMembership({ primaryId: n1, replicaIds: [n2, n3], learnerIds: [] }, Tick.of(1)), undefined, 'refused: another write came first')
  assert.deepEqual(outdated.membership, joined, 'and it resumed from the store')
  // A later commit keeps the membership the view holds.
  assert.equal(acting.acknowledgeCommit(Epoch.of(2), Lsn.of(6), Tick.of(2)), 'acknowledged')
  assert.deepEqual(store.read().record.membership, joined)
})
