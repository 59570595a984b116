/**
 * The primary's recovery engine on a real node (docs/cluster.md, "Recovery
 * on the primary"): the pure `RecoveryDriver` of `src/replication/`, fed
 * ticks from a timer this adapter owns, acting through the `PeerTransport`
 * (handshake, WAL streaming, snapshot offers, one link per replica) and the
 * node's `StorageAdapter` (retained history, retention pins held by the
 * sessions). Per replica: handshake → plan (zero gap, catch-up within
 * retention under a budget, or a rebuild from snapshot + tail) → executor;
 * live shipping to a replica starts only once its session completed, and a
 * lost connection marks an in-sync replica degraded so the next tick starts
 * a catch-up session for it.
 *
 * The engine's decisions (sessions started and their kinds, plans, budgets
 * exceeded, rebuilds, completions, failures) go to the node's log and so to
 * the recovery log of `/_/cluster`; its per-step events do not.
 */
import { invariant } from '../domain/index.ts'
import {
  RecoveryDriver,
  RecoveryLog,
  Registry,
  type ReplicaId,
  Tick,
  validateBudget,
  type DriverLimits,
  type DriverReady,
  type DriverTimer,
  type Epoch,
  type Lsn,
  type RecoveryEvent,
  type ReplicaAssignment,
  type Sender,
  type StorageAdapter,
} from '../replication/index.ts'
import type { NodeLog, NodeLogLevel } from '../server/index.ts'
import type { Wal } from '../wal/index.ts'
import type { MonotonicClock } from './etcd/index.ts'
import { PeerTransport, type LinkTuning, type SnapshotOfferSource } from './peer/index.ts'
import type { PeerError } from './peer/index.ts'

/** The driver's limits (`DriverLimits`, every one given), in ticks of `tickMs` (docs/cluster.md lists the defaults). */
export type RecoveryTuning = Required<DriverLimits> & { readonly tickMs: number }

export const recoveryTuningDefault: RecoveryTuning = Object.freeze({
  tickMs: 100,
  chunkEntriesMax: 4096,
  // 60 s, any number of entries, 10 s without progress.
  catchUpBudget: Object.freeze({ durationTicksMax: 600, entriesMax: 0, progressDeadlineTicks: 100 }),
  catchUpTimeoutTicks: 1200,
  reservationTimeoutTicks: 1200,
  // A snapshot's progress is recorded only once it is staged: the whole transfer and the reopen fit in 5 min.
  rebuildStallTicks: 3000,
  recoveryRetryTicks: 10,
  connectTimeoutTicks: 150,
})

export function validateRecoveryTuning(tuning: RecoveryTuning): void {
  invariant(Number.isSafeInteger(tuning.tickMs) && tuning.tickMs >= 1, 'recovery tickMs must be a positive integer')
  for (const [name, value] of Object.entries(tuning)) {
    if (name === 'catchUpBudget') continue
    invariant(Number.isSafeInteger(value) && (value as number) >= 1, () => `recovery ${name} must be a positive integer`)
  }
  validateBudget(tuning.catchUpBudget)
}

/** The limits an operator sets, in seconds and entries (`tally serve --cluster-catchup-…`); undefined: the default. */
export interface RecoveryLimits {
  readonly catchUpSecondsMax: number | undefined
  readonly catchUpEntriesMax: number | undefined
  readonly catchUpStallSeconds: number | undefined
  readonly rebuildStallSeconds: number | undefined
}

/** Longest duration any of them may be given (a day). */
export const recoverySecondsMax = 86_400

/**
 * The tuning for operator limits at the default tick. The catch-up deadline
 * and its WAL reservation follow the duration budget (twice it), so the
 * budget is what ends a long catch-up, not the backstops.
 */
