/**
 * Adapter interfaces the recovery engine is driven through. The engine does
 * no I/O of its own: the cluster implements these over the real WAL, store
 * and network, and the simulator (`src/sim/`) implements them over simulated
 * nodes. Every method is synchronous and must not block: an operation that
 * takes time (a connect's handshake, shipping entries, copying a base, a
 * truncation) is started by one call and its progress is reported by later
 * calls, which the driver and the executors make once per tick or step; only
 * the primary's own storage (retained history, pins) answers at once. Progress that has not happened yet is not an error: the budget's
 * progress deadline turns a stall into an escalation.
 */
import type { Assignment } from './registry.ts'
import type { RetainedHistory } from './recoverability.ts'
import type { Endpoint, Epoch, Lsn, ReplicaId, SessionId, SessionTicket } from './types.ts'

// ------------------------------------------------------------------ storage

/** Who holds a pin: used by implementations to account pins per session. */
export interface PinOwner {
  readonly replicaId: ReplicaId
  readonly sessionId: SessionId
}

/**
 * A granted pin carries its release function. Release must be idempotent:
 * executors call it on every exit path, and a primary that crashed may have
 * dropped its pin table already.
 */
export type PinResult = { readonly ok: true; readonly release: () => void } | { readonly ok: false; readonly reason: string }

/** The primary's retained history: head, tail, committed, checkpoint + trusted. */
export interface RetainedHistorySource {
  retainedHistory(): RetainedHistory
}

export interface RetentionPins {
  /** Keep every WAL entry with lsn > `fromLsnExclusive` until released. Fails if some were recycled already. */
  pinWalRetention(owner: PinOwner, fromLsnExclusive: Lsn): PinResult
  /** Keep the trusted checkpoint image at `snapshotLsn` until released. Fails if none exists or it is untrusted. */
  pinSnapshot(owner: PinOwner, snapshotLsn: Lsn): PinResult
  /** Keep a consistent full copy of the store as of `targetLsn` until released. */
  pinFullBase(owner: PinOwner, targetLsn: Lsn): PinResult
}

export interface StorageAdapter extends RetainedHistorySource, RetentionPins {}

// ---------------------------------------------------------------- transport

/**
 * A non-blocking transfer's report: `durableLsn` is the highest LSN the
 * replica is known to hold durably (fsynced) right now; it may lag what was
 * sent. `ok: false` means the replica cannot be reached for this session.
 */
export type TransferReport = { readonly ok: true; readonly durableLsn: Lsn } | { readonly ok: false; readonly reason: string }

/**
 * A base transfer reports the LSN of the image the replica has installed,
 * once it has. `reopening`: the replica installs by closing its store and
 * reopening on the image, which ends the connection; the rebuild goes on
 * after the replica's next handshake for the same session (the executor asks
 * the `ReplicaConnector` until it answers).
 */
export type BaseTransferReport =
  | { readonly ok: true; readonly installedLsn: Lsn | undefined; readonly reopening?: boolean }
  | { readonly ok: false; readonly reason: string }

/**
 * Reports the replica's flushed LSN *on the primary's lineage*: a replica
 * whose unacknowledged tail diverged from the primary's log (entries of an
 * older epoch) drops that tail first, back to an LSN it knows is committed.
 * Entries carry their epoch, so the implementation can compare (lsn, epoch)
 * pairs, as Raft's log-matching check does.
 */
export type ConnectReport = { readonly ok: true; readonly flushedLsn: Lsn | undefined } | { readonly ok: false; readonly reason: string }

export interface ReplicaConnector {
  /**
   * Starts the handshake, or polls the one already started for this session:
   * `flushedLsn` is undefined until the replica has answered (the driver asks
   * again once per tick, within `connectTimeoutTicks`). A session that ends
   * meanwhile is never polled again, so its late answer is simply unused.
   */
  connect(request: { readonly replicaId: ReplicaId; readonly sessionId: SessionId; readonly endpoint: Endpoint; readonly epoch: Epoch }): ConnectReport
}

export interface WalStreamer {
  /** Ship entries (from, to] at the ticket's epoch to the ticket's endpoint; report the replica's durable LSN. */
  streamWal(request: { readonly ticket: SessionTicket; readonly fromLsnExclusive: Lsn; readonly toLsnInclusive: Lsn }): TransferReport
}

export interface BaseTransfer {
  /** Copy the pinned snapshot at `snapshotLsn`; the replica's own WAL is replaced by it. */
  transferSnapshot(request: { readonly ticket: SessionTicket; readonly snapshotLsn: Lsn }): BaseTransferReport
  /** Copy the pinned full base as of `targetLsn`. Works at 0 (an empty store). */
  transferFullBase(request: { readonly ticket: SessionTicket; readonly targetLsn: Lsn }): BaseTransferReport
}

/**
 * A truncation's report: the LSN the replica says it truncated to, once it
 * has answered; undefined until then (the request is a message to the
 * replica, and its answer may take ticks or be lost).
 */
export type TruncateReport = { readonly ok: true; readonly truncatedToLsn: Lsn | undefined } | { readonly ok: false; readonly reason: string }

export interface ReplicaTruncator {
  /**
   * Starts, or polls, the replica's truncation of every entry above `toLsn`
   * for the ticket's session (uncommitted data is never revived). The
   * executor asks again on every step until the answer is in, and gives up
   * after its `truncateTimeoutTicks`; a session that ends is never polled
   * again. Implementations keep it idempotent per session: a duplicated or
   * delayed request must not drop entries the replica took after answering.
   */
  truncate(request: { readonly ticket: SessionTicket; readonly toLsn: Lsn }): TruncateReport
}

export interface RecoveryTransport extends WalStreamer, BaseTransfer, ReplicaTruncator {}

// ------------------------------------------------------------ control plane

/**
 * Assignments with epochs, from the control plane (etcd in the cluster, a
 * static assignment for a single node). The listener receives every newer
 * assignment in epoch order; older or equal epochs are never delivered twice.
 */
export interface AssignmentSource {
  current(): Assignment | undefined
  subscribe(listener: (assignment: Assignment) => void): () => void
}
