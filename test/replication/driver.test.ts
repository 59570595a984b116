// The recovery driver, driven by ticks and fired timers only: it starts the
// right kind of session, connects, plans, steps executors, hands back the
// timers to schedule and the completions and failures, retries after a
// failure, and escalates timeouts and stalled rebuilds to needs_rebuild.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Epoch, Lsn, RecoveryDriver, ReplicaId, Tick, unlimitedBudget } from '../../src/replication/index.ts'
import type { BaseTransferReport, ConnectReport, DriverReady, ReplicaConnector, RetainedHistory } from '../../src/replication/index.ts'
import { FakeStorage, FakeTransport, history, registryWith } from './fakes.ts'

/** Storage, transport and connector in one, as a primary's adapters are. */
class FakeAdapters extends FakeTransport implements ReplicaConnector {
  readonly storage: FakeStorage
  connectFailure: string | undefined
  installNever = false
  /** Polls a connect answers `undefined` (not known yet) before it reports; Infinity: never. */
  connectPolls = 0
  readonly connectRequests: Array<{ sessionId: string; epoch: number }> = []
  readonly #pollsBySession = new Map<string, number>()

  constructor(retained: RetainedHistory, flushed: number) {
    super(Lsn.of(flushed))
    this.storage = new FakeStorage(retained)
  }

  connect(request: Parameters<ReplicaConnector['connect']>[0]): ConnectReport {
    this.connectRequests.push({ sessionId: request.sessionId, epoch: request.epoch })
    const polls = (this.#pollsBySession.get(request.sessionId) ?? 0) + 1
    this.#pollsBySession.set(request.sessionId, polls)
    if (polls <= this.connectPolls) return { ok: true, flushedLsn: undefined }
    return this.connectFailure === undefined ? { ok: true, flushedLsn: this.durableLsn } : { ok: false, reason: this.connectFailure }
  }

  override transferFullBase(request: Parameters<FakeTransport['transferFullBase']>[0]): BaseTransferReport {
    return this.installNever ? { ok: true, installedLsn: undefined } : super.transferFullBase(request)
  }

  retainedHistory(): RetainedHistory {
    return this.storage.retainedHistory()
  }

  pinWalRetention(...args: Parameters<FakeStorage['pinWalRetention']>) {
    return this.storage.pinWalRetention(...args)
  }

  pinSnapshot(...args: Parameters<FakeStorage['pinSnapshot']>) {
    return this.storage.pinSnapshot(...args)
  }

  pinFullBase(...args: Parameters<FakeStorage['pinFullBase']>) {
    return this.storage.pinFullBase(...args)
  }
}

function driverFor(retained: RetainedHistory, flushed: number) {
  const { registry, log } = registryWith(['r1'])
  const adapters = new FakeAdapters(retained, flushed)
  const driver = new RecoveryDriver({
    registry,
    adapters,
    chunkEntriesMax: 10,
    catchUpBudget: unlimitedBudget,
    catchUpTimeoutTicks: 30,
    reservationTimeoutTicks: 40,
    rebuildStallTicks: 3,
    recoveryRetryTicks: 2,
  })
  return { driver, registry, log, adapters }
}

function driverWithConnectTimeout(connectTimeoutTicks: number) {
  const { registry, log } = registryWith(['r1'])
  const adapters = new FakeAdapters(history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100) }), 50)
  const driver = new RecoveryDriver({
    registry,
    adapters,
    chunkEntriesMax: 10,
    catchUpBudget: unlimitedBudget,
    catchUpTimeoutTicks: 30,
    reservationTimeoutTicks: 40,
    rebuildStallTicks: 3,
    recoveryRetryTicks: 2,
    connectTimeoutTicks,
  })
  return { driver, registry, log, adapters }
}

const h100 = history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100) })
const t = (value: number): Tick => Tick.of(value)

function ticksUntil(driver: RecoveryDriver, from: number, done: (ready: DriverReady) => boolean, ticksMax = 50): { ready: DriverReady; at: number } {
  for (let at = from; at < from + ticksMax; at += 1) {
    const ready = driver.tick(t(at))
    if (done(ready)) return { ready, at }
  }
  throw new Error('the driver did not get there')
}

test('a new replica at the committed LSN: a bootstrap session completes with nothing to ship', () => {
  const { driver, registry, log } = driverFor(h100, 100)
  assert.deepEqual(driver.tick(t(1)), { timers: [], completed: [], failed: [], ignored: [] }, 'zero gap: no deadlines')
  assert.ok(log.has('session_attached'))
  assert.deepEqual(driver.tick(t(2)).completed, [{ replicaId: 'r1', kind: 'bootstrap', syncedToLsn: 100 }])
  assert.equal(registry.senders()[0]?.state, 'in_sync')
  assert.deepEqual(driver.tick(t(3)), { timers: [], completed: [], failed: [], ignored: [] }, 'an in-sync replica needs nothing')
})

