// `tally serve --cluster` end to end: three real server processes and a real
// etcd. The cluster forms; writes on the primary are read on every replica
// (Tally-Min-Applied-Index); state hashes agree at equal applied indexes; a
// write sent to a replica is forwarded; SIGKILL of the primary under a small
// bounded load promotes a replica that holds every acknowledged transfer
// exactly once (balances, Σ = 0); the old primary restarts as a replica and
// converges. Skips with one line without etcd.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SDK } from '@formance/formance-sdk'
import { clusterExit, runClusterCommand } from '../../src/cli/cluster-command.ts'
import { EtcdCluster, etcdSkip } from '../support/etcd.ts'
import { killTally, spawnTally, type ServerProcess } from '../support/server-process.ts'
import { tempDirectory } from '../support/temp.ts'
import { until } from './helpers.ts'
import { balance as balanceOf, call, clusterView, freePort, startOnFreePeerPort, writeOnPrimary, type ClusterView } from './process-cluster.ts'

interface Member {
  readonly id: string
  readonly data: { directory: string; remove: () => void }
  peerPort: number
  server: ServerProcess | undefined
}

async function view(member: Member): Promise<ClusterView | undefined> {
  return clusterView(member.server)
}

const balance = (base: string, account: string, minIndex: number): Promise<bigint> => balanceOf(base, 'bank', account, minIndex)

const accounts = ['users:a', 'users:b', 'users:c']

