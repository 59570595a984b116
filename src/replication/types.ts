/**
 * Vocabulary of the recovery engine: identities, positions, states, session
 * kinds and phases. Everything here is plain data; the rules live in
 * `session.ts`, `sender.ts` and `recoverability.ts`.
 */
import { invariant } from '../domain/index.ts'

/** A WAL position. 0 means "before the first entry". */
export type Lsn = number
/** A control-plane term: every assignment carries one; older ones are fenced. */
export type Epoch = number
/** An injected, integer, monotonic time unit. The engine never reads a clock. */
export type Tick = number
/** Session ids come from an injected per-registry counter, never a global. */
export type SessionId = number
/** A stable replica identity. Never derived from an address. */
export type ReplicaId = string

/** Where a replica is reached. Identity is the `ReplicaId`, not this. */
export interface Endpoint {
  readonly dataAddress: string
  readonly controlAddress: string
  readonly version: number
}

/** Any field differing counts as a change (an address-only change invalidates too). */
export function endpointChanged(previous: Endpoint, next: Endpoint): boolean {
  return (
    previous.dataAddress !== next.dataAddress ||
    previous.controlAddress !== next.controlAddress ||
    previous.version !== next.version
  )
}

export function assertLsn(value: number, name: string): void {
  invariant(Number.isSafeInteger(value), () => `${name} must be an integer, got ${value}`)
  invariant(value >= 0, () => `${name} must be >= 0, got ${value}`)
}

export function assertTick(value: number, name: string): void {
  invariant(Number.isSafeInteger(value), () => `${name} must be an integer tick, got ${value}`)
  invariant(value >= 0, () => `${name} must be >= 0, got ${value}`)
}

/**
 * The primary's view of one replica. `rebuilding` is set while a rebuild
 * session runs (promotion must skip it); `degraded` marks an in-sync replica
 * that lost contact (a barrier timed out) and has no session yet.
 */
export type ReplicaState =
  | 'disconnected'
  | 'connecting'
  | 'catching_up'
  | 'in_sync'
  | 'degraded'
  | 'needs_rebuild'
  | 'rebuilding'

export type SessionKind = 'bootstrap' | 'catchup' | 'rebuild' | 'reassign'

export type SessionPhase = 'init' | 'connecting' | 'handshake' | 'catchup' | 'completed' | 'invalidated'

/** The only phase transitions a session may take; terminal phases have none. */
export const sessionPhaseTransitions: Readonly<Record<SessionPhase, readonly SessionPhase[]>> = {
  init: ['connecting', 'invalidated'],
  connecting: ['handshake', 'invalidated'],
  handshake: ['catchup', 'completed', 'invalidated'],
  catchup: ['completed', 'invalidated'],
  completed: [],
  invalidated: [],
}

export function isSessionPhaseTransitionAllowed(from: SessionPhase, to: SessionPhase): boolean {
  return sessionPhaseTransitions[from].includes(to)
}

export function isTerminalPhase(phase: SessionPhase): boolean {
  return sessionPhaseTransitions[phase].length === 0
}

/**
 * Why an engine call was refused. Stable strings: they appear in the
 * recovery log and in simulator traces.
 */
export type RejectionReason =
  | 'sender_missing'
  | 'sender_stopped'
  | 'session_missing'
  | 'session_mismatch'
  | 'session_inactive'
  | 'epoch_stale'
  | 'endpoint_stale'
  | 'session_active'
  | 'wrong_phase'
  | 'wrong_kind'
  | 'progress_regression'
  | 'beyond_frozen_target'
  | 'tick_missing'
  | 'tick_regression'
  | 'truncation_not_required'
  | 'truncation_mismatch'
  | 'completion_rejected'
  | 'not_recoverable'
  | 'transfer_regression'
  | 'transfer_beyond_target'
  | 'transfer_incomplete'
  | 'tail_replay_not_applicable'
  | 'stale_assignment'

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: RejectionReason }

export function accepted<T>(value: T): Outcome<T> {
  return { ok: true, value }
}

export function rejected<T>(reason: RejectionReason): Outcome<T> {
  return { ok: false, reason }
}

/**
 * What a caller holds to act on a session: every mutation presents it and the
 * sender checks it against its current authority (session id, epoch, endpoint).
 */
export interface SessionTicket {
  readonly replicaId: ReplicaId
  readonly sessionId: SessionId
  readonly kind: SessionKind
  readonly epoch: Epoch
  readonly endpoint: Endpoint
}
