/**
 * The invariants checked after every simulated tick. Each returns violations
 * instead of throwing, so a run reports every broken property with the tick
 * and a replayable trace.
 *
 * 1. No acknowledged (committed) entry is ever lost: the committed point never
 *    regresses, the primary holds every committed entry and matches the
 *    reference, and some node durably holds the committed prefix.
 * 2. Nothing uncommitted is revived (checked at commit by the reference).
 * 3. No future epochs: no node, primary or message carries an epoch above the
 *    coordinator's.
 * 4. Every replica the primary considers in sync matches the reference at
 *    its LSN.
 * 5. Pins are held only by running executors of active sessions, and every
 *    active session has an executor (so all pins are released when sessions end).
 * 6. Node storage keeps tail <= checkpoint <= durable <= head.
 * 7. The primary never goes back to an older endpoint of a member: the
 *    address a member left may already serve another process, so a sender
 *    that regressed would ship the ledger to the wrong place.
 * 8. No two primaries may acknowledge at once: a primary the coordinator
 *    replaced while it ran (deposed, cut off) never still holds its lease,
 *    so it cannot commit in an epoch overlapping its successor's. With
 *    suspicions (`suspectAfterTicks`) a deposed primary may still hold its
 *    lease by design; then what is checked is that it acknowledges nothing
 *    (the fence refuses it: `overlapping_primaries` from the cluster).
 */
import { InvariantViolation } from '../domain/index.ts'
import { Lsn, votersOf, type DurabilityMode, type Tick } from '../replication/index.ts'
import type { Cluster } from './cluster.ts'

export type ViolationKind =
  | 'committed_regressed'
  | 'committed_entry_lost'
  | 'committed_prefix_unrecoverable'
  | 'commit_not_durable'
  | 'uncommitted_revived'
  | 'unknown_write'
  | 'reference_diverged'
  | 'future_epoch'
  | 'in_sync_replica_diverged'
  | 'in_sync_replica_short'
  | 'pin_leaked'
  | 'session_orphaned'
  | 'storage_structure'
  | 'endpoint_regressed'
  | 'overlapping_primaries'
  | 'promotion_without_quorum_suspicion'
  | 'non_voter_promoted'
  | 'liveness'
  | 'exception'
  // The ledger running in the simulator (`ledger-state.ts`):
  | 'ledger_diverged'
  | 'ledger_unbalanced'
  | 'ledger_negative_balance'
  | 'audit_chain_broken'
  | 'applied_entry_undone'
  | 'ledger_entry_missing'
  | 'ledger_meta_mismatch'

export interface Violation {
  readonly tick: Tick
  readonly kind: ViolationKind
  readonly detail: string
}

/**
 * Whether `holders` of `members` durably holding an entry satisfy the mode,
 * written from each mode's definition rather than from the commit rule it
 * audits: sync_all — every member; sync_quorum — strictly more than half of
 * the members; best_effort — at least one (the primary).
 */
export function durabilityHeld(mode: DurabilityMode, members: number, holders: number): boolean {
  switch (mode) {
    case 'sync_all':
      return holders === members
    case 'sync_quorum':
      return holders * 2 > members
    case 'best_effort':
      return holders >= 1
    default: {
      const never: never = mode
      throw new InvariantViolation(`unknown durability mode ${String(never)}`)
    }
  }
}

/**
 * A8, audited at the moment of a commit: enough members hold the newly
 * committed range (previous, committed] durably, as an intact chain equal to
 * the primary's.
 */
export function auditCommitDurability(cluster: Cluster, previous: Lsn, committed: Lsn): Violation | undefined {
  const primary = cluster.primary()
  if (primary === undefined) return undefined
  const digest = primary.digestAt(committed)
  // With membership, only the voters of the epoch that commits count (the stored assignment's, read without
  // any planted fault): a learner's or a spare's copy is no copy the mode promised.
  const membership = cluster.membership()
  const voters = membership === undefined ? undefined : new Set(votersOf(membership))
  let holders = 0
  for (const node of cluster.nodes.values()) {
    if (voters !== undefined && !voters.has(node.id)) continue
    if (node.durableLsn >= committed && node.digestAt(committed) === digest && node.holdsRange(previous, committed)) holders += 1
  }
  const { durability } = cluster.options
  const memberCount = voters?.size ?? cluster.options.nodeCount
  if (durabilityHeld(durability, memberCount, holders)) return undefined
  return {
    tick: cluster.now,
    kind: 'commit_not_durable',
    detail: `committed ${committed} (${durability}) held durably by ${holders} of ${memberCount} ${voters === undefined ? 'members' : 'voters'}`,
  }
}

