/**
 * What an operator reads and does on the control plane: the cluster's
 * status, and the desperate promotion — the explicit action that may lose
 * acknowledged data, decided by `decideDesperatePromotion` (the pure
 * promotion policy) and written by compare-and-swap like any assignment.
 */
import { ControlPlane, Lsn, RecoveryLog, Tick, carriedCommit, decideAddMember, decideRemoveMember } from '../../replication/index.ts'
import type { Endpoint, Membership, RecoveryEvent, ReplicaId } from '../../replication/index.ts'
import type { ClusterAssignment, CommittedMark, Suspicion } from './codec.ts'
import type { EtcdControlPlane, MemberView } from './control-plane.ts'

/** An endpoint for a member that never registered: version 0 is older than any registration's. */
export const unknownEndpoint: Endpoint = { dataAddress: '', controlAddress: '', version: 0 }

/** Restores the pure control plane from what etcd holds (the assignment, the registrations). */
export function controlPlaneOf(
  assignment: ClusterAssignment,
  members: readonly MemberView[],
  options: { readonly log: RecoveryLog; readonly leaseTicks: number; readonly reportFreshTicks: number },
): ControlPlane {
  const endpoints = new Map(members.map((member) => [member.nodeId, member.endpoint]))
  const ids = [assignment.primaryId, ...assignment.replicaIds]
  return ControlPlane.restore(
    {
      members: ids.map((replicaId) => ({ replicaId, endpoint: endpoints.get(replicaId) ?? unknownEndpoint })),
      log: options.log,
      leaseTicks: options.leaseTicks,
      reportFreshTicks: options.reportFreshTicks,
      assignmentResendTicks: options.reportFreshTicks,
    },
    {
      revision: assignment.revision,
      record: { epoch: assignment.epoch, primaryId: assignment.primaryId, committedLsn: assignment.committedLsn, lineageResets: assignment.lineageResets },
    },
  )
}

/** `replica` is a voter; a `learner` receives the log and counts for nothing until the coordinator makes it a voter. */
export type MemberRole = 'primary' | 'replica' | 'learner' | 'unassigned'

export interface ClusterStatus {
  readonly assignment: ClusterAssignment | undefined
  readonly committed: CommittedMark | undefined
  readonly coordinator: string | undefined
  /** `suspects`: the primary (and its epoch) the member published it lost (`suspicions/<id>`), if it does now. */
  readonly members: ReadonlyArray<MemberView & { readonly role: MemberRole; readonly registered: boolean; readonly suspects: Suspicion | undefined }>
}

export async function clusterStatus(control: EtcdControlPlane): Promise<ClusterStatus> {
  const [assignment, committed, coordinator, registered, suspicions] = await Promise.all([
    control.readAssignment(),
    control.readCommitted(),
    control.coordinator(),
    control.members(),
    control.suspicions(),
  ])
  const byId = new Map(registered.map((member) => [member.nodeId, member]))
  const assigned = assignment === undefined ? [] : [assignment.primaryId, ...assignment.replicaIds, ...assignment.learnerIds]
  const ids = [...new Set([...assigned, ...byId.keys()])].sort()
  return {
    assignment,
    committed,
    coordinator: coordinator?.holder,
    members: ids.map((nodeId) => {
      const view = byId.get(nodeId)
      const role: MemberRole =
        nodeId === assignment?.primaryId
          ? 'primary'
          : assignment?.replicaIds.includes(nodeId) === true
            ? 'replica'
            : assignment?.learnerIds.includes(nodeId) === true
              ? 'learner'
              : 'unassigned'
      return { nodeId, endpoint: view?.endpoint, report: view?.report, role, registered: view?.endpoint !== undefined, suspects: suspicions.get(nodeId) }
    }),
  }
}

export type DesperatePromotion =
  | { readonly ok: true; readonly assignment: ClusterAssignment; readonly keptLsn: Lsn; readonly lostEntries: number; readonly event: RecoveryEvent }
  | {
      readonly ok: false
      readonly reason: 'no_assignment' | 'not_a_member' | 'already_primary' | 'primary_alive' | 'no_member_reporting' | 'not_most_complete' | 'revision_mismatch'
      readonly message: string
    }

/**
 * The operator's last resort when no eligible member can be promoted:
 * `nodeId` becomes primary at a new epoch even if it lacks part of the
 * committed prefix. Refused unless the primary's registration is gone and
 * `nodeId` is the member the policy would pick (the reporting member that
 * keeps the longest prefix): naming another one would lose more than needed.
 * The new assignment records a lineage reset at its own epoch (committed
 * entries above `keptLsn` may be lost), which every later assignment carries.
 */
