// `tally serve --cluster` flags (parsing only), and the shared cluster id:
// a data directory of another cluster is refused before it serves.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseServeArgs } from '../../src/cli/serve-command.ts'
import { LedgerNode } from '../../src/server/index.ts'
import { EtcdControlPlane, sharedClusterId } from '../../src/cluster/index.ts'
import { EtcdCluster, etcdSkip } from '../support/etcd.ts'
import { spawnTally } from '../support/server-process.ts'
import { tempDirectory } from '../support/temp.ts'

test('serve: without --cluster nothing changes; the cluster flags go together and are checked', () => {
  const single = parseServeArgs([], {})
  assert.ok(single !== 'help')
  assert.equal(single.cluster, undefined)

  const flags = parseServeArgs(['--cluster', 'etcd://127.0.0.1:2379', '--node-id', 'n1', '--peer-listen', '127.0.0.1:4068'], {})
  assert.ok(flags !== 'help')
  assert.deepEqual(flags.cluster, {
    url: 'etcd://127.0.0.1:2379',
    endpoints: ['127.0.0.1:2379'],
    prefix: '/tally/',
    nodeId: 'n1',
    peerHost: '127.0.0.1',
    peerPort: 4068,
    size: 3,
    durability: 'sync_quorum',
    leaseTtlSeconds: 3,
    writeDeadlineMs: 5_000,
    peerBackoffMsMin: 50,
    peerBackoffMsMax: 5_000,
    recovery: { catchUpSecondsMax: undefined, catchUpEntriesMax: undefined, catchUpStallSeconds: undefined, rebuildStallSeconds: undefined },
  })
  const env = parseServeArgs([], {
    TALLY_CLUSTER: 'etcd://10.0.0.1:2379,10.0.0.2:2379/ledgers/',
    TALLY_NODE_ID: 'node-2',
    TALLY_PEER_LISTEN: '[::1]:4069',
    TALLY_CLUSTER_SIZE: '2',
    TALLY_CLUSTER_LEASE_TTL_SECONDS: '5',
    TALLY_CLUSTER_WRITE_DEADLINE_MS: '1500',
    TALLY_PEER_BACKOFF_MS_MIN: '100',
    TALLY_PEER_BACKOFF_MS_MAX: '60000',
  })
  assert.ok(env !== 'help')
  assert.equal(env.cluster?.prefix, '/ledgers/')
  assert.deepEqual(env.cluster?.endpoints, ['10.0.0.1:2379', '10.0.0.2:2379'])
  assert.equal(env.cluster?.peerHost, '::1')
  assert.equal(env.cluster?.durability, 'sync_all', 'below 3 members the default is sync_all')
  assert.equal(env.cluster?.leaseTtlSeconds, 5)
  assert.deepEqual([env.cluster?.writeDeadlineMs, env.cluster?.peerBackoffMsMin, env.cluster?.peerBackoffMsMax], [1_500, 100, 60_000])
  // The primary's recovery limits, by flag or environment; each needs --cluster, a duration at most a day.
  const limits = parseServeArgs(['--cluster', 'etcd://127.0.0.1:2379', '--node-id', 'n1', '--peer-listen', '127.0.0.1:4068', '--cluster-catchup-entries-max', '5', '--cluster-rebuild-stall-seconds', '30'], { TALLY_CLUSTER_CATCHUP_SECONDS_MAX: '120', TALLY_CLUSTER_CATCHUP_STALL_SECONDS: '4' })
  assert.ok(limits !== 'help')
  assert.deepEqual(limits.cluster?.recovery, { catchUpSecondsMax: 120, catchUpEntriesMax: 5, catchUpStallSeconds: 4, rebuildStallSeconds: 30 })
  assert.throws(() => parseServeArgs(['--cluster-catchup-entries-max', '5'], {}), /--cluster-catchup-entries-max need --cluster/)
  assert.throws(() => parseServeArgs(['--cluster', 'etcd://127.0.0.1:2379', '--node-id', 'n1', '--peer-listen', '127.0.0.1:4068', '--cluster-catchup-seconds-max', '100000'], {}), /--cluster-catchup-seconds-max: at most 86400/)
  assert.throws(() => parseServeArgs(['--cluster', 'etcd://127.0.0.1:2379', '--node-id', 'n1', '--peer-listen', '127.0.0.1:4068', '--cluster-catchup-stall-seconds', '0'], {}), /positive integer/)

  const base = ['--cluster', 'etcd://127.0.0.1:2379', '--node-id', 'n1', '--peer-listen', '127.0.0.1:4068']
  assert.throws(() => parseServeArgs(['--node-id', 'n1'], {}), /--node-id need --cluster/)
  assert.throws(() => parseServeArgs(['--cluster', 'etcd://127.0.0.1:2379', '--peer-listen', '127.0.0.1:4068'], {}), /needs --node-id/)
  assert.throws(() => parseServeArgs(['--cluster', 'etcd://127.0.0.1:2379', '--node-id', 'n1'], {}), /needs --peer-listen/)
  assert.throws(() => parseServeArgs(['--cluster', 'http://127.0.0.1:2379', '--node-id', 'n1', '--peer-listen', '127.0.0.1:4068'], {}), /--cluster: expected etcd:\/\//)
  assert.throws(() => parseServeArgs([...base.slice(0, 2), '--node-id', 'n/1', ...base.slice(4)], {}), /--node-id: expected 1 to 64/)
  assert.throws(() => parseServeArgs([...base.slice(0, 4), '--peer-listen', '4068'], {}), /--peer-listen: expected HOST:PORT/)
  // Port 0 listens on a free port (the bound one is registered); the advertised addresses below refuse it.
  const anyPort = parseServeArgs([...base.slice(0, 4), '--peer-listen', '127.0.0.1:0'], {})
  assert.ok(anyPort !== 'help')
  assert.equal(anyPort.cluster?.peerPort, 0)
  assert.throws(() => parseServeArgs([...base, '--peer-advertise', '10.0.0.7:0'], {}), /--peer-advertise: expected a HOST:PORT other nodes can dial/)
  // The advertised addresses are what other nodes dial: registered as given, never a wildcard or port 0.
  const advertised = parseServeArgs([...base.slice(0, 4), '--peer-listen', '0.0.0.0:4068', '--peer-advertise', '10.0.0.7:5068', '--advertise', '[fd00::7]:3068'], {})
  assert.ok(advertised !== 'help')
  assert.deepEqual(advertised.cluster?.peerAdvertise, { host: '10.0.0.7', port: 5068 })
  assert.equal(advertised.cluster?.advertise, '[fd00::7]:3068')
  const advertisedEnv = parseServeArgs(base, { TALLY_PEER_ADVERTISE: 'proxy.local:7000', TALLY_ADVERTISE: 'api.local:3068' })
  assert.ok(advertisedEnv !== 'help')
  assert.deepEqual(advertisedEnv.cluster?.peerAdvertise, { host: 'proxy.local', port: 7000 })
  assert.equal(advertisedEnv.cluster?.advertise, 'api.local:3068')
  assert.equal(flags.cluster?.peerAdvertise, undefined, 'absent: the listen address is registered')
  assert.throws(() => parseServeArgs([...base, '--peer-advertise', '0.0.0.0:4068'], {}), /--peer-advertise: expected a HOST:PORT other nodes can dial/)
  assert.throws(() => parseServeArgs([...base, '--advertise', '10.0.0.7:0'], {}), /--advertise: expected a HOST:PORT other nodes can dial/)
  assert.throws(() => parseServeArgs(['--peer-advertise', '10.0.0.7:5068'], {}), /--peer-advertise need --cluster/)
  assert.throws(() => parseServeArgs([...base, '--durability', 'fast'], {}), /--durability: expected one of sync_all, sync_quorum, best_effort/)
  assert.throws(() => parseServeArgs([...base, '--durability', 'sync_quorum', '--cluster-size', '2'], {}), /at least 3 members/)
  assert.throws(() => parseServeArgs([...base, '--cluster-lease-ttl-seconds', '0'], {}), /--cluster-lease-ttl-seconds/)
  assert.throws(() => parseServeArgs([...base, '--cluster-write-deadline-ms', '0'], {}), /--cluster-write-deadline-ms/)
  assert.throws(() => parseServeArgs([...base, '--peer-backoff-ms-min', '500', '--peer-backoff-ms-max', '100'], {}), /--peer-backoff-ms-min/)
  assert.throws(() => parseServeArgs(['--peer-backoff-ms-max', '100'], {}), /--peer-backoff-ms-max need --cluster/)
})

test('serve --cluster: the cluster id comes from etcd (the first node creates it) and a data directory of another cluster is refused', { skip: etcdSkip, timeout: 60_000 }, async () => {
  const etcd = await EtcdCluster.start()
  const control = EtcdControlPlane.connect({ endpoints: etcd.endpoints })
  const data = tempDirectory()
  try {
    const first = await sharedClusterId(control, 'cluster-a')
    assert.equal(first, 'cluster-a')
    assert.equal(await sharedClusterId(control, 'cluster-b'), 'cluster-a', 'the first id wins; later nodes read it')

    // A data directory made for another cluster.
    const other = await LedgerNode.open({ dataDirectory: data.directory, clusterId: 'cluster-b' })
    await other.close()
    await assert.rejects(
      spawnTally({ dataDirectory: data.directory, args: ['--cluster', etcd.url, '--node-id', 'n1', '--peer-listen', '127.0.0.1:1'] }),
      /data directory .* belongs to cluster cluster-b, but etcd at .* holds cluster cluster-a/,
    )
  } finally {
    control.close()
    await etcd.close()
    data.remove()
  }
})
