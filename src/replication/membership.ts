/**
 * Membership changes after bootstrap: which nodes the assignment names, and
 * in which role. A member is the primary, a **voter** (a replica that counts
 * for the commit quorum and may be promoted) or a **learner** (a replica
 * that receives the log but counts for nothing: no commit, no promotion
 * quorum, no promotion). A node joins as a learner and becomes a voter only
 * once it holds the acknowledged commit at the current epoch, so adding a
 * node never makes the commit wait for a replica that is still catching up,
 * and never lets a promotion pick a node that lacks acknowledged entries.
 *
 * Every change is a new assignment (a compare-and-swap, so a new epoch);
 * the acknowledged commit it carries is never lower than the one it
 * replaces (`carriedCommit`): removing a replica never lowers the commit
 * point a promotion keeps.
 *
 * Pure: inputs are the current membership and what members reported;
 * outputs are decisions. The caller writes the assignment.
 */
import { invariant } from '../domain/index.ts'
import { validateDurability, type DurabilityMode } from './commit.ts'
import type { ProtocolFaults } from './faults.ts'
import { Lsn, type Epoch, type ReplicaId } from './types.ts'

/** Bounds the members one assignment names (primary, voters and learners together). */
export const membersMax = 65

export interface Membership {
  readonly primaryId: ReplicaId
  /** Voters other than the primary. */
  readonly replicaIds: readonly ReplicaId[]
  /** Replicas that receive the log and count for nothing yet. */
  readonly learnerIds: readonly ReplicaId[]
}

export type MembershipRole = 'primary' | 'voter' | 'learner'

export function roleOf(membership: Membership, nodeId: ReplicaId): MembershipRole | undefined {
  if (membership.primaryId === nodeId) return 'primary'
  if (membership.replicaIds.includes(nodeId)) return 'voter'
  if (membership.learnerIds.includes(nodeId)) return 'learner'
  return undefined
}

/** The members that count for the commit quorum and for promotion: the primary and the voting replicas. */
export function votersOf(membership: Membership, faults?: ProtocolFaults): readonly ReplicaId[] {
  const voters = [membership.primaryId, ...membership.replicaIds]
  // Planted defect (test only): a learner still catching up is counted as if it held the log.
  return faults?.learnerCountedAsVoter === true ? [...voters, ...membership.learnerIds] : voters
}

/** Checks the shape every membership keeps: no one named twice, bounded. */
export function checkMembership(membership: Membership): void {
  const all = [membership.primaryId, ...membership.replicaIds, ...membership.learnerIds]
  invariant(new Set(all).size === all.length, () => `a member is named twice: ${all.join(', ')}`)
  invariant(all.length <= membersMax, () => `${all.length} members, more than ${membersMax}`)
}

export type MembershipChange =
  | { readonly ok: true; readonly membership: Membership }
  | {
      readonly ok: false
      readonly reason: 'already_member' | 'too_many_members' | 'not_a_member' | 'is_primary' | 'below_durability'
      readonly message: string
    }

/** A node joins as a learner: it receives the log and counts for nothing until it caught up. */
export function decideAddMember(membership: Membership, nodeId: ReplicaId): MembershipChange {
  checkMembership(membership)
  const role = roleOf(membership, nodeId)
  if (role !== undefined) return { ok: false, reason: 'already_member', message: `${nodeId} is already a member (${role})` }
  const count = 1 + membership.replicaIds.length + membership.learnerIds.length
  if (count + 1 > membersMax) return { ok: false, reason: 'too_many_members', message: `an assignment names at most ${membersMax} members` }
  const next = { ...membership, learnerIds: sortIds([...membership.learnerIds, nodeId]) }
  checkMembership(next)
  return { ok: true, membership: next }
}

/**
 * A member leaves. The primary never does (promote another one first, or
 * let the coordinator replace it when it dies); a voter leaves only if the
 * voters left still satisfy the durability mode (`sync_quorum` needs a true
 * majority of at least 3). A learner always may.
 */