export async function promoteDesperately(control: EtcdControlPlane, nodeId: ReplicaId): Promise<DesperatePromotion> {
  const [assignment, members, committed] = await Promise.all([control.readAssignment(), control.members(), control.readCommitted()])
  if (assignment === undefined) return { ok: false, reason: 'no_assignment', message: 'the cluster has no assignment yet' }
  const memberIds = [assignment.primaryId, ...assignment.replicaIds]
  if (!memberIds.includes(nodeId)) return { ok: false, reason: 'not_a_member', message: `${nodeId} is not a member of the assignment (${memberIds.join(', ')})` }
  if (nodeId === assignment.primaryId) return { ok: false, reason: 'already_primary', message: `${nodeId} is already the primary at epoch ${assignment.epoch}` }
  if (members.some((member) => member.nodeId === assignment.primaryId && member.endpoint !== undefined)) {
    return { ok: false, reason: 'primary_alive', message: `the primary ${assignment.primaryId} is registered (alive): a desperate promotion is only for a primary that is gone` }
  }
  // Every report in etcd lives under its node's lease: present means fresh, so one instant serves for all.
  const now = Tick.zero
  const log = new RecoveryLog({ now: () => now })
  const plane = controlPlaneOf(assignment, members, { log, leaseTicks: 1, reportFreshTicks: 1 })
  for (const member of members) {
    if (!memberIds.includes(member.nodeId) || member.endpoint === undefined || member.report === undefined) continue
    plane.receiveHeartbeat({ replicaId: member.nodeId, epoch: member.report.epoch, endpoint: member.endpoint, durableLsn: member.report.durableLsn, safeLsn: member.report.safeLsn }, now)
  }
  if (committed !== undefined && committed.epoch === assignment.epoch && committed.committedLsn > plane.committedLsn) plane.acknowledgeCommit(assignment.epoch, committed.committedLsn)
  const decision = plane.decideDesperatePromotion(now)
  if (decision.kind === 'blocked') return { ok: false, reason: 'no_member_reporting', message: 'no member of the assignment is reporting: nothing to promote' }
  if (decision.replicaId !== nodeId) {
    return { ok: false, reason: 'not_most_complete', message: `${decision.replicaId} keeps more of the committed lineage than ${nodeId}: promote ${decision.replicaId} instead` }
  }
  const swap = await control.swapAssignment(assignment.revision, {
    primaryId: nodeId,
    replicaIds: memberIds.filter((id) => id !== nodeId),
    learnerIds: assignment.learnerIds,
    durability: assignment.durability,
    committedLsn: Lsn.min(plane.committedLsn, decision.keptLsn),
    lineageResets: assignment.lineageResets,
    lossKeptLsn: decision.keptLsn,
  })
  if (!swap.ok) return { ok: false, reason: 'revision_mismatch', message: 'the assignment changed meanwhile: look at the status again' }
  const event = log.append(decision.event)
  return { ok: true, assignment: swap.assignment, keptLsn: decision.keptLsn, lostEntries: Lsn.entriesBetween(decision.keptLsn, plane.committedLsn), event }
}

export type MembershipAction = 'add' | 'remove'

export type MembershipOutcome =
  | { readonly ok: true; readonly assignment: ClusterAssignment; readonly previousEpoch: number }
  | {
      readonly ok: false
      readonly reason: 'no_assignment' | 'not_registered' | 'already_member' | 'too_many_members' | 'not_a_member' | 'is_primary' | 'below_durability' | 'revision_mismatch'
      readonly message: string
    }

/** Attempts when only the commit mark moved between the read and the write (the primary is recording commits). */
const membershipAttemptsMax = 8

/**
 * The operator adds or removes a member: one compare-and-swap of the
 * assignment (a new epoch), decided by the pure membership rules
 * (`decideAddMember`, `decideRemoveMember`). A node joins as a learner —
 * only a registered node (started, with an address), so a typo is refused
 * rather than waited for; the coordinator makes it a voter once it caught
 * up. The new assignment carries the acknowledged commit (the current
 * epoch's mark included) and is written only if that mark did not move
 * meanwhile, so no commit recorded in between is left out.
 */
export async function changeMembership(control: EtcdControlPlane, action: MembershipAction, nodeId: ReplicaId): Promise<MembershipOutcome> {
  for (let attempt = 0; attempt < membershipAttemptsMax; attempt++) {
    const [assignment, members, versioned] = await Promise.all([control.readAssignment(), control.members(), control.readCommittedVersioned()])
    if (assignment === undefined) return { ok: false, reason: 'no_assignment', message: 'the cluster has no assignment yet' }
    const membership: Membership = { primaryId: assignment.primaryId, replicaIds: assignment.replicaIds, learnerIds: assignment.learnerIds }
    if (action === 'add' && !members.some((member) => member.nodeId === nodeId && member.endpoint !== undefined)) {
      return { ok: false, reason: 'not_registered', message: `${nodeId} is not registered: start it (tally serve --cluster ... --node-id ${nodeId}) before adding it` }
    }
    const change = action === 'add' ? decideAddMember(membership, nodeId) : decideRemoveMember(membership, nodeId, assignment.durability)
    if (!change.ok) return { ok: false, reason: change.reason, message: change.message }
    const mark = versioned.mark?.epoch === assignment.epoch ? versioned.mark.committedLsn : undefined
    const swap = await control.swapAssignment(
      assignment.revision,
      {
        primaryId: change.membership.primaryId,
        replicaIds: change.membership.replicaIds,
        learnerIds: change.membership.learnerIds,
        durability: assignment.durability,
        committedLsn: carriedCommit(assignment.committedLsn, mark),
        lineageResets: assignment.lineageResets,
      },
      undefined,
      versioned.revision,
    )
    if (swap.ok) return { ok: true, assignment: swap.assignment, previousEpoch: assignment.epoch }
    if (swap.reason === 'revision_mismatch') return { ok: false, reason: 'revision_mismatch', message: 'the assignment changed meanwhile (a promotion or another change): look at the status and try again' }
  }
  return { ok: false, reason: 'revision_mismatch', message: `the commit mark kept moving over ${membershipAttemptsMax} attempts: try again` }
}
