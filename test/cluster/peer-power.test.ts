// Power loss on a replica while it receives shipped entries: the power-loss
// disk model (test/support/power-loss.ts) sits under the replica's WAL and
// fails at a seeded disk operation. Every LSN the replica acknowledged must
// be in its WAL after the power comes back (acks follow fsync), what
// survived is a prefix of the primary's log, and once the replica restarts a
// new link brings it back to byte-identical.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Epoch, Lsn } from '../../src/replication/index.ts'
import { PrimaryLink, ReplicaServer } from '../../src/cluster/peer/index.ts'
import { Wal } from '../../src/wal/index.ts'
import { PowerLossDisk } from '../support/power-loss.ts'
import { tempDirectory } from '../support/temp.ts'
import { mulberry32 } from '../crash/power-loss-harness.ts'
import { Cleanup, MemoryReplicaState, appendEntries, openWal, records, until } from './peer-harness.ts'

const seeds = [1, 2, 3, 4, 5, 6, 7, 8]

for (const seed of seeds) {
  test(`seed ${seed}: a replica that loses power keeps every LSN it acknowledged, then catches up`, async () => {
    const cleanup = new Cleanup()
    try {
      const random = mulberry32(seed)
      const primary = await openWal(cleanup)
      await appendEntries(primary.wal, { epoch: 1, count: 150, origin: 'p1' })
      const temp = tempDirectory('tally-peer-power-')
      cleanup.add(temp.remove)
      const disk = new PowerLossDisk({ random, worstCase: seed % 2 === 0 })
      const state = new MemoryReplicaState({ epoch: 1 })
      let acknowledged = 0
      const first = await Wal.open({ directory: temp.directory, io: disk.walIo, segmentBytesMax: 4096 })
      const firstWal = first.wal
      disk.failAtOperation(1 + Math.floor(random() * 40))
      const server = await ReplicaServer.listen({
        replicaId: 'r1',
        wal: firstWal,
        state,
        onAck: (lsn) => (acknowledged = Math.max(acknowledged, lsn)),
        onInvariantViolation: (error) => assert.fail(error),
      })
      const link = new PrimaryLink({
        localId: 'p1',
        replicaId: 'r1',
        address: server.address,
        wal: primary.wal,
        epoch: Epoch.of(1),
        committedLsn: () => Lsn.of(primary.wal.durable),
        batchEntriesMax: 10,
        backoffMsMin: 5,
        backoffMsMax: 20,
      })
      link.start()
      link.setFollow(true)
      await until('the power failed or everything was shipped', () => disk.crashed || link.ackedLsn === 150)
      await link.stop()
      await server.close()
      await firstWal.close().catch(() => undefined)
      await disk.restorePower()

      const { wal } = await Wal.open({ directory: temp.directory, io: disk.walIo, segmentBytesMax: 4096 })
      cleanup.add(() => wal.close().catch(() => undefined))
      assert.ok(wal.head >= acknowledged, `acknowledged ${acknowledged} but only ${wal.head} survived`)
      const survived = await records(wal)
      assert.deepEqual(survived, (await records(primary.wal)).slice(0, survived.length), 'what survived is a prefix of the primary’s log')

      const restarted = await ReplicaServer.listen({ replicaId: 'r1', wal, state, onInvariantViolation: (error) => assert.fail(error) })
      cleanup.add(() => restarted.close())
      const again = new PrimaryLink({
        localId: 'p1',
        replicaId: 'r1',
        address: restarted.address,
        wal: primary.wal,
        epoch: Epoch.of(1),
        committedLsn: () => Lsn.of(primary.wal.durable),
      })
      cleanup.add(() => again.stop())
      again.start()
      again.setFollow(true)
      await until('caught up after the restart', () => again.ackedLsn === 150)
      assert.deepEqual(await records(wal), await records(primary.wal))
    } finally {
      await cleanup.run()
    }
  })
}