export function recoveryTuningFrom(limits: RecoveryLimits): Partial<RecoveryTuning> {
  const ticksPerSecond = 1000 / recoveryTuningDefault.tickMs
  const budget = recoveryTuningDefault.catchUpBudget
  const durationTicksMax = limits.catchUpSecondsMax === undefined ? budget.durationTicksMax : limits.catchUpSecondsMax * ticksPerSecond
  const backstopTicks = Math.max(recoveryTuningDefault.catchUpTimeoutTicks, 2 * durationTicksMax)
  return {
    catchUpBudget: {
      durationTicksMax,
      entriesMax: limits.catchUpEntriesMax ?? budget.entriesMax,
      progressDeadlineTicks: limits.catchUpStallSeconds === undefined ? budget.progressDeadlineTicks : limits.catchUpStallSeconds * ticksPerSecond,
    },
    catchUpTimeoutTicks: backstopTicks,
    reservationTimeoutTicks: backstopTicks,
    ...(limits.rebuildStallSeconds === undefined ? {} : { rebuildStallTicks: limits.rebuildStallSeconds * ticksPerSecond }),
  }
}

/** One replica the assignment names, with its registered address (undefined until it registered one). */
export interface RecoveryMember {
  readonly replicaId: ReplicaId
  readonly dataAddress: string | undefined
  readonly endpointVersion: number
}

export interface PrimaryRecoveryOptions {
  readonly nodeId: ReplicaId
  readonly epoch: Epoch
  /** Distinguishes this node's primary runs in session ids (logs). */
  readonly incarnation: number
  readonly wal: Wal
  readonly committedLsn: () => Lsn
  readonly storage: StorageAdapter
  /** Trusted images the driver rebuilds from (offered only when a rebuild session asks). */
  readonly snapshots?: SnapshotOfferSource
  readonly link?: LinkTuning
  readonly tuning?: Partial<RecoveryTuning>
  readonly clock: MonotonicClock
  readonly log: NodeLog
  /** A replica's acknowledged fsynced LSN (the commit tracker's input). */
  readonly onAck: (replicaId: ReplicaId, durableLsn: Lsn) => void
  /** A replica's connection was lost (after the driver marked it degraded). */
  readonly onDisconnect: (replicaId: ReplicaId, error: PeerError) => void
  readonly onDeposed: (epoch: number) => void
}

/** Engine events worth an operator's line, with the level they are logged at. */
const decisions: ReadonlyMap<RecoveryEvent['kind'], NodeLogLevel> = new Map<RecoveryEvent['kind'], NodeLogLevel>([
  ['session_attached', 'info'],
  ['handshake_recorded', 'info'],
  ['plan_created', 'info'],
  ['plan_failed', 'warn'],
  ['pin_failed', 'warn'],
  ['budget_violated', 'warn'],
  ['session_invalidated', 'warn'],
  ['rebuild_source_selected', 'warn'],
  ['rebuild_transferred', 'info'],
  ['rebuild_awaiting_reopen', 'info'],
  ['rebuild_reopened', 'info'],
  ['rebuild_completed', 'info'],
  ['session_completed', 'info'],
  ['exec_failed', 'warn'],
  ['replica_degraded', 'warn'],
])

/** A decision line repeated within this window is counted, not logged again. */
export const repeatedLinesWindowMs = 60_000
/** Distinct recent lines remembered (then forgotten at once: a few repeats get logged again). */
const recentLinesMax = 1_000

export class PrimaryRecovery {
  readonly #options: PrimaryRecoveryOptions
  readonly #tuning: RecoveryTuning
  readonly #startedAtMs: number
  readonly transport: PeerTransport
  readonly registry: Registry
  readonly driver: RecoveryDriver
  /** Driver timers not yet due, fired by the tick that reaches them. */
  #timers: DriverTimer[] = []
  #interval: NodeJS.Timeout | undefined
  #stopped = false
  #lastTick: Tick = Tick.zero
  /** When each decision line (session ids aside) was last logged, and lines counted instead per replica (see `#logDecision`). */
  readonly #recentLines = new Map<string, number>()
  readonly #repeatedLines = new Map<ReplicaId, number>()

