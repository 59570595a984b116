// The commit tracker against a brute-force reading of the rule: an LSN is
// committed when every LSN up to it is durably held by the mode's number of
// members (the primary counts), and the commit point only moves forward.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { TallyError } from '../../src/domain/index.ts'
import { CommitTracker, durableCopiesNeeded, Lsn, ReplicaId } from '../../src/replication/index.ts'
import type { DurabilityMode } from '../../src/replication/index.ts'

const r = (id: string): ReplicaId => ReplicaId.of(id)

/** The definition, LSN by LSN: how far the contiguous, sufficiently copied prefix reaches. */
function bruteForceCommit(mode: DurabilityMode, primaryDurable: number, acks: readonly number[], committed: number): number {
  const members = acks.length + 1
  const needed = mode === 'sync_all' ? members : mode === 'best_effort' ? 1 : Math.floor(members / 2) + 1
  let reached = committed
  for (let lsn = committed + 1; lsn <= primaryDurable; lsn += 1) {
    const holders = 1 + acks.filter((ack) => ack >= lsn).length
    if (holders < needed) break
    reached = lsn
  }
  return reached
}

test('copies needed per mode: sync_all every member, sync_quorum a true majority, best_effort the primary', () => {
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => durableCopiesNeeded('sync_all', n)), [1, 2, 3, 4, 5])
  assert.deepEqual([3, 4, 5, 6, 7].map((n) => durableCopiesNeeded('sync_quorum', n)), [2, 3, 3, 4, 4])
  assert.deepEqual([1, 3, 5].map((n) => durableCopiesNeeded('best_effort', n)), [1, 1, 1])
})

test('sync_quorum with fewer than 3 members is refused up front', () => {
  assert.throws(() => new CommitTracker({ mode: 'sync_quorum', memberCount: 2, committedLsn: Lsn.zero }), TallyError)
})

test('commit advances over the contiguous prefix only and never past the primary', () => {
  const tracker = new CommitTracker({ mode: 'sync_quorum', memberCount: 3, committedLsn: Lsn.zero })
  tracker.recordPrimaryDurable(Lsn.of(10))
  assert.equal(tracker.advance(), undefined, 'no replica holds anything yet')
  tracker.recordAck(r('b'), Lsn.of(4))
  assert.deepEqual(tracker.advance(), { previousLsn: 0, committedLsn: 4 })
  tracker.recordAck(r('c'), Lsn.of(50))
  assert.deepEqual(tracker.advance(), { previousLsn: 4, committedLsn: 10 }, 'capped at the primary durable LSN')
  tracker.lowerAck(r('c'), Lsn.of(2))
  tracker.lowerAck(r('b'), Lsn.of(2))
  assert.equal(tracker.advance(), undefined, 'a commit never moves back')
  assert.equal(tracker.committedLsn, 10)
})

test('sync_all waits for the slowest member; best_effort needs only the primary', () => {
  const all = new CommitTracker({ mode: 'sync_all', memberCount: 3, committedLsn: Lsn.zero })
  all.recordPrimaryDurable(Lsn.of(5))
  all.recordAck(r('b'), Lsn.of(5))
  assert.equal(all.advance(), undefined, 'one of two replicas is not a sync_all commit')
  all.recordAck(r('c'), Lsn.of(3))
  assert.equal(all.advance()?.committedLsn, 3)
  const best = new CommitTracker({ mode: 'best_effort', memberCount: 3, committedLsn: Lsn.zero })
  best.recordPrimaryDurable(Lsn.of(5))
  assert.equal(best.advance()?.committedLsn, 5)
})

test('property: the tracker agrees with the brute-force definition for every mode and ack pattern', () => {
  fc.assert(
    fc.property(
      fc.constantFrom<DurabilityMode>('sync_all', 'sync_quorum', 'best_effort'),
      fc.integer({ min: 2, max: 6 }),
      fc.array(fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 6, maxLength: 6 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 8, maxLength: 8 }),
      (mode, replicaCount, ackRounds, primaryRounds) => {
        if (mode === 'sync_quorum' && replicaCount + 1 < 3) return
        const tracker = new CommitTracker({ mode, memberCount: replicaCount + 1, committedLsn: Lsn.zero })
        const acks = Array.from({ length: replicaCount }, () => 0)
        let committed = 0
        let primaryDurable = 0
        ackRounds.forEach((round, index) => {
          primaryDurable = Math.max(primaryDurable, primaryRounds[index] ?? 0)
          tracker.recordPrimaryDurable(Lsn.of(primaryDurable))
          for (let replica = 0; replica < replicaCount; replica += 1) {
            acks[replica] = Math.max(acks[replica] ?? 0, round[replica] ?? 0)
            tracker.recordAck(r(`r${replica}`), Lsn.of(round[replica] ?? 0))
          }
          committed = bruteForceCommit(mode, primaryDurable, acks, committed)
          tracker.advance()
          assert.equal(tracker.committedLsn, committed, `${mode} acks=${acks.join(',')} primary=${primaryDurable}`)
        })
      },
    ),
  )
})
