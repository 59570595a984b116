/**
 * The replica side of the protocol: what a node decides about its own log
 * when traffic, assignments or a connecting primary reach it. Every function
 * takes a read-only view of the node's log and returns a decision (what to
 * persist, where to truncate, whether to acknowledge); the caller applies it
 * to the disk. Pure: no clock, no I/O.
 *
 * Log matching is by (index, epoch), as in Raft: one primary writes an epoch
 * and never rewrites an LSN within it, so two logs holding an entry of the
 * same epoch at the same LSN hold the same prefix up to it.
 */
import { invariant } from '../domain/index.ts'
import { noFaults, type ProtocolFaults } from './faults.ts'
import { Lsn, type Epoch } from './types.ts'

/** What the replica side reads of a node's log. */
export interface ReplicaLogView {
  readonly headLsn: Lsn
  readonly durableLsn: Lsn
  readonly checkpointLsn: Lsn
  /** The highest LSN this node knows is committed (learned from the primary; persisted). */
  readonly knownCommittedLsn: Lsn
  /** The epoch of the entry this node holds at `lsn`, or undefined when it holds none there. */
  epochAt(lsn: Lsn): Epoch | undefined
}

/**
 * The highest LSN a node can keep whatever lineage wins: durable, known
 * committed, or covered by its checkpoint. Anything above may be an
 * uncommitted tail of a deposed primary.
 */
export function lineageSafeLsn(log: Omit<ReplicaLogView, 'epochAt'>): Lsn {
  return Lsn.max(log.checkpointLsn, Lsn.min(log.knownCommittedLsn, log.durableLsn))
}

// ------------------------------------------------------------- epoch fence

export type EpochFence = 'current' | 'stale' | 'future'

/** Traffic is accepted only from the node's own epoch: older is fenced, newer waits for its assignment. */
export function fenceEpoch(nodeEpoch: Epoch, messageEpoch: Epoch, faults: ProtocolFaults = noFaults): EpochFence {
  if (messageEpoch === nodeEpoch) return 'current'
  if (faults.acceptOlderEpochTraffic === true && messageEpoch < nodeEpoch) return 'current'
  return messageEpoch < nodeEpoch ? 'stale' : 'future'
}

// ---------------------------------------------------------- epoch adoption

export type EpochAdoption =
  | {
      readonly kind: 'adopt'
      readonly persistEpoch: Epoch
      readonly truncateToLsn: Lsn
      readonly knownCommittedLsn: Lsn
      /** The node's checkpoint lies above a lineage reset: its whole store is of a lost lineage; drop it and rebuild. */
      readonly wipeStore: boolean
    }
  | { readonly kind: 'ignore'; readonly reason: 'not_newer' | 'is_primary' }

/**
 * A desperate promotion at `epoch` kept the committed lineage only up to
 * `keptLsn`: what any node knew committed above it is gone. The control plane
 * keeps these and hands them out with assignments.
 */
export interface LineageReset {
  readonly epoch: Epoch
  readonly keptLsn: Lsn
}

/**
 * A replica told of a newer epoch persists it and drops whatever it holds
 * beyond its lineage-safe LSN: that tail was written by a primary that may
 * have been deposed, and a connect will fetch what the new lineage holds.
 * A lineage reset between its epoch and the new one (a desperate promotion)
 * caps what it may still call committed at the reset's kept LSN. The primary
 * adopts epochs through promotion, never through this path.
 */
export function decideEpochAdoption(options: {
  readonly log: ReplicaLogView
  readonly currentEpoch: Epoch
  readonly offeredEpoch: Epoch
  readonly isPrimary: boolean
  readonly lineageResets?: readonly LineageReset[]
  readonly faults?: ProtocolFaults
}): EpochAdoption {
  if (options.isPrimary) return { kind: 'ignore', reason: 'is_primary' }
  if (options.offeredEpoch <= options.currentEpoch) return { kind: 'ignore', reason: 'not_newer' }
  const crossed = (options.lineageResets ?? []).filter((reset) => reset.epoch > options.currentEpoch && reset.epoch <= options.offeredEpoch)
  const knownCommittedLsn = crossed.reduce((known, reset) => Lsn.min(known, reset.keptLsn), options.log.knownCommittedLsn)
  if (options.log.checkpointLsn > knownCommittedLsn) {
    return { kind: 'adopt', persistEpoch: options.offeredEpoch, truncateToLsn: Lsn.zero, knownCommittedLsn: Lsn.zero, wipeStore: true }
  }
  const truncateToLsn = options.faults?.keepTailOnEpochAdoption === true ? options.log.headLsn : lineageSafeLsn({ ...viewOf(options.log), knownCommittedLsn })
  return { kind: 'adopt', persistEpoch: options.offeredEpoch, truncateToLsn, knownCommittedLsn, wipeStore: false }
}

