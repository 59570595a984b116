import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvariantViolation } from '../../src/domain/index.ts'
import { classifyHandshake, Epoch, Lsn, RecoveryLog, Registry, ReplicaId, Tick } from '../../src/replication/index.ts'
import { endpoint, history, testSessionId, testSessionScope } from './fakes.ts'

function registry(): { registry: Registry; log: RecoveryLog } {
  const log = new RecoveryLog()
  return { registry: new Registry({ log, sessionScope: testSessionScope }), log }
}

test('reconcile: creates senders by replica id and attaches requested sessions with increasing ids', () => {
  const { registry: reg } = registry()
  const result = reg.reconcile({
    epoch: Epoch.of(1),
    replicas: [
      { replicaId: ReplicaId.of('r1'), endpoint: endpoint('a'), recovery: 'bootstrap' },
      { replicaId: ReplicaId.of('r2'), endpoint: endpoint('b'), recovery: 'bootstrap' },
    ],
  })
  assert.deepEqual(result.tickets.map((ticket) => [ticket.replicaId, ticket.sessionId]), [
    ['r1', testSessionId(1)],
    ['r2', testSessionId(2)],
  ])
  assert.deepEqual(reg.senders().map((sender) => sender.replicaId), ['r1', 'r2'])
})

test('§12.1 reconcile with a changed address at the same epoch keeps the same sender object', () => {
  const { registry: reg } = registry()
  reg.reconcile({ epoch: Epoch.of(1), replicas: [{ replicaId: ReplicaId.of('replica-1'), endpoint: endpoint('10.0.0.1', 1), recovery: 'catchup' }] })
  const before = reg.sender(ReplicaId.of('replica-1'))
  const firstSession = before?.activeSession()?.id
  assert.ok(before !== undefined)
  const ticket = before.activeSession()?.ticket()
  assert.ok(ticket !== undefined)
  before.beginConnect(ticket)
  const result = reg.reconcile({ epoch: Epoch.of(1), replicas: [{ replicaId: ReplicaId.of('replica-1'), endpoint: endpoint('10.0.0.2', 2), recovery: 'reassign' }] })
  const after = reg.sender(ReplicaId.of('replica-1'))
  assert.equal(after, before)
  assert.equal(after?.endpoint.dataAddress, '10.0.0.2')
  assert.equal(before.session?.kind, 'reassign')
  assert.notEqual(result.tickets[0]?.sessionId, firstSession)
  assert.ok(reg.log.has('session_invalidated', 'endpoint_changed'))
})

test('reconcile: an assignment older than the sender epoch is refused (fail closed)', () => {
  const { registry: reg, log } = registry()
  reg.reconcile({ epoch: Epoch.of(3), replicas: [{ replicaId: ReplicaId.of('r1'), endpoint: endpoint('a') }] })
  const result = reg.reconcile({ epoch: Epoch.of(2), replicas: [{ replicaId: ReplicaId.of('r1'), endpoint: endpoint('z', 9), recovery: 'catchup' }] })
  assert.deepEqual(result.refused, ['r1'])
  assert.equal(reg.sender(ReplicaId.of('r1'))?.endpoint.dataAddress, 'a')
  assert.equal(reg.sender(ReplicaId.of('r1'))?.activeSession(), undefined)
  assert.ok(log.has('stale_assignment'))
})

test('reconcile: an assignment naming an older endpoint version than the sender holds is refused, at the same epoch too (endpoint versions never go back)', () => {
  const { registry: reg, log } = registry()
  reg.reconcile({ epoch: Epoch.of(3), replicas: [{ replicaId: ReplicaId.of('r1'), endpoint: endpoint('b', 2) }] })
  // A membership update reordered behind a newer one: same epoch, the address the member left.
  const result = reg.reconcile({ epoch: Epoch.of(3), replicas: [{ replicaId: ReplicaId.of('r1'), endpoint: endpoint('a', 1), recovery: 'reassign' }] })
  assert.deepEqual(result.refused, ['r1'])
  assert.equal(reg.sender(ReplicaId.of('r1'))?.endpoint.dataAddress, 'b')
  assert.equal(reg.sender(ReplicaId.of('r1'))?.activeSession(), undefined)
  assert.ok(log.has('stale_assignment', 'endpoint_version_older_than_sender'))
})

