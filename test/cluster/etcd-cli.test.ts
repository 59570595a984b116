/**
 * `tally cluster status` and `tally cluster promote --desperate NODE`
 * against a real etcd (skipped without one; CI installs it).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { clusterExit, runClusterCommand } from '../../src/cli/cluster-command.ts'
import { EtcdCluster, etcdSkip } from '../support/etcd.ts'
import { Lsn } from '../../src/replication/index.ts'
import { n1, n2, n3, proposal, report, Resources } from './helpers.ts'
import { ReplicaId } from '../../src/replication/index.ts'

const n4 = ReplicaId.of('n4')

function capture(env: Record<string, string | undefined> = {}): { out: string[]; err: string[]; io: Parameters<typeof runClusterCommand>[1] } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { out: (text) => out.push(text), err: (text) => err.push(text), env } }
}

async function withEtcd(run: (etcd: EtcdCluster, resources: Resources) => Promise<void>): Promise<void> {
  const etcd = await EtcdCluster.start()
  const resources = new Resources()
  try {
    await run(etcd, resources)
  } finally {
    await resources.close()
    await etcd.close()
  }
}

describe('tally cluster: usage', () => {
  test('--help, and clear usage errors (exit 2)', async () => {
    const help = capture()
    assert.equal(await runClusterCommand(['--help'], help.io), clusterExit.ok)
    assert.match(help.out.join(''), /promote --desperate NODE/)
    for (const [argv, message] of [
      [['status'], /--cluster etcd:\/\/HOST:PORT is needed/],
      [[], /a command is needed/],
      [['status', '--cluster', 'http://127.0.0.1:2379'], /expected etcd:\/\//],
      [['promote', '--cluster', 'etcd://127.0.0.1:2379'], /promote needs --desperate NODE/],
      [['promote', '--cluster', 'etcd://127.0.0.1:2379', '--desperate', 'a/b'], /node id/],
      [['status', '--cluster', 'etcd://127.0.0.1:2379', '--timeout-ms', '0'], /--timeout-ms/],
      [['reboot', '--cluster', 'etcd://127.0.0.1:2379'], /unknown command/],
      [['add', '--cluster', 'etcd://127.0.0.1:2379'], /add needs a NODE id/],
      [['remove', 'a/b', '--cluster', 'etcd://127.0.0.1:2379'], /remove: node id/],
      [['add', 'n4', 'n5', '--cluster', 'etcd://127.0.0.1:2379'], /unexpected argument/],
    ] as const) {
      const run = capture()
      assert.equal(await runClusterCommand([...argv], run.io), clusterExit.usage, argv.join(' '))
      assert.match(run.err.join(''), message)
      assert.equal(run.err.join('').trim().split('\n').length, 1, 'one line')
    }
  })
})

describe('tally cluster against etcd', { skip: etcdSkip }, () => {
  test('status shows the assignment, the coordinator and every member with its endpoint and report', async () => {
    await withEtcd(async (etcd, resources) => {
      const empty = capture({ TALLY_CLUSTER: etcd.url })
      assert.equal(await runClusterCommand(['status'], empty.io), clusterExit.ok)
      assert.match(empty.out.join(''), /no assignment yet/)
      const control = resources.control(etcd)
      const created = await control.createAssignment(proposal(n1, [n2, n3], 4))
      assert.ok(created.ok)
      const epoch = created.assignment.epoch
      const r1 = await resources.register(control, n1, 2, 4100)
      const r2 = await resources.register(control, n2, 2, 4200)
      await r1.report(report(epoch, 12, { replicaStates: [{ replicaId: n2, state: 'in_sync', endpointVersion: 1 }, { replicaId: n3, state: 'disconnected', endpointVersion: 0 }] }))
      await r2.report(report(epoch, 11))
      await r2.suspect({ epoch, primaryId: n1 })
      assert.equal(await control.reportCommitted(epoch, Lsn.of(11)), 'recorded')
      const text = capture()
      assert.equal(await runClusterCommand(['status', '--cluster', etcd.url], text.io), clusterExit.ok)
      const output = text.out.join('')
      assert.match(output, new RegExp(`epoch ${epoch}  primary n1  replicas n2,n3  durability sync_quorum  committed 11`))
      assert.match(output, /n1\s+primary\s+yes\s+127\.0\.0\.1:4100\s+127\.0\.0\.1:4101\s+\d+\s+12\s+12\s+12\s+12\s+n2=in_sync,n3=disconnected\s+-\n/)
      assert.match(output, new RegExp(`n2\\s+replica\\s+yes\\s+127\\.0\\.0\\.1:4200\\s.*\\s-\\s+n1@${epoch}\\n`), 'n2 suspects the primary of this epoch')
      assert.match(output, /n3\s+replica\s+no\s+-/)
      const json = capture()
      assert.equal(await runClusterCommand(['status', '--cluster', etcd.url, '--json'], json.io), clusterExit.ok)
      const parsed = JSON.parse(json.out.join('')) as {
        assignment: { epoch: number; primary: string }
        members: Array<{ node: string; role: string; registered: boolean; report: { durableLsn: number } | null; suspects: { epoch: number; primary: string } | null }>
      }
      assert.equal(parsed.assignment.epoch, epoch)
      assert.equal(parsed.assignment.primary, 'n1')
      assert.deepEqual(parsed.members.map((member) => [member.node, member.role, member.registered, member.report?.durableLsn ?? null]), [
        ['n1', 'primary', true, 12],
        ['n2', 'replica', true, 11],
        ['n3', 'replica', false, null],
      ])
      assert.deepEqual(parsed.members.map((member) => member.suspects), [null, { epoch, primary: 'n1' }, null])
    })
  })

  test('promote --desperate: refused while the primary lives or for a less complete member; then done, logged, with the loss declared', async () => {
    await withEtcd(async (etcd, resources) => {
      const control = resources.control(etcd)
      const created = await control.createAssignment(proposal(n1, [n2, n3], 10))
      assert.ok(created.ok)
      const epoch = created.assignment.epoch
      const r1 = await resources.register(control, n1, 1, 4100)
      const r2 = await resources.register(control, n2, 1, 4200)
      const r3 = await resources.register(control, n3, 1, 4300)
      await r1.report(report(epoch, 10))
      await r2.report(report(epoch, 8))
      await r3.report(report(epoch, 6))
      const alive = capture()
      assert.equal(await runClusterCommand(['promote', '--desperate', 'n2', '--cluster', etcd.url], alive.io), clusterExit.failed)
      assert.match(alive.err.join(''), /refused \(primary_alive\)/)
      await r1.close()
      const lesser = capture()
      assert.equal(await runClusterCommand(['promote', '--desperate', 'n3', '--cluster', etcd.url], lesser.io), clusterExit.failed)
      assert.match(lesser.err.join(''), /refused \(not_most_complete\): n2 keeps more/)
      assert.equal((await control.readAssignment())?.revision, created.assignment.revision, 'nothing written by a refused promotion')
      const done = capture()
      assert.equal(await runClusterCommand(['promote', '--desperate', 'n2', '--cluster', etcd.url], done.io), clusterExit.ok)
      assert.match(done.err.join(''), /DESPERATE promotion of n2/)
      assert.match(done.err.join(''), /desperate_promotion replica=n2 reason=committed_entries_may_be_lost/)
      assert.match(done.out.join(''), /n2 is primary at epoch \d+; committed entries after LSN 8 \(2\) may be lost/)
      const after = await control.readAssignment()
      assert.ok(after !== undefined)
      assert.equal(after.primaryId, n2)
      assert.deepEqual(after.replicaIds, [n1, n3])
      assert.ok(after.epoch > epoch)
      assert.equal(after.committedLsn, 8)
      assert.deepEqual(after.lineageResets, [{ epoch: after.epoch, keptLsn: 8 }])
      const status = capture()
      assert.equal(await runClusterCommand(['status', '--cluster', etcd.url], status.io), clusterExit.ok)
      assert.match(status.out.join(''), new RegExp(`lineage reset at epoch ${after.epoch}: committed log kept up to LSN 8`))
    })
  })

  test('add / remove: a registered node joins as a learner, refusals are clear, the commit mark is carried, a moved mark is never left behind', async () => {
    await withEtcd(async (etcd, resources) => {
      const control = resources.control(etcd)
      const created = await control.createAssignment(proposal(n1, [n2, n3], 4))
      assert.ok(created.ok)
      const epoch = created.assignment.epoch
      await resources.register(control, n1, 2, 4100)
      assert.equal(await control.reportCommitted(epoch, Lsn.of(11)), 'recorded')
      const refusals: Array<[string[], RegExp]> = [
        [['add', 'n4'], /add n4 refused \(not_registered\): n4 is not registered: start it/],
        [['add', 'n1'], /add n1 refused \(already_member\)/],
        [['remove', 'n1'], /remove n1 refused \(is_primary\)/],
        [['remove', 'n9'], /remove n9 refused \(not_a_member\)/],
        [['remove', 'n3'], /remove n3 refused \(below_durability\): removing n3 leaves 2 voters: sync_quorum needs a true majority/],
      ]
      for (const [argv, message] of refusals) {
        const run = capture()
        assert.equal(await runClusterCommand([...argv, '--cluster', etcd.url], run.io), clusterExit.failed, argv.join(' '))
        assert.match(run.err.join(''), message)
        assert.equal(run.err.join('').trim().split('\n').length, 1, 'one line')
      }
      assert.equal((await control.readAssignment())?.revision, created.assignment.revision, 'nothing written by a refusal')
      await resources.register(control, n4, 2, 4400)
      const added = capture()
      assert.equal(await runClusterCommand(['add', 'n4', '--cluster', etcd.url, '--json'], added.io), clusterExit.ok)
      const json = JSON.parse(added.out.join('')) as { ok: boolean; previousEpoch: number; assignment: { epoch: number; replicas: string[]; learners: string[]; committedLsn: number } }
      assert.equal(json.ok, true)
      assert.equal(json.previousEpoch, epoch)
      assert.ok(json.assignment.epoch > epoch, 'a new epoch')
      assert.deepEqual(json.assignment.replicas, ['n2', 'n3'])
      assert.deepEqual(json.assignment.learners, ['n4'])
      assert.equal(json.assignment.committedLsn, 11, 'the commit recorded at the old epoch is carried')
      const status = capture()
      assert.equal(await runClusterCommand(['status', '--cluster', etcd.url], status.io), clusterExit.ok)
      assert.match(status.out.join(''), /replicas n2,n3  learners n4  durability/)
      assert.match(status.out.join(''), /n4\s+learner\s+yes/)
      // A learner may always leave; then the membership is as before, at yet another epoch.
      const removed = capture()
      assert.equal(await runClusterCommand(['remove', 'n4', '--cluster', etcd.url], removed.io), clusterExit.ok)
      assert.match(removed.out.join(''), /n4 removed; epoch \d+  primary n1  voters n2,n3  learners -/)
      // The write is guarded by the commit mark it read: a mark recorded meanwhile refuses it.
      const current = await control.readAssignment()
      assert.ok(current !== undefined)
      const before = await control.readCommittedVersioned()
      assert.equal(await control.reportCommitted(current.epoch, Lsn.of(12)), 'recorded')
      const stale = await control.swapAssignment(current.revision, { ...proposal(n1, [n2, n3], 11, [n4]) }, undefined, before.revision)
      assert.equal(stale.ok, false)
      assert.equal(!stale.ok && stale.reason, 'commit_moved')
    })
  })

  test('etcd unreachable: one line on stderr, exit 1, through the real executable', async () => {
    const etcd = await EtcdCluster.start()
    const url = etcd.url
    await etcd.close()
    const bin = path.resolve(import.meta.dirname, '..', '..', 'bin', 'tally.mjs')
    const result = await promisify(execFile)(process.execPath, [bin, 'cluster', 'status', '--cluster', url, '--timeout-ms', '500'], { timeout: 60_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    )
    assert.equal(result.code, clusterExit.failed)
    assert.match(result.stderr, /^tally cluster: etcd at 127\.0\.0\.1:\d+ is unreachable/)
    assert.equal(result.stderr.trim().split('\n').length, 1)
  })
})
