// The engine's scalars are branded: an Lsn, an Epoch, a Tick, a SessionId
// and a ReplicaId cannot be passed for one another (the `@ts-expect-error`
// lines fail `tsc` the day a brand is lost), their constructors check ranges,
// and session ids cannot collide across primaries or incarnations.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { InvariantViolation } from '../../src/domain/index.ts'
import { Epoch, Lsn, ReplicaId, SessionId, Tick } from '../../src/replication/index.ts'

test('brands: no scalar stands in for another, nor a bare number or string', () => {
  const lsn = Lsn.of(5)
  const epoch = Epoch.of(2)
  const tick = Tick.of(9)
  const replica = ReplicaId.of('n1')
  // @ts-expect-error an Epoch is not an Lsn
  const epochAsLsn: Lsn = epoch
  // @ts-expect-error a Tick is not an Lsn
  const tickAsLsn: Lsn = tick
  // @ts-expect-error an Lsn is not an Epoch
  const lsnAsEpoch: Epoch = lsn
  // @ts-expect-error an Lsn is not a Tick
  const lsnAsTick: Tick = lsn
  // @ts-expect-error a bare number is not an Lsn
  const numberAsLsn: Lsn = 5
  // @ts-expect-error a bare string is not a ReplicaId
  const stringAsReplica: ReplicaId = 'n1'
  // @ts-expect-error a ReplicaId is not a SessionId
  const replicaAsSession: SessionId = replica
  // @ts-expect-error arithmetic leaves the brand: lsn + 1 is a number
  const sumAsLsn: Lsn = lsn + 1
  // Reading is free: a branded value is still a number or a string.
  const asNumber: number = lsn
  const asString: string = replica
  assert.deepEqual(
    [epochAsLsn, tickAsLsn, lsnAsEpoch, lsnAsTick, numberAsLsn, stringAsReplica, replicaAsSession, sumAsLsn, asNumber, asString],
    [2, 9, 5, 5, 5, 'n1', 'n1', 6, 5, 'n1'],
  )
})

test('constructors check their range', () => {
  assert.throws(() => Lsn.of(-1), InvariantViolation)
  assert.throws(() => Lsn.of(1.5), InvariantViolation)
  assert.throws(() => Lsn.after(Lsn.zero, -1), InvariantViolation)
  assert.throws(() => Epoch.of(0), InvariantViolation)
  assert.throws(() => Tick.of(-3), InvariantViolation)
  assert.throws(() => ReplicaId.of(''), InvariantViolation)
  assert.throws(() => ReplicaId.of('x'.repeat(129)), InvariantViolation)
  assert.throws(() => ReplicaId.of('a/b'), InvariantViolation)
})

test('helpers: after, min, max, entriesBetween, next, between', () => {
  assert.equal(Lsn.after(Lsn.of(7)), 8)
  assert.equal(Lsn.after(Lsn.of(7), -7), 0)
  assert.equal(Lsn.min(Lsn.of(4), Lsn.of(2), Lsn.of(9)), 2)
  assert.equal(Lsn.max(Lsn.of(4), Lsn.of(2), Lsn.of(9)), 9)
  assert.equal(Lsn.entriesBetween(Lsn.of(70), Lsn.of(100)), 30)
  assert.equal(Lsn.entriesBetween(Lsn.of(100), Lsn.of(70)), 0)
  assert.equal(Epoch.next(Epoch.first), 2)
  assert.equal(Tick.after(Tick.zero, 3), 3)
  assert.equal(Tick.between(Tick.of(3), Tick.of(10)), 7)
})

test('session ids: distinct (primary, incarnation, epoch, counter) give distinct ids', () => {
  const parts = fc.record({
    primary: fc.constantFrom('n1', 'n2', 'n10', 'n1x', 'e1'),
    incarnation: fc.integer({ min: 1, max: 20 }),
    epoch: fc.integer({ min: 1, max: 20 }),
    counter: fc.integer({ min: 1, max: 2_000_000 }),
  })
  fc.assert(
    fc.property(parts, parts, (a, b) => {
      const idOf = (p: typeof a): SessionId =>
        SessionId.of({ primaryId: ReplicaId.of(p.primary), incarnation: p.incarnation }, Epoch.of(p.epoch), p.counter)
      const same = a.primary === b.primary && a.incarnation === b.incarnation && a.epoch === b.epoch && a.counter === b.counter
      assert.equal(idOf(a) === idOf(b), same)
    }),
  )
})

test('session ids: a restarted primary (new incarnation) never reissues an id its previous run gave out', () => {
  const primaryId = ReplicaId.of('n1')
  const first = new Set(Array.from({ length: 50 }, (_, index) => SessionId.of({ primaryId, incarnation: 1 }, Epoch.first, index + 1)))
  for (let counter = 1; counter <= 50; counter += 1) {
    assert.equal(first.has(SessionId.of({ primaryId, incarnation: 2 }, Epoch.first, counter)), false)
  }
})
