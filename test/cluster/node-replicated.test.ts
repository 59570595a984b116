import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TallyError } from '../../src/domain/index.ts'
import type { LedgerNode } from '../../src/server/index.ts'
import { PowerLossDisk } from '../support/power-loss.ts'
import { tempDirectory } from '../support/temp.ts'
import { mulberry32 } from '../crash/power-loss-harness.ts'
import { Lsn, ReplicaId } from '../../src/replication/index.ts'
import { Loopback } from './node-loopback.ts'
import { comparableRows, createLedger, kill, openNode, randomOrders, runWorkload, submit } from './node-support.ts'

test('replicated node: a primary and two replicas reach the same state hash and byte-identical stores; a replica killed, and one that lost power, catch up', async () => {
  const dirs = { p: tempDirectory(), r1: tempDirectory(), r2: tempDirectory() }
  const disk = new PowerLossDisk({ random: mulberry32(11) })
  const openR2 = () => openNode(dirs.r2.directory, 'r2', { walIo: disk.walIo, openStore: disk.openStore, sync: true })
  let p = await openNode(dirs.p.directory, 'p')
  let r1 = await openNode(dirs.r1.directory, 'r1')
  let r2 = await openR2()
  let loop: Loopback | undefined
  try {
    assert.equal(await p.becomePrimary(1, 0), 'promoted')
    assert.equal(await r1.adoptEpoch(1, 'p'), 'adopted')
    assert.equal(await r2.adoptEpoch(1, 'p'), 'adopted')
    loop = new Loopback(p, { mode: 'sync_quorum', memberCount: 3 })
    await loop.connect('r1', r1)
    await loop.connect('r2', r2)

    await submit(p, createLedger)
    await runWorkload(p, randomOrders(1, 60))

    // r1 dies (SIGKILL-like); writes go on with p + r2, then r1 comes back and catches up.
    loop.disconnect('r1')
    await kill(r1)
    await runWorkload(p, randomOrders(2, 40))
    r1 = await openNode(dirs.r1.directory, 'r1')
    assert.equal(await r1.adoptEpoch(1, 'p'), 'current', 'the epoch survived the crash')
    await loop.connect('r1', r1)
    await loop.settle()

    // r2 loses power (unsynced WAL bytes and store batches rolled back); writes go on with p + r1.
    const acknowledged: number = loop.tracker.ackedLsn(ReplicaId.of('r2'))
    loop.disconnect('r2')
    disk.pullPlug()
    await kill(r2)
    const outcome = await disk.restorePower()
    assert.ok(outcome.operations > 0)
    await runWorkload(p, randomOrders(3, 40))
    r2 = await openR2()
    assert.equal(r2.clusterStatus().epoch, 1)
    assert.ok(r2.clusterStatus().headLsn >= acknowledged, `what the replica acknowledged (${acknowledged}) survived the power loss`)
    assert.ok(!r2.caughtUp(), 'a restarted replica is not ready before it heard from its primary')
    await loop.connect('r2', r2)
    await runWorkload(p, randomOrders(4, 40))
    await loop.settle()
    assert.equal(loop.failure, undefined)

    const primary = p.clusterStatus()
    assert.ok(primary.appliedIndex > 150, `a non-trivial log (${primary.appliedIndex})`)
    assert.equal(primary.stateHash?.index, primary.appliedIndex)
    for (const replica of [r1, r2]) {
      const status = replica.clusterStatus()
      assert.equal(status.appliedIndex, primary.appliedIndex)
      assert.deepEqual(status.stateHash, primary.stateHash)
      assert.ok(status.caughtUp)
    }
    loop.close()
    await Promise.all([p.close(), r1.close(), r2.close()])
    const [rowsP, rows1, rows2] = await Promise.all([comparableRows(dirs.p.directory), comparableRows(dirs.r1.directory), comparableRows(dirs.r2.directory)])
    assert.deepEqual(rows1, rowsP)
    assert.deepEqual(rows2, rowsP)
  } finally {
    loop?.close()
    await Promise.all([p, r1, r2].map((node) => node.close().catch(() => {})))
    for (const dir of Object.values(dirs)) dir.remove()
  }
})

