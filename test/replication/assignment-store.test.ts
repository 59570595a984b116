// The versioned assignment (etcd's model): writes only by compare-and-swap
// on the revision read, so a coordinator acting on a late view is refused and
// must re-read; the revision fences stale actors; writes that would move the
// epoch or the acknowledged commit back are coordinator bugs and throw.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { InvariantViolation } from '../../src/domain/index.ts'
import { AssignmentStore, Epoch, Lsn, ReplicaId, commitRecord, fencingTokenCurrent, promotionRecord } from '../../src/replication/index.ts'

const [n1, n2, n3] = ['n1', 'n2', 'n3'].map((id) => ReplicaId.of(id)) as [ReplicaId, ReplicaId, ReplicaId]
const initial = { epoch: Epoch.first, primaryId: n1, committedLsn: Lsn.zero, lineageResets: [] }

test('two coordinators acting on the same read: the first swap wins, the late one is refused and sees the winner', () => {
  const store = new AssignmentStore(initial)
  const late = store.read()
  const restarted = store.read()
  const won = store.compareAndSwap(restarted.revision, promotionRecord(restarted.record, n3))
  assert.deepEqual(won, { ok: true, revision: 2 })
  const refused = store.compareAndSwap(late.revision, promotionRecord(late.record, n2))
  assert.equal(refused.ok, false)
  assert.ok(!refused.ok && refused.current.record.primaryId === n3 && refused.current.record.epoch === Epoch.of(2))
  assert.equal(store.read().record.primaryId, n3, 'the late decision did not overwrite the newer one')
  assert.equal(fencingTokenCurrent(late.revision, store.read()), false)
  assert.equal(fencingTokenCurrent(won.ok ? won.revision : 0, store.read()), true)
})

test('a restarted coordinator re-reads the assignment and acts from it', () => {
  const store = new AssignmentStore(initial)
  const first = store.read()
  assert.ok(store.compareAndSwap(first.revision, commitRecord(first.record, Lsn.of(7))).ok)
  // The coordinator restarts: its in-memory view is gone; the store is all it knows.
  const reread = store.read()
  assert.equal(reread.record.committedLsn, Lsn.of(7))
  const promoted = store.compareAndSwap(reread.revision, promotionRecord(reread.record, n2))
  assert.ok(promoted.ok)
  assert.deepEqual(store.read().record, { epoch: Epoch.of(2), primaryId: n2, committedLsn: Lsn.of(7), lineageResets: [] })
})

test('writes that move the epoch or the acknowledged commit back, or give one epoch two primaries, throw', () => {
  const store = new AssignmentStore({ ...initial, epoch: Epoch.of(3), committedLsn: Lsn.of(5) })
  const { revision, record } = store.read()
  assert.throws(() => store.compareAndSwap(revision, { ...record, epoch: Epoch.of(2) }), InvariantViolation)
  assert.throws(() => store.compareAndSwap(revision, { ...record, committedLsn: Lsn.of(4) }), InvariantViolation)
  assert.throws(() => store.compareAndSwap(revision, { ...record, primaryId: n2 }), InvariantViolation)
  // A desperate promotion declares the loss with a lineage reset: only then may the commit move back.
  assert.ok(store.compareAndSwap(revision, { ...promotionRecord(record, n2), committedLsn: Lsn.of(3), lineageResets: [{ epoch: Epoch.of(4), keptLsn: Lsn.of(3) }] }).ok)
  assert.equal(store.read().revision, revision + 1)
})

test('property: whatever order racing coordinators swap in, each epoch has one primary and revisions count the writes', () => {
  fc.assert(
    fc.property(fc.array(fc.record({ readAge: fc.integer({ min: 0, max: 3 }), primary: fc.constantFrom(n1, n2, n3) }), { maxLength: 40 }), (actions) => {
      const store = new AssignmentStore(initial)
      const reads = [store.read()]
      const primaries = new Map<Epoch, ReplicaId>([[Epoch.first, n1]])
      let writes = 0
      for (const action of actions) {
        const view = reads[Math.max(0, reads.length - 1 - action.readAge)]!
        const result = store.compareAndSwap(view.revision, promotionRecord(view.record, action.primary))
        if (result.ok) {
          writes += 1
          const now = store.read()
          assert.equal(primaries.has(now.record.epoch), false, 'an epoch is assigned once')
          primaries.set(now.record.epoch, now.record.primaryId)
        }
        reads.push(store.read())
      }
      assert.equal(store.read().revision, 1 + writes)
    }),
    { numRuns: 200, seed: 10 },
  )
})

test('membership in the assignment: a change needs a new epoch, is never dropped, and a promotion swaps the roles', () => {
  const membership = { primaryId: n1, replicaIds: [n2], learnerIds: [n3] }
  const store = new AssignmentStore({ ...initial, membership })
  const read = store.read()
  assert.throws(
    () => store.compareAndSwap(read.revision, { ...read.record, membership: { ...membership, replicaIds: [n2, n3], learnerIds: [] } }),
    InvariantViolation,
    'a membership change within an epoch',
  )
  assert.throws(() => store.compareAndSwap(read.revision, { ...initial }), InvariantViolation, 'a membership dropped')
  assert.throws(
    () => store.compareAndSwap(read.revision, { ...read.record, epoch: Epoch.of(2), membership: { ...membership, primaryId: n2, replicaIds: [n1] } }),
    InvariantViolation,
    'a membership naming another primary than the assignment',
  )
  const promoted = promotionRecord(read.record, n2)
  assert.deepEqual(promoted.membership, { primaryId: n2, replicaIds: [n1], learnerIds: [n3] }, 'the replaced primary votes, the learner still learns')
  assert.deepEqual(store.compareAndSwap(read.revision, promoted), { ok: true, revision: 2 })
  const changed = { ...store.read().record, epoch: Epoch.of(3), membership: { primaryId: n2, replicaIds: [n1, n3], learnerIds: [] } }
  assert.deepEqual(store.compareAndSwap(2, changed), { ok: true, revision: 3 })
})
