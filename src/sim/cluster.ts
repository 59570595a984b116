/**
 * The deterministic cluster simulator: a harness that wires the engine's
 * protocol modules (`src/replication/`: commit tracker, replica side,
 * promotion policy, recovery driver, sessions and executors) to simulated
 * nodes, network, disks and a coordinator, with integer ticks. The protocol
 * decides; the harness carries messages, timers and disk writes. One tick:
 *
 *   1. deliver due messages, then fire due timers (`ordered`), or the same
 *      events permuted by the seeded PRNG with per-link FIFO (`shuffled`);
 *   2. the primary group-commits (fsyncs its WAL);
 *   3. the commit point advances over the contiguous prefix the durability
 *      mode allows, and the coordinator acknowledges it;
 *   4. nodes heartbeat the coordinator; the coordinator promotes an eligible
 *      candidate once the primary's lease is gone;
 *   5. the primary's recovery driver steps executors and starts sessions;
 *   6. the checker verifies every invariant (see `checker.ts`).
 *
 * No clock, no randomness beyond the seeded PRNG, no I/O. Test-only planted
 * bugs (`plantedBugs`) exist so tests can show the checker catches them.
 */
import { invariant, validationError } from '../domain/index.ts'
import {
  PrimaryProtocol,
  noFaults,
  Epoch,
  AssignmentStore,
  Coordinator,
  PrimaryLease,
  validateLeaseTerms,
  acceptPromotion,
  decideBarrier,
  decideEpochAdoption,
  decidePrimaryTakeover,
  fenceEpoch,
  learnCommitted,
  lineageSafeLsn,
  matchLog,
  ineligibility,
  Lsn,
  RecoveryLog,
  ReplicaId,
  Tick,
  formatRecoveryEvent,
  validateDurability,
  decidePromotion,
  decideAddMember,
  decideRemoveMember,
  learnersCaughtUp,
  promoteLearners,
  votersOf,
  roleOf,
} from '../replication/index.ts'
import type {
  ControlPlane,
  ControlPlaneOptions,
  BaseTransferReport,
  CatchUpBudget,
  ConnectReport,
  DurabilityMode,
  Endpoint,
  DriverOptions,
  DriverReady,
  Ineligibility,
  LeaseTerms,
  LearnerReport,
  Membership,
  PinOwner,
  PinResult,
  ProtocolFaults,
  PromotionDecision,
  PromotionInput,
  RecoveryEvent,
  RetainedHistory,
  Sender,
  SessionId,
  SessionTicket,
  TransferReport,
  TruncateReport,
} from '../replication/index.ts'
import { auditCommitDurability, checkCluster, type Violation } from './checker.ts'
import { EventQueue, coordinatorId, type EventOrder, type Message, type NodeId, type Timer } from './events.ts'
import { SimNode, type Image, type WalEntry } from './node.ts'
import { Prng } from './prng.ts'
import { ReferenceModel } from './reference.ts'
import { SimLedger, type LedgerOptions } from './ledger-state.ts'

export type { DurabilityMode }

/**
 * Test-only defects, off by default. Each one breaks a safety rule on purpose
 * so a test can show that randomized runs and the checker catch it.
 */
export interface PlantedBugs {
  /** The coordinator promotes any running node, ignoring epoch, state and committed prefix. */
  readonly promoteIgnoresEligibility?: boolean
  /** A replica appends an entry past a hole in its WAL and acknowledges it (a non-contiguous ack). */
  readonly ackNonContiguous?: boolean
  /**
   * The coordinator promotes on ONE member's suspicion of the primary (not
   * a quorum's): a replica cut off from a primary that still commits with
   * the others (a one-sided partition) causes an epoch change.
   */
  readonly promoteOnOneSuspicion?: boolean
}

export interface ClusterOptions {
  readonly seed: number
  readonly nodeCount: number
  readonly durability: DurabilityMode
  readonly order: EventOrder
  readonly barrierTimeoutTicks: number
  readonly barrierRetriesMax: number
  readonly catchUpBudget: CatchUpBudget
  readonly catchUpTimeoutTicks: number
  readonly reservationTimeoutTicks: number
  readonly rebuildStallTicks: number
  readonly leaseTimeoutTicks: number
  /** A heartbeat older than this says nothing to the coordinator about a node now. */
  readonly reportFreshTicks: number
  readonly recoveryRetryTicks: number
  readonly chunkEntriesMax: number
  readonly trace: boolean
  readonly traceEventsMax: number
  readonly plantedBugs: PlantedBugs
  /** Test-only defects planted in the protocol modules themselves (see `src/replication/faults.ts`). */
  readonly faults: ProtocolFaults
  /** The network model: every message may be lost, delayed or duplicated (all zero: every message arrives once, on time). */
  readonly network: NetworkModel
  /** The storage model: slow or failing fsync, long base transfers, bounded pins (all zero: instant, reliable, unbounded). */
  readonly storage: StorageModel
  /** Connects go over the simulated network (a handshake and its reply) instead of answering in the call. */
  readonly handshakeOverNetwork: boolean
  /**
   * A replica installs a base image as the real one does: it closes its
   * store, installs and reopens on the image, down for `replicaReopenTicks`
   * ticks (the connection ends; the transfer reports `reopening`). 0: the
   * image is installed under a live connection.
   */
  readonly replicaReopenTicks: number
  /**
   * Leased primaries (`src/replication/lease.ts`): the primary commits only
   * while the lease the coordinator granted on its heartbeats holds, and the
   * coordinator promotes only once that lease has lapsed, so a primary cut
   * off from the coordinator keeps running, deposed, until it steps down.
   * Undefined: the coordinator sees directly whether the primary runs.
   */
  readonly primaryLease: LeaseTerms | undefined
  /**
   * Failure detection by suspicion (leased clusters only): a replica not
   * connected to its epoch's primary (the primary down, or the link from it
   * down) for more than this many ticks says so in its heartbeats, and the
   * coordinator promotes once a quorum of the other members suspects the
   * primary (`ControlPlane.primarySuspected`), without waiting for the lease:
   * the old primary may still hold it, and only the fence on its
   * acknowledgements (the coordinator's compare-and-swap) keeps it from
   * answering. Undefined: detection by the lease alone.
   */
  readonly suspectAfterTicks: number | undefined
  /**
   * The ledger runs in the simulator (`ledger-state.ts`): every node applies
   * its committed entries through the real FSM and the ledger invariants are
   * checked every tick. Undefined: entries are abstract values only.
   */
  readonly ledger: LedgerOptions | undefined
  /**
   * Membership changes (`src/replication/membership.ts`): the versioned
   * assignment names the voters and the learners. The last node starts as a
   * spare (not a member) when the voters left satisfy the durability mode;
   * `changeMembership` adds a node as a learner or removes a member (the
   * pure rules decide, the acting coordinator writes the new assignment by
   * compare-and-swap, a new epoch); the coordinator makes a learner a voter
   * once it caught up; the primary's commit tracker counts the voters only;
   * promotion picks only voters. False: every node votes, always.
   */
  readonly membership: boolean
  /**
   * The coordinator's pass that makes caught-up learners voters runs every
   * this many ticks (its loop period), so a learner may sit in sync, still a
   * learner, for a while: the window in which counting its acks would matter.
   */
  readonly learnerPassTicks: number
}

export interface StorageModel {
  /** Per mille of replica fsyncs (on a barrier) that take 1..`slowFsyncTicksMax` extra ticks; a crash meanwhile loses them. */
  readonly slowFsyncPermille: number
  readonly slowFsyncTicksMax: number
  /** Per mille of fsyncs (a replica's on a barrier, the primary's group commit) that fail: the node crashes (its volatile tail is gone). */
  readonly failedFsyncPermille: number
  /** Per cent of base transfers (snapshot or full base) that take 2..`slowTransferTicksMax` ticks and are polled until done or interrupted. */
  readonly slowTransferPercent: number
  readonly slowTransferTicksMax: number
  /** Most pins the primary's storage holds at once; a pin beyond it is refused (`pin_limit`). 0: unbounded. */
  readonly pinsMax: number
}

export const healthyStorage: StorageModel = Object.freeze({
  slowFsyncPermille: 0,
  slowFsyncTicksMax: 0,
  failedFsyncPermille: 0,
  slowTransferPercent: 0,
  slowTransferTicksMax: 0,
  pinsMax: 0,
})

export interface NetworkModel {
  /** Extra delay, 0..max ticks, drawn per message (reorders messages on a link). */
  readonly delayTicksMax: number
  readonly lossPercent: number
  readonly duplicatePercent: number
}

export const reliableNetwork: NetworkModel = Object.freeze({ delayTicksMax: 0, lossPercent: 0, duplicatePercent: 0 })

export const clusterDefaults: Omit<ClusterOptions, 'seed'> = {
  nodeCount: 3,
  durability: 'sync_quorum',
  order: 'ordered',
  barrierTimeoutTicks: 4,
  barrierRetriesMax: 3,
  catchUpBudget: { durationTicksMax: 40, entriesMax: 0, progressDeadlineTicks: 8 },
  catchUpTimeoutTicks: 50,
  reservationTimeoutTicks: 60,
  rebuildStallTicks: 10,
  leaseTimeoutTicks: 3,
  reportFreshTicks: 2,
  recoveryRetryTicks: 2,
  chunkEntriesMax: 8,
  trace: false,
  traceEventsMax: 200_000,
  plantedBugs: {},
  faults: noFaults,
  network: reliableNetwork,
  storage: healthyStorage,
  handshakeOverNetwork: false,
  replicaReopenTicks: 2,
  primaryLease: undefined,
  suspectAfterTicks: undefined,
  ledger: undefined,
  membership: false,
  learnerPassTicks: 1,
}

export const nodeCountMax = 9

export type TraceKind =
  | 'action'
  | 'deliver'
  | 'reject'
  | 'timer'
  | 'timeout_ignored'
  | 'commit'
  | 'promote'
  | 'promotion_blocked'
  | 'coordinator'
  | 'recovery'
  | 'engine'
  | 'lease'
  | 'membership'
  | 'violation'

export interface TraceEvent {
  readonly tick: Tick
  readonly kind: TraceKind
  readonly text: string
}

export function formatTraceEvent(event: TraceEvent): string {
  return `t=${event.tick} ${event.kind} ${event.text}`
}

interface PinRecord {
  readonly owner: PinOwner
  readonly kind: 'wal' | 'snapshot' | 'full_base'
  readonly lsn: Lsn
  readonly image: Image | undefined
}

/**
 * The primary's in-memory state, lost when the primary crashes: the engine's
 * `PrimaryProtocol` plus what the simulated adapters keep (pins, the last
 * stream request per replica).
 */
export class PrimaryRuntime extends PrimaryProtocol {
  readonly pins = new Map<number, PinRecord>()
  readonly streamed = new Map<ReplicaId, { fromLsn: Lsn; toLsn: Lsn; tick: Tick }>()
  /** The newest endpoint version this primary has addressed each member at (the checker's memory). */
  readonly endpointVersionsUsed = new Map<ReplicaId, number>()
  /** Handshakes sent, by replica: the session's, and the replica's answer once it arrived. */
  readonly handshakes = new Map<ReplicaId, { sessionId: SessionId; flushedLsn: Lsn | undefined }>()
  /** Base transfers under way (at most one per replica: the one of its current session). */
  readonly transfers = new Map<ReplicaId, { sessionId: SessionId; doneAt: Tick }>()
  /** Truncations asked of replicas over the network: the session's, when last sent, and the replica's answer once it arrived. */
  readonly truncations = new Map<ReplicaId, { sessionId: SessionId; sentAt: Tick; truncatedToLsn: Lsn | undefined }>()
  /** The lease this primary may acknowledge under (leased clusters only). */
  lease: PrimaryLease | undefined

