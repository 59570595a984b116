// Planner and executors: every pin acquired by a plan is released on every
// exit path (success, transfer failure, progress rejection, budget violation,
// invalidation mid-flight, missing sender, cancel, exception), and the pin
// failure paths fail closed with the causal reason logged.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cancelPlan, CatchUpExecutor, Epoch, Lsn, planRebuild, planRecovery, RebuildExecutor, ReplicaId, Tick } from '../../src/replication/index.ts'
import type { BaseTransferReport, ConnectReport, RetainedHistory, RecoveryPlan, RebuildPlan, SessionKind, SessionTicket } from '../../src/replication/index.ts'
import { InvariantViolation } from '../../src/domain/index.ts'
import { FakeStorage, FakeTransport, history, registryWith } from './fakes.ts'

function setup(retained: RetainedHistory, kind: SessionKind = 'catchup') {
  const { registry, log } = registryWith(['r1'])
  const storage = new FakeStorage(retained)
  const ticket = registry.attach(ReplicaId.of('r1'), kind)
  assert.ok(ticket.ok)
  return { registry, log, storage, ticket: ticket.value }
}

function catchUpPlan(retained: RetainedHistory, flushed: number) {
  const context = setup(retained)
  const planned = planRecovery({ registry: context.registry, storage: context.storage }, context.ticket, Lsn.of(flushed))
  assert.ok(planned.ok, `plan failed: ${planned.ok ? '' : planned.reason}`)
  return { ...context, plan: planned.plan as RecoveryPlan }
}

function rebuildPlan(retained: RetainedHistory) {
  const context = setup(retained, 'rebuild')
  const planned = planRebuild({ registry: context.registry, storage: context.storage }, context.ticket)
  assert.ok(planned.ok, `plan failed: ${planned.ok ? '' : planned.reason}`)
  return { ...context, plan: planned.plan as RebuildPlan }
}

const h100 = history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100) })

test('catch-up plan pins WAL retention from F; executor completes and releases it', () => {
  const { registry, log, storage, plan } = catchUpPlan(h100, 50)
  assert.equal(plan.kind, 'catch_up')
  assert.equal(storage.held.wal, 1)
  const transport = new FakeTransport(Lsn.of(50))
  const executor = new CatchUpExecutor({ registry, transport, plan, chunkEntriesMax: 10 })
  assert.deepEqual(executor.run(Tick.of(0), 20), { state: 'completed' })
  assert.equal(storage.held.wal, 0)
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'in_sync')
  assert.deepEqual(transport.streamed[0], [50, 60])
  assert.equal(log.kinds(ReplicaId.of('r1')).filter((kind) => kind === 'exec_resources_released').length, 1)
})

test('zero-gap plan pins nothing and completes on the first step', () => {
  const { registry, storage, plan } = catchUpPlan(h100, 100)
  assert.equal(plan.kind, 'zero_gap')
  assert.equal(storage.totalHeld(), 0)
  assert.deepEqual(new CatchUpExecutor({ registry, transport: new FakeTransport(Lsn.of(100)), plan }).run(Tick.of(0), 1), { state: 'completed' })
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'in_sync')
})

test('§12.4 replica ahead: truncate-only plan, no WAL pin; the executor truncates at 100 then completes', () => {
  const { registry, storage, plan } = catchUpPlan(h100, 105)
  assert.equal(plan.kind, 'truncate')
  assert.equal(plan.truncateToLsn, 100)
  assert.equal(storage.totalHeld(), 0)
  const transport = new FakeTransport(Lsn.of(105))
  assert.deepEqual(new CatchUpExecutor({ registry, transport, plan }).run(Tick.of(0), 2), { state: 'completed' })
  assert.equal(transport.truncatedTo, 100)
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'in_sync')
})

test('truncation completes later: the executor polls until the replica answers, and completes only then', () => {
  const { registry, plan } = catchUpPlan(h100, 105)
  const transport = new FakeTransport(Lsn.of(105))
  transport.truncateAnswerPolls = 3
  const executor = new CatchUpExecutor({ registry, transport, plan, truncateTimeoutTicks: 10 })
  executor.start(Tick.of(0))
  for (let tick = 1; tick <= 3; tick += 1) {
    assert.deepEqual(executor.step(Tick.of(tick)), { state: 'running' })
    assert.notEqual(registry.sender(ReplicaId.of('r1'))?.state, 'in_sync', 'not in sync before the answer')
  }
  assert.deepEqual(executor.step(Tick.of(4)), { state: 'completed' })
  assert.equal(transport.truncatedTo, 100)
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'in_sync')
})

