/**
 * The coordinator, elected through etcd: every node may run one; the one
 * whose transaction creates the `coordinator` key (under its own lease)
 * coordinates until that lease lapses or it resigns. A newly elected
 * coordinator knows nothing from before: it re-reads the assignment and the
 * members' reports and restores the pure `ControlPlane` from them
 * (`ControlPlane.restore`), and it re-reads whenever the assignment's
 * revision is not the one it restored from (someone else wrote it: an
 * operator's desperate promotion, a coordinator before it).
 *
 * Each step feeds the members' reports to the `ControlPlane`; when the
 * primary's registration is gone (its etcd lease expired: it died, or it
 * cannot reach etcd and so stopped acknowledging by itself, see
 * `primary-lease.ts`), or a quorum of the other members suspects it (each
 * lost its peer connection to the primary of the current epoch and
 * published `suspicions/<id>`: `ControlPlane.primarySuspected`), and the
 * control plane says a promotion is due, it asks `decidePromotion` for an
 * eligible member and writes the new assignment by compare-and-swap on the
 * revision it read, fenced by its election key and by the commit mark it
 * read (so the new assignment carries the last commit any primary recorded,
 * and a deposed primary that still runs records, so acknowledges, nothing
 * more). A desperate promotion is never taken here: only an operator asks
 * for one (`operator.ts`).
 *
 * A coordinator that may not lead (`mayLead`: the node is the primary and
 * another member is registered) resigns and does not campaign: a SIGKILL of
 * the primary must not also take the coordinator, whose election would
 * then wait out its lease before anyone could promote.
 */
import { ControlPlane, Lsn, RecoveryLog, Tick, learnersCaughtUp, promoteLearners } from '../../replication/index.ts'
import type { DurabilityMode, Epoch, LearnerReport, ReplicaId } from '../../replication/index.ts'
import type { ClusterAssignment } from './codec.ts'
import type { CoordinatorFence, EtcdControlPlane, MemberView } from './control-plane.ts'
import { revisionOf } from './control-plane.ts'
import { isLeaseGone, leaseExpiredMessage } from './errors.ts'
import { controlPlaneOf } from './operator.ts'
import type { MonotonicClock } from './registration.ts'
import type { Lease } from 'etcd3'

export interface CoordinatorOptions {
  /** Who runs this coordinator (written to the election key). */
  readonly nodeId: ReplicaId
  /** TTL of the election lease: how long a dead coordinator blocks the next one. */
  readonly ttlSeconds: number
  readonly clock: MonotonicClock
  /** Pause between steps (default 200 ms). */
  readonly stepEveryMs?: number
  /** How long after the primary's registration vanished a promotion waits (the control plane's lease, default one step). */
  readonly promotionGraceMs?: number
  /** The first assignment, made once this many nodes registered: the lowest ids, the lowest one primary. */
  readonly bootstrap?: { readonly members: number; readonly durability: DurabilityMode }
  /** Whether this node may coordinate now (default always); one that may not resigns and does not campaign. */
  readonly mayLead?: () => boolean
  readonly onEvent?: (event: CoordinatorEvent) => void
}

export type CoordinatorEvent =
  | { readonly kind: 'elected'; readonly createRevision: number }
  | { readonly kind: 'lost_election'; readonly reason: string }
  | { readonly kind: 'resigned'; readonly reason: string }
  | { readonly kind: 'reread'; readonly epoch: number; readonly primaryId: ReplicaId }
  | { readonly kind: 'bootstrapped'; readonly epoch: number; readonly primaryId: ReplicaId }
  | { readonly kind: 'promoted'; readonly epoch: number; readonly primaryId: ReplicaId; readonly previousPrimaryId: ReplicaId }
  | { readonly kind: 'promotion_blocked'; readonly reason: string }
  | { readonly kind: 'learners_promoted'; readonly epoch: number; readonly learnerIds: readonly ReplicaId[] }
  | { readonly kind: 'swap_refused'; readonly reason: string }
  | { readonly kind: 'step_failed'; readonly error: Error }

