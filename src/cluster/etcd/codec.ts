/**
 * The values the control plane keeps in etcd, in one canonical JSON form
 * each (fields in a fixed order, replicas sorted), and their strict
 * decoding: a value in etcd is input from outside this process, so a
 * malformed one is refused with `ControlPlaneDataError`, never trusted.
 * Each value is bounded in bytes.
 */
import { durabilityModes, Epoch, Lsn, ReplicaId } from '../../replication/index.ts'
import type { DurabilityMode, LineageReset, ReplicaState } from '../../replication/index.ts'
import { isNodeId } from './keys.ts'

/** Bounds every value the control plane reads or writes. */
export const valueBytesMax = 64 * 1024
/** An assignment names at most this many members (the engine's `replicasMax` plus the primary). */
export const membersMax = 65
export const lineageResetsKeptMax = 1_000

export class ControlPlaneDataError extends Error {
  constructor(key: string, message: string) {
    super(`malformed control-plane value at ${key}: ${message}`)
    this.name = 'ControlPlaneDataError'
  }
}

/** The assignment as written: everything but the epoch, which is the revision etcd gives the write. */
export interface AssignmentProposal {
  readonly primaryId: ReplicaId
  readonly replicaIds: readonly ReplicaId[]
  /** Replicas that receive the log but count for no quorum and are never promoted (docs/cluster.md, "Membership"). */
  readonly learnerIds: readonly ReplicaId[]
  readonly durability: DurabilityMode
  /** The highest commit acknowledged to clients when this assignment was made. */
  readonly committedLsn: Lsn
  /** Lineage resets of earlier epochs, carried over. */
  readonly lineageResets: readonly LineageReset[]
  /** A desperate promotion: the committed lineage is kept only up to here, from this assignment's own epoch on. */
  readonly lossKeptLsn?: Lsn | undefined
}

/** The assignment as read: its epoch is the etcd mod revision of the assignment key. */
export interface ClusterAssignment {
  readonly epoch: Epoch
  /** The mod revision a compare-and-swap must name; equal to `epoch`. */
  readonly revision: number
  readonly primaryId: ReplicaId
  /** The voting replicas: they count for the commit quorum and may be promoted. */
  readonly replicaIds: readonly ReplicaId[]
  /** Learners: they receive the log and count for nothing until the coordinator makes them voters. */
  readonly learnerIds: readonly ReplicaId[]
  readonly durability: DurabilityMode
  readonly committedLsn: Lsn
  /** Every lineage reset, this assignment's own (a desperate promotion) included. */
  readonly lineageResets: readonly LineageReset[]
}

export interface NodeEndpointValue {
  readonly dataAddress: string
  readonly controlAddress: string
}

export interface ReplicaStateReport {
  readonly replicaId: ReplicaId
  readonly state: ReplicaState
  readonly endpointVersion: number
}

/** What a node reports about itself, under its registration lease. */
export interface NodeReport {
  readonly epoch: Epoch
  readonly durableLsn: Lsn
  readonly safeLsn: Lsn
  readonly committedLsn: Lsn
  readonly appliedLsn: Lsn
  /** The states a primary published for its replicas; empty on a replica. */
  readonly replicaStates: readonly ReplicaStateReport[]
}

/** A node lost its connection to the primary of `epoch` (`primaryId`) and could not get it back within its grace. */
export interface Suspicion {
  readonly epoch: Epoch
  readonly primaryId: ReplicaId
}

export interface CommittedMark {
  readonly epoch: Epoch
  readonly committedLsn: Lsn
}

const replicaStates: readonly ReplicaState[] = ['disconnected', 'connecting', 'catching_up', 'in_sync', 'degraded', 'needs_rebuild', 'rebuilding']

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export function encodeAssignment(proposal: AssignmentProposal): string {
  const replicaIds = [...proposal.replicaIds].sort(compareIds)
  const learnerIds = [...proposal.learnerIds].sort(compareIds)
  if (replicaIds.includes(proposal.primaryId) || learnerIds.includes(proposal.primaryId)) throw new Error(`the primary ${proposal.primaryId} is not also a replica`)
  if (new Set([...replicaIds, ...learnerIds]).size !== replicaIds.length + learnerIds.length) throw new Error('a replica is named twice')
  if (replicaIds.length + learnerIds.length + 1 > membersMax) throw new Error(`an assignment names at most ${membersMax} members`)
  if (proposal.lineageResets.length + (proposal.lossKeptLsn === undefined ? 0 : 1) > lineageResetsKeptMax) throw new Error(`more than ${lineageResetsKeptMax} lineage resets`)
  return JSON.stringify({
    format: 1,
    primary: proposal.primaryId,
    replicas: replicaIds,
    // Absent when empty: an assignment without learners is written as before membership changes existed.
    ...(learnerIds.length === 0 ? {} : { learners: learnerIds }),
    durability: proposal.durability,
    committedLsn: proposal.committedLsn,
    lineageResets: proposal.lineageResets.map((reset) => ({ epoch: reset.epoch, keptLsn: reset.keptLsn })),
    ...(proposal.lossKeptLsn === undefined ? {} : { lossKeptLsn: proposal.lossKeptLsn }),
  })
}

