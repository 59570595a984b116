/**
 * The recovery driver: the primary's loop that turns replicas out of sync
 * into sessions, plans and executors, etcd/raft style. Inputs are ticks
 * (`tick(now)`), fired timers (`timerFired`) and control-plane hints
 * (`requestReassign`); every call returns a `DriverReady`: timers to
 * schedule, replicas that completed recovery (the caller resumes live
 * shipping from `syncedToLsn`), and recoveries that failed. The driver owns
 * no clock and schedules nothing itself: the caller turns each timer into
 * whatever its runtime uses and hands it back when it fires.
 *
 * Per replica and tick, in order: step its executor if it has one (a
 * rebuild that made no progress for `rebuildStallTicks` is cancelled into
 * `needs_rebuild`); otherwise, unless it is in sync or waiting out
 * `recoveryRetryTicks` after a failure, start a session of the right kind
 * (`rebuild` when it needs one, `reassign` after an endpoint change,
 * `catchup` once it was in sync under this primary, else `bootstrap`),
 * connect, plan and start an executor. A catch-up gets two timers: the
 * catch-up deadline and the reservation (pin) deadline; either cancels a
 * still-running session into `needs_rebuild`.
 */
import { invariant } from '../domain/index.ts'
import type { RecoveryTransport, ReplicaConnector, StorageAdapter } from './adapters.ts'
import type { CatchUpBudget } from './budget.ts'
import type { ProtocolFaults } from './faults.ts'
import { CatchUpExecutor, RebuildExecutor, type ExecutorStatus } from './executor.ts'
import { planRebuild, planRecovery } from './planner.ts'
import type { Registry } from './registry.ts'
import type { Sender } from './sender.ts'
import { Lsn, Tick, type ReplicaId, type SessionId, type SessionKind, type SessionTicket } from './types.ts'

/** The driver's limits, in ticks (the runtime's defaults: docs/cluster.md). */
export interface DriverLimits {
  /** Entries one executor step asks the link to ship (the link batches them by its own bounds). */
  readonly chunkEntriesMax: number
  /** A catch-up longer than `durationTicksMax`, longer than `entriesMax` entries, or without progress for `progressDeadlineTicks` escalates to a rebuild. */
  readonly catchUpBudget: CatchUpBudget
  /** A catch-up still running this long after its handshake is cancelled into a rebuild. */
  readonly catchUpTimeoutTicks: number
  /** How long a catch-up may hold its WAL retention pin. */
  readonly reservationTimeoutTicks: number
  /** A rebuild whose recorded progress has not moved for this long (a transfer, a reopen) is cancelled and started again. */
  readonly rebuildStallTicks: number
  /** The wait after a failed recovery before the next attempt. */
  readonly recoveryRetryTicks: number
  /** A handshake (dial, hello, log matching) not answered within this many ticks is abandoned (`connect_timeout`); default `connectTimeoutTicksDefault`. */
  readonly connectTimeoutTicks?: number
}

export interface DriverOptions extends DriverLimits {
  readonly registry: Registry
  readonly adapters: StorageAdapter & RecoveryTransport & ReplicaConnector
  readonly faults?: ProtocolFaults
}

export const connectTimeoutTicksDefault = 10

export type DriverTimerKind = 'catchup_timeout' | 'reservation_timeout'

export interface DriverTimer {
  readonly kind: DriverTimerKind
  readonly at: Tick
  readonly replicaId: ReplicaId
  readonly sessionId: SessionId
}

export interface RecoveryCompleted {
  readonly replicaId: ReplicaId
  readonly kind: SessionKind
  /** The replica holds the primary's log up to here; live shipping resumes above it. */
  readonly syncedToLsn: Lsn
}

export interface RecoveryFailed {
  readonly replicaId: ReplicaId
  readonly kind: SessionKind
  readonly reason: string
}

export interface DriverReady {
  readonly timers: readonly DriverTimer[]
  readonly completed: readonly RecoveryCompleted[]
  readonly failed: readonly RecoveryFailed[]
  /** Timers that fired for a session that had already ended (logged, no effect). */
  readonly ignored: readonly DriverTimer[]
}

/** A session whose handshake the replica has not answered yet. */
interface PendingConnect {
  readonly ticket: SessionTicket
  readonly kind: SessionKind
  readonly since: Tick
}

interface RunningRecovery {
  readonly executor: CatchUpExecutor | RebuildExecutor
  readonly kind: SessionKind
  readonly sessionId: SessionId
  lastProgressAt: Tick
  progress: number
}

/** The Ready a call fills in; handed back as plain data. */
interface ReadyBuilder {
  readonly timers: DriverTimer[]
  readonly completed: RecoveryCompleted[]
  readonly failed: RecoveryFailed[]
  readonly ignored: DriverTimer[]
}

function emptyReady(): ReadyBuilder {
  return { timers: [], completed: [], failed: [], ignored: [] }
}

