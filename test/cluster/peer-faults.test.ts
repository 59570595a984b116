// WAL shipping through the TCP fault proxy: after a dropped connection, a
// delay, a partition (both ways or one way), a replica that refuses
// connections for a while, or a replica that comes back at a new address,
// the link redials, handshakes again and resumes exactly after what the
// replica holds — its WAL ends byte-identical to the primary's, every entry
// appended once, none skipped as a duplicate, no gap.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Epoch, Lsn } from '../../src/replication/index.ts'
import { PrimaryLink, ReplicaServer, type PeerError } from '../../src/cluster/peer/index.ts'
import { FaultProxy } from '../support/fault-proxy.ts'
import { Cleanup, MemoryReplicaState, appendEntries, openWal, records, segmentImages, until } from './peer-harness.ts'

const timeouts = { idleTimeoutMs: 400, handshakeTimeoutMs: 400, heartbeatMs: 50, backoffMsMin: 10, backoffMsMax: 100 }

async function rig(cleanup: Cleanup, tuning: Partial<typeof timeouts> = {}) {
  const primary = await openWal(cleanup)
  const replica = await openWal(cleanup)
  const state = new MemoryReplicaState({ epoch: 1 })
  const violations: Error[] = []
  const listen = (port = 0) =>
    ReplicaServer.listen({ replicaId: 'r1', wal: replica.wal, state, port, idleTimeoutMs: timeouts.idleTimeoutMs, onInvariantViolation: (error) => violations.push(error) })
  let server = await listen()
  cleanup.add(() => server.close())
  const proxy = await FaultProxy.start({ target: server.address })
  cleanup.add(() => proxy.close())
  const disconnects: PeerError[] = []
  const acked: number[] = []
  const link = new PrimaryLink({
    localId: 'p1',
    replicaId: 'r1',
    address: proxy.address,
    wal: primary.wal,
    epoch: Epoch.of(1),
    committedLsn: () => Lsn.of(primary.wal.durable),
    batchEntriesMax: 8,
    inFlightBytesMax: 4_096,
    ...timeouts,
    ...tuning,
    onDisconnect: (error) => disconnects.push(error),
    onAck: (lsn) => acked.push(lsn),
  })
  cleanup.add(() => link.stop())
  let appended = 0
  const append = async (count: number) => {
    appended += count
    await appendEntries(primary.wal, { epoch: 1, count, origin: 'p1' })
  }
  const restartReplica = async () => {
    await server.close()
    server = await listen()
    proxy.setTarget(server.address)
  }
  const converged = async () => {
    await until(`the replica acknowledged ${appended}`, () => link.ackedLsn === appended, 20_000)
    assert.equal(replica.wal.durable, primary.wal.durable)
    assert.deepEqual(await records(replica.wal), await records(primary.wal))
    assert.deepEqual(await segmentImages(replica.directory), await segmentImages(primary.directory), 'byte-identical segment files')
    assert.equal(server.counters.duplicatesSkipped, 0, 'nothing was sent twice')
    for (let i = 1; i < acked.length; i += 1) assert.ok((acked[i] ?? 0) >= (acked[i - 1] ?? 0), 'acks never go back')
    assert.deepEqual(violations, [])
  }
  const start = () => {
    link.start()
    link.setFollow(true)
  }
  return { primary, replica, state, proxy, link, disconnects, append, converged, restartReplica, start }
}

test('a dropped connection mid-stream: redial, handshake, resume after what the replica holds', async () => {
  const cleanup = new Cleanup()
  try {
    const r = await rig(cleanup)
    r.start()
    await r.append(200)
    await until('some entries acknowledged', () => (r.link.ackedLsn ?? 0) >= 40)
    for (let round = 0; round < 3; round += 1) {
      r.proxy.dropConnections()
      await r.append(100)
      await until('shipping resumed', () => (r.link.ackedLsn ?? 0) > 200 + round * 100)
    }
    await r.converged()
    assert.ok(r.link.counters.connections >= 4, `redialed (${r.link.counters.connections} connections)`)
    assert.ok(r.disconnects.some((error) => error.reason === 'CLOSED'))
  } finally {
    await cleanup.run()
  }
})

test('delay in both directions slows shipping but loses and repeats nothing', async () => {
  const cleanup = new Cleanup()
  try {
    const r = await rig(cleanup)
    r.start()
    r.proxy.set('both', { delayMs: 15 })
    await r.append(150)
    await r.converged()
    assert.equal(r.link.counters.connections, 1, 'a delay below the timeouts keeps the connection')
  } finally {
    await cleanup.run()
  }
})

test('a partition both ways: timeouts close the link, redials fail until the heal, then it catches up', async () => {
  const cleanup = new Cleanup()
  try {
    const r = await rig(cleanup)
    r.start()
    await r.append(100)
    await until('first entries acknowledged', () => (r.link.ackedLsn ?? 0) >= 30)
    r.proxy.partition()
    await r.append(100)
    await until('the partition noticed (idle or handshake timeout)', () => r.disconnects.some((error) => error.reason === 'TIMEOUT'))
    const connectionsDuringPartition = r.link.counters.connections
    r.proxy.heal()
    await r.converged()
    assert.ok(r.link.counters.connections > connectionsDuringPartition || connectionsDuringPartition > 1)
  } finally {
    await cleanup.run()
  }
})

test('a one-way partition (acks lost): the primary’s idle timeout recycles the link, then it catches up', async () => {
  const cleanup = new Cleanup()
  try {
    const r = await rig(cleanup)
    r.start()
    await r.append(50)
    await until('first entries acknowledged', () => r.link.ackedLsn === 50)
    r.proxy.partition('fromTarget')
    await r.append(60)
    await until('the lost acks noticed', () => r.disconnects.some((error) => error.reason === 'TIMEOUT'))
    r.proxy.heal()
    await r.converged()
  } finally {
    await cleanup.run()
  }
})

test('a replica unreachable for a while: redials back off, then shipping resumes', async () => {
  const cleanup = new Cleanup()
  try {
    const r = await rig(cleanup)
    r.start()
    await r.append(40)
    await until('first entries acknowledged', () => r.link.ackedLsn === 40)
    r.proxy.refuse(true)
    r.proxy.dropConnections()
    await r.append(40)
    const before = r.proxy.accepted
    await until('several refused redials', () => r.proxy.accepted >= before + 3)
    r.proxy.refuse(false)
    await r.converged()
  } finally {
    await cleanup.run()
  }
})

test('a replica server restarted on a new port behind the same endpoint: the link redials and resumes', async () => {
  const cleanup = new Cleanup()
  try {
    const r = await rig(cleanup)
    r.start()
    await r.append(60)
    await until('first entries acknowledged', () => r.link.ackedLsn === 60)
    await r.restartReplica()
    await r.append(60)
    await r.converged()
  } finally {
    await cleanup.run()
  }
})

test('a handshake that never completes times out; the link redials with backoff until the path heals', async () => {
  const cleanup = new Cleanup()
  try {
    const r = await rig(cleanup, { handshakeTimeoutMs: 100 })
    await r.append(20)
    r.proxy.partition('toTarget')
    r.start()
    await until('two handshake timeouts', () => r.disconnects.filter((error) => error.reason === 'TIMEOUT' && /handshake/.test(error.message)).length >= 2)
    assert.equal(r.link.ackedLsn, undefined, 'never matched')
    r.proxy.heal()
    await r.converged()
  } finally {
    await cleanup.run()
  }
})