test('exit path: a truncation never answered fails the session after truncateTimeoutTicks (truncate_timeout)', () => {
  const { registry, plan } = catchUpPlan(h100, 105)
  const transport = new FakeTransport(Lsn.of(105))
  transport.truncateAnswerPolls = 1_000
  const status = new CatchUpExecutor({ registry, transport, plan, truncateTimeoutTicks: 5 }).run(Tick.of(0), 20)
  assert.deepEqual(status, { state: 'failed', reason: 'truncate_timeout' })
  assert.equal(registry.sender(ReplicaId.of('r1'))?.activeSession(), undefined)
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'disconnected')
})

test('exit path: truncation failure releases and invalidates', () => {
  const { registry, plan } = catchUpPlan(h100, 105)
  const transport = new FakeTransport(Lsn.of(105))
  transport.failTruncate = 'replica_unreachable'
  assert.deepEqual(new CatchUpExecutor({ registry, transport, plan }).run(Tick.of(0), 2), { state: 'failed', reason: 'replica_unreachable' })
  assert.equal(registry.sender(ReplicaId.of('r1'))?.activeSession(), undefined)
})

test('exit path: stream failure releases pins and disconnects', () => {
  const { registry, storage, plan } = catchUpPlan(h100, 50)
  const transport = new FakeTransport(Lsn.of(50))
  transport.failStream = 'link_down'
  const status = new CatchUpExecutor({ registry, transport, plan }).run(Tick.of(0), 5)
  assert.deepEqual(status, { state: 'failed', reason: 'link_down' })
  assert.equal(storage.held.wal, 0)
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'disconnected')
  assert.equal(registry.sender(ReplicaId.of('r1'))?.activeSession(), undefined)
})

test('a durable report beyond the frozen target is impossible: the executor throws and releases its pins', () => {
  // Nothing above the target is shipped during a catch-up, so a streamer
  // reporting more counts what the replica never acknowledged.
  const { registry, storage, plan } = catchUpPlan(h100, 50)
  const transport = new FakeTransport(Lsn.of(50))
  transport.durableLsn = Lsn.of(500)
  const executor = new CatchUpExecutor({ registry, transport, plan })
  assert.throws(() => executor.run(Tick.of(0), 5), (error: unknown) => error instanceof InvariantViolation && /above the frozen target/.test(error.message))
  assert.deepEqual(executor.status, { state: 'failed', reason: 'exception' })
  assert.equal(storage.held.wal, 0)
})

test('exit path (A5): a stalled catch-up violates the progress deadline, escalates to needs_rebuild and releases', () => {
  const { registry, storage, plan, log } = catchUpPlan(h100, 50)
  const transport = new FakeTransport(Lsn.of(50))
  transport.stalled = true
  const executor = new CatchUpExecutor({
    registry,
    transport,
    plan,
    budget: { durationTicksMax: 0, entriesMax: 0, progressDeadlineTicks: 3 },
  })
  assert.deepEqual(executor.run(Tick.of(0), 10), { state: 'failed', reason: 'budget_progress_stalled' })
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'needs_rebuild')
  assert.equal(storage.held.wal, 0)
  const kinds = log.kinds(ReplicaId.of('r1'))
  assert.ok(kinds.indexOf('catchup_begun') < kinds.indexOf('budget_violated'))
  assert.ok(kinds.indexOf('budget_violated') < kinds.indexOf('exec_resources_released'))
})

test('exit path: entries budget (tail chasing) escalates to needs_rebuild', () => {
  const { registry, storage, plan } = catchUpPlan(h100, 50)
  const executor = new CatchUpExecutor({
    registry,
    transport: new FakeTransport(Lsn.of(50)),
    plan,
    chunkEntriesMax: 30,
    budget: { durationTicksMax: 0, entriesMax: 20, progressDeadlineTicks: 0 },
  })
  assert.deepEqual(executor.run(Tick.of(0), 10), { state: 'failed', reason: 'budget_entries_exceeded' })
  assert.equal(storage.held.wal, 0)
})