test('replicated node: the FSM applies only committed entries — a write is answered after the replicas acknowledge, not at the local fsync', async () => {
  const dirs = { p: tempDirectory(), r1: tempDirectory() }
  const p = await openNode(dirs.p.directory, 'p')
  const r1 = await openNode(dirs.r1.directory, 'r1')
  const loop = new Loopback(p, { mode: 'sync_all', memberCount: 2 })
  try {
    await p.becomePrimary(1, 0)
    await r1.adoptEpoch(1, 'p')
    const flushed = new Promise<number>((resolve) => {
      const stop = p.onFlushed((lsn) => {
        stop()
        resolve(lsn)
      })
    })
    let answered = false
    const write = submit(p, createLedger).then((result) => {
      answered = true
      return result
    })
    assert.equal(await flushed, 1, 'the entry is durable on the primary')
    // Durable, not committed (the replica holds nothing): not applied, not answered.
    assert.equal(await p.waitForApplied(1, 300), false)
    assert.equal(answered, false)
    assert.equal(p.clusterStatus().committedLsn, 0)
    await loop.connect('r1', r1)
    const result = await write
    assert.equal(result.status, 'applied')
    assert.equal(p.clusterStatus().committedLsn, 1)
    assert.ok(p.storeIndex() >= 1)
  } finally {
    loop.close()
    await Promise.all([p.close(), r1.close()])
    dirs.p.remove()
    dirs.r1.remove()
  }
})

test('replicated node: the lease gate holds answers of committed writes until it opens again', async () => {
  const dir = tempDirectory()
  let leaseHeld = false
  const p = await openNode(dir.directory, 'p', { replicated: { nodeId: 'p', canAcknowledge: () => leaseHeld } })
  const loop = new Loopback(p, { mode: 'best_effort', memberCount: 1 })
  try {
    await p.becomePrimary(1, 0)
    let answered = false
    const write = submit(p, createLedger).then(() => {
      answered = true
    })
    assert.equal(await p.waitForApplied(1, 10_000), true, 'committed and applied')
    assert.equal(answered, false, 'but not acknowledged without the lease')
    assert.equal(p.clusterStatus().heldAcknowledgements, 1)
    leaseHeld = true
    p.releaseAcknowledgements()
    await write
    assert.equal(p.clusterStatus().heldAcknowledgements, 0)
  } finally {
    loop.close()
    await p.close()
    dir.remove()
  }
})

test('replicated node: the epoch reaches the disk before an entry carries it (power loss right after the promotion and a write)', async () => {
  const dir = tempDirectory()
  const disk = new PowerLossDisk({ random: mulberry32(5), worstCase: true })
  const open = () => openNode(dir.directory, 'p', { walIo: disk.walIo, openStore: disk.openStore, sync: true })
  let p = await open()
  let loop = new Loopback(p, { mode: 'best_effort', memberCount: 1 })
  try {
    assert.equal(await p.becomePrimary(7, 0), 'promoted')
    await submit(p, createLedger)
    assert.equal(await p.entryEpoch(1), 7, 'entries carry the epoch')
    disk.pullPlug()
    loop.close()
    await kill(p)
    await disk.restorePower()
    p = await open()
    assert.equal(p.clusterStatus().role, 'replica', 'a node opens as a replica')
    assert.equal(p.clusterStatus().epoch, 7)
    assert.equal(await p.becomePrimary(6, 1), 'stale', 'an older epoch is refused')
    assert.equal(await p.becomePrimary(8, 1), 'promoted')
    loop = new Loopback(p, { mode: 'best_effort', memberCount: 1 })
    const result = await submit(p, { type: 'SAVE_LEDGER_METADATA', ledger: 'main', metadata: { a: 'b' } } as never)
    assert.equal(result.status, 'applied')
    assert.equal(await p.entryEpoch(p.clusterStatus().headLsn), 8)
  } finally {
    loop.close()
    await p.close().catch(() => {})
    dir.remove()
  }
})

