// Replacing a dead node on real processes (docs/cluster.md, "Membership"):
// three `tally serve --cluster` processes and a real etcd, with small
// checkpoint and WAL retention settings. Under a steady stream of writes,
// one replica is SIGKILLed for good; removing it at once is refused
// (sync_quorum keeps 3 voters); a fourth node id starts and is added: it
// joins as a learner, is rebuilt from a snapshot plus the WAL tail (the
// primary recycled the WAL it would need), and the coordinator makes it a
// voter once it holds the acknowledged commit; then the dead node is
// removed. Then the primary is SIGKILLed: a voter (n2 or the new n4) is
// promoted. Every write is acknowledged exactly once (unknown outcomes are
// retried with their idempotency key) and present on every live node,
// which converge to one state hash. Skips with one line without etcd.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { clusterExit, runClusterCommand } from '../../src/cli/cluster-command.ts'
import { EtcdCluster, etcdSkip } from '../support/etcd.ts'
import { until } from './helpers.ts'
import { balance, call, ProcessCluster, writeOnPrimary } from './process-cluster.ts'

interface StatusJson {
  assignment: { epoch: number; primary: string; replicas: string[]; learners: string[] } | null
  members: Array<{ node: string; role: string; registered: boolean; live: { replication?: { replicas?: Array<{ replicaId: string; membership: string }> } } | null }>
}

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = []
  const err: string[] = []
  const code = await runClusterCommand(argv, { out: (text) => out.push(text), err: (text) => err.push(text), env: {} })
  return { code, out: out.join(''), err: err.join('') }
}

