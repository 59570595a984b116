/**
 * The planner: turns a session ticket into a plan by handshaking and then
 * acquiring every resource the plan needs. It fails closed: a missing sender
 * or session, a wrong session kind or a refused pin ends the attempt, pins
 * already taken are released, the session is invalidated, and the causal
 * reason is logged. Plans own their pins until an executor takes them over.
 */
import { invariant } from '../domain/index.ts'
import type { PinResult, StorageAdapter } from './adapters.ts'
import type { RecoveryLog } from './log.ts'
import type { RebuildSourceDecision, RecoverabilityProof } from './recoverability.ts'
import type { Registry } from './registry.ts'
import type { Lsn, ReplicaState, SessionTicket } from './types.ts'

export type PinKind = 'wal' | 'snapshot' | 'full_base'

/** The releases a plan holds. `releaseAll` is idempotent and returns how many it released. */
export class PinSet {
  readonly #releases = new Map<PinKind, () => void>()

  hold(kind: PinKind, release: () => void): void {
    invariant(!this.#releases.has(kind), () => `plan already holds a ${kind} pin`)
    this.#releases.set(kind, release)
  }

  held(): PinKind[] {
    return [...this.#releases.keys()]
  }

  get count(): number {
    return this.#releases.size
  }

  releaseAll(): number {
    const releases = [...this.#releases.values()]
    this.#releases.clear()
    for (const release of releases) release()
    return releases.length
  }
}

export interface PlannerContext {
  readonly registry: Registry
  readonly storage: StorageAdapter
}

export type RecoveryPlanKind = 'zero_gap' | 'truncate' | 'catch_up'

export interface RecoveryPlan {
  readonly ticket: SessionTicket
  readonly kind: RecoveryPlanKind
  readonly proof: RecoverabilityProof
  readonly startLsn: Lsn
  readonly targetLsn: Lsn
  readonly truncateToLsn: Lsn | undefined
  readonly pins: PinSet
}

export interface RebuildPlan {
  readonly ticket: SessionTicket
  readonly decision: RebuildSourceDecision
  readonly pins: PinSet
}

export type PlanResult<T> = { readonly ok: true; readonly plan: T } | { readonly ok: false; readonly reason: string }

function log(context: PlannerContext): RecoveryLog {
  return context.registry.log
}

function fail<T>(context: PlannerContext, ticket: SessionTicket, reason: string): PlanResult<T> {
  log(context).append({ kind: 'plan_failed', replicaId: ticket.replicaId, sessionId: ticket.sessionId, reason })
  return { ok: false, reason }
}

function acquire(context: PlannerContext, ticket: SessionTicket, kind: PinKind, lsn: Lsn, pin: () => PinResult, pins: PinSet): boolean {
  const result = pin()
  if (!result.ok) {
    log(context).append({
      kind: 'pin_failed',
      replicaId: ticket.replicaId,
      sessionId: ticket.sessionId,
      reason: result.reason,
      detail: { pin: kind, lsn },
    })
    return false
  }
  pins.hold(kind, result.release)
  log(context).append({ kind: 'pin_acquired', replicaId: ticket.replicaId, sessionId: ticket.sessionId, detail: { pin: kind, lsn } })
  return true
}

/**
 * Connect + handshake + pins for a catch-up-family session (bootstrap,
 * catch-up, reassign). Zero gap and replica-ahead plans pin nothing; a
 * catch-up pins WAL retention from F. A refused WAL pin invalidates the
 * session (`wal_pin_failed`, disconnected). A gap beyond retention leaves the
 * sender in `needs_rebuild` and returns `needs_rebuild`.
 */
export function planRecovery(context: PlannerContext, ticket: SessionTicket, flushedLsn: Lsn): PlanResult<RecoveryPlan> {
  const sender = context.registry.sender(ticket.replicaId)
  if (sender === undefined) return fail(context, ticket, 'sender_missing')
  if (ticket.kind === 'rebuild') return fail(context, ticket, 'wrong_kind')
  const connected = sender.beginConnect(ticket)
  if (!connected.ok) return fail(context, ticket, connected.reason)
  const history = context.storage.retainedHistory()
  const handshake = sender.recordHandshake(ticket, history, flushedLsn)
  if (!handshake.ok) return fail(context, ticket, handshake.reason)
  const proof = handshake.value
  const pins = new PinSet()
  let kind: RecoveryPlanKind
  switch (proof.kind) {
    case 'gap_beyond_retention':
      return fail(context, ticket, 'needs_rebuild')
    case 'zero_gap':
      kind = 'zero_gap'
      break
    case 'replica_ahead':
      kind = 'truncate'
      break
    case 'gap_within_retention': {
      kind = 'catch_up'
      const owner = { replicaId: ticket.replicaId, sessionId: ticket.sessionId }
      if (!acquire(context, ticket, 'wal', flushedLsn, () => context.storage.pinWalRetention(owner, flushedLsn), pins)) {
        sender.invalidateSession(ticket, 'wal_pin_failed', 'disconnected')
        return fail(context, ticket, 'wal_pin_failed')
      }
      break
    }
    default: {
      const never: never = proof
      throw new Error(`unknown proof ${String(never)}`)
    }
  }
  const session = sender.activeSession()
  invariant(session !== undefined && session.id === ticket.sessionId, 'planned session must still be active')
  const plan: RecoveryPlan = {
    ticket,
    kind,
    proof,
    startLsn: session.startLsn,
    targetLsn: session.targetLsn,
    truncateToLsn: session.truncation?.toLsn,
    pins,
  }
  log(context).append({
    kind: 'plan_created',
    replicaId: ticket.replicaId,
    sessionId: ticket.sessionId,
    reason: kind,
    detail: { start: plan.startLsn, target: plan.targetLsn, pins: pins.count },
  })
  return { ok: true, plan }
}

/**
 * Connect + source selection + pins for a rebuild session. Snapshot + tail
 * pins the snapshot, then WAL retention from the snapshot; full base pins
 * the base at committed, then WAL retention from it (live shipping resumes
 * there when the rebuild completes, however long the transfer took). Any refused pin releases what was taken, invalidates
 * the session and leaves the sender in `needs_rebuild`.
 */
export function planRebuild(context: PlannerContext, ticket: SessionTicket): PlanResult<RebuildPlan> {
  const sender = context.registry.sender(ticket.replicaId)
  if (sender === undefined) return fail(context, ticket, 'sender_missing')
  const session = sender.activeSession()
  if (session === undefined) return fail(context, ticket, 'session_missing')
  if (session.kind !== 'rebuild' || ticket.kind !== 'rebuild') return fail(context, ticket, 'wrong_kind')
  const connected = sender.beginConnect(ticket)
  if (!connected.ok) return fail(context, ticket, connected.reason)
  const selected = sender.beginRebuild(ticket, context.storage.retainedHistory())
  if (!selected.ok) return fail(context, ticket, selected.reason)
  const decision = selected.value
  const pins = new PinSet()
  const owner = { replicaId: ticket.replicaId, sessionId: ticket.sessionId }
  const failWith = (reason: string, state: ReplicaState): PlanResult<RebuildPlan> => {
    pins.releaseAll()
    sender.invalidateSession(ticket, reason, state)
    return fail(context, ticket, reason)
  }
  if (decision.source === 'snapshot_tail') {
    const snapshotLsn = decision.snapshotLsn
    if (!acquire(context, ticket, 'snapshot', snapshotLsn, () => context.storage.pinSnapshot(owner, snapshotLsn), pins)) {
      return failWith('snapshot_pin_failed', 'needs_rebuild')
    }
    if (!acquire(context, ticket, 'wal', snapshotLsn, () => context.storage.pinWalRetention(owner, snapshotLsn), pins)) {
      return failWith('wal_pin_failed', 'needs_rebuild')
    }
  } else {
    const targetLsn = decision.targetLsn
    if (!acquire(context, ticket, 'full_base', targetLsn, () => context.storage.pinFullBase(owner, targetLsn), pins)) {
      return failWith('full_base_pin_failed', 'needs_rebuild')
    }
    // Live shipping resumes above the target once the rebuild completes: that WAL must outlive the transfer.
    if (!acquire(context, ticket, 'wal', targetLsn, () => context.storage.pinWalRetention(owner, targetLsn), pins)) {
      return failWith('wal_pin_failed', 'needs_rebuild')
    }
  }
  log(context).append({
    kind: 'plan_created',
    replicaId: ticket.replicaId,
    sessionId: ticket.sessionId,
    reason: decision.source,
    detail: { target: decision.targetLsn, pins: pins.count },
  })
  return { ok: true, plan: { ticket, decision, pins } }
}

/** Releases every pin of a plan (idempotent). */
export function releasePlan(registry: Registry, plan: { readonly ticket: SessionTicket; readonly pins: PinSet }, reason: string): number {
  const released = plan.pins.releaseAll()
  registry.log.append({
    kind: 'plan_released',
    replicaId: plan.ticket.replicaId,
    sessionId: plan.ticket.sessionId,
    reason,
    detail: { pins: released },
  })
  return released
}

/** Releases the plan and invalidates its session if that session is still the sender's current one. */
export function cancelPlan(registry: Registry, plan: { readonly ticket: SessionTicket; readonly pins: PinSet }, reason: string): void {
  releasePlan(registry, plan, reason)
  const sender = registry.sender(plan.ticket.replicaId)
  if (sender?.activeSession()?.id === plan.ticket.sessionId) sender.invalidateSession(plan.ticket, reason, 'disconnected')
  registry.log.append({ kind: 'plan_cancelled', replicaId: plan.ticket.replicaId, sessionId: plan.ticket.sessionId, reason })
}
