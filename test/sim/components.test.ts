// Unit tests of the simulator's parts: PRNG, event ordering, node storage,
// reference model.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { InvariantViolation } from '../../src/domain/index.ts'
import { Prng, ReferenceModel, SimNode, chainDigest } from '../../src/sim/index.ts'
import { EventQueue } from '../../src/sim/events.ts'
import type { Message } from '../../src/sim/index.ts'
import { Epoch, Lsn, ReplicaId, Tick } from '../../src/replication/index.ts'

const endpoint = { dataAddress: 'a', controlAddress: 'a', version: 1 }

test('prng: same seed, same sequence; different seeds differ; int stays in range', () => {
  const a = new Prng(42)
  const b = new Prng(42)
  const c = new Prng(43)
  const first = Array.from({ length: 20 }, () => a.nextUint32())
  assert.deepEqual(first, Array.from({ length: 20 }, () => b.nextUint32()))
  assert.notDeepEqual(first, Array.from({ length: 20 }, () => c.nextUint32()))
  fc.assert(
    fc.property(fc.integer(), fc.integer({ min: 1, max: 1000 }), (seed, bound) => {
      const value = new Prng(seed).int(bound)
      return value >= 0 && value < bound
    }),
  )
})

function ship(from: string, to: string, lsn: number): Message {
  const entry = { lsn: Lsn.of(lsn), epoch: Epoch.of(1), value: lsn, digest: 0 }
  return { kind: 'ship', from: ReplicaId.of(from), to: ReplicaId.of(to), epoch: Epoch.of(1), endpointVersion: 1, entry, committedLsn: Lsn.zero }
}

test('events: ordered mode delivers messages (in send order) before timers in a tick', () => {
  const queue = new EventQueue()
  queue.timerAt(Tick.of(5), { kind: 'barrier_timeout', incarnation: 1, barrierId: 1 })
  queue.sendAt(Tick.of(5), ship('n1', 'n2', 1))
  queue.sendAt(Tick.of(5), ship('n1', 'n2', 2))
  queue.sendAt(Tick.of(6), ship('n1', 'n2', 3))
  const due = queue.take(Tick.of(5), 'ordered', new Prng(1))
  assert.deepEqual(due.map((event) => (event.type === 'message' && event.message.kind === 'ship' ? event.message.entry.lsn : 'timer')), [1, 2, 'timer'])
  assert.equal(queue.pendingCount, 1)
})

test('events: shuffled mode permutes same-tick events but keeps each link in FIFO order', () => {
  fc.assert(
    fc.property(fc.integer(), (seed) => {
      const queue = new EventQueue()
      for (let lsn = 1; lsn <= 5; lsn += 1) {
        queue.sendAt(Tick.of(1), ship('n1', 'n2', lsn))
        queue.sendAt(Tick.of(1), ship('n1', 'n3', lsn))
        queue.timerAt(Tick.of(1), { kind: 'barrier_timeout', incarnation: 1, barrierId: lsn })
      }
      const due = queue.take(Tick.of(1), 'shuffled', new Prng(seed))
      assert.equal(due.length, 15)
      for (const to of ['n2', 'n3']) {
        const order = due.flatMap((event) => (event.type === 'message' && event.message.to === to && event.message.kind === 'ship' ? [event.message.entry.lsn] : []))
        assert.deepEqual(order, [1, 2, 3, 4, 5])
      }
    }),
  )
})

test('node: shipped entries must extend the head and chain onto the local prefix', () => {
  const primary = new SimNode(ReplicaId.of('p'), Epoch.of(1), endpoint)
  const replica = new SimNode(ReplicaId.of('r'), Epoch.of(1), endpoint)
  const first = primary.appendLocal(Epoch.of(1), 10)
  const second = primary.appendLocal(Epoch.of(1), 20)
  assert.equal(replica.appendShipped(second, false), 'gap')
  assert.equal(replica.appendShipped(first, false), 'appended')
  assert.equal(replica.appendShipped(first, false), 'duplicate')
  assert.equal(replica.appendShipped({ ...second, value: 99 }, false), 'lineage_mismatch')
  assert.equal(replica.appendShipped(second, false), 'appended')
  assert.equal(replica.digestAt(Lsn.of(2)), primary.digestAt(Lsn.of(2)))
})

test('node: a crash drops the volatile part; restart keeps checkpoint + durable WAL', () => {
  const node = new SimNode(ReplicaId.of('n'), Epoch.of(1), endpoint)
  node.appendLocal(Epoch.of(1), 1)
  node.appendLocal(Epoch.of(1), 2)
  node.flush()
  node.appendLocal(Epoch.of(1), 3)
  node.crash()
  assert.equal(node.headLsn, 2)
  assert.equal(node.durableLsn, 2)
  node.restart(undefined)
  assert.equal(node.running, true)
  assert.equal(node.checkStructure(), undefined)
})

test('node: checkpoint, recycle and image install keep tail <= checkpoint <= durable <= head', () => {
  const node = new SimNode(ReplicaId.of('n'), Epoch.of(1), endpoint)
  for (let value = 1; value <= 6; value += 1) node.appendLocal(Epoch.of(1), value)
  node.flush()
  assert.equal(node.takeCheckpoint(Lsn.of(4)), true)
  assert.equal(node.recycle(Lsn.of(6)), true)
  assert.equal(node.tailLsn, 4, 'recycling stops at the checkpoint')
  assert.equal(node.digestAt(Lsn.of(3)), undefined)
  assert.ok(node.digestAt(Lsn.of(4)) !== undefined)
  assert.throws(() => node.truncate(Lsn.of(3)), InvariantViolation)
  node.installImage({ lsn: Lsn.of(9), digest: 123 })
  assert.deepEqual([node.tailLsn, node.checkpoint.lsn, node.durableLsn, node.headLsn], [9, 9, 9, 9])
  assert.equal(node.checkStructure(), undefined)
})

test('reference: commits verify the writes, the epoch and the digest chain', () => {
  const reference = new ReferenceModel()
  reference.recordWrite(Epoch.of(1), Lsn.of(1), 7)
  const entry = { lsn: Lsn.of(1), epoch: Epoch.of(1), value: 7, digest: chainDigest(0, 1, 1, 7) }
  assert.deepEqual(reference.commit([entry], Epoch.of(1)), [])
  assert.equal(reference.committedLsn, 1)
  reference.recordWrite(Epoch.of(1), Lsn.of(2), 8)
  const old = { lsn: Lsn.of(2), epoch: Epoch.of(1), value: 8, digest: chainDigest(entry.digest, 2, 1, 8) }
  assert.deepEqual(reference.commit([old], Epoch.of(2)).map((problem) => problem.kind), ['uncommitted_revived'])
  const forged = { lsn: Lsn.of(3), epoch: Epoch.of(2), value: 5, digest: 1 }
  assert.deepEqual(reference.commit([forged], Epoch.of(2)).map((problem) => problem.kind), ['unknown_write', 'reference_diverged'])
})
