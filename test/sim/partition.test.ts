// A live primary cut off from the coordinator (issue #10, point 3): it keeps
// running on its lease, stops acknowledging when the lease cannot be
// renewed, is replaced only after that, serves on deposed (clients still
// write there, nothing of it is acknowledged), and steps down with its
// uncommitted tail dropped once the coordinator reaches it again. Then the
// randomized runs with coordinator partitions: clean, and the deposed-primary
// paths occur.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Lsn, ReplicaId } from '../../src/replication/index.ts'
import { runRandom, runSeeds } from '../../src/sim/index.ts'
import { leaseTermsPartitioned } from '../../src/sim/random.ts'
import { expectClean, expectEvent, traced, writes } from './helpers.ts'

const [n1, n2, n3] = ['n1', 'n2', 'n3'].map((id) => ReplicaId.of(id)) as [ReplicaId, ReplicaId, ReplicaId]

test('a partitioned primary stops acknowledging when its lease lapses, before the coordinator replaces it, and steps down after', () => {
  const cluster = traced({ primaryLease: leaseTermsPartitioned, leaseTimeoutTicks: leaseTermsPartitioned.leaseTicks })
  cluster.run(4)
  writes(cluster, 3)
  cluster.run(4)
  assert.equal(cluster.coordinator.committedLsn, Lsn.of(3))

  cluster.isolateFromCoordinator(n1)
  const isolatedAt = cluster.now
  writes(cluster, 2)
  let commitsRefusedAt: number | undefined
  while (cluster.deposed().length === 0) {
    assert.ok(cluster.now < isolatedAt + 30, 'the coordinator replaces the silent primary')
    cluster.tick()
    if (commitsRefusedAt === undefined && cluster.trace().some((event) => event.text.includes('reason=lease_not_held'))) commitsRefusedAt = cluster.now
    writes(cluster, 1)
  }
  const promotedAt = cluster.now
  const deposed = cluster.deposed()[0]
  assert.equal(deposed?.nodeId, n1)
  assert.ok(commitsRefusedAt !== undefined && commitsRefusedAt < promotedAt, 'n1 held its commits back before anyone else was promoted')
  assert.equal(deposed.lease?.holds(cluster.now), false)
  const successor = cluster.runtime?.nodeId
  assert.ok(successor === n2 || successor === n3)
  const committedAtPromotion = cluster.coordinator.committedLsn

  // Clients still pointed at n1 write there: never acknowledged, nowhere adopted.
  for (let index = 0; index < 3; index += 1) assert.notEqual(cluster.writeToDeposed(), undefined)
  const deposedHead = cluster.node(n1).headLsn
  cluster.run(6)
  assert.ok(cluster.node(n1).headLsn >= deposedHead, 'the deposed primary keeps running until it learns')
  writes(cluster, 2)
  cluster.run(8)
  expectEvent(cluster, 'commit', `primary=${successor}`)
  assert.ok(cluster.coordinator.committedLsn > committedAtPromotion)

  // The coordinator reaches n1 again: it adopts the newer epoch, drops its uncommitted tail and steps down.
  cluster.linkUp(n1, ReplicaId.of('coordinator'))
  cluster.run(30)
  assert.equal(cluster.deposed().length, 0)
  expectEvent(cluster, 'lease', 'deposed primary n1', 'steps down reason=adopted_newer_epoch')
  assert.equal(cluster.sender(n1)?.state, 'in_sync')
  expectClean(cluster)
})

test('randomized coordinator partitions: deposed primaries and their client writes occur, nothing overlaps, every run settles', () => {
  const summary = runSeeds({ firstSeed: 1, count: 40, steps: 250, shape: { coordinatorLinks: 'partitioned' } })
  assert.deepEqual(
    summary.failures.map((failure) => `${failure.seed}: ${failure.violations.map((v) => `${v.kind} ${v.detail}`).join('; ')}`),
    [],
  )
  assert.ok(summary.totals.primariesDeposed > 0, 'a running primary was replaced')
  assert.ok(summary.totals.writesToDeposed > 0, 'clients wrote to a deposed primary')
  assert.ok(summary.totals.commitsWithoutLease > 0, 'a primary held a commit back without its lease')
})

test('coordinator restarts: a restarted coordinator that re-read no addresses bumps the epoch; every sender still moves to it, and the run settles (seeds 2713 and 4520, 300 steps)', () => {
  for (const seed of [2713, 4520]) {
    const result = runRandom({ seed, steps: 300 })
    assert.equal(result.shape.coordinator, 'restarting')
    assert.deepEqual(result.violations.map((violation) => `${violation.kind} ${violation.detail}`), [], `seed ${seed}`)
    assert.ok(result.settledAfterTicks !== undefined)
  }
})

test('randomized coordinator restarts: outdated writes are refused, every run settles', () => {
  const summary = runSeeds({ firstSeed: 1, count: 30, steps: 250, shape: { coordinator: 'restarting', coordinatorLinks: 'partitioned' } })
  assert.deepEqual(summary.failures.map((failure) => `${failure.seed}: ${failure.violations.map((v) => `${v.kind} ${v.detail}`).join('; ')}`), [])
  assert.ok(summary.totals.coordinatorRestarts > 0)
  assert.ok(summary.totals.assignmentWritesRefused > 0, 'a coordinator acting on an outdated view lost a compare-and-swap')
})

test('randomized suspicions: replicas that lose the primary promote without waiting for its lease, over primaries that still run; nothing overlaps, every run settles', () => {
  const summary = runSeeds({ firstSeed: 1, count: 40, steps: 250, shape: { coordinatorLinks: 'partitioned', detection: 'suspicion' } })
  assert.deepEqual(summary.failures.map((failure) => `${failure.seed}: ${failure.violations.map((v) => `${v.kind} ${v.detail}`).join('; ')}`), [])
  assert.ok(summary.totals.promotionsOnSuspicion > 0, 'a quorum of suspicions promoted')
  assert.ok(summary.totals.primariesDeposed > 0, 'a primary that still ran was replaced')
})

test('planted bug: promoting on one replica\'s suspicion (a one-sided partition) is caught by random seeds', () => {
  const summary = runSeeds({ firstSeed: 1, count: 20, steps: 250, shape: { coordinatorLinks: 'partitioned', detection: 'suspicion' }, plantedBugs: { promoteOnOneSuspicion: true } })
  assert.ok(summary.failures.some((failure) => failure.violations.some((violation) => violation.kind === 'promotion_without_quorum_suspicion')))
})
