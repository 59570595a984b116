import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { InvariantViolation } from '../../src/domain/index.ts'
import { classifyHandshake, isRecoverable, Lsn, proveRecoverability, selectRebuildSource } from '../../src/replication/index.ts'
import { history } from './fakes.ts'

test('handshake: F == C is zero gap (exact equality)', () => {
  assert.equal(classifyHandshake(history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100) }), Lsn.of(100)), 'zero_gap')
  assert.equal(classifyHandshake(history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100), tailLsn: Lsn.of(50) }), Lsn.of(99)), 'catch_up')
})

test('handshake: F > C is catch-up with mandatory truncation back to C', () => {
  const proof = proveRecoverability(history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100) }), Lsn.of(105))
  assert.deepEqual(proof, { kind: 'replica_ahead', flushedLsn: 105, committedLsn: 100, truncateToLsn: 100 })
  assert.equal(classifyHandshake(history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100) }), Lsn.of(105)), 'catch_up')
})

test('handshake: the retention boundary is exact (tail 50: F=50 catches up, F=49 needs rebuild)', () => {
  const retained = history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100), tailLsn: Lsn.of(50) })
  assert.equal(classifyHandshake(retained, Lsn.of(50)), 'catch_up')
  assert.equal(classifyHandshake(retained, Lsn.of(49)), 'needs_rebuild')
  assert.equal(isRecoverable(retained, Lsn.of(50), Lsn.of(100)), true)
  assert.equal(isRecoverable(retained, Lsn.of(49), Lsn.of(100)), false)
  const proof = proveRecoverability(retained, Lsn.of(70))
  assert.equal(proof.kind, 'gap_within_retention')
  assert.equal(proof.kind === 'gap_within_retention' ? proof.entriesNeeded : -1, 30)
})

test('handshake: tail 0 keeps everything, so any F below C catches up', () => {
  assert.equal(classifyHandshake(history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100) }), Lsn.of(0)), 'catch_up')
})

test('an impossible retained history (committed > head, tail > head) is an invariant violation', () => {
  assert.throws(() => classifyHandshake(history({ headLsn: Lsn.of(10), committedLsn: Lsn.of(11) }), Lsn.of(10)), InvariantViolation)
  assert.throws(() => proveRecoverability(history({ headLsn: Lsn.of(10), committedLsn: Lsn.of(11) }), Lsn.of(10)), InvariantViolation)
  assert.throws(() => classifyHandshake(history({ headLsn: Lsn.of(10), committedLsn: Lsn.of(5), tailLsn: Lsn.of(11) }), Lsn.of(5)), InvariantViolation)
  assert.throws(() => classifyHandshake(history({ headLsn: Lsn.of(10), committedLsn: Lsn.of(5) }), Lsn.of(-1)), InvariantViolation)
})

test('classification and recoverability proof never disagree (property)', () => {
  fc.assert(
    fc.property(
      fc.nat(200),
      fc.nat(200),
      fc.nat(200),
      fc.nat(260),
      (head, committedSeed, tailSeed, flushed) => {
        const committedLsn = committedSeed % (head + 1)
        const tailLsn = tailSeed % (head + 1)
        const retained = history({ headLsn: Lsn.of(head), committedLsn: Lsn.of(committedLsn), tailLsn: Lsn.of(tailLsn) })
        const proof = proveRecoverability(retained, Lsn.of(flushed))
        const outcome = classifyHandshake(retained, Lsn.of(flushed))
        const expected =
          flushed === committedLsn ? 'zero_gap' : flushed > committedLsn || flushed >= tailLsn ? 'catch_up' : 'needs_rebuild'
        assert.equal(outcome, expected)
        if (proof.kind === 'gap_within_retention') assert.equal(isRecoverable(retained, Lsn.of(flushed), Lsn.of(committedLsn)), true)
        if (proof.kind === 'gap_beyond_retention') assert.equal(isRecoverable(retained, Lsn.of(flushed), Lsn.of(committedLsn)), false)
      },
    ),
  )
})

test('rebuild source: trusted checkpoint with a retained tail gives snapshot + tail', () => {
  assert.deepEqual(selectRebuildSource(history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100), tailLsn: Lsn.of(30), checkpointLsn: Lsn.of(50), checkpointTrusted: true })), {
    source: 'snapshot_tail',
    snapshotLsn: 50,
    targetLsn: 100,
  })
})

test('rebuild source: falls back to full base with the reason', () => {
  const base = { headLsn: Lsn.of(100), committedLsn: Lsn.of(100) }
  assert.deepEqual(selectRebuildSource(history({ ...base, tailLsn: Lsn.of(80), checkpointLsn: Lsn.of(50), checkpointTrusted: true })), {
    source: 'full_base',
    targetLsn: 100,
    reason: 'trusted_checkpoint_unreplayable_tail',
  })
  assert.equal(selectRebuildSource(history({ ...base, checkpointLsn: Lsn.of(50), checkpointTrusted: false })).source, 'full_base')
  assert.deepEqual(selectRebuildSource(history(base)), { source: 'full_base', targetLsn: 100, reason: 'no_checkpoint' })
  assert.deepEqual(selectRebuildSource(history({ headLsn: Lsn.of(0), committedLsn: Lsn.of(0) })), { source: 'full_base', targetLsn: 0, reason: 'no_checkpoint' })
})