export function decideRemoveMember(membership: Membership, nodeId: ReplicaId, durability: DurabilityMode): MembershipChange {
  checkMembership(membership)
  const role = roleOf(membership, nodeId)
  if (role === undefined) return { ok: false, reason: 'not_a_member', message: `${nodeId} is not a member (${describe(membership)})` }
  if (role === 'primary') return { ok: false, reason: 'is_primary', message: `${nodeId} is the primary: it cannot be removed while it is primary` }
  if (role === 'learner') return { ok: true, membership: { ...membership, learnerIds: membership.learnerIds.filter((id) => id !== nodeId) } }
  const replicaIds = membership.replicaIds.filter((id) => id !== nodeId)
  const voters = replicaIds.length + 1
  try {
    validateDurability(durability, voters)
  } catch (error) {
    return { ok: false, reason: 'below_durability', message: `removing ${nodeId} leaves ${voters} voters: ${(error as Error).message}` }
  }
  return { ok: true, membership: { ...membership, replicaIds } }
}

/** What the control plane last heard from a learner (its report lives under its registration lease). */
export interface LearnerReport {
  readonly replicaId: ReplicaId
  readonly epoch: Epoch
  readonly durableLsn: Lsn
}

/**
 * The learners that caught up, in id order: at the current epoch (it met
 * this epoch's primary: its log matches this lineage) and durably holding
 * at least the acknowledged commit. Such a voter can be promoted without
 * losing an acknowledged entry, and counting it can only raise the copies
 * a commit needs, never lower what already committed.
 */
export function learnersCaughtUp(
  membership: Membership,
  input: { readonly epoch: Epoch; readonly committedLsn: Lsn; readonly reports: ReadonlyMap<ReplicaId, LearnerReport> },
): readonly ReplicaId[] {
  return membership.learnerIds.filter((learnerId) => {
    const report = input.reports.get(learnerId)
    return report !== undefined && report.epoch === input.epoch && report.durableLsn >= input.committedLsn
  })
}

/** The membership with `learnerIds` made voters. */
export function promoteLearners(membership: Membership, learnerIds: readonly ReplicaId[]): Membership {
  for (const learnerId of learnerIds) invariant(membership.learnerIds.includes(learnerId), () => `${learnerId} is not a learner`)
  const next = {
    primaryId: membership.primaryId,
    replicaIds: sortIds([...membership.replicaIds, ...learnerIds]),
    learnerIds: membership.learnerIds.filter((id) => !learnerIds.includes(id)),
  }
  checkMembership(next)
  return next
}

/**
 * The membership once `newPrimaryId` is promoted: it leaves the voters, the
 * primary it replaces becomes a voter (its copies count again once it
 * rejoins this lineage). Promotion picks only a voter; a non-voter here is
 * a coordinator bug the caller's checks report, so the shape is kept whole
 * rather than thrown on (it leaves the learners too, if it was one).
 */
export function membershipAfterPromotion(membership: Membership, newPrimaryId: ReplicaId): Membership {
  if (membership.primaryId === newPrimaryId) return membership
  const next = {
    primaryId: newPrimaryId,
    replicaIds: sortIds([...membership.replicaIds.filter((id) => id !== newPrimaryId), membership.primaryId]),
    learnerIds: membership.learnerIds.filter((id) => id !== newPrimaryId),
  }
  checkMembership(next)
  return next
}

/** Whether two memberships name the same members in the same roles (both kept sorted by the rules above). */
export function sameMembership(a: Membership, b: Membership): boolean {
  const same = (x: readonly ReplicaId[], y: readonly ReplicaId[]): boolean => x.length === y.length && x.every((id, index) => id === y[index])
  return a.primaryId === b.primaryId && same(a.replicaIds, b.replicaIds) && same(a.learnerIds, b.learnerIds)
}

/**
 * The acknowledged commit a new assignment carries: the highest of the one
 * it replaces and the current epoch's recorded mark. Never lower: a
 * promotion keeps every entry up to it.
 */
export function carriedCommit(assignmentCommittedLsn: Lsn, markOfCurrentEpoch: Lsn | undefined): Lsn {
  return markOfCurrentEpoch === undefined ? assignmentCommittedLsn : Lsn.max(assignmentCommittedLsn, markOfCurrentEpoch)
}

function describe(membership: Membership): string {
  const learners = membership.learnerIds.length === 0 ? '' : `; learners ${membership.learnerIds.join(', ')}`
  return `primary ${membership.primaryId}; voters ${membership.replicaIds.join(', ') || 'none'}${learners}`
}

function sortIds(ids: readonly ReplicaId[]): ReplicaId[] {
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
}
