// A replica installs a base image by closing its store and reopening on it
// (as the real one does, `docs/cluster.md`), which ends the connection. The
// rebuild must survive that: the session and its pins wait for the replica's
// next handshake, which finds it at the image, and the tail follows. Before
// the recovery core knew about reopens (planted again as
// `rebuildIgnoresReopen`), the executor shipped the tail over the ended
// connection, failed into `needs_rebuild`, and the image was offered again,
// forever.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ReplicaId } from '../../src/replication/index.ts'
import { runSeeds } from '../../src/sim/index.ts'
import { expectClean, expectEvent, expectMatchesReference, indexAfter, indexOf, replicaBehindRetention } from './helpers.ts'

const n3 = ReplicaId.of('n3')


test('a rebuild whose replica reopens on the image finishes: the next handshake finds it at the image, the tail follows, once', () => {
  const cluster = replicaBehindRetention()
  cluster.run(30)
  const awaiting = indexOf(cluster, 'engine', 'rebuild_awaiting_reopen replica=n3', 'lsn=7')
  assert.ok(awaiting >= 0)
  const reopened = indexAfter(cluster, awaiting, 'action', 'reopen n3 on its installed image')
  assert.ok(reopened > awaiting)
  const resumed = indexAfter(cluster, reopened, 'engine', 'rebuild_reopened replica=n3', 'flushed=7', 'image=7')
  assert.ok(resumed > reopened)
  assert.ok(indexAfter(cluster, resumed, 'engine', 'rebuild_tail_replayed replica=n3', 'lsn=10') > resumed)
  expectEvent(cluster, 'engine', 'rebuild_completed replica=n3', 'lsn=10')
  assert.equal(cluster.runtime?.registry.sender(n3)?.state, 'in_sync')
  assert.equal(cluster.stats.reopens, 1)
  assert.equal(cluster.stats.rebuildsCompleted, 1)
  assert.equal(cluster.stats.rebuildsResumedAfterReopen, 1)
  expectMatchesReference(cluster, 'n3')
  expectClean(cluster)
})

test('planted rebuildIgnoresReopen (the old core): the image is offered again and again, the replica never gets in sync', () => {
  const cluster = replicaBehindRetention({ faults: { rebuildIgnoresReopen: true } })
  cluster.run(200)
  assert.notEqual(cluster.runtime?.registry.sender(n3)?.state, 'in_sync')
  assert.ok(cluster.stats.reopens >= 5, `reopens ${cluster.stats.reopens}`)
  assert.equal(cluster.stats.rebuildsCompleted, 0)
  expectEvent(cluster, 'engine', 'session_invalidated replica=n3', 'reason=node_down', 'state=needs_rebuild')
})

test('planted rebuildIgnoresReopen: random seeds catch it as a liveness violation; the same seeds are clean without it', () => {
  const seeds = { firstSeed: 1, count: 8, steps: 250 }
  const planted = runSeeds({ ...seeds, faults: { rebuildIgnoresReopen: true } })
  const kinds = planted.failures.map((failure) => failure.violations[0]?.kind)
  assert.ok(kinds.includes('liveness'), `expected liveness in seeds 1..8, got [${kinds.join(',')}]`)
  assert.equal(runSeeds(seeds).failures.length, 0)
})

test('a replica that installs under a live connection (replicaReopenTicks 0) still rebuilds without any reopen', () => {
  const cluster = replicaBehindRetention({ replicaReopenTicks: 0 })
  cluster.run(30)
  expectEvent(cluster, 'engine', 'rebuild_completed replica=n3', 'lsn=10')
  assert.equal(cluster.stats.reopens, 0)
  expectMatchesReference(cluster, 'n3')
  expectClean(cluster)
})
