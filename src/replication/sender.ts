/**
 * A sender: the primary's per-replica recovery owner. It keeps its identity
 * (replica id) across endpoint and epoch changes, owns at most one active
 * session, and checks authority on every mutation: the sender is not
 * stopped, a session exists, its id matches the caller's ticket, it is
 * active, and the ticket's epoch and endpoint are the sender's current ones.
 * A refused call returns a rejection (and logs `call_rejected`); an
 * impossible internal state throws `InvariantViolation`.
 */
import { invariant } from '../domain/index.ts'
import { BudgetTracker, type BudgetViolation, type CatchUpBudget } from './budget.ts'
import type { RecoveryLog } from './log.ts'
import {
  outcomeOfProof,
  proveRecoverability,
  selectRebuildSource,
  type RebuildSourceDecision,
  type RecoverabilityProof,
  type RetainedHistory,
} from './recoverability.ts'
import { noFaults, type ProtocolFaults } from './faults.ts'
import { Session } from './session.ts'
import {
  accepted,
  assertLsn,
  assertTick,
  endpointChanged,
  Lsn,
  rejected,
  type Endpoint,
  type Epoch,
  type Outcome,
  type RejectionReason,
  type ReplicaId,
  type ReplicaState,
  type SessionId,
  type SessionKind,
  type SessionTicket,
  type Tick,
} from './types.ts'

export class Sender {
  readonly replicaId: ReplicaId
  readonly #log: RecoveryLog
  #endpoint: Endpoint
  #epoch: Epoch
  #state: ReplicaState = 'disconnected'
  #session: Session | undefined
  #stopped = false

  readonly #faults: ProtocolFaults

  constructor(options: { replicaId: ReplicaId; endpoint: Endpoint; epoch: Epoch; log: RecoveryLog; faults?: ProtocolFaults }) {
    invariant(options.replicaId.length > 0, 'replica id must not be empty')
    invariant(Number.isSafeInteger(options.epoch) && options.epoch >= 0, 'epoch must be a non-negative integer')
    this.replicaId = options.replicaId
    this.#endpoint = options.endpoint
    this.#epoch = options.epoch
    this.#log = options.log
    this.#faults = options.faults ?? noFaults
    this.#log.append({ kind: 'sender_created', replicaId: this.replicaId, detail: { epoch: this.#epoch } })
  }

  get state(): ReplicaState {
    return this.#state
  }
  get epoch(): Epoch {
    return this.#epoch
  }
  get endpoint(): Endpoint {
    return this.#endpoint
  }
  get stopped(): boolean {
    return this.#stopped
  }
  /** The current session, active or terminal (read-only use). */
  get session(): Session | undefined {
    return this.#session
  }
  activeSession(): Session | undefined {
    return this.#session?.isActive() === true ? this.#session : undefined
  }

  // ---------------------------------------------------------------- sessions

