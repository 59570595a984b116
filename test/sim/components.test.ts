// Unit tests of the simulator's parts: PRNG, event ordering, node storage,
// reference model.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { InvariantViolation } from '../../src/domain/index.ts'
import { Prng, ReferenceModel, SimNode, chainDigest } from '../../src/sim/index.ts'
import { EventQueue } from '../../src/sim/events.ts'
import type { Message } from '../../src/sim/index.ts'

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
  return { kind: 'ship', from, to, epoch: 1, endpointVersion: 1, entry: { lsn, epoch: 1, value: lsn, digest: 0 }, committedLsn: 0 }
}

test('events: ordered mode delivers messages (in send order) before timers in a tick', () => {
  const queue = new EventQueue()
  queue.timerAt(5, { kind: 'barrier_timeout', incarnation: 1, barrierId: 1 })
  queue.sendAt(5, ship('n1', 'n2', 1))
  queue.sendAt(5, ship('n1', 'n2', 2))
  queue.sendAt(6, ship('n1', 'n2', 3))
  const due = queue.take(5, 'ordered', new Prng(1))
  assert.deepEqual(due.map((event) => (event.type === 'message' && event.message.kind === 'ship' ? event.message.entry.lsn : 'timer')), [1, 2, 'timer'])
  assert.equal(queue.pendingCount, 1)
})

test('events: shuffled mode permutes same-tick events but keeps each link in FIFO order', () => {
  fc.assert(
    fc.property(fc.integer(), (seed) => {
      const queue = new EventQueue()
      for (let lsn = 1; lsn <= 5; lsn += 1) {
        queue.sendAt(1, ship('n1', 'n2', lsn))
        queue.sendAt(1, ship('n1', 'n3', lsn))
        queue.timerAt(1, { kind: 'barrier_timeout', incarnation: 1, barrierId: lsn })
      }
      const due = queue.take(1, 'shuffled', new Prng(seed))
      assert.equal(due.length, 15)
      for (const to of ['n2', 'n3']) {
        const order = due.flatMap((event) => (event.type === 'message' && event.message.to === to && event.message.kind === 'ship' ? [event.message.entry.lsn] : []))
        assert.deepEqual(order, [1, 2, 3, 4, 5])
      }
    }),
  )
})

test('node: shipped entries must extend the head and chain onto the local prefix', () => {
  const primary = new SimNode('p', 1, endpoint)
  const replica = new SimNode('r', 1, endpoint)
  const first = primary.appendLocal(1, 10)
  const second = primary.appendLocal(1, 20)
  assert.equal(replica.appendShipped(second, false), 'gap')
  assert.equal(replica.appendShipped(first, false), 'appended')
  assert.equal(replica.appendShipped(first, false), 'duplicate')
  assert.equal(replica.appendShipped({ ...second, value: 99 }, false), 'lineage_mismatch')
  assert.equal(replica.appendShipped(second, false), 'appended')
  assert.equal(replica.digestAt(2), primary.digestAt(2))
})

test('node: a crash drops the volatile part; restart keeps checkpoint + durable WAL', () => {
  const node = new SimNode('n', 1, endpoint)
  node.appendLocal(1, 1)
  node.appendLocal(1, 2)
  node.flush()
  node.appendLocal(1, 3)
  node.crash()
  assert.equal(node.headLsn, 2)
  assert.equal(node.durableLsn, 2)
  node.restart(undefined)
  assert.equal(node.running, true)
  assert.equal(node.checkStructure(), undefined)
})

test('node: checkpoint, recycle and image install keep tail <= checkpoint <= durable <= head', () => {
  const node = new SimNode('n', 1, endpoint)
  for (let value = 1; value <= 6; value += 1) node.appendLocal(1, value)
  node.flush()
  assert.equal(node.takeCheckpoint(4), true)
  assert.equal(node.recycle(6), true)
  assert.equal(node.tailLsn, 4, 'recycling stops at the checkpoint')
  assert.equal(node.digestAt(3), undefined)
  assert.ok(node.digestAt(4) !== undefined)
  assert.throws(() => node.truncate(3), InvariantViolation)
  node.installImage({ lsn: 9, digest: 123 })
  assert.deepEqual([node.tailLsn, node.checkpoint.lsn, node.durableLsn, node.headLsn], [9, 9, 9, 9])
  assert.equal(node.checkStructure(), undefined)
})

test('reference: commits verify the writes, the epoch and the digest chain', () => {
  const reference = new ReferenceModel()
  reference.recordWrite(1, 1, 7)
  const entry = { lsn: 1, epoch: 1, value: 7, digest: chainDigest(0, 1, 1, 7) }
  assert.deepEqual(reference.commit([entry], 1), [])
  assert.equal(reference.committedLsn, 1)
  reference.recordWrite(1, 2, 8)
  const old = { lsn: 2, epoch: 1, value: 8, digest: chainDigest(entry.digest, 2, 1, 8) }
  assert.deepEqual(reference.commit([old], 2).map((problem) => problem.kind), ['uncommitted_revived'])
  const forged = { lsn: 3, epoch: 2, value: 5, digest: 1 }
  assert.deepEqual(reference.commit([forged], 2).map((problem) => problem.kind), ['unknown_write', 'reference_diverged'])
})
