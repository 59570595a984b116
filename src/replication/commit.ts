/**
 * The commit tracker: the primary's rule for when an entry is committed.
 * Inputs are the primary's own durable LSN (its group commit) and each
 * replica's acknowledged durable LSN; the output is the new committed LSN.
 * An acknowledgement says "I hold every entry up to here durably", so a
 * replica's durable prefix is contiguous by construction, and the commit
 * point is the highest LSN that enough members hold as a prefix: the
 * `copiesNeeded`-th highest durable LSN among the members. It never moves
 * back and never passes the primary's own durable LSN.
 *
 * Pure: no clock, no I/O. The caller owns when acks arrive and what a commit
 * releases (client answers, the FSM apply).
 */
import { invariant, validationError } from '../domain/index.ts'
import type { ProtocolFaults } from './faults.ts'
import { Lsn, type ReplicaId } from './types.ts'

export type DurabilityMode = 'sync_all' | 'sync_quorum' | 'best_effort'

export const durabilityModes: readonly DurabilityMode[] = ['sync_all', 'sync_quorum', 'best_effort']

/** Members (primary included) the mode needs holding an entry before it commits. */
export function durableCopiesNeeded(mode: DurabilityMode, memberCount: number): number {
  invariant(Number.isSafeInteger(memberCount) && memberCount >= 1, () => `member count must be >= 1, got ${memberCount}`)
  switch (mode) {
    case 'sync_all':
      return memberCount
    case 'sync_quorum':
      return Math.floor(memberCount / 2) + 1
    case 'best_effort':
      return 1
    default: {
      const never: never = mode
      throw validationError(`unknown durability mode ${String(never)}`)
    }
  }
}

/** Rejects configurations the mode cannot honour (validated once, up front). */
export function validateDurability(mode: DurabilityMode, memberCount: number): void {
  if (!durabilityModes.includes(mode)) throw validationError(`unknown durability mode ${String(mode)}`)
  if (mode === 'sync_quorum' && memberCount < 3) {
    throw validationError('sync_quorum needs a true majority: at least 3 members (RF >= 3)')
  }
}

export interface CommitAdvance {
  readonly previousLsn: Lsn
  readonly committedLsn: Lsn
}

export class CommitTracker {
  readonly mode: DurabilityMode
  readonly memberCount: number
  readonly copiesNeeded: number
  readonly #acks = new Map<ReplicaId, Lsn>()
  /** The replicas whose acks count (the voters besides the primary); undefined: any, up to memberCount - 1. */
  readonly #voterIds: ReadonlySet<ReplicaId> | undefined
  #primaryDurableLsn: Lsn
  #committedLsn: Lsn

  constructor(options: { mode: DurabilityMode; memberCount: number; committedLsn: Lsn; voterIds?: readonly ReplicaId[]; faults?: ProtocolFaults }) {
    validateDurability(options.mode, options.memberCount)
    if (options.voterIds !== undefined) {
      invariant(new Set(options.voterIds).size === options.memberCount - 1, () => `${options.voterIds?.length} voting replicas for ${options.memberCount} members`)
      this.#voterIds = new Set(options.voterIds)
    }
    this.mode = options.mode
    this.memberCount = options.memberCount
    const counted = options.faults?.syncAllCountedAsMajority === true && options.mode === 'sync_all' ? 'sync_quorum' : options.mode
    this.copiesNeeded = durableCopiesNeeded(counted, options.memberCount)
    this.#committedLsn = options.committedLsn
    this.#primaryDurableLsn = options.committedLsn
  }

  get committedLsn(): Lsn {
    return this.#committedLsn
  }

  /** The durable LSN the tracker holds for a replica (0 when none). */
  ackedLsn(replicaId: ReplicaId): Lsn {
    return this.#acks.get(replicaId) ?? Lsn.zero
  }

  /** The primary fsynced its WAL up to `durableLsn`. */
  recordPrimaryDurable(durableLsn: Lsn): void {
    this.#primaryDurableLsn = durableLsn
  }

  /** A replica acknowledged it holds (0, durableLsn] durably; acks only move forward. */
  recordAck(replicaId: ReplicaId, durableLsn: Lsn): void {
    this.#checkVoter(replicaId)
    this.#acks.set(replicaId, Lsn.max(this.ackedLsn(replicaId), durableLsn))
    invariant(this.#acks.size < this.memberCount, () => `acks from ${this.#acks.size} replicas, more than ${this.memberCount - 1}`)
  }

  /** What the primary learned a replica holds now, up or down (a truncation, a rebuild, a connect). */
  resetAck(replicaId: ReplicaId, durableLsn: Lsn): void {
    this.#checkVoter(replicaId)
    this.#acks.set(replicaId, durableLsn)
  }

  /** Caps a replica's ack at `durableLsn` (it dropped a tail). */
  lowerAck(replicaId: ReplicaId, durableLsn: Lsn): void {
    this.#checkVoter(replicaId)
    this.#acks.set(replicaId, Lsn.min(this.ackedLsn(replicaId), durableLsn))
  }

  /** Whether `replicaId`'s acks count here (a voter); a learner's or a non-member's must not reach the tracker. */
  counts(replicaId: ReplicaId): boolean {
    return this.#voterIds === undefined || this.#voterIds.has(replicaId)
  }

  /** A learner (or a node that left) holds copies that count for nothing: its ack reaching the tracker is a bug. */
  #checkVoter(replicaId: ReplicaId): void {
    const voters = this.#voterIds
    if (voters !== undefined) invariant(voters.has(replicaId), () => `an ack from ${replicaId}, which is not a voter`)
  }

  /** A new epoch: acks of the old one say nothing about the new lineage. */
  clearAcks(): void {
    this.#acks.clear()
  }

  /** The commit point the acks support now; never below the current one. */
  candidateLsn(): Lsn {
    const durable = [this.#primaryDurableLsn, ...this.#acks.values()].sort((a, b) => b - a)
    // Members with no ack yet hold nothing the tracker can count.
    const supported = durable[this.copiesNeeded - 1] ?? Lsn.zero
    return Lsn.max(this.#committedLsn, Lsn.min(supported, this.#primaryDurableLsn))
  }

  /**
   * Moves the commit point to the candidate; returns the advance, or
   * undefined when none. A caller that must first check something else (a
   * lease, the control plane) reads `candidateLsn()` and calls this after.
   */
  advance(): CommitAdvance | undefined {
    const previousLsn = this.#committedLsn
    const committedLsn = this.candidateLsn()
    if (committedLsn === previousLsn) return undefined
    invariant(committedLsn > previousLsn, () => `commit moved back from ${previousLsn} to ${committedLsn}`)
    this.#committedLsn = committedLsn
    return { previousLsn, committedLsn }
  }
}
