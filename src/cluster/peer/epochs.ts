/**
 * Epoch runs: a log's epochs in a compact form, for log matching by
 * (index, epoch). Epochs never decrease along a WAL, so the entries of a
 * window are described by where each epoch starts.
 */
import { invariant } from '../../domain/index.ts'
import type { Wal } from '../../wal/index.ts'
import { runsMax, type EpochRun } from './messages.ts'

/** The epochs of the entries [fromLsn, toLsn]; undefined outside. */
export interface EpochWindow {
  readonly fromLsn: number
  readonly toLsn: number
  readonly runs: readonly EpochRun[]
}

export const emptyWindow: EpochWindow = { fromLsn: 1, toLsn: 0, runs: [] }

/**
 * Reads the epochs of the durable entries (afterLsn, toLsn] of `wal`, at
 * most `entriesMax` of them (the highest ones: matching walks down from the
 * top) and at most `runsMax` runs (again the highest). Entries at or below
 * the WAL's tail are not retained and not described.
 */
export async function readEpochWindow(wal: Wal, options: { afterLsn: number; toLsn: number; entriesMax: number }): Promise<EpochWindow> {
  invariant(options.entriesMax >= 1, 'entriesMax >= 1')
  const toLsn = Math.min(options.toLsn, wal.durable)
  const fromLsn = Math.max(options.afterLsn + 1, wal.tail + 1, toLsn - options.entriesMax + 1)
  if (fromLsn > toLsn) return { fromLsn: toLsn + 1, toLsn, runs: [] }
  let runs: EpochRun[] = []
  let last: EpochRun | undefined
  let expected = fromLsn
  for await (const record of wal.read(fromLsn, toLsn)) {
    invariant(record.index === expected, 'the WAL reads consecutive entries')
    expected += 1
    if (last === undefined || record.epoch !== last.epoch) {
      last = { firstLsn: record.index, epoch: record.epoch }
      runs.push(last)
    }
  }
  invariant(expected === toLsn + 1, 'the whole window was read')
  if (runs.length > runsMax) runs = runs.slice(runs.length - runsMax)
  const first = runs[0]
  return { fromLsn: first?.firstLsn ?? toLsn + 1, toLsn, runs }
}

/** Checks a window received from a peer: runs ascend in LSN and epoch, within the window. */
export function validWindow(window: EpochWindow): boolean {
  if (window.runs.length === 0) return true
  if (window.runs[0]?.firstLsn !== window.fromLsn) return false
  for (let i = 1; i < window.runs.length; i += 1) {
    const previous = window.runs[i - 1]
    const run = window.runs[i]
    if (previous === undefined || run === undefined) return false
    if (run.firstLsn <= previous.firstLsn || run.epoch <= previous.epoch || run.firstLsn > window.toLsn) return false
  }
  return true
}

/** The epoch of the entry at `lsn` inside the window, else undefined. */
export function epochAt(window: EpochWindow, lsn: number): number | undefined {
  if (lsn < window.fromLsn || lsn > window.toLsn) return undefined
  let low = 0
  let high = window.runs.length - 1
  let found: EpochRun | undefined
  while (low <= high) {
    const middle = (low + high) >> 1
    const run = window.runs[middle]
    invariant(run !== undefined, 'run present')
    if (run.firstLsn <= lsn) {
      found = run
      low = middle + 1
    } else {
      high = middle - 1
    }
  }
  return found?.epoch
}
