/**
 * The promotion policy: which member may become primary when the primary is
 * gone. The control plane decides from what members *reported* (heartbeats
 * with their epoch and durable LSN, and the replica states the last primary
 * published), never from a view of every node's disk; it decides only when a
 * majority of members reported recently, and picks only an eligible member:
 * reporting (running), at the current epoch, not `needs_rebuild` or
 * `rebuilding`, and holding the whole committed prefix. The chosen member
 * checks the offer against its own disk before it takes it
 * (`acceptPromotion`), so a report that went stale in flight cannot promote
 * a member that lost entries since.
 *
 * A desperate promotion (`decideDesperatePromotion`) is a separate, explicit
 * operator action: it takes the most complete member that is reporting, even
 * one without the committed prefix, and its decision carries a recovery-log
 * event that says which committed entries may be lost.
 *
 * Pure: inputs are reports and the current tick, outputs are decisions.
 */
import { invariant } from '../domain/index.ts'
import type { RecoveryEventInput } from './log.ts'
import { Epoch, Lsn, Tick, type ReplicaId, type ReplicaState } from './types.ts'

/** What the control plane last heard from a member. */
export interface MemberReport {
  readonly replicaId: ReplicaId
  readonly epoch: Epoch
  readonly durableLsn: Lsn
  /** The member's lineage-safe LSN (known committed and durable, or its checkpoint): what it can keep whatever lineage won. */
  readonly safeLsn: Lsn
  readonly reportedAt: Tick
  /** The member's state as the last primary published it; undefined when never published. */
  readonly state: ReplicaState | undefined
}

export interface PromotionInput {
  readonly now: Tick
  /** The control plane's current epoch; a promotion moves to the next one. */
  readonly epoch: Epoch
  /** The highest commit the control plane acknowledged to clients. */
  readonly committedLsn: Lsn
  readonly members: readonly ReplicaId[]
  readonly reports: ReadonlyMap<ReplicaId, MemberReport>
  /** A report older than this many ticks says nothing about the member now. */
  readonly reportFreshTicks: number
  /**
   * The primary whose lease lapsed (the reason for this promotion) and when:
   * what it reported before then says nothing about it now; a report after
   * (it restarted) counts like any other member's.
   */
  readonly lapsedPrimary: { readonly replicaId: ReplicaId; readonly lapsedAt: Tick } | undefined
}

export type Ineligibility =
  | 'lease_lapsed'
  | 'not_reporting'
  | 'epoch_stale'
  | 'state_needs_rebuild'
  | 'state_rebuilding'
  | 'missing_committed_prefix'

export interface PromotionVerdict {
  readonly replicaId: ReplicaId
  readonly ineligibility: Ineligibility | undefined
}

export type PromotionDecision =
  | { readonly kind: 'promote'; readonly replicaId: ReplicaId; readonly epoch: Epoch; readonly verdicts: readonly PromotionVerdict[] }
  | { readonly kind: 'blocked'; readonly reason: 'no_quorum_reporting' | 'no_eligible_member'; readonly verdicts: readonly PromotionVerdict[] }

export type DesperatePromotionDecision =
  | {
      readonly kind: 'promote_desperate'
      readonly replicaId: ReplicaId
      readonly epoch: Epoch
      /** Committed entries above this LSN may be lost; equal to committed when none are. */
      readonly keptLsn: Lsn
      readonly event: RecoveryEventInput
    }
  | { readonly kind: 'blocked'; readonly reason: 'no_member_reporting' }

/** Ranks a reported state for promotion: the more recently in sync, the better. */
const stateRank: Readonly<Record<ReplicaState, number>> = {
  in_sync: 0,
  catching_up: 1,
  degraded: 2,
  connecting: 3,
  disconnected: 4,
  rebuilding: 5,
  needs_rebuild: 6,
}

export function isReportFresh(report: MemberReport | undefined, now: Tick, reportFreshTicks: number): report is MemberReport {
  return report !== undefined && Tick.between(report.reportedAt, now) <= reportFreshTicks
}

/** Why a member may not be promoted now, or undefined when it is eligible. */
export function ineligibility(input: PromotionInput, replicaId: ReplicaId): Ineligibility | undefined {
  const report = input.reports.get(replicaId)
  if (lapsedBefore(input, report)) return 'lease_lapsed'
  if (!isReportFresh(report, input.now, input.reportFreshTicks)) return 'not_reporting'
  if (report.epoch !== input.epoch) return 'epoch_stale'
  if (report.state === 'needs_rebuild') return 'state_needs_rebuild'
  if (report.state === 'rebuilding') return 'state_rebuilding'
  if (report.durableLsn < input.committedLsn) return 'missing_committed_prefix'
  return undefined
}