export class RecoveryDriver {
  readonly registry: Registry
  readonly #options: DriverOptions
  readonly #running = new Map<ReplicaId, RunningRecovery>()
  readonly #retryAt = new Map<ReplicaId, Tick>()
  readonly #reassign = new Set<ReplicaId>()
  readonly #everInSync = new Set<ReplicaId>()
  readonly #connecting = new Map<ReplicaId, PendingConnect>()

  constructor(options: DriverOptions) {
    invariant(options.recoveryRetryTicks >= 1, 'recoveryRetryTicks must be >= 1')
    invariant(options.rebuildStallTicks >= 1, 'rebuildStallTicks must be >= 1')
    this.#options = options
    this.registry = options.registry
  }

  /** The session a replica's running executor serves, if any (for audits of pins and sessions). */
  executorSessionId(replicaId: ReplicaId): SessionId | undefined {
    return this.#running.get(replicaId)?.sessionId
  }

  /** The session whose handshake is still unanswered for a replica, if any (it has no executor yet). */
  connectingSessionId(replicaId: ReplicaId): SessionId | undefined {
    return this.#connecting.get(replicaId)?.ticket.sessionId
  }

  /** The control plane reported a new endpoint: the next session for the replica is a `reassign`. */
  requestReassign(replicaId: ReplicaId): void {
    this.#reassign.add(replicaId)
  }

  tick(now: Tick): DriverReady {
    const ready = emptyReady()
    this.#endRemoved(ready)
    for (const sender of this.registry.senders()) {
      const running = this.#running.get(sender.replicaId)
      if (running !== undefined) {
        this.#step(sender, running, now, ready)
        continue
      }
      const pending = this.#connecting.get(sender.replicaId)
      if (pending !== undefined) {
        this.#connecting.delete(sender.replicaId)
        // Still this session's handshake: poll it; else the session ended (epoch or endpoint change) and a new one starts.
        if (sender.activeSession()?.id === pending.ticket.sessionId) {
          this.#connect(sender, pending, now, ready)
          continue
        }
      }
      if (sender.state === 'in_sync') continue
      if ((this.#retryAt.get(sender.replicaId) ?? Tick.zero) > now) continue
      this.#start(sender, now, ready)
    }
    return ready
  }

  /**
   * A replica the registry no longer names (removed from the assignment, its
   * sender stopped) is never stepped again: its executor is cancelled here,
   * which releases its pins, and its pending handshake is dropped. Without
   * this, removing a member while its recovery ran kept that recovery's pins
   * for the primary's lifetime (found by the simulator's membership changes).
   */
  #endRemoved(ready: ReadyBuilder): void {
    for (const [replicaId, running] of [...this.#running]) {
      if (this.registry.sender(replicaId) !== undefined) continue
      const status = running.executor.cancel('removed_from_assignment')
      this.#running.delete(replicaId)
      this.#retryAt.delete(replicaId)
      if (status.state === 'failed') ready.failed.push({ replicaId, kind: running.kind, reason: status.reason })
    }
    for (const replicaId of [...this.#connecting.keys()]) {
      if (this.registry.sender(replicaId) === undefined) this.#connecting.delete(replicaId)
    }
  }

  timerFired(timer: DriverTimer, now: Tick): DriverReady {
    const ready = emptyReady()
    const running = this.#running.get(timer.replicaId)
    if (running === undefined || running.sessionId !== timer.sessionId || running.executor.status.state !== 'running') {
      ready.ignored.push(timer)
      return ready
    }
    const reason = timer.kind === 'catchup_timeout' ? 'catchup_timeout' : 'reservation_expired'
    this.#finish(timer.replicaId, running.executor.cancel(reason, 'needs_rebuild'), now, ready)
    return ready
  }

  #step(sender: Sender, running: RunningRecovery, now: Tick, ready: ReadyBuilder): void {
    let status = running.executor.step(now)
    if (status.state === 'running' && running.executor instanceof RebuildExecutor) {
      const progress = sender.activeSession()?.rebuild?.rebuiltTo() ?? -1
      if (progress > running.progress) {
        running.progress = progress
        running.lastProgressAt = now
      } else if (Tick.between(running.lastProgressAt, now) > this.#options.rebuildStallTicks) {
        status = running.executor.cancel('rebuild_stalled', 'needs_rebuild')
      }
    }
    this.#finish(sender.replicaId, status, now, ready)
  }

  #finish(replicaId: ReplicaId, status: ExecutorStatus, now: Tick, ready: ReadyBuilder): void {
    if (status.state === 'running') return
    const running = this.#running.get(replicaId)
    invariant(running !== undefined, () => `${replicaId}: an executor finished that the driver does not run`)
    this.#running.delete(replicaId)
    if (status.state === 'failed') {
      this.#retryAt.set(replicaId, Tick.after(now, this.#options.recoveryRetryTicks))
      ready.failed.push({ replicaId, kind: running.kind, reason: status.reason })
      return
    }
    const sender = this.registry.sender(replicaId)
    invariant(sender !== undefined && sender.state === 'in_sync', 'a completed executor leaves its replica in sync')
    this.#everInSync.add(replicaId)
    ready.completed.push({ replicaId, kind: running.kind, syncedToLsn: sender.session?.targetLsn ?? Lsn.zero })
  }

  #kindFor(sender: Sender): SessionKind {
    if (sender.state === 'needs_rebuild') return 'rebuild'
    if (this.#reassign.has(sender.replicaId)) return 'reassign'
    return this.#everInSync.has(sender.replicaId) ? 'catchup' : 'bootstrap'
  }

  #start(sender: Sender, now: Tick, ready: ReadyBuilder): void {
    const replicaId = sender.replicaId
    const kind = this.#kindFor(sender)
    const attached = this.registry.attach(replicaId, kind)
    invariant(attached.ok, () => `attach on an idle sender failed: ${attached.ok ? '' : attached.reason}`)
    this.#reassign.delete(replicaId)
    this.#connect(sender, { ticket: attached.value, kind, since: now }, now, ready)
  }

