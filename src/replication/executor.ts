/**
 * Stepwise executors. An executor takes over its plan's pins and releases
 * them exactly once on every exit path: completion, a failed transfer, a
 * rejected progress report, a budget violation, a session invalidated under
 * it (detected at the start of a step and after the `onStep` hook), a
 * missing sender, cancel, and an exception thrown by an adapter or hook.
 * When an executor fails while its session is still current, it invalidates
 * the session, so no session outlives its executor. Each `step(tick)` does
 * one unit of work; `onStep` runs after the work and before the budget check,
 * which is where tests inject faults.
 */
import { invariant } from '../domain/index.ts'
import type { RecoveryTransport, ReplicaConnector } from './adapters.ts'
import type { CatchUpBudget } from './budget.ts'
import { noFaults, type ProtocolFaults } from './faults.ts'
import type { PinSet, RebuildPlan, RecoveryPlan } from './planner.ts'
import type { Registry } from './registry.ts'
import type { Sender } from './sender.ts'
import type { Session } from './session.ts'
import { Lsn, Tick, type ReplicaState, type SessionTicket } from './types.ts'

export type ExecutorStatus =
  | { readonly state: 'running' }
  | { readonly state: 'completed' }
  | { readonly state: 'failed'; readonly reason: string }

export type StepHook = (step: number) => void

export interface ExecutorOptions {
  readonly registry: Registry
  readonly transport: RecoveryTransport
  /** Most entries shipped per step (bounds each step's work). */
  readonly chunkEntriesMax?: number
  readonly onStep?: StepHook
  readonly faults?: ProtocolFaults
  /** A replica that has not answered a truncation within this many ticks fails the session (`truncate_timeout`). */
  readonly truncateTimeoutTicks?: number
}

export const chunkEntriesMaxDefault = 64
export const truncateTimeoutTicksDefault = 10

const running: ExecutorStatus = { state: 'running' }

abstract class Executor {
  readonly ticket: SessionTicket
  protected readonly registry: Registry
  protected readonly transport: RecoveryTransport
  protected readonly chunkEntriesMax: number
  protected readonly onStep: StepHook | undefined
  protected readonly faults: ProtocolFaults
  readonly #pins: PinSet
  #status: ExecutorStatus = running
  #released = false
  #steps = 0

  constructor(options: ExecutorOptions, ticket: SessionTicket, pins: PinSet) {
    this.registry = options.registry
    this.transport = options.transport
    this.chunkEntriesMax = options.chunkEntriesMax ?? chunkEntriesMaxDefault
    invariant(Number.isSafeInteger(this.chunkEntriesMax) && this.chunkEntriesMax > 0, 'chunkEntriesMax must be positive')
    this.onStep = options.onStep
    this.faults = options.faults ?? noFaults
    this.ticket = ticket
    this.#pins = pins
  }

  get status(): ExecutorStatus {
    return this.#status
  }

  get stepsTaken(): number {
    return this.#steps
  }

  get resourcesReleased(): boolean {
    return this.#released
  }

