/**
 * Rebuild state machine, owned by a rebuild-kind session (whose phase stays
 * `handshake` while it runs):
 *
 *   init -> source_select -> transfer -> [reopen] -> [tail_replay, snapshot_tail only] -> completed
 *   any non-terminal phase -> aborted
 *
 * `reopen`: the replica installed the image by closing and reopening its
 * store on it, which ends the connection. The rebuild is not over: it waits
 * for the replica's next handshake in this session, which must find the
 * replica at or above the image (a replica that came back below it never
 * installed it, and the rebuild fails); what it holds above the image counts
 * as tail replayed.
 *
 * Transfer progress is strictly increasing from "nothing transferred", so a
 * full-base rebuild at committed 0 (transfer reports 0) works. Tail replay
 * starts from the snapshot LSN and needs the snapshot fully transferred.
 */
import { InvariantViolation, invariant } from '../domain/index.ts'
import type { RebuildSourceDecision } from './recoverability.ts'
import { accepted, assertLsn, rejected, type Lsn, type Outcome } from './types.ts'

export type RebuildPhase = 'init' | 'source_select' | 'transfer' | 'reopen' | 'tail_replay' | 'completed' | 'aborted'

const rebuildPhaseTransitions: Readonly<Record<RebuildPhase, readonly RebuildPhase[]>> = {
  init: ['source_select', 'aborted'],
  source_select: ['transfer', 'aborted'],
  transfer: ['transfer', 'reopen', 'tail_replay', 'completed', 'aborted'],
  reopen: ['transfer', 'aborted'],
  tail_replay: ['tail_replay', 'completed', 'aborted'],
  completed: [],
  aborted: [],
}

export class RebuildProgress {
  #phase: RebuildPhase = 'init'
  #decision: RebuildSourceDecision | undefined
  #transferredTo: Lsn | undefined
  #tailReplayedTo: Lsn | undefined
  #abortReason: string | undefined

  get phase(): RebuildPhase {
    return this.#phase
  }
  get decision(): RebuildSourceDecision | undefined {
    return this.#decision
  }
  get transferredTo(): Lsn | undefined {
    return this.#transferredTo
  }
  get tailReplayedTo(): Lsn | undefined {
    return this.#tailReplayedTo
  }
  get abortReason(): string | undefined {
    return this.#abortReason
  }

  #advance(to: RebuildPhase): void {
    if (!rebuildPhaseTransitions[this.#phase].includes(to)) {
      throw new InvariantViolation(`rebuild phase ${this.#phase} -> ${to} is not allowed`)
    }
    this.#phase = to
  }

  selectSource(decision: RebuildSourceDecision): void {
    this.#advance('source_select')
    if (decision.source === 'snapshot_tail') {
      invariant(decision.snapshotLsn <= decision.targetLsn, 'snapshot beyond rebuild target')
    }
    this.#decision = decision
  }

  /** The LSN the base transfer must reach: the snapshot, or the full-base target. */
  transferTargetLsn(): Lsn {
    const decision = this.#requireDecision()
    return decision.source === 'snapshot_tail' ? decision.snapshotLsn : decision.targetLsn
  }

  recordTransfer(lsn: Lsn): Outcome<undefined> {
    assertLsn(lsn, 'transferred lsn')
    if (this.#phase !== 'source_select' && this.#phase !== 'transfer') return rejected('wrong_phase')
    if (this.#transferredTo !== undefined && lsn <= this.#transferredTo) return rejected('transfer_regression')
    if (lsn > this.transferTargetLsn()) return rejected('transfer_beyond_target')
    this.#advance('transfer')
    this.#transferredTo = lsn
    return accepted(undefined)
  }

  /** The replica reopens on the fully transferred image: progress waits for its next handshake. */
  awaitReopen(): Outcome<undefined> {
    if (this.#phase !== 'transfer') return rejected('wrong_phase')
    if (this.#transferredTo === undefined || this.#transferredTo < this.transferTargetLsn()) return rejected('transfer_incomplete')
    this.#advance('reopen')
    return accepted(undefined)
  }

  get awaitingReopen(): boolean {
    return this.#phase === 'reopen'
  }

  /**
   * The replica answered a handshake after its reopen with `flushedLsn` (on
   * the primary's lineage). Below the image it does not hold what was
   * transferred (`reopened_below_image`); above the rebuild target it holds
   * entries the rebuild never shipped (`reopened_beyond_target`). Otherwise
   * the rebuild goes on from there: what it holds above the snapshot is tail
   * already replayed.
   */
  recordReopen(flushedLsn: Lsn): Outcome<undefined> {
    assertLsn(flushedLsn, 'reopened lsn')
    const decision = this.#requireDecision()
    if (this.#phase !== 'reopen') return rejected('wrong_phase')
    const imageLsn = this.transferTargetLsn()
    if (flushedLsn < imageLsn) return rejected('reopened_below_image')
    if (flushedLsn > decision.targetLsn) return rejected('reopened_beyond_target')
    this.#advance('transfer')
    if (flushedLsn > imageLsn && decision.source === 'snapshot_tail') return this.recordTailReplay(flushedLsn)
    return accepted(undefined)
  }

  recordTailReplay(lsn: Lsn): Outcome<undefined> {
    assertLsn(lsn, 'tail replay lsn')
    const decision = this.#requireDecision()
    if (decision.source !== 'snapshot_tail') return rejected('tail_replay_not_applicable')
    if (this.#phase !== 'transfer' && this.#phase !== 'tail_replay') return rejected('wrong_phase')
    if (this.#transferredTo === undefined || this.#transferredTo < decision.snapshotLsn) {
      return rejected('transfer_incomplete')
    }
    const replayedFrom = this.#tailReplayedTo ?? decision.snapshotLsn
    if (lsn <= replayedFrom) return rejected('transfer_regression')
    if (lsn > decision.targetLsn) return rejected('transfer_beyond_target')
    this.#advance('tail_replay')
    this.#tailReplayedTo = lsn
    return accepted(undefined)
  }

  /** Highest LSN the replica holds from this rebuild so far. */
  rebuiltTo(): Lsn | undefined {
    return this.#tailReplayedTo ?? this.#transferredTo
  }

  readyToComplete(): boolean {
    if (this.#phase !== 'transfer' && this.#phase !== 'tail_replay') return false
    const decision = this.#decision
    if (decision === undefined || this.#transferredTo === undefined) return false
    if (decision.source === 'full_base') return this.#transferredTo >= decision.targetLsn
    if (this.#transferredTo < decision.snapshotLsn) return false
    return (this.#tailReplayedTo ?? decision.snapshotLsn) >= decision.targetLsn
  }

  complete(): Outcome<undefined> {
    if (!this.readyToComplete()) return rejected('completion_rejected')
    this.#advance('completed')
    return accepted(undefined)
  }

  abort(reason: string): void {
    if (this.#phase === 'completed' || this.#phase === 'aborted') return
    this.#advance('aborted')
    this.#abortReason = reason
  }

  #requireDecision(): RebuildSourceDecision {
    const decision = this.#decision
    if (decision === undefined) throw new InvariantViolation('rebuild source not selected')
    return decision
  }
}