test('reconcile: replicas missing from the assignment are stopped and removed', () => {
  const { registry: reg } = registry()
  reg.reconcile({ epoch: Epoch.of(1), replicas: [{ replicaId: ReplicaId.of('r1'), endpoint: endpoint('a') }, { replicaId: ReplicaId.of('r2'), endpoint: endpoint('b'), recovery: 'catchup' }] })
  const r2 = reg.sender(ReplicaId.of('r2'))
  const result = reg.reconcile({ epoch: Epoch.of(1), replicas: [{ replicaId: ReplicaId.of('r1'), endpoint: endpoint('a') }] })
  assert.deepEqual(result.stopped, ['r2'])
  assert.equal(reg.sender(ReplicaId.of('r2')), undefined)
  assert.equal(r2?.stopped, true)
  assert.equal(r2?.activeSession(), undefined)
})

test('reconcile: a replica assigned twice is an invariant violation', () => {
  const { registry: reg } = registry()
  assert.throws(
    () => reg.reconcile({ epoch: Epoch.of(1), replicas: [{ replicaId: ReplicaId.of('r1'), endpoint: endpoint('a') }, { replicaId: ReplicaId.of('r1'), endpoint: endpoint('b') }] }),
    InvariantViolation,
  )
})

test('invalidateEpoch invalidates every session older than the epoch', () => {
  const { registry: reg } = registry()
  reg.reconcile({
    epoch: Epoch.of(1),
    replicas: [
      { replicaId: ReplicaId.of('r1'), endpoint: endpoint('a'), recovery: 'catchup' },
      { replicaId: ReplicaId.of('r2'), endpoint: endpoint('b'), recovery: 'catchup' },
      { replicaId: ReplicaId.of('r3'), endpoint: endpoint('c') },
    ],
  })
  assert.equal(reg.invalidateEpoch(Epoch.of(2)), 2)
  for (const sender of reg.senders()) {
    assert.equal(sender.activeSession(), undefined)
    assert.equal(sender.epoch, 2)
  }
})

test('§12.3 three outcomes: committed 100, retention from 50, replicas at 100, 70, 10', () => {
  const { registry: reg } = registry()
  const retained = history({ headLsn: Lsn.of(100), committedLsn: Lsn.of(100), tailLsn: Lsn.of(49) })
  reg.reconcile({
    epoch: Epoch.of(1),
    replicas: ['r1', 'r2', 'r3'].map((id, index) => ({ replicaId: ReplicaId.of(id), endpoint: endpoint(`10.0.0.${index}`), recovery: 'catchup' as const })),
  })
  const flushed = new Map([
    ['r1', Lsn.of(100)],
    ['r2', Lsn.of(70)],
    ['r3', Lsn.of(10)],
  ])
  for (const sender of reg.senders()) {
    const ticket = sender.activeSession()?.ticket()
    assert.ok(ticket !== undefined)
    sender.beginConnect(ticket)
    const proof = sender.recordHandshake(ticket, retained, flushed.get(sender.replicaId) ?? Lsn.zero)
    assert.ok(proof.ok)
    if (proof.value.kind === 'zero_gap') sender.completeSession(ticket)
    if (proof.value.kind === 'gap_within_retention') {
      sender.beginCatchUp(ticket, Tick.of(0))
      sender.recordCatchUpProgress(ticket, Lsn.of(100), Tick.of(1))
      sender.completeSession(ticket)
    }
  }
  assert.deepEqual(reg.status().map((status) => status.state), ['in_sync', 'in_sync', 'needs_rebuild'])
  assert.deepEqual(['r1', 'r2', 'r3'].map((id) => classifyHandshake(retained, flushed.get(id) ?? Lsn.zero)), ['zero_gap', 'catch_up', 'needs_rebuild'])
  assert.equal(reg.inSyncCount(), 2)
})
