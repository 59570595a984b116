import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvariantViolation } from '../../src/domain/index.ts'
import { BudgetTracker, Tick } from '../../src/replication/index.ts'

const none = { durationTicksMax: 0, entriesMax: 0, progressDeadlineTicks: 0 }

test('budget: duration 5 from tick 0, checked at 10, is duration_exceeded', () => {
  const tracker = new BudgetTracker({ ...none, durationTicksMax: 5 }, Tick.of(0))
  assert.equal(tracker.check(Tick.of(5)), undefined)
  assert.equal(tracker.check(Tick.of(10)), 'duration_exceeded')
})

test('budget: stall deadline 5, progress at 12, checked at 18, is progress_stalled', () => {
  const tracker = new BudgetTracker({ ...none, progressDeadlineTicks: 5 }, Tick.of(10))
  tracker.recordProgress(3, Tick.of(12))
  assert.equal(tracker.check(Tick.of(17)), undefined)
  assert.equal(tracker.check(Tick.of(18)), 'progress_stalled')
})

test('budget: a budget started at tick 0 still detects a stall with no progress at all', () => {
  const tracker = new BudgetTracker({ ...none, progressDeadlineTicks: 3 }, Tick.of(0))
  assert.equal(tracker.check(Tick.of(3)), undefined)
  assert.equal(tracker.check(Tick.of(4)), 'progress_stalled')
})

test('budget: entries are delta-counted (70 -> 100 is 30): max 20 is exceeded, max 50 is not', () => {
  const tight = new BudgetTracker({ ...none, entriesMax: 20 }, Tick.of(0))
  tight.recordProgress(100 - 70, Tick.of(1))
  assert.equal(tight.check(Tick.of(1)), 'entries_exceeded')
  const loose = new BudgetTracker({ ...none, entriesMax: 50 }, Tick.of(0))
  loose.recordProgress(100 - 70, Tick.of(1))
  assert.equal(loose.check(Tick.of(1)), undefined)
  assert.equal(loose.entriesReplayed, 30)
})

test('budget: violations are reported in order duration, entries, stall', () => {
  const tracker = new BudgetTracker({ durationTicksMax: 1, entriesMax: 1, progressDeadlineTicks: 1 }, Tick.of(0))
  tracker.recordProgress(5, Tick.of(0))
  assert.equal(tracker.check(Tick.of(10)), 'duration_exceeded')
})

test('budget: a check before the start tick, or negative limits, are invariant violations', () => {
  const tracker = new BudgetTracker(none, Tick.of(10))
  assert.throws(() => tracker.check(Tick.of(9)), InvariantViolation)
  assert.throws(() => new BudgetTracker({ ...none, entriesMax: -1 }, Tick.of(0)), InvariantViolation)
})

test('budget: zero limits mean unlimited', () => {
  const tracker = new BudgetTracker(none, Tick.of(0))
  assert.equal(tracker.check(Tick.of(1_000_000)), undefined)
})
