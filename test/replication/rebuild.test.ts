import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvariantViolation } from '../../src/domain/index.ts'
import { Lsn, RebuildProgress } from '../../src/replication/index.ts'

test('rebuild: full base at committed 0 transfers 0 and completes', () => {
  const rebuild = new RebuildProgress()
  rebuild.selectSource({ source: 'full_base', targetLsn: Lsn.of(0), reason: 'no_checkpoint' })
  assert.equal(rebuild.readyToComplete(), false)
  assert.deepEqual(rebuild.recordTransfer(Lsn.of(0)), { ok: true, value: undefined })
  assert.equal(rebuild.readyToComplete(), true)
  assert.equal(rebuild.complete().ok, true)
  assert.equal(rebuild.phase, 'completed')
})

test('rebuild: transfer progress is strictly increasing and bounded by the transfer target', () => {
  const rebuild = new RebuildProgress()
  rebuild.selectSource({ source: 'full_base', targetLsn: Lsn.of(100), reason: 'no_checkpoint' })
  assert.equal(rebuild.recordTransfer(Lsn.of(40)).ok, true)
  assert.deepEqual(rebuild.recordTransfer(Lsn.of(40)), { ok: false, reason: 'transfer_regression' })
  assert.deepEqual(rebuild.recordTransfer(Lsn.of(101)), { ok: false, reason: 'transfer_beyond_target' })
  assert.equal(rebuild.complete().ok, false)
  assert.equal(rebuild.recordTransfer(Lsn.of(100)).ok, true)
  assert.equal(rebuild.complete().ok, true)
})

test('rebuild: snapshot + tail needs the snapshot transferred before tail replay, then replay to target', () => {
  const rebuild = new RebuildProgress()
  rebuild.selectSource({ source: 'snapshot_tail', snapshotLsn: Lsn.of(50), targetLsn: Lsn.of(100) })
  assert.deepEqual(rebuild.recordTailReplay(Lsn.of(60)), { ok: false, reason: 'wrong_phase' })
  assert.equal(rebuild.recordTransfer(Lsn.of(30)).ok, true)
  assert.deepEqual(rebuild.recordTailReplay(Lsn.of(60)), { ok: false, reason: 'transfer_incomplete' })
  assert.deepEqual(rebuild.recordTransfer(Lsn.of(51)), { ok: false, reason: 'transfer_beyond_target' })
  assert.equal(rebuild.recordTransfer(Lsn.of(50)).ok, true)
  assert.deepEqual(rebuild.recordTailReplay(Lsn.of(50)), { ok: false, reason: 'transfer_regression' })
  assert.equal(rebuild.recordTailReplay(Lsn.of(80)).ok, true)
  assert.equal(rebuild.readyToComplete(), false)
  assert.deepEqual(rebuild.recordTailReplay(Lsn.of(101)), { ok: false, reason: 'transfer_beyond_target' })
  assert.equal(rebuild.recordTailReplay(Lsn.of(100)).ok, true)
  assert.equal(rebuild.phase, 'tail_replay')
  assert.equal(rebuild.complete().ok, true)
})

test('rebuild: a snapshot at the target completes without tail replay', () => {
  const rebuild = new RebuildProgress()
  rebuild.selectSource({ source: 'snapshot_tail', snapshotLsn: Lsn.of(70), targetLsn: Lsn.of(70) })
  rebuild.recordTransfer(Lsn.of(70))
  assert.equal(rebuild.readyToComplete(), true)
})

test('rebuild: full base rejects tail replay; aborted is terminal', () => {
  const rebuild = new RebuildProgress()
  rebuild.selectSource({ source: 'full_base', targetLsn: Lsn.of(10), reason: 'no_checkpoint' })
  rebuild.recordTransfer(Lsn.of(10))
  assert.deepEqual(rebuild.recordTailReplay(Lsn.of(10)), { ok: false, reason: 'tail_replay_not_applicable' })
  rebuild.abort('epoch_changed')
  assert.equal(rebuild.phase, 'aborted')
  assert.deepEqual(rebuild.recordTransfer(Lsn.of(10)), { ok: false, reason: 'wrong_phase' })
  assert.equal(rebuild.complete().ok, false)
})

test('rebuild: selecting a source twice is an invariant violation', () => {
  const rebuild = new RebuildProgress()
  rebuild.selectSource({ source: 'full_base', targetLsn: Lsn.of(10), reason: 'no_checkpoint' })
  assert.throws(() => rebuild.selectSource({ source: 'full_base', targetLsn: Lsn.of(10), reason: 'no_checkpoint' }), InvariantViolation)
})
