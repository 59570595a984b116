/**
 * The primary's lease on etcd: the pure `PrimaryLease` (src/replication/lease.ts)
 * fed with real renewals. The primary's registration lease is what etcd
 * counts: when it expires, the primary's `nodes/<id>` key disappears and the
 * coordinator may promote another member. So the primary holds its own lease
 * from the time it SENT each renewal, for the etcd TTL minus a safety margin,
 * and only while the assignment still names it at its epoch — a renewal that
 * reads a newer epoch deposes it for good.
 *
 * `canAcknowledge(nowMs)` is the gate the server asks before it answers a
 * client; `onChange` tells it when the answer flips (a renewal, a deposition,
 * or the lease running out without one).
 *
 * A lease alone never guarantees one writer (a paused process acts late, and
 * an etcd leader change resets every lease's remaining TTL, so etcd may keep
 * a key alive longer than the primary counted — never shorter): the epoch on
 * every frame, ack and apply is what fences an old primary.
 */
import { Epoch, PrimaryLease, Tick, type LeaseTerms, type ReplicaId } from '../../replication/index.ts'
import type { EtcdControlPlane } from './control-plane.ts'
import type { MonotonicClock, NodeRegistration, Renewal } from './registration.ts'

export interface EtcdPrimaryLeaseOptions {
  readonly nodeId: ReplicaId
  /** The epoch this node was assigned primary at (the assignment's revision). */
  readonly epoch: Epoch
  /** How much earlier than etcd's TTL the primary stops acknowledging (clock-rate differences, scheduling). */
  readonly safetyMarginMs: number
  readonly clock: MonotonicClock
}

export type PrimaryLeaseState = 'holding' | 'lapsed' | 'deposed'

export class EtcdPrimaryLease {
  readonly nodeId: ReplicaId
  readonly epoch: Epoch
  readonly #control: EtcdControlPlane
  readonly #lease: PrimaryLease
  readonly #clock: MonotonicClock
  readonly #listeners = new Set<(state: PrimaryLeaseState) => void>()
  readonly #unsubscribe: () => void
  #timer: NodeJS.Timeout | undefined
  #state: PrimaryLeaseState = 'lapsed'
  #closed = false

  constructor(control: EtcdControlPlane, registration: NodeRegistration, options: EtcdPrimaryLeaseOptions) {
    const terms: LeaseTerms = { leaseTicks: registration.ttlSeconds * 1000, safetyMarginTicks: options.safetyMarginMs }
    this.#control = control
    this.#lease = new PrimaryLease(terms, options.epoch)
    this.#clock = options.clock
    this.nodeId = options.nodeId
    this.epoch = options.epoch
    this.#unsubscribe = registration.onRenewal((renewal) => void this.#renewed(renewal))
  }

  /** Whether the primary may acknowledge a write at `nowMs` (the same clock as the registration's). */
  canAcknowledge(nowMs: number = this.#clock()): boolean {
    // Round the present up: the lease is never thought to hold a fraction of a millisecond longer.
    return this.#lease.holds(Tick.of(Math.ceil(nowMs)))
  }

  get state(): PrimaryLeaseState {
    return this.#state
  }

  /** The first instant (ms, the injected clock) at which the lease no longer holds, if it ever did. */
  get expiresAtMs(): number | undefined {
    return this.#lease.expiresAt
  }

  onChange(listener: (state: PrimaryLeaseState) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  async #renewed(renewal: Renewal): Promise<void> {
    if (this.#closed || !renewal.ok) {
      this.#update()
      return
    }
    // The grant's epoch is read after the renewal was sent: a newer assignment deposes this primary.
    let grantEpoch: Epoch
    try {
      const assignment = await this.#control.readAssignment()
      if (assignment === undefined) return this.#update()
      grantEpoch = assignment.primaryId === this.nodeId ? assignment.epoch : Epoch.of(Math.max(assignment.epoch, this.epoch + 1))
    } catch {
      this.#update()
      return
    }
    if (this.#closed) return
    // Floor the send time: counting from a little earlier only shortens the lease.
    this.#lease.renewed(Tick.of(Math.floor(renewal.sentAtMs)), grantEpoch)
    this.#update()
  }

  #update(): void {
    const now = this.#clock()
    const state: PrimaryLeaseState = this.#lease.deposed ? 'deposed' : this.canAcknowledge(now) ? 'holding' : 'lapsed'
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    const expiresAt = this.#lease.expiresAt
    if (state === 'holding' && expiresAt !== undefined && !this.#closed) {
      this.#timer = setTimeout(() => this.#update(), Math.max(0, expiresAt - now))
      this.#timer.unref()
    }
    if (state === this.#state) return
    this.#state = state
    for (const listener of this.#listeners) listener(state)
  }

  close(): void {
    this.#closed = true
    this.#unsubscribe()
    if (this.#timer !== undefined) clearTimeout(this.#timer)
  }
}