export class EtcdCoordinator {
  readonly nodeId: ReplicaId
  readonly #control: EtcdControlPlane
  readonly #options: CoordinatorOptions
  readonly #stepEveryMs: number
  #lease: Lease | undefined
  #fence: CoordinatorFence | undefined
  #plane: { readonly revision: number; readonly plane: ControlPlane } | undefined
  #lastBlocked: string | undefined
  #timer: NodeJS.Timeout | undefined
  #stepping: Promise<void> | undefined
  #stopped = false

  constructor(control: EtcdControlPlane, options: CoordinatorOptions) {
    this.#control = control
    this.#options = options
    this.nodeId = options.nodeId
    this.#stepEveryMs = options.stepEveryMs ?? 200
  }

  get leading(): boolean {
    return this.#fence !== undefined
  }

  /** The election key's create revision while this coordinator leads. */
  get fence(): CoordinatorFence | undefined {
    return this.#fence
  }

  /** Runs a step now and then every `stepEveryMs`, until `stop`/`abandon`. */
  start(): void {
    const loop = (): void => {
      if (this.#stopped) return
      void this.step().finally(() => {
        if (this.#stopped) return
        this.#timer = setTimeout(loop, this.#stepEveryMs)
        this.#timer.unref()
      })
    }
    loop()
  }

  /** One pass: keep or win the election, then (leading) re-read and act. Never throws: failures are events. */
  step(): Promise<void> {
    this.#stepping ??= this.#step()
      .catch((error: unknown) => this.#emit({ kind: 'step_failed', error: error as Error }))
      .finally(() => {
        this.#stepping = undefined
      })
    return this.#stepping
  }

  async #step(): Promise<void> {
    if (this.#stopped) return
    if (this.#options.mayLead?.() === false) {
      await this.#resign('this node is the primary and another member can coordinate')
      return
    }
    if (!(await this.#holdElection())) return
    const fence = this.#fence
    if (fence === undefined) return
    const [assignment, members, commit, suspicions] = await Promise.all([
      this.#control.readAssignment(),
      this.#control.members(),
      this.#control.readCommittedVersioned(),
      this.#control.suspicions(),
    ])
    const committed = commit.mark
    if (assignment === undefined) {
      await this.#bootstrap(members, fence)
      return
    }
    let restored = this.#plane
    if (restored === undefined || restored.revision !== assignment.revision) {
      restored = { revision: assignment.revision, plane: this.#restore(assignment, members) }
      this.#plane = restored
      this.#emit({ kind: 'reread', epoch: assignment.epoch, primaryId: assignment.primaryId })
    }
    const plane = restored.plane
    const now = Tick.of(Math.floor(this.#options.clock()))
    const inAssignment = new Set(plane.members)
    // A member whose registration is gone says nothing about itself now: forget what it reported.
    const live = new Set(members.filter((member) => member.endpoint !== undefined && member.report !== undefined).map((member) => member.nodeId))
    for (const replicaId of plane.members) if (!live.has(replicaId)) plane.forgetReport(replicaId)
    for (const member of members) {
      if (!inAssignment.has(member.nodeId) || member.endpoint === undefined || member.report === undefined) continue
      const { report } = member
      plane.receiveHeartbeat({ replicaId: member.nodeId, epoch: report.epoch, endpoint: member.endpoint, durableLsn: report.durableLsn, safeLsn: report.safeLsn }, now)
      if (member.nodeId === assignment.primaryId && report.epoch === assignment.epoch) {
        plane.publishStates(report.replicaStates.filter((state) => inAssignment.has(state.replicaId)), now)
      }
    }
    if (committed !== undefined && committed.epoch === assignment.epoch && committed.committedLsn > plane.committedLsn) {
      plane.acknowledgeCommit(assignment.epoch, committed.committedLsn)
    }
    const primaryServing = members.some((member) => member.nodeId === assignment.primaryId && member.endpoint !== undefined)
    const suspecting = new Map<ReplicaId, Epoch>()
    for (const [nodeId, suspicion] of suspicions) if (suspicion.primaryId === assignment.primaryId) suspecting.set(nodeId, suspicion.epoch)
    if (!plane.promotionDue(primaryServing, now, plane.primarySuspected(suspecting))) {
      this.#lastBlocked = undefined
      // Only under a serving primary: while it is gone (the grace before a promotion) the membership waits.
      if (primaryServing) await this.#promoteLearners(assignment, members, plane.committedLsn, commit.revision, fence)
      return
    }
    const decision = plane.decidePromotion(now)
    if (decision.kind === 'blocked') {
      const reason = `${decision.reason}: ${decision.verdicts.map((verdict) => `${verdict.replicaId}=${verdict.ineligibility ?? 'eligible'}`).join(' ')}`
      if (reason !== this.#lastBlocked) this.#emit({ kind: 'promotion_blocked', reason })
      this.#lastBlocked = reason
      return
    }
    const swap = await this.#control.swapAssignment(
      assignment.revision,
      {
        primaryId: decision.replicaId,
        replicaIds: plane.members.filter((id) => id !== decision.replicaId),
        learnerIds: assignment.learnerIds,
        durability: assignment.durability,
        committedLsn: plane.committedLsn,
        lineageResets: assignment.lineageResets,
      },
      fence,
      commit.revision,
    )
    if (!swap.ok) {
      this.#emit({ kind: 'swap_refused', reason: swap.reason })
      if (swap.reason === 'not_coordinator') this.#fence = undefined
      return
    }
    this.#plane = { revision: swap.assignment.revision, plane: this.#restore(swap.assignment, members) }
    this.#emit({ kind: 'promoted', epoch: swap.assignment.epoch, primaryId: swap.assignment.primaryId, previousPrimaryId: assignment.primaryId })
  }

  /**
   * Learners that caught up (at this epoch, holding the acknowledged commit)
   * become voters: one compare-and-swap, written only if the commit mark is
   * still the one read (the new assignment carries it), fenced by the
   * election. Only while the primary serves: a promotion goes first.
   */
  async #promoteLearners(assignment: ClusterAssignment, members: readonly MemberView[], committedLsn: Lsn, committedRevision: number, fence: CoordinatorFence): Promise<void> {
    if (assignment.learnerIds.length === 0) return
    const reports = new Map<ReplicaId, LearnerReport>()
    for (const member of members) {
      if (member.endpoint === undefined || member.report === undefined) continue
      reports.set(member.nodeId, { replicaId: member.nodeId, epoch: member.report.epoch, durableLsn: member.report.durableLsn })
    }
    const membership = { primaryId: assignment.primaryId, replicaIds: assignment.replicaIds, learnerIds: assignment.learnerIds }
    const caughtUp = learnersCaughtUp(membership, { epoch: assignment.epoch, committedLsn, reports })
    if (caughtUp.length === 0) return
    const next = promoteLearners(membership, caughtUp)
    const swap = await this.#control.swapAssignment(
      assignment.revision,
      { ...next, durability: assignment.durability, committedLsn, lineageResets: assignment.lineageResets },
      fence,
      committedRevision,
    )
    if (!swap.ok) {
      // A moved commit mark is the ordinary case under load: the next step reads it and tries again.
      if (swap.reason !== 'commit_moved') this.#emit({ kind: 'swap_refused', reason: swap.reason })
      if (swap.reason === 'not_coordinator') this.#fence = undefined
      return
    }
    this.#plane = { revision: swap.assignment.revision, plane: this.#restore(swap.assignment, members) }
    this.#emit({ kind: 'learners_promoted', epoch: swap.assignment.epoch, learnerIds: caughtUp })
  }

  #restore(assignment: ClusterAssignment, members: readonly MemberView[]): ControlPlane {
    return controlPlaneOf(assignment, members, {
      log: new RecoveryLog({ now: () => Tick.of(Math.floor(this.#options.clock())) }),
      leaseTicks: Math.max(1, this.#options.promotionGraceMs ?? this.#stepEveryMs),
      // A report exists only while its node's lease lives: as long as it is there, it is fresh.
      reportFreshTicks: Math.max(1, this.#stepEveryMs * 10),
    })
  }

  async #bootstrap(members: readonly MemberView[], fence: CoordinatorFence): Promise<void> {
    const bootstrap = this.#options.bootstrap
    if (bootstrap === undefined) return
    const registered = members.filter((member) => member.endpoint !== undefined).map((member) => member.nodeId)
    if (registered.length < bootstrap.members) return
    const [primaryId, ...replicaIds] = registered.slice(0, bootstrap.members)
    if (primaryId === undefined) return
    const swap = await this.#control.createAssignment({ primaryId, replicaIds, learnerIds: [], durability: bootstrap.durability, committedLsn: Lsn.zero, lineageResets: [] }, fence)
    if (!swap.ok) {
      this.#emit({ kind: 'swap_refused', reason: swap.reason })
      return
    }
    this.#emit({ kind: 'bootstrapped', epoch: swap.assignment.epoch, primaryId })
  }

  /** Keeps the election lease alive, or campaigns; true while this coordinator leads. */
  async #holdElection(): Promise<boolean> {
    const client = this.#control.client
    const held = this.#lease
    if (held !== undefined) {
      try {
        const response = await this.#control.call('renew coordinator lease', () => held.keepaliveOnce({ deadline: new Date(Date.now() + this.#control.callTimeoutMs) }))
        if (Number(response.TTL) <= 0) throw new Error(leaseExpiredMessage)
        if (this.#fence !== undefined) return true
      } catch (error) {
        // Whether or not etcd still counts our lease, we could not renew it: we may no longer lead.
        if (this.#fence !== undefined) this.#lose(`election lease not renewed: ${(error as Error).message}`)
        if (!isLeaseGone(error)) return false
        this.#lease = undefined
        held.release()
      }
    }
    let lease = this.#lease
    if (lease === undefined) {
      lease = this.#control.lease(this.#options.ttlSeconds)
      lease.on('lost', () => undefined)
      this.#lease = lease
    }
    const campaignLease = lease
    const leaseId = await this.#control.call('grant coordinator lease', () => campaignLease.grant())
    const key = this.#control.keys.coordinator
    const response = await this.#control.call('campaign', () =>
      client.if(key, 'Create', '==', 0).then(client.put(key).value(this.nodeId).lease(leaseId)).else(client.get(key)).commit(),
    )
    let createRevision: number
    if (response.succeeded) createRevision = revisionOf(response.header.revision)
    else {
      // Still ours (a renewal failed, the lease did not lapse): lead again under the same fence.
      const kv = response.responses[0]?.response_range?.kvs[0]
      if (kv === undefined || kv.lease !== leaseId) return false
      createRevision = revisionOf(kv.create_revision)
    }
    this.#fence = { createRevision }
    // A new coordinator trusts nothing it knew before: it restores from what it reads next.
    this.#plane = undefined
    this.#emit({ kind: 'elected', createRevision })
    return true
  }

  /** Gives the election up at once (the key deleted, the lease revoked), so another node wins at its next step. */
  async #resign(reason: string): Promise<void> {
    const fence = this.#fence
    const lease = this.#lease
    if (fence === undefined && lease === undefined) return
    this.#fence = undefined
    this.#plane = undefined
    this.#lease = undefined
    const client = this.#control.client
    const key = this.#control.keys.coordinator
    if (fence !== undefined) {
      await this.#control.call('resign', () => client.if(key, 'Create', '==', fence.createRevision).then(client.delete().key(key)).commit()).catch(() => undefined)
    }
    if (lease !== undefined) {
      await this.#control.call('revoke coordinator lease', () => lease.revoke()).catch(() => undefined)
      lease.release()
    }
    if (fence !== undefined) this.#emit({ kind: 'resigned', reason })
  }

  #lose(reason: string): void {
    this.#fence = undefined
    this.#plane = undefined
    this.#emit({ kind: 'lost_election', reason })
  }

  #emit(event: CoordinatorEvent): void {
    this.#options.onEvent?.(event)
  }

  /** Stops stepping without resigning: the election key lapses with its lease, as when the process dies. */
  async abandon(): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    await this.#stepping
    this.#lease?.release()
    this.#fence = undefined
  }

  /** Resigns: deletes the election key if it is still ours, and revokes the lease. */
  async stop(): Promise<void> {
    const fence = this.#fence
    const lease = this.#lease
    await this.abandon()
    const client = this.#control.client
    const key = this.#control.keys.coordinator
    if (fence !== undefined) {
      await this.#control
        .call('resign', () => client.if(key, 'Create', '==', fence.createRevision).then(client.delete().key(key)).commit())
        .catch(() => undefined)
    }
    if (lease !== undefined) await this.#control.call('revoke coordinator lease', () => lease.revoke()).catch(() => undefined)
  }
}