test('replicated node: failover — the deposed primary drops its uncommitted tail, refuses writes naming the new primary, and converges on the new lineage', async () => {
  const dirs = { p: tempDirectory(), r1: tempDirectory(), r2: tempDirectory() }
  const p = await openNode(dirs.p.directory, 'p')
  const r1 = await openNode(dirs.r1.directory, 'r1')
  const r2 = await openNode(dirs.r2.directory, 'r2')
  const loop = new Loopback(p, { mode: 'sync_quorum', memberCount: 3 })
  try {
    await p.becomePrimary(1, 0)
    await r1.adoptEpoch(1, 'p')
    await r2.adoptEpoch(1, 'p')
    await loop.connect('r1', r1)
    await loop.connect('r2', r2)
    await submit(p, createLedger)
    await runWorkload(p, randomOrders(21, 30))
    await loop.settle()
    const committed = p.clusterStatus().committedLsn

    // Partitioned from both replicas: these writes are durable on p and never commit.
    loop.disconnect('r1')
    loop.disconnect('r2')
    const flushedAll = new Promise<void>((resolve) => {
      const stop = p.onFlushed((lsn) => {
        if (lsn >= committed + 3) {
          stop()
          resolve()
        }
      })
    })
    const stranded = randomOrders(22, 3).map((order) => submit(p, order).then(() => 'answered', (error: unknown) => error))
    await flushedAll
    assert.equal(p.clusterStatus().headLsn, committed + 3)

    // The control plane promotes r1 at epoch 2 with the committed LSN it knows.
    assert.equal(await r1.becomePrimary(2, committed), 'promoted')
    assert.equal(await p.adoptEpoch(2, 'r1'), 'adopted')
    for (const outcome of await Promise.all(stranded)) {
      assert.ok(outcome instanceof TallyError && outcome.code === 'NOT_PRIMARY', `a stranded write is refused as of unknown outcome: ${String(outcome)}`)
    }
    assert.equal(p.clusterStatus().headLsn, committed, 'the uncommitted tail is gone, the committed prefix kept')
    await assert.rejects(submit(p, createLedger), (error: unknown) => error instanceof TallyError && error.code === 'NOT_PRIMARY' && error.details?.primary === 'r1')
    assert.equal(await r2.adoptEpoch(2, 'r1'), 'adopted')

    loop.switchPrimary(r1)
    await loop.connect('p', p)
    await loop.connect('r2', r2)
    await runWorkload(r1, randomOrders(23, 30))
    await loop.settle()
    assert.equal(loop.failure, undefined)
    assert.equal(await p.entryEpoch(committed + 1), 2, 'the old primary now holds the new lineage')
    assert.equal(p.logView().epochAt(Lsn.of(committed + 1)), 2, 'and its log view knows the epochs of what it appended since it opened')
    assert.equal(p.logView().epochAt(Lsn.of(committed)), 1)
    assert.equal(r2.logView().epochAt(Lsn.of(r2.clusterStatus().headLsn)), 2)
    assert.equal(await p.adoptEpoch(1, 'p'), 'stale')
    assert.equal(await r1.adoptEpoch(2, 'p'), 'stale', 'a primary is deposed only by a newer epoch')
    assert.ok(r1.caughtUp() && p.caughtUp() && r2.caughtUp())
    for (const node of [p, r2]) assert.deepEqual(node.clusterStatus().stateHash, r1.clusterStatus().stateHash)
    loop.close()
    await Promise.all([p.close(), r1.close(), r2.close()])
    const [rowsNew, rowsOld, rows2] = await Promise.all([comparableRows(dirs.r1.directory), comparableRows(dirs.p.directory), comparableRows(dirs.r2.directory)])
    assert.deepEqual(rowsOld, rowsNew)
    assert.deepEqual(rows2, rowsNew)
  } finally {
    loop.close()
    await Promise.all([p, r1, r2].map((node) => node.close().catch(() => {})))
    for (const dir of Object.values(dirs)) dir.remove()
  }
})

