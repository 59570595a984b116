/** The values kept in etcd: one canonical form, strict decoding (no etcd needed). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ControlPlaneDataError, decodeAssignment, encodeAssignment, parseClusterUrl } from '../../src/cluster/index.ts'
import { Epoch, Lsn, ReplicaId } from '../../src/replication/index.ts'
import { n1, n2, n3, proposal } from './helpers.ts'

test('an assignment has one canonical form; its epoch is the revision it was read at', () => {
  const a = encodeAssignment(proposal(n1, [n3, n2], 4))
  const b = encodeAssignment(proposal(n1, [n2, n3], 4))
  assert.equal(a, b, 'replicas are sorted')
  const decoded = decodeAssignment('/tally/assignment', a, 17)
  assert.equal(decoded.epoch, 17)
  assert.equal(decoded.revision, 17)
  assert.deepEqual(decoded.replicaIds, [n2, n3])
  assert.equal(decoded.committedLsn, 4)
})

test('learners: sorted, absent when empty (an assignment without learners is written as before), never also a voter', () => {
  const n4 = ReplicaId.of('n4')
  const n5 = ReplicaId.of('n5')
  const none = encodeAssignment(proposal(n1, [n2, n3], 4))
  assert.equal((JSON.parse(none) as Record<string, unknown>).learners, undefined)
  assert.deepEqual(decodeAssignment('/tally/assignment', none, 9).learnerIds, [])
  const text = encodeAssignment(proposal(n1, [n2, n3], 4, [n5, n4]))
  assert.equal(text, encodeAssignment(proposal(n1, [n3, n2], 4, [n4, n5])), 'one canonical form')
  const decoded = decodeAssignment('/tally/assignment', text, 9)
  assert.deepEqual(decoded.learnerIds, [n4, n5])
  assert.deepEqual(decoded.replicaIds, [n2, n3])
  assert.throws(() => encodeAssignment(proposal(n1, [n2, n3], 4, [n3])), /named twice/)
  assert.throws(() => encodeAssignment(proposal(n1, [n2, n3], 4, [n1])), /not also a replica/)
  const good = JSON.parse(text) as Record<string, unknown>
  for (const [what, value] of [
    ['a learner also a voter', { ...good, learners: ['n2'] }],
    ['the primary a learner', { ...good, learners: ['n1'] }],
    ['an empty learner list (not canonical)', { ...good, learners: [] }],
    ['not a list', { ...good, learners: 'n4' }],
    ['bad node id', { ...good, learners: ['../x'] }],
    ['too many members', { ...good, learners: Array.from({ length: 70 }, (_, index) => `m${index}`) }],
  ] as const) {
    assert.throws(() => decodeAssignment('/tally/assignment', JSON.stringify(value), 9), ControlPlaneDataError, what)
  }
})

test('a desperate promotion’s lineage reset takes the epoch of the assignment that declares it', () => {
  const text = encodeAssignment({ ...proposal(n2, [n1, n3], 8), lineageResets: [{ epoch: Epoch.of(5), keptLsn: Lsn.of(3) }], lossKeptLsn: Lsn.of(8) })
  const decoded = decodeAssignment('/tally/assignment', text, 30)
  assert.deepEqual(decoded.lineageResets, [{ epoch: 5, keptLsn: 3 }, { epoch: 30, keptLsn: 8 }])
  assert.throws(() => decodeAssignment('/tally/assignment', text, 5), ControlPlaneDataError, 'a reset not older than its assignment')
})

test('malformed values in etcd are refused, not trusted', () => {
  const good = JSON.parse(encodeAssignment(proposal(n1, [n2, n3]))) as Record<string, unknown>
  const cases: Array<[string, unknown]> = [
    ['not JSON', '{'],
    ['an array', []],
    ['unknown format', { ...good, format: 2 }],
    ['unknown field', { ...good, extra: 1 }],
    ['missing field', { ...good, durability: undefined }],
    ['bad durability', { ...good, durability: 'sometimes' }],
    ['primary also a replica', { ...good, replicas: ['n1', 'n2'] }],
    ['bad node id', { ...good, primary: '../x' }],
    ['prototype key', JSON.parse('{"__proto__": 1}')],
    ['negative lsn', { ...good, committedLsn: -1 }],
    ['fractional lsn', { ...good, committedLsn: 1.5 }],
    ['huge', { ...good, replicas: Array.from({ length: 100 }, (_, index) => `n${index + 10}`) }],
  ]
  for (const [what, value] of cases) {
    const text = typeof value === 'string' ? value : JSON.stringify(value)
    assert.throws(() => decodeAssignment('/tally/assignment', text, 3), ControlPlaneDataError, what)
  }
})

test('etcd URLs: endpoints and an optional key prefix', () => {
  assert.deepEqual(parseClusterUrl('etcd://127.0.0.1:2379'), { endpoints: ['127.0.0.1:2379'], prefix: '/tally/' })
  assert.deepEqual(parseClusterUrl('etcd://a:1,b:2/prod/ledger'), { endpoints: ['a:1', 'b:2'], prefix: '/prod/ledger/' })
  for (const bad of ['http://a:1', 'etcd://', 'etcd://a', 'etcd://a:0', 'etcd://a:70000', 'etcd://a:1,']) assert.throws(() => parseClusterUrl(bad), Error, bad)
})