test('a catch-up asks for its two deadlines, then completes and releases its pin', () => {
  const { driver, adapters } = driverFor(h100, 50)
  const first = driver.tick(t(1))
  assert.deepEqual(
    first.timers.map((timer) => [timer.kind, timer.at]),
    [
      ['catchup_timeout', 31],
      ['reservation_timeout', 41],
    ],
  )
  const { ready } = ticksUntil(driver, 2, (next) => next.completed.length > 0)
  assert.equal(ready.completed[0]?.syncedToLsn, 100)
  assert.equal(adapters.storage.totalHeld(), 0)
})

test('a fired deadline cancels a running catch-up into needs_rebuild; the next session is a rebuild', () => {
  const { driver, registry, adapters } = driverFor(h100, 50)
  adapters.stalled = true
  const [catchUpTimer] = driver.tick(t(1)).timers
  assert.ok(catchUpTimer !== undefined)
  const ready = driver.timerFired(catchUpTimer, catchUpTimer.at)
  assert.deepEqual(ready.failed, [{ replicaId: 'r1', kind: 'bootstrap', reason: 'catchup_timeout' }])
  assert.equal(registry.senders()[0]?.state, 'needs_rebuild')
  assert.equal(adapters.storage.totalHeld(), 0)
  assert.deepEqual(driver.timerFired(catchUpTimer, catchUpTimer.at).ignored, [catchUpTimer], 'a second firing finds the session ended')
  adapters.stalled = false
  const { ready: rebuilt } = ticksUntil(driver, catchUpTimer.at + 2, (next) => next.completed.length > 0)
  assert.equal(rebuilt.completed[0]?.kind, 'rebuild')
})

test('a failed connect waits recoveryRetryTicks before the next attempt', () => {
  const { driver, log, adapters } = driverFor(h100, 50)
  adapters.connectFailure = 'link_down'
  driver.tick(t(1))
  assert.ok(log.has('session_invalidated', 'connect_link_down'))
  const attachedAfterFirst = log.kinds().filter((kind) => kind === 'session_attached').length
  driver.tick(t(2))
  assert.equal(log.kinds().filter((kind) => kind === 'session_attached').length, attachedAfterFirst, 'no attempt inside the retry window')
  adapters.connectFailure = undefined
  const { at } = ticksUntil(driver, 3, (next) => next.completed.length > 0)
  assert.ok(at >= 3)
})

test('after an endpoint change the next session is a reassign; once in sync, later ones are catch-ups', () => {
  const { driver, registry } = driverFor(h100, 100)
  const sender = registry.senders()[0]
  assert.ok(sender !== undefined)
  assert.equal(ticksUntil(driver, 1, (next) => next.completed.length > 0).ready.completed[0]?.kind, 'bootstrap')
  driver.requestReassign(sender.replicaId)
  sender.markDegraded('test')
  assert.equal(ticksUntil(driver, 10, (next) => next.completed.length > 0).ready.completed[0]?.kind, 'reassign')
  sender.markDegraded('test')
  assert.equal(ticksUntil(driver, 20, (next) => next.completed.length > 0).ready.completed[0]?.kind, 'catchup')
})

test('a rebuild that stops progressing is cancelled as rebuild_stalled', () => {
  const { driver, registry, adapters } = driverFor(history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100), tailLsn: Lsn.of(60) }), 10)
  adapters.installNever = true
  driver.tick(t(1))
  assert.equal(registry.senders()[0]?.state, 'needs_rebuild', 'beyond retention: the handshake asks for a rebuild')
  const { ready } = ticksUntil(driver, 2, (next) => next.failed.length > 0)
  assert.deepEqual(ready.failed, [{ replicaId: 'r1', kind: 'rebuild', reason: 'rebuild_stalled' }])
  assert.equal(adapters.storage.totalHeld(), 0)
})

test('a connect that answers later: the driver polls it once per tick under the same session, and plans only once it has the answer', () => {
  const { driver, registry, adapters } = driverFor(h100, 50)
  adapters.connectPolls = 2
  assert.deepEqual(driver.tick(t(1)).timers, [], 'no plan yet, so no deadlines')
  assert.equal(registry.senders()[0]?.state, 'disconnected')
  assert.deepEqual(driver.tick(t(2)).timers, [])
  const answered = driver.tick(t(3))
  assert.deepEqual(answered.timers.map((timer) => timer.kind), ['catchup_timeout', 'reservation_timeout'])
  assert.equal(new Set(adapters.connectRequests.map((request) => request.sessionId)).size, 1, 'one session, polled three times')
  const { ready } = ticksUntil(driver, 4, (next) => next.completed.length > 0)
  assert.equal(ready.completed[0]?.syncedToLsn, 100)
})

test('a connect still pending when the epoch changes is abandoned: its late answer belongs to an invalidated session, and a new session connects at the new epoch', () => {
  const { driver, registry, adapters } = driverFor(h100, 50)
  adapters.connectPolls = 3
  driver.tick(t(1))
  const first = adapters.connectRequests[0]
  assert.ok(first !== undefined)
  registry.invalidateEpoch(Epoch.of(2))
  driver.tick(t(2))
  const later = adapters.connectRequests.filter((request) => request.sessionId !== first.sessionId)
  assert.ok(later.length > 0 && later.every((request) => request.epoch === 2), 'the next connect is a new session at epoch 2')
  assert.equal(adapters.connectRequests.filter((request) => request.sessionId === first.sessionId).length, 1, 'the old session is never polled again')
  const { ready } = ticksUntil(driver, 3, (next) => next.completed.length > 0)
  assert.equal(ready.completed[0]?.syncedToLsn, 100)
})

