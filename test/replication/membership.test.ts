// Membership changes: joins as learner, refusals, learners made voters only
// once caught up, and the commit quorum counted on voters only (a learner's
// copy never lets an entry commit), checked against a brute-force reading.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { InvariantViolation } from '../../src/domain/index.ts'
import {
  carriedCommit,
  CommitTracker,
  decideAddMember,
  decideRemoveMember,
  durableCopiesNeeded,
  Epoch,
  learnersCaughtUp,
  Lsn,
  promoteLearners,
  ReplicaId,
  votersOf,
} from '../../src/replication/index.ts'
import type { DurabilityMode, LearnerReport, Membership, ProtocolFaults } from '../../src/replication/index.ts'

const r = (id: string): ReplicaId => ReplicaId.of(id)
const three: Membership = { primaryId: r('n1'), replicaIds: [r('n2'), r('n3')], learnerIds: [] }

test('a node joins as a learner; a member cannot join twice', () => {
  const added = decideAddMember(three, r('n4'))
  assert.ok(added.ok)
  assert.deepEqual(added.membership, { ...three, learnerIds: [r('n4')] })
  assert.deepEqual(votersOf(added.membership), [r('n1'), r('n2'), r('n3')], 'a learner is not a voter')
  for (const id of ['n1', 'n2']) {
    const again = decideAddMember(three, r(id))
    assert.equal(again.ok, false)
    assert.equal(!again.ok && again.reason, 'already_member')
  }
  const twice = decideAddMember(added.membership, r('n4'))
  assert.equal(!twice.ok && twice.reason, 'already_member')
})

test('removal refusals: the primary, an unknown node, below what the durability mode needs', () => {
  const primary = decideRemoveMember(three, r('n1'), 'sync_quorum')
  assert.equal(!primary.ok && primary.reason, 'is_primary')
  const unknown = decideRemoveMember(three, r('n9'), 'sync_quorum')
  assert.equal(!unknown.ok && unknown.reason, 'not_a_member')
  const quorum = decideRemoveMember(three, r('n2'), 'sync_quorum')
  assert.equal(!quorum.ok && quorum.reason, 'below_durability', 'sync_quorum keeps at least 3 voters')
  assert.match(!quorum.ok ? quorum.message : '', /3 members/)
  // sync_all and best_effort may shrink down to the primary alone.
  for (const mode of ['sync_all', 'best_effort'] as const) {
    const removed = decideRemoveMember(three, r('n2'), mode)
    assert.ok(removed.ok)
    assert.deepEqual(removed.membership.replicaIds, [r('n3')])
  }
  // A learner always may leave, whatever the mode.
  const withLearner: Membership = { ...three, learnerIds: [r('n4')] }
  const learner = decideRemoveMember(withLearner, r('n4'), 'sync_quorum')
  assert.ok(learner.ok)
  assert.deepEqual(learner.membership, three)
  // Four voters under sync_quorum: one may leave.
  const four: Membership = { ...three, replicaIds: [r('n2'), r('n3'), r('n4')] }
  const shrink = decideRemoveMember(four, r('n3'), 'sync_quorum')
  assert.ok(shrink.ok)
  assert.deepEqual(shrink.membership.replicaIds, [r('n2'), r('n4')])
})

test('a learner becomes a voter only at the current epoch and holding the acknowledged commit', () => {
  const membership: Membership = { ...three, learnerIds: [r('n4'), r('n5'), r('n6')] }
  const reports = new Map<ReplicaId, LearnerReport>([
    [r('n4'), { replicaId: r('n4'), epoch: Epoch.of(7), durableLsn: Lsn.of(100) }],
    [r('n5'), { replicaId: r('n5'), epoch: Epoch.of(7), durableLsn: Lsn.of(99) }],
    [r('n6'), { replicaId: r('n6'), epoch: Epoch.of(6), durableLsn: Lsn.of(500) }],
  ])
  const caughtUp = learnersCaughtUp(membership, { epoch: Epoch.of(7), committedLsn: Lsn.of(100), reports })
  assert.deepEqual(caughtUp, [r('n4')], 'n5 lacks entry 100, n6 has not met this epoch\'s primary')
  const next = promoteLearners(membership, caughtUp)
  assert.deepEqual(next, { primaryId: r('n1'), replicaIds: [r('n2'), r('n3'), r('n4')], learnerIds: [r('n5'), r('n6')] })
  assert.throws(() => promoteLearners(three, [r('n4')]), InvariantViolation)
})