  attachSession(sessionId: SessionId, kind: SessionKind): Outcome<SessionTicket> {
    if (this.#stopped) return this.#reject('sender_stopped', undefined)
    if (this.activeSession() !== undefined) return this.#reject('session_active', undefined)
    const session = new Session({
      id: sessionId,
      replicaId: this.replicaId,
      kind,
      epoch: this.#epoch,
      endpoint: this.#endpoint,
    })
    invariant(this.#session?.id !== sessionId, () => `session id ${sessionId} reused by sender ${this.replicaId}`)
    this.#session = session
    this.#log.append({ kind: 'session_attached', replicaId: this.replicaId, sessionId, detail: { kind, epoch: this.#epoch } })
    return accepted(session.ticket())
  }

  /** Invalidates the active session (if any) and attaches a new one. */
  supersedeSession(sessionId: SessionId, kind: SessionKind, reason: string): Outcome<SessionTicket> {
    if (this.#stopped) return this.#reject('sender_stopped', undefined)
    const active = this.activeSession()
    if (active !== undefined) {
      this.#invalidate(active, reason, 'disconnected')
      this.#log.append({ kind: 'session_superseded', replicaId: this.replicaId, sessionId: active.id, reason })
    }
    return this.attachSession(sessionId, kind)
  }

  beginConnect(ticket: SessionTicket): Outcome<undefined> {
    const session = this.#authorize(ticket)
    if (!session.ok) return session
    if (session.value.phase !== 'init') return this.#reject('wrong_phase', ticket)
    session.value.advance('connecting')
    this.#state = 'connecting'
    this.#log.append({ kind: 'connect_begun', replicaId: this.replicaId, sessionId: ticket.sessionId })
    return accepted(undefined)
  }

  /**
   * Classifies the replica at flushed LSN F against the primary's retained
   * history (one rule: `proveRecoverability`) and freezes the session range.
   * `gap_beyond_retention` invalidates the session and sets `needs_rebuild`.
   */
  recordHandshake(ticket: SessionTicket, history: RetainedHistory, flushedLsn: Lsn): Outcome<RecoverabilityProof> {
    const authorized = this.#authorize(ticket)
    if (!authorized.ok) return authorized
    const session = authorized.value
    if (session.kind === 'rebuild') return this.#reject('wrong_kind', ticket)
    if (session.phase !== 'connecting') return this.#reject('wrong_phase', ticket)
    const proof = proveRecoverability(history, flushedLsn, this.#faults)
    this.#log.append({
      kind: 'handshake_recorded',
      replicaId: this.replicaId,
      sessionId: session.id,
      reason: proof.kind,
      detail: { flushed: flushedLsn, committed: history.committedLsn, tail: history.tailLsn, head: history.headLsn },
    })
    switch (proof.kind) {
      case 'gap_beyond_retention':
        session.advance('handshake')
        this.#invalidate(session, 'gap_beyond_retention', 'needs_rebuild')
        break
      case 'zero_gap':
        session.advance('handshake')
        session.setRange(flushedLsn, flushedLsn)
        break
      case 'replica_ahead':
        session.advance('handshake')
        session.setRange(proof.committedLsn, proof.committedLsn)
        session.truncation = { toLsn: proof.truncateToLsn, recorded: false }
        break
      case 'gap_within_retention':
        session.advance('handshake')
        session.setRange(flushedLsn, proof.committedLsn)
        break
      default: {
        const never: never = proof
        throw new Error(`unknown proof ${String(never)}`)
      }
    }
    invariant(outcomeOfProof(proof) !== 'needs_rebuild' || !session.isActive(), 'needs_rebuild left a session active')
    return accepted(proof)
  }

  /** Enters the catch-up phase; the target stays frozen at the handshake's committed LSN. */
  beginCatchUp(ticket: SessionTicket, startTick: Tick, budget?: CatchUpBudget): Outcome<undefined> {
    assertTick(startTick, 'startTick')
    const authorized = this.#authorize(ticket)
    if (!authorized.ok) return authorized
    const session = authorized.value
    if (session.kind === 'rebuild') return this.#reject('wrong_kind', ticket)
    if (session.phase !== 'handshake') return this.#reject('wrong_phase', ticket)
    session.advance('catchup')
    if (budget !== undefined) session.budget = new BudgetTracker(budget, startTick)
    this.#state = 'catching_up'
    this.#log.append({
      kind: 'catchup_begun',
      replicaId: this.replicaId,
      sessionId: session.id,
      detail: { from: session.startLsn, target: session.targetLsn, tick: startTick },
    })
    return accepted(undefined)
  }

