import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvariantViolation } from '../../src/domain/index.ts'
import { Epoch, Lsn, RecoveryLog, ReplicaId, Sender, Tick } from '../../src/replication/index.ts'
import type { SessionTicket } from '../../src/replication/index.ts'
import { endpoint, history, testSessionId } from './fakes.ts'

function newSender(): { sender: Sender; log: RecoveryLog } {
  const log = new RecoveryLog()
  return { sender: new Sender({ replicaId: ReplicaId.of('r1'), endpoint: endpoint('10.0.0.1'), epoch: Epoch.of(1), log }), log }
}

function attached(sender: Sender, id = 1): SessionTicket {
  const result = sender.attachSession(testSessionId(id), 'catchup')
  assert.ok(result.ok)
  return result.value
}

/** A sender with a catch-up session in phase catchup over (F, C]. */
function catchingUp(flushed: number, committed: number, budget?: { durationTicksMax: number; entriesMax: number; progressDeadlineTicks: number }) {
  const { sender, log } = newSender()
  const ticket = attached(sender)
  assert.ok(sender.beginConnect(ticket).ok)
  assert.ok(sender.recordHandshake(ticket, history({ headLsn: Lsn.of(committed), committedLsn: Lsn.of(committed) }), Lsn.of(flushed)).ok)
  assert.ok(sender.beginCatchUp(ticket, Tick.of(0), budget).ok)
  return { sender, log, ticket }
}

test('a new sender is disconnected and owns no session', () => {
  const { sender } = newSender()
  assert.equal(sender.state, 'disconnected')
  assert.equal(sender.activeSession(), undefined)
})

test('authority: at most one active session; a second attach is refused', () => {
  const { sender } = newSender()
  attached(sender, 1)
  assert.deepEqual(sender.attachSession(testSessionId(2), 'catchup'), { ok: false, reason: 'session_active' })
})

test('authority: a stopped sender refuses every mutation', () => {
  const { sender } = newSender()
  const ticket = attached(sender)
  sender.stop('removed')
  assert.deepEqual(sender.beginConnect(ticket), { ok: false, reason: 'sender_stopped' })
  assert.deepEqual(sender.attachSession(testSessionId(2), 'catchup'), { ok: false, reason: 'sender_stopped' })
})

test('authority: a ticket whose session id does not match is refused', () => {
  const { sender } = newSender()
  const ticket = attached(sender)
  assert.deepEqual(sender.beginConnect({ ...ticket, sessionId: testSessionId(99) }), { ok: false, reason: 'session_mismatch' })
})

test('authority: a ticket from an older epoch is refused', () => {
  const { sender } = newSender()
  sender.updateEpoch(Epoch.of(2))
  const ticket = attached(sender)
  assert.deepEqual(sender.beginConnect({ ...ticket, epoch: Epoch.of(1) }), { ok: false, reason: 'epoch_stale' })
})

test('authority: a ticket naming another endpoint is refused', () => {
  const { sender } = newSender()
  const ticket = attached(sender)
  assert.deepEqual(sender.beginConnect({ ...ticket, endpoint: endpoint('10.0.0.9') }), { ok: false, reason: 'endpoint_stale' })
})

test('authority: with no session at all a ticket is refused as session_missing', () => {
  const { sender } = newSender()
  const ticket: SessionTicket = { replicaId: ReplicaId.of('r1'), sessionId: testSessionId(1), kind: 'catchup', epoch: Epoch.of(1), endpoint: endpoint('10.0.0.1') }
  assert.deepEqual(sender.beginConnect(ticket), { ok: false, reason: 'session_missing' })
})

test('authority: a ticket presented to the wrong sender is an invariant violation', () => {
  const { sender } = newSender()
  const ticket = attached(sender)
  assert.throws(() => sender.beginConnect({ ...ticket, replicaId: ReplicaId.of('r2') }), InvariantViolation)
})

test('§12.2 stale session id: S1 at epoch 1, epoch 2, S2 attached; every API rejects S1 and S2 stays active', () => {
  const { sender, log } = newSender()
  const s1 = attached(sender, 1)
  sender.updateEpoch(Epoch.of(2))
  const s2 = attached(sender, 2)
  const history100 = history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100) })
  const calls = [
    () => sender.beginConnect(s1),
    () => sender.recordHandshake(s1, history100, Lsn.of(100)),
    () => sender.beginCatchUp(s1, Tick.of(0)),
    () => sender.recordCatchUpProgress(s1, Lsn.of(5), Tick.of(1)),
    () => sender.checkBudget(s1, Tick.of(1)),
    () => sender.recordTruncation(s1, Lsn.of(100)),
    () => sender.completeSession(s1),
    () => sender.beginRebuild(s1, history100),
    () => sender.recordRebuildTransfer(s1, Lsn.of(1)),
    () => sender.recordRebuildTailReplay(s1, Lsn.of(1)),
    () => sender.completeRebuild(s1),
    () => sender.invalidateSession(s1, 'x', 'disconnected'),
  ]
  for (const call of calls) assert.equal(call().ok, false)
  assert.equal(sender.activeSession()?.id, s2.sessionId)
  assert.ok(log.has('session_invalidated', 'epoch_changed'))
})