  /** Asks the connector (again) for the session's handshake; plans and starts the executor once it is answered. */
  #connect(sender: Sender, pending: PendingConnect, now: Tick, ready: ReadyBuilder): void {
    const replicaId = sender.replicaId
    const { ticket, kind } = pending
    const retryLater = (): void => {
      this.#retryAt.set(replicaId, Tick.after(now, this.#options.recoveryRetryTicks))
      // A plan that failed closed has invalidated its session; make sure of it.
      if (sender.activeSession()?.id === ticket.sessionId) sender.invalidateSession(ticket, 'plan_failed', 'disconnected')
    }
    const { adapters } = this.#options
    const connected = adapters.connect({ replicaId, sessionId: ticket.sessionId, endpoint: ticket.endpoint, epoch: ticket.epoch })
    if (!connected.ok || connected.flushedLsn === undefined) {
      const timeoutTicks = this.#options.connectTimeoutTicks ?? connectTimeoutTicksDefault
      if (connected.ok && Tick.between(pending.since, now) <= timeoutTicks) {
        this.#connecting.set(replicaId, pending)
        return
      }
      const reason = connected.ok ? 'connect_timeout' : `connect_${connected.reason}`
      sender.invalidateSession(ticket, reason, kind === 'rebuild' ? 'needs_rebuild' : 'disconnected')
      retryLater()
      return
    }
    const executor = kind === 'rebuild' ? this.#rebuildExecutor(ticket) : this.#catchUpExecutor(ticket, connected.flushedLsn, now, ready)
    if (executor === 'retry' || executor === 'needs_rebuild') {
      // A needs_rebuild verdict is retried at once, as a rebuild, on the next tick.
      if (executor === 'retry') retryLater()
      invariant(sender.activeSession() === undefined, 'a failed plan leaves no active session')
      return
    }
    this.#running.set(replicaId, { executor, kind, sessionId: ticket.sessionId, lastProgressAt: now, progress: -1 })
    this.#finish(replicaId, executor.start(now), now, ready)
  }

  #rebuildExecutor(ticket: SessionTicket): RebuildExecutor | 'retry' {
    const { registry, adapters, chunkEntriesMax } = this.#options
    const planned = planRebuild({ registry, storage: adapters }, ticket)
    if (!planned.ok) return 'retry'
    return new RebuildExecutor({ registry, transport: adapters, connector: adapters, plan: planned.plan, chunkEntriesMax, faults: this.#options.faults })
  }

  #catchUpExecutor(ticket: SessionTicket, flushedLsn: Lsn, now: Tick, ready: ReadyBuilder): CatchUpExecutor | 'retry' | 'needs_rebuild' {
    const { registry, adapters, chunkEntriesMax, catchUpBudget } = this.#options
    const planned = planRecovery({ registry, storage: adapters }, ticket, flushedLsn)
    if (!planned.ok) return planned.reason === 'needs_rebuild' ? 'needs_rebuild' : 'retry'
    if (planned.plan.kind === 'catch_up') {
      const timer = { replicaId: ticket.replicaId, sessionId: ticket.sessionId }
      ready.timers.push({ kind: 'catchup_timeout', at: Tick.after(now, this.#options.catchUpTimeoutTicks), ...timer })
      ready.timers.push({ kind: 'reservation_timeout', at: Tick.after(now, this.#options.reservationTimeoutTicks), ...timer })
    }
    return new CatchUpExecutor({
      registry,
      transport: adapters,
      plan: planned.plan,
      chunkEntriesMax,
      budget: catchUpBudget,
      faults: this.#options.faults,
      // A truncation is answered by the replica like a handshake, within the same bound.
      truncateTimeoutTicks: this.#options.connectTimeoutTicks ?? connectTimeoutTicksDefault,
    })
  }
}
