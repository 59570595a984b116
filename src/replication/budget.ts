/**
 * Catch-up budget: maximum duration, maximum entries replayed and a progress
 * deadline (0 = unlimited for each). Entries are counted as deltas (70 -> 100
 * is 30 entries). Unlike the reference implementation, the stall clock starts
 * at the catch-up start tick even when that tick is 0, so a catch-up that
 * never progresses is always detected.
 */
import { invariant } from '../domain/index.ts'
import { assertTick, type Tick } from './types.ts'

export interface CatchUpBudget {
  readonly durationTicksMax: number
  readonly entriesMax: number
  readonly progressDeadlineTicks: number
}

export const unlimitedBudget: CatchUpBudget = { durationTicksMax: 0, entriesMax: 0, progressDeadlineTicks: 0 }

export type BudgetViolation = 'duration_exceeded' | 'entries_exceeded' | 'progress_stalled'

export function validateBudget(budget: CatchUpBudget): void {
  for (const [name, value] of Object.entries(budget)) {
    invariant(Number.isSafeInteger(value) && value >= 0, () => `budget ${name} must be a non-negative integer`)
  }
}

export class BudgetTracker {
  readonly budget: CatchUpBudget
  readonly startTick: Tick
  #lastProgressTick: Tick
  #entriesReplayed = 0

  constructor(budget: CatchUpBudget, startTick: Tick) {
    validateBudget(budget)
    assertTick(startTick, 'startTick')
    this.budget = budget
    this.startTick = startTick
    this.#lastProgressTick = startTick
  }

  get entriesReplayed(): number {
    return this.#entriesReplayed
  }

  get lastProgressTick(): Tick {
    return this.#lastProgressTick
  }

  /** Caller has checked the tick is not before the last progress. */
  recordProgress(entriesDelta: number, tick: Tick): void {
    invariant(entriesDelta > 0, () => `progress delta must be positive, got ${entriesDelta}`)
    invariant(tick >= this.#lastProgressTick, () => `progress tick ${tick} < ${this.#lastProgressTick}`)
    this.#entriesReplayed += entriesDelta
    this.#lastProgressTick = tick
  }

  /** Checked in order duration, entries, stall; the first violated wins. */
  check(now: Tick): BudgetViolation | undefined {
    assertTick(now, 'now')
    invariant(now >= this.startTick, () => `budget checked at tick ${now} before its start ${this.startTick}`)
    const budget = this.budget
    if (budget.durationTicksMax > 0 && now - this.startTick > budget.durationTicksMax) return 'duration_exceeded'
    if (budget.entriesMax > 0 && this.#entriesReplayed > budget.entriesMax) return 'entries_exceeded'
    if (budget.progressDeadlineTicks > 0 && now - this.#lastProgressTick > budget.progressDeadlineTicks) {
      return 'progress_stalled'
    }
    return undefined
  }
}
