/**
 * Rebuild state machine, owned by a rebuild-kind session (whose phase stays
 * `handshake` while it runs):
 *
 *   init -> source_select -> transfer -> [tail_replay, snapshot_tail only] -> completed
 *   any non-terminal phase -> aborted
 *
 * Transfer progress is strictly increasing from "nothing transferred", so a
 * full-base rebuild at committed 0 (transfer reports 0) works. Tail replay
 * starts from the snapshot LSN and needs the snapshot fully transferred.
 */
import { InvariantViolation, invariant } from '../domain/index.ts'
import type { RebuildSourceDecision } from './recoverability.ts'
import { accepted, assertLsn, rejected, type Lsn, type Outcome } from './types.ts'

export type RebuildPhase = 'init' | 'source_select' | 'transfer' | 'tail_replay' | 'completed' | 'aborted'

const rebuildPhaseTransitions: Readonly<Record<RebuildPhase, readonly RebuildPhase[]>> = {
  init: ['source_select', 'aborted'],
  source_select: ['transfer', 'aborted'],
  transfer: ['transfer', 'tail_replay', 'completed', 'aborted'],
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
