/**
 * The primary side of the protocol in one object: its epoch, the commit
 * tracker, the barriers, the sender registry and the recovery driver, and
 * the rules that tie them together — who receives a new entry live, what an
 * epoch change resets, how an ack counts, how a membership update becomes
 * reassign sessions. One `PrimaryProtocol` lives as long as one primary
 * incarnation; a crash loses it (the next primary builds a new one at a new
 * epoch). Pure: the caller ships, schedules and persists.
 */
import { invariant } from '../domain/index.ts'
import { BarrierTracker, type AckVerdict } from './barriers.ts'
import { CommitTracker, type DurabilityMode } from './commit.ts'
import { RecoveryDriver, type DriverOptions } from './driver.ts'
import type { ProtocolFaults } from './faults.ts'
import type { RecoveryLog } from './log.ts'
import { Registry, type Assignment, type ReplicaAssignment } from './registry.ts'
import type { Sender } from './sender.ts'
import { Lsn, type Epoch, type ReplicaId, type Tick } from './types.ts'

/** What a membership update did: applied, refused as older than the senders, or not yet this primary's epoch. */
export type MembershipVerdict = 'applied' | 'stale' | 'ahead'

export interface PrimaryOptions {
  readonly primaryId: ReplicaId
  /** Counts this node's starts as primary; must survive crashes (it scopes session ids). */
  readonly incarnation: number
  readonly epoch: Epoch
  readonly committedLsn: Lsn
  readonly durability: DurabilityMode
  readonly memberCount: number
  /**
   * The replicas whose acks count (the voters besides the primary, as the
   * assignment names them); undefined: every replica, up to memberCount - 1.
   * A learner's or a non-member's acks then never reach the tracker.
   */
  readonly votingReplicaIds?: readonly ReplicaId[]
  readonly barrierTimeoutTicks: number
  readonly log: RecoveryLog
  readonly recovery: Omit<DriverOptions, 'registry' | 'adapters' | 'faults'>
  /** Built once the protocol exists (adapters usually need the primary's pins and acks). */
  readonly adapters: (primary: PrimaryProtocol) => DriverOptions['adapters']
  readonly faults?: ProtocolFaults
}

export class PrimaryProtocol {
  readonly primaryId: ReplicaId
  readonly incarnation: number
  readonly log: RecoveryLog
  readonly barriers: BarrierTracker
  readonly registry: Registry
  readonly driver: RecoveryDriver
  readonly #durability: DurabilityMode
  readonly #faults: ProtocolFaults | undefined
  #commit: CommitTracker
  /**
   * Every replica's acknowledged durable LSN at this epoch, learners'
   * included: what a catch-up's progress is read from. Only the voters'
   * also reach the commit tracker.
   */
  readonly #acked = new Map<ReplicaId, Lsn>()
  #epoch: Epoch