  get nodeId(): NodeId {
    return this.primaryId
  }
}

export interface ClusterStats {
  writes: number
  promotions: number
  promotionsBlocked: number
  crashes: number
  restarts: number
  catchUpsCompleted: number
  rebuildsCompleted: number
  recoveriesFailed: number
  messagesDelivered: number
  messagesRejected: number
  /** Recovery paths taken (the seed sets must exercise each; see `test/sim/paths.test.ts`). */
  budgetViolations: number
  catchUpTimeouts: number
  reservationTimeouts: number
  pinFailures: number
  rebuildStalls: number
  staleAssignments: number
  fsyncFailures: number
  transfersInterrupted: number
  /** Handshakes over the network never answered in time (lost request or reply). */
  connectTimeouts: number
  /** Primaries replaced while still running (cut off from the coordinator), and client writes they took meanwhile. */
  primariesDeposed: number
  writesToDeposed: number
  /** Commits a primary held back because its lease did not hold. */
  commitsWithoutLease: number
  /** Heartbeats carrying a suspicion, promotions a quorum of suspicions caused, and commits of deposed primaries (lease still held) the fence refused. */
  suspicions: number
  promotionsOnSuspicion: number
  deposedCommitsFenced: number
  /** Coordinator processes restarted, and assignment writes refused because another process wrote first (compare-and-swap lost). */
  coordinatorRestarts: number
  assignmentWritesRefused: number
  /** Truncations a replica answered over the network (ticks after the request), and those never answered in time. */
  truncationsAnswered: number
  truncateTimeouts: number
  /** Replicas that reopened on an installed image, and rebuilds the next handshake carried on after it. */
  reopens: number
  rebuildsResumedAfterReopen: number
  /** Membership changes written (a node added as a learner, a member removed), refused by the rules, and learners made voters. */
  membershipChanges: number
  membershipChangesRefused: number
  learnersPromoted: number
}

/** Every counter at zero: a run's start, and the sum over no runs. */
export function emptyClusterStats(): ClusterStats {
  return {
    writes: 0,
    promotions: 0,
    promotionsBlocked: 0,
    reopens: 0,
    rebuildsResumedAfterReopen: 0,
    crashes: 0,
    restarts: 0,
    catchUpsCompleted: 0,
    rebuildsCompleted: 0,
    recoveriesFailed: 0,
    messagesDelivered: 0,
    messagesRejected: 0,
    budgetViolations: 0,
    catchUpTimeouts: 0,
    reservationTimeouts: 0,
    pinFailures: 0,
    rebuildStalls: 0,
    staleAssignments: 0,
    fsyncFailures: 0,
    transfersInterrupted: 0,
    connectTimeouts: 0,
    primariesDeposed: 0,
    writesToDeposed: 0,
    commitsWithoutLease: 0,
    suspicions: 0,
    promotionsOnSuspicion: 0,
    deposedCommitsFenced: 0,
    coordinatorRestarts: 0,
    assignmentWritesRefused: 0,
    truncationsAnswered: 0,
    truncateTimeouts: 0,
    membershipChanges: 0,
    membershipChangesRefused: 0,
    learnersPromoted: 0,
  }
}

export class Cluster {
  readonly options: ClusterOptions
  readonly prng: Prng
  readonly nodes = new Map<NodeId, SimNode>()
  readonly nodeIds: readonly NodeId[]
  readonly queue = new EventQueue()
  readonly reference = new ReferenceModel()
  readonly violations: Violation[] = []
  /** The versioned assignment (etcd's key): it outlives every coordinator process. */
  readonly assignments: AssignmentStore
  readonly stats: ClusterStats = emptyClusterStats()
  /** The ledger every node applies (when `options.ledger` is set). */
  readonly ledger: SimLedger | undefined
  readonly #trace: TraceEvent[] | undefined
  readonly #linksDown = new Set<string>()
  /**
   * The replica side's memory of its current recovery session (in memory,
   * lost in a crash): set by the handshake, it makes a truncation
   * idempotent per session and refuses one of an older session.
   */
  readonly #replicaSessions = new Map<NodeId, { sessionId: SessionId; truncatedToLsn: Lsn | undefined }>()
  /** Replicas closed to reopen on an installed image, and the tick they are back. */
  readonly #reopening = new Map<NodeId, Tick>()
  /** Draws for the network model only, so turning it on leaves the action sequence of a seed alone. */
  readonly #networkPrng: Prng
  /** Draws for the storage model only, for the same reason. */
  readonly #storagePrng: Prng
  #network: NetworkModel
  #storage: StorageModel
  #now: Tick = Tick.zero
  #runtime: PrimaryRuntime | undefined
  /** Primaries the coordinator replaced while they still ran; each steps down once it learns the newer epoch or crashes. */
  readonly #deposed: PrimaryRuntime[] = []
  /** When each replica last had a connection from its epoch's primary (or adopted that epoch): suspicions. */
  readonly #primaryContact = new Map<NodeId, { epoch: Epoch; at: Tick }>()
  /** The last tick each replica suspected the primary of an epoch (the checker's view of whether a suspicion was true). */
  readonly #suspectedAt = new Map<NodeId, { epoch: Epoch; at: Tick }>()
  readonly #coordinatorOptions: ControlPlaneOptions
  /** The acting coordinator process. */
  #coordinator: Coordinator
  /** Replaced coordinator processes that have not noticed yet: they act on their views until their end tick. */
  #staleCoordinators: Array<{ readonly process: Coordinator; readonly until: Tick }> = []
  #incarnation = 0
  #nextBarrierId = 1
  #nextPinId = 1
  #traceDropped = 0
  /** Highest committed LSN ever acknowledged, to detect regressions. */
  committedHighWater: Lsn = Lsn.zero

