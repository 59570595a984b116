/**
 * The recovery log: an append-only list of structured decisions, each with
 * its reason. The engine writes every decision here; the simulator copies it
 * into its trace. Bounded: past `eventsMax` the oldest half is dropped and
 * counted, so a long-lived primary cannot grow it without limit.
 */
import { invariant } from '../domain/index.ts'
import { Tick, type ReplicaId, type SessionId } from './types.ts'

export type RecoveryEventKind =
  | 'sender_created'
  | 'sender_stopped'
  | 'endpoint_changed'
  | 'epoch_advanced'
  | 'stale_assignment'
  | 'session_attached'
  | 'session_superseded'
  | 'session_invalidated'
  | 'call_rejected'
  | 'connect_begun'
  | 'handshake_recorded'
  | 'catchup_begun'
  | 'catchup_progress'
  | 'budget_violated'
  | 'truncation_recorded'
  | 'session_completed'
  | 'completion_rejected'
  | 'replica_degraded'
  | 'rebuild_source_selected'
  | 'rebuild_transferred'
  | 'rebuild_tail_replayed'
  | 'rebuild_awaiting_reopen'
  | 'rebuild_reopened'
  | 'rebuild_completed'
  | 'plan_created'
  | 'plan_failed'
  | 'pin_acquired'
  | 'pin_failed'
  | 'plan_released'
  | 'plan_cancelled'
  | 'exec_started'
  | 'exec_step'
  | 'exec_failed'
  | 'exec_completed'
  | 'exec_resources_released'
  | 'desperate_promotion'
  | 'assignment_write_refused'

export interface RecoveryEvent {
  readonly seq: number
  readonly tick: Tick
  readonly kind: RecoveryEventKind
  readonly replicaId: ReplicaId
  readonly sessionId: SessionId | undefined
  readonly reason: string | undefined
  readonly detail: Readonly<Record<string, number | string>> | undefined
}

export interface RecoveryEventInput {
  readonly kind: RecoveryEventKind
  readonly replicaId: ReplicaId
  readonly sessionId?: SessionId | undefined
  readonly reason?: string | undefined
  readonly detail?: Readonly<Record<string, number | string>> | undefined
}

export type RecoveryLogListener = (event: RecoveryEvent) => void

export const recoveryLogEventsMaxDefault = 10_000

export class RecoveryLog {
  readonly #events: RecoveryEvent[] = []
  readonly #now: () => Tick
  readonly #eventsMax: number
  readonly #listeners: RecoveryLogListener[] = []
  #seq = 0
  #dropped = 0

  constructor(options: { now?: () => Tick; eventsMax?: number } = {}) {
    this.#now = options.now ?? (() => Tick.zero)
    this.#eventsMax = options.eventsMax ?? recoveryLogEventsMaxDefault
    invariant(this.#eventsMax >= 2, 'recovery log eventsMax must be >= 2')
  }

  append(input: RecoveryEventInput): RecoveryEvent {
    this.#seq += 1
    const event: RecoveryEvent = {
      seq: this.#seq,
      tick: this.#now(),
      kind: input.kind,
      replicaId: input.replicaId,
      sessionId: input.sessionId,
      reason: input.reason,
      detail: input.detail,
    }
    if (this.#events.length >= this.#eventsMax) {
      const dropCount = Math.floor(this.#eventsMax / 2)
      this.#events.splice(0, dropCount)
      this.#dropped += dropCount
    }
    this.#events.push(event)
    for (const listener of this.#listeners) listener(event)
    return event
  }

  /** Called synchronously for every appended event (the simulator's trace uses it). */
  subscribe(listener: RecoveryLogListener): void {
    this.#listeners.push(listener)
  }

  events(): readonly RecoveryEvent[] {
    return this.#events
  }

  eventsFor(replicaId: ReplicaId): RecoveryEvent[] {
    return this.#events.filter((event) => event.replicaId === replicaId)
  }

  kinds(replicaId?: ReplicaId): RecoveryEventKind[] {
    return this.#events.filter((event) => replicaId === undefined || event.replicaId === replicaId).map((event) => event.kind)
  }

  has(kind: RecoveryEventKind, reason?: string): boolean {
    return this.#events.some((event) => event.kind === kind && (reason === undefined || event.reason === reason))
  }

  get droppedCount(): number {
    return this.#dropped
  }
}

export function formatRecoveryEvent(event: RecoveryEvent): string {
  const parts = [`${event.kind}`, `replica=${event.replicaId}`]
  if (event.sessionId !== undefined) parts.push(`session=${event.sessionId}`)
  if (event.reason !== undefined) parts.push(`reason=${event.reason}`)
  if (event.detail !== undefined) {
    for (const key of Object.keys(event.detail).sort()) parts.push(`${key}=${String(event.detail[key])}`)
  }
  return parts.join(' ')
}