export function decodeAssignment(key: string, text: string, modRevision: number): ClusterAssignment {
  const value = objectOf(key, text, ['format', 'primary', 'replicas', 'durability', 'committedLsn', 'lineageResets'], ['learners', 'lossKeptLsn'])
  if (value.format !== 1) throw new ControlPlaneDataError(key, `unknown format ${JSON.stringify(value.format)}`)
  const epoch = Epoch.of(modRevision)
  const primaryId = nodeId(key, value.primary, 'primary')
  if (!Array.isArray(value.replicas) || value.replicas.length + 1 > membersMax) throw new ControlPlaneDataError(key, `replicas is not a list of at most ${membersMax - 1} node ids`)
  const replicaIds = value.replicas.map((id, index) => nodeId(key, id, `replicas[${index}]`))
  const learnersValue = value.learners ?? []
  if (!Array.isArray(learnersValue) || learnersValue.length === 0 !== (value.learners === undefined) || replicaIds.length + learnersValue.length + 1 > membersMax) {
    throw new ControlPlaneDataError(key, `learners is not a non-empty list of node ids (at most ${membersMax} members in all)`)
  }
  const learnerIds = learnersValue.map((id, index) => nodeId(key, id, `learners[${index}]`))
  if (new Set([primaryId, ...replicaIds, ...learnerIds]).size !== replicaIds.length + learnerIds.length + 1) throw new ControlPlaneDataError(key, 'a member is named twice')
  const durability = durabilityModes.find((mode) => mode === value.durability)
  if (durability === undefined) throw new ControlPlaneDataError(key, `unknown durability ${JSON.stringify(value.durability)}`)
  const committedLsn = lsn(key, value.committedLsn, 'committedLsn')
  if (!Array.isArray(value.lineageResets) || value.lineageResets.length > lineageResetsKeptMax) throw new ControlPlaneDataError(key, 'lineageResets is not a bounded list')
  const lineageResets: LineageReset[] = value.lineageResets.map((reset, index) => {
    const entry = recordOf(key, reset, ['epoch', 'keptLsn'], [], `lineageResets[${index}]`)
    const resetEpoch = positiveInteger(key, entry.epoch, `lineageResets[${index}].epoch`)
    if (resetEpoch >= modRevision) throw new ControlPlaneDataError(key, `lineage reset of epoch ${resetEpoch} is not older than the assignment`)
    return { epoch: Epoch.of(resetEpoch), keptLsn: lsn(key, entry.keptLsn, `lineageResets[${index}].keptLsn`) }
  })
  if (value.lossKeptLsn !== undefined) lineageResets.push({ epoch, keptLsn: lsn(key, value.lossKeptLsn, 'lossKeptLsn') })
  return { epoch, revision: modRevision, primaryId, replicaIds, learnerIds, durability, committedLsn, lineageResets }
}

export function encodeEndpoint(endpoint: NodeEndpointValue): string {
  checkAddress(endpoint.dataAddress, 'dataAddress')
  checkAddress(endpoint.controlAddress, 'controlAddress')
  return JSON.stringify({ dataAddress: endpoint.dataAddress, controlAddress: endpoint.controlAddress })
}

export function decodeEndpoint(key: string, text: string): NodeEndpointValue {
  const value = objectOf(key, text, ['dataAddress', 'controlAddress'], [])
  return { dataAddress: address(key, value.dataAddress, 'dataAddress'), controlAddress: address(key, value.controlAddress, 'controlAddress') }
}

export function encodeReport(report: NodeReport): string {
  return JSON.stringify({
    epoch: report.epoch,
    durableLsn: report.durableLsn,
    safeLsn: report.safeLsn,
    committedLsn: report.committedLsn,
    appliedLsn: report.appliedLsn,
    replicaStates: [...report.replicaStates]
      .sort((a, b) => compareIds(a.replicaId, b.replicaId))
      .map((entry) => ({ replicaId: entry.replicaId, state: entry.state, endpointVersion: entry.endpointVersion })),
  })
}