test('§12.6 epoch bump mid-executor: after step 1 the hook invalidates to epoch 2; execution fails, 0 pins remain', () => {
  const { registry, storage, plan, log } = catchUpPlan(h100, 50)
  const executor = new CatchUpExecutor({
    registry,
    transport: new FakeTransport(Lsn.of(50)),
    plan,
    chunkEntriesMax: 10,
    onStep: (step) => {
      if (step === 1) registry.invalidateEpoch(Epoch.of(2))
    },
  })
  const status = executor.run(Tick.of(0), 10)
  assert.deepEqual(status, { state: 'failed', reason: 'session_invalidated' })
  assert.equal(storage.held.wal, 0)
  assert.equal(executor.stepsTaken, 2)
  assert.ok(log.has('session_invalidated', 'epoch_changed'))
  assert.ok(log.has('exec_resources_released'))
})

test('exit path: endpoint change between steps is detected at the start of the next step', () => {
  const { registry, storage, plan } = catchUpPlan(h100, 50)
  const executor = new CatchUpExecutor({ registry, transport: new FakeTransport(Lsn.of(50)), plan, chunkEntriesMax: 10 })
  executor.start(Tick.of(0))
  assert.deepEqual(executor.step(Tick.of(1)), { state: 'running' })
  registry.sender(ReplicaId.of('r1'))?.updateEndpoint({ dataAddress: 'moved', controlAddress: 'moved', version: 2 })
  assert.deepEqual(executor.step(Tick.of(2)), { state: 'failed', reason: 'session_invalidated' })
  assert.equal(storage.held.wal, 0)
})

test('exit path: sender removed from the assignment', () => {
  const { registry, storage, plan } = catchUpPlan(h100, 50)
  const executor = new CatchUpExecutor({ registry, transport: new FakeTransport(Lsn.of(50)), plan, chunkEntriesMax: 10 })
  executor.start(Tick.of(0))
  registry.reconcile({ epoch: Epoch.of(1), replicas: [] })
  assert.deepEqual(executor.step(Tick.of(1)), { state: 'failed', reason: 'sender_missing' })
  assert.equal(storage.held.wal, 0)
})

test('exit path: cancel releases and invalidates; a second cancel and later steps are no-ops', () => {
  const { registry, storage, plan } = catchUpPlan(h100, 50)
  const executor = new CatchUpExecutor({ registry, transport: new FakeTransport(Lsn.of(50)), plan, chunkEntriesMax: 10 })
  executor.start(Tick.of(0))
  executor.step(Tick.of(1))
  assert.deepEqual(executor.cancel('operator'), { state: 'failed', reason: 'operator' })
  assert.deepEqual(executor.cancel('again'), { state: 'failed', reason: 'operator' })
  assert.deepEqual(executor.step(Tick.of(2)), { state: 'failed', reason: 'operator' })
  assert.equal(storage.held.wal, 0)
  assert.equal(storage.releasesCalled, 1)
  assert.equal(registry.sender(ReplicaId.of('r1'))?.activeSession(), undefined)
})

test('exit path: an exception thrown by an adapter releases the pins and propagates', () => {
  const { registry, storage, plan } = catchUpPlan(h100, 50)
  const transport = new FakeTransport(Lsn.of(50))
  transport.throwOnStream = true
  const executor = new CatchUpExecutor({ registry, transport, plan })
  executor.start(Tick.of(0))
  assert.throws(() => executor.step(Tick.of(1)), /transport exploded/)
  assert.equal(storage.held.wal, 0)
  assert.equal(executor.resourcesReleased, true)
})

test('§12.7 catch-up WAL pin failure: session invalidated (wal_pin_failed), sender disconnected, no pins', () => {
  const { registry, storage, ticket, log } = setup(h100)
  storage.failWal = 'retention_refused'
  const planned = planRecovery({ registry, storage }, ticket, Lsn.of(50))
  assert.deepEqual(planned, { ok: false, reason: 'wal_pin_failed' })
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'disconnected')
  assert.equal(registry.sender(ReplicaId.of('r1'))?.activeSession(), undefined)
  assert.equal(storage.totalHeld(), 0)
  assert.ok(log.has('pin_failed', 'retention_refused'))
  assert.ok(log.has('plan_failed', 'wal_pin_failed'))
})