  constructor(options: Partial<ClusterOptions> & { readonly seed: number }) {
    this.options = { ...clusterDefaults, ...options }
    const { nodeCount, durability } = this.options
    if (!Number.isSafeInteger(nodeCount) || nodeCount < 1 || nodeCount > nodeCountMax) {
      throw validationError(`nodeCount must be in [1, ${nodeCountMax}]`)
    }
    const spare = this.options.membership && nodeCount >= 2 && durabilityAccepts(durability, nodeCount - 1)
    validateDurability(durability, spare ? nodeCount - 1 : nodeCount)
    if (!Number.isSafeInteger(this.options.learnerPassTicks) || this.options.learnerPassTicks < 1) throw validationError('learnerPassTicks must be a positive integer')
    if (this.options.primaryLease !== undefined) validateLeaseTerms(this.options.primaryLease)
    if (this.options.suspectAfterTicks !== undefined && this.options.primaryLease === undefined) {
      throw validationError('suspicions need leased primaries: without a lease the coordinator sees directly whether the primary runs')
    }
    this.prng = new Prng(this.options.seed)
    this.#networkPrng = new Prng(this.options.seed ^ 0x6e6574)
    this.#network = this.options.network
    this.#storagePrng = new Prng(this.options.seed ^ 0x646973)
    this.#storage = this.options.storage
    this.#trace = this.options.trace ? [] : undefined
    const ids: NodeId[] = []
    for (let index = 1; index <= nodeCount; index += 1) {
      const id = ReplicaId.of(`n${index}`)
      ids.push(id)
      const endpoint = { dataAddress: `${id}:data:v1`, controlAddress: `${id}:ctrl:v1`, version: 1 }
      this.nodes.set(id, new SimNode(id, Epoch.first, endpoint))
    }
    this.nodeIds = ids
    this.ledger = this.options.ledger === undefined ? undefined : new SimLedger(this.nodes, () => this.#now, this.options.ledger)
    this.#coordinatorOptions = {
      members: ids.map((id) => ({ replicaId: id, endpoint: this.node(id).endpoint })),
      log: new RecoveryLog({ now: () => this.#now }),
      leaseTicks: this.options.leaseTimeoutTicks,
      reportFreshTicks: this.options.reportFreshTicks,
      assignmentResendTicks: 2,
    }
    const first = ReplicaId.of('n1')
    const membership: Membership | undefined = this.options.membership
      ? { primaryId: first, replicaIds: ids.filter((id, index) => id !== first && !(spare && index === ids.length - 1)), learnerIds: [] }
      : undefined
    this.assignments = new AssignmentStore({ epoch: Epoch.first, primaryId: first, committedLsn: Lsn.zero, lineageResets: [], ...(membership === undefined ? {} : { membership }) })
    this.#coordinator = this.#startCoordinator()
    this.#coordinatorOptions.log.subscribe((event) => {
      if (event.kind === 'assignment_write_refused') this.stats.assignmentWritesRefused += 1
    })
    if (this.#trace !== undefined) this.#coordinatorOptions.log.subscribe((event) => this.#log('coordinator', formatRecoveryEvent(event)))
    this.#becomePrimary(this.node(ReplicaId.of('n1')), Epoch.first, Lsn.zero)
  }

  // ------------------------------------------------------------------ views

  get now(): Tick {
    return this.#now
  }

  get runtime(): PrimaryRuntime | undefined {
    return this.#runtime
  }

  /** The acting coordinator process's view (the control plane it decides with). */
  get coordinator(): ControlPlane {
    return this.#coordinator.plane
  }

  /** Coordinator processes replaced by a restart that still act, unaware, on their old views. */
  staleCoordinators(): readonly Coordinator[] {
    return this.#staleCoordinators.map((stale) => stale.process)
  }

  node(id: NodeId): SimNode {
    const node = this.nodes.get(id)
    invariant(node !== undefined, () => `unknown node ${id}`)
    return node
  }

  primary(): SimNode | undefined {
    return this.#runtime === undefined ? undefined : this.node(this.#runtime.nodeId)
  }

  /** Replaced primaries still running on their old epoch (leased clusters only). */
  deposed(): readonly PrimaryRuntime[] {
    return this.#deposed
  }

  sender(id: NodeId): Sender | undefined {
    return this.#runtime?.registry.sender(id)
  }

  trace(): readonly TraceEvent[] {
    return this.#trace ?? []
  }

  traceLines(): string[] {
    const lines = this.trace().map(formatTraceEvent)
    if (this.#traceDropped > 0) lines.unshift(`(${this.#traceDropped} earlier trace events dropped)`)
    return lines
  }

  isLinkDown(from: NodeId, to: NodeId): boolean {
    return this.#linksDown.has(`${from}>${to}`)
  }

  linksDown(): string[] {
    return [...this.#linksDown]
  }

  // ---------------------------------------------------------------- actions

  /** A client write on the primary; returns its LSN, or undefined when there is no primary. */
  write(): Lsn | undefined {
    const runtime = this.#runtime
    if (runtime === undefined) {
      this.#log('action', 'write rejected reason=no_primary')
      return undefined
    }
    const primary = this.node(runtime.nodeId)
    const value = this.prng.int(1_000_000_000)
    const entry = primary.appendLocal(runtime.epoch, value)
    this.reference.recordWrite(runtime.epoch, entry.lsn, value)
    this.stats.writes += 1
    this.#log('action', `write lsn=${entry.lsn} epoch=${entry.epoch} primary=${primary.id}`)
    for (const sender of runtime.liveShipTargets()) this.#ship(runtime, sender, Lsn.after(entry.lsn, -1), entry.lsn, true)
    return entry.lsn
  }

  /**
   * A client still pointed at a deposed primary writes there: the entry is
   * appended and shipped at the old epoch, and must never be acknowledged.
   * Returns its LSN, or undefined when no deposed primary runs.
   */
  writeToDeposed(): Lsn | undefined {
    const runtime = this.#deposed[0]
    if (runtime === undefined) return undefined
    const node = this.node(runtime.nodeId)
    const value = this.prng.int(1_000_000_000)
    const entry = node.appendLocal(runtime.epoch, value)
    this.reference.recordWrite(runtime.epoch, entry.lsn, value)
    this.stats.writesToDeposed += 1
    this.#log('action', `write lsn=${entry.lsn} epoch=${entry.epoch} deposed_primary=${node.id}`)
    for (const sender of runtime.liveShipTargets()) this.#ship(runtime, sender, Lsn.after(entry.lsn, -1), entry.lsn, true)
    return entry.lsn
  }

  /** Cuts a node off from the coordinator (both ways unless `bothWays` is false): a live primary there keeps running. */
  isolateFromCoordinator(id: NodeId, bothWays = true): void {
    this.linkDown(id, coordinatorId, bothWays)
  }

  /**
   * The coordinator process restarts: the new one knows only what it reads
   * from the versioned assignment (and waits a whole lease before promoting
   * over a primary it has not heard). The old one may not notice for
   * `staleTicks` ticks: it keeps receiving heartbeats and acting on its
   * view, and each write either of them makes is a compare-and-swap, so the
   * one acting on an outdated revision is refused and re-reads.
   */
  restartCoordinator(staleTicks = 0): void {
    const previous = this.#coordinator
    this.#coordinator = this.#startCoordinator()
    this.stats.coordinatorRestarts += 1
    if (staleTicks > 0) this.#staleCoordinators.push({ process: previous, until: Tick.after(this.#now, staleTicks) })
    this.#log('action', `coordinator restart revision=${this.#coordinator.revision} epoch=${this.coordinator.epoch}${staleTicks > 0 ? ` old process acts for ${staleTicks} more ticks` : ''}`)
  }

  crash(id: NodeId): void {
    const node = this.node(id)
    if (!node.running) return
    node.crash()
    this.#replicaSessions.delete(id)
    this.stats.crashes += 1
    this.#log('action', `crash ${id} durable=${node.durableLsn}`)
    if (this.#runtime?.nodeId === id) {
      this.#runtime = undefined
      this.#log('action', `primary ${id} lost its in-memory state (sessions, pins, acks)`)
    }
    this.#stepDown((runtime) => runtime.nodeId === id, 'crashed')
  }

  restart(id: NodeId, options: { changeEndpoint?: boolean } = {}): void {
    const node = this.node(id)
    if (node.running) return
    node.restart(options.changeEndpoint === true ? this.#nextEndpoint(node) : undefined)
    this.stats.restarts += 1
    this.#log('action', `restart ${id} endpoint=${node.endpoint.dataAddress} v${node.endpoint.version} epoch=${node.epoch}`)
  }

  /** A running replica moves to a new address (same identity). */
  moveEndpoint(id: NodeId): void {
    const node = this.node(id)
    node.endpoint = this.#nextEndpoint(node)
    this.#log('action', `move ${id} endpoint=${node.endpoint.dataAddress} v${node.endpoint.version}`)
  }

  linkDown(from: NodeId, to: NodeId, bothWays = true): void {
    this.#linksDown.add(`${from}>${to}`)
    if (bothWays) this.#linksDown.add(`${to}>${from}`)
    this.#log('action', `link down ${from}${bothWays ? '<>' : '>'}${to}`)
  }

  linkUp(from: NodeId, to: NodeId, bothWays = true): void {
    this.#linksDown.delete(`${from}>${to}`)
    if (bothWays) this.#linksDown.delete(`${to}>${from}`)
    this.#log('action', `link up ${from}${bothWays ? '<>' : '>'}${to}`)
  }

  /** The network stops losing, delaying and duplicating messages (those already in flight still arrive as drawn). */
  healNetwork(): void {
    this.#network = reliableNetwork
    this.#log('action', 'network healed')
  }

  /**
   * The storage model stops: fsyncs neither fail nor stall, transfers are
   * immediate, pins unbounded (transfers and fsyncs already under way finish
   * as drawn). With pins scarce, recoveries serialise, and one chunk per
   * round trip makes a replica far behind outlast the liveness bound.
   */
  healStorage(): void {
    this.#storage = healthyStorage
    this.#log('action', 'storage healed')
  }

  /** Takes a checkpoint at the highest LSN the node knows is committed and holds. */
  checkpoint(id: NodeId): void {
    const node = this.node(id)
    if (!node.running) return
    const lsn = Lsn.min(node.durableLsn, node.knownCommittedLsn)
    if (node.takeCheckpoint(lsn)) this.#log('action', `checkpoint ${id} lsn=${lsn}`)
  }

  distrustCheckpoint(id: NodeId): void {
    this.node(id).distrustCheckpoint()
    this.#log('action', `distrust checkpoint ${id} lsn=${this.node(id).checkpoint.lsn}`)
  }

  /** Recycles WAL up to the checkpoint, held back by the primary's WAL pins. */
  recycle(id: NodeId): void {
    const node = this.node(id)
    if (!node.running) return
    let target = node.checkpoint.lsn
    if (this.#runtime?.nodeId === id) {
      for (const pin of this.#runtime.pins.values()) if (pin.kind === 'wal') target = Lsn.min(target, pin.lsn)
    }
    if (node.recycle(target)) this.#log('action', `recycle ${id} tail=${node.tailLsn}`)
  }

  /** The control plane re-issues the assignment at a new epoch to the same primary. */
  bumpEpoch(): void {
    const runtime = this.#runtime
    if (runtime === undefined) return
    if (this.coordinator.primaryId !== runtime.nodeId) return
    const epoch = this.#coordinator.bumpEpoch(this.#now)
    if (epoch === undefined) {
      this.#log('action', `epoch bump refused reason=revision_mismatch`)
      return
    }
    this.#log('action', `epoch bump to ${epoch} primary=${runtime.nodeId}`)
    this.#moveToEpoch(runtime, epoch)
  }

  /** The serving primary re-assigned at `epoch` (just written): what it held beyond its commit goes, and the new epoch's voters count. */
  #moveToEpoch(runtime: PrimaryRuntime, epoch: Epoch): void {
    const primary = this.node(runtime.nodeId)
    primary.epoch = epoch
    this.#truncatePrimaryUncommitted(primary, runtime.commit.committedLsn)
    runtime.streamed.clear()
    // The lease was granted for the old epoch: none until the coordinator answers at the new one.
    if (this.options.primaryLease !== undefined) runtime.lease = new PrimaryLease(this.options.primaryLease, epoch)
    runtime.changeEpoch(epoch, this.#now, this.#replicaAssignments(runtime), this.#votingReplicaIds(runtime.nodeId))
    this.#sendAssignments(this.#coordinator, runtime.nodeId)
  }

  /**
   * The voters besides `primaryId` the stored assignment names, as the
   * primary's commit tracker counts them (undefined without membership: all).
   * The planted `learnerCountedAsVoter` counts the learners too.
   */
  #votingReplicaIds(primaryId: NodeId): readonly ReplicaId[] | undefined {
    const membership = this.assignments.read().record.membership
    if (membership === undefined) return undefined
    return votersOf(membership, this.options.faults).filter((id) => id !== primaryId)
  }

  /** The stored assignment's membership (undefined: every node votes). */
  membership(): Membership | undefined {
    return this.assignments.read().record.membership
  }

  /**
   * An operator asks to add `nodeId` (it joins as a learner) or remove it.
   * The rules of `membership.ts` decide on the acting coordinator's view;
   * the change is written by compare-and-swap as a new assignment (the same
   * primary at the next epoch), and the serving primary moves to it. Only
   * while the primary the view names serves: a change is fenced on its
   * commit mark, which a primary that is gone cannot give. Returns whether
   * it was written.
   */
  changeMembership(action: 'add' | 'remove', nodeId: NodeId): boolean {
    const process = this.#coordinator
    const membership = process.membership
    const runtime = this.#runtime
    if (membership === undefined || runtime === undefined || process.plane.primaryId !== runtime.nodeId || runtime.epoch !== process.plane.epoch) return false
    const change = action === 'add' ? decideAddMember(membership, nodeId) : decideRemoveMember(membership, nodeId, this.options.durability)
    if (!change.ok) {
      this.stats.membershipChangesRefused += 1
      this.#log('membership', `${action} ${nodeId} refused reason=${change.reason}`)
      return false
    }
    // The node joins with its registration's address (`tally cluster add` reads it from the node's lease key): a
    // restarted coordinator process re-read no addresses, and a re-added member's sender is new, with no memory of
    // the newer address the primary used before the removal.
    if (action === 'add') {
      const known = process.plane.knownEndpoints.get(nodeId)
      const registered = this.node(nodeId).endpoint
      if (known === undefined || known.version < registered.version) process.plane.knownEndpoints.set(nodeId, registered)
    }
    return this.#writeMembership(process, runtime, change.membership, `${action} ${nodeId}`)
  }

  #writeMembership(process: Coordinator, runtime: PrimaryRuntime, next: Membership, what: string): boolean {
    const epoch = process.changeMembership(next, this.#now)
    if (epoch === undefined) {
      this.#log('membership', `${what} refused reason=revision_mismatch`)
      return false
    }
    this.stats.membershipChanges += 1
    this.#log('membership', `${what} epoch=${epoch} voters=${[next.primaryId, ...next.replicaIds].join(',')} learners=${next.learnerIds.join(',') || '-'}`)
    this.#moveToEpoch(runtime, epoch)
    return true
  }

  /**
   * The acting coordinator makes the learners that caught up voters
   * (`learnersCaughtUp`: a report at the current epoch holding the
   * acknowledged commit), while the primary its view names serves.
   */
  #promoteLearners(): void {
    const process = this.#coordinator
    const membership = process.membership
    const runtime = this.#runtime
    if (membership === undefined || membership.learnerIds.length === 0) return
    if (this.#now % this.options.learnerPassTicks !== 0) return
    if (runtime === undefined || process.plane.primaryId !== runtime.nodeId || runtime.epoch !== process.plane.epoch) return
    const reports = new Map<ReplicaId, LearnerReport>()
    for (const [replicaId, report] of process.plane.promotionInput(this.#now, true).reports) reports.set(replicaId, report)
    const caughtUp = learnersCaughtUp(membership, { epoch: process.plane.epoch, committedLsn: process.plane.committedLsn, reports })
    if (caughtUp.length === 0) return
    if (this.#writeMembership(process, runtime, promoteLearners(membership, caughtUp), `learners ${caughtUp.join(',')} caught up`)) {
      this.stats.learnersPromoted += caughtUp.length
    }
  }

  /** Test hook: put an arbitrary message on the wire (late or stale traffic). */
  inject(message: Message, at: Tick = Tick.after(this.#now, 1)): void {
    invariant(at > this.#now, 'an injected message must be due in the future')
    this.#log('action', `inject ${describe(message)} at=${at}`)
    this.queue.sendAt(at, message)
  }

  /** Advances one tick (see the module comment for the order). */
  tick(): void {
    this.#now = Tick.after(this.#now, 1)
    this.#staleCoordinators = this.#staleCoordinators.filter((stale) => stale.until >= this.#now)
    this.#reopenDue()
    for (const event of this.queue.take(this.#now, this.options.order, this.prng)) {
      if (event.type === 'message') this.#deliver(event.message)
      else this.#fire(event.timer)
    }
    this.#groupCommit()
    this.#refreshCommit()
    this.#serveDeposed()
    this.#heartbeat()
    this.#coordinate()
    this.#promoteLearners()
    this.#driveRecovery()
    this.#reportStates()
    this.#sweepBarriers()
    for (const violation of checkCluster(this)) this.recordViolation(violation)
    for (const violation of this.ledger?.step() ?? []) this.recordViolation(violation)
  }

  /** A replica closes its store to reopen on an installed image (durable already: nothing is lost). */
  #closeToReopen(id: NodeId): void {
    const node = this.node(id)
    invariant(node.durableLsn === node.headLsn, () => `${id}: closed to reopen with a volatile tail`)
    node.crash()
    this.#replicaSessions.delete(id)
    this.stats.reopens += 1
  }

  /** Replicas whose reopen on an installed image is over come back, same endpoint (a restart in place). */
  #reopenDue(): void {
    for (const [id, at] of this.#reopening) {
      if (at > this.#now) continue
      this.#reopening.delete(id)
      if (this.node(id).running) continue
      this.#log('action', `reopen ${id} on its installed image`)
      this.restart(id)
    }
  }

  run(ticks: number): void {
    for (let index = 0; index < ticks; index += 1) this.tick()
  }

  recordViolation(violation: Violation): void {
    this.violations.push(violation)
    this.#log('violation', `${violation.kind} ${violation.detail}`)
  }

  // ---------------------------------------------------------------- network

  #deliver(message: Message): void {
    if (message.to === coordinatorId) {
      if (this.isLinkDown(message.from, coordinatorId)) return this.#reject(message, 'link_down')
      this.#coordinatorReceive(message)
      return
    }
    const node = this.node(message.to)
    if (!node.running) return this.#reject(message, 'node_down')
    if (message.from === coordinatorId && this.isLinkDown(coordinatorId, node.id)) return this.#reject(message, 'link_down')
    if (message.kind === 'lease_grant') return this.#receiveLeaseGrant(node, message)
    if (message.kind === 'assignment') return this.#adoptAssignment(node, message)
    if (message.kind === 'membership') return this.#receiveMembership(message)
    if (message.kind === 'ack' || message.kind === 'handshake_reply' || message.kind === 'truncate_reply') {
      const runtime = this.#runtime
      if (runtime === undefined || runtime.nodeId !== message.to) return this.#reject(message, 'not_primary')
      if (fenceEpoch(runtime.epoch, message.epoch, this.options.faults) !== 'current') return this.#reject(message, 'epoch_mismatch')
    } else if (fenceEpoch(node.epoch, message.epoch, this.options.faults) !== 'current') {
      return this.#reject(message, 'epoch_mismatch')
    }
    if (this.isLinkDown(message.from, message.to)) return this.#reject(message, 'link_down')
    if ((message.kind === 'ship' || message.kind === 'barrier' || message.kind === 'handshake' || message.kind === 'truncate') && message.endpointVersion !== node.endpoint.version) {
      return this.#reject(message, 'stale_endpoint')
    }
    switch (message.kind) {
      case 'ship':
        return this.#receiveShip(node, message)
      case 'barrier':
        return this.#receiveBarrier(node, message)
      case 'ack':
        return this.#receiveAck(message)
      case 'handshake':
        return this.#receiveHandshake(node, message)
      case 'handshake_reply':
        return this.#receiveHandshakeReply(message)
      case 'truncate':
        return this.#receiveTruncate(node, message)
      case 'truncate_reply':
        return this.#receiveTruncateReply(message)
      case 'heartbeat':
        return this.#reject(message, 'misrouted')
      default: {
        const never: never = message
        throw new Error(`unknown message ${String(never)}`)
      }
    }
  }

  /** Puts a message on the simulated network, which may lose, delay or duplicate it. */
  #send(at: Tick, message: Message): void {
    const network = this.#network
    if (network.delayTicksMax === 0 && network.lossPercent === 0 && network.duplicatePercent === 0) return this.queue.sendAt(at, message)
    if (this.#networkPrng.int(100) < network.lossPercent) {
      this.#log('reject', `${describe(message)} reason=lost`)
      return
    }
    this.queue.sendAt(Tick.after(at, this.#networkPrng.int(network.delayTicksMax + 1)), message)
    if (this.#networkPrng.int(100) < network.duplicatePercent) {
      this.queue.sendAt(Tick.after(at, this.#networkPrng.int(network.delayTicksMax + 1)), message)
    }
  }

  #reject(message: Message, reason: string): void {
    this.stats.messagesRejected += 1
    this.#log('reject', `${describe(message)} reason=${reason}`)
  }

  #accept(message: Message, note: string): void {
    this.stats.messagesDelivered += 1
    this.#log('deliver', `${describe(message)}${note === '' ? '' : ` ${note}`}`)
  }

  #receiveShip(node: SimNode, message: Extract<Message, { kind: 'ship' }>): void {
    const result = node.appendShipped(message.entry, this.options.plantedBugs.ackNonContiguous === true)
    if (result === 'appended' || result === 'duplicate') {
      node.knownCommittedLsn = learnCommitted(node, message.committedLsn, message.entry.lsn)
      this.#accept(message, result === 'duplicate' ? 'duplicate' : '')
    } else {
      this.#reject(message, result)
    }
  }

  #receiveBarrier(node: SimNode, message: Extract<Message, { kind: 'barrier' }>): void {
    const decision = decideBarrier(node, { ...message, retriesMax: this.options.barrierRetriesMax })
    if (decision.kind === 'flush_and_ack') {
      if (message.fsyncStarted !== true) {
        const fsync = this.#drawFsync()
        if (fsync === 'failed') return this.#fsyncFailed(node)
        if (fsync === 'slow') {
          // The fsync completes later; a crash before then loses it (the barrier dies with the node).
          this.#log('deliver', `${describe(message)} fsync slow`)
          this.queue.sendAt(Tick.after(this.#now, 1 + this.#storagePrng.int(this.#storage.slowFsyncTicksMax)), { ...message, fsyncStarted: true })
          return
        }
      }
      node.flush()
      node.knownCommittedLsn = decision.knownCommittedLsn
      this.#accept(message, `flushed=${node.durableLsn}`)
      this.#send(Tick.after(this.#now, 1), {
        kind: 'ack',
        from: node.id,
        to: message.from,
        epoch: node.epoch,
        barrierId: message.barrierId,
        durableLsn: node.durableLsn,
      })
      return
    }
    if (decision.kind === 'wait') {
      this.#log('deliver', `${describe(message)} waiting head=${node.headLsn}`)
      this.queue.sendAt(Tick.after(this.#now, 1), { ...message, attempt: decision.attempt })
      return
    }
    this.#reject(message, 'barrier_abandoned')
  }

  /** The replica side of a connect: log matching against the primary's log, a divergent or volatile tail dropped, the flushed LSN answered. */
  #receiveHandshake(node: SimNode, message: Extract<Message, { kind: 'handshake' }>): void {
    this.#replicaSessions.set(node.id, { sessionId: message.sessionId, truncatedToLsn: undefined })
    const flushed = matchLog(node, this.node(message.from), this.options.faults)
    if (node.headLsn > flushed) {
      node.truncate(flushed)
      this.#log('recovery', `${node.id} drops tail above ${flushed} (off the primary's lineage or volatile)`)
    }
    this.#accept(message, `flushed=${flushed}`)
    this.#send(Tick.after(this.#now, 1), { kind: 'handshake_reply', from: node.id, to: message.from, epoch: node.epoch, sessionId: message.sessionId, flushedLsn: flushed })
  }

  #receiveHandshakeReply(message: Extract<Message, { kind: 'handshake_reply' }>): void {
    const runtime = this.#runtime
    invariant(runtime !== undefined, 'handshake reply accepted without a primary')
    const pending = runtime.handshakes.get(message.from)
    if (pending === undefined || pending.sessionId !== message.sessionId || pending.flushedLsn !== undefined) return this.#reject(message, 'session_unknown')
    runtime.handshakes.set(message.from, { sessionId: message.sessionId, flushedLsn: message.flushedLsn })
    this.#accept(message, '')
  }

  /**
   * The replica side of a truncation: only for the session its last
   * handshake was for, and only once (a duplicate is answered again without
   * truncating, since the replica may have taken entries above since).
   */
  #receiveTruncate(node: SimNode, message: Extract<Message, { kind: 'truncate' }>): void {
    const session = this.#replicaSessions.get(node.id)
    if (session === undefined || session.sessionId !== message.sessionId) return this.#reject(message, 'session_unknown')
    if (session.truncatedToLsn === undefined) {
      if (node.headLsn > message.toLsn) {
        node.truncate(message.toLsn)
        this.#log('recovery', `${node.id} drops tail above ${message.toLsn} (replica ahead of the committed LSN)`)
      }
      session.truncatedToLsn = Lsn.min(node.durableLsn, message.toLsn)
    }
    this.#accept(message, `truncated_to=${session.truncatedToLsn}`)
    this.#send(Tick.after(this.#now, 1), {
      kind: 'truncate_reply',
      from: node.id,
      to: message.from,
      epoch: node.epoch,
      sessionId: message.sessionId,
      truncatedToLsn: session.truncatedToLsn,
    })
  }

  #receiveTruncateReply(message: Extract<Message, { kind: 'truncate_reply' }>): void {
    const runtime = this.#runtime
    invariant(runtime !== undefined, 'truncate reply accepted without a primary')
    const pending = runtime.truncations.get(message.from)
    if (pending === undefined || pending.sessionId !== message.sessionId || pending.truncatedToLsn !== undefined) return this.#reject(message, 'session_unknown')
    pending.truncatedToLsn = message.truncatedToLsn
    this.stats.truncationsAnswered += 1
    this.#accept(message, '')
  }

  #receiveAck(message: Extract<Message, { kind: 'ack' }>): void {
    const runtime = this.#runtime
    invariant(runtime !== undefined, 'ack accepted without a primary')
    const verdict = runtime.receiveAck(message)
    if (verdict !== 'accepted') return this.#reject(message, verdict)
    this.#accept(message, `acked=${runtime.ackedLsn(message.from)}`)
  }

  /** Ships (from, to] to a replica, then a barrier for `to` with its timeout. */
  #ship(runtime: PrimaryRuntime, sender: Sender, fromLsn: Lsn, toLsn: Lsn, live: boolean): void {
    if (toLsn <= fromLsn) return
    const primary = this.node(runtime.nodeId)
    for (let lsn = Lsn.after(fromLsn); lsn <= toLsn; lsn = Lsn.after(lsn)) {
      const entry = primary.entry(lsn)
      invariant(entry !== undefined, () => `primary ${primary.id} ships lsn ${lsn} it does not retain (tail ${primary.tailLsn})`)
      this.#send(Tick.after(this.#now, 1), {
        kind: 'ship',
        from: primary.id,
        to: sender.replicaId,
        epoch: runtime.epoch,
        endpointVersion: sender.endpoint.version,
        entry,
        committedLsn: runtime.commit.committedLsn,
      })
    }
    const barrierId = this.#nextBarrierId
    this.#nextBarrierId += 1
    const deliveredAt = Tick.after(this.#now, 2)
    const { timeoutAt } = runtime.barriers.open({ barrierId, replicaId: sender.replicaId, lsn: toLsn, live, deliveredAt })
    this.#send(deliveredAt, {
      kind: 'barrier',
      from: primary.id,
      to: sender.replicaId,
      epoch: runtime.epoch,
      endpointVersion: sender.endpoint.version,
      barrierId,
      lsn: toLsn,
      committedLsn: runtime.commit.committedLsn,
      attempt: 0,
    })
    this.queue.timerAt(timeoutAt, {
      kind: 'barrier_timeout',
      incarnation: runtime.incarnation,
      barrierId,
    })
  }

  // ----------------------------------------------------------------- timers

  #fire(timer: Timer): void {
    const runtime = this.#runtime
    if (runtime === undefined || runtime.incarnation !== timer.incarnation) {
      this.#log('timeout_ignored', `${timer.kind} reason=primary_gone`)
      return
    }
    switch (timer.kind) {
      case 'barrier_timeout': {
        const timeout = runtime.barriers.timedOut(timer.barrierId, this.#now)
        if (timeout.kind === 'ignored') {
          this.#log('timeout_ignored', `barrier_timeout barrier=${timer.barrierId} reason=acked`)
          return
        }
        this.#log('timer', `barrier_timeout barrier=${timer.barrierId} replica=${timeout.replicaId} lsn=${timeout.lsn}`)
        if (timeout.degradeReplica) runtime.registry.sender(timeout.replicaId)?.markDegraded('barrier_timeout')
        return
      }
      case 'catchup_timeout':
      case 'reservation_timeout': {
        const fired = { kind: timer.kind, at: this.#now, replicaId: timer.replicaId, sessionId: timer.sessionId }
        const ready = runtime.driver.timerFired(fired, this.#now)
        if (ready.ignored.length === 0) this.#log('timer', `${timer.kind} replica=${timer.replicaId} session=${timer.sessionId}`)
        this.#applyRecovery(runtime, ready)
        return
      }
      default: {
        const never: never = timer
        throw new Error(`unknown timer ${String(never)}`)
      }
    }
  }

  #sweepBarriers(): void {
    const runtime = this.#runtime
    if (runtime === undefined) return
    runtime.barriers.sweep(this.#now)
  }

  // ----------------------------------------------------------------- commit

  #groupCommit(): void {
    const runtime = this.#runtime
    if (runtime === undefined) return
    const primary = this.node(runtime.nodeId)
    if (primary.headLsn === primary.durableLsn) return
    const fsync = this.#drawFsync()
    if (fsync === 'failed') return this.#fsyncFailed(primary)
    // A slow group commit is still running at the end of this tick; the next one retries.
    if (fsync === 'ok') primary.flush()
  }

  /** One fsync's fate under the storage model. */
  #drawFsync(): 'ok' | 'slow' | 'failed' {
    const storage = this.#storage
    if (storage.failedFsyncPermille === 0 && storage.slowFsyncPermille === 0) return 'ok'
    const roll = this.#storagePrng.int(1000)
    if (roll < storage.failedFsyncPermille) return 'failed'
    return roll < storage.failedFsyncPermille + storage.slowFsyncPermille ? 'slow' : 'ok'
  }

  /** A failed fsync is not retried (what it covered may be lost in the page cache): the node crashes and restarts from its disk. */
  #fsyncFailed(node: SimNode): void {
    this.#log('action', `fsync failed on ${node.id}`)
    this.stats.fsyncFailures += 1
    this.crash(node.id)
  }

  #refreshCommit(): void {
    const runtime = this.#runtime
    if (runtime === undefined) return
    const primary = this.node(runtime.nodeId)
    runtime.commit.recordPrimaryDurable(primary.durableLsn)
    const previous = runtime.commit.committedLsn
    const committed = runtime.commit.candidateLsn()
    if (committed === previous) return
    if (!this.#mayAcknowledge(runtime, committed)) return
    // Client acknowledgement is modelled as a coordinator accepting the
    // commit (a compare-and-swap on the versioned assignment): a primary of
    // an older epoch is refused (it lost its lease). While a replaced
    // coordinator process still runs, the commit reaches both (the acting
    // one first): the one whose view is outdated loses the swap and re-reads.
    let acknowledged = false
    for (const process of [this.#coordinator, ...this.staleCoordinators()]) {
      const verdict = process.acknowledgeCommit(runtime.epoch, committed, this.#now)
      if (verdict === 'acknowledged') acknowledged = true
      else this.#log('reject', `commit ${committed} from epoch ${runtime.epoch} reason=${verdict} coordinator_revision=${process.revision}`)
    }
    if (!acknowledged) return
    runtime.commit.advance()
    const entries: WalEntry[] = []
    for (let lsn = Lsn.after(previous); lsn <= committed; lsn = Lsn.after(lsn)) {
      const entry = primary.entry(lsn)
      invariant(entry !== undefined, () => `primary commits lsn ${lsn} it does not hold`)
      entries.push(entry)
    }
    primary.knownCommittedLsn = committed
    this.committedHighWater = Lsn.max(this.committedHighWater, committed)
    this.#log('commit', `committed=${committed} epoch=${runtime.epoch} primary=${primary.id}`)
    for (const problem of this.reference.commit(entries, runtime.epoch)) {
      this.recordViolation({ tick: this.#now, kind: problem.kind, detail: problem.detail })
    }
    const audit = auditCommitDurability(this, previous, committed)
    if (audit !== undefined) this.recordViolation(audit)
  }

  // ------------------------------------------------------------ coordinator

  /**
   * A replica's suspicion: it is connected to its epoch's primary while that
   * primary runs at its epoch and the link from it is up (the real replica
   * sees a TCP connection that heartbeats); after `suspectAfterTicks`
   * without one, it suspects that epoch's primary.
   */
  #suspicionOf(node: SimNode): Epoch | undefined {
    const afterTicks = this.options.suspectAfterTicks
    const runtime = this.#runtime
    if (afterTicks === undefined || runtime?.nodeId === node.id) return undefined
    let contact = this.#primaryContact.get(node.id)
    if (contact === undefined || contact.epoch !== node.epoch) {
      contact = { epoch: node.epoch, at: this.#now }
      this.#primaryContact.set(node.id, contact)
    }
    if (runtime !== undefined && runtime.epoch === node.epoch && this.node(runtime.nodeId).running && !this.isLinkDown(runtime.nodeId, node.id)) contact.at = this.#now
    if (Tick.between(contact.at, this.#now) <= afterTicks) return undefined
    this.#suspectedAt.set(node.id, { epoch: node.epoch, at: this.#now })
    return node.epoch
  }

  /**
   * Checked at every promotion on suspicion: a quorum of the members other
   * than the primary really lost it (each suspected it at this epoch within
   * the freshness window of the heartbeats the coordinator used). A primary
   * that a quorum can still reach is never replaced on suspicion.
   */
  #checkSuspicionQuorum(primaryId: NodeId, epoch: Epoch): void {
    const window = this.options.reportFreshTicks + 2
    const suspecting = this.nodeIds.filter((id) => {
      const suspected = this.#suspectedAt.get(id)
      return id !== primaryId && suspected !== undefined && suspected.epoch === epoch && Tick.between(suspected.at, this.#now) <= window
    })
    const quorum = Math.floor(this.nodeIds.length / 2) + 1
    if (suspecting.length < quorum) {
      this.recordViolation({
        tick: this.#now,
        kind: 'promotion_without_quorum_suspicion',
        detail: `primary ${primaryId} of epoch ${epoch} replaced on suspicion while only ${suspecting.length} of the others had lost it (${suspecting.join(', ') || 'none'}; a quorum is ${quorum})`,
      })
    }
  }

  #heartbeat(): void {
    for (const node of this.nodes.values()) {
      if (!node.running) continue
      const suspects = this.#suspicionOf(node)
      if (suspects !== undefined) this.stats.suspicions += 1
      this.#send(Tick.after(this.#now, 1), {
        suspects,
        kind: 'heartbeat',
        from: node.id,
        to: coordinatorId,
        epoch: node.epoch,
        endpoint: node.endpoint,
        durableLsn: node.durableLsn,
        safeLsn: lineageSafeLsn(node),
        sentAt: this.#now,
        // Whether this node runs as primary: a primary that restarted is a replica until promoted again.
        serving: this.#runtime?.nodeId === node.id || this.#deposed.some((runtime) => runtime.nodeId === node.id),
      })
    }
  }

  /** A heartbeat reaches every coordinator process still running (a replaced one has not noticed yet). */
  #coordinatorReceive(message: Message): void {
    if (message.kind !== 'heartbeat') return this.#reject(message, 'misrouted')
    for (const process of [...this.staleCoordinators(), this.#coordinator]) this.#coordinatorHears(process, message)
  }

  #coordinatorHears(process: Coordinator, message: Extract<Message, { kind: 'heartbeat' }>): void {
    const outcome = process.receiveHeartbeat({ replicaId: message.from, ...message }, this.#now)
    const coordinator = process.plane
    if (outcome.endpointChanged) {
      this.#log('coordinator', `endpoint_changed ${message.from} v${message.endpoint.version}`)
      const runtime = this.#runtime
      if (runtime !== undefined && runtime.nodeId !== message.from) this.#sendMembership(process, runtime)
    }
    const lease = process.lease
    if (lease !== undefined && message.serving && message.from === coordinator.primaryId && message.epoch === coordinator.epoch) {
      // The primary's heartbeat is its lease renewal: granted from when it was sent, and only on a view that is still the store's.
      lease.heard(this.#now)
      if (process.viewCurrent(this.#now)) {
        this.#send(Tick.after(this.#now, 1), { kind: 'lease_grant', from: coordinatorId, to: message.from, epoch: coordinator.epoch, sentAt: message.sentAt, revision: process.revision })
      } else {
        this.#log('coordinator', `lease not granted to ${message.from} reason=view_outdated revision=${process.revision}`)
      }
    }
    if (outcome.sendAssignment) {
      this.#send(Tick.after(this.#now, 1), {
        kind: 'assignment',
        from: coordinatorId,
        to: message.from,
        epoch: process.plane.epoch,
        lineageResets: process.plane.lineageResets,
        revision: process.revision,
      })
    }
  }

  /** A replica adopts a newer epoch and drops whatever it holds beyond its lineage-safe LSN. */
  #adoptAssignment(node: SimNode, message: Extract<Message, { kind: 'assignment' }>): void {
    const epoch = message.epoch
    const decision = decideEpochAdoption({
      log: node,
      currentEpoch: node.epoch,
      offeredEpoch: epoch,
      isPrimary: this.#runtime?.nodeId === node.id,
      lineageResets: message.lineageResets,
      faults: this.options.faults,
    })
    if (decision.kind === 'ignore') {
      this.#log('reject', `assignment to ${node.id} epoch=${epoch} reason=${decision.reason}`)
      return
    }
    if (decision.wipeStore) node.wipe()
    else node.truncate(decision.truncateToLsn)
    node.knownCommittedLsn = decision.knownCommittedLsn
    node.epoch = decision.persistEpoch
    this.#log('deliver', `assignment ${node.id} adopts epoch=${epoch} truncated_to=${decision.truncateToLsn}`)
  }

  #receiveMembership(message: Extract<Message, { kind: 'membership' }>): void {
    const runtime = this.#runtime
    if (runtime === undefined || runtime.nodeId !== message.to) return this.#reject(message, 'not_primary')
    const verdict = runtime.applyMembership({ epoch: message.epoch, replicas: this.#replicaAssignments(runtime, new Map(message.endpoints)) })
    if (verdict === 'applied') this.#accept(message, '')
    else this.#reject(message, verdict === 'stale' ? 'stale_assignment' : 'epoch_ahead')
  }

  /**
   * Without leases the coordinator sees directly whether the primary runs.
   * With them it knows only what reached it: the primary counts as serving
   * while its heartbeats arrive, and a promotion also waits until the lease
   * it last granted has lapsed on the primary's side.
   */
  #coordinate(): void {
    for (const process of [...this.staleCoordinators(), this.#coordinator]) {
      const lease = process.lease
      if (lease === undefined) {
        if (process.plane.promotionDue(this.#runtime !== undefined, this.#now)) this.#promote(process)
        continue
      }
      const heardLately = Tick.between(lease.lastHeardAt(), this.#now) <= 1
      // A quorum suspecting a primary the coordinator still hears promotes without waiting for its lease (fenced acks).
      const suspected = this.options.suspectAfterTicks !== undefined && heardLately && this.#primarySuspected(process.plane)
      if (process.plane.promotionDue(heardLately, this.#now, suspected) && (suspected || lease.promotionAllowed(this.#now))) {
        const before = this.stats.promotions
        const replaced = { primaryId: process.plane.primaryId, epoch: process.plane.epoch }
        this.#promote(process)
        if (suspected && this.stats.promotions > before) {
          this.stats.promotionsOnSuspicion += 1
          if (replaced.primaryId !== undefined) this.#checkSuspicionQuorum(replaced.primaryId, replaced.epoch)
        }
      }
    }
  }

  /** The control plane's rule (a quorum of the others suspects the primary), or the planted one-suspicion rule. */
  #primarySuspected(plane: ControlPlane): boolean {
    const suspicions = plane.heardSuspicions(this.#now)
    if (this.options.plantedBugs.promoteOnOneSuspicion !== true) return plane.primarySuspected(suspicions)
    return [...suspicions].some(([replicaId, epoch]) => replicaId !== plane.primaryId && epoch === plane.epoch)
  }

  /** A lease grant reaches the primary (or a deposed one) on `node`. */
  #receiveLeaseGrant(node: SimNode, message: Extract<Message, { kind: 'lease_grant' }>): void {
    const runtime = this.#runtime?.nodeId === node.id ? this.#runtime : this.#deposed.find((candidate) => candidate.nodeId === node.id)
    if (runtime?.lease === undefined) return this.#reject(message, 'not_primary')
    const renewal = runtime.lease.renewed(message.sentAt, message.epoch)
    this.#accept(message, `lease=${renewal} until=${runtime.lease.expiresAt ?? '-'}`)
  }

  /**
   * Deposed primaries keep running on their old epoch (clients may still
   * write there) but may not acknowledge: one steps down once its node
   * adopted a newer epoch (the coordinator reached it) or crashed.
   */
  #serveDeposed(): void {
    this.#stepDown((runtime) => this.node(runtime.nodeId).epoch > runtime.epoch, 'adopted_newer_epoch')
    for (const runtime of this.#deposed) {
      const node = this.node(runtime.nodeId)
      if (node.headLsn > node.durableLsn) node.flush()
      // It still runs its commit rule (best_effort needs only its own disk). Without suspicions its lease must
      // refuse; with them it may still hold, and the fence (the coordinators' compare-and-swap) must refuse.
      runtime.commit.recordPrimaryDurable(node.durableLsn)
      const candidate = runtime.commit.candidateLsn()
      if (candidate > runtime.commit.committedLsn && this.#mayAcknowledge(runtime, candidate)) {
        let acknowledged = this.options.suspectAfterTicks === undefined
        if (!acknowledged) {
          for (const process of [this.#coordinator, ...this.staleCoordinators()]) {
            if (process.acknowledgeCommit(runtime.epoch, candidate, this.#now) === 'acknowledged') acknowledged = true
          }
          if (!acknowledged) this.stats.deposedCommitsFenced += 1
        }
        if (acknowledged) {
          this.recordViolation({
            tick: this.#now,
            kind: 'overlapping_primaries',
            detail: `deposed primary ${node.id} (epoch ${runtime.epoch}) acknowledges commit ${candidate} while ${this.#runtime?.nodeId ?? 'no primary'} serves epoch ${this.coordinator.epoch}`,
          })
          runtime.commit.advance()
        }
      }
    }
  }

  /** The primary's own rule before it acknowledges a commit: in a leased cluster, only while its lease holds. */
  #mayAcknowledge(runtime: PrimaryRuntime, committed: Lsn): boolean {
    if (runtime.lease === undefined || runtime.lease.holds(this.#now)) return true
    this.stats.commitsWithoutLease += 1
    this.#log('reject', `commit ${committed} from ${runtime.nodeId} epoch ${runtime.epoch} reason=lease_not_held`)
    return false
  }

  #stepDown(which: (runtime: PrimaryRuntime) => boolean, reason: string): void {
    for (let index = this.#deposed.length - 1; index >= 0; index -= 1) {
      const runtime = this.#deposed[index]!
      if (!which(runtime)) continue
      this.#deposed.splice(index, 1)
      this.#log('lease', `deposed primary ${runtime.nodeId} epoch=${runtime.epoch} steps down reason=${reason}`)
    }
  }

  /** What the coordinator knows when it decides a promotion: heartbeats and published states. */
  promotionInput(): PromotionInput {
    return this.coordinator.promotionInput(this.#now, this.#runtime !== undefined)
  }

  /** Why a node may not be promoted now, or undefined when it is eligible (A9). */
  ineligibility(node: SimNode): Ineligibility | undefined {
    return ineligibility(this.promotionInput(), node.id)
  }

  #promote(process: Coordinator): void {
    const coordinator = process.plane
    // With membership, only the view's voters are candidates and count for the reporting quorum (learners and spares never).
    const membership = process.membership
    const decision =
      this.options.plantedBugs.promoteIgnoresEligibility === true
        ? this.#promoteAnyRunning(coordinator)
        : membership === undefined
          ? coordinator.decidePromotion(this.#now)
          : decidePromotion({ ...coordinator.promotionInput(this.#now, false), members: votersOf(membership) })
    const verdicts = decision.verdicts.map(({ replicaId, ineligibility }) => `${replicaId}:${ineligibility ?? 'eligible'}`)
    if (decision.kind === 'blocked') {
      this.stats.promotionsBlocked += 1
      this.#log('promotion_blocked', `reason=${decision.reason} ${verdicts.join(' ')}`)
      return
    }
    const chosen = this.node(decision.replicaId)
    // The assignment reaches the chosen node, which checks it against its own disk.
    const accepted: { ok: true } | { ok: false; reason: string } = !chosen.running
      ? { ok: false, reason: 'node_down' }
      : this.options.plantedBugs.promoteIgnoresEligibility === true
        ? { ok: true }
        : acceptPromotion(chosen, { fromEpoch: coordinator.epoch, committedLsn: coordinator.committedLsn, desperate: false })
    if (!accepted.ok) {
      this.stats.promotionsBlocked += 1
      coordinator.forgetReport(chosen.id)
      this.#log('promotion_blocked', `reason=offer_refused_${accepted.reason} ${chosen.id} ${verdicts.join(' ')}`)
      return
    }
    const epoch = decision.epoch
    // The role the chosen node held in the assignment this promotion replaces (the store's, if the swap below wins).
    const replacedMembership = this.assignments.read().record.membership
    const role = replacedMembership === undefined ? undefined : roleOf(replacedMembership, chosen.id)
    // The decision is written by compare-and-swap: a process whose view is outdated loses to the newer write and re-reads.
    if (!process.promote(chosen.id, epoch, this.#now)) {
      this.#log('promotion_blocked', `reason=assignment_write_refused ${chosen.id} epoch=${epoch}`)
      return
    }
    if (replacedMembership !== undefined && role !== 'voter' && role !== 'primary') {
      this.recordViolation({ tick: this.#now, kind: 'non_voter_promoted', detail: `${chosen.id} promoted at epoch ${epoch}, ${role ?? 'not a member'} in the assignment it replaced` })
    }
    const replaced = this.#runtime
    if (replaced !== undefined) {
      // Still running, cut off from the coordinator: it serves on, deposed, until it learns or crashes.
      invariant(this.options.primaryLease !== undefined, 'only a leased cluster promotes over a running primary')
      invariant(replaced.nodeId !== chosen.id, 'the coordinator promotes a primary it has not heard from')
      this.#deposed.push(replaced)
      this.stats.primariesDeposed += 1
      this.#log('lease', `primary ${replaced.nodeId} epoch=${replaced.epoch} deposed, lease until ${replaced.lease?.expiresAt ?? '-'}`)
    }
    this.#log('promote', `${chosen.id} epoch=${epoch} committed=${coordinator.committedLsn} durable=${chosen.durableLsn} candidates=${verdicts.join(',')}`)
    this.stats.promotions += 1
    chosen.epoch = epoch
    this.#truncatePrimaryUncommitted(chosen, coordinator.committedLsn)
    this.#becomePrimary(chosen, epoch, Lsn.min(coordinator.committedLsn, chosen.durableLsn))
    this.#sendAssignments(process, chosen.id)
  }

  /**
   * The operator's desperate promotion (ARCHITECTURE.md §4): with no primary,
   * promote the reporting node that keeps the longest committed prefix,
   * eligible or not. The loss is declared — in the control plane's recovery
   * log, to the reference (clients were told), and to every node through the
   * lineage reset its next assignment carries. Returns whether it promoted.
   */
  promoteDesperately(): boolean {
    const process = this.#coordinator
    const coordinator = process.plane
    if (this.#runtime !== undefined) {
      this.#log('promotion_blocked', 'desperate reason=primary_serving')
      return false
    }
    const decision = coordinator.decideDesperatePromotion(this.#now)
    if (decision.kind === 'blocked') {
      this.#log('promotion_blocked', `desperate reason=${decision.reason}`)
      return false
    }
    const chosen = this.node(decision.replicaId)
    if (!chosen.running || !acceptPromotion(chosen, { fromEpoch: chosen.epoch, committedLsn: coordinator.committedLsn, desperate: true }).ok) {
      this.#log('promotion_blocked', `desperate reason=offer_refused ${chosen.id}`)
      return false
    }
    // The node keeps what it knows is on the committed lineage now, which its report may have understated.
    const keptLsn = Lsn.min(decision.keptLsn, lineageSafeLsn(chosen))
    const epoch = decision.epoch
    if (!process.promoteDesperately(chosen.id, epoch, keptLsn, this.#now)) {
      this.#log('promotion_blocked', 'desperate reason=assignment_write_refused')
      return false
    }
    coordinator.log.append({ ...decision.event, detail: { ...decision.event.detail, keptLsn } })
    this.committedHighWater = keptLsn
    this.reference.declareLoss(keptLsn)
    this.ledger?.declareLoss(keptLsn, decision.epoch)
    this.#log('promote', `${chosen.id} epoch=${epoch} desperate kept=${keptLsn} reason=${decision.event.reason ?? ''}`)
    this.stats.promotions += 1
    chosen.epoch = epoch
    chosen.knownCommittedLsn = Lsn.min(chosen.knownCommittedLsn, keptLsn)
    this.#truncatePrimaryUncommitted(chosen, keptLsn)
    this.#becomePrimary(chosen, epoch, keptLsn)
    this.#sendAssignments(process, chosen.id)
    return true
  }

  /** Planted bug: the first running node by id, whatever its epoch, state or prefix. */
  #promoteAnyRunning(coordinator: ControlPlane): PromotionDecision {
    const verdicts = this.nodeIds.map((replicaId) => ({ replicaId, ineligibility: undefined }))
    const chosen = this.nodeIds.find((id) => this.node(id).running)
    if (chosen === undefined) return { kind: 'blocked', reason: 'no_eligible_member', verdicts }
    return { kind: 'promote', replicaId: chosen, epoch: Epoch.next(coordinator.epoch), verdicts }
  }

  /** A node that becomes primary at a new epoch drops its uncommitted tail (never revived). */
  #truncatePrimaryUncommitted(node: SimNode, committedLsn: Lsn): void {
    const takeover = decidePrimaryTakeover(node, committedLsn)
    if (takeover.truncateToLsn !== undefined) {
      node.truncate(takeover.truncateToLsn)
      this.#log('recovery', `${node.id} drops uncommitted tail above ${committedLsn}`)
    }
    node.knownCommittedLsn = takeover.knownCommittedLsn
  }

  #startCoordinator(): Coordinator {
    return new Coordinator({ plane: this.#coordinatorOptions, store: this.assignments, lease: this.options.primaryLease }, this.#now)
  }

  #becomePrimary(node: SimNode, epoch: Epoch, committedLsn: Lsn): void {
    this.#incarnation += 1
    const voting = this.#votingReplicaIds(node.id)
    const runtime = new PrimaryRuntime({
      primaryId: node.id,
      incarnation: this.#incarnation,
      epoch,
      committedLsn,
      durability: this.options.durability,
      memberCount: voting === undefined ? this.options.nodeCount : voting.length + 1,
      ...(voting === undefined ? {} : { votingReplicaIds: voting }),
      barrierTimeoutTicks: this.options.barrierTimeoutTicks,
      faults: this.options.faults,
      log: new RecoveryLog({ now: () => this.#now }),
      recovery: {
        chunkEntriesMax: this.options.chunkEntriesMax,
        catchUpBudget: this.options.catchUpBudget,
        catchUpTimeoutTicks: this.options.catchUpTimeoutTicks,
        reservationTimeoutTicks: this.options.reservationTimeoutTicks,
        rebuildStallTicks: this.options.rebuildStallTicks,
        recoveryRetryTicks: this.options.recoveryRetryTicks,
      },
      // Only PrimaryRuntime instances are built here, so the adapters see the pins and streams.
      adapters: (created) => this.#adapters(created as PrimaryRuntime),
    })
    if (this.options.primaryLease !== undefined) runtime.lease = new PrimaryLease(this.options.primaryLease, epoch)
    runtime.log.subscribe((event) => this.#countPath(event))
    if (this.#trace !== undefined) runtime.log.subscribe((event) => this.#log('engine', formatRecoveryEvent(event)))
    this.#runtime = runtime
    runtime.registry.reconcile({ epoch, replicas: this.#replicaAssignments(runtime) })
  }

  /** Counts the recovery paths the engine reports taking. */
  #countPath(event: RecoveryEvent): void {
    if (event.kind === 'pin_failed') this.stats.pinFailures += 1
    else if (event.kind === 'stale_assignment') this.stats.staleAssignments += 1
    else if (event.kind === 'session_invalidated' && event.reason === 'connect_timeout') this.stats.connectTimeouts += 1
    else if (event.kind === 'rebuild_reopened' && event.reason === undefined) this.stats.rebuildsResumedAfterReopen += 1
    else if (event.kind === 'exec_failed') {
      const reason = event.reason ?? ''
      if (reason.startsWith('budget_')) this.stats.budgetViolations += 1
      else if (reason === 'catchup_timeout') this.stats.catchUpTimeouts += 1
      else if (reason === 'reservation_expired') this.stats.reservationTimeouts += 1
      else if (reason === 'rebuild_stalled') this.stats.rebuildStalls += 1
      else if (reason === 'truncate_timeout') this.stats.truncateTimeouts += 1
    }
  }

  #replicaAssignments(runtime: PrimaryRuntime, endpoints: Map<NodeId, Endpoint> = this.coordinator.knownEndpoints) {
    // With membership, the primary ships to the members the stored assignment names (voters and learners): a
    // spare or a removed member gets no sender (the registry stops a removed one's), as in the cluster.
    const membership = this.membership()
    const members = membership === undefined ? undefined : new Set([membership.primaryId, ...membership.replicaIds, ...membership.learnerIds])
    return this.nodeIds
      .filter((id) => id !== runtime.nodeId && (members === undefined || members.has(id)))
      .map((id) => ({ replicaId: id, endpoint: endpoints.get(id) ?? this.node(id).endpoint }))
  }

  #sendAssignments(process: Coordinator, primaryId: NodeId): void {
    const coordinator = process.plane
    for (const id of this.nodeIds) {
      if (id === primaryId) continue
      coordinator.recordAssignmentSent(id, this.#now)
      this.#send(Tick.after(this.#now, 1), {
        kind: 'assignment',
        from: coordinatorId,
        to: id,
        epoch: coordinator.epoch,
        lineageResets: coordinator.lineageResets,
        revision: process.revision,
      })
    }
  }

  /** The primary publishes its replicas' states to the acting coordinator, which re-sends a membership update the primary missed. */
  #reportStates(): void {
    const runtime = this.#runtime
    if (runtime === undefined) return
    if (this.coordinator.publishStates(runtime.registry.status(), this.#now)) this.#sendMembership(this.#coordinator, runtime)
  }

  #sendMembership(process: Coordinator, runtime: PrimaryRuntime): void {
    const coordinator = process.plane
    coordinator.recordMembershipSent(this.#now)
    this.#send(Tick.after(this.#now, 1), {
      kind: 'membership',
      from: coordinatorId,
      to: runtime.nodeId,
      epoch: coordinator.epoch,
      endpoints: [...coordinator.knownEndpoints],
      revision: process.revision,
    })
  }

  // --------------------------------------------------------------- recovery

  #driveRecovery(): void {
    const runtime = this.#runtime
    if (runtime !== undefined) this.#applyRecovery(runtime, runtime.driver.tick(this.#now))
  }

  /** Carries out what the driver asked for: timers, live shipping after a completion, statistics. */
  #applyRecovery(runtime: PrimaryRuntime, ready: DriverReady): void {
    for (const timer of ready.timers) {
      this.queue.timerAt(timer.at, { kind: timer.kind, incarnation: runtime.incarnation, replicaId: timer.replicaId, sessionId: timer.sessionId })
    }
    for (const timer of ready.ignored) {
      this.#log('timeout_ignored', `${timer.kind} replica=${timer.replicaId} session=${timer.sessionId} reason=session_ended`)
    }
    for (const failed of ready.failed) {
      this.stats.recoveriesFailed += 1
      this.#log('recovery', `${failed.replicaId} ${failed.kind} failed reason=${failed.reason}`)
    }
    for (const completed of ready.completed) {
      if (completed.kind === 'rebuild') this.stats.rebuildsCompleted += 1
      else this.stats.catchUpsCompleted += 1
      const sender = runtime.registry.sender(completed.replicaId)
      invariant(sender !== undefined, 'a completed recovery has a sender')
      const head = this.node(runtime.nodeId).headLsn
      this.#log('recovery', `${completed.replicaId} in_sync at ${completed.syncedToLsn}; shipping (${completed.syncedToLsn}, ${head}]`)
      this.#ship(runtime, sender, completed.syncedToLsn, head, true)
    }
  }

  /** Reachability checks shared by every primary -> replica operation. */
  #unreachable(runtime: PrimaryRuntime, ticket: Pick<SessionTicket, 'replicaId' | 'endpoint' | 'epoch'>): string | undefined {
    const node = this.node(ticket.replicaId)
    if (!node.running) return 'node_down'
    if (this.isLinkDown(runtime.nodeId, node.id) || this.isLinkDown(node.id, runtime.nodeId)) return 'link_down'
    if (ticket.endpoint.version !== node.endpoint.version) return 'stale_endpoint'
    if (ticket.epoch !== runtime.epoch || node.epoch !== runtime.epoch) return 'epoch_mismatch'
    return undefined
  }

  /**
   * Handshake transport: the replica's flushed LSN on the primary's lineage,
   * found by the replica side's log matching on (LSN, epoch) (`matchLog`);
   * the replica drops everything above it (a divergent or volatile tail).
   * With `handshakeOverNetwork` the request and the answer are messages
   * (lossy and delayed under the network model) and the driver polls until
   * the answer is in; the replica's barriers expire when the request leaves,
   * since an ack still in flight may describe entries the replica is about to
   * drop.
   */
  #connect(runtime: PrimaryRuntime, request: Pick<SessionTicket, 'replicaId' | 'sessionId' | 'endpoint' | 'epoch'>): ConnectReport {
    const reason = this.#unreachable(runtime, request)
    if (reason !== undefined) {
      runtime.handshakes.delete(request.replicaId)
      return { ok: false, reason }
    }
    const primary = this.node(runtime.nodeId)
    const node = this.node(request.replicaId)
    if (this.options.handshakeOverNetwork) {
      const sent = runtime.handshakes.get(node.id)
      if (sent === undefined || sent.sessionId !== request.sessionId) {
        runtime.handshakes.set(node.id, { sessionId: request.sessionId, flushedLsn: undefined })
        runtime.barriers.expireFor(node.id, this.#now)
        this.#send(Tick.after(this.#now, 1), {
          kind: 'handshake',
          from: primary.id,
          to: node.id,
          epoch: runtime.epoch,
          endpointVersion: request.endpoint.version,
          sessionId: request.sessionId,
        })
        return { ok: true, flushedLsn: undefined }
      }
      if (sent.flushedLsn === undefined) return { ok: true, flushedLsn: undefined }
      runtime.handshakes.delete(node.id)
      runtime.replicaRewound(node.id, sent.flushedLsn, this.#now)
      return { ok: true, flushedLsn: sent.flushedLsn }
    }
    this.#replicaSessions.set(node.id, { sessionId: request.sessionId, truncatedToLsn: undefined })
    const flushed = matchLog(node, primary, this.options.faults)
    if (node.headLsn > flushed) {
      node.truncate(flushed)
      this.#log('recovery', `${node.id} drops tail above ${flushed} (off the primary's lineage or volatile)`)
    }
    runtime.replicaRewound(node.id, flushed, this.#now)
    return { ok: true, flushedLsn: flushed }
  }

  /** The engine's adapters over this simulated primary. */
  #adapters(runtime: PrimaryRuntime): DriverOptions['adapters'] {
    const primary = this.node(runtime.nodeId)
    const pin = (owner: PinOwner, kind: PinRecord['kind'], lsn: Lsn, image: Image | undefined): PinResult => {
      const pinsMax = this.#storage.pinsMax
      if (pinsMax > 0 && runtime.pins.size >= pinsMax) return { ok: false, reason: 'pin_limit' }
      const id = this.#nextPinId
      this.#nextPinId += 1
      runtime.pins.set(id, { owner, kind, lsn, image })
      return { ok: true, release: () => void runtime.pins.delete(id) }
    }
    const pinnedImage = (ticket: SessionTicket, kind: PinRecord['kind']): Image | undefined => {
      for (const record of runtime.pins.values()) {
        if (record.owner.sessionId === ticket.sessionId && record.kind === kind) return record.image
      }
      return undefined
    }
    const install = (ticket: SessionTicket, kind: 'snapshot' | 'full_base'): BaseTransferReport => {
      const transfer = runtime.transfers.get(ticket.replicaId)
      const underWay = transfer !== undefined && transfer.sessionId === ticket.sessionId
      const reason = this.#unreachable(runtime, ticket)
      if (reason !== undefined) {
        runtime.transfers.delete(ticket.replicaId)
        if (underWay) this.stats.transfersInterrupted += 1
        return { ok: false, reason: underWay ? `transfer_interrupted_${reason}` : reason }
      }
      const image = pinnedImage(ticket, kind)
      if (image === undefined) return { ok: false, reason: `${kind}_not_pinned` }
      if (!underWay) {
        const ticks = this.#drawTransferTicks()
        if (ticks > 0) {
          runtime.transfers.set(ticket.replicaId, { sessionId: ticket.sessionId, doneAt: Tick.after(this.#now, ticks) })
          this.#log('recovery', `${ticket.replicaId} ${kind} transfer at ${image.lsn} takes ${ticks} ticks`)
          return { ok: true, installedLsn: undefined }
        }
      } else if (transfer.doneAt > this.#now) {
        return { ok: true, installedLsn: undefined }
      }
      runtime.transfers.delete(ticket.replicaId)
      this.node(ticket.replicaId).installImage(image)
      runtime.replicaInstalled(ticket.replicaId, image.lsn, this.#now)
      runtime.streamed.delete(ticket.replicaId)
      this.#log('recovery', `${ticket.replicaId} installed ${kind} at ${image.lsn}`)
      if (this.options.replicaReopenTicks === 0) return { ok: true, installedLsn: image.lsn }
      // The replica closes its store to reopen on the image: the connection ends, and its in-memory state with it.
      this.#closeToReopen(ticket.replicaId)
      this.#reopening.set(ticket.replicaId, Tick.after(this.#now, this.options.replicaReopenTicks))
      this.#log('recovery', `${ticket.replicaId} reopens on its image in ${this.options.replicaReopenTicks} ticks`)
      return { ok: true, installedLsn: image.lsn, reopening: true }
    }
    return {
      connect: (request) => this.#connect(runtime, request),
      retainedHistory: (): RetainedHistory => ({
        headLsn: primary.headLsn,
        tailLsn: primary.tailLsn,
        committedLsn: runtime.commit.committedLsn,
        checkpointLsn: primary.checkpoint.lsn,
        checkpointTrusted: primary.checkpoint.trusted,
      }),
      pinWalRetention: (owner, fromLsn) =>
        fromLsn < primary.tailLsn ? { ok: false, reason: 'wal_recycled' } : pin(owner, 'wal', fromLsn, undefined),
      pinSnapshot: (owner, snapshotLsn) =>
        primary.checkpoint.lsn !== snapshotLsn || !primary.checkpoint.trusted
          ? { ok: false, reason: 'snapshot_unavailable' }
          : pin(owner, 'snapshot', snapshotLsn, this.#withLedger(primary, { lsn: snapshotLsn, digest: primary.checkpoint.digest }, 'snapshot')),
      pinFullBase: (owner, targetLsn) => {
        const digest = primary.digestAt(targetLsn)
        return digest === undefined ? { ok: false, reason: 'base_unavailable' } : pin(owner, 'full_base', targetLsn, this.#withLedger(primary, { lsn: targetLsn, digest }, 'full_base'))
      },
      streamWal: ({ ticket, fromLsnExclusive, toLsnInclusive }): TransferReport => {
        const reason = this.#unreachable(runtime, ticket)
        if (reason !== undefined) return { ok: false, reason }
        const sender = runtime.registry.sender(ticket.replicaId)
        invariant(sender !== undefined, 'streaming to a replica without a sender')
        const last = runtime.streamed.get(ticket.replicaId)
        const inFlight = last !== undefined && last.fromLsn === fromLsnExclusive && last.toLsn >= toLsnInclusive && this.#now - last.tick < 4
        if (!inFlight) {
          this.#ship(runtime, sender, fromLsnExclusive, toLsnInclusive, false)
          runtime.streamed.set(ticket.replicaId, { fromLsn: fromLsnExclusive, toLsn: toLsnInclusive, tick: this.#now })
        }
        const acked = runtime.ackedLsn(ticket.replicaId)
        if (this.options.faults.streamerOverReports === true && acked >= toLsnInclusive) return { ok: true, durableLsn: Lsn.max(acked, this.node(runtime.nodeId).durableLsn) }
        return { ok: true, durableLsn: acked }
      },
      transferSnapshot: ({ ticket }) => install(ticket, 'snapshot'),
      transferFullBase: ({ ticket }) => install(ticket, 'full_base'),
      truncate: ({ ticket, toLsn }): TruncateReport => this.#truncate(runtime, ticket, toLsn),
    }
  }

  /**
   * Truncation transport. With `handshakeOverNetwork` the request and the
   * answer are messages (lossy and delayed under the network model): the
   * request goes out on the first call (the replica's ack drops to `toLsn`
   * and its open barriers expire then: their acks may describe the tail it
   * is about to drop), is sent
   * again while unanswered every 4 ticks, and the executor polls until the
   * answer is in; otherwise the call truncates at once.
   */
  #truncate(runtime: PrimaryRuntime, ticket: SessionTicket, toLsn: Lsn): TruncateReport {
    const reason = this.#unreachable(runtime, ticket)
    if (reason !== undefined) {
      runtime.truncations.delete(ticket.replicaId)
      return { ok: false, reason }
    }
    const node = this.node(ticket.replicaId)
    if (!this.options.handshakeOverNetwork) {
      if (node.headLsn > toLsn) node.truncate(toLsn)
      const session = this.#replicaSessions.get(node.id)
      if (session?.sessionId === ticket.sessionId) session.truncatedToLsn = toLsn
      runtime.replicaRewound(node.id, toLsn, this.#now)
      return { ok: true, truncatedToLsn: Lsn.min(node.durableLsn, toLsn) }
    }
    const pending = runtime.truncations.get(node.id)
    if (pending !== undefined && pending.sessionId === ticket.sessionId && pending.truncatedToLsn !== undefined) {
      runtime.truncations.delete(node.id)
      runtime.replicaRewound(node.id, pending.truncatedToLsn, this.#now)
      return { ok: true, truncatedToLsn: pending.truncatedToLsn }
    }
    if (pending === undefined || pending.sessionId !== ticket.sessionId || Tick.between(pending.sentAt, this.#now) >= 4) {
      // From the moment the request leaves, the replica may hold only up to
      // `toLsn`: its ack drops now, not when the answer arrives, or a commit
      // in between would count entries it already dropped (seed 41 under the
      // network handshake: committed 6 held by 2 of 3 in sync_all).
      if (pending === undefined || pending.sessionId !== ticket.sessionId) runtime.replicaRewound(node.id, toLsn, this.#now)
      runtime.truncations.set(node.id, { sessionId: ticket.sessionId, sentAt: this.#now, truncatedToLsn: undefined })
      this.#send(Tick.after(this.#now, 1), {
        kind: 'truncate',
        from: runtime.nodeId,
        to: node.id,
        epoch: runtime.epoch,
        endpointVersion: ticket.endpoint.version,
        sessionId: ticket.sessionId,
        toLsn,
      })
    }
    return { ok: true, truncatedToLsn: undefined }
  }

  /** A pinned image carries the source's ledger state at its LSN, taken at pin time. */
  #withLedger(source: SimNode, image: Image, kind: 'snapshot' | 'full_base'): Image {
    return this.ledger === undefined ? image : this.ledger.capture(source, image, kind)
  }

  /** 0 for an immediate base transfer, else how many ticks a slow one takes. */
  #drawTransferTicks(): number {
    const storage = this.#storage
    if (storage.slowTransferPercent === 0 || this.#storagePrng.int(100) >= storage.slowTransferPercent) return 0
    return 2 + this.#storagePrng.int(Math.max(1, storage.slowTransferTicksMax - 1))
  }

  // ------------------------------------------------------------------ trace

  #log(kind: TraceKind, text: string): void {
    const trace = this.#trace
    if (trace === undefined) return
    if (trace.length >= this.options.traceEventsMax) {
      trace.shift()
      this.#traceDropped += 1
    }
    trace.push({ tick: this.#now, kind, text })
  }

  #nextEndpoint(node: SimNode): Endpoint {
    const version = node.endpoint.version + 1
    return { dataAddress: `${node.id}:data:v${version}`, controlAddress: `${node.id}:ctrl:v${version}`, version }
  }
}

export function describe(message: Message): string {
  const route = `${message.from}->${message.to} e${message.epoch}`
  switch (message.kind) {
    case 'ship':
      return `ship ${route} lsn=${message.entry.lsn}`
    case 'barrier':
      return `barrier ${route} id=${message.barrierId} lsn=${message.lsn}`
    case 'ack':
      return `ack ${route} id=${message.barrierId} durable=${message.durableLsn}`
    case 'heartbeat':
      return `heartbeat ${route} v${message.endpoint.version} durable=${message.durableLsn}`
    case 'assignment':
      return `assignment ${route} rev=${message.revision}`
    case 'membership':
      return `membership ${route} rev=${message.revision}`
    case 'lease_grant':
      return `lease_grant ${route} sent_at=${message.sentAt} rev=${message.revision}`
    case 'handshake':
      return `handshake ${route} session=${message.sessionId}`
    case 'handshake_reply':
      return `handshake_reply ${route} session=${message.sessionId} flushed=${message.flushedLsn}`
    case 'truncate':
      return `truncate ${route} session=${message.sessionId} to=${message.toLsn}`
    case 'truncate_reply':
      return `truncate_reply ${route} session=${message.sessionId} truncated_to=${message.truncatedToLsn}`
    default: {
      const never: never = message
      throw new Error(`unknown message ${String(never)}`)
    }
  }
}

/** Whether the durability mode accepts `voters` voting members (primary included). */
function durabilityAccepts(mode: DurabilityMode, voters: number): boolean {
  try {
    validateDurability(mode, voters)
    return true
  } catch {
    return false
  }
}