/** A report the lapsed primary sent before its lease lapsed. */
function lapsedBefore(input: PromotionInput, report: MemberReport | undefined): boolean {
  const lapsed = input.lapsedPrimary
  return report !== undefined && lapsed !== undefined && report.replicaId === lapsed.replicaId && report.reportedAt <= lapsed.lapsedAt
}

function quorum(memberCount: number): number {
  return Math.floor(memberCount / 2) + 1
}

/** Orders candidates: best reported state, then most durable, then replica id (deterministic). */
function compareCandidates(a: MemberReport, b: MemberReport): number {
  const rank = (report: MemberReport): number => stateRank[report.state ?? 'disconnected']
  return rank(a) - rank(b) || b.durableLsn - a.durableLsn || (a.replicaId < b.replicaId ? -1 : a.replicaId > b.replicaId ? 1 : 0)
}

export function decidePromotion(input: PromotionInput): PromotionDecision {
  invariant(input.members.length >= 1, 'a promotion needs members')
  const verdicts = input.members.map((replicaId) => ({ replicaId, ineligibility: ineligibility(input, replicaId) }))
  // The lapsed primary's last words do not count towards the quorum that replaces it.
  const reporting = input.members.filter((replicaId) => {
    const report = input.reports.get(replicaId)
    return !lapsedBefore(input, report) && isReportFresh(report, input.now, input.reportFreshTicks)
  }).length
  if (reporting < quorum(input.members.length)) return { kind: 'blocked', reason: 'no_quorum_reporting', verdicts }
  const candidates = verdicts
    .filter((verdict) => verdict.ineligibility === undefined)
    .map((verdict) => input.reports.get(verdict.replicaId))
    .filter((report): report is MemberReport => report !== undefined)
    .sort(compareCandidates)
  const chosen = candidates[0]
  if (chosen === undefined) return { kind: 'blocked', reason: 'no_eligible_member', verdicts }
  invariant(chosen.durableLsn >= input.committedLsn, 'an eligible member holds the committed prefix')
  return { kind: 'promote', replicaId: chosen.replicaId, epoch: Epoch.next(input.epoch), verdicts }
}

/**
 * The operator's last resort: the reporting member that keeps the longest
 * prefix of the committed lineage, eligible or not. It keeps only its
 * lineage-safe prefix (entries above it may be an older primary's
 * uncommitted tail); the decision's event names the committed range that may
 * be lost, for the recovery log.
 */
export function decideDesperatePromotion(input: PromotionInput): DesperatePromotionDecision {
  const reporting = input.members
    .map((replicaId) => input.reports.get(replicaId))
    .filter((report): report is MemberReport => isReportFresh(report, input.now, input.reportFreshTicks))
    .sort((a, b) => b.safeLsn - a.safeLsn || b.durableLsn - a.durableLsn || b.epoch - a.epoch || (a.replicaId < b.replicaId ? -1 : 1))
  const chosen = reporting[0]
  if (chosen === undefined) return { kind: 'blocked', reason: 'no_member_reporting' }
  const keptLsn = Lsn.min(chosen.safeLsn, input.committedLsn)
  const lostEntries = Lsn.entriesBetween(keptLsn, input.committedLsn)
  return {
    kind: 'promote_desperate',
    replicaId: chosen.replicaId,
    epoch: Epoch.next(input.epoch),
    keptLsn,
    event: {
      kind: 'desperate_promotion',
      replicaId: chosen.replicaId,
      reason: lostEntries > 0 ? 'committed_entries_may_be_lost' : 'no_committed_entry_lost',
      detail: {
        committedLsn: input.committedLsn,
        keptLsn,
        lostEntries,
        candidateEpoch: chosen.epoch,
        eligibility: ineligibility(input, chosen.replicaId) ?? 'eligible',
      },
    },
  }
}

/**
 * The chosen member's own check before it takes a promotion: it is at the
 * epoch the offer was made from and still holds the committed prefix on its
 * disk (its report may have gone stale in flight). A desperate offer skips
 * the prefix check: the loss was declared when it was made.
 */
export function acceptPromotion(
  member: { readonly epoch: Epoch; readonly durableLsn: Lsn },
  offer: { readonly fromEpoch: Epoch; readonly committedLsn: Lsn; readonly desperate: boolean },
): { readonly ok: true } | { readonly ok: false; readonly reason: 'epoch_moved' | 'missing_committed_prefix' } {
  if (member.epoch !== offer.fromEpoch) return { ok: false, reason: 'epoch_moved' }
  if (!offer.desperate && member.durableLsn < offer.committedLsn) return { ok: false, reason: 'missing_committed_prefix' }
  return { ok: true }
}