test('§12.7 snapshot pinned, WAL pin fails: error, no active session, needs_rebuild, 0 snapshot pins', () => {
  const { registry, storage, ticket } = setup(
    history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100), tailLsn: Lsn.of(30), checkpointLsn: Lsn.of(50), checkpointTrusted: true }),
    'rebuild',
  )
  storage.failWal = 'retention_refused'
  const planned = planRebuild({ registry, storage }, ticket)
  assert.deepEqual(planned, { ok: false, reason: 'wal_pin_failed' })
  assert.equal(registry.sender(ReplicaId.of('r1'))?.activeSession(), undefined)
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'needs_rebuild')
  assert.equal(storage.held.snapshot, 0)
  assert.equal(storage.totalHeld(), 0)
})

test('full-base pin failure leaves needs_rebuild', () => {
  const { registry, storage, ticket } = setup(h100, 'rebuild')
  storage.failFullBase = 'no_space'
  assert.deepEqual(planRebuild({ registry, storage }, ticket), { ok: false, reason: 'full_base_pin_failed' })
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'needs_rebuild')
})

test('a full-base plan also pins WAL from its target: live shipping resumes there when the rebuild completes, so a slow transfer cannot let it be recycled', () => {
  const { registry, storage, ticket } = setup(h100, 'rebuild')
  const planned = planRebuild({ registry, storage }, ticket)
  assert.ok(planned.ok)
  assert.equal(planned.plan.decision.source, 'full_base')
  assert.deepEqual(planned.plan.pins.held(), ['full_base', 'wal'])
  assert.equal(storage.held.wal, 1)
})

test('a full-base plan whose WAL pin is refused releases the base and leaves needs_rebuild', () => {
  const { registry, storage, ticket } = setup(h100, 'rebuild')
  storage.failWal = 'pin_limit'
  assert.deepEqual(planRebuild({ registry, storage }, ticket), { ok: false, reason: 'wal_pin_failed' })
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'needs_rebuild')
  assert.equal(storage.totalHeld(), 0)
})

test('planner fails closed: missing sender, wrong session kind', () => {
  const { registry, storage, ticket } = setup(h100)
  assert.deepEqual(planRebuild({ registry, storage }, ticket), { ok: false, reason: 'wrong_kind' })
  assert.deepEqual(planRecovery({ registry, storage }, { ...ticket, replicaId: ReplicaId.of('ghost') }, Lsn.of(1)), { ok: false, reason: 'sender_missing' })
})

test('planner: gap beyond retention returns needs_rebuild without pins', () => {
  const { registry, storage, ticket } = setup(history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100), tailLsn: Lsn.of(80) }))
  assert.deepEqual(planRecovery({ registry, storage }, ticket, Lsn.of(10)), { ok: false, reason: 'needs_rebuild' })
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'needs_rebuild')
  assert.equal(storage.totalHeld(), 0)
})

test('§12.5 trusted checkpoint with unreplayable tail: full base with a FullBasePin and no SnapshotPin; executor succeeds', () => {
  const { registry, storage, plan } = rebuildPlan(history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100), tailLsn: Lsn.of(80), checkpointLsn: Lsn.of(50), checkpointTrusted: true }))
  assert.equal(plan.decision.source, 'full_base')
  assert.deepEqual(plan.pins.held(), ['full_base', 'wal'])
  assert.equal(storage.held.snapshot, 0)
  assert.deepEqual(new RebuildExecutor({ registry, transport: new FakeTransport(Lsn.of(10)), plan }).run(Tick.of(0), 5), { state: 'completed' })
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'in_sync')
  assert.equal(storage.totalHeld(), 0)
})

