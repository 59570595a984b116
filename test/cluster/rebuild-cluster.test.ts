// A replica beyond retention is rebuilt from a snapshot on real processes
// (docs/cluster.md, "Snapshots and rebuild"): three `tally serve --cluster`
// processes and a real etcd, with small checkpoint and WAL retention
// settings. One replica is SIGKILLed, the primary commits (with the other
// replica) far past it and recycles its WAL; the replica restarts, is offered
// the primary's newest trusted snapshot, stages it, closes its node, installs
// the image and reopens in place (the same process, no supervisor), takes the
// WAL tail and reaches the primary's state hash. Skips with one line without
// etcd.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EtcdCluster, etcdSkip } from '../support/etcd.ts'
import { killTally, spawnTally, type ServerProcess } from '../support/server-process.ts'
import { tempDirectory } from '../support/temp.ts'
import { until } from './helpers.ts'
import { call, writeOnPrimary } from './process-cluster.ts'

interface Member {
  readonly id: string
  readonly data: { directory: string; remove: () => void }
  server: ServerProcess | undefined
}

interface ClusterView {
  role: string
  appliedIndex: number
  caughtUp: boolean
  stateHash?: { index: number; hash: string }
  snapshots?: { newest?: { appliedIndex: number; stateHash: string } }
  replication?: { recoveryLog: { message: string }[]; replicas: { replicaId: string; state: string }[] }
}


async function view(member: Member): Promise<ClusterView | undefined> {
  if (member.server === undefined) return undefined
  try {
    const reply = await call(member.server.baseUrl, 'GET', '/_/cluster')
    return reply.status === 200 ? (reply.json as ClusterView) : undefined
  } catch {
    return undefined
  }
}


/** A deposit of `amount` to one of five users on the primary at `primaryUrl`, retried while it answers 503. */
function depositOn(primaryUrl: string): (amount: number) => Promise<void> {
  return async (amount) => {
    const reply = await writeOnPrimary(primaryUrl, '/v2/bank/transactions', { postings: [{ source: 'world', destination: `users:${amount % 5}`, amount, asset: 'USD' }] })
    assert.equal(reply.status, 200, JSON.stringify(reply.json))
  }
}

interface ThreeNodes {
  readonly members: readonly [Member, Member, Member]
  /** (Re)starts a member's `tally serve --cluster` with the scenario's flags. */
  readonly start: (member: Member) => Promise<ServerProcess>
  readonly primaryUrl: string
  readonly write: (amount: number) => Promise<void>
}

/**
 * Three `tally serve --cluster` processes on a fresh etcd with `flags` beside
 * the cluster's own, formed and caught up with n1 primary; everything started
 * is stopped and removed afterwards, also on failure.
 */
async function withThreeNodes(prefix: string, flags: readonly string[], body: (cluster: ThreeNodes) => Promise<void>): Promise<void> {
  const etcd = await EtcdCluster.start()
  const members: Member[] = []
  try {
    for (const id of ['n1', 'n2', 'n3']) members.push({ id, data: tempDirectory(`tally-${prefix}-${id}-`), server: undefined })
    const start = async (member: Member): Promise<ServerProcess> => {
      member.server = await spawnTally({
        dataDirectory: member.data.directory,
        args: [
          '--cluster', etcd.url, '--node-id', member.id, // Port 0: the bound port is the one registered (a restart registers its new one), and a
          // probed free port could be taken by another test before the bind.
          '--peer-listen', '127.0.0.1:0', '--cluster-lease-ttl-seconds', '2',
          ...flags,
          '--log-level', process.env.TALLY_TEST_LOG_LEVEL ?? 'warn',
        ],
      })
      return member.server
    }
    await Promise.all(members.map(start))
    await until('the cluster formed', async () => {
      const views = await Promise.all(members.map(view))
      return views.every((v) => v?.caughtUp === true) && views[0]?.role === 'primary' ? true : undefined
    }, 30_000)
    const primaryUrl = members[0]?.server?.baseUrl as string
    await body({ members: members as [Member, Member, Member], start, primaryUrl, write: depositOn(primaryUrl) })
  } finally {
    await Promise.all(members.map(async (member) => (member.server === undefined ? undefined : killTally(member.server))))
    await etcd.close()
    for (const member of members) member.data.remove()
  }
}

