import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvariantViolation } from '../../src/domain/index.ts'
import { Epoch, isSessionPhaseTransitionAllowed, Lsn, ReplicaId, SessionId, Session, sessionPhaseTransitions } from '../../src/replication/index.ts'
import type { SessionPhase } from '../../src/replication/index.ts'
import { endpoint, testSessionId } from './fakes.ts'

const phases: SessionPhase[] = ['init', 'connecting', 'handshake', 'catchup', 'completed', 'invalidated']
const allowed: Record<SessionPhase, SessionPhase[]> = {
  init: ['connecting', 'invalidated'],
  connecting: ['handshake', 'invalidated'],
  handshake: ['catchup', 'completed', 'invalidated'],
  catchup: ['completed', 'invalidated'],
  completed: [],
  invalidated: [],
}

function sessionAt(phase: SessionPhase): Session {
  const session = new Session({ id: testSessionId(1), replicaId: ReplicaId.of('r1'), kind: 'catchup', epoch: Epoch.of(1), endpoint: endpoint('a') })
  const path: Record<SessionPhase, SessionPhase[]> = {
    init: [],
    connecting: ['connecting'],
    handshake: ['connecting', 'handshake'],
    catchup: ['connecting', 'handshake', 'catchup'],
    completed: ['connecting', 'handshake', 'completed'],
    invalidated: ['invalidated'],
  }
  for (const step of path[phase]) session.advance(step)
  return session
}

test('session phase table is exactly the documented one', () => {
  assert.deepEqual(sessionPhaseTransitions, allowed)
})

for (const from of phases) {
  for (const to of phases) {
    const ok = allowed[from].includes(to)
    test(`session phase ${from} -> ${to} is ${ok ? 'allowed' : 'refused with InvariantViolation'}`, () => {
      assert.equal(isSessionPhaseTransitionAllowed(from, to), ok)
      const session = sessionAt(from)
      if (ok) {
        session.advance(to)
        assert.equal(session.phase, to)
      } else {
        assert.throws(() => session.advance(to), InvariantViolation)
        assert.equal(session.phase, from)
      }
    })
  }
}

test('completed and invalidated sessions are not active', () => {
  assert.equal(sessionAt('completed').isActive(), false)
  assert.equal(sessionAt('invalidated').isActive(), false)
  assert.equal(sessionAt('catchup').isActive(), true)
})

test('the session range is frozen once set', () => {
  const session = sessionAt('handshake')
  session.setRange(Lsn.of(10), Lsn.of(50))
  assert.throws(() => session.setRange(Lsn.of(10), Lsn.of(60)), InvariantViolation)
  assert.equal(session.targetLsn, 50)
})

test('a rebuild session owns a rebuild state machine and can never complete through the catch-up gate', () => {
  const session = new Session({ id: testSessionId(2), replicaId: ReplicaId.of('r1'), kind: 'rebuild', epoch: Epoch.of(1), endpoint: endpoint('a') })
  assert.ok(session.rebuild !== undefined)
  session.advance('connecting')
  session.advance('handshake')
  session.setRange(Lsn.of(0), Lsn.of(0))
  assert.equal(session.canComplete(), false)
})

test('session ids name primary, incarnation, epoch and a positive counter', () => {
  const scope = { primaryId: ReplicaId.of('n2'), incarnation: 3 }
  assert.equal(SessionId.of(scope, Epoch.of(4), 7), 'n2/3/e4/7')
  assert.throws(() => SessionId.of(scope, Epoch.of(4), 0), InvariantViolation)
  assert.throws(() => SessionId.of({ ...scope, incarnation: 0 }, Epoch.of(4), 1), InvariantViolation)
  assert.throws(() => ReplicaId.of('a/b'), InvariantViolation)
})