test('§12.5 with tail 30 the rebuild is snapshot_tail@50: snapshot + WAL pins, transfer then tail replay', () => {
  const { registry, storage, plan, log } = rebuildPlan(history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100), tailLsn: Lsn.of(30), checkpointLsn: Lsn.of(50), checkpointTrusted: true }))
  assert.deepEqual(plan.decision, { source: 'snapshot_tail', snapshotLsn: 50, targetLsn: 100 })
  assert.deepEqual(plan.pins.held().sort(), ['snapshot', 'wal'])
  const transport = new FakeTransport(Lsn.of(10))
  assert.deepEqual(new RebuildExecutor({ registry, transport, plan, chunkEntriesMax: 25 }).run(Tick.of(0), 10), { state: 'completed' })
  assert.deepEqual(transport.streamed, [
    [50, 75],
    [75, 100],
  ])
  assert.equal(storage.totalHeld(), 0)
  const kinds = log.kinds(ReplicaId.of('r1'))
  assert.ok(kinds.indexOf('rebuild_transferred') < kinds.indexOf('rebuild_tail_replayed'))
  assert.ok(kinds.includes('rebuild_completed'))
})

test('rebuild at committed 0 (full base of an empty store) completes', () => {
  const { registry, plan } = rebuildPlan(history({ headLsn: Lsn.of(0), committedLsn: Lsn.of(0) }))
  assert.deepEqual(new RebuildExecutor({ registry, transport: new FakeTransport(Lsn.of(0)), plan }).run(Tick.of(0), 2), { state: 'completed' })
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'in_sync')
})

test('rebuild exit path: transfer failure releases every pin and keeps needs_rebuild', () => {
  const { registry, storage, plan } = rebuildPlan(history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100), tailLsn: Lsn.of(30), checkpointLsn: Lsn.of(50), checkpointTrusted: true }))
  const transport = new FakeTransport(Lsn.of(10))
  transport.failTransfer = 'replica_down'
  assert.deepEqual(new RebuildExecutor({ registry, transport, plan }).run(Tick.of(0), 3), { state: 'failed', reason: 'replica_down' })
  assert.equal(storage.totalHeld(), 0)
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'needs_rebuild')
})

test('rebuild exit path: epoch bump mid-rebuild releases every pin', () => {
  const { registry, storage, plan } = rebuildPlan(history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100), tailLsn: Lsn.of(30), checkpointLsn: Lsn.of(50), checkpointTrusted: true }))
  const executor = new RebuildExecutor({
    registry,
    transport: new FakeTransport(Lsn.of(10)),
    plan,
    chunkEntriesMax: 10,
    onStep: (step) => {
      if (step === 2) registry.invalidateEpoch(Epoch.of(5))
    },
  })
  assert.deepEqual(executor.run(Tick.of(0), 20), { state: 'failed', reason: 'session_invalidated' })
  assert.equal(storage.totalHeld(), 0)
})

test('cancelPlan releases pins and invalidates only the plan\'s own session', () => {
  const { registry, storage, plan, log } = catchUpPlan(h100, 50)
  cancelPlan(registry, plan, 'operator_cancel')
  assert.equal(storage.held.wal, 0)
  assert.equal(registry.sender(ReplicaId.of('r1'))?.activeSession(), undefined)
  assert.ok(log.has('plan_cancelled', 'operator_cancel'))
  cancelPlan(registry, plan, 'again')
  assert.equal(storage.held.wal, 0)
})

/** A replica that installs by reopening: the connection ends, and its handshake answers `reopenedAt` once back (after `awayPolls` polls). */
class ReopeningReplica extends FakeTransport {
  awayPolls = 2
  reopenedAt: Lsn | undefined
  connects = 0
  override transferSnapshot(request: { ticket: SessionTicket; snapshotLsn: Lsn }): BaseTransferReport {
    const report = super.transferSnapshot(request)
    this.reopenedAt ??= request.snapshotLsn
    return report.ok ? { ...report, reopening: true } : report
  }
  connect(): ConnectReport {
    this.connects += 1
    if (this.awayPolls > 0) {
      this.awayPolls -= 1
      return { ok: false, reason: 'replica_reopening' }
    }
    return { ok: true, flushedLsn: this.reopenedAt }
  }
}

const reopenHistory = history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100), tailLsn: Lsn.of(30), checkpointLsn: Lsn.of(50), checkpointTrusted: true })

