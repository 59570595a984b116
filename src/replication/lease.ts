/**
 * The primary's lease, counted in ticks, and the coordinator's side of it.
 *
 * A primary may acknowledge (commit) only while it holds a lease; the
 * coordinator may promote another member only once the lease it granted has
 * surely lapsed on the primary. Two rules make the two views never overlap
 * without a shared clock:
 *
 * - the primary counts a grant from the tick it SENT the renewal request
 *   (never from when the answer arrived), and gives up `safetyMarginTicks`
 *   before the coordinator's lease ends (clock rate differences in a real
 *   deployment eat into that margin);
 * - the coordinator counts from the tick it HEARD the request, which is no
 *   earlier than when it was sent, and waits the whole `leaseTicks`.
 *
 * So the primary's last acknowledging tick, `sentAt + leaseTicks - margin - 1`,
 * is before the coordinator's first promoting tick, `heardAt + leaseTicks`.
 * A live primary cut off from the coordinator (a partition) thus stops
 * acknowledging by itself before anyone else may start.
 *
 * Pure: ticks in, decisions out.
 */
import { validationError } from '../domain/index.ts'
import { Tick, type Epoch } from './types.ts'

export interface LeaseTerms {
  /** How long the coordinator waits, from the last renewal it heard, before it may promote another member. */
  readonly leaseTicks: number
  /** How much earlier the primary gives up its lease than the coordinator's view of it ends (>= 1). */
  readonly safetyMarginTicks: number
}

/** Rejects terms that leave the primary no lease, or no margin against the coordinator's. */
export function validateLeaseTerms(terms: LeaseTerms): void {
  const { leaseTicks, safetyMarginTicks } = terms
  if (!Number.isSafeInteger(leaseTicks) || !Number.isSafeInteger(safetyMarginTicks)) throw validationError('lease terms are whole ticks')
  if (safetyMarginTicks < 1) throw validationError('safetyMarginTicks must be >= 1: the margin absorbs clock-rate differences between the primary and the coordinator')
  if (leaseTicks <= safetyMarginTicks) throw validationError('leaseTicks must exceed safetyMarginTicks, or the primary never holds its lease')
}

export type LeaseRenewal = 'renewed' | 'stale_grant' | 'deposed'

/** The primary's own view of its lease; it acknowledges nothing once `holds` is false. */
export class PrimaryLease {
  readonly epoch: Epoch
  readonly #terms: LeaseTerms
  #expiresAt: Tick | undefined
  #deposed = false

  /** A fresh primary holds no lease until its first renewal is answered. */
  constructor(terms: LeaseTerms, epoch: Epoch) {
    validateLeaseTerms(terms)
    this.#terms = terms
    this.epoch = epoch
  }

  /** The first tick at which the lease no longer holds, if it was ever granted. */
  get expiresAt(): Tick | undefined {
    return this.#expiresAt
  }

  get deposed(): boolean {
    return this.#deposed
  }

  /**
   * The coordinator answered the renewal this primary sent at `sentAt`,
   * with the epoch it now assigns. A grant for a newer epoch means another
   * primary was promoted: this one is deposed for good. Answers arrive out
   * of order, so the lease only moves forward.
   */
  renewed(sentAt: Tick, grantEpoch: Epoch): LeaseRenewal {
    if (grantEpoch > this.epoch) {
      this.#deposed = true
      this.#expiresAt = undefined
      return 'deposed'
    }
    if (this.#deposed) return 'deposed'
    // A grant of an older epoch was delayed past an epoch change: it speaks for a primary that no longer exists.
    if (grantEpoch < this.epoch) return 'stale_grant'
    const expiresAt = Tick.after(sentAt, this.#terms.leaseTicks - this.#terms.safetyMarginTicks)
    if (this.#expiresAt !== undefined && expiresAt <= this.#expiresAt) return 'stale_grant'
    this.#expiresAt = expiresAt
    return 'renewed'
  }

  /** Whether the primary may acknowledge a commit at `now`. */
  holds(now: Tick): boolean {
    return !this.#deposed && this.#expiresAt !== undefined && now < this.#expiresAt
  }
}

/**
 * The coordinator's view of the lease it granted: promotion is allowed once
 * `leaseTicks` have passed since it last heard the primary's renewal. A
 * coordinator that restarted has heard nothing, so it must wait a whole
 * lease from its restart (`sinceRestart`) before it may promote.
 */
export class CoordinatorLease {
  readonly #terms: LeaseTerms
  #lastHeardAt: Tick

  constructor(terms: LeaseTerms, startedAt: Tick) {
    validateLeaseTerms(terms)
    this.#terms = terms
    this.#lastHeardAt = startedAt
  }

  /** A renewal request from the current primary arrived at `now`. */
  heard(now: Tick): void {
    if (now > this.#lastHeardAt) this.#lastHeardAt = now
  }

  /** A new primary was assigned at `now`: its lease is counted from there. */
  assigned(now: Tick): void {
    this.#lastHeardAt = now
  }

  lastHeardAt(): Tick {
    return this.#lastHeardAt
  }

  /** The primary's lease has surely lapsed on its side too: another member may be promoted. */
  promotionAllowed(now: Tick): boolean {
    return Tick.between(this.#lastHeardAt, now) >= this.#terms.leaseTicks
  }
}