test('replicated node: a replica refuses writes, gaps and entries of an epoch it has not adopted', async () => {
  const dir = tempDirectory()
  const r = await openNode(dir.directory, 'r')
  try {
    await assert.rejects(submit(r, createLedger), (error: unknown) => error instanceof TallyError && error.code === 'NOT_PRIMARY' && error.details?.primary === undefined)
    await r.adoptEpoch(3, 'p')
    await assert.rejects(submit(r, createLedger), (error: unknown) => error instanceof TallyError && error.code === 'NOT_PRIMARY' && error.details?.primary === 'p')
    const payload = Buffer.from('{}')
    await assert.rejects(r.appendReplicated([{ index: 2, epoch: 3, type: 1, payload }]), /does not follow/)
    await assert.rejects(r.appendReplicated([{ index: 1, epoch: 4, type: 1, payload }]), /adopted epoch 3 only/)
    assert.equal(r.clusterStatus().headLsn, 0)
  } finally {
    await r.close()
    dir.remove()
  }
})

test('replicated node: crash recovery replays only what is known committed; the rest waits for the primary', async () => {
  const dirs = { p: tempDirectory(), r: tempDirectory() }
  const p = await openNode(dirs.p.directory, 'p')
  let r = await openNode(dirs.r.directory, 'r')
  const loop = new Loopback(p, { mode: 'best_effort', memberCount: 2 })
  try {
    await p.becomePrimary(1, 0)
    await r.adoptEpoch(1, 'p')
    await submit(p, createLedger)
    await runWorkload(p, randomOrders(31, 12))
    const committed = p.clusterStatus().committedLsn
    // Ship everything but tell the replica only part of it is committed.
    const entries = []
    for await (const entry of p.readLog(1, committed)) entries.push(entry)
    assert.equal(await r.appendReplicated(entries), committed)
    r.advanceCommitted(5)
    assert.equal(await r.waitForApplied(5, 10_000), true)
    await kill(r)
    r = await openNode(dirs.r.directory, 'r')
    assert.equal(r.clusterStatus().headLsn, committed, 'the WAL kept everything')
    assert.equal(r.clusterStatus().appliedIndex, 5, 'only the known committed prefix was replayed')
    assert.equal(r.clusterStatus().committedLsn, 5)
    await loop.connect('r', r)
    await loop.settle()
    assert.deepEqual(r.clusterStatus().stateHash, p.clusterStatus().stateHash)
  } finally {
    loop.close()
    await Promise.all([p.close(), r.close().catch(() => {})])
    dirs.p.remove()
    dirs.r.remove()
  }
})

test('replicated node: the state hash tells a diverged replica apart (same log, a store written differently)', async () => {
  const dirs = { p: tempDirectory(), r: tempDirectory() }
  const p = await openNode(dirs.p.directory, 'p')
  // Another cluster id keys the audit chain differently: every audit row, hence the store, differs.
  const r = await openNode(dirs.r.directory, 'r', { clusterId: 'another-cluster' })
  const loop = new Loopback(p, { mode: 'best_effort', memberCount: 2 })
  try {
    await p.becomePrimary(1, 0)
    await r.adoptEpoch(1, 'p')
    await loop.connect('r', r)
    await submit(p, createLedger)
    await runWorkload(p, randomOrders(41, 6))
    await loop.settle()
    assert.equal(r.clusterStatus().appliedIndex, p.clusterStatus().appliedIndex)
    assert.notEqual(r.clusterStatus().stateHash?.hash, p.clusterStatus().stateHash?.hash)
  } finally {
    loop.close()
    await Promise.all([p.close(), r.close()])
    dirs.p.remove()
    dirs.r.remove()
  }
})

