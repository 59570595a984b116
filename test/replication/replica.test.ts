// The replica side: the epoch fence, epoch adoption (persist the epoch, drop
// what is beyond the lineage-safe LSN), log matching by (LSN, epoch) against
// a brute-force longest common prefix, barriers and the primary takeover.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  Epoch,
  Lsn,
  decideBarrier,
  decideEpochAdoption,
  decidePrimaryTakeover,
  fenceEpoch,
  lineageSafeLsn,
  matchLog,
} from '../../src/replication/index.ts'
import type { ReplicaLogView } from '../../src/replication/index.ts'

/** A log given as the epochs of its entries 1..n (index 0 is LSN 1). */
function view(epochs: readonly number[], values: { durable?: number; checkpoint?: number; knownCommitted?: number } = {}): ReplicaLogView {
  const checkpoint = values.checkpoint ?? 0
  return {
    headLsn: Lsn.of(epochs.length),
    durableLsn: Lsn.of(values.durable ?? epochs.length),
    checkpointLsn: Lsn.of(checkpoint),
    knownCommittedLsn: Lsn.of(values.knownCommitted ?? 0),
    epochAt: (lsn) => {
      const epoch = lsn > checkpoint ? epochs[lsn - 1] : undefined
      return epoch === undefined ? undefined : Epoch.of(epoch)
    },
  }
}

test('epoch fence: only the current epoch passes; older is stale, newer is future', () => {
  assert.equal(fenceEpoch(Epoch.of(3), Epoch.of(3)), 'current')
  assert.equal(fenceEpoch(Epoch.of(3), Epoch.of(2)), 'stale')
  assert.equal(fenceEpoch(Epoch.of(3), Epoch.of(4)), 'future')
})

test('lineage-safe LSN: known committed and durable, or the checkpoint', () => {
  assert.equal(lineageSafeLsn(view([1, 1, 1, 1], { durable: 3, knownCommitted: 2 })), 2)
  assert.equal(lineageSafeLsn(view([1, 1, 1, 1], { durable: 1, knownCommitted: 4 })), 1)
  assert.equal(lineageSafeLsn(view([1, 1, 1, 1], { durable: 4, knownCommitted: 1, checkpoint: 3 })), 3)
})

test('epoch adoption: a newer epoch is persisted and the tail beyond the lineage-safe LSN dropped', () => {
  const log = view([1, 1, 2, 2], { knownCommitted: 2 })
  assert.deepEqual(decideEpochAdoption({ log, currentEpoch: Epoch.of(2), offeredEpoch: Epoch.of(3), isPrimary: false }), {
    kind: 'adopt',
    persistEpoch: 3,
    truncateToLsn: 2,
    knownCommittedLsn: 2,
    wipeStore: false,
  })
  assert.deepEqual(decideEpochAdoption({ log, currentEpoch: Epoch.of(3), offeredEpoch: Epoch.of(3), isPrimary: false }), {
    kind: 'ignore',
    reason: 'not_newer',
  })
  assert.deepEqual(decideEpochAdoption({ log, currentEpoch: Epoch.of(3), offeredEpoch: Epoch.of(2), isPrimary: false }).kind, 'ignore')
  assert.deepEqual(decideEpochAdoption({ log, currentEpoch: Epoch.of(2), offeredEpoch: Epoch.of(3), isPrimary: true }), {
    kind: 'ignore',
    reason: 'is_primary',
  })
})

test('log matching: the divergent tail of an older epoch is cut back to the last common (LSN, epoch)', () => {
  const primary = view([1, 1, 1, 3, 3, 3])
  assert.equal(matchLog(view([1, 1, 1, 2, 2]), primary), 3)
  assert.equal(matchLog(view([1, 1, 1, 3]), primary), 4)
  assert.equal(matchLog(view([1, 1, 1, 3, 3, 3, 3, 3], { durable: 5 }), primary), 5, 'never above what the replica holds durably')
  assert.equal(matchLog(view([1, 2, 2], { knownCommitted: 2 }), primary), 2, 'never below the lineage-safe LSN')
})