test('a connect that never answers times out: the session is invalidated (connect_timeout) and retried after recoveryRetryTicks', () => {
  const { driver, log, adapters } = driverWithConnectTimeout(3)
  adapters.connectPolls = Number.POSITIVE_INFINITY
  for (let at = 1; at <= 4; at += 1) driver.tick(t(at))
  assert.equal(log.has('session_invalidated', 'connect_timeout'), false, 'inside the timeout it keeps polling')
  driver.tick(t(5))
  assert.equal(log.has('session_invalidated', 'connect_timeout'), true)
  adapters.connectPolls = 0
  const { ready, at } = ticksUntil(driver, 6, (next) => next.completed.length > 0)
  assert.ok(at >= 7, 'waits out the retry window')
  assert.equal(ready.completed.length, 1)
})

/** A replica that installs by reopening: down (connect refused) for `awayPolls` polls after the install, then at the image. */
class ReopeningAdapters extends FakeAdapters {
  awayPolls = 0
  reopened = false
  override transferFullBase(request: Parameters<FakeTransport['transferFullBase']>[0]): BaseTransferReport {
    const report = super.transferFullBase(request)
    if (report.ok && report.installedLsn !== undefined) this.reopened = true
    return report.ok ? { ...report, reopening: true } : report
  }
  override connect(request: Parameters<ReplicaConnector['connect']>[0]): ConnectReport {
    if (this.reopened && this.awayPolls > 0) {
      this.awayPolls -= 1
      return { ok: false, reason: 'connection_refused' }
    }
    return super.connect(request)
  }
}

function reopeningDriver(awayPolls: number) {
  const { registry, log } = registryWith(['r1'])
  const adapters = new ReopeningAdapters(history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100), tailLsn: Lsn.of(60) }), 10)
  adapters.awayPolls = awayPolls
  const driver = new RecoveryDriver({ registry, adapters, chunkEntriesMax: 10, catchUpBudget: unlimitedBudget, catchUpTimeoutTicks: 30, reservationTimeoutTicks: 40, rebuildStallTicks: 3, recoveryRetryTicks: 2 })
  return { driver, registry, log, adapters }
}

test('a rebuild whose replica reopens completes in the same session once the replica is back at the image, with one transfer', () => {
  const { driver, registry, log, adapters } = reopeningDriver(2)
  const { ready } = ticksUntil(driver, 1, (next) => next.completed.length > 0 || next.failed.length > 0)
  assert.deepEqual(ready.completed, [{ replicaId: 'r1', kind: 'rebuild', syncedToLsn: 100 }])
  assert.equal(registry.senders()[0]?.state, 'in_sync')
  assert.equal(log.events().filter((event) => event.kind === 'rebuild_transferred').length, 1, 'the image was sent once')
  assert.ok(log.has('rebuild_reopened'))
  assert.equal(adapters.storage.totalHeld(), 0)
})

test('a reopen that takes longer than rebuildStallTicks is cancelled as rebuild_stalled, and the next rebuild finds the replica back', () => {
  const { driver, registry, adapters } = reopeningDriver(6)
  const { ready, at } = ticksUntil(driver, 1, (next) => next.failed.length > 0)
  assert.deepEqual(ready.failed, [{ replicaId: 'r1', kind: 'rebuild', reason: 'rebuild_stalled' }])
  assert.equal(adapters.storage.totalHeld(), 0)
  const { ready: again } = ticksUntil(driver, at + 1, (next) => next.completed.length > 0)
  assert.deepEqual(again.completed, [{ replicaId: 'r1', kind: 'rebuild', syncedToLsn: 100 }])
  assert.equal(registry.senders()[0]?.state, 'in_sync')
})

test('a replica removed from the assignment while its catch-up runs: the driver cancels that executor and releases its pins', () => {
  const { driver, registry, adapters } = driverFor(h100, 50)
  adapters.stalled = true
  driver.tick(t(1))
  assert.ok(driver.executorSessionId(ReplicaId.of('r1')) !== undefined, 'the catch-up runs')
  assert.ok(adapters.storage.totalHeld() > 0, 'and holds its pin')
  // The next assignment names no replica: the registry stops r1's sender and forgets it.
  assert.deepEqual(registry.reconcile({ epoch: Epoch.of(2), replicas: [] }).stopped, ['r1'])
  const ready = driver.tick(t(2))
  assert.deepEqual(ready.failed, [{ replicaId: 'r1', kind: 'bootstrap', reason: 'removed_from_assignment' }])
  assert.equal(driver.executorSessionId(ReplicaId.of('r1')), undefined)
  assert.equal(adapters.storage.totalHeld(), 0, 'no pin outlives the removal')
  assert.deepEqual(driver.tick(t(3)), { timers: [], completed: [], failed: [], ignored: [] }, 'nothing more for a replica that left')
})
