/**
 * A recovery session: one attempt to bring one replica back in sync, owned by
 * that replica's sender. The session holds the frozen catch-up range, the
 * truncation requirement, the budget tracker and (for rebuild sessions) the
 * rebuild state machine. Phase changes go through `advance`, which throws on
 * any transition not in `sessionPhaseTransitions`.
 */
import { InvariantViolation, invariant } from '../domain/index.ts'
import type { BudgetTracker } from './budget.ts'
import { RebuildProgress } from './rebuild.ts'
import {
  isSessionPhaseTransitionAllowed,
  isTerminalPhase,
  Lsn,
  type Endpoint,
  type Epoch,
  type ReplicaId,
  type SessionId,
  type SessionKind,
  type SessionPhase,
  type SessionTicket,
} from './types.ts'

export interface Truncation {
  readonly toLsn: Lsn
  recorded: boolean
}

export class Session {
  readonly id: SessionId
  readonly replicaId: ReplicaId
  readonly kind: SessionKind
  readonly epoch: Epoch
  readonly endpoint: Endpoint
  readonly rebuild: RebuildProgress | undefined
  #phase: SessionPhase = 'init'
  #invalidationReason: string | undefined
  /** Range (startLsn, targetLsn]; targetLsn is frozen by the handshake. */
  startLsn: Lsn = Lsn.zero
  targetLsn: Lsn = Lsn.zero
  recoveredTo: Lsn = Lsn.zero
  rangeSet = false
  truncation: Truncation | undefined
  budget: BudgetTracker | undefined

  constructor(options: { id: SessionId; replicaId: ReplicaId; kind: SessionKind; epoch: Epoch; endpoint: Endpoint }) {
    this.id = options.id
    this.replicaId = options.replicaId
    this.kind = options.kind
    this.epoch = options.epoch
    this.endpoint = options.endpoint
    this.rebuild = options.kind === 'rebuild' ? new RebuildProgress() : undefined
  }

  get phase(): SessionPhase {
    return this.#phase
  }

  get invalidationReason(): string | undefined {
    return this.#invalidationReason
  }

  isActive(): boolean {
    return !isTerminalPhase(this.#phase)
  }

  ticket(): SessionTicket {
    return { replicaId: this.replicaId, sessionId: this.id, kind: this.kind, epoch: this.epoch, endpoint: this.endpoint }
  }

  advance(to: SessionPhase): void {
    if (!isSessionPhaseTransitionAllowed(this.#phase, to)) {
      throw new InvariantViolation(`session ${this.id} phase ${this.#phase} -> ${to} is not allowed`)
    }
    this.#phase = to
  }

  invalidate(reason: string): void {
    this.advance('invalidated')
    this.#invalidationReason = reason
    this.rebuild?.abort(reason)
  }

  /** Set once, by the handshake; later changes would unfreeze the target. */
  setRange(startLsn: Lsn, targetLsn: Lsn): void {
    invariant(!this.rangeSet, () => `session ${this.id} range is frozen`)
    invariant(startLsn <= targetLsn, () => `session range (${startLsn}, ${targetLsn}] is reversed`)
    this.startLsn = startLsn
    this.targetLsn = targetLsn
    this.recoveredTo = startLsn
    this.rangeSet = true
  }

  /** Completion gate shared by every caller (see sender.completeSession). */
  canComplete(): boolean {
    if (this.kind === 'rebuild') return false
    if (this.truncation !== undefined && !this.truncation.recorded) return false
    if (this.#phase === 'handshake') return this.rangeSet && this.targetLsn === this.startLsn
    if (this.#phase === 'catchup') return this.recoveredTo >= this.targetLsn
    return false
  }
}