test('property: log matching equals the brute-force longest common prefix of two lineages', () => {
  // Two logs forked from a common prefix; each epoch has one writer, so the
  // two tails never share an epoch, as with one primary per epoch.
  const lineage = fc.record({
    common: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 12 }),
    replicaTail: fc.array(fc.constant(0), { maxLength: 6 }),
    primaryTail: fc.array(fc.constant(0), { maxLength: 6 }),
    durableCut: fc.nat(20),
  })
  fc.assert(
    fc.property(lineage, ({ common, replicaTail, primaryTail, durableCut }) => {
      const base = [...common].sort((a, b) => a - b)
      const top = base.at(-1) ?? 1
      const replica = [...base, ...replicaTail.map(() => top + 1)]
      const primary = [...base, ...primaryTail.map(() => top + 2)]
      const durable = Math.min(durableCut, replica.length)
      let expected = 0
      while (expected < Math.min(durable, primary.length) && replica[expected] === primary[expected]) expected += 1
      assert.equal(matchLog(view(replica, { durable }), view(primary)), expected)
    }),
  )
})

test('barrier: flush and ack when the LSN is held; otherwise wait, then abandon', () => {
  const log = view([1, 1, 1], { knownCommitted: 1 })
  assert.deepEqual(decideBarrier(log, { lsn: Lsn.of(3), committedLsn: Lsn.of(9), attempt: 0, retriesMax: 2 }), {
    kind: 'flush_and_ack',
    knownCommittedLsn: 3,
  })
  assert.deepEqual(decideBarrier(log, { lsn: Lsn.of(4), committedLsn: Lsn.of(9), attempt: 1, retriesMax: 2 }), { kind: 'wait', attempt: 2 })
  assert.deepEqual(decideBarrier(log, { lsn: Lsn.of(4), committedLsn: Lsn.of(9), attempt: 2, retriesMax: 2 }), { kind: 'abandon' })
})

test('primary takeover: the uncommitted tail goes, never below the checkpoint', () => {
  assert.deepEqual(decidePrimaryTakeover(view([1, 1, 1, 1, 1]), Lsn.of(3)), { truncateToLsn: 3, knownCommittedLsn: 3 })
  assert.deepEqual(decidePrimaryTakeover(view([1, 1, 1, 1, 1], { checkpoint: 4 }), Lsn.of(3)), { truncateToLsn: 4, knownCommittedLsn: 3 })
  assert.deepEqual(decidePrimaryTakeover(view([1, 1]), Lsn.of(3)), { truncateToLsn: undefined, knownCommittedLsn: 2 })
})

test('epoch adoption across a lineage reset (a desperate promotion) caps what the node calls committed', () => {
  const log = view([1, 1, 1, 1, 1], { knownCommitted: 5 })
  const resets = [{ epoch: Epoch.of(3), keptLsn: Lsn.of(2) }]
  assert.deepEqual(decideEpochAdoption({ log, currentEpoch: Epoch.of(1), offeredEpoch: Epoch.of(4), isPrimary: false, lineageResets: resets }), {
    kind: 'adopt',
    persistEpoch: 4,
    truncateToLsn: 2,
    knownCommittedLsn: 2,
    wipeStore: false,
  })
  const notCrossed = decideEpochAdoption({ log, currentEpoch: Epoch.of(3), offeredEpoch: Epoch.of(4), isPrimary: false, lineageResets: resets })
  assert.equal(notCrossed.kind === 'adopt' && notCrossed.truncateToLsn, 5, 'a reset the node already lived through does not apply again')
  const checkpointed = view([1, 1, 1, 1, 1], { knownCommitted: 5, checkpoint: 4 })
  const wiped = decideEpochAdoption({ log: checkpointed, currentEpoch: Epoch.of(1), offeredEpoch: Epoch.of(4), isPrimary: false, lineageResets: resets })
  assert.equal(wiped.kind === 'adopt' && wiped.wipeStore, true, 'a checkpoint of the lost lineage cannot be kept')
})