  constructor(options: PrimaryRecoveryOptions) {
    const tuning: RecoveryTuning = { ...recoveryTuningDefault, ...(options.tuning ?? {}) }
    validateRecoveryTuning(tuning)
    this.#options = options
    this.#tuning = tuning
    this.#startedAtMs = options.clock()
    const log = new RecoveryLog({ now: () => this.#lastTick, eventsMax: 2_000 })
    log.subscribe((event) => this.#logDecision(event))
    this.registry = new Registry({ log, sessionScope: { primaryId: options.nodeId, incarnation: options.incarnation } })
    this.transport = new PeerTransport({
      localId: options.nodeId,
      wal: options.wal,
      epoch: options.epoch,
      committedLsn: options.committedLsn,
      ...(options.link === undefined ? {} : { link: options.link }),
      onAck: options.onAck,
      onDisconnect: (replicaId, error) => {
        // Its acks stop counting (the caller lowers them); an in-sync replica needs a catch-up session now.
        this.registry.sender(replicaId)?.markDegraded(`connection_lost: ${error.message}`)
        options.onDisconnect(replicaId, error)
      },
      onDeposed: options.onDeposed,
      // No `offerFor`: in driver mode only a rebuild session offers an image.
      ...(options.snapshots === undefined ? {} : { snapshots: { readChunk: (request) => options.snapshots!.readChunk(request), manifestBytesOf: (index) => options.snapshots!.manifestBytesOf(index) } }),
    })
    const adapters = {
      connect: this.transport.connect.bind(this.transport),
      streamWal: this.transport.streamWal.bind(this.transport),
      truncate: this.transport.truncate.bind(this.transport),
      transferSnapshot: this.transport.transferSnapshot.bind(this.transport),
      transferFullBase: this.transport.transferFullBase.bind(this.transport),
      retainedHistory: () => options.storage.retainedHistory(),
      pinWalRetention: options.storage.pinWalRetention.bind(options.storage),
      pinSnapshot: options.storage.pinSnapshot.bind(options.storage),
      pinFullBase: options.storage.pinFullBase.bind(options.storage),
    }
    this.driver = new RecoveryDriver({
      registry: this.registry,
      adapters,
      chunkEntriesMax: tuning.chunkEntriesMax,
      catchUpBudget: tuning.catchUpBudget,
      catchUpTimeoutTicks: tuning.catchUpTimeoutTicks,
      reservationTimeoutTicks: tuning.reservationTimeoutTicks,
      rebuildStallTicks: tuning.rebuildStallTicks,
      recoveryRetryTicks: tuning.recoveryRetryTicks,
      connectTimeoutTicks: tuning.connectTimeoutTicks,
    })
  }

  get tuning(): RecoveryTuning {
    return this.#tuning
  }

  /** Starts ticking. */
  start(): void {
    if (this.#stopped || this.#interval !== undefined) return
    this.#interval = setInterval(() => this.tick(), this.#tuning.tickMs)
    this.#interval.unref()
  }

  /**
   * The assignment's replicas with their registered addresses: a new
   * replica gets a sender, a changed address a `reassign` session, a
   * replica no longer named is stopped and its link closed. A replica whose
   * registration is missing for now (it is reopening, or its lease lapsed)
   * keeps its sender and session at the last address, and one registered
   * again at the same address (a reopen registers anew, with a new etcd
   * version) keeps its endpoint: a rebuild waiting for that replica's reopen
   * must not be ended by it. Sessions are bound to connections anyway, so a
   * restarted process is noticed by the lost connection, not the version.
   */
  setMembers(members: readonly RecoveryMember[]): void {
    if (this.#stopped) return
    const replicas: ReplicaAssignment[] = []
    for (const member of members) {
      const known = this.registry.sender(member.replicaId)
      if (member.dataAddress === undefined || member.dataAddress === '' || known?.endpoint.dataAddress === member.dataAddress) {
        if (known !== undefined) replicas.push({ replicaId: member.replicaId, endpoint: known.endpoint })
        continue
      }
      replicas.push({ replicaId: member.replicaId, endpoint: { dataAddress: member.dataAddress, controlAddress: '', version: Math.max(member.endpointVersion, (known?.endpoint.version ?? 0) + 1) } })
    }
    const before = new Map(this.registry.senders().map((sender) => [sender.replicaId, sender.endpoint]))
    const result = this.registry.reconcile({ epoch: this.#options.epoch, replicas })
    for (const replica of replicas) {
      const previous = before.get(replica.replicaId)
      if (previous !== undefined && (previous.dataAddress !== replica.endpoint.dataAddress || previous.version !== replica.endpoint.version)) this.driver.requestReassign(replica.replicaId)
    }
    for (const replicaId of result.stopped) void this.transport.forget(replicaId)
  }

  /** The sender of a replica, if the assignment names it and it registered an address. */
  sender(replicaId: ReplicaId): Sender | undefined {
    return this.registry.sender(replicaId)
  }

  /** One driver step: due timers first, then every sender; completions resume live shipping. */
  tick(): void {
    if (this.#stopped) return
    const now = Tick.of(Math.max(this.#lastTick, Math.floor((this.#options.clock() - this.#startedAtMs) / this.#tuning.tickMs)))
    this.#lastTick = now
    try {
      const due = this.#timers.filter((timer) => timer.at <= now)
      this.#timers = this.#timers.filter((timer) => timer.at > now)
      for (const timer of due) this.#apply(this.driver.timerFired(timer, now))
      this.#apply(this.driver.tick(now))
    } catch (error) {
      // An invariant broke in the engine: stop driving (the primary keeps serving what it committed) and say so loudly.
      this.#options.log(`recovery: the driver stopped: ${(error as Error).message}`, { level: 'error' })
      this.#halt()
      throw error
    }
  }

  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#halt()
    for (const sender of this.registry.senders()) sender.stop('primary_stopped')
    await this.transport.close()
  }

  #halt(): void {
    this.#stopped = true
    if (this.#interval !== undefined) clearInterval(this.#interval)
    this.#interval = undefined
  }

  #apply(ready: DriverReady): void {
    this.#timers.push(...ready.timers)
    // A failed session is logged by the engine already (`exec_failed`, `session_invalidated`).
    for (const completed of ready.completed) {
      this.#options.log(`recovery: ${completed.replicaId}: ${completed.kind} complete, in sync at ${completed.syncedToLsn}: live shipping resumes`)
      this.transport.follow(completed.replicaId)
    }
  }

  /**
   * One line per decision. A replica that cannot be reached, or cannot be
   * rebuilt yet (no trusted image), makes the driver try a session every
   * `recoveryRetryTicks`, and each attempt repeats the same decisions: a
   * line equal to one logged for that replica in the last
   * `repeatedLinesWindowMs` (session ids aside) is only counted, and the
   * count is logged with the next new line, so a replica down for a while
   * does not push every other line out of the bounded recovery log.
   */
  #logDecision(event: RecoveryEvent): void {
    const level = decisions.get(event.kind)
    if (level === undefined) return
    const replicaId = event.replicaId
    const key = `${replicaId} ${formatDecision({ ...event, sessionId: undefined })}`
    const nowMs = this.#options.clock()
    const last = this.#recentLines.get(key)
    if (last !== undefined && nowMs - last < repeatedLinesWindowMs) {
      this.#repeatedLines.set(replicaId, (this.#repeatedLines.get(replicaId) ?? 0) + 1)
      return
    }
    if (this.#recentLines.size >= recentLinesMax) this.#recentLines.clear()
    this.#recentLines.set(key, nowMs)
    const repeated = this.#repeatedLines.get(replicaId) ?? 0
    this.#repeatedLines.delete(replicaId)
    if (repeated > 0) this.#options.log(`recovery: ${replicaId}: ${repeated} repeated decision lines not shown`, { level: 'info' })
    this.#options.log(formatDecision(event), { level })
  }
}

function formatDecision(event: RecoveryEvent): string {
  const parts = [`recovery: ${event.replicaId}: ${event.kind}`]
  if (event.reason !== undefined) parts.push(event.reason)
  if (event.detail !== undefined) parts.push(Object.entries(event.detail).map(([key, value]) => `${key}=${value}`).join(' '))
  if (event.sessionId !== undefined) parts.push(`(${event.sessionId})`)
  return parts.join(' ')
}