export function decodeReport(key: string, text: string): NodeReport {
  const value = objectOf(key, text, ['epoch', 'durableLsn', 'safeLsn', 'committedLsn', 'appliedLsn', 'replicaStates'], [])
  if (!Array.isArray(value.replicaStates) || value.replicaStates.length > membersMax) throw new ControlPlaneDataError(key, 'replicaStates is not a bounded list')
  return {
    epoch: Epoch.of(positiveInteger(key, value.epoch, 'epoch')),
    durableLsn: lsn(key, value.durableLsn, 'durableLsn'),
    safeLsn: lsn(key, value.safeLsn, 'safeLsn'),
    committedLsn: lsn(key, value.committedLsn, 'committedLsn'),
    appliedLsn: lsn(key, value.appliedLsn, 'appliedLsn'),
    replicaStates: value.replicaStates.map((entry, index) => {
      const item = recordOf(key, entry, ['replicaId', 'state', 'endpointVersion'], [], `replicaStates[${index}]`)
      const state = replicaStates.find((known) => known === item.state)
      if (state === undefined) throw new ControlPlaneDataError(key, `unknown replica state ${JSON.stringify(item.state)}`)
      return { replicaId: nodeId(key, item.replicaId, `replicaStates[${index}].replicaId`), state, endpointVersion: nonNegativeInteger(key, item.endpointVersion, 'endpointVersion') }
    }),
  }
}

export function encodeSuspicion(suspicion: Suspicion): string {
  return JSON.stringify({ epoch: suspicion.epoch, primaryId: suspicion.primaryId })
}

export function decodeSuspicion(key: string, text: string): Suspicion {
  const value = objectOf(key, text, ['epoch', 'primaryId'], [])
  return { epoch: Epoch.of(positiveInteger(key, value.epoch, 'epoch')), primaryId: nodeId(key, value.primaryId, 'primaryId') }
}

export function encodeCommitted(mark: CommittedMark): string {
  return JSON.stringify({ epoch: mark.epoch, committedLsn: mark.committedLsn })
}

export function decodeCommitted(key: string, text: string): CommittedMark {
  const value = objectOf(key, text, ['epoch', 'committedLsn'], [])
  return { epoch: Epoch.of(positiveInteger(key, value.epoch, 'epoch')), committedLsn: lsn(key, value.committedLsn, 'committedLsn') }
}

// ------------------------------------------------------------------ helpers

function objectOf(key: string, text: string, required: readonly string[], optional: readonly string[]): Record<string, unknown> {
  if (Buffer.byteLength(text, 'utf8') > valueBytesMax) throw new ControlPlaneDataError(key, `value larger than ${valueBytesMax} bytes`)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new ControlPlaneDataError(key, 'not JSON')
  }
  return recordOf(key, parsed, required, optional, 'value')
}

/** A plain object with exactly the named fields, copied into a null-prototype record (nothing inherited is read). */
function recordOf(key: string, value: unknown, required: readonly string[], optional: readonly string[], what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ControlPlaneDataError(key, `${what} is not an object`)
  const record: Record<string, unknown> = Object.create(null) as Record<string, unknown>
  for (const [name, field] of Object.entries(value)) {
    if (!required.includes(name) && !optional.includes(name)) throw new ControlPlaneDataError(key, `${what} has an unknown field ${JSON.stringify(name.slice(0, 64))}`)
    record[name] = field
  }
  for (const name of required) if (!(name in record)) throw new ControlPlaneDataError(key, `${what} lacks ${name}`)
  return record
}

function nodeId(key: string, value: unknown, what: string): ReplicaId {
  if (typeof value !== 'string' || !isNodeId(value)) throw new ControlPlaneDataError(key, `${what} is not a node id`)
  return ReplicaId.of(value)
}

function nonNegativeInteger(key: string, value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new ControlPlaneDataError(key, `${what} is not a non-negative integer`)
  return value
}

function positiveInteger(key: string, value: unknown, what: string): number {
  const number = nonNegativeInteger(key, value, what)
  if (number < 1) throw new ControlPlaneDataError(key, `${what} is not positive`)
  return number
}

function lsn(key: string, value: unknown, what: string): Lsn {
  return Lsn.of(nonNegativeInteger(key, value, what))
}

const addressBytesMax = 256

function checkAddress(value: string, what: string): void {
  if (value.length === 0 || Buffer.byteLength(value, 'utf8') > addressBytesMax || /\s/.test(value)) throw new Error(`${what} must be a non-empty address of at most ${addressBytesMax} bytes without spaces`)
}

function address(key: string, value: unknown, what: string): string {
  if (typeof value !== 'string') throw new ControlPlaneDataError(key, `${what} is not a string`)
  try {
    checkAddress(value, what)
  } catch (error) {
    throw new ControlPlaneDataError(key, (error as Error).message)
  }
  return value
}