test('replicated node: seeded schedules of replica crashes and power losses under load end with equal state hashes', async () => {
  for (const seed of [101, 202, 303]) {
    const random = mulberry32(seed)
    const ids = ['r1', 'r2'] as const
    const dirs = { p: tempDirectory(), r1: tempDirectory(), r2: tempDirectory() }
    const disks = { r1: new PowerLossDisk({ random: mulberry32(seed + 1) }), r2: new PowerLossDisk({ random: mulberry32(seed + 2) }) }
    const open = (id: 'r1' | 'r2') => openNode(dirs[id].directory, id, { walIo: disks[id].walIo, openStore: disks[id].openStore, sync: true })
    const p = await openNode(dirs.p.directory, 'p')
    const nodes: Record<'r1' | 'r2', LedgerNode> = { r1: await open('r1'), r2: await open('r2') }
    const loop = new Loopback(p, { mode: 'sync_quorum', memberCount: 3 })
    try {
      await p.becomePrimary(1, 0)
      for (const id of ids) {
        await nodes[id].adoptEpoch(1, 'p')
        await loop.connect(id, nodes[id])
      }
      await submit(p, createLedger)
      for (let step = 0; step < 6; step++) {
        const id = ids[Math.floor(random() * 2)] as 'r1' | 'r2'
        const powerLoss = random() < 0.5
        // The replica goes down while writes are in flight, writes go on, it comes back and catches up.
        const burst = runWorkload(p, randomOrders(seed * 100 + step, 20))
        await new Promise((resolve) => setImmediate(resolve))
        const acknowledged: number = loop.tracker.ackedLsn(ReplicaId.of(id))
        loop.disconnect(id)
        if (powerLoss) disks[id].pullPlug()
        await kill(nodes[id])
        if (powerLoss) await disks[id].restorePower()
        await burst
        nodes[id] = await open(id)
        assert.ok(nodes[id].clusterStatus().headLsn >= acknowledged, `seed ${seed} step ${step}: ${id} kept what it acknowledged`)
        await loop.connect(id, nodes[id])
        await loop.settle()
      }
      assert.equal(loop.failure, undefined)
      for (const id of ids) {
        assert.equal(nodes[id].clusterStatus().appliedIndex, p.clusterStatus().appliedIndex, `seed ${seed}`)
        assert.deepEqual(nodes[id].clusterStatus().stateHash, p.clusterStatus().stateHash, `seed ${seed}`)
      }
    } finally {
      loop.close()
      await Promise.all([p.close(), nodes.r1.close().catch(() => {}), nodes.r2.close().catch(() => {})])
      for (const dir of Object.values(dirs)) dir.remove()
    }
  }
})