test('epoch: an older or equal epoch is ignored; a newer one invalidates the session and disconnects', () => {
  const { sender } = newSender()
  const ticket = attached(sender)
  sender.updateEpoch(Epoch.of(1))
  assert.equal(sender.activeSession()?.id, ticket.sessionId)
  sender.updateEpoch(Epoch.of(2))
  assert.equal(sender.activeSession(), undefined)
  assert.equal(sender.session?.invalidationReason, 'epoch_changed')
  assert.equal(sender.state, 'disconnected')
})

test('epoch: a newer epoch moves an in-sync sender with no session to disconnected (it must handshake again)', () => {
  const { sender } = newSender()
  const ticket = attached(sender)
  sender.beginConnect(ticket)
  sender.recordHandshake(ticket, history({ headLsn: Lsn.of(5), committedLsn: Lsn.of(5) }), Lsn.of(5))
  assert.ok(sender.completeSession(ticket).ok)
  assert.equal(sender.state, 'in_sync')
  sender.updateEpoch(Epoch.of(2))
  assert.equal(sender.state, 'disconnected')
})

test('§12.1 changed data address keeps the sender, invalidates the session, and any field change counts', () => {
  for (const changed of [endpoint('10.0.0.2', 2), endpoint('10.0.0.1', 1, 'other:ctrl'), endpoint('10.0.0.1', 2)]) {
    const { sender } = newSender()
    const ticket = attached(sender)
    sender.beginConnect(ticket)
    sender.updateEndpoint(changed)
    assert.equal(sender.activeSession(), undefined)
    assert.equal(sender.session?.invalidationReason, 'endpoint_changed')
    assert.equal(sender.state, 'disconnected')
    assert.deepEqual(sender.endpoint, changed)
    const next = sender.attachSession(testSessionId(2), 'reassign')
    assert.ok(next.ok)
    assert.notEqual(next.value.sessionId, ticket.sessionId)
  }
})

test('handshake must follow connect; catch-up must follow handshake', () => {
  const { sender } = newSender()
  const ticket = attached(sender)
  assert.deepEqual(sender.recordHandshake(ticket, history({ headLsn: Lsn.of(1), committedLsn: Lsn.of(1) }), Lsn.of(1)), { ok: false, reason: 'wrong_phase' })
  assert.deepEqual(sender.beginCatchUp(ticket, Tick.of(0)), { ok: false, reason: 'wrong_phase' })
  sender.beginConnect(ticket)
  assert.deepEqual(sender.beginConnect(ticket), { ok: false, reason: 'wrong_phase' })
})

test('handshake gap beyond retention invalidates the session and sets needs_rebuild', () => {
  const { sender } = newSender()
  const ticket = attached(sender)
  sender.beginConnect(ticket)
  const proof = sender.recordHandshake(ticket, history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100), tailLsn: Lsn.of(50) }), Lsn.of(10))
  assert.ok(proof.ok && proof.value.kind === 'gap_beyond_retention')
  assert.equal(sender.state, 'needs_rebuild')
  assert.equal(sender.activeSession(), undefined)
})

test('catch-up: the target is frozen at the handshake committed LSN (frozen target 50 rejects 51)', () => {
  const { sender, ticket } = catchingUp(10, 50)
  assert.deepEqual(sender.recordCatchUpProgress(ticket, Lsn.of(51), Tick.of(1)), { ok: false, reason: 'beyond_frozen_target' })
  assert.ok(sender.recordCatchUpProgress(ticket, Lsn.of(50), Tick.of(1)).ok)
})

test('planted fault catchUpTargetNotFrozen: progress past the target is accepted and moves it (what the flag breaks)', () => {
  const log = new RecoveryLog()
  const sender = new Sender({ replicaId: ReplicaId.of('r1'), endpoint: endpoint('10.0.0.1'), epoch: Epoch.of(1), log, faults: { catchUpTargetNotFrozen: true } })
  const ticket = attached(sender)
  assert.ok(sender.beginConnect(ticket).ok)
  assert.ok(sender.recordHandshake(ticket, history({ headLsn: Lsn.of(60), committedLsn: Lsn.of(50) }), Lsn.of(10)).ok)
  assert.ok(sender.beginCatchUp(ticket, Tick.of(0)).ok)
  assert.ok(sender.recordCatchUpProgress(ticket, Lsn.of(55), Tick.of(1)).ok)
  assert.equal(sender.activeSession()?.targetLsn, Lsn.of(55))
})