  /** One unit of work at `tick`. A no-op once the executor has exited. */
  step(tick: Tick): ExecutorStatus {
    if (this.#status.state !== 'running') return this.#status
    try {
      const sender = this.registry.sender(this.ticket.replicaId)
      if (sender === undefined) return this.fail('sender_missing')
      const session = this.#ownSession(sender)
      if (session === undefined) return this.fail('session_invalidated')
      const result = this.work(sender, session, tick)
      if (result !== undefined) return result
      const index = this.#steps
      this.#steps += 1
      this.registry.log.append({ kind: 'exec_step', replicaId: this.ticket.replicaId, sessionId: this.ticket.sessionId, detail: { step: index, tick } })
      this.onStep?.(index)
      if (this.#ownSession(sender) === undefined) return this.fail('session_invalidated')
      return this.afterStep(sender, session, tick)
    } catch (error) {
      this.#release('exception')
      this.#status = { state: 'failed', reason: 'exception' }
      throw error
    }
  }

  /**
   * Releases resources and invalidates the session if it is still this
   * executor's, leaving the sender in `state` (a timeout escalates with
   * `needs_rebuild`; an operator cancel just disconnects).
   */
  cancel(reason: string, state: ReplicaState = 'disconnected'): ExecutorStatus {
    if (this.#status.state !== 'running') return this.#status
    return this.failAndInvalidate(reason, state)
  }

  /** Steps at ticks startTick+1, startTick+2, … until the executor exits or `stepsMax` is reached. */
  run(startTick: Tick, stepsMax: number): ExecutorStatus {
    let status = this.start(startTick)
    for (let index = 0; index < stepsMax && status.state === 'running'; index += 1) status = this.step(Tick.after(startTick, index + 1))
    return status
  }

  abstract start(tick: Tick): ExecutorStatus
  /** The step's I/O and progress recording; returns a status to exit early. */
  protected abstract work(sender: Sender, session: Session, tick: Tick): ExecutorStatus | undefined
  /** Budget checks and completion, after the hook. */
  protected abstract afterStep(sender: Sender, session: Session, tick: Tick): ExecutorStatus

  protected complete(): ExecutorStatus {
    this.#release('completed')
    this.#status = { state: 'completed' }
    this.registry.log.append({ kind: 'exec_completed', replicaId: this.ticket.replicaId, sessionId: this.ticket.sessionId })
    return this.#status
  }

  protected fail(reason: string): ExecutorStatus {
    const leak = this.faults.keepPinsOnBudgetViolation === true && reason.startsWith('budget_')
    if (!leak) this.#release(reason)
    this.#status = { state: 'failed', reason }
    this.registry.log.append({ kind: 'exec_failed', replicaId: this.ticket.replicaId, sessionId: this.ticket.sessionId, reason })
    return this.#status
  }

  protected failAndInvalidate(reason: string, state: ReplicaState): ExecutorStatus {
    const sender = this.registry.sender(this.ticket.replicaId)
    if (sender !== undefined && this.#ownSession(sender) !== undefined) sender.invalidateSession(this.ticket, reason, state)
    return this.fail(reason)
  }

  protected started(): ExecutorStatus {
    this.registry.log.append({ kind: 'exec_started', replicaId: this.ticket.replicaId, sessionId: this.ticket.sessionId })
    return this.#status
  }

  #ownSession(sender: Sender): Session | undefined {
    const session = sender.activeSession()
    return session !== undefined && session.id === this.ticket.sessionId ? session : undefined
  }

  #release(reason: string): void {
    if (this.#released) return
    this.#released = true
    const released = this.#pins.releaseAll()
    this.registry.log.append({
      kind: 'exec_resources_released',
      replicaId: this.ticket.replicaId,
      sessionId: this.ticket.sessionId,
      reason,
      detail: { pins: released },
    })
  }
}

/**
 * Runs a zero-gap, truncate or catch-up plan: ships (recovered, target] in
 * chunks, records durable progress (delta-counted, never past the frozen
 * target), checks the budget after every step, truncates a replica that is
 * ahead, and completes the session.
 */
export class CatchUpExecutor extends Executor {
  readonly plan: RecoveryPlan
  readonly #budget: CatchUpBudget | undefined
  readonly #truncateTimeoutTicks: number
  /** When the truncation was first asked for (it may be answered ticks later). */
  #truncateAskedAt: Tick | undefined

  constructor(options: ExecutorOptions & { readonly plan: RecoveryPlan; readonly budget?: CatchUpBudget }) {
    super(options, options.plan.ticket, options.plan.pins)
    this.plan = options.plan
    this.#budget = options.budget
    this.#truncateTimeoutTicks = options.truncateTimeoutTicks ?? truncateTimeoutTicksDefault
    invariant(Number.isSafeInteger(this.#truncateTimeoutTicks) && this.#truncateTimeoutTicks >= 1, 'truncateTimeoutTicks must be >= 1')
  }

  start(tick: Tick): ExecutorStatus {
    if (this.status.state !== 'running') return this.status
    if (this.plan.kind === 'catch_up') {
      const sender = this.registry.sender(this.ticket.replicaId)
      if (sender === undefined) return this.fail('sender_missing')
      const begun = sender.beginCatchUp(this.ticket, tick, this.#budget)
      if (!begun.ok) return this.failAndInvalidate(begun.reason, 'disconnected')
    }
    return this.started()
  }

  protected work(sender: Sender, session: Session, tick: Tick): ExecutorStatus | undefined {
    if (this.plan.kind !== 'catch_up' || session.recoveredTo >= session.targetLsn) return undefined
    invariant(session.phase === 'catchup', () => `catch-up executor stepping a session in phase ${session.phase}`)
    const fromLsn = session.recoveredTo
    const toLsn = Lsn.min(Lsn.after(fromLsn, this.chunkEntriesMax), session.targetLsn)
    const report = this.transport.streamWal({ ticket: this.ticket, fromLsnExclusive: fromLsn, toLsnInclusive: toLsn })
    if (!report.ok) return this.failAndInvalidate(report.reason, 'disconnected')
    // Nothing above the frozen target is shipped before completion, and the
    // replica's ack was lowered to its matched LSN at connect, so a streamer
    // that reports more is broken (it counts what it has not had acknowledged):
    // completing on its word would mark a replica in sync that is not.
    if (this.faults.catchUpTargetNotFrozen !== true) {
      invariant(report.durableLsn <= session.targetLsn, () => `${this.ticket.replicaId}: the WAL streamer reported durable ${report.durableLsn} above the frozen target ${session.targetLsn}`)
    }
    const durableLsn = report.durableLsn
    if (durableLsn > fromLsn) {
      const progress = sender.recordCatchUpProgress(this.ticket, durableLsn, tick)
      if (!progress.ok) return this.failAndInvalidate(progress.reason, 'disconnected')
    }
    return undefined
  }

  protected afterStep(sender: Sender, session: Session, tick: Tick): ExecutorStatus {
    if (session.phase === 'catchup') {
      const budget = sender.checkBudget(this.ticket, tick)
      if (!budget.ok) return this.fail(budget.reason)
      if (budget.value !== undefined) return this.fail(`budget_${budget.value}`)
    }
    if (session.recoveredTo < session.targetLsn) return this.status
    const truncation = session.truncation
    if (truncation !== undefined && !truncation.recorded && this.faults.skipReplicaAheadTruncation === true) {
      const recorded = sender.recordTruncation(this.ticket, truncation.toLsn)
      if (!recorded.ok) return this.failAndInvalidate(recorded.reason, 'disconnected')
    } else if (truncation !== undefined && !truncation.recorded) {
      this.#truncateAskedAt ??= tick
      const report = this.transport.truncate({ ticket: this.ticket, toLsn: truncation.toLsn })
      if (!report.ok) return this.failAndInvalidate(report.reason, 'disconnected')
      if (report.truncatedToLsn === undefined) {
        // Not answered yet: ask again next step, within the bound.
        if (Tick.between(this.#truncateAskedAt, tick) >= this.#truncateTimeoutTicks) return this.failAndInvalidate('truncate_timeout', 'disconnected')
        return this.status
      }
      const recorded = sender.recordTruncation(this.ticket, report.truncatedToLsn)
      if (!recorded.ok) return this.failAndInvalidate(recorded.reason, 'disconnected')
    }
    const completed = sender.completeSession(this.ticket)
    if (!completed.ok) return this.failAndInvalidate(completed.reason, 'disconnected')
    return this.complete()
  }
}

/**
 * Runs a rebuild plan with the plan-bound source (never re-derived): base
 * transfer (snapshot or full base), then tail replay for snapshot + tail,
 * then completion. A refused transfer leaves the sender in `needs_rebuild`.
 *
 * A replica that installs by reopening on the image (`reopening` in the
 * transfer's report) drops the connection; the session, and the plan's
 * pins, outlive that: the executor asks the connector for the replica's
 * handshake on every step until it answers, an unreachable replica being
 * the expected state meanwhile (the driver's `rebuildStallTicks` bounds the
 * wait). At or above the image the rebuild goes on with the tail; below it
 * the session fails into `needs_rebuild`.
 */
export class RebuildExecutor extends Executor {
  readonly plan: RebuildPlan
  readonly #connector: ReplicaConnector | undefined

  constructor(options: ExecutorOptions & { readonly plan: RebuildPlan; readonly connector?: ReplicaConnector }) {
    super(options, options.plan.ticket, options.plan.pins)
    this.plan = options.plan
    this.#connector = options.connector
  }

  start(_tick: Tick): ExecutorStatus {
    if (this.status.state !== 'running') return this.status
    return this.started()
  }

  protected work(sender: Sender, session: Session, _tick: Tick): ExecutorStatus | undefined {
    const rebuild = session.rebuild
    invariant(rebuild !== undefined, 'rebuild executor on a non-rebuild session')
    const decision = this.plan.decision
    const baseLsn = decision.source === 'snapshot_tail' ? decision.snapshotLsn : decision.targetLsn
    if (rebuild.awaitingReopen) return this.#pollReopen(sender)
    if (rebuild.transferredTo === undefined || rebuild.transferredTo < baseLsn) {
      const report =
        decision.source === 'snapshot_tail'
          ? this.transport.transferSnapshot({ ticket: this.ticket, snapshotLsn: decision.snapshotLsn })
          : this.transport.transferFullBase({ ticket: this.ticket, targetLsn: decision.targetLsn })
      if (!report.ok) return this.failAndInvalidate(report.reason, 'needs_rebuild')
      if (report.installedLsn !== undefined) {
        const recorded = sender.recordRebuildTransfer(this.ticket, report.installedLsn)
        if (!recorded.ok) return this.failAndInvalidate(recorded.reason, 'needs_rebuild')
        if (report.reopening === true && this.faults.rebuildIgnoresReopen !== true) {
          if (this.#connector === undefined) return this.failAndInvalidate('reopen_without_connector', 'needs_rebuild')
          const awaiting = sender.recordRebuildAwaitingReopen(this.ticket)
          if (!awaiting.ok) return this.failAndInvalidate(awaiting.reason, 'needs_rebuild')
        }
      }
      return undefined
    }
    if (decision.source !== 'snapshot_tail') return undefined
    const replayedTo = rebuild.tailReplayedTo ?? decision.snapshotLsn
    if (replayedTo >= decision.targetLsn) return undefined
    const toLsn = Lsn.min(Lsn.after(replayedTo, this.chunkEntriesMax), decision.targetLsn)
    const report = this.transport.streamWal({ ticket: this.ticket, fromLsnExclusive: replayedTo, toLsnInclusive: toLsn })
    if (!report.ok) return this.failAndInvalidate(report.reason, 'needs_rebuild')
    const durableLsn = Lsn.min(report.durableLsn, decision.targetLsn)
    if (durableLsn > replayedTo) {
      const recorded = sender.recordRebuildTailReplay(this.ticket, durableLsn)
      if (!recorded.ok) return this.failAndInvalidate(recorded.reason, 'needs_rebuild')
    }
    return undefined
  }

  /** Asks for the reopened replica's handshake; waits while it is away or has not answered. */
  #pollReopen(sender: Sender): ExecutorStatus | undefined {
    const connector = this.#connector
    invariant(connector !== undefined, 'a rebuild awaits a reopen without a connector')
    const { replicaId, sessionId, endpoint, epoch } = this.ticket
    const connected = connector.connect({ replicaId, sessionId, endpoint, epoch })
    if (!connected.ok || connected.flushedLsn === undefined) return undefined
    const reopened = sender.recordRebuildReopened(this.ticket, connected.flushedLsn)
    if (!reopened.ok) return this.failAndInvalidate(reopened.reason, reopened.reason === 'reopened_beyond_target' ? 'disconnected' : 'needs_rebuild')
    return undefined
  }

  protected afterStep(sender: Sender, session: Session, _tick: Tick): ExecutorStatus {
    if (session.rebuild?.readyToComplete() !== true) return this.status
    const completed = sender.completeRebuild(this.ticket)
    if (!completed.ok) return this.failAndInvalidate(completed.reason, 'needs_rebuild')
    return this.complete()
  }
}