test('replicated node: a replica acknowledges only what it fsynced (its fsyncs stall, then the power fails)', async () => {
  const dirs = { p: tempDirectory(), r1: tempDirectory(), r2: tempDirectory() }
  const disk = new PowerLossDisk({ random: mulberry32(9), worstCase: true })
  let releaseSyncs: () => void = () => {}
  let stalled = false
  const syncsReleased = new Promise<void>((resolve) => {
    releaseSyncs = resolve
  })
  const walIo = {
    ...disk.walIo,
    sync: async (handle: Parameters<typeof disk.walIo.sync>[0]) => {
      if (stalled) await syncsReleased
      return disk.walIo.sync(handle)
    },
  }
  const openR2 = () => openNode(dirs.r2.directory, 'r2', { walIo, openStore: disk.openStore, sync: true })
  const p = await openNode(dirs.p.directory, 'p')
  const r1 = await openNode(dirs.r1.directory, 'r1')
  let r2 = await openR2()
  const loop = new Loopback(p, { mode: 'sync_quorum', memberCount: 3 })
  try {
    await p.becomePrimary(1, 0)
    for (const [id, node] of [['r1', r1], ['r2', r2]] as const) {
      await node.adoptEpoch(1, 'p')
      await loop.connect(id, node)
    }
    await submit(p, createLedger)
    await loop.settle()
    stalled = true
    // Committed by p + r1; r2 receives the entries and cannot make them durable.
    await runWorkload(p, randomOrders(51, 12))
    const acknowledged: number = loop.tracker.ackedLsn(ReplicaId.of('r2'))
    loop.disconnect('r2')
    disk.pullPlug()
    releaseSyncs()
    await kill(r2)
    await disk.restorePower()
    stalled = false
    r2 = await openR2()
    assert.ok(r2.clusterStatus().headLsn >= acknowledged, `r2 acknowledged ${acknowledged} and kept ${r2.clusterStatus().headLsn}`)
    await loop.connect('r2', r2)
    await loop.settle()
    assert.deepEqual(r2.clusterStatus().stateHash, p.clusterStatus().stateHash)
  } finally {
    releaseSyncs()
    loop.close()
    await Promise.all([p.close(), r1.close(), r2.close().catch(() => {})])
    for (const dir of Object.values(dirs)) dir.remove()
  }
})

test('replicated node: a data directory that was replicated opens as a single node and takes writes at its epoch', async () => {
  const dir = tempDirectory()
  let node = await openNode(dir.directory, 'p')
  let loop = new Loopback(node, { mode: 'best_effort', memberCount: 1 })
  try {
    await node.becomePrimary(4, 0)
    await submit(node, createLedger)
    loop.close()
    await node.close()
    node = await openNode(dir.directory, 'p', { replicated: undefined })
    assert.equal(node.clusterStatus().mode, 'single')
    const result = await submit(node, { type: 'SAVE_LEDGER_METADATA', ledger: 'main', metadata: { a: 'b' } } as never)
    assert.equal(result.status, 'applied')
    assert.equal(await node.entryEpoch(2), 4)
  } finally {
    loop.close()
    await node.close()
    dir.remove()
  }
})


/**
 * A primary at epoch 3 that ran a workload (seed `seed`) and a replica that
 * adopted epoch 3 through `replicaState()` and holds none of it yet; both
 * closed and removed afterwards.
 */
async function withReplicaBehind(seed: number, body: (p: LedgerNode, r: LedgerNode, state: ReturnType<LedgerNode['replicaState']>) => Promise<void>): Promise<void> {
  const dirs = { p: tempDirectory(), r: tempDirectory() }
  const p = await openNode(dirs.p.directory, 'p')
  const r = await openNode(dirs.r.directory, 'r')
  const loop = new Loopback(p, { mode: 'best_effort', memberCount: 2 })
  try {
    await p.becomePrimary(3, 0)
    await submit(p, createLedger)
    await runWorkload(p, randomOrders(seed, 10))
    const state = r.replicaState()
    await state.adoptEpoch({ kind: 'adopt', persistEpoch: 3 as never, truncateToLsn: Lsn.zero, knownCommittedLsn: Lsn.zero, wipeStore: false })
    await body(p, r, state)
  } finally {
    loop.close()
    await Promise.all([p.close(), r.close()])
    dirs.p.remove()
    dirs.r.remove()
  }
}

test('replicated node: a transport that writes the replica WAL itself drives the node through replicaState()', async () => {
  await withReplicaBehind(61, async (p, r, state) => {
    assert.equal(state.epoch(), 3)
    assert.equal(state.isPrimary(), false)
    const head = p.clusterStatus().headLsn
    for await (const entry of p.readLog(1, head)) r.wal.append(entry)
    await r.wal.flush()
    assert.equal(r.clusterStatus().appliedIndex, 0, 'durable, not known committed: not applied')
    assert.equal(r.logView().epochAt(Lsn.of(head)), undefined, 'entries written behind the node are not guessed')
    state.learnCommitted(Lsn.of(head))
    assert.equal(await r.waitForApplied(head, 10_000), true)
    assert.deepEqual(r.clusterStatus().stateHash, p.clusterStatus().stateHash)
    assert.equal(state.knownCommittedLsn(), head)
  })
})