test('catch-up: progress must strictly increase', () => {
  const { sender, ticket } = catchingUp(10, 50)
  assert.ok(sender.recordCatchUpProgress(ticket, Lsn.of(20), Tick.of(1)).ok)
  assert.deepEqual(sender.recordCatchUpProgress(ticket, Lsn.of(20), Tick.of(2)), { ok: false, reason: 'progress_regression' })
  assert.deepEqual(sender.recordCatchUpProgress(ticket, Lsn.of(15), Tick.of(2)), { ok: false, reason: 'progress_regression' })
})

test('catch-up: with a progress deadline a tick is required and may not go back', () => {
  const { sender, ticket } = catchingUp(10, 50, { durationTicksMax: 0, entriesMax: 0, progressDeadlineTicks: 5 })
  assert.deepEqual(sender.recordCatchUpProgress(ticket, Lsn.of(20)), { ok: false, reason: 'tick_missing' })
  assert.ok(sender.recordCatchUpProgress(ticket, Lsn.of(20), Tick.of(3)).ok)
  assert.deepEqual(sender.recordCatchUpProgress(ticket, Lsn.of(30), Tick.of(2)), { ok: false, reason: 'tick_regression' })
})

test('catch-up: entries are counted as deltas (70 -> 100 = 30) and a violation escalates to needs_rebuild', () => {
  const { sender, ticket, log } = catchingUp(70, 100, { durationTicksMax: 0, entriesMax: 20, progressDeadlineTicks: 0 })
  assert.ok(sender.recordCatchUpProgress(ticket, Lsn.of(100), Tick.of(1)).ok)
  assert.equal(sender.activeSession()?.budget?.entriesReplayed, 30)
  assert.deepEqual(sender.checkBudget(ticket, Tick.of(1)), { ok: true, value: 'entries_exceeded' })
  assert.equal(sender.state, 'needs_rebuild')
  assert.equal(sender.session?.invalidationReason, 'budget_entries_exceeded')
  assert.ok(log.has('budget_violated', 'entries_exceeded'))
})

test('§12.8 budget duration 5 from tick 0 checked at 10 escalates to needs_rebuild', () => {
  const { sender, ticket } = catchingUp(10, 50, { durationTicksMax: 5, entriesMax: 0, progressDeadlineTicks: 0 })
  assert.deepEqual(sender.checkBudget(ticket, Tick.of(10)), { ok: true, value: 'duration_exceeded' })
  assert.equal(sender.state, 'needs_rebuild')
})

test('§12.8 budget stall 5: progress at 12, check at 18 is progress_stalled', () => {
  const { sender, ticket } = catchingUp(10, 50, { durationTicksMax: 0, entriesMax: 0, progressDeadlineTicks: 5 })
  assert.ok(sender.recordCatchUpProgress(ticket, Lsn.of(20), Tick.of(12)).ok)
  assert.deepEqual(sender.checkBudget(ticket, Tick.of(17)), { ok: true, value: undefined })
  assert.deepEqual(sender.checkBudget(ticket, Tick.of(18)), { ok: true, value: 'progress_stalled' })
})

test('completion gate: catch-up completes only once recovered reaches the frozen target', () => {
  const { sender, ticket, log } = catchingUp(10, 50)
  assert.deepEqual(sender.completeSession(ticket), { ok: false, reason: 'completion_rejected' })
  assert.ok(log.has('completion_rejected'))
  sender.recordCatchUpProgress(ticket, Lsn.of(50), Tick.of(1))
  assert.ok(sender.completeSession(ticket).ok)
  assert.equal(sender.state, 'in_sync')
  assert.equal(sender.session?.phase, 'completed')
})

test('completion gate: zero gap completes from the handshake phase', () => {
  const { sender } = newSender()
  const ticket = attached(sender)
  sender.beginConnect(ticket)
  sender.recordHandshake(ticket, history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100) }), Lsn.of(100))
  assert.ok(sender.completeSession(ticket).ok)
  assert.equal(sender.state, 'in_sync')
})

