/**
 * The versioned assignment, as the coordinator keeps it in etcd: one key
 * whose value names the epoch, the primary, the commit acknowledged to
 * clients and the lineage resets, and whose revision grows by one on every
 * write. The coordinator changes it only by compare-and-swap on the revision
 * it read, so a coordinator acting on an old view (it learned of a failure
 * late, or another coordinator acted first, or it restarted) is refused
 * instead of overwriting a newer decision. The revision is the fencing
 * token: whatever carries an older one than the store's is stale.
 *
 * Pure: an in-memory model of the key, the rules every write obeys.
 */
import { invariant } from '../domain/index.ts'
import { membershipAfterPromotion, sameMembership, type Membership } from './membership.ts'
import type { LineageReset } from './replica.ts'
import { Epoch, Lsn, type ReplicaId } from './types.ts'

export interface AssignmentRecord {
  readonly epoch: Epoch
  readonly primaryId: ReplicaId
  /** The highest commit acknowledged to clients. */
  readonly committedLsn: Lsn
  readonly lineageResets: readonly LineageReset[]
  /**
   * Who votes and who learns (`membership.ts`); undefined: every member the
   * control plane knows votes, and membership never changes (the shape
   * every cluster had before membership changes).
   */
  readonly membership?: Membership
}

export interface VersionedAssignment {
  readonly revision: number
  readonly record: AssignmentRecord
}

export type SwapResult =
  | { readonly ok: true; readonly revision: number }
  | { readonly ok: false; readonly reason: 'revision_mismatch'; readonly current: VersionedAssignment }

/**
 * A write that would move the epoch back, keep it while naming another
 * primary, or move the acknowledged commit back without a lineage reset
 * that explains it, is a coordinator bug, not a race: it throws.
 */
function checkSuccessor(previous: AssignmentRecord, next: AssignmentRecord): void {
  invariant(next.epoch >= previous.epoch, () => `assignment epoch moves back from ${previous.epoch} to ${next.epoch}`)
  invariant(next.epoch > previous.epoch || next.primaryId === previous.primaryId, () => `epoch ${next.epoch} names two primaries, ${previous.primaryId} and ${next.primaryId}`)
  invariant(next.lineageResets.length >= previous.lineageResets.length, 'lineage resets are never forgotten')
  const resetAdded = next.lineageResets.length > previous.lineageResets.length
  invariant(resetAdded || next.committedLsn >= previous.committedLsn, () => `acknowledged commit moves back from ${previous.committedLsn} to ${next.committedLsn}`)
  // A membership change is a new assignment: a new epoch, so acks counted for the old voters never count for the new ones.
  const before = previous.membership
  const after = next.membership
  invariant((before === undefined) === (after === undefined), 'an assignment gains or loses its membership')
  if (before === undefined || after === undefined) return
  invariant(after.primaryId === next.primaryId, () => `membership names ${after.primaryId}, the assignment ${next.primaryId}`)
  invariant(next.epoch > previous.epoch || sameMembership(before, after), () => `membership changed within epoch ${next.epoch}`)
}

export class AssignmentStore {
  #current: VersionedAssignment

  constructor(initial: AssignmentRecord) {
    this.#current = { revision: 1, record: initial }
  }

  /** What a (re)starting coordinator reads before it acts. */
  read(): VersionedAssignment {
    return this.#current
  }

  /** Writes `next` only if the store is still at `expectedRevision` (the coordinator's view is current). */
  compareAndSwap(expectedRevision: number, next: AssignmentRecord): SwapResult {
    if (expectedRevision !== this.#current.revision) return { ok: false, reason: 'revision_mismatch', current: this.#current }
    checkSuccessor(this.#current.record, next)
    this.#current = { revision: this.#current.revision + 1, record: next }
    return { ok: true, revision: this.#current.revision }
  }
}

/** Whether an action fenced with `token` (the revision its author read) is still current. */
export function fencingTokenCurrent(token: number, store: VersionedAssignment): boolean {
  return token === store.revision
}

/** The record a promotion writes: the next epoch, the chosen primary, everything else carried over. */
export function promotionRecord(current: AssignmentRecord, primaryId: ReplicaId): AssignmentRecord {
  const membership = current.membership === undefined ? {} : { membership: membershipAfterPromotion(current.membership, primaryId) }
  return { ...current, epoch: Epoch.next(current.epoch), primaryId, ...membership }
}

/** The record a commit acknowledgement writes: the same epoch and primary, the commit moved forward. */
export function commitRecord(current: AssignmentRecord, committedLsn: Lsn): AssignmentRecord {
  return { ...current, committedLsn: Lsn.max(current.committedLsn, committedLsn) }
}
