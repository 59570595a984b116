/**
 * The control plane's side of the protocol (the coordinator; etcd holds its
 * state in a cluster): the current epoch and primary, the commit it has
 * acknowledged to clients, what each member last reported, and the rules it
 * acts on — a heartbeat with a new endpoint means a membership update for
 * the primary; a member behind the epoch is sent the assignment again (at
 * most every `assignmentResendTicks`); a primary gone for `leaseTicks` is
 * replaced through the promotion policy, and so is one that a quorum of the
 * other members suspects (`primarySuspected`: each lost its connection to
 * the primary of the current epoch) — a promotion is safe at any time,
 * because a primary's acknowledgement is itself fenced by the epoch, so
 * detection only decides how soon; a commit counts only from the
 * current epoch and never moves back; a desperate promotion records a
 * lineage reset that later assignments carry.
 *
 * Pure: inputs are reports and ticks, outputs are decisions; the caller
 * sends the messages.
 */
import { invariant } from '../domain/index.ts'
import type { RecoveryLog } from './log.ts'
import { decideDesperatePromotion, decidePromotion, ineligibility } from './promotion.ts'
import type { DesperatePromotionDecision, Ineligibility, MemberReport, PromotionDecision, PromotionInput } from './promotion.ts'
import type { LineageReset } from './replica.ts'
import type { VersionedAssignment } from './assignment-store.ts'
import { Epoch, Lsn, Tick, endpointChanged, type Endpoint, type ReplicaId, type ReplicaState } from './types.ts'

export interface ControlPlaneOptions {
  readonly members: ReadonlyArray<{ readonly replicaId: ReplicaId; readonly endpoint: Endpoint }>
  readonly log: RecoveryLog
  readonly leaseTicks: number
  readonly reportFreshTicks: number
  readonly assignmentResendTicks: number
}

export interface Heartbeat {
  readonly replicaId: ReplicaId
  readonly epoch: Epoch
  readonly endpoint: Endpoint
  readonly durableLsn: Lsn
  readonly safeLsn: Lsn
  /** The epoch whose primary this member lost its connection to (a suspicion), if any. */
  readonly suspects?: Epoch | undefined
}

export interface HeartbeatOutcome {
  /** The member moved: the primary needs the new membership. */
  readonly endpointChanged: boolean
  /** The member is behind the epoch: send it the current assignment. */
  readonly sendAssignment: boolean
}

/** A majority of `memberCount` (the promotion policy's quorum). */
function quorumOf(memberCount: number): number {
  return Math.floor(memberCount / 2) + 1
}

/** Bounds the lineage resets every assignment carries (one per desperate promotion). */
export const lineageResetsMax = 1_000

export class ControlPlane {
  readonly members: readonly ReplicaId[]
  readonly log: RecoveryLog
  readonly knownEndpoints = new Map<ReplicaId, Endpoint>()
  /** States the primary published for its replicas. */
  readonly replicaStates = new Map<ReplicaId, ReplicaState>()
  readonly lineageResets: LineageReset[] = []
  readonly #options: ControlPlaneOptions
  readonly #heard = new Map<ReplicaId, Omit<MemberReport, 'replicaId' | 'state'>>()
  /** Suspicions carried by heartbeats, with when they were heard. */
  readonly #suspicions = new Map<ReplicaId, { readonly epoch: Epoch; readonly heardAt: Tick }>()
  readonly #assignmentSentAt = new Map<ReplicaId, Tick>()
  #membershipSentAt: Tick | undefined
  #epoch: Epoch = Epoch.first
  #primaryId: ReplicaId | undefined
  #primaryLostAt: Tick | undefined
  /** The primary still runs as far as the control plane sees, but a quorum of the others lost it: nothing it said counts. */
  #primarySuspected = false
  #committedLsn: Lsn = Lsn.zero

  constructor(options: ControlPlaneOptions) {
    invariant(options.members.length >= 1, 'a cluster has members')
    invariant(options.leaseTicks >= 1, 'leaseTicks must be >= 1')
    this.#options = options
    this.members = options.members.map((member) => member.replicaId)
    this.log = options.log
    for (const member of options.members) this.knownEndpoints.set(member.replicaId, member.endpoint)
  }