test('§12.4 truncation gate: a replica ahead (F=105, C=100) completes only after truncation at exactly 100', () => {
  const { sender, log } = newSender()
  const ticket = attached(sender)
  sender.beginConnect(ticket)
  const proof = sender.recordHandshake(ticket, history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100) }), Lsn.of(105))
  assert.ok(proof.ok && proof.value.kind === 'replica_ahead')
  assert.deepEqual(sender.completeSession(ticket), { ok: false, reason: 'completion_rejected' })
  assert.deepEqual(sender.recordTruncation(ticket, Lsn.of(101)), { ok: false, reason: 'truncation_mismatch' })
  assert.deepEqual(sender.recordTruncation(ticket, Lsn.of(99)), { ok: false, reason: 'truncation_mismatch' })
  assert.ok(sender.recordTruncation(ticket, Lsn.of(100)).ok)
  assert.ok(sender.completeSession(ticket).ok)
  assert.equal(sender.state, 'in_sync')
  assert.deepEqual(log.kinds(ReplicaId.of('r1')).filter((kind) => kind === 'completion_rejected' || kind === 'truncation_recorded' || kind === 'session_completed'), [
    'completion_rejected',
    'truncation_recorded',
    'session_completed',
  ])
})

test('truncation: recording a truncation a session does not require is refused', () => {
  const { sender, ticket } = catchingUp(10, 50)
  assert.deepEqual(sender.recordTruncation(ticket, Lsn.of(50)), { ok: false, reason: 'truncation_not_required' })
})

test('rebuild sessions reject the catch-up APIs and catch-up sessions reject the rebuild APIs', () => {
  const { sender } = newSender()
  const rebuildTicket = sender.attachSession(testSessionId(1), 'rebuild')
  assert.ok(rebuildTicket.ok)
  sender.beginConnect(rebuildTicket.value)
  assert.deepEqual(sender.recordHandshake(rebuildTicket.value, history({ headLsn: Lsn.of(5), committedLsn: Lsn.of(5) }), Lsn.of(5)), { ok: false, reason: 'wrong_kind' })
  assert.ok(sender.beginRebuild(rebuildTicket.value, history({ headLsn: Lsn.of(5), committedLsn: Lsn.of(5) })).ok)
  assert.equal(sender.state, 'rebuilding')
  assert.deepEqual(sender.completeSession(rebuildTicket.value), { ok: false, reason: 'completion_rejected' })
  sender.invalidateSession(rebuildTicket.value, 'test', 'needs_rebuild')
  const catchUp = attached(sender, 2)
  sender.beginConnect(catchUp)
  assert.deepEqual(sender.beginRebuild(catchUp, history({ headLsn: Lsn.of(5), committedLsn: Lsn.of(5) })), { ok: false, reason: 'wrong_kind' })
  assert.deepEqual(sender.recordRebuildTransfer(catchUp, Lsn.of(1)), { ok: false, reason: 'wrong_kind' })
})

test('rebuild: a full-base rebuild at committed 0 completes to in_sync', () => {
  const { sender } = newSender()
  const ticket = sender.attachSession(testSessionId(1), 'rebuild')
  assert.ok(ticket.ok)
  sender.beginConnect(ticket.value)
  const decision = sender.beginRebuild(ticket.value, history({ headLsn: Lsn.of(0), committedLsn: Lsn.of(0) }))
  assert.deepEqual(decision, { ok: true, value: { source: 'full_base', targetLsn: 0, reason: 'no_checkpoint' } })
  assert.ok(sender.recordRebuildTransfer(ticket.value, Lsn.of(0)).ok)
  assert.ok(sender.completeRebuild(ticket.value).ok)
  assert.equal(sender.state, 'in_sync')
})

test('degraded: only an in-sync sender degrades', () => {
  const { sender, log } = newSender()
  sender.markDegraded('barrier_timeout')
  assert.equal(sender.state, 'disconnected')
  const ticket = attached(sender)
  sender.beginConnect(ticket)
  sender.recordHandshake(ticket, history({ headLsn: Lsn.of(0), committedLsn: Lsn.of(0) }), Lsn.of(0))
  sender.completeSession(ticket)
  sender.markDegraded('barrier_timeout')
  assert.equal(sender.state, 'degraded')
  assert.ok(log.has('replica_degraded', 'barrier_timeout'))
})

test('supersede invalidates the active session and attaches a new one at the current epoch', () => {
  const { sender, log } = newSender()
  const first = attached(sender, 1)
  const next = sender.supersedeSession(testSessionId(2), 'rebuild', 'assignment_intent')
  assert.ok(next.ok)
  assert.equal(next.value.epoch, 1)
  assert.equal(sender.activeSession()?.kind, 'rebuild')
  assert.deepEqual(sender.beginConnect(first), { ok: false, reason: 'session_mismatch' })
  assert.ok(log.has('session_superseded', 'assignment_intent'))
})