function viewOf(log: ReplicaLogView): Omit<ReplicaLogView, 'epochAt'> {
  return { headLsn: log.headLsn, durableLsn: log.durableLsn, checkpointLsn: log.checkpointLsn, knownCommittedLsn: log.knownCommittedLsn }
}

// ------------------------------------------------------------ log matching

/**
 * At connect: the highest LSN at or below the replica's durable LSN (and the
 * primary's head) where both logs hold an entry of the same epoch, never
 * below the replica's lineage-safe LSN. The replica truncates above it and
 * reports it as its flushed LSN on the primary's lineage.
 */
export function matchLog(replica: ReplicaLogView, primary: { readonly headLsn: Lsn; epochAt(lsn: Lsn): Epoch | undefined }, faults: ProtocolFaults = noFaults): Lsn {
  if (faults.skipLogMatchingAtConnect === true) return replica.durableLsn
  const floor = lineageSafeLsn(replica)
  for (let lsn = Lsn.min(replica.durableLsn, primary.headLsn); lsn > floor; lsn = Lsn.after(lsn, -1)) {
    const epoch = replica.epochAt(lsn)
    if (epoch !== undefined && epoch === primary.epochAt(lsn)) return lsn
  }
  return floor
}

// ----------------------------------------------------------------- traffic

/** What a replica learns from the commit point a ship or barrier carries: committed, and held here. */
export function learnCommitted(log: ReplicaLogView, carriedCommittedLsn: Lsn, heldUpToLsn: Lsn): Lsn {
  invariant(heldUpToLsn <= log.headLsn, () => `held up to ${heldUpToLsn} beyond head ${log.headLsn}`)
  return Lsn.max(log.knownCommittedLsn, Lsn.min(carriedCommittedLsn, heldUpToLsn))
}

export type BarrierDecision =
  | { readonly kind: 'flush_and_ack'; readonly knownCommittedLsn: Lsn }
  | { readonly kind: 'wait'; readonly attempt: number }
  | { readonly kind: 'abandon' }

/**
 * A barrier asks the replica to make everything up to `barrierLsn` durable
 * and acknowledge. It can only when it holds that LSN; entries still in
 * flight get `retriesMax` more looks before the barrier is abandoned (the
 * primary's barrier timeout then decides).
 */
export function decideBarrier(
  log: ReplicaLogView,
  barrier: { readonly lsn: Lsn; readonly committedLsn: Lsn; readonly attempt: number; readonly retriesMax: number },
): BarrierDecision {
  if (log.headLsn >= barrier.lsn && (barrier.lsn <= log.checkpointLsn || log.epochAt(barrier.lsn) !== undefined)) {
    return { kind: 'flush_and_ack', knownCommittedLsn: learnCommitted(log, barrier.committedLsn, barrier.lsn) }
  }
  if (barrier.attempt < barrier.retriesMax) return { kind: 'wait', attempt: barrier.attempt + 1 }
  return { kind: 'abandon' }
}

// -------------------------------------------------------------- promotion

/**
 * A node that becomes primary at a new epoch drops its tail above the
 * committed LSN (never revived) — but never below its own checkpoint, which
 * holds only committed state — and knows the committed LSN from then on.
 */
export function decidePrimaryTakeover(log: ReplicaLogView, committedLsn: Lsn): { readonly truncateToLsn: Lsn | undefined; readonly knownCommittedLsn: Lsn } {
  const truncateToLsn = log.headLsn > committedLsn ? Lsn.max(committedLsn, log.checkpointLsn) : undefined
  const headAfter = truncateToLsn ?? log.headLsn
  return { truncateToLsn, knownCommittedLsn: Lsn.max(log.knownCommittedLsn, Lsn.min(committedLsn, headAfter)) }
}
