/**
 * A coordinator process: the control plane's in-memory view (`ControlPlane`)
 * bound to the versioned assignment it was read from. Every change to the
 * assignment — a promotion, an epoch bump, a commit acknowledged to clients,
 * a desperate promotion's declared loss — is a compare-and-swap on the
 * revision this process last read, so two coordinators acting at once (one
 * restarted while the other has not noticed yet, or one that learned of a
 * failure late) never both win: the loser is refused, says so in the
 * recovery log (`assignment_write_refused`), throws its in-memory view away
 * and resumes from a fresh read, as a restarted process does. The revision
 * is the fencing token: a lease is granted only by a process whose revision
 * is still the store's (a read, as etcd's linearizable get), and every
 * message the process sends carries it.
 *
 * Pure: the store is a port (an in-memory `AssignmentStore` in the
 * simulator); no clock, the caller passes ticks.
 */
import { invariant } from '../domain/index.ts'
import { commitRecord, promotionRecord, type AssignmentRecord, type SwapResult, type VersionedAssignment } from './assignment-store.ts'
import { ControlPlane, lineageResetsMax, type ControlPlaneOptions, type Heartbeat, type HeartbeatOutcome } from './control.ts'
import { CoordinatorLease, type LeaseTerms } from './lease.ts'
import type { Membership } from './membership.ts'
import { Epoch, type Lsn, type ReplicaId, type Tick } from './types.ts'

/** The versioned assignment as a coordinator reaches it (etcd in a cluster). */
export interface AssignmentPort {
  read(): VersionedAssignment
  compareAndSwap(expectedRevision: number, next: AssignmentRecord): SwapResult
}

export interface CoordinatorOptions {
  readonly plane: ControlPlaneOptions
  readonly store: AssignmentPort
  /** Leased primaries: the lease this process counts before it may promote over a primary it stopped hearing. */
  readonly lease: LeaseTerms | undefined
}

export type CommitAcknowledgement = 'acknowledged' | 'epoch_mismatch' | 'write_refused'

export class Coordinator {
  readonly #options: CoordinatorOptions
  #plane: ControlPlane
  #revision: number
  /** The membership this view was read (or last written) with; undefined: every member votes. */
  #membership: Membership | undefined
  #lease: CoordinatorLease | undefined
  /** Writes this process lost to a newer revision (each followed by a re-read). */
  #writesRefused = 0

  /** Starts (or restarts) a coordinator process at `now`: it knows only what it reads from the store. */
  constructor(options: CoordinatorOptions, now: Tick) {
    this.#options = options
    const stored = options.store.read()
    this.#plane = ControlPlane.restore(options.plane, stored)
    this.#revision = stored.revision
    this.#membership = stored.record.membership
    this.#lease = options.lease === undefined ? undefined : new CoordinatorLease(options.lease, now)
  }

  /** Who votes and who learns in this view (undefined: every member votes). */
  get membership(): Membership | undefined {
    return this.#membership
  }

  /** The in-memory view this process acts on (replaced on every re-read). */
  get plane(): ControlPlane {
    return this.#plane
  }

  /** The revision this process's view was read at: its fencing token. */
  get revision(): number {
    return this.#revision
  }

  /** The lease bookkeeping of this process (undefined without leased primaries). */
  get lease(): CoordinatorLease | undefined {
    return this.#lease
  }

  get writesRefused(): number {
    return this.#writesRefused
  }