test('replicated node: a truncation of the uncommitted tail while the node reads committed entries back to apply them does not stop the node', async () => {
  await withReplicaBehind(62, async (p, r, state) => {
    const head = p.clusterStatus().headLsn
    assert.ok(head >= 4)
    for await (const entry of p.readLog(1, head)) r.wal.append(entry)
    await r.wal.flush()
    const committed = head - 2
    // The first read the node makes to apply is overlapped by the transport cutting the tail above the commit
    // (as at a new epoch's hello): the WAL refuses that read; the entries it wanted were never at risk.
    const wal = r.wal as unknown as { read: (from: number, to: number) => AsyncIterable<{ index: number }> }
    const read = wal.read.bind(r.wal)
    let raced = false
    wal.read = (from, to) => {
      const records = read(from, to)
      if (raced) return records
      raced = true
      return (async function* () {
        const iterator = records[Symbol.asyncIterator]()
        const first = await iterator.next()
        await r.wal.truncateAfter(committed)
        if (first.done === true) return
        yield first.value
        for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value
      })()
    }
    state.learnCommitted(Lsn.of(committed))
    assert.equal(await r.waitForApplied(committed, 10_000), true, `applied: ${JSON.stringify(r.clusterStatus())}`)
    assert.ok(raced, 'the read was overlapped')
    assert.equal(r.clusterStatus().appliedIndex, committed)
  })
})

test('replicated node: a replica that catches up applies shipped proposals too large for its batch, after smaller ones, to the primary’s state', async () => {
  // The replica decodes what it is shipped; a proposal above its `applyBatchOrdersMax` that follows
  // others in a batch starts the next batch (applied in slices), and must be the proposal of its own
  // index there (kept decoded across the break, not decoded twice).
  const dirs = { p: tempDirectory(), r1: tempDirectory() }
  const p = await openNode(dirs.p.directory, 'p', { gatherOrdersMax: 16 })
  const r1 = await openNode(dirs.r1.directory, 'r1', { applyBatchOrdersMax: 4, applySliceUnits: 2 })
  // The primary commits on its own (best effort) while the replica is away.
  const loop = new Loopback(p, { mode: 'best_effort', memberCount: 2 })
  try {
    await p.becomePrimary(1, 0)
    await r1.adoptEpoch(1, 'p')
    await submit(p, createLedger)
    // One order at a time, then twelve at once (gathered into proposals above four orders), in turn.
    for (let round = 0; round < 4; round++) {
      await runWorkload(p, randomOrders(10 + round, 2), 1)
      await runWorkload(p, randomOrders(20 + round, 12), 12)
    }
    const primary = p.clusterStatus()
    assert.ok(primary.appliedIndex >= 10, `several proposals (${primary.appliedIndex})`)
    // Connected only now: the replica receives the whole log and applies it in batches.
    await loop.connect('r1', r1)
    await loop.settle()
    assert.equal(loop.failure, undefined)
    const replica = r1.clusterStatus()
    assert.equal(replica.appliedIndex, primary.appliedIndex)
    assert.deepEqual(replica.stateHash, primary.stateHash)
    loop.close()
    await Promise.all([p.close(), r1.close()])
    const [rowsP, rows1] = await Promise.all([comparableRows(dirs.p.directory), comparableRows(dirs.r1.directory)])
    assert.deepEqual(rows1, rowsP)
  } finally {
    loop.close()
    await Promise.all([p.close().catch(() => {}), r1.close().catch(() => {})])
    dirs.p.remove()
    dirs.r1.remove()
  }
})