test('a new assignment never carries a lower commit than the one it replaces', () => {
  fc.assert(
    fc.property(fc.nat(1000), fc.option(fc.nat(1000), { nil: undefined }), (assigned, mark) => {
      const carried = carriedCommit(Lsn.of(assigned), mark === undefined ? undefined : Lsn.of(mark))
      assert.ok(carried >= assigned)
      if (mark !== undefined) assert.ok(carried >= mark)
    }),
  )
})

test('the commit tracker refuses an ack from a replica that is not a voter', () => {
  const tracker = new CommitTracker({ mode: 'sync_quorum', memberCount: 3, committedLsn: Lsn.zero, voterIds: [r('n2'), r('n3')] })
  tracker.recordAck(r('n2'), Lsn.of(1))
  assert.throws(() => tracker.recordAck(r('n4'), Lsn.of(1)), InvariantViolation)
  assert.throws(() => tracker.resetAck(r('n4'), Lsn.of(1)), InvariantViolation)
})

/**
 * The commit a primary would reach with the tracker built as the runtime
 * builds it (`votersOf`), every member — learners too — acknowledging what
 * it holds (learners' acks are dropped unless the planted fault counts
 * them). Returns the commit point and how many voters hold it.
 */
function commitOnVoters(membership: Membership, mode: DurabilityMode, held: ReadonlyMap<ReplicaId, number>, primaryDurable: number, faults: ProtocolFaults): { committed: number; votersHolding: number; needed: number } {
  const voters = votersOf(membership, faults)
  const tracker = new CommitTracker({ mode, memberCount: voters.length, committedLsn: Lsn.zero, voterIds: voters.slice(1) })
  tracker.recordPrimaryDurable(Lsn.of(primaryDurable))
  for (const [replicaId, durable] of held) if (voters.includes(replicaId)) tracker.recordAck(replicaId, Lsn.of(durable))
  tracker.advance()
  const committed = tracker.committedLsn
  const trueVoters = votersOf(membership)
  const votersHolding = trueVoters.filter((id) => (id === membership.primaryId ? primaryDurable : held.get(id) ?? 0) >= committed).length
  return { committed, votersHolding, needed: durableCopiesNeeded(mode, trueVoters.length) }
}

const membershipArbitrary = fc
  .record({ voters: fc.integer({ min: 2, max: 5 }), learners: fc.integer({ min: 0, max: 4 }) })
  .map(({ voters, learners }): Membership => ({
    primaryId: r('p'),
    replicaIds: Array.from({ length: voters }, (_, i) => r(`v${i}`)),
    learnerIds: Array.from({ length: learners }, (_, i) => r(`l${i}`)),
  }))

const scenario = fc.tuple(membershipArbitrary, fc.constantFrom<DurabilityMode>('sync_quorum', 'sync_all', 'best_effort'), fc.nat(50)).chain(([membership, mode, primaryDurable]) =>
  fc
    .tuple(...[...membership.replicaIds, ...membership.learnerIds].map(() => fc.nat(primaryDurable)))
    .map((durables) => ({ membership, mode, primaryDurable, held: new Map([...membership.replicaIds, ...membership.learnerIds].map((id, i) => [id, durables[i] ?? 0])) })),
)

test('every committed entry is held by the copies the mode needs among the voters (learners count for nothing)', () => {
  fc.assert(
    fc.property(scenario, ({ membership, mode, primaryDurable, held }) => {
      const outcome = commitOnVoters(membership, mode, held, primaryDurable, {})
      if (outcome.committed > 0) assert.ok(outcome.votersHolding >= outcome.needed, `commit ${outcome.committed} held by ${outcome.votersHolding} voters, ${outcome.needed} needed`)
    }),
    { numRuns: 500 },
  )
})

test('planted: a learner counted among the voters lets an entry commit without the voters that must hold it', () => {
  const found = fc.check(
    fc.property(scenario, ({ membership, mode, primaryDurable, held }) => {
      const outcome = commitOnVoters(membership, mode, held, primaryDurable, { learnerCountedAsVoter: true })
      return outcome.committed === 0 || outcome.votersHolding >= outcome.needed
    }),
    { numRuns: 2000, seed: 11 },
  )
  assert.equal(found.failed, true, 'random scenarios catch the learner counted in the quorum')
})