test('a replica down while the primary recycles its WAL comes back rebuilt from snapshot + tail, at the same state hash', { skip: etcdSkip, timeout: 150_000 }, async () => {
  await withThreeNodes('rebuild', ['--checkpoint-entries', '20', '--wal-retain-entries', '10', '--wal-segment-bytes-max', '4096'], async ({ members, start, primaryUrl, write }) => {
    const [primary, , lagging] = members
    // Retried while 503: right after formation the primary may not hold its lease yet.
    assert.equal((await writeOnPrimary(primaryUrl, '/v2/bank', {})).status, 204)
    for (let i = 1; i <= 10; i++) await write(i)

    // n3 goes away; the primary and n2 commit far past it, checkpoint, snapshot and recycle.
    await killTally(lagging.server as ServerProcess)
    lagging.server = undefined
    for (let i = 11; i <= 150; i++) await write(i)
    const before = await until('the primary holds a trusted snapshot', async () => {
      const seen = await view(primary)
      return seen?.snapshots?.newest !== undefined && seen.snapshots.newest.appliedIndex > 10 ? seen : undefined
    })
    assert.match(before.snapshots?.newest?.stateHash ?? '', /^[0-9a-f]{64}$/)

    // n3 restarts: it is offered the snapshot, stages it, installs it and reopens in place: the process stays up.
    const rejoined = await start(lagging)
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
    void rejoined.exited.then((how) => (exit = how))
    await until('n3 reopened on the installed image', async () => {
      assert.equal(exit, undefined, `the replica stays up through its rebuild\n${rejoined.stderr()}`)
      return /closed for the rebuild/.test(rejoined.stderr()) && (await view(lagging)) !== undefined ? true : undefined
    }, 60_000)
    for (let i = 151; i <= 160; i++) await write(i)
    const converged = await until('n3 converged on the primary state hash', async () => {
      const [p, r] = await Promise.all([view(primary), view(lagging)])
      if (p === undefined || r === undefined || !r.caughtUp || p.stateHash === undefined) return undefined
      return r.stateHash?.index === p.stateHash.index && p.appliedIndex === r.appliedIndex ? { p, r } : undefined
    }, 60_000)
    assert.deepEqual(converged.r.stateHash, converged.p.stateHash)
    assert.equal(converged.r.role, 'replica')
    assert.equal(exit, undefined, `the rebuilt replica is the same process\n${rejoined.stderr()}`)
    // Listening on port 0, it reopened on the port it had bound: the address registered before the rebuild still holds.
    const peerAddresses = [...rejoined.stderr().matchAll(/peer address (\S+?)[),]/g)].map((match) => match[1])
    assert.equal(peerAddresses.length, 2, rejoined.stderr())
    assert.equal(new Set(peerAddresses).size, 1, `one peer address across the reopen: ${peerAddresses.join(', ')}`)
    // The primary's recovery driver made those decisions: a rebuild from its snapshot, carried on after the reopen.
    const decisions = (converged.p.replication?.recoveryLog ?? []).map((line) => line.message)
    assert.ok(decisions.some((line) => /recovery: n3: rebuild_source_selected snapshot_tail/.test(line)), decisions.join('\n'))
    assert.ok(decisions.some((line) => /recovery: n3: rebuild_reopened/.test(line)), decisions.join('\n'))
    assert.ok(decisions.some((line) => /recovery: n3: rebuild_completed/.test(line)), decisions.join('\n'))
  })
})

test('a catch-up beyond its entries budget escalates to a rebuild from a snapshot, and /_/cluster shows the driver deciding it', { skip: etcdSkip, timeout: 150_000 }, async () => {
  // Snapshots every 20 entries; the WAL keeps far more, so the replica's gap is within retention but beyond its budget.
  await withThreeNodes('budget', ['--checkpoint-entries', '20', '--cluster-catchup-entries-max', '5'], async ({ members, start, primaryUrl, write }) => {
    const [primary, , lagging] = members
    // Retried while 503: right after formation the primary may not hold its lease yet.
    assert.equal((await writeOnPrimary(primaryUrl, '/v2/bank', {})).status, 204)
    for (let i = 1; i <= 5; i++) await write(i)

    await killTally(lagging.server as ServerProcess)
    lagging.server = undefined
    for (let i = 6; i <= 60; i++) await write(i)
    await until('the primary holds a trusted snapshot', async () => {
      const seen = await view(primary)
      return seen?.snapshots?.newest !== undefined && seen.snapshots.newest.appliedIndex > 20 ? seen : undefined
    })

    await start(lagging)
    const converged = await until('n3 converged on the primary state hash after its rebuild', async () => {
      const [p, r] = await Promise.all([view(primary), view(lagging)])
      if (p === undefined || r === undefined || !r.caughtUp || p.stateHash === undefined) return undefined
      const log = (p.replication?.recoveryLog ?? []).map((line) => line.message)
      if (!log.some((line) => /recovery: n3: rebuild_completed/.test(line))) return undefined
      return r.stateHash?.index === p.stateHash.index && p.appliedIndex === r.appliedIndex ? { p, r, log } : undefined
    }, 90_000)
    assert.deepEqual(converged.r.stateHash, converged.p.stateHash)
    const log = converged.log
    const exceeded = log.findIndex((line) => /recovery: n3: budget_violated entries_exceeded/.test(line))
    assert.ok(exceeded >= 0, `the catch-up exceeded its entries budget\n${log.join('\n')}`)
    const rebuilt = log.findIndex((line, index) => index > exceeded && /recovery: n3: rebuild_source_selected snapshot_tail/.test(line))
    assert.ok(rebuilt > exceeded, `then a rebuild from the snapshot\n${log.join('\n')}`)
    assert.ok(log.some((line, index) => index > exceeded && /recovery: n3: session_invalidated budget_entries_exceeded state=needs_rebuild/.test(line)), log.join('\n'))
    assert.equal(converged.p.replication?.replicas.find((replica) => replica.replicaId === 'n3')?.state, 'in_sync')
  })
})