  /**
   * Whether this process's view is still the store's. A stale process
   * re-reads (and so starts its lease count again) before answering false:
   * it may grant nothing on a view someone else already replaced.
   */
  viewCurrent(now: Tick): boolean {
    const stored = this.#options.store.read()
    if (stored.revision === this.#revision) return true
    this.#resume(stored, now)
    return false
  }

  /**
   * A member's heartbeat. One that names an epoch newer than this view's
   * proves another process wrote since this one read (it promoted or bumped
   * the epoch): re-read first, or this process would wait forever for
   * reports of an epoch that is gone.
   */
  receiveHeartbeat(heartbeat: Heartbeat, now: Tick): HeartbeatOutcome {
    if (heartbeat.epoch > this.#plane.epoch) this.viewCurrent(now)
    return this.#plane.receiveHeartbeat(heartbeat, now)
  }

  /** Acknowledges a commit to clients: only from the current epoch's primary, and only if this view is the store's. */
  acknowledgeCommit(fromEpoch: Epoch, committedLsn: Lsn, now: Tick): CommitAcknowledgement {
    if (fromEpoch !== this.#plane.epoch) return 'epoch_mismatch'
    if (committedLsn <= this.#plane.committedLsn) return 'acknowledged'
    if (!this.#swap((record) => commitRecord(record, committedLsn), 'commit', now)) return 'write_refused'
    invariant(this.#plane.acknowledgeCommit(fromEpoch, committedLsn), 'a swapped commit is of the current epoch')
    return 'acknowledged'
  }

  /** Assigns `replicaId` as primary at `epoch` (the next one); false when another write came first. */
  promote(replicaId: ReplicaId, epoch: Epoch, now: Tick): boolean {
    invariant(epoch === Epoch.next(this.#plane.epoch), () => `promotion to epoch ${epoch} from view at ${this.#plane.epoch}`)
    if (!this.#swap((record) => promotionRecord(record, replicaId), 'promotion', now)) return false
    this.#plane.promoted(replicaId, epoch)
    this.#lease?.assigned(now)
    return true
  }

  /** Re-issues the assignment to the same primary at the next epoch; undefined when another write came first. */
  bumpEpoch(now: Tick): Epoch | undefined {
    const epoch = Epoch.next(this.#plane.epoch)
    if (!this.#swap((record) => ({ ...record, epoch }), 'epoch_bump', now)) return undefined
    invariant(this.#plane.bumpEpoch() === epoch, 'the bumped epoch is the swapped one')
    return epoch
  }

  /**
   * Writes a membership change (decided by the pure rules of
   * `membership.ts` on this view's membership) as a new assignment: the
   * same primary at the next epoch, the acknowledged commit carried as it
   * is (this view's is the store's while the swap can win). Undefined when
   * another write came first.
   */
  changeMembership(next: Membership, now: Tick): Epoch | undefined {
    invariant(this.#membership !== undefined, 'a membership change needs an assignment that names its members')
    invariant(next.primaryId === this.#plane.primaryId, () => `a membership change names primary ${next.primaryId}, the view ${this.#plane.primaryId}`)
    const epoch = Epoch.next(this.#plane.epoch)
    if (!this.#swap((record) => ({ ...record, epoch, membership: next }), 'membership_change', now)) return undefined
    invariant(this.#plane.bumpEpoch() === epoch, 'the membership change is the swapped epoch')
    return epoch
  }

  /**
   * A desperate promotion: `replicaId` is primary at `epoch`, the committed
   * lineage is kept only up to `keptLsn` (the loss every later assignment
   * carries). One write, so the promotion and its declared loss are never
   * seen apart.
   */
  promoteDesperately(replicaId: ReplicaId, epoch: Epoch, keptLsn: Lsn, now: Tick): boolean {
    invariant(epoch === Epoch.next(this.#plane.epoch), () => `promotion to epoch ${epoch} from view at ${this.#plane.epoch}`)
    invariant(this.#plane.lineageResets.length < lineageResetsMax, () => `more than ${lineageResetsMax} lineage resets`)
    const written = this.#swap(
      (record) => ({
        ...promotionRecord(record, replicaId),
        committedLsn: keptLsn < record.committedLsn ? keptLsn : record.committedLsn,
        lineageResets: [...record.lineageResets, { epoch, keptLsn }],
      }),
      'desperate_promotion',
      now,
    )
    if (!written) return false
    this.#plane.promoted(replicaId, epoch)
    this.#plane.declareLoss(epoch, keptLsn)
    this.#lease?.assigned(now)
    return true
  }

  #swap(next: (record: AssignmentRecord) => AssignmentRecord, what: string, now: Tick): boolean {
    const store = this.#options.store
    const written = next(this.#recordOfView())
    const result = store.compareAndSwap(this.#revision, written)
    if (result.ok) {
      this.#revision = result.revision
      this.#membership = written.membership
      return true
    }
    this.#writesRefused += 1
    this.#plane.log.append({
      kind: 'assignment_write_refused',
      replicaId: this.#plane.primaryId ?? this.#plane.members[0]!,
      reason: 'revision_mismatch',
      detail: { write: what, revision: this.#revision, current: result.current.revision },
    })
    this.#resume(result.current, now)
    return false
  }

  /** The record this view stands for (equal to the store's while the view is current). */
  #recordOfView(): AssignmentRecord {
    const plane = this.#plane
    invariant(plane.primaryId !== undefined, 'a coordinator view always names a primary')
    const membership = this.#membership === undefined ? {} : { membership: this.#membership }
    return { epoch: plane.epoch, primaryId: plane.primaryId, committedLsn: plane.committedLsn, lineageResets: [...plane.lineageResets], ...membership }
  }

  /** The view is gone: resume from what the store holds, as a restarted process would (a whole lease before any promotion). */
  #resume(stored: VersionedAssignment, now: Tick): void {
    this.#plane = ControlPlane.restore(this.#options.plane, stored)
    this.#revision = stored.revision
    this.#membership = stored.record.membership
    if (this.#options.lease !== undefined) this.#lease = new CoordinatorLease(this.#options.lease, now)
  }
}