test('rebuild with a reopening replica: the session and its pins outlive the reopen; the next handshake at the image carries on with the tail', () => {
  const { registry, storage, plan, log } = rebuildPlan(reopenHistory)
  const replica = new ReopeningReplica(Lsn.of(10))
  const executor = new RebuildExecutor({ registry, transport: replica, connector: replica, plan, chunkEntriesMax: 25 })
  assert.deepEqual(executor.start(Tick.of(0)), { state: 'running' })
  assert.deepEqual(executor.step(Tick.of(1)), { state: 'running' })
  const sender = registry.sender(ReplicaId.of('r1'))
  assert.equal(sender?.activeSession()?.rebuild?.phase, 'reopen')
  // Away: nothing is shipped, the pins stay held, the session stays active.
  for (let tick = 2; tick <= 3; tick += 1) assert.deepEqual(executor.step(Tick.of(tick)), { state: 'running' })
  assert.deepEqual(replica.streamed, [])
  assert.deepEqual(plan.pins.held().sort(), ['snapshot', 'wal'])
  assert.equal(sender?.state, 'rebuilding')
  let status = executor.step(Tick.of(4))
  for (let tick = 5; tick < 12 && status.state === 'running'; tick += 1) status = executor.step(Tick.of(tick))
  assert.deepEqual(status, { state: 'completed' })
  assert.deepEqual(replica.streamed, [
    [50, 75],
    [75, 100],
  ])
  assert.equal(sender?.state, 'in_sync')
  assert.equal(storage.totalHeld(), 0)
  assert.ok(log.has('rebuild_awaiting_reopen'))
  assert.ok(log.has('rebuild_reopened'))
})

test('rebuild with a reopening replica that answers above the image: what it holds counts as tail replayed', () => {
  const { registry, plan } = rebuildPlan(reopenHistory)
  const replica = new ReopeningReplica(Lsn.of(10))
  replica.awayPolls = 0
  replica.reopenedAt = Lsn.of(80)
  const executor = new RebuildExecutor({ registry, transport: replica, connector: replica, plan, chunkEntriesMax: 100 })
  assert.deepEqual(executor.run(Tick.of(0), 10), { state: 'completed' })
  assert.deepEqual(replica.streamed, [[80, 100]])
})

test('rebuild with a reopening replica that comes back below the image: needs_rebuild, every pin released', () => {
  const { registry, storage, plan } = rebuildPlan(reopenHistory)
  const replica = new ReopeningReplica(Lsn.of(10))
  replica.reopenedAt = Lsn.of(10)
  const executor = new RebuildExecutor({ registry, transport: replica, connector: replica, plan })
  assert.deepEqual(executor.run(Tick.of(0), 10), { state: 'failed', reason: 'reopened_below_image' })
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'needs_rebuild')
  assert.equal(storage.totalHeld(), 0)
  assert.deepEqual(replica.streamed, [])
})

test('rebuild with a reopening replica that answers above the rebuild target: the session fails disconnected (a catch-up truncates it next)', () => {
  const { registry, storage, plan } = rebuildPlan(reopenHistory)
  const replica = new ReopeningReplica(Lsn.of(10))
  replica.reopenedAt = Lsn.of(101)
  const executor = new RebuildExecutor({ registry, transport: replica, connector: replica, plan })
  assert.deepEqual(executor.run(Tick.of(0), 10), { state: 'failed', reason: 'reopened_beyond_target' })
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'disconnected')
  assert.equal(storage.totalHeld(), 0)
})

test('rebuild with a reopening replica but no connector to hear it again: fails closed into needs_rebuild', () => {
  const { registry, storage, plan } = rebuildPlan(reopenHistory)
  const replica = new ReopeningReplica(Lsn.of(10))
  assert.deepEqual(new RebuildExecutor({ registry, transport: replica, plan }).run(Tick.of(0), 5), { state: 'failed', reason: 'reopen_without_connector' })
  assert.equal(storage.totalHeld(), 0)
})

test('planted rebuildIgnoresReopen: the executor ships the tail over the ended connection and fails into needs_rebuild', () => {
  const { registry, plan } = rebuildPlan(reopenHistory)
  const replica = new ReopeningReplica(Lsn.of(10))
  // The reopen ended the connection: shipping fails until the replica is back.
  replica.failStream = 'connection_closed'
  const executor = new RebuildExecutor({ registry, transport: replica, connector: replica, plan, faults: { rebuildIgnoresReopen: true } })
  assert.deepEqual(executor.run(Tick.of(0), 5), { state: 'failed', reason: 'connection_closed' })
  assert.equal(registry.sender(ReplicaId.of('r1'))?.state, 'needs_rebuild')
})
