// Issue #10's table, re-run: each bug is planted behind a fault flag inside
// the protocol module that owns the rule (`src/replication/faults.ts`, off by
// default), and the randomized simulator — seeded `runSeeds`, as `tally sim`
// runs it, not a scripted scenario — must catch it within a fixed seed set.
//
// Caught today (seeds 1–200, 250 steps, explored once and pinned here):
//   syncAllCountedAsMajority   75/200, first seed 4    commit_not_durable (independent audit)
//   retentionBoundaryOffByOne   6/200, first seed 32   liveness (a replica never gets back in sync)
//   keepPinsOnBudgetViolation   1/200, seed 186        pin_leaked (budget violations are rare)
// With the network model on (2 ticks of extra delay, 2% loss, 2% duplicates;
// seeds 1–150):
//   keepPinsOnBudgetViolation  75/150, first seed 2    pin_leaked (delays make budgets trip)
//   acceptOlderEpochTraffic     4/150, first seed 21   commit_not_durable, in_sync_replica_diverged
// Not caught yet (0/200), kept as todo tests so the gap stays visible. Our
// reading of why (each todo names it): nothing in the simulator yet presents
// the stale input the rule rejects — adapter completions arriving after an
// epoch change (issue point 2), messages and assignments delayed or
// reordered across epochs (point 3) — or another layer masks the bug.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runSeeds } from '../../src/sim/index.ts'
import type { NetworkModel } from '../../src/sim/index.ts'
import type { ProtocolFaults } from '../../src/replication/index.ts'

const steps = 250

const lossyNetwork: NetworkModel = { delayTicksMax: 2, lossPercent: 2, duplicatePercent: 2 }

function expectCaught(faults: ProtocolFaults, seeds: { firstSeed: number; count: number }, kind: string, network?: NetworkModel): void {
  const summary = runSeeds({ ...seeds, steps, faults, ...(network === undefined ? {} : { network }) })
  const kinds = summary.failures.map((failure) => failure.violations[0]?.kind)
  assert.ok(kinds.includes(kind as never), `expected ${kind} in seeds ${seeds.firstSeed}..${seeds.firstSeed + seeds.count - 1}, got [${kinds.join(',')}]`)
  const clean = runSeeds({ ...seeds, steps, ...(network === undefined ? {} : { network }) })
  assert.equal(clean.failures.length, 0, 'the same seeds are clean without the fault')
}

test('planted: sync_all counted as a majority is caught by the durability audit', () => {
  expectCaught({ syncAllCountedAsMajority: true }, { firstSeed: 1, count: 10 }, 'commit_not_durable')
})

test('planted: retention boundary off by one is caught by the liveness check', () => {
  expectCaught({ retentionBoundaryOffByOne: true }, { firstSeed: 25, count: 10 }, 'liveness')
})

test('planted: pins kept on the budget-violation exit are caught as pin_leaked (in the one seed of 200 that violates a budget)', () => {
  expectCaught({ keepPinsOnBudgetViolation: true }, { firstSeed: 183, count: 6 }, 'pin_leaked')
})

test('planted, network model on: pins kept on the budget-violation exit are caught early', () => {
  expectCaught({ keepPinsOnBudgetViolation: true }, { firstSeed: 1, count: 4 }, 'pin_leaked', lossyNetwork)
})

test('planted, network model on: a replica accepting older-epoch ship/barrier traffic is caught', () => {
  expectCaught({ acceptOlderEpochTraffic: true }, { firstSeed: 19, count: 4 }, 'commit_not_durable', lossyNetwork)
})

const notCaughtYet: Array<[keyof ProtocolFaults, string]> = [
  ['acceptStaleEpochTicket', 'executors present their ticket in the same tick they read it; needs async adapter completions (point 2)'],
  [
    'skipReplicaAheadTruncation',
    'log matching at connect already cut any divergent tail, so what remains ahead is the primary lineage; the checker stops at committed',
  ],
  ['acceptOlderAssignment', 'the primary reconciles only at its own epoch; needs a coordinator acting late by compare-and-swap (point 3)'],
]

for (const [fault, why] of notCaughtYet) {
  test(`planted, not caught yet: ${fault}`, { todo: why }, () => {
    const summary = runSeeds({ firstSeed: 1, count: 20, steps, faults: { [fault]: true } })
    assert.ok(summary.failures.length > 0, `${fault} is not caught by seeds 1..20: ${why}`)
  })
}
