/**
 * Simulated time: integer ticks and a queue of scheduled messages and
 * timers. In `ordered` mode a tick delivers its messages (in send order)
 * before firing its timers (in schedule order): data before timers. In
 * `shuffled` mode the same-tick events are permuted by the seeded PRNG,
 * except that messages on one link keep their send order (a TCP stream).
 */
import { invariant } from '../domain/index.ts'
import { ReplicaId, type Endpoint, type Epoch, type LineageReset, type Lsn, type SessionId, type Tick } from '../replication/index.ts'
import type { WalEntry } from './node.ts'
import type { Prng } from './prng.ts'

/** Simulated nodes are replicas of one another; the id is the replica id. */
export type NodeId = ReplicaId
export const coordinatorId: NodeId = ReplicaId.of('coordinator')

interface MessageBase {
  readonly from: NodeId
  readonly to: NodeId
  readonly epoch: Epoch
}

export type Message =
  | (MessageBase & { readonly kind: 'ship'; readonly endpointVersion: number; readonly entry: WalEntry; readonly committedLsn: Lsn })
  | (MessageBase & {
      readonly kind: 'barrier'
      readonly endpointVersion: number
      readonly barrierId: number
      readonly lsn: Lsn
      readonly committedLsn: Lsn
      readonly attempt: number
      /** The replica's fsync for this barrier already started (slow fsync under the storage model). */
      readonly fsyncStarted?: boolean
    })
  | (MessageBase & { readonly kind: 'ack'; readonly barrierId: number; readonly durableLsn: Lsn })
  /** The primary's connect for a session: the replica matches its log against the primary's and answers with its flushed LSN. */
  | (MessageBase & { readonly kind: 'handshake'; readonly endpointVersion: number; readonly sessionId: SessionId })
  | (MessageBase & { readonly kind: 'handshake_reply'; readonly sessionId: SessionId; readonly flushedLsn: Lsn })
  /** The primary asks a replica ahead of the committed LSN to drop its tail above `toLsn`, for the session its handshake was for. */
  | (MessageBase & { readonly kind: 'truncate'; readonly endpointVersion: number; readonly sessionId: SessionId; readonly toLsn: Lsn })
  | (MessageBase & { readonly kind: 'truncate_reply'; readonly sessionId: SessionId; readonly truncatedToLsn: Lsn })
  | (MessageBase & { readonly kind: 'heartbeat'; readonly endpoint: Endpoint; readonly durableLsn: Lsn; readonly safeLsn: Lsn; readonly sentAt: Tick; readonly serving: boolean; readonly suspects: Epoch | undefined })
  /** The coordinator's answer to the primary's heartbeat: a lease counted from the heartbeat's `sentAt`, at the coordinator's epoch. */
  | (MessageBase & { readonly kind: 'lease_grant'; readonly sentAt: Tick; readonly revision: number })
  /** Coordinator messages carry the revision of the versioned assignment their sender acted on (its fencing token). */
  | (MessageBase & { readonly kind: 'assignment'; readonly lineageResets: readonly LineageReset[]; readonly revision: number })
  | (MessageBase & { readonly kind: 'membership'; readonly endpoints: ReadonlyArray<readonly [NodeId, Endpoint]>; readonly revision: number })

export type Timer =
  | { readonly kind: 'barrier_timeout'; readonly incarnation: number; readonly barrierId: number }
  | { readonly kind: 'catchup_timeout'; readonly incarnation: number; readonly replicaId: ReplicaId; readonly sessionId: SessionId }
  | { readonly kind: 'reservation_timeout'; readonly incarnation: number; readonly replicaId: ReplicaId; readonly sessionId: SessionId }

export type ScheduledEvent =
  | { readonly at: Tick; readonly seq: number; readonly type: 'message'; readonly message: Message }
  | { readonly at: Tick; readonly seq: number; readonly type: 'timer'; readonly timer: Timer }

export type EventOrder = 'ordered' | 'shuffled'

export const eventsPendingMax = 200_000

export class EventQueue {
  readonly #byTick = new Map<Tick, ScheduledEvent[]>()
  #seq = 0
  #pending = 0

  get pendingCount(): number {
    return this.#pending
  }

  sendAt(at: Tick, message: Message): void {
    this.#push({ at, seq: this.#nextSeq(), type: 'message', message })
  }

  timerAt(at: Tick, timer: Timer): void {
    this.#push({ at, seq: this.#nextSeq(), type: 'timer', timer })
  }

  /** Removes and returns the events due at `now`, in delivery order. */
  take(now: Tick, order: EventOrder, prng: Prng): ScheduledEvent[] {
    const due = this.#byTick.get(now) ?? []
    this.#byTick.delete(now)
    this.#pending -= due.length
    if (order === 'ordered') {
      return due.sort((a, b) => (a.type === b.type ? a.seq - b.seq : a.type === 'message' ? -1 : 1))
    }
    const shuffled = prng.shuffle(due.sort((a, b) => a.seq - b.seq).slice())
    // Restore per-link FIFO: each link's messages take that link's slots in send order.
    const byLink = new Map<string, ScheduledEvent[]>()
    for (const event of due) {
      if (event.type !== 'message') continue
      const link = `${event.message.from}>${event.message.to}`
      const queue = byLink.get(link) ?? []
      queue.push(event)
      byLink.set(link, queue)
    }
    return shuffled.map((event) => {
      if (event.type !== 'message') return event
      const next = byLink.get(`${event.message.from}>${event.message.to}`)?.shift()
      invariant(next !== undefined, 'link queue exhausted while restoring FIFO')
      return next
    })
  }

  /** Every message still in flight (for the no-future-epoch check). */
  *messages(): Generator<Message> {
    for (const events of this.#byTick.values()) {
      for (const event of events) if (event.type === 'message') yield event.message
    }
  }

  #push(event: ScheduledEvent): void {
    invariant(this.#pending < eventsPendingMax, `more than ${eventsPendingMax} pending events`)
    const list = this.#byTick.get(event.at)
    if (list === undefined) this.#byTick.set(event.at, [event])
    else list.push(event)
    this.#pending += 1
  }

  #nextSeq(): number {
    this.#seq += 1
    return this.#seq
  }
}
