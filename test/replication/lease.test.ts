// The primary's lease and the coordinator's view of it never overlap: a
// primary cut off from the coordinator stops acknowledging before the
// coordinator may promote anyone else, whatever the renewals' delays and
// losses; grants arriving out of order never shorten or stretch the lease
// wrongly, and a grant of a newer epoch deposes the primary for good.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { TallyError } from '../../src/domain/index.ts'
import { CoordinatorLease, Epoch, PrimaryLease, Tick, validateLeaseTerms } from '../../src/replication/index.ts'

const terms = { leaseTicks: 6, safetyMarginTicks: 2 }
const t = (value: number): Tick => Tick.of(value)

test('terms without a margin, or with a lease no longer than the margin, are refused', () => {
  assert.throws(() => validateLeaseTerms({ leaseTicks: 6, safetyMarginTicks: 0 }), TallyError)
  assert.throws(() => validateLeaseTerms({ leaseTicks: 2, safetyMarginTicks: 2 }), TallyError)
  assert.throws(() => validateLeaseTerms({ leaseTicks: 2.5, safetyMarginTicks: 1 }), TallyError)
  validateLeaseTerms(terms)
})

test('a fresh primary holds no lease until a renewal is answered; the lease counts from the request, ends the margin early', () => {
  const lease = new PrimaryLease(terms, Epoch.of(2))
  assert.equal(lease.holds(t(0)), false)
  assert.equal(lease.renewed(t(10), Epoch.of(2)), 'renewed')
  // Answered late (at 13) but counted from 10: holds through 10 + 6 - 2 - 1 = 13.
  assert.equal(lease.holds(t(13)), true)
  assert.equal(lease.holds(t(14)), false)
  assert.equal(lease.expiresAt, t(14))
})

test('an older grant arriving late does not shorten the lease; a newer epoch deposes for good', () => {
  const lease = new PrimaryLease(terms, Epoch.of(2))
  assert.equal(lease.renewed(t(10), Epoch.of(2)), 'renewed')
  assert.equal(lease.renewed(t(8), Epoch.of(2)), 'stale_grant')
  assert.equal(lease.renewed(t(12), Epoch.of(1)), 'stale_grant', 'a grant delayed past an epoch change speaks for an older primary')
  assert.equal(lease.expiresAt, t(14))
  assert.equal(lease.renewed(t(11), Epoch.of(3)), 'deposed')
  assert.equal(lease.holds(t(11)), false)
  assert.equal(lease.renewed(t(12), Epoch.of(2)), 'deposed')
  assert.equal(lease.holds(t(12)), false)
})

test('a restarted coordinator waits a whole lease from its restart before it may promote', () => {
  const coordinator = new CoordinatorLease(terms, t(100))
  assert.equal(coordinator.promotionAllowed(t(105)), false)
  assert.equal(coordinator.promotionAllowed(t(106)), true)
  coordinator.heard(t(104))
  assert.equal(coordinator.promotionAllowed(t(109)), false)
  assert.equal(coordinator.promotionAllowed(t(110)), true)
  coordinator.heard(t(102))
  assert.equal(coordinator.lastHeardAt(), t(104), 'a late request does not move the lease back')
})

interface Renewal {
  readonly sentAt: number
  readonly lost: boolean
  readonly toCoordinator: number
  readonly back: number
}

const renewals = fc.array(
  fc.record({ sentAt: fc.integer({ min: 0, max: 60 }), lost: fc.boolean(), toCoordinator: fc.integer({ min: 0, max: 8 }), back: fc.integer({ min: 0, max: 8 }) }),
  { maxLength: 40 },
)
const leaseTerms = fc
  .record({ leaseTicks: fc.integer({ min: 2, max: 12 }), margin: fc.integer({ min: 1, max: 11 }) })
  .filter(({ leaseTicks, margin }) => margin < leaseTicks)

/**
 * Runs the primary and the coordinator tick by tick: renewals are heard
 * after a delay (or lost), answered after another; the coordinator promotes
 * on the first tick it may and from then on answers with the new epoch.
 * Returns the ticks at which the old primary held its lease at or after
 * the promotion (must be none).
 */
function overlap(leaseTicks: number, margin: number, schedule: readonly Renewal[]): number[] {
  const current = { leaseTicks, safetyMarginTicks: margin }
  const primary = new PrimaryLease(current, Epoch.of(1))
  const coordinator = new CoordinatorLease(current, t(0))
  let promotedAt: number | undefined
  const answers: Array<{ at: number; sentAt: number; epoch: Epoch }> = []
  const overlapping: number[] = []
  for (let now = 0; now <= 90; now += 1) {
    for (const renewal of schedule) {
      if (renewal.lost || renewal.sentAt + renewal.toCoordinator !== now) continue
      if (promotedAt === undefined) coordinator.heard(t(now))
      answers.push({ at: now + renewal.back, sentAt: renewal.sentAt, epoch: promotedAt === undefined ? Epoch.of(1) : Epoch.of(2) })
    }
    for (const answer of answers) if (answer.at === now) primary.renewed(t(answer.sentAt), answer.epoch)
    if (promotedAt === undefined && coordinator.promotionAllowed(t(now))) promotedAt = now
    if (promotedAt !== undefined && primary.holds(t(now))) overlapping.push(now)
  }
  return overlapping
}

test('property: the deposed primary never holds its lease at or after the promotion, whatever the delays and losses', () => {
  fc.assert(
    fc.property(leaseTerms, renewals, ({ leaseTicks, margin }, schedule) => {
      assert.deepEqual(overlap(leaseTicks, margin, schedule), [])
    }),
    { numRuns: 300, seed: 10 },
  )
})