test('a dead replica is replaced: the new node joins as a learner, is rebuilt, becomes a voter; every acknowledged write is kept', { skip: etcdSkip, timeout: 240_000 }, async () => {
  const etcd = await EtcdCluster.start()
  const cluster = await ProcessCluster.create(etcd, {
    ids: ['n1', 'n2', 'n3', 'n4'],
    args: ['--checkpoint-entries', '20', '--wal-retain-entries', '10', '--wal-segment-bytes-max', '4096'],
  })
  let writing = true
  const writers: Promise<void>[] = []
  try {
    const [n1, n2, n3, n4] = cluster.members as [typeof cluster.members[0], typeof cluster.members[0], typeof cluster.members[0], typeof cluster.members[0]]
    await Promise.all([n1, n2, n3].map((member) => cluster.start(member)))
    const primary = await cluster.primary()
    assert.equal(primary.member.id, 'n1')
    assert.equal((await writeOnPrimary(primary.base, '/v2/bank', {})).status, 204)
    // Writes go to n2 (forwarded to the primary while it is a replica; it lives throughout), each retried with its key until acknowledged.
    const base = n2.server?.baseUrl as string
    let next = 0
    const acknowledged = new Map<string, number>()
    const writeOne = async (key: string): Promise<void> => {
      const reply = await until(`write ${key} acknowledged`, async () => {
        const answer = await call(base, 'POST', '/v2/bank/transactions', { postings: [{ source: 'world', destination: 'users:m', amount: 1, asset: 'USD' }] }, { 'Idempotency-Key': key }).catch(() => undefined)
        return answer === undefined || answer.status === 503 ? undefined : answer
      }, 60_000)
      assert.equal(reply.status, 200, JSON.stringify(reply.json))
      const id = (reply.json as { data: { id: number } }).data.id
      const before = acknowledged.get(key)
      assert.ok(before === undefined || before === id, `${key} acknowledged as ${before} and then as ${id}`)
      acknowledged.set(key, id)
    }
    for (let writer = 0; writer < 2; writer++) {
      writers.push(
        (async () => {
          while (writing) await writeOne(`m-${next++}`)
        })(),
      )
    }
    const writtenAtLeast = (count: number): Promise<true> => until(`${count} writes acknowledged`, () => (acknowledged.size >= count ? true : undefined), 60_000)
    await writtenAtLeast(20)

    // n3 dies for good. Removing it now would leave 2 voters: sync_quorum refuses.
    await cluster.kill(n3)
    const early = await cli(['remove', 'n3', '--cluster', etcd.url])
    assert.equal(early.code, clusterExit.failed)
    assert.match(early.err, /refused \(below_durability\)/)
    // The primary commits (with n2) far past what a new node could take from the WAL.
    await writtenAtLeast(120)

    // n4 starts (registered, not a member), and is added: a learner at a new epoch.
    await cluster.start(n4)
    await until('n4 registered', async () => ((JSON.parse((await cli(['status', '--cluster', etcd.url, '--json'])).out) as StatusJson).members.some((member) => member.node === 'n4' && member.registered) ? true : undefined))
    const added = await cli(['add', 'n4', '--cluster', etcd.url, '--json'])
    assert.equal(added.code, clusterExit.ok, added.err)
    const addedJson = JSON.parse(added.out) as { assignment: { epoch: number; replicas: string[]; learners: string[] } }
    assert.deepEqual(addedJson.assignment.learners, ['n4'])
    assert.deepEqual(addedJson.assignment.replicas, ['n2', 'n3'])
    const asLearner = JSON.parse((await cli(['status', '--cluster', etcd.url, '--json'])).out) as StatusJson
    assert.equal(asLearner.members.find((member) => member.node === 'n4')?.role, 'learner', 'not a voter before it caught up')

    // The coordinator makes it a voter once it holds the acknowledged commit (rebuilt from snapshot + tail).
    const voter = await until('n4 is a voter', async () => {
      const status = JSON.parse((await cli(['status', '--cluster', etcd.url, '--json'])).out) as StatusJson
      return status.assignment?.replicas.includes('n4') === true ? status : undefined
    }, 90_000)
    assert.deepEqual(voter.assignment?.learners, [])
    assert.equal(voter.members.find((member) => member.node === 'n4')?.role, 'replica')
    assert.match(n4.server?.stderr() ?? '', /staged/, 'n4 was rebuilt from a snapshot (the WAL it needed was recycled)')

    // Now n3 can go: 3 voters (n1, n2, n4) remain.
    const removed = await cli(['remove', 'n3', '--cluster', etcd.url])
    assert.equal(removed.code, clusterExit.ok, removed.err)
    assert.match(removed.out, /n3 removed; epoch \d+  primary n1  voters n2,n4  learners -/)
    // The status shows the voters, and the primary (restarted at the new epoch) ships to n4 as a voter.
    const shown = await until('the primary lists n4 as a voter', async () => {
      const status = await cli(['status', '--cluster', etcd.url])
      return /\nn4\s+voter\s+(in_sync|catching_up)/.test(status.out) ? status : undefined
    }, 30_000)
    assert.match(shown.out, /replicas n2,n4  durability sync_quorum/)
    assert.doesNotMatch(shown.out, /\nn3\s+(voter|learner)/, 'no link to the removed node')
    await writtenAtLeast(acknowledged.size + 20)

    // The failure to fear next: the primary dies; a voter is promoted (n4 counts now) and loses nothing acknowledged.
    await cluster.kill(n1)
    const afterKill = acknowledged.size
    await writtenAtLeast(afterKill + 20)
    const failedOver = JSON.parse((await cli(['status', '--cluster', etcd.url, '--json'])).out) as StatusJson
    assert.ok(failedOver.assignment?.primary === 'n2' || failedOver.assignment?.primary === 'n4', `promoted ${failedOver.assignment?.primary}`)

    writing = false
    await Promise.all(writers)
    const total = next
    assert.equal(acknowledged.size, total, 'every write was acknowledged (unknown outcomes retried with their key)')
    const ids = new Set(acknowledged.values())
    assert.equal(ids.size, total, 'no two writes share a transaction id')
    // Every node holds every acknowledged write once: the balance counts them.
    const views = await until('n2 and n4 converged', async () => {
      const seen = await Promise.all([n2, n4].map(async (member) => (await call(member.server?.baseUrl as string, 'GET', '/_/cluster')).json as { caughtUp: boolean; appliedIndex: number; stateHash?: { index: number; hash: string } }))
      const hashes = new Set(seen.map((view) => `${view.appliedIndex}:${view.stateHash?.hash}`))
      return seen.every((view) => view.caughtUp) && hashes.size === 1 ? seen : undefined
    }, 60_000)
    for (const member of [n2, n4]) {
      assert.equal(await balance(member.server?.baseUrl as string, 'bank', 'users:m', views[0]?.appliedIndex ?? 0), BigInt(total), `${member.id} holds every write once`)
    }
  } catch (error) {
    writing = false
    process.stderr.write(await cluster.describe())
    throw error
  } finally {
    writing = false
    await Promise.allSettled(writers)
    await cluster.close()
    await etcd.close()
  }
})