  /** Records that the replica durably holds everything up to `lsn`; counts the delta. */
  recordCatchUpProgress(ticket: SessionTicket, lsn: Lsn, tick?: Tick): Outcome<undefined> {
    assertLsn(lsn, 'progress lsn')
    const authorized = this.#authorize(ticket)
    if (!authorized.ok) return authorized
    const session = authorized.value
    if (session.phase !== 'catchup') return this.#reject('wrong_phase', ticket)
    if (lsn <= session.recoveredTo) return this.#reject('progress_regression', ticket)
    if (lsn > session.targetLsn) {
      if (this.#faults.catchUpTargetNotFrozen !== true) return this.#reject('beyond_frozen_target', ticket)
      session.targetLsn = lsn
    }
    const budget = session.budget
    if (budget !== undefined) {
      if (tick === undefined && budget.budget.progressDeadlineTicks > 0) return this.#reject('tick_missing', ticket)
      if (tick !== undefined && tick < budget.lastProgressTick) return this.#reject('tick_regression', ticket)
      budget.recordProgress(lsn - session.recoveredTo, tick ?? budget.lastProgressTick)
    }
    const delta = lsn - session.recoveredTo
    session.recoveredTo = lsn
    this.#log.append({
      kind: 'catchup_progress',
      replicaId: this.replicaId,
      sessionId: session.id,
      detail: { recovered: lsn, delta, target: session.targetLsn },
    })
    return accepted(undefined)
  }

  /** A violation invalidates the session (`budget_<kind>`) and sets `needs_rebuild`. */
  checkBudget(ticket: SessionTicket, now: Tick): Outcome<BudgetViolation | undefined> {
    const authorized = this.#authorize(ticket)
    if (!authorized.ok) return authorized
    const session = authorized.value
    if (session.phase !== 'catchup') return this.#reject('wrong_phase', ticket)
    const violation = session.budget?.check(now)
    if (violation !== undefined) {
      this.#log.append({ kind: 'budget_violated', replicaId: this.replicaId, sessionId: session.id, reason: violation })
      this.#invalidate(session, `budget_${violation}`, 'needs_rebuild')
    }
    return accepted(violation)
  }

  /** Records that a replica ahead was truncated; only exactly the required LSN is accepted. */
  recordTruncation(ticket: SessionTicket, truncatedToLsn: Lsn): Outcome<undefined> {
    assertLsn(truncatedToLsn, 'truncated lsn')
    const authorized = this.#authorize(ticket)
    if (!authorized.ok) return authorized
    const session = authorized.value
    const truncation = session.truncation
    if (truncation === undefined) return this.#reject('truncation_not_required', ticket)
    if (truncatedToLsn !== truncation.toLsn) return this.#reject('truncation_mismatch', ticket)
    truncation.recorded = true
    this.#log.append({
      kind: 'truncation_recorded',
      replicaId: this.replicaId,
      sessionId: session.id,
      detail: { lsn: truncatedToLsn },
    })
    return accepted(undefined)
  }

  completeSession(ticket: SessionTicket): Outcome<undefined> {
    const authorized = this.#authorize(ticket)
    if (!authorized.ok) return authorized
    const session = authorized.value
    if (!session.canComplete()) {
      this.#log.append({
        kind: 'completion_rejected',
        replicaId: this.replicaId,
        sessionId: session.id,
        detail: { phase: session.phase, recovered: session.recoveredTo, target: session.targetLsn },
      })
      return rejected('completion_rejected')
    }
    session.advance('completed')
    this.#state = 'in_sync'
    this.#log.append({
      kind: 'session_completed',
      replicaId: this.replicaId,
      sessionId: session.id,
      detail: { lsn: session.targetLsn },
    })
    return accepted(undefined)
  }

  // ----------------------------------------------------------------- rebuild

  /** Handshake of a rebuild session: selects the source from the retained history. */
  beginRebuild(ticket: SessionTicket, history: RetainedHistory): Outcome<RebuildSourceDecision> {
    const authorized = this.#authorize(ticket)
    if (!authorized.ok) return authorized
    const session = authorized.value
    if (session.rebuild === undefined) return this.#reject('wrong_kind', ticket)
    if (session.phase !== 'connecting') return this.#reject('wrong_phase', ticket)
    const decision = selectRebuildSource(history)
    session.advance('handshake')
    session.setRange(Lsn.zero, decision.targetLsn)
    session.rebuild.selectSource(decision)
    this.#state = 'rebuilding'
    this.#log.append({
      kind: 'rebuild_source_selected',
      replicaId: this.replicaId,
      sessionId: session.id,
      reason: decision.source === 'full_base' ? decision.reason : 'snapshot_tail',
      detail:
        decision.source === 'snapshot_tail'
          ? { source: decision.source, snapshot: decision.snapshotLsn, target: decision.targetLsn }
          : { source: decision.source, target: decision.targetLsn },
    })
    return accepted(decision)
  }

  recordRebuildTransfer(ticket: SessionTicket, lsn: Lsn): Outcome<undefined> {
    const rebuild = this.#authorizeRebuild(ticket)
    if (!rebuild.ok) return rebuild
    const result = rebuild.value.recordTransfer(lsn)
    if (!result.ok) return this.#reject(result.reason, ticket)
    this.#log.append({ kind: 'rebuild_transferred', replicaId: this.replicaId, sessionId: ticket.sessionId, detail: { lsn } })
    return result
  }

  recordRebuildTailReplay(ticket: SessionTicket, lsn: Lsn): Outcome<undefined> {
    const rebuild = this.#authorizeRebuild(ticket)
    if (!rebuild.ok) return rebuild
    const result = rebuild.value.recordTailReplay(lsn)
    if (!result.ok) return this.#reject(result.reason, ticket)
    this.#log.append({ kind: 'rebuild_tail_replayed', replicaId: this.replicaId, sessionId: ticket.sessionId, detail: { lsn } })
    return result
  }

  /** The replica reopens on the installed image; the session waits for its next handshake (see `RebuildProgress`). */
  recordRebuildAwaitingReopen(ticket: SessionTicket): Outcome<undefined> {
    const rebuild = this.#authorizeRebuild(ticket)
    if (!rebuild.ok) return rebuild
    const result = rebuild.value.awaitReopen()
    if (!result.ok) return this.#reject(result.reason, ticket)
    this.#log.append({ kind: 'rebuild_awaiting_reopen', replicaId: this.replicaId, sessionId: ticket.sessionId, detail: { lsn: rebuild.value.transferTargetLsn() } })
    return result
  }

  /** The reopened replica's handshake answered `flushedLsn`: at or above the image the rebuild goes on. */
  recordRebuildReopened(ticket: SessionTicket, flushedLsn: Lsn): Outcome<undefined> {
    const rebuild = this.#authorizeRebuild(ticket)
    if (!rebuild.ok) return rebuild
    const result = rebuild.value.recordReopen(flushedLsn)
    this.#log.append({
      kind: 'rebuild_reopened',
      replicaId: this.replicaId,
      sessionId: ticket.sessionId,
      reason: result.ok ? undefined : result.reason,
      detail: { flushed: flushedLsn, image: rebuild.value.transferTargetLsn() },
    })
    if (!result.ok) return this.#reject(result.reason, ticket)
    return result
  }

  completeRebuild(ticket: SessionTicket): Outcome<undefined> {
    const rebuild = this.#authorizeRebuild(ticket)
    if (!rebuild.ok) return rebuild
    const result = rebuild.value.complete()
    if (!result.ok) {
      this.#log.append({ kind: 'completion_rejected', replicaId: this.replicaId, sessionId: ticket.sessionId })
      return result
    }
    const session = this.#session
    invariant(session !== undefined, 'rebuild completed without a session')
    session.recoveredTo = session.targetLsn
    session.advance('completed')
    this.#state = 'in_sync'
    this.#log.append({
      kind: 'rebuild_completed',
      replicaId: this.replicaId,
      sessionId: session.id,
      detail: { lsn: session.targetLsn },
    })
    return accepted(undefined)
  }

  // ------------------------------------------------------ authority changes

  /** Invalidates the ticket's session, if it is still the active one. */
  invalidateSession(ticket: SessionTicket, reason: string, state: ReplicaState): Outcome<undefined> {
    const authorized = this.#authorize(ticket)
    if (!authorized.ok) return authorized
    this.#invalidate(authorized.value, reason, state)
    return accepted(undefined)
  }

  /** An in-sync replica lost contact (e.g. a barrier timed out). */
  markDegraded(reason: string): void {
    if (this.#state !== 'in_sync') return
    invariant(this.activeSession() === undefined, 'an in-sync sender has no active session')
    this.#state = 'degraded'
    this.#log.append({ kind: 'replica_degraded', replicaId: this.replicaId, reason })
  }

  /** Ignores epochs that are not newer. A newer one invalidates the session and disconnects. */
  updateEpoch(epoch: Epoch): void {
    invariant(Number.isSafeInteger(epoch) && epoch >= 0, 'epoch must be a non-negative integer')
    if (epoch <= this.#epoch) return
    const previous = this.#epoch
    this.#epoch = epoch
    this.#log.append({ kind: 'epoch_advanced', replicaId: this.replicaId, detail: { from: previous, to: epoch } })
    const active = this.activeSession()
    if (active !== undefined && this.#faults.keepSessionOnEpochChange === true) return
    // This is what keeps an older-epoch ticket from ever being presented:
    // the session it names is gone before the epoch comparison is reached.
    if (active !== undefined) this.#invalidate(active, 'epoch_changed', 'disconnected')
    // A new epoch needs a new handshake even when no session was running.
    if (this.#state !== 'needs_rebuild') this.#state = 'disconnected'
  }

  /** Keeps the sender (identity) and drops any session tied to the old endpoint. */
  updateEndpoint(endpoint: Endpoint): void {
    if (!endpointChanged(this.#endpoint, endpoint)) return
    const previous = this.#endpoint
    this.#endpoint = endpoint
    this.#log.append({
      kind: 'endpoint_changed',
      replicaId: this.replicaId,
      detail: { fromVersion: previous.version, toVersion: endpoint.version, dataAddress: endpoint.dataAddress },
    })
    const active = this.activeSession()
    if (active !== undefined) this.#invalidate(active, 'endpoint_changed', 'disconnected')
    if (this.#state !== 'needs_rebuild') this.#state = 'disconnected'
  }

  stop(reason: string): void {
    if (this.#stopped) return
    const active = this.activeSession()
    if (active !== undefined) this.#invalidate(active, reason, 'disconnected')
    this.#stopped = true
    this.#state = 'disconnected'
    this.#log.append({ kind: 'sender_stopped', replicaId: this.replicaId, reason })
  }

  // -------------------------------------------------------------- internals

  #invalidate(session: Session, reason: string, state: ReplicaState): void {
    session.invalidate(reason)
    this.#state = state
    this.#log.append({ kind: 'session_invalidated', replicaId: this.replicaId, sessionId: session.id, reason, detail: { state } })
  }

  #authorize(ticket: SessionTicket): Outcome<Session> {
    invariant(ticket.replicaId === this.replicaId, 'ticket presented to the wrong sender')
    if (this.#stopped) return this.#reject('sender_stopped', ticket)
    const session = this.#session
    if (session === undefined) return this.#reject('session_missing', ticket)
    if (session.id !== ticket.sessionId) return this.#reject('session_mismatch', ticket)
    if (!session.isActive()) return this.#reject('session_inactive', ticket)
    const epochChecked = this.#faults.acceptStaleEpochTicket !== true
    if (epochChecked && (ticket.epoch !== this.#epoch || session.epoch !== this.#epoch)) return this.#reject('epoch_stale', ticket)
    if (endpointChanged(ticket.endpoint, this.#endpoint) || endpointChanged(session.endpoint, this.#endpoint)) {
      return this.#reject('endpoint_stale', ticket)
    }
    return accepted(session)
  }

  #authorizeRebuild(ticket: SessionTicket): Outcome<NonNullable<Session['rebuild']>> {
    const authorized = this.#authorize(ticket)
    if (!authorized.ok) return authorized
    const rebuild = authorized.value.rebuild
    if (rebuild === undefined) return this.#reject('wrong_kind', ticket)
    if (authorized.value.phase !== 'handshake') return this.#reject('wrong_phase', ticket)
    return accepted(rebuild)
  }

  #reject<T>(reason: RejectionReason, ticket: SessionTicket | undefined): Outcome<T> {
    this.#log.append({ kind: 'call_rejected', replicaId: this.replicaId, sessionId: ticket?.sessionId, reason })
    return rejected(reason)
  }
}
