import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvariantViolation } from '../../src/domain/index.ts'
import { Session, isSessionPhaseTransitionAllowed, sessionPhaseTransitions } from '../../src/replication/index.ts'
import type { SessionPhase } from '../../src/replication/index.ts'
import { endpoint } from './fakes.ts'

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
  const session = new Session({ id: 1, replicaId: 'r1', kind: 'catchup', epoch: 1, endpoint: endpoint('a') })
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
  session.setRange(10, 50)
  assert.throws(() => session.setRange(10, 60), InvariantViolation)
  assert.equal(session.targetLsn, 50)
})

test('a rebuild session owns a rebuild state machine and can never complete through the catch-up gate', () => {
  const session = new Session({ id: 2, replicaId: 'r1', kind: 'rebuild', epoch: 1, endpoint: endpoint('a') })
  assert.ok(session.rebuild !== undefined)
  session.advance('connecting')
  session.advance('handshake')
  session.setRange(0, 0)
  assert.equal(session.canComplete(), false)
})

test('session ids must be positive integers', () => {
  assert.throws(() => new Session({ id: 0, replicaId: 'r1', kind: 'catchup', epoch: 1, endpoint: endpoint('a') }), InvariantViolation)
})
