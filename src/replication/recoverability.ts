/**
 * Handshake classification and the recoverability proof. There is exactly one
 * rule (`proveRecoverability`); `classifyHandshake` is a projection of it, so
 * the two can never disagree. The retained history is validated first
 * (`tail <= head`, `committed <= head`, checkpoint inside the written range):
 * an impossible history is an invariant violation, not a classification.
 */
import { invariant } from '../domain/index.ts'
import { assertLsn, type Lsn } from './types.ts'
import { noFaults, type ProtocolFaults } from './faults.ts'

/** What the primary still holds, as reported by the storage adapter. */
export interface RetainedHistory {
  /** Highest LSN written on the primary. */
  readonly headLsn: Lsn
  /** Exclusive recycle boundary: entries with lsn > tailLsn are retained. */
  readonly tailLsn: Lsn
  /** Highest LSN durable per the durability mode: the external truth. */
  readonly committedLsn: Lsn
  /** LSN of the last store checkpoint (0 = none). */
  readonly checkpointLsn: Lsn
  /** Whether that checkpoint can serve as a rebuild snapshot. */
  readonly checkpointTrusted: boolean
}

export function validateRetainedHistory(history: RetainedHistory): void {
  assertLsn(history.headLsn, 'headLsn')
  assertLsn(history.tailLsn, 'tailLsn')
  assertLsn(history.committedLsn, 'committedLsn')
  assertLsn(history.checkpointLsn, 'checkpointLsn')
  invariant(history.tailLsn <= history.headLsn, () => `tail ${history.tailLsn} > head ${history.headLsn}`)
  invariant(
    history.committedLsn <= history.headLsn,
    () => `committed ${history.committedLsn} > head ${history.headLsn}`,
  )
  invariant(
    history.checkpointLsn <= history.headLsn,
    () => `checkpoint ${history.checkpointLsn} > head ${history.headLsn}`,
  )
}

/** Entries (startExclusive, endInclusive] are all still retained. */
export function isRecoverable(history: RetainedHistory, startExclusive: Lsn, endInclusive: Lsn, faults: ProtocolFaults = noFaults): boolean {
  validateRetainedHistory(history)
  invariant(startExclusive <= endInclusive, () => `range (${startExclusive}, ${endInclusive}] is reversed`)
  const tail = faults.retentionBoundaryOffByOne === true ? history.tailLsn - 1 : history.tailLsn
  return startExclusive >= tail && endInclusive <= history.headLsn
}

export type HandshakeOutcome = 'zero_gap' | 'catch_up' | 'needs_rebuild'

/**
 * The proof behind a handshake decision.
 * - `zero_gap`: F == C exactly.
 * - `replica_ahead`: F > C; the replica must truncate back to C (uncommitted
 *   data is never revived), then it is in sync at C.
 * - `gap_within_retention`: (F, C] is retained; catch up with target frozen at C.
 * - `gap_beyond_retention`: some of (F, C] was recycled; rebuild.
 */
export type RecoverabilityProof =
  | { readonly kind: 'zero_gap'; readonly flushedLsn: Lsn; readonly committedLsn: Lsn }
  | { readonly kind: 'replica_ahead'; readonly flushedLsn: Lsn; readonly committedLsn: Lsn; readonly truncateToLsn: Lsn }
  | {
      readonly kind: 'gap_within_retention'
      readonly flushedLsn: Lsn
      readonly committedLsn: Lsn
      readonly entriesNeeded: number
      readonly tailLsn: Lsn
      readonly headLsn: Lsn
    }
  | { readonly kind: 'gap_beyond_retention'; readonly flushedLsn: Lsn; readonly committedLsn: Lsn; readonly tailLsn: Lsn }

export function proveRecoverability(history: RetainedHistory, flushedLsn: Lsn, faults: ProtocolFaults = noFaults): RecoverabilityProof {
  validateRetainedHistory(history)
  assertLsn(flushedLsn, 'flushedLsn')
  const committedLsn = history.committedLsn
  if (flushedLsn === committedLsn) return { kind: 'zero_gap', flushedLsn, committedLsn }
  if (flushedLsn > committedLsn) {
    return { kind: 'replica_ahead', flushedLsn, committedLsn, truncateToLsn: committedLsn }
  }
  // F + 1 >= tail + 1, i.e. every entry in (F, C] is still retained.
  if (isRecoverable(history, flushedLsn, committedLsn, faults)) {
    return {
      kind: 'gap_within_retention',
      flushedLsn,
      committedLsn,
      entriesNeeded: committedLsn - flushedLsn,
      tailLsn: history.tailLsn,
      headLsn: history.headLsn,
    }
  }
  return { kind: 'gap_beyond_retention', flushedLsn, committedLsn, tailLsn: history.tailLsn }
}

export function outcomeOfProof(proof: RecoverabilityProof): HandshakeOutcome {
  switch (proof.kind) {
    case 'zero_gap':
      return 'zero_gap'
    case 'replica_ahead':
    case 'gap_within_retention':
      return 'catch_up'
    case 'gap_beyond_retention':
      return 'needs_rebuild'
    default: {
      const never: never = proof
      throw new Error(`unknown proof ${String(never)}`)
    }
  }
}

export function classifyHandshake(history: RetainedHistory, flushedLsn: Lsn): HandshakeOutcome {
  return outcomeOfProof(proveRecoverability(history, flushedLsn))
}

export type FullBaseReason = 'no_checkpoint' | 'untrusted_checkpoint' | 'trusted_checkpoint_unreplayable_tail'

export type RebuildSourceDecision =
  | { readonly source: 'snapshot_tail'; readonly snapshotLsn: Lsn; readonly targetLsn: Lsn }
  | { readonly source: 'full_base'; readonly targetLsn: Lsn; readonly reason: FullBaseReason }

/**
 * Snapshot + tail replay when a trusted checkpoint exists whose tail
 * (checkpoint, committed] is still retained; otherwise a full base copy at
 * committed. The target is always the committed LSN at decision time.
 */
export function selectRebuildSource(history: RetainedHistory): RebuildSourceDecision {
  validateRetainedHistory(history)
  const targetLsn = history.committedLsn
  if (history.checkpointLsn === 0) return { source: 'full_base', targetLsn, reason: 'no_checkpoint' }
  if (!history.checkpointTrusted) return { source: 'full_base', targetLsn, reason: 'untrusted_checkpoint' }
  if (history.checkpointLsn > targetLsn || !isRecoverable(history, history.checkpointLsn, targetLsn)) {
    return { source: 'full_base', targetLsn, reason: 'trusted_checkpoint_unreplayable_tail' }
  }
  return { source: 'snapshot_tail', snapshotLsn: history.checkpointLsn, targetLsn }
}