  constructor(options: PrimaryOptions) {
    invariant(Number.isSafeInteger(options.incarnation) && options.incarnation >= 1, 'incarnation must be >= 1')
    this.primaryId = options.primaryId
    this.incarnation = options.incarnation
    this.#epoch = options.epoch
    this.log = options.log
    this.#durability = options.durability
    this.#faults = options.faults
    this.#commit = new CommitTracker({
      mode: options.durability,
      memberCount: options.memberCount,
      committedLsn: options.committedLsn,
      ...(options.votingReplicaIds === undefined ? {} : { voterIds: options.votingReplicaIds }),
      faults: options.faults,
    })
    this.barriers = new BarrierTracker({ timeoutTicks: options.barrierTimeoutTicks })
    this.registry = new Registry({
      log: this.log,
      sessionScope: { primaryId: options.primaryId, incarnation: options.incarnation },
      faults: options.faults,
    })
    this.driver = new RecoveryDriver({ ...options.recovery, registry: this.registry, adapters: options.adapters(this), faults: options.faults })
  }

  get epoch(): Epoch {
    return this.#epoch
  }

  /** The durable LSN `replicaId` acknowledged at this epoch (0 when none), whether or not it votes. */
  ackedLsn(replicaId: ReplicaId): Lsn {
    return this.#acked.get(replicaId) ?? Lsn.zero
  }

  /** The commit tracker of this epoch's voters (replaced when a new epoch changes who votes). */
  get commit(): CommitTracker {
    return this.#commit
  }

  /** A new entry is shipped live only to replicas in sync; the others get it through their session. */
  liveShipTargets(): Sender[] {
    return this.registry.senders().filter((sender) => sender.state === 'in_sync')
  }

  /**
   * The control plane moved this primary to a newer epoch: acks and
   * barriers of the old epoch stop counting, and reconciling at the new
   * epoch invalidates every older session (replicas handshake again).
   * Every sender moves to the new epoch even where the assignment names an
   * endpoint older than the one the sender already uses (refused as
   * `stale_assignment`, the sender keeps its newer address): a sender left
   * at the old epoch could never connect again, and the control plane,
   * seeing its endpoints current, would never send the update that moves
   * it (seed 2713 of 1–10 000, liveness: a restarted coordinator re-read no
   * addresses and bumped the epoch with a member's first one).
   */
  changeEpoch(epoch: Epoch, now: Tick, replicas: readonly ReplicaAssignment[], votingReplicaIds?: readonly ReplicaId[]): void {
    invariant(epoch > this.#epoch, () => `primary epoch ${this.#epoch} -> ${epoch} does not move forward`)
    this.#epoch = epoch
    this.commit.clearAcks()
    this.#acked.clear()
    // A membership change: the new epoch's voters, counted from the commit point reached (acks start over either way).
    if (votingReplicaIds !== undefined) {
      this.#commit = new CommitTracker({
        mode: this.#durability,
        memberCount: votingReplicaIds.length + 1,
        committedLsn: this.#commit.committedLsn,
        voterIds: votingReplicaIds,
        faults: this.#faults,
      })
    }
    this.barriers.expireAll(now)
    this.registry.reconcile({ epoch, replicas })
    this.registry.invalidateEpoch(epoch)
  }

  /**
   * A membership update from the control plane. One of this primary's epoch
   * is applied: a replica whose endpoint changed gets a `reassign` session.
   * One of an older epoch (delayed past an epoch change, or sent by a
   * coordinator acting on stale knowledge) goes to the registry, which
   * refuses it per replica (`stale_assignment`) and changes nothing. One of
   * a newer epoch is not applied: this primary must first be moved to that
   * epoch by its own assignment (or it was deposed).
   */
  applyMembership(assignment: Assignment): MembershipVerdict {
    if (assignment.epoch > this.#epoch) return 'ahead'
    const versions = new Map(this.registry.senders().map((sender) => [sender.replicaId, sender.endpoint.version]))
    const result = this.registry.reconcile(assignment)
    const refused = new Set(result.refused)
    for (const replica of assignment.replicas) {
      const version = versions.get(replica.replicaId)
      if (refused.has(replica.replicaId) || version === undefined || version === replica.endpoint.version) continue
      this.driver.requestReassign(replica.replicaId)
    }
    return refused.size > 0 ? 'stale' : 'applied'
  }

  /**
   * The primary learned the replica now holds only up to `durableLsn` (it
   * truncated a tail at connect or on the engine's request): its ack drops
   * to that, and every barrier already sent to it expires, so an ack still
   * in flight from before — which describes entries the replica dropped —
   * cannot raise it again.
   */
  replicaRewound(replicaId: ReplicaId, durableLsn: Lsn, now: Tick): void {
    this.#acked.set(replicaId, Lsn.min(this.ackedLsn(replicaId), durableLsn))
    if (this.commit.counts(replicaId)) this.commit.lowerAck(replicaId, durableLsn)
    this.barriers.expireFor(replicaId, now)
  }

  /** The replica's store was replaced by an image at `installedLsn` (a rebuild); same reasoning as a rewind. */
  replicaInstalled(replicaId: ReplicaId, installedLsn: Lsn, now: Tick): void {
    this.#acked.set(replicaId, installedLsn)
    if (this.commit.counts(replicaId)) this.commit.resetAck(replicaId, installedLsn)
    this.barriers.expireFor(replicaId, now)
  }

  /** An ack counts towards commit only while its barrier is open. */
  receiveAck(ack: { readonly barrierId: number; readonly from: ReplicaId; readonly durableLsn: Lsn }): AckVerdict {
    const verdict = this.barriers.ack(ack.barrierId, ack.from)
    if (verdict !== 'accepted') return verdict
    this.#acked.set(ack.from, Lsn.max(this.ackedLsn(ack.from), ack.durableLsn))
    // A learner's ack is progress (its catch-up reads it) but counts for no commit.
    if (this.commit.counts(ack.from)) this.commit.recordAck(ack.from, ack.durableLsn)
    return verdict
  }
}
