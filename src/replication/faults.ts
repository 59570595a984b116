/**
 * Test-only protocol defects, every one off by default. Each re-creates a
 * bug from issue #10's table inside the code under test, so a test can show
 * whether the randomized simulator (not only a scripted test) catches it
 * (`test/sim/planted-bugs.test.ts`). Production code never sets them: the
 * CLI has no way to, and `noFaults` is the default everywhere.
 */
export interface ProtocolFaults {
  /** Sender and executor: catch-up progress past the frozen target is accepted and moves the target with it. */
  readonly catchUpTargetNotFrozen?: boolean
  /** Sender: a ticket from an older epoch passes the authority check. */
  readonly acceptStaleEpochTicket?: boolean
  /** Replica side: ship and barrier traffic from an older epoch passes the fence. */
  readonly acceptOlderEpochTraffic?: boolean
  /** Executor: a catch-up that violates its budget exits without releasing its pins. */
  readonly keepPinsOnBudgetViolation?: boolean
  /** Executor: a replica ahead of the committed LSN is marked truncated without being truncated. */
  readonly skipReplicaAheadTruncation?: boolean
  /** Commit tracker: `sync_all` needs only a majority. */
  readonly syncAllCountedAsMajority?: boolean
  /** Registry: an assignment older than a sender's epoch is applied. */
  readonly acceptOlderAssignment?: boolean
  /** Recoverability: a gap starting one entry below the retention tail counts as retained. */
  readonly retentionBoundaryOffByOne?: boolean
  /**
   * Rebuild executor: a base transfer's `reopening` is ignored, so the
   * executor goes on shipping the tail over the connection the replica's
   * reopen ended, and fails the session into `needs_rebuild`: the image is
   * offered again, forever (the re-offer loop found wiring the driver, #11).
   */
  readonly rebuildIgnoresReopen?: boolean
  /**
   * Membership: a learner (still catching up) is counted among the voters of
   * the commit quorum. Caught by the property test of
   * `test/replication/membership.test.ts` and by seeded random runs with
   * changing membership (`test/sim/membership.test.ts`), as
   * `commit_not_durable`: the simulator's audit counts only the voters of
   * the committing epoch. Observable only where learners' copies can stand
   * in for a majority of the voters (5-node `sync_quorum`).
   */
  readonly learnerCountedAsVoter?: boolean
  // Masking guards: each removes the second guard that keeps one of the
  // faults above unobservable, so a test can plant the pair and show the
  // simulator notices the first fault once its only other protection is gone.
  /** Sender: moving to a newer epoch leaves the active session running (masks `acceptStaleEpochTicket`). */
  readonly keepSessionOnEpochChange?: boolean
  /** Replica side: the handshake answers the replica's durable LSN without comparing epochs (masks `skipReplicaAheadTruncation`). */
  readonly skipLogMatchingAtConnect?: boolean
  /** Replica side: adopting a newer epoch keeps the tail above the lineage-safe LSN (with log matching, masks `skipReplicaAheadTruncation`). */
  readonly keepTailOnEpochAdoption?: boolean
  /**
   * Simulated WAL streamer: once the replica has acknowledged a chunk, it
   * reports the primary's durable head as the replica's durable LSN (sent or
   * written counted as acknowledged), so a report may exceed the frozen
   * target (masks `catchUpTargetNotFrozen`).
   */
  readonly streamerOverReports?: boolean
}

export const noFaults: ProtocolFaults = Object.freeze({})

export const protocolFaultNames = [
  'catchUpTargetNotFrozen',
  'acceptStaleEpochTicket',
  'acceptOlderEpochTraffic',
  'keepPinsOnBudgetViolation',
  'skipReplicaAheadTruncation',
  'syncAllCountedAsMajority',
  'acceptOlderAssignment',
  'retentionBoundaryOffByOne',
  'rebuildIgnoresReopen',
  'learnerCountedAsVoter',
  'keepSessionOnEpochChange',
  'skipLogMatchingAtConnect',
  'keepTailOnEpochAdoption',
  'streamerOverReports',
] as const satisfies ReadonlyArray<keyof ProtocolFaults>
