// The process-cluster harness itself: a restart whose peer port another test
// file took meanwhile moves the member to a new port instead of failing the
// test (seen under load: "peer port … is already in use").
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { EtcdCluster, etcdSkip } from '../support/etcd.ts'
import { ProcessCluster } from './process-cluster.ts'

test('a member whose peer port is taken starts on another one behind the same proxy', { skip: etcdSkip, timeout: 120_000 }, async () => {
  const etcd = await EtcdCluster.start()
  const cluster = await ProcessCluster.create(etcd, { ids: ['n1'] })
  const blocker = net.createServer()
  try {
    const member = cluster.member('n1')
    const taken = member.peerPort
    await new Promise<void>((resolve) => blocker.listen(taken, '127.0.0.1', resolve))
    const server = await cluster.start(member)
    assert.notEqual(member.peerPort, taken)
    assert.equal((await fetch(`${server.baseUrl}/_/healthz`)).status, 200)
  } finally {
    blocker.close()
    await cluster.close()
    await etcd.close()
  }
})
