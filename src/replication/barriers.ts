/**
 * The primary's barriers: after shipping entries up to an LSN, the primary
 * asks the replica to make them durable and acknowledge. Each barrier has a
 * deadline; an acknowledgement counts only while its barrier is open, so a
 * late ack (after the deadline, or after an epoch change expired every
 * barrier) is refused and the commit tracker never hears of it. A live
 * barrier (shipping to an in-sync replica) that times out marks the replica
 * `degraded`; a barrier sent by a recovery session does not (the session's
 * own budget judges it).
 *
 * Pure: the caller provides barrier ids (unique for the process) and ticks,
 * and turns `timeoutAt` into a timer that it hands back to `timedOut`.
 */
import { invariant } from '../domain/index.ts'
import { Tick, type Lsn, type ReplicaId } from './types.ts'

/** An expired barrier is kept this long so a late ack is refused as expired, not unknown. */
export const expiredBarrierTicksKept = 50

export const barriersOpenMax = 100_000

interface Barrier {
  readonly replicaId: ReplicaId
  readonly lsn: Lsn
  readonly live: boolean
  expiredAt: Tick | undefined
}

export type AckVerdict = 'accepted' | 'barrier_unknown' | 'barrier_expired'

export type BarrierTimeout =
  | { readonly kind: 'ignored'; readonly reason: 'acked_or_expired' }
  | { readonly kind: 'expired'; readonly replicaId: ReplicaId; readonly lsn: Lsn; readonly degradeReplica: boolean }

export class BarrierTracker {
  readonly timeoutTicks: number
  readonly #barriers = new Map<number, Barrier>()

  constructor(options: { timeoutTicks: number }) {
    invariant(Number.isSafeInteger(options.timeoutTicks) && options.timeoutTicks >= 1, 'barrier timeoutTicks must be >= 1')
    this.timeoutTicks = options.timeoutTicks
  }

  get openCount(): number {
    return this.#barriers.size
  }

  /** Opens a barrier the replica will see at `deliveredAt`; returns when it times out. */
  open(options: { barrierId: number; replicaId: ReplicaId; lsn: Lsn; live: boolean; deliveredAt: Tick }): { readonly timeoutAt: Tick } {
    invariant(!this.#barriers.has(options.barrierId), () => `barrier ${options.barrierId} opened twice`)
    invariant(this.#barriers.size < barriersOpenMax, () => `more than ${barriersOpenMax} barriers open`)
    this.#barriers.set(options.barrierId, { replicaId: options.replicaId, lsn: options.lsn, live: options.live, expiredAt: undefined })
    return { timeoutAt: Tick.after(options.deliveredAt, this.timeoutTicks) }
  }

  /** An ack for `barrierId` from `from`: counts only while the barrier is open. */
  ack(barrierId: number, from: ReplicaId): AckVerdict {
    const barrier = this.#barriers.get(barrierId)
    if (barrier === undefined) return 'barrier_unknown'
    if (barrier.expiredAt !== undefined) return 'barrier_expired'
    invariant(barrier.replicaId === from, () => `ack for barrier ${barrierId} from ${from}, sent to ${barrier.replicaId}`)
    this.#barriers.delete(barrierId)
    return 'accepted'
  }

  timedOut(barrierId: number, now: Tick): BarrierTimeout {
    const barrier = this.#barriers.get(barrierId)
    if (barrier === undefined || barrier.expiredAt !== undefined) return { kind: 'ignored', reason: 'acked_or_expired' }
    barrier.expiredAt = now
    return { kind: 'expired', replicaId: barrier.replicaId, lsn: barrier.lsn, degradeReplica: barrier.live }
  }

  /** The replica's log was rewound (truncated or replaced): acks of barriers sent before describe a log it no longer holds. */
  expireFor(replicaId: ReplicaId, now: Tick): void {
    for (const barrier of this.#barriers.values()) if (barrier.replicaId === replicaId) barrier.expiredAt ??= now
  }

  /** A new epoch: no ack for an older barrier may count any more. */
  expireAll(now: Tick): void {
    for (const barrier of this.#barriers.values()) barrier.expiredAt ??= now
  }

  /** Forgets barriers expired more than `expiredBarrierTicksKept` ago (bounds the table). */
  sweep(now: Tick): void {
    for (const [id, barrier] of this.#barriers) {
      if (barrier.expiredAt !== undefined && Tick.between(barrier.expiredAt, now) > expiredBarrierTicksKept) this.#barriers.delete(id)
    }
  }
}