export function checkCluster(cluster: Cluster): Violation[] {
  const violations: Violation[] = []
  const tick = cluster.now
  const add = (kind: ViolationKind, detail: string): void => {
    violations.push({ tick, kind, detail })
  }
  // The versioned assignment is the truth; a coordinator process's view may be outdated.
  const assigned = cluster.assignments.read().record
  const committed = assigned.committedLsn
  const reference = cluster.reference

  if (committed < cluster.committedHighWater) add('committed_regressed', `committed ${committed} < ${cluster.committedHighWater}`)
  if (reference.committedLsn !== committed) add('reference_diverged', `reference ${reference.committedLsn} != coordinator ${committed}`)

  for (const node of cluster.nodes.values()) {
    const problem = node.checkStructure()
    if (problem !== undefined) add('storage_structure', `${node.id}: ${problem}`)
    if (node.epoch > assigned.epoch) add('future_epoch', `${node.id} at epoch ${node.epoch} > ${assigned.epoch}`)
  }
  for (const message of cluster.queue.messages()) {
    if (message.epoch > assigned.epoch) add('future_epoch', `${message.kind} ${message.from}->${message.to} at epoch ${message.epoch}`)
  }

  const primary = cluster.primary()
  const runtime = cluster.runtime
  if (primary !== undefined && runtime !== undefined) {
    if (runtime.epoch > assigned.epoch) add('future_epoch', `primary runtime at epoch ${runtime.epoch}`)
    if (primary.headLsn < committed) {
      add('committed_entry_lost', `primary ${primary.id} head ${primary.headLsn} < committed ${committed}`)
    } else {
      for (let lsn = Lsn.after(primary.tailLsn); lsn <= committed; lsn = Lsn.after(lsn)) {
        const digest = primary.entry(lsn)?.digest
        if (digest === undefined) {
          add('committed_entry_lost', `primary ${primary.id} is missing committed lsn ${lsn}`)
          break
        }
        if (digest !== reference.digestAt(lsn)) {
          add('committed_entry_lost', `primary ${primary.id} lsn ${lsn} differs from the reference`)
          break
        }
      }
      if (primary.digestAt(committed) !== reference.digestAt(committed)) {
        add('committed_entry_lost', `primary ${primary.id} state at ${committed} differs from the reference`)
      }
    }

    for (const sender of runtime.registry.senders()) {
      const node = cluster.node(sender.replicaId)
      if (sender.state === 'in_sync' && node.running) {
        const lsn = Lsn.min(node.headLsn, committed)
        const digest = node.digestAt(lsn)
        if (digest !== undefined && digest !== reference.digestAt(lsn)) {
          add('in_sync_replica_diverged', `${node.id} in sync but differs from the reference at ${lsn}`)
        }
        // What "in sync" promises, read from the replica's own disk (not from
        // the session's bookkeeping): it durably holds what its recovery
        // completed at, so live shipping can continue right after it.
        const syncedTo = sender.session?.targetLsn
        if (syncedTo !== undefined && node.durableLsn < syncedTo) {
          add('in_sync_replica_short', `${node.id} in sync at ${syncedTo} but durably holds only up to ${node.durableLsn}`)
        }
      }
      const highest = runtime.endpointVersionsUsed.get(sender.replicaId) ?? 0
      if (sender.endpoint.version < highest) {
        add('endpoint_regressed', `primary ${primary.id} addresses ${sender.replicaId} at endpoint v${sender.endpoint.version} after v${highest}`)
      } else {
        runtime.endpointVersionsUsed.set(sender.replicaId, sender.endpoint.version)
      }
      const session = sender.activeSession()
      const driven = runtime.driver.executorSessionId(sender.replicaId) ?? runtime.driver.connectingSessionId(sender.replicaId)
      if (session !== undefined && driven !== session.id) {
        add('session_orphaned', `${sender.replicaId} session ${session.id} has no executor`)
      }
    }
    for (const pin of runtime.pins.values()) {
      const session = runtime.registry.sender(pin.owner.replicaId)?.activeSession()
      if (runtime.driver.executorSessionId(pin.owner.replicaId) !== pin.owner.sessionId || session?.id !== pin.owner.sessionId) {
        add('pin_leaked', `${pin.kind} pin at ${pin.lsn} held for ${pin.owner.replicaId} session ${pin.owner.sessionId}`)
      }
    }
  }

  for (const deposed of cluster.options.suspectAfterTicks === undefined ? cluster.deposed() : []) {
    if (deposed.lease?.holds(tick) === true) {
      add('overlapping_primaries', `deposed primary ${deposed.nodeId} (epoch ${deposed.epoch}) still holds its lease until ${deposed.lease.expiresAt} while ${cluster.runtime?.nodeId ?? 'no primary'} serves epoch ${assigned.epoch}`)
    }
  }

  let holders = 0
  const committedDigest = reference.digestAt(committed)
  for (const node of cluster.nodes.values()) {
    if (node.durableLsn >= committed && node.digestAt(committed) === committedDigest) holders += 1
  }
  if (holders === 0) add('committed_prefix_unrecoverable', `no node durably holds the committed prefix at ${committed}`)
  return violations
}
