/**
 * Vocabulary of the recovery engine: identities, positions, states, session
 * kinds and phases. Everything here is plain data; the rules live in
 * `session.ts`, `sender.ts` and `recoverability.ts`.
 */
import { invariant } from '../domain/index.ts'

// Branded scalars: an Lsn, an Epoch and a Tick are all integers and a
// ReplicaId is a string, but passing one where another is expected is a
// compile error. Values enter the engine only through the constructors
// below, which check their range, and arithmetic goes through the helpers,
// so a position never silently becomes a count or a time.
declare const lsnBrand: unique symbol
declare const epochBrand: unique symbol
declare const tickBrand: unique symbol
declare const sessionIdBrand: unique symbol
declare const replicaIdBrand: unique symbol

/** A WAL position. 0 means "before the first entry". */
export type Lsn = number & { readonly [lsnBrand]: 'Lsn' }
/** A control-plane term: every assignment carries one; older ones are fenced. */
export type Epoch = number & { readonly [epochBrand]: 'Epoch' }
/** An injected, integer, monotonic time unit. The engine never reads a clock. */
export type Tick = number & { readonly [tickBrand]: 'Tick' }
/**
 * Names one recovery session across every primary and incarnation that ever
 * ran: `<primary>/<incarnation>/e<epoch>/<counter>` (see `SessionId.of`).
 */
export type SessionId = string & { readonly [sessionIdBrand]: 'SessionId' }
/** A stable replica identity. Never derived from an address. */
export type ReplicaId = string & { readonly [replicaIdBrand]: 'ReplicaId' }

export const replicaIdBytesMax = 128

/**
 * Companion objects: `Lsn.of(5)`, `Lsn.after(at)`, `Epoch.next(e)`, … The
 * type and its constructors share one name, so call sites read in the
 * ledger's words and local variables named `lsn` or `epoch` shadow nothing.
 */
export const Lsn = {
  zero: 0 as Lsn,
  of(value: number): Lsn {
    assertLsn(value, 'lsn')
    return value as Lsn
  },
  /** The position `count` entries after `at` (count may be negative, never below 0). */
  after(at: Lsn, count = 1): Lsn {
    return Lsn.of(at + count)
  },
  /** How many entries (from, to] holds; 0 when to <= from. */
  entriesBetween(fromExclusive: Lsn, toInclusive: Lsn): number {
    return Math.max(0, toInclusive - fromExclusive)
  },
  min(first: Lsn, ...rest: Lsn[]): Lsn {
    return rest.reduce((low, value) => (value < low ? value : low), first)
  },
  max(first: Lsn, ...rest: Lsn[]): Lsn {
    return rest.reduce((high, value) => (value > high ? value : high), first)
  },
} as const

export const Epoch = {
  first: 1 as Epoch,
  of(value: number): Epoch {
    invariant(Number.isSafeInteger(value), () => `epoch must be an integer, got ${value}`)
    invariant(value >= 1, () => `epoch must be >= 1, got ${value}`)
    return value as Epoch
  },
  next(current: Epoch): Epoch {
    return Epoch.of(current + 1)
  },
} as const

export const Tick = {
  zero: 0 as Tick,
  of(value: number): Tick {
    assertTick(value, 'tick')
    return value as Tick
  },
  after(at: Tick, ticks: number): Tick {
    return Tick.of(at + ticks)
  },
  /** Ticks elapsed from `earlier` to `later` (negative when `later` is before). */
  between(earlier: Tick, later: Tick): number {
    return later - earlier
  },
} as const

export const ReplicaId = {
  of(value: string): ReplicaId {
    invariant(value.length > 0, 'a replica id is not empty')
    invariant(value.length <= replicaIdBytesMax, () => `replica id longer than ${replicaIdBytesMax}: ${value.slice(0, 32)}...`)
    invariant(!value.includes('/'), () => `replica id ${value} contains '/', the session id separator`)
    return value as ReplicaId
  },
} as const

/**
 * Who hands out session ids: one primary process. `incarnation` counts the
 * primary's starts and must survive its crashes (a server keeps it on disk),
 * so a restarted primary never reissues an id a replica or a late timer
 * still holds.
 */
export interface SessionIdScope {
  readonly primaryId: ReplicaId
  readonly incarnation: number
}

/**
 * The one way to make a session id: unique across primaries (primary id),
 * restarts (incarnation) and within a run (counter); the epoch is part of
 * it so a log line says which term the session belonged to.
 */
export const SessionId = {
  of(scope: SessionIdScope, sessionEpoch: Epoch, counter: number): SessionId {
    invariant(Number.isSafeInteger(scope.incarnation), () => `incarnation must be an integer, got ${scope.incarnation}`)
    invariant(scope.incarnation >= 1, () => `incarnation must be >= 1, got ${scope.incarnation}`)
    invariant(Number.isSafeInteger(counter), () => `session counter must be an integer, got ${counter}`)
    invariant(counter >= 1, () => `session counter must be >= 1, got ${counter}`)
    return `${scope.primaryId}/${scope.incarnation}/e${sessionEpoch}/${counter}` as SessionId
  },
} as const

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
  | 'reopened_below_image'
  | 'reopened_beyond_target'
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
