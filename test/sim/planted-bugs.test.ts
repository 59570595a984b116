// Issue #10's table, re-run: each bug is planted behind a fault flag inside
// the protocol module that owns the rule (`src/replication/faults.ts`, off by
// default), and the randomized simulator — seeded `runSeeds`, as `tally sim`
// runs it, not a scripted scenario — must catch it within a fixed seed set.
//
// Explored once and pinned here (250 steps; seeds draw tight timers, a
// faulty disk, a network handshake, coordinator partitions and coordinator
// restarts, see docs/simulator.md):
//   reliable network, seeds 1–200:
//     syncAllCountedAsMajority   74 caught, first seed 4    commit_not_durable (independent audit)
//     keepPinsOnBudgetViolation  18 caught, first seed 2    pin_leaked (tight budgets make violations common)
//     retentionBoundaryOffByOne   6 caught, first seed 32   liveness (a replica never gets back in sync)
//     acceptOlderAssignment      46 caught, first seed 2    endpoint_regressed (a restarted coordinator's
//                                                           membership update names addresses members left)
//   network model (2 ticks of extra delay, 2% loss, 2% duplicates), seeds 1–150:
//     acceptOlderEpochTraffic     2 caught, first seed 11   in_sync_replica_diverged
//     acceptOlderAssignment      61 caught, first seed 2    endpoint_regressed (also reordered membership updates)
// Not caught (0 of 200, 0 of 150, and 0 of 300 with coordinator partitions,
// coordinator restarts and the network handshake, reliable or lossy), kept as
// todo tests so the gap stays visible; each todo names why.
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

test('planted: pins kept on the budget-violation exit are caught as pin_leaked', () => {
  expectCaught({ keepPinsOnBudgetViolation: true }, { firstSeed: 1, count: 4 }, 'pin_leaked')
})

test('planted, network model on: pins kept on the budget-violation exit are caught early', () => {
  expectCaught({ keepPinsOnBudgetViolation: true }, { firstSeed: 1, count: 4 }, 'pin_leaked', lossyNetwork)
})

test('planted: the registry applying an older assignment is caught (a restarted coordinator re-reads no addresses and names ones its members left)', () => {
  expectCaught({ acceptOlderAssignment: true }, { firstSeed: 1, count: 4 }, 'endpoint_regressed')
})

test('planted, network model on: the registry applying an older assignment is caught (a reordered membership update moves a sender back to an address its replica left)', () => {
  expectCaught({ acceptOlderAssignment: true }, { firstSeed: 25, count: 4 }, 'endpoint_regressed', lossyNetwork)
})

test('planted, network model on: a replica accepting older-epoch ship/barrier traffic is caught', () => {
  expectCaught({ acceptOlderEpochTraffic: true }, { firstSeed: 11, count: 4 }, 'in_sync_replica_diverged', lossyNetwork)
})

const notCaughtYet: Array<[keyof ProtocolFaults, string]> = [
  [
    'catchUpTargetNotFrozen',
    'harmless in this design, and never triggered: the streamer reports the replica\'s acknowledged durable LSN, which cannot pass the target during a catch-up (nothing above it is shipped before completion, and the ack was lowered to the handshake\'s flushed LSN); and had it passed, every entry above the target is on the primary\'s own lineage (log matching at connect), so completing higher only moves where live shipping resumes',
  ],
  [
    'acceptStaleEpochTicket',
    'masked by design: every path that moves a sender to a newer epoch invalidates its active session first, so an older-epoch ticket is refused as session_inactive before the epoch is compared, and executors check their session before each call; tickets never cross the network (a late handshake or truncate answer carries only a session id, matched against the live session), so no older-epoch ticket is ever presented',
  ],
  [
    'skipReplicaAheadTruncation',
    'redundant in this design: the only tail a replica can hold above the committed LSN at connect is on the primary\'s own lineage, because log matching by (LSN, epoch) at connect drops every other tail, and a node adopting a newer epoch (a deposed primary rejoining, or a replica that took its uncommitted writes) first drops everything above its lineage-safe LSN; skipping the truncation leaves entries equal to what the primary ships next, and the ack still counted for them is true',
  ],
]

for (const [fault, why] of notCaughtYet) {
  test(`planted, not caught yet: ${fault}`, { todo: why }, () => {
    const summary = runSeeds({ firstSeed: 1, count: 20, steps, faults: { [fault]: true } })
    assert.ok(summary.failures.length > 0, `${fault} is not caught by seeds 1..20: ${why}`)
  })
}
