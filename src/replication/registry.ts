/**
 * The registry of senders, keyed by stable replica id. `reconcile` applies an
 * assignment: existing senders keep their identity (endpoint, then epoch,
 * updated in place), new ones are created, missing ones are stopped, and a
 * replica whose assignment epoch, or endpoint version, is older than its
 * sender's is refused (fail closed). Session ids are made by `sessionIdOf` from the registry's scope
 * (primary id and incarnation), the sender's epoch and the registry's own
 * counter: reproducible, and never reissued by another primary or a
 * restarted one.
 */
import { invariant } from '../domain/index.ts'
import type { RecoveryLog } from './log.ts'
import { noFaults, type ProtocolFaults } from './faults.ts'
import { Sender } from './sender.ts'
import {
  type Endpoint,
  type Epoch,
  type Outcome,
  type ReplicaId,
  type ReplicaState,
  SessionId,
  type SessionIdScope,
  type SessionKind,
  type SessionTicket,
} from './types.ts'

export interface ReplicaAssignment {
  readonly replicaId: ReplicaId
  readonly endpoint: Endpoint
  /** A recovery the control plane asks for (`rebuild` for a rebuilding role); none for a plain member. */
  readonly recovery?: SessionKind | undefined
}

/** One epoch's replica set, as handed out by the control plane. */
export interface Assignment {
  readonly epoch: Epoch
  readonly replicas: readonly ReplicaAssignment[]
}

export interface ReconcileResult {
  readonly tickets: readonly SessionTicket[]
  readonly refused: readonly ReplicaId[]
  readonly stopped: readonly ReplicaId[]
}

export interface SenderStatus {
  readonly replicaId: ReplicaId
  readonly state: ReplicaState
  readonly epoch: Epoch
  readonly endpointVersion: number
  readonly sessionId: SessionId | undefined
  readonly sessionKind: SessionKind | undefined
}

export const replicasMax = 64

/**
 * Why an assignment is older than what the sender already holds, if it is:
 * an older epoch, or an older version of the replica's endpoint (a
 * membership update reordered behind a newer one names an address the
 * replica left). Both are versions the control plane only moves forward.
 */
function olderThan(epoch: Epoch, endpoint: Endpoint, sender: Sender): 'assignment_epoch_older_than_sender' | 'endpoint_version_older_than_sender' | undefined {
  if (epoch < sender.epoch) return 'assignment_epoch_older_than_sender'
  if (endpoint.version < sender.endpoint.version) return 'endpoint_version_older_than_sender'
  return undefined
}

export class Registry {
  readonly log: RecoveryLog
  readonly #senders = new Map<ReplicaId, Sender>()
  readonly sessionScope: SessionIdScope
  #sessionCounter = 0

  readonly #faults: ProtocolFaults

  constructor(options: { log: RecoveryLog; sessionScope: SessionIdScope; faults?: ProtocolFaults }) {
    this.log = options.log
    this.sessionScope = options.sessionScope
    this.#faults = options.faults ?? noFaults
  }

  sender(replicaId: ReplicaId): Sender | undefined {
    return this.#senders.get(replicaId)
  }

  /** Senders in replica-id order (deterministic iteration). */
  senders(): Sender[] {
    return [...this.#senders.values()].sort((a, b) => (a.replicaId < b.replicaId ? -1 : a.replicaId > b.replicaId ? 1 : 0))
  }

  reconcile(assignment: Assignment): ReconcileResult {
    invariant(assignment.replicas.length <= replicasMax, () => `assignment has more than ${replicasMax} replicas`)
    const seen = new Set<ReplicaId>()
    const tickets: SessionTicket[] = []
    const refused: ReplicaId[] = []
    for (const intent of assignment.replicas) {
      invariant(!seen.has(intent.replicaId), () => `replica ${intent.replicaId} assigned twice`)
      seen.add(intent.replicaId)
      let sender = this.#senders.get(intent.replicaId)
      const staleness = sender === undefined || this.#faults.acceptOlderAssignment === true ? undefined : olderThan(assignment.epoch, intent.endpoint, sender)
      if (sender !== undefined && staleness !== undefined) {
        this.log.append({
          kind: 'stale_assignment',
          replicaId: intent.replicaId,
          reason: staleness,
          detail: { assignmentEpoch: assignment.epoch, senderEpoch: sender.epoch, endpointVersion: intent.endpoint.version, senderEndpointVersion: sender.endpoint.version },
        })
        refused.push(intent.replicaId)
        continue
      }
      if (sender === undefined) {
        sender = new Sender({ replicaId: intent.replicaId, endpoint: intent.endpoint, epoch: assignment.epoch, log: this.log, faults: this.#faults })
        this.#senders.set(intent.replicaId, sender)
      } else {
        sender.updateEndpoint(intent.endpoint)
        sender.updateEpoch(assignment.epoch)
      }
      if (intent.recovery !== undefined) {
        const attached = sender.supersedeSession(this.#takeSessionId(sender.epoch), intent.recovery, 'assignment_intent')
        if (attached.ok) tickets.push(attached.value)
      }
    }
    const stopped: ReplicaId[] = []
    for (const sender of this.senders()) {
      if (seen.has(sender.replicaId)) continue
      sender.stop('removed_from_assignment')
      this.#senders.delete(sender.replicaId)
      stopped.push(sender.replicaId)
    }
    return { tickets, refused, stopped }
  }

  /** Attaches a new session on an idle sender (the recovery driver's trigger). */
  attach(replicaId: ReplicaId, kind: SessionKind): Outcome<SessionTicket> {
    const sender = this.#senders.get(replicaId)
    if (sender === undefined) return { ok: false, reason: 'sender_missing' }
    return sender.attachSession(this.#takeSessionId(sender.epoch), kind)
  }

  /** Invalidates every active session older than `epoch` and moves senders to it. */
  invalidateEpoch(epoch: Epoch): number {
    let invalidated = 0
    for (const sender of this.senders()) {
      const active = sender.activeSession()
      if (active !== undefined && active.epoch < epoch) invalidated += 1
      sender.updateEpoch(epoch)
    }
    return invalidated
  }

  status(): SenderStatus[] {
    return this.senders().map((sender) => ({
      replicaId: sender.replicaId,
      state: sender.state,
      epoch: sender.epoch,
      endpointVersion: sender.endpoint.version,
      sessionId: sender.activeSession()?.id,
      sessionKind: sender.activeSession()?.kind,
    }))
  }

  inSyncCount(): number {
    return this.senders().filter((sender) => sender.state === 'in_sync').length
  }

  #takeSessionId(sessionEpoch: Epoch): SessionId {
    this.#sessionCounter += 1
    return SessionId.of(this.sessionScope, sessionEpoch, this.#sessionCounter)
  }
}