test('tally serve --cluster: three processes form a cluster, replicate, forward writes, and fail over without losing an acknowledged transfer', { skip: etcdSkip, timeout: 110_000 }, async () => {
  const etcd = await EtcdCluster.start()
  const members: Member[] = []
  try {
    for (const id of ['n1', 'n2', 'n3']) members.push({ id, data: tempDirectory(`tally-${id}-`), peerPort: await freePort(), server: undefined })
    const start = async (member: Member): Promise<void> => {
      member.server = await startOnFreePeerPort(member, () => spawnTally({
        dataDirectory: member.data.directory,
        args: ['--cluster', etcd.url, '--node-id', member.id, '--peer-listen', `127.0.0.1:${member.peerPort}`, '--cluster-lease-ttl-seconds', '2', '--log-level', process.env.TALLY_TEST_LOG_LEVEL ?? 'warn'],
      }))
    }
    await Promise.all(members.map(start))

    // The cluster forms: the lowest id is primary at the first epoch, every node ready.
    const formed = await until('the cluster formed', async () => {
      const views = await Promise.all(members.map(view))
      if (views.some((v) => v === undefined || !v.caughtUp)) return undefined
      const roles = views.map((v) => v?.role)
      return roles[0] === 'primary' && roles[1] === 'replica' && roles[2] === 'replica' ? views : undefined
    }, 30_000)
    const firstEpoch = formed[0]?.epoch ?? 0
    assert.ok(firstEpoch > 0)
    const primaryUrl = members[0]?.server?.baseUrl as string

    // tally cluster status sees the assignment and what the nodes report (reports follow within a tick).
    type Status = { assignment: { primary: string; epoch: number; replicas: string[] }; members: Array<{ node: string; registered: boolean; report: { epoch: number } | null }> }
    const status = await until('every node reports the first epoch', async () => {
      const out: string[] = []
      assert.equal(await runClusterCommand(['status', '--cluster', etcd.url, '--json'], { out: (text) => out.push(text), err: () => {}, env: {} }), clusterExit.ok)
      const parsed = JSON.parse(out.join('')) as Status
      return parsed.members.every((member) => member.registered && member.report?.epoch === firstEpoch) ? parsed : undefined
    })
    assert.equal(status.assignment.primary, 'n1')
    assert.equal(status.assignment.epoch, firstEpoch)
    assert.deepEqual(status.assignment.replicas, ['n2', 'n3'])
    assert.deepEqual(status.members.map((member) => member.node), ['n1', 'n2', 'n3'])

    // Writes on the primary; read on each replica at or after the write's index.
    assert.equal((await writeOnPrimary(primaryUrl, '/v2/bank', {})).status, 204)
    let lastIndex = 0
    for (const account of accounts) {
      const written = await call(primaryUrl, 'POST', '/v2/bank/transactions', { postings: [{ source: 'world', destination: account, amount: 1000, asset: 'USD' }] })
      assert.equal(written.status, 200, JSON.stringify(written.json))
      lastIndex = Math.max(lastIndex, Number(written.headers.get('tally-applied-index')))
    }
    for (const member of members.slice(1)) {
      for (const account of accounts) assert.equal(await balance(member.server?.baseUrl as string, account, lastIndex), 1000n, `${member.id} reads ${account}`)
    }

    // A write sent to a replica is forwarded to the primary.
    const forwarded = await call(members[1]?.server?.baseUrl as string, 'POST', '/v2/bank/transactions', { postings: [{ source: 'users:a', destination: 'users:b', amount: 1, asset: 'USD' }] }, { 'Idempotency-Key': 'forwarded-1' })
    assert.equal(forwarded.status, 200, JSON.stringify(forwarded.json))
    const forwardedIndex = Number(forwarded.headers.get('tally-applied-index'))
    assert.equal(await balance(members[2]?.server?.baseUrl as string, 'users:b', forwardedIndex), 1001n)
    // The Formance SDK pointed at a replica works too (its gateway paths are forwarded alike).
    const sdk = new SDK({ serverURL: members[2]?.server?.baseUrl as string })
    const created = await sdk.ledger.v2.createTransaction({ ledger: 'bank', v2PostTransaction: { postings: [{ source: 'users:b', destination: 'users:c', amount: 1n, asset: 'USD' }], metadata: {}, reference: 'sdk-1' } })
    assert.equal(created.statusCode, 200)
    const sdkIndex = Number(created.headers['tally-applied-index']?.[0] ?? 0)
    assert.equal(await balance(members[1]?.server?.baseUrl as string, 'users:c', Math.max(sdkIndex, forwardedIndex + 1)), 1001n)

    // Equal state hashes at equal applied indexes.
    await until('equal state hashes at one applied index', async () => {
      const views = await Promise.all(members.map(view))
      const hashes = new Set(views.map((v) => `${v?.stateHash?.index}:${v?.stateHash?.hash}`))
      return hashes.size === 1 && views[0]?.appliedIndex === views[0]?.stateHash?.index ? true : undefined
    })

    // A small bounded load of transfers on the primary; SIGKILL the primary in the middle of it.
    const acknowledged = new Set<number>()
    const sent: number[] = []
    const transfer = (i: number) => ({ from: accounts[i % 3] as string, to: accounts[(i + 1) % 3] as string, amount: 1 + (i % 5) })
    const send = (base: string, i: number) => {
      const { from, to, amount } = transfer(i)
      return call(base, 'POST', '/v2/bank/transactions', { postings: [{ source: from, destination: to, amount, asset: 'USD' }] }, { 'Idempotency-Key': `load-${i}` })
    }
    let stopLoad = false
    // Four clients at once, 100 transfers each at most.
    const worker = async (first: number): Promise<void> => {
      for (let i = first; i < first + 100 && !stopLoad; i++) {
        sent.push(i)
        try {
          if ((await send(primaryUrl, i)).status === 200) acknowledged.add(i)
        } catch {
          return // the primary is gone
        }
      }
    }
    const load = Promise.all([0, 100, 200, 300].map(worker))
    await until('some transfers acknowledged', () => (acknowledged.size >= 40 ? true : undefined))
    await killTally(members[0]?.server as ServerProcess)
    stopLoad = true
    await load
    assert.ok(acknowledged.size >= 40)

    // An eligible replica is promoted and takes writes.
    const promoted = await until('a replica promoted', async () => {
      for (const member of members.slice(1)) {
        const v = await view(member)
        if (v !== undefined && v.role === 'primary' && v.epoch > firstEpoch && v.caughtUp) return member
      }
      return undefined
    }, 30_000)
    const newPrimaryUrl = promoted.server?.baseUrl as string
    const after = await writeOnPrimary(newPrimaryUrl, '/v2/bank/transactions', { postings: [{ source: 'world', destination: 'users:c', amount: 7, asset: 'USD' }] })
    assert.equal(after.status, 200, JSON.stringify(after.json))
    let afterIndex = Number(after.headers.get('tally-applied-index'))

    // Every acknowledged transfer is there exactly once: balances match, Σ = 0.
    const expected = new Map<string, bigint>(accounts.map((account) => [account, 1000n]))
    expected.set('users:c', (expected.get('users:c') ?? 0n) + 7n)
    expected.set('users:a', (expected.get('users:a') ?? 0n) - 1n)
    expected.set('users:b', (expected.get('users:b') ?? 0n) + 1n - 1n)
    expected.set('users:c', (expected.get('users:c') ?? 0n) + 1n)
    // Sent and not acknowledged (the primary died first): may or may not be committed. Retried with their keys, each lands once.
    for (const i of sent) {
      if (!acknowledged.has(i)) {
        const retried = await send(newPrimaryUrl, i)
        assert.equal(retried.status, 200, JSON.stringify(retried.json))
      }
      const { from, to, amount } = transfer(i)
      expected.set(from, (expected.get(from) ?? 0n) - BigInt(amount))
      expected.set(to, (expected.get(to) ?? 0n) + BigInt(amount))
    }
    const settled = await call(newPrimaryUrl, 'POST', '/v2/bank/transactions', { postings: [{ source: 'world', destination: 'users:c', amount: 1, asset: 'USD' }] })
    expected.set('users:c', (expected.get('users:c') ?? 0n) + 1n)
    assert.equal(settled.status, 200, JSON.stringify(settled.json))
    afterIndex = Number(settled.headers.get('tally-applied-index'))
    let sum = 0n
    for (const account of accounts) {
      const actual = await balance(newPrimaryUrl, account, afterIndex)
      assert.equal(actual, expected.get(account), `balance of ${account} on the new primary`)
      sum += actual
    }
    assert.equal(sum + (await balance(newPrimaryUrl, 'world', afterIndex)), 0n, 'Σ balances = 0')

    // The old primary restarts at a new peer address, rejoins as a replica (its uncommitted tail cut) and converges.
    ;(members[0] as Member).peerPort = await freePort()
    await start(members[0] as Member)
    const final = await until('the old primary rejoined and every node converged', async () => {
      const views = await Promise.all(members.map(view))
      if (views.some((v) => v === undefined || !v.caughtUp)) return undefined
      if (views[0]?.role !== 'replica') return undefined
      const hashes = new Set(views.map((v) => `${v?.appliedIndex}:${v?.stateHash?.index}:${v?.stateHash?.hash}`))
      return hashes.size === 1 ? views : undefined
    }, 30_000)
    assert.ok((final[0]?.appliedIndex ?? 0) >= afterIndex)
    for (const account of accounts) assert.equal(await balance(members[0]?.server?.baseUrl as string, account, afterIndex), expected.get(account), `${account} on the rejoined node`)

    // A replica killed and restarted at a new peer address: the primary's link follows its new registration.
    const replica = members.find((member) => member !== promoted && member !== members[0]) as Member
    await killTally(replica.server as ServerProcess)
    replica.peerPort = await freePort()
    await start(replica)
    const moved = await call(newPrimaryUrl, 'POST', '/v2/bank/transactions', { postings: [{ source: 'world', destination: 'users:moved', amount: 3, asset: 'USD' }] })
    assert.equal(moved.status, 200, JSON.stringify(moved.json))
    assert.equal(await balance(replica.server?.baseUrl as string, 'users:moved', Number(moved.headers.get('tally-applied-index'))), 3n, 'the moved replica caught up')

    // A write acknowledged just before its primary dies, with nothing after it to carry its commit to the
    // replicas, survives: the commit is recorded in etcd before the answer, and the promotion keeps it.
    const marker = await call(newPrimaryUrl, 'POST', '/v2/bank/transactions', { postings: [{ source: 'world', destination: 'users:marker', amount: 5, asset: 'USD' }] })
    assert.equal(marker.status, 200, JSON.stringify(marker.json))
    const markerIndex = Number(marker.headers.get('tally-applied-index'))
    await killTally(promoted.server as ServerProcess)
    const survivors = members.filter((member) => member !== promoted)
    const third = await until('another replica promoted', async () => {
      for (const member of survivors) {
        const v = await view(member)
        if (v !== undefined && v.role === 'primary' && v.caughtUp) return member
      }
      return undefined
    }, 30_000)
    assert.equal(await balance(third.server?.baseUrl as string, 'users:marker', markerIndex), 5n, 'the last acknowledged write survived the second failover')

    // etcd gone: the primary's lease lapses and writes are refused, 503 + Retry-After, before they are logged.
    for (const member of etcd.members) await member.kill()
    const refused = await until('writes refused while etcd is unreachable', async () => {
      try {
        const response = await fetch(`${third.server?.baseUrl as string}/v2/bank/transactions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ postings: [{ source: 'world', destination: 'users:late', amount: 1, asset: 'USD' }] }),
          signal: AbortSignal.timeout(1_000),
        })
        return response.status === 503 ? response : undefined
      } catch {
        return undefined // held: admitted before the lease lapsed, waiting for etcd
      }
    })
    assert.equal(refused.headers.get('retry-after'), '1')
    assert.match(await refused.text(), /NOT_PRIMARY: the primary's lease/)
  } catch (error) {
    // What each server said, for the failure report.
    for (const member of members) process.stderr.write(`--- ${member.id} (${JSON.stringify(await view(member))})\n${member.server?.stderr() ?? ''}\n`)
    throw error
  } finally {
    await Promise.all(members.map(async (member) => (member.server === undefined ? undefined : killTally(member.server, 'SIGKILL'))))
    await etcd.close()
    for (const member of members) member.data.remove()
  }
})