  /**
   * A coordinator that restarted: its in-memory view (reports, published
   * states, when it last heard the primary) is gone; it re-reads the
   * versioned assignment and acts from that alone. It has not heard the
   * primary since the restart, so a promotion is due only a whole lease
   * after its first look (`promotionDue`), never at once.
   */
  static restore(options: ControlPlaneOptions, stored: VersionedAssignment): ControlPlane {
    const plane = new ControlPlane(options)
    const { record } = stored
    invariant(plane.members.includes(record.primaryId), () => `stored primary ${record.primaryId} is not a member`)
    plane.#epoch = record.epoch
    plane.#primaryId = record.primaryId
    plane.#committedLsn = record.committedLsn
    plane.lineageResets.push(...record.lineageResets)
    plane.replicaStates.set(record.primaryId, 'in_sync')
    return plane
  }

  get epoch(): Epoch {
    return this.#epoch
  }

  get primaryId(): ReplicaId | undefined {
    return this.#primaryId
  }

  /** The highest commit acknowledged to clients. */
  get committedLsn(): Lsn {
    return this.#committedLsn
  }

  receiveHeartbeat(heartbeat: Heartbeat, now: Tick): HeartbeatOutcome {
    const { replicaId } = heartbeat
    this.#heard.set(replicaId, { epoch: heartbeat.epoch, durableLsn: heartbeat.durableLsn, safeLsn: heartbeat.safeLsn, reportedAt: now })
    if (heartbeat.suspects === undefined) this.#suspicions.delete(replicaId)
    else this.#suspicions.set(replicaId, { epoch: heartbeat.suspects, heardAt: now })
    const known = this.knownEndpoints.get(replicaId)
    // Endpoint versions only go forward: a heartbeat reordered behind a newer one names an address the member left.
    const moved = known === undefined || (heartbeat.endpoint.version > known.version && endpointChanged(known, heartbeat.endpoint))
    if (moved) this.knownEndpoints.set(replicaId, heartbeat.endpoint)
    let sendAssignment = false
    if (heartbeat.epoch < this.#epoch && replicaId !== this.#primaryId) {
      const sentAt = this.#assignmentSentAt.get(replicaId)
      if (sentAt === undefined || Tick.between(sentAt, now) > this.#options.assignmentResendTicks) {
        this.#assignmentSentAt.set(replicaId, now)
        sendAssignment = true
      }
    }
    return { endpointChanged: moved && replicaId !== this.#primaryId, sendAssignment }
  }

  /**
   * The primary published its view of each replica. Returns true when it
   * still uses an endpoint the control plane knows is outdated — the
   * membership update was lost — so the caller sends it again (at most every
   * `assignmentResendTicks`): a one-shot update would leave that replica
   * unreachable for good.
   */
  publishStates(statuses: ReadonlyArray<{ readonly replicaId: ReplicaId; readonly state: ReplicaState; readonly endpointVersion: number }>, now: Tick): boolean {
    let stale = false
    for (const status of statuses) {
      this.replicaStates.set(status.replicaId, status.state)
      const known = this.knownEndpoints.get(status.replicaId)
      if (known !== undefined && known.version !== status.endpointVersion) stale = true
    }
    if (!stale) return false
    if (this.#membershipSentAt !== undefined && Tick.between(this.#membershipSentAt, now) <= this.#options.assignmentResendTicks) return false
    this.#membershipSentAt = now
    return true
  }

  recordMembershipSent(now: Tick): void {
    this.#membershipSentAt = now
  }

  recordAssignmentSent(replicaId: ReplicaId, now: Tick): void {
    this.#assignmentSentAt.set(replicaId, now)
  }

  /** The member refused an offer: its last report no longer describes it. */
  forgetReport(replicaId: ReplicaId): void {
    this.#heard.delete(replicaId)
    this.#suspicions.delete(replicaId)
  }

  /**
   * Whether the members other than the primary that suspect it — each
   * reported it lost its connection to the primary of the CURRENT epoch —
   * form a quorum of the members. Only then could they elect a replacement
   * among themselves anyway, and a replica partitioned from the primary
   * alone (the primary still commits with the others) never causes an
   * epoch change. A suspicion of an older epoch speaks of a primary that is
   * already gone.
   */
  primarySuspected(suspicions: ReadonlyMap<ReplicaId, Epoch>): boolean {
    let suspecting = 0
    for (const replicaId of this.members) {
      if (replicaId !== this.#primaryId && suspicions.get(replicaId) === this.#epoch) suspecting += 1
    }
    return suspecting >= quorumOf(this.members.length)
  }

  /** The suspicions heard within `reportFreshTicks` (an older one says nothing about the member now). */
  heardSuspicions(now: Tick): Map<ReplicaId, Epoch> {
    const fresh = new Map<ReplicaId, Epoch>()
    for (const [replicaId, suspicion] of this.#suspicions) {
      if (Tick.between(suspicion.heardAt, now) <= this.#options.reportFreshTicks) fresh.set(replicaId, suspicion.epoch)
    }
    return fresh
  }

  /**
   * Lease bookkeeping; `true` when the primary has been gone for the whole
   * lease, or (`suspected`) a quorum of the others lost it
   * (`primarySuspected`: each already waited its own grace before it said
   * so), and a promotion is due. A suspected primary is excluded from the
   * promotion it causes: everything it reported up to now is discounted.
   */
  promotionDue(primaryServing: boolean, now: Tick, suspected = false): boolean {
    this.#primarySuspected = primaryServing && suspected
    if (primaryServing && !suspected) {
      this.#primaryLostAt = undefined
      return false
    }
    this.#primaryLostAt ??= now
    return this.#primarySuspected || Tick.between(this.#primaryLostAt, now) >= this.#options.leaseTicks
  }

  promotionInput(now: Tick, primaryServing: boolean): PromotionInput {
    const reports = new Map<ReplicaId, MemberReport>()
    for (const [replicaId, heard] of this.#heard) reports.set(replicaId, { replicaId, ...heard, state: this.replicaStates.get(replicaId) })
    const lapsedId = primaryServing ? undefined : this.#primaryId
    // A suspected primary still reports (it runs): none of it counts, up to the decision.
    const lapsedAt = this.#primarySuspected ? now : this.#primaryLostAt
    return {
      now,
      epoch: this.#epoch,
      committedLsn: this.#committedLsn,
      members: this.members,
      reports,
      reportFreshTicks: this.#options.reportFreshTicks,
      lapsedPrimary: lapsedId !== undefined && lapsedAt !== undefined ? { replicaId: lapsedId, lapsedAt } : undefined,
    }
  }

  ineligibility(replicaId: ReplicaId, now: Tick, primaryServing: boolean): Ineligibility | undefined {
    return ineligibility(this.promotionInput(now, primaryServing), replicaId)
  }

  decidePromotion(now: Tick): PromotionDecision {
    return decidePromotion(this.promotionInput(now, false))
  }

  decideDesperatePromotion(now: Tick): DesperatePromotionDecision {
    return decideDesperatePromotion(this.promotionInput(now, false))
  }

  /** The first primary, at the first epoch, before any promotion. */
  assignInitialPrimary(replicaId: ReplicaId): void {
    invariant(this.#primaryId === undefined && this.#epoch === Epoch.first, 'the initial primary is assigned once, at the first epoch')
    this.#primaryId = replicaId
    this.replicaStates.set(replicaId, 'in_sync')
  }

  /** The chosen member took the offer: it is primary at `epoch`. */
  promoted(replicaId: ReplicaId, epoch: Epoch): void {
    invariant(epoch > this.#epoch, () => `promotion to epoch ${epoch} does not move past ${this.#epoch}`)
    this.#epoch = epoch
    this.#primaryId = replicaId
    this.#primaryLostAt = undefined
    this.#primarySuspected = false
    this.replicaStates.set(replicaId, 'in_sync')
  }

  /** The same primary, re-assigned at the next epoch. */
  bumpEpoch(): Epoch {
    this.#epoch = Epoch.next(this.#epoch)
    return this.#epoch
  }

  /** A commit is acknowledged only from the current epoch's primary (an older one lost its lease), and only forward. */
  acknowledgeCommit(fromEpoch: Epoch, committedLsn: Lsn): boolean {
    if (fromEpoch !== this.#epoch) return false
    invariant(committedLsn >= this.#committedLsn, () => `acknowledged commit moves back from ${this.#committedLsn} to ${committedLsn}`)
    this.#committedLsn = committedLsn
    return true
  }

  /** A desperate promotion kept the committed lineage up to `keptLsn` at `epoch`: the rest is declared lost. */
  declareLoss(epoch: Epoch, keptLsn: Lsn): void {
    invariant(this.lineageResets.length < lineageResetsMax, () => `more than ${lineageResetsMax} lineage resets`)
    this.lineageResets.push({ epoch, keptLsn })
    this.#committedLsn = Lsn.min(this.#committedLsn, keptLsn)
  }
}
