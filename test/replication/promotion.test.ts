// The promotion policy decides from reports only: a majority must be
// reporting, the chosen member must be eligible (fresh report, current epoch,
// not rebuilding, holding the committed prefix), and the member re-checks the
// offer against its own disk. The desperate promotion is separate and says
// in its recovery-log event which committed entries may be lost.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  Epoch,
  Lsn,
  ReplicaId,
  Tick,
  acceptPromotion,
  decideDesperatePromotion,
  decidePromotion,
} from '../../src/replication/index.ts'
import type { MemberReport, PromotionInput, ReplicaState } from '../../src/replication/index.ts'

const members = ['n1', 'n2', 'n3', 'n4', 'n5'].map((id) => ReplicaId.of(id))
const [n1, n2, n3, n4, n5] = members as [ReplicaId, ReplicaId, ReplicaId, ReplicaId, ReplicaId]

function report(replicaId: ReplicaId, values: Partial<Omit<MemberReport, 'replicaId'>> = {}): MemberReport {
  return { replicaId, epoch: Epoch.of(3), durableLsn: Lsn.of(10), safeLsn: Lsn.of(10), reportedAt: Tick.of(100), state: 'in_sync', ...values }
}

function input(reports: readonly MemberReport[], values: Partial<PromotionInput> = {}): PromotionInput {
  return {
    now: Tick.of(100),
    epoch: Epoch.of(3),
    committedLsn: Lsn.of(10),
    members,
    reports: new Map(reports.map((entry) => [entry.replicaId, entry])),
    reportFreshTicks: 2,
    lapsedPrimary: { replicaId: n1, lapsedAt: Tick.of(100) },
    ...values,
  }
}

test('ranking: best reported state, then most durable, then replica id; the next epoch', () => {
  const decision = decidePromotion(
    input([report(n2, { state: 'catching_up', durableLsn: Lsn.of(40) }), report(n3, { durableLsn: Lsn.of(12) }), report(n4, { durableLsn: Lsn.of(12) })]),
  )
  assert.equal(decision.kind, 'promote')
  assert.equal(decision.kind === 'promote' && decision.replicaId, 'n3')
  assert.equal(decision.kind === 'promote' && decision.epoch, 4)
})

test('every ineligibility has its reason in the verdicts', () => {
  const decision = decidePromotion(
    input([
      report(n1, { durableLsn: Lsn.of(99) }),
      report(n2, { epoch: Epoch.of(2), durableLsn: Lsn.of(50) }),
      report(n3, { state: 'needs_rebuild' }),
      report(n4, { state: 'rebuilding' }),
      report(n5, { durableLsn: Lsn.of(9) }),
    ]),
  )
  assert.deepEqual(decision, {
    kind: 'blocked',
    reason: 'no_eligible_member',
    verdicts: [
      { replicaId: n1, ineligibility: 'lease_lapsed' },
      { replicaId: n2, ineligibility: 'epoch_stale' },
      { replicaId: n3, ineligibility: 'state_needs_rebuild' },
      { replicaId: n4, ineligibility: 'state_rebuilding' },
      { replicaId: n5, ineligibility: 'missing_committed_prefix' },
    ],
  })
})

test('no quorum reporting, no promotion: a stale report counts for nothing, nor the lapsed primary', () => {
  const reports = [report(n1), report(n2), report(n3, { reportedAt: Tick.of(97) }), report(n4, { reportedAt: Tick.of(90) })]
  const decision = decidePromotion(input(reports))
  assert.equal(decision.kind, 'blocked')
  assert.equal(decision.kind === 'blocked' && decision.reason, 'no_quorum_reporting')
  const withQuorum = decidePromotion(input([...reports, report(n5, { durableLsn: Lsn.of(11) }), report(n4)]))
  assert.equal(withQuorum.kind === 'promote' && withQuorum.replicaId, 'n5')
})

test('the chosen member refuses an offer its disk no longer supports', () => {
  const offer = { fromEpoch: Epoch.of(3), committedLsn: Lsn.of(10), desperate: false }
  assert.deepEqual(acceptPromotion({ epoch: Epoch.of(3), durableLsn: Lsn.of(10) }, offer), { ok: true })
  assert.deepEqual(acceptPromotion({ epoch: Epoch.of(3), durableLsn: Lsn.of(9) }, offer), { ok: false, reason: 'missing_committed_prefix' })
  assert.deepEqual(acceptPromotion({ epoch: Epoch.of(4), durableLsn: Lsn.of(10) }, offer), { ok: false, reason: 'epoch_moved' })
  assert.deepEqual(acceptPromotion({ epoch: Epoch.of(3), durableLsn: Lsn.of(9) }, { ...offer, desperate: true }), { ok: true })
})

