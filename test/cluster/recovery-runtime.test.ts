// The primary's recovery adapter (`src/cluster/recovery-runtime.ts`): the
// operator's limits become the driver's tuning, and a replica that cannot be
// reached does not flood the bounded recovery log of `/_/cluster`. The driver
// on real processes is tested in rebuild-cluster.test.ts and the other
// cluster tests; its decisions are the pure engine's (test/replication/).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PrimaryRecovery, recoveryTuningDefault, recoveryTuningFrom, repeatedLinesWindowMs } from '../../src/cluster/index.ts'
import { Epoch, Lsn, ReplicaId, type StorageAdapter } from '../../src/replication/index.ts'
import { freePort } from '../support/local.ts'
import { Cleanup, openWal, until } from './peer-harness.ts'

test('operator limits become the driver tuning, in ticks; the catch-up deadline and reservation follow the duration budget', () => {
  assert.deepEqual(recoveryTuningFrom({ catchUpSecondsMax: undefined, catchUpEntriesMax: undefined, catchUpStallSeconds: undefined, rebuildStallSeconds: undefined }), {
    catchUpBudget: recoveryTuningDefault.catchUpBudget,
    catchUpTimeoutTicks: recoveryTuningDefault.catchUpTimeoutTicks,
    reservationTimeoutTicks: recoveryTuningDefault.reservationTimeoutTicks,
  })
  const tight = recoveryTuningFrom({ catchUpSecondsMax: 300, catchUpEntriesMax: 5, catchUpStallSeconds: 2, rebuildStallSeconds: 30 })
  assert.deepEqual(tight.catchUpBudget, { durationTicksMax: 3000, entriesMax: 5, progressDeadlineTicks: 20 })
  assert.equal(tight.catchUpTimeoutTicks, 6000)
  assert.equal(tight.reservationTimeoutTicks, 6000)
  assert.equal(tight.rebuildStallTicks, 300)
})

const emptyStorage: StorageAdapter = {
  retainedHistory: () => ({ headLsn: Lsn.zero, tailLsn: Lsn.zero, committedLsn: Lsn.zero, checkpointLsn: Lsn.zero, checkpointTrusted: false }),
  pinWalRetention: () => ({ ok: true, release: () => {} }),
  pinSnapshot: () => ({ ok: false, reason: 'none' }),
  pinFullBase: () => ({ ok: false, reason: 'none' }),
}

test('a replica that cannot be reached: its first failed connect is logged with its session, the repeats within a minute only counted', async () => {
  const cleanup = new Cleanup()
  try {
    const { wal } = await openWal(cleanup)
    const lines: string[] = []
    let now = 0
    const recovery = new PrimaryRecovery({
      nodeId: ReplicaId.of('p1'),
      epoch: Epoch.of(1),
      incarnation: 1,
      wal,
      committedLsn: () => Lsn.zero,
      storage: emptyStorage,
      clock: () => now,
      log: (message) => lines.push(message),
      onAck: () => {},
      onDisconnect: () => {},
      onDeposed: () => {},
      tuning: { recoveryRetryTicks: 1 },
    })
    cleanup.add(() => recovery.stop())
    // Nothing listens there: every dial is refused.
    const port = await freePort()
    recovery.setMembers([{ replicaId: ReplicaId.of('r1'), dataAddress: `127.0.0.1:${port}`, endpointVersion: 1 }])
    const failedConnects = (): number => recovery.registry.log.events().filter((event) => event.kind === 'session_invalidated' && event.reason?.startsWith('connect_') === true).length
    await until('five sessions could not connect', () => {
      now += recoveryTuningDefault.tickMs
      recovery.tick()
      return failedConnects() >= 5
    })
    assert.equal(lines.filter((line) => /recovery: r1: session_attached kind=bootstrap/.test(line)).length, 1, lines.join('\n'))
    assert.equal(lines.filter((line) => /recovery: r1: session_invalidated connect_/.test(line)).length, 1, lines.join('\n'))
    assert.equal(recovery.sender(ReplicaId.of('r1'))?.state, 'disconnected')
    // A minute on, the same decision is logged again, after the count of those not shown.
    const before = failedConnects()
    now += repeatedLinesWindowMs
    await until('one more session could not connect', () => {
      now += recoveryTuningDefault.tickMs
      recovery.tick()
      return failedConnects() > before
    })
    const counted = lines.findIndex((line) => /recovery: r1: \d+ repeated decision lines not shown/.test(line))
    assert.ok(counted > 0, lines.join('\n'))
    assert.match(lines[counted + 1] ?? '', /recovery: r1: session_attached kind=bootstrap/)
    assert.equal(lines.filter((line) => /recovery: r1: session_invalidated connect_/.test(line)).length, 2, lines.join('\n'))
  } finally {
    await cleanup.run()
  }
})