test('desperate promotion: the most durable reporting member, with the possible loss in its recovery-log event', () => {
  const reports = [
    report(n2, { durableLsn: Lsn.of(6), safeLsn: Lsn.of(6), state: 'needs_rebuild' }),
    report(n3, { durableLsn: Lsn.of(9), safeLsn: Lsn.of(4), epoch: Epoch.of(2) }),
  ]
  assert.equal(decidePromotion(input(reports)).kind, 'blocked')
  const decision = decideDesperatePromotion(input(reports))
  assert.equal(decision.kind, 'promote_desperate')
  if (decision.kind !== 'promote_desperate') return
  assert.equal(decision.replicaId, 'n2')
  assert.equal(decision.keptLsn, 6)
  assert.deepEqual(decision.event, {
    kind: 'desperate_promotion',
    replicaId: n2,
    reason: 'committed_entries_may_be_lost',
    detail: { committedLsn: 10, keptLsn: 6, lostEntries: 4, candidateEpoch: 3, eligibility: 'state_needs_rebuild' },
  })
  assert.deepEqual(decideDesperatePromotion(input([])), { kind: 'blocked', reason: 'no_member_reporting' })
})

test('property: a promotion happens exactly when a quorum reports and some member is eligible, and picks an eligible one', () => {
  const states: ReplicaState[] = ['in_sync', 'catching_up', 'degraded', 'connecting', 'disconnected', 'rebuilding', 'needs_rebuild']
  const memberReport = fc.option(
    fc.record({
      epoch: fc.integer({ min: 1, max: 4 }),
      durableLsn: fc.integer({ min: 0, max: 20 }),
      age: fc.integer({ min: 0, max: 4 }),
      state: fc.option(fc.constantFrom(...states), { nil: undefined }),
    }),
    { nil: undefined },
  )
  fc.assert(
    fc.property(
      fc.array(memberReport, { minLength: 5, maxLength: 5 }),
      fc.integer({ min: 0, max: 20 }),
      fc.option(fc.constantFrom(...members), { nil: undefined }),
      (drawn, committed, lapsed) => {
        const reports = drawn.flatMap((entry, index) =>
          entry === undefined
            ? []
            : [
                report(members[index] ?? n1, {
                  epoch: Epoch.of(entry.epoch),
                  durableLsn: Lsn.of(entry.durableLsn),
                  reportedAt: Tick.of(100 - entry.age),
                  state: entry.state,
                }),
              ],
        )
        const given = input(reports, { committedLsn: Lsn.of(committed), lapsedPrimary: lapsed === undefined ? undefined : { replicaId: lapsed, lapsedAt: Tick.of(99) } })
        // The naive reading of the policy, member by member.
        const fresh = (entry: MemberReport): boolean => 100 - entry.reportedAt <= 2 && !(entry.replicaId === lapsed && entry.reportedAt <= 99)
        const eligible = reports.filter(
          (entry) =>
            fresh(entry) &&
            entry.epoch === 3 &&
            entry.state !== 'rebuilding' &&
            entry.state !== 'needs_rebuild' &&
            entry.durableLsn >= committed,
        )
        const quorum = reports.filter((entry) => fresh(entry)).length >= 3
        const decision = decidePromotion(given)
        assert.equal(decision.kind === 'promote', quorum && eligible.length > 0)
        if (decision.kind === 'promote') assert.ok(eligible.some((entry) => entry.replicaId === decision.replicaId))
      },
    ),
  )
})

test('the lapsed primary is not re-picked on its old reports, but is once it reports again after a restart', () => {
  const lapsed = { replicaId: n1, lapsedAt: Tick.of(99) }
  const others = [report(n2, { durableLsn: Lsn.of(3) }), report(n3, { durableLsn: Lsn.of(3) })]
  const before = decidePromotion(input([report(n1, { reportedAt: Tick.of(99), durableLsn: Lsn.of(10) }), ...others], { lapsedPrimary: lapsed }))
  assert.equal(before.kind, 'blocked', 'only the lapsed primary holds the committed prefix, and its report predates the lapse')
  const after = decidePromotion(input([report(n1, { reportedAt: Tick.of(100), durableLsn: Lsn.of(10) }), ...others], { lapsedPrimary: lapsed }))
  assert.equal(after.kind === 'promote' && after.replicaId, 'n1')
})
