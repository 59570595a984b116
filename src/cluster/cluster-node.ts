/**
 * A node's runtime in cluster mode (docs/cluster.md, "Running a cluster"):
 * it registers in etcd, follows the assignment, and runs its `LedgerNode`
 * as the primary of its epoch or as a replica, switching when the
 * assignment changes.
 *
 * - **Replica**: a `ReplicaServer` on the peer address writes the node's
 *   WAL through `node.replicaState()` (epochs adopted at the new primary's
 *   hello, the committed LSN learned from its traffic; the FSM applies up
 *   to it).
 * - **Primary**: the `RecoveryDriver` brings each replica of the assignment
 *   in sync (handshake, catch-up under a budget, rebuild from a snapshot;
 *   `PrimaryRecovery`), then its link follows the WAL's durable head; the
 *   acks and the node's own durable LSN feed a `CommitTracker` for the
 *   assignment's durability mode. A commit point is
 *   first **recorded in etcd** (fenced by the epoch), and only then given to
 *   the node (`advanceCommitted`: the FSM applies, clients are answered):
 *   a promotion reads that mark and the new primary keeps every entry up to
 *   it, so no acknowledged write is ever above what a promotion keeps. The
 *   primary lease gates the answers (`AcknowledgementGate`).
 *
 * Role changes run one at a time. Every etcd call may fail (etcd
 * unreachable): the runtime logs it and tries again on its next tick.
 */
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { InvariantViolation } from '../domain/index.ts'
import { CommitTracker, Epoch, Lsn, lineageSafeLsn, type DurabilityMode, type ReplicaId, type ReplicaState } from '../replication/index.ts'
import type { LedgerNode, NodeLog, SnapshotStatusView } from '../server/index.ts'
import {
  EtcdAssignmentSource,
  EtcdCoordinator,
  EtcdPrimaryLease,
  NodeRegistration,
  type ClusterAssignment,
  type EtcdControlPlane,
  type MemberView,
  type MonotonicClock,
  type ReplicaStateReport,
} from './etcd/index.ts'
import { PrimaryLink, ReplicaServer, parsePeerAddress, type LinkTuning, type PeerAddress, type SnapshotChunkSource } from './peer/index.ts'
import { NodeSnapshotStorage, SnapshotCatalog, type TransferProgress } from './snapshot/index.ts'
import { PrimaryRecovery, type RecoveryTuning } from './recovery-runtime.ts'
import { RecoveryLogRing, type ClusterRuntimeView, type ReplicaView } from './runtime-status.ts'

/**
 * The lease gate the `LedgerNode` is opened with (`replicated.canAcknowledge`)
 * before the runtime exists: closed until the runtime holds a primary lease.
 */
export class AcknowledgementGate {
  #lease: EtcdPrimaryLease | undefined
  #deposed = false

  canAcknowledge(): boolean {
    return !this.#deposed && this.#lease !== undefined && this.#lease.canAcknowledge()
  }

  hold(lease: EtcdPrimaryLease | undefined): void {
    this.#lease = lease
    this.#deposed = false
  }

  /** A newer epoch exists (etcd refused a commit mark, a replica refused a link): never answer again in this epoch. */
  depose(): void {
    this.#deposed = true
  }
}

export interface ClusterNodeOptions {
  readonly control: EtcdControlPlane
  readonly node: LedgerNode
  readonly gate: AcknowledgementGate
  readonly nodeId: ReplicaId
  /** Where the replica server listens (`--peer-listen`); also the data address registered in etcd unless `peerAdvertise` is given. */
  readonly peerListen: PeerAddress
  /**
   * The data address registered in etcd when other nodes reach this one
   * elsewhere than where it listens (`--peer-advertise`: a wildcard listen
   * address, a NAT, a proxy in front of it).
   */
  readonly peerAdvertise?: PeerAddress
  /** The HTTP address clients (and forwarded writes) reach this node at, registered as its control address. */
  readonly httpAddress: string
  readonly leaseTtlSeconds: number
  /** The first assignment: made once this many nodes registered (the lowest ids; the lowest one primary). */
  readonly bootstrap: { readonly members: number; readonly durability: DurabilityMode }
  /** The primary lease ends this long before etcd's TTL would (default a quarter of the TTL). */
  readonly safetyMarginMs?: number
  /** Reports, member refresh and the assignment re-read, this often (default 250 ms). */
  readonly tickMs?: number
  readonly link?: LinkTuning
  readonly log?: NodeLog
  readonly clock?: MonotonicClock
  /** A snapshot is taken at a store checkpoint once the newest is this many entries behind (default 10 000). */
  readonly snapshotEveryEntries?: number
  /**
   * A replica of the assignment that has had no connection from its epoch's
   * primary for this long publishes a suspicion (default 400 ms: the
   * primary's link redials a dropped connection after 50 ms, then 100 ms);
   * the coordinator promotes once a quorum of the others suspects the primary.
   */
  readonly suspectAfterMs?: number
  /**
   * A primary whose lease has lapsed this long (etcd unreachable: it can
   * record no commit) answers the writes it admitted and has not answered as
   * of unknown outcome, 503 + Retry-After (default 5 000 ms).
   */
  readonly writeDeadlineMs?: number
  /** A primary connection silent this long counts as lost (default 2 500 ms: the link heartbeats every second). */
  readonly primarySilenceMs?: number
  /** The replica server staged a snapshot to rebuild from: the node must reopen (its data directory installs it first). */
  readonly onSnapshotStaged?: (appliedIndex: number) => void
  /**
   * How the primary brings replicas in sync: `driver` (default) runs the
   * `RecoveryDriver` with these limits (`recovery`); `links` is the older
   * mode where each link follows the WAL at once and offers a snapshot on
   * its own to a replica beyond retention (no budgets, no retention pins).
   */
  readonly recoveryMode?: 'driver' | 'links'
  readonly recovery?: Partial<RecoveryTuning>
}

export type ClusterRole = 'starting' | 'primary' | 'replica' | 'stopped'

interface PrimaryRun {
  readonly assignment: ClusterAssignment
  readonly lease: EtcdPrimaryLease
  readonly tracker: CommitTracker
  /** `links` mode: one link per replica. */
  readonly links: Map<ReplicaId, PrimaryLink>
  /** `driver` mode: the recovery engine and its transport's links. */
  readonly recovery: PrimaryRecovery | undefined
  readonly unsubscribe: () => void
  /** The registration (endpoint version) each link last dialed for: a replica that registers again is dialed at once. */
  readonly dialedVersions: Map<ReplicaId, number>
  /** The commit point recorded in etcd (and given to the node). */
  recorded: number
  recording: boolean
  retryTimer: NodeJS.Timeout | undefined
  /** Armed while the lease does not hold: the unanswered writes are answered when it fires. */
  deadlineTimer: NodeJS.Timeout | undefined
  stopped: boolean
}

export const clusterTickMsDefault = 250
export const suspectAfterMsDefault = 400
/** How often a replica looks at its primary connection (a change is written to etcd at once). */
export const suspicionCheckMsDefault = 50
export const primarySilenceMsDefault = 2_500
export const writeDeadlineMsDefault = 5_000
export const snapshotEveryEntriesDefault = 10_000

export class ClusterNode {
  readonly #options: ClusterNodeOptions
  readonly #clock: MonotonicClock
  readonly #log: NodeLog
  #registration: NodeRegistration | undefined
  #coordinator: EtcdCoordinator | undefined
  #source: EtcdAssignmentSource | undefined
  #replicaServer: ReplicaServer | undefined
  #primary: PrimaryRun | undefined
  #assignment: ClusterAssignment | undefined
  #members: MemberView[] = []
  #role: ClusterRole = 'starting'
  #transitions: Promise<void> = Promise.resolve()
  #timer: NodeJS.Timeout | undefined
  #ticking = false
  #lastReportAtMs = -Infinity
  #lastReport = ''
  /** The last time (monotonic ms) this replica was in contact with the primary of `epoch`, or followed that epoch. */
  #primaryContact: { epoch: number; atMs: number } | undefined
  /** The suspicion published in etcd (`epoch/primary`), '' when none. */
  #publishedSuspicion = ''
  #loggedSuspicion = ''
  #suspicionTimer: NodeJS.Timeout | undefined
  #suspecting = false
  #suspicionError = ''
  #stopped = false
  /** The replica server's port once bound: kept across role changes (it is the address registered in etcd). */
  #boundPeerPort: number | undefined
  /** The recent recovery log operators read in `/_/cluster`: every line this runtime logs, bounded. */
  readonly #recoveryLog = new RecoveryLogRing()
  #primaryChanges = 0
  /** Trusted snapshots of this node's store (docs/cluster.md, "Snapshots and rebuild"). */
  #catalog: SnapshotCatalog | undefined
  /** The engine's storage port over this node (retained history, retention pins). */
  #storage: NodeSnapshotStorage | undefined
  /** Primary runs of this process (scopes the engine's session ids). */
  #primaryRuns = 0
  /** The image this replica receives (or last received): `/_/cluster`. */
  #receiving: { progress: TransferProgress; staged: boolean; filesLogged: number } | undefined

  private constructor(options: ClusterNodeOptions) {
    this.#options = options
    this.#clock = options.clock ?? (() => performance.now())
    const log = options.log ?? (() => {})
    this.#log = (message, fields) => {
      this.#recoveryLog.add(fields?.level ?? 'info', message, new Date())
      log(message, fields)
    }
  }

  /**
   * Starts as a replica (the replica server listens at once: a primary may
   * already be shipping), registers, campaigns as coordinator, and follows
   * the assignment.
   */
  static async start(options: ClusterNodeOptions): Promise<ClusterNode> {
    const runtime = new ClusterNode(options)
    try {
      await runtime.#openSnapshots()
      await runtime.#startReplicaServer()
      runtime.#role = 'replica'
      runtime.#registration = await NodeRegistration.register(options.control, {
        nodeId: options.nodeId,
        endpoint: { dataAddress: formatAddress(options.peerAdvertise ?? runtime.peerAddress), controlAddress: options.httpAddress },
        ttlSeconds: options.leaseTtlSeconds,
        clock: runtime.#clock,
      })
      await runtime.#report(true).catch(() => {})
      runtime.#coordinator = new EtcdCoordinator(options.control, {
        nodeId: options.nodeId,
        ttlSeconds: options.leaseTtlSeconds,
        clock: runtime.#clock,
        bootstrap: options.bootstrap,
        mayLead: () => runtime.#mayCoordinate(),
        onEvent: (event) => {
          if (event.kind === 'step_failed') runtime.#log(`coordinator: step failed: ${event.error.message}`, { level: 'warn' })
          else runtime.#log(`coordinator: ${event.kind} ${JSON.stringify(event)}`, { level: event.kind === 'promotion_blocked' || event.kind === 'swap_refused' ? 'warn' : 'info' })
        },
      })
      runtime.#coordinator.start()
      runtime.#source = await EtcdAssignmentSource.open(options.control, {
        onError: (error) => runtime.#log(`cluster: assignment watch: ${error.message}`, { level: 'warn' }),
      })
      runtime.#source.subscribe(() => {
        const current = runtime.#source?.currentCluster()
        if (current !== undefined) runtime.#follow(current)
      })
      const current = runtime.#source.currentCluster()
      if (current !== undefined) runtime.#follow(current)
      runtime.#schedule()
      runtime.#watchPrimary()
      return runtime
    } catch (error) {
      await runtime.stop().catch(() => {})
      throw error
    }
  }

  get role(): ClusterRole {
    return this.#role
  }

  get assignment(): ClusterAssignment | undefined {
    return this.#assignment
  }

  /** The replica server's address (the bound port when `--peer-listen` asked for port 0). */
  get peerAddress(): PeerAddress {
    return this.#replicaServer?.address ?? this.#options.peerListen
  }

  /** Where writes go when this node is a replica: the primary's HTTP address, when known. */
  primaryHttpAddress(): string | undefined {
    const assignment = this.#assignment
    if (assignment === undefined || assignment.primaryId === this.#options.nodeId) return undefined
    const address = this.#members.find((member) => member.nodeId === assignment.primaryId)?.endpoint?.controlAddress
    return address === undefined || address === '' ? undefined : address
  }

  /** Why this node, primary, cannot acknowledge writes now (its lease does not hold); undefined otherwise. */
  writeRefusal(): string | undefined {
    const run = this.#primary
    if (this.#role !== 'primary' || run === undefined || this.#options.gate.canAcknowledge()) return undefined
    return `the primary's lease at epoch ${run.assignment.epoch} is ${run.lease.state} (etcd unreachable, or a newer epoch exists)`
  }

  /** What operators see of this runtime (read-only; docs/cluster.md, "Watching a cluster"). */
  statusView(): ClusterRuntimeView {
    const assignment = this.#assignment
    const run = this.#primary
    return {
      runtime: this.#role,
      assignment:
        assignment === undefined
          ? undefined
          : {
              epoch: assignment.epoch,
              primaryId: assignment.primaryId,
              replicaIds: assignment.replicaIds,
              learnerIds: assignment.learnerIds,
              durability: assignment.durability,
              committedLsn: assignment.committedLsn,
            },
      lease: run?.lease.state,
      recordedCommitLsn: run?.recorded,
      replicas: run === undefined ? [] : this.#replicaViews(run),
      primaryChanges: this.#primaryChanges,
      recoveryLog: this.#recoveryLog.lines(),
    }
  }

  #replicaViews(run: PrimaryRun): ReplicaView[] {
    const durable = this.#options.node.wal.durable
    const states = new Map(this.#replicaStates().map((report) => [report.replicaId, report.state]))
    return shippedTo(run.assignment).map((replicaId) => {
      const link = linkOf(run, replicaId)
      const member = this.#members.find((candidate) => candidate.nodeId === replicaId)
      const flushed = link?.ackedLsn
      return {
        replicaId,
        membership: run.assignment.learnerIds.includes(replicaId) ? 'learner' : 'voter',
        state: states.get(replicaId) ?? 'disconnected',
        link: link === undefined ? 'none' : link.phase,
        address: member?.endpoint?.dataAddress,
        headLsn: link?.shippedLsn,
        flushedLsn: flushed,
        committedLsn: member?.report?.committedLsn,
        appliedLsn: member?.report?.appliedLsn,
        lagEntries: Math.max(0, durable - (flushed ?? 0)),
        connections: link?.counters.connections ?? 0,
        lastError: link?.lastError?.message,
      }
    })
  }

  /** Stops following, resigns, closes links and the replica server, and deregisters. The node itself stays open. */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    if (this.#suspicionTimer !== undefined) clearInterval(this.#suspicionTimer)
    await this.#source?.close().catch(() => {})
    await this.#transitions
    await this.#coordinator?.stop().catch(() => {})
    await this.#stopPrimary()
    await this.#replicaServer?.close().catch(() => {})
    this.#replicaServer = undefined
    await this.#registration?.close().catch(() => {})
    this.#role = 'stopped'
  }

  // ---------------------------------------------------------------- roles

  /** Each newer assignment, one at a time. */
  #follow(assignment: ClusterAssignment): void {
    this.#transitions = this.#transitions.then(async () => {
      if (this.#stopped) return
      const previous = this.#assignment
      if (previous !== undefined && assignment.epoch <= previous.epoch) return
      try {
        await this.#refreshMembers()
      } catch (error) {
        // etcd unreachable: the assignment is not taken yet, so the next tick's re-read follows it again. (Taking
        // it here would leave a deposed primary believing itself primary at its old epoch for good.)
        this.#log(`cluster: cannot follow the assignment of epoch ${assignment.epoch} yet: ${(error as Error).message}`, { level: 'warn' })
        return
      }
      this.#assignment = assignment
      // A new epoch's primary gets the whole grace to reach this replica before it is suspected.
      this.#primaryContact = { epoch: assignment.epoch, atMs: this.#clock() }
      if (previous !== undefined && previous.primaryId !== assignment.primaryId) this.#primaryChanges += 1
      try {
        if (assignment.primaryId === this.#options.nodeId) await this.#becomePrimary(assignment)
        else await this.#becomeReplica(assignment)
      } catch (error) {
        this.#log(`cluster: could not take the role of epoch ${assignment.epoch}: ${(error as Error).message}`, { level: 'error' })
        if (error instanceof InvariantViolation) throw error
        // Not primary after all: keep taking the primary's entries (a refusal such as needs_rebuild repeats there, logged).
        if (this.#primary === undefined && this.#replicaServer === undefined) {
          await this.#startReplicaServer().catch((failure: unknown) => this.#log(`cluster: replica server: ${(failure as Error).message}`, { level: 'error' }))
          this.#role = 'replica'
        }
      }
      await this.#report(true).catch(() => {})
    })
    this.#transitions = this.#transitions.catch((error: unknown) => {
      process.nextTick(() => {
        throw error
      })
    })
  }

  async #becomePrimary(assignment: ClusterAssignment): Promise<void> {
    const { node } = this.#options
    await this.#stopPrimary()
    // One writer of the WAL: the replica server goes before admission opens.
    await this.#replicaServer?.close()
    this.#replicaServer = undefined
    const outcome = await node.becomePrimary(assignment.epoch, assignment.committedLsn)
    if (outcome === 'stale') {
      this.#log(`cluster: assignment of epoch ${assignment.epoch} is older than this node's epoch ${node.clusterStatus().epoch}`, { level: 'warn' })
      await this.#startReplicaServer()
      this.#role = 'replica'
      return
    }
    this.#role = 'primary'
    this.#startPrimary(assignment)
    const learners = assignment.learnerIds.length === 0 ? '' : `, learners ${assignment.learnerIds.join(', ')}`
    this.#log(`cluster: primary at epoch ${assignment.epoch} (voters ${assignment.replicaIds.join(', ') || 'none'}${learners}, ${assignment.durability})`)
  }

  async #becomeReplica(assignment: ClusterAssignment): Promise<void> {
    const { node } = this.#options
    if (this.#primary !== undefined) {
      await this.#stopPrimary()
      // Deposed: admission stops now, writes it can no longer answer fail as of unknown outcome.
      await node.adoptEpoch(assignment.epoch, assignment.primaryId, assignment.lineageResets)
    }
    if (this.#replicaServer === undefined) await this.#startReplicaServer()
    this.#role = 'replica'
    this.#log(`cluster: replica at epoch ${assignment.epoch} of primary ${assignment.primaryId}`)
  }

  /** Snapshots are taken at checkpoints, and the WAL is kept from the newest one on, whatever this node's role. */
  async #openSnapshots(): Promise<void> {
    const { node } = this.#options
    const catalog = await SnapshotCatalog.open({ directory: path.join(path.dirname(node.store.directory), 'snapshots'), log: (message) => this.#log(message) })
    this.#catalog = catalog
    this.#storage = new NodeSnapshotStorage({ node, catalog, snapshotEveryEntries: this.#options.snapshotEveryEntries ?? snapshotEveryEntriesDefault, log: this.#log })
    node.setRetention(this.#storage)
    node.setSnapshotStatus(() => this.#snapshotStatus())
  }

  #snapshotStatus(): SnapshotStatusView {
    const newest = this.#catalog?.newest()
    const receiving = this.#receiving
    const serving: { replicaId: string; appliedIndex: number; bytesServed: number; staged: boolean }[] = []
    const run = this.#primary
    for (const replicaId of run?.assignment.replicaIds ?? []) {
      const offer = run === undefined ? undefined : linkOf(run, replicaId)?.snapshotOffer
      if (offer !== undefined) serving.push({ replicaId, appliedIndex: offer.appliedIndex, bytesServed: offer.bytesServed, staged: offer.staged })
    }
    return {
      newest: newest === undefined ? undefined : { appliedIndex: newest.appliedIndex, stateHash: newest.stateHash.hash },
      receiving: receiving === undefined ? undefined : { ...receiving.progress, staged: receiving.staged },
      serving,
    }
  }

  /** Progress of a received image: shown in `/_/cluster`, logged as each file verifies. */
  #receiveProgress(progress: TransferProgress): void {
    const previous = this.#receiving
    const current = previous?.progress.appliedIndex === progress.appliedIndex ? previous : { progress, staged: false, filesLogged: 0 }
    current.progress = progress
    this.#receiving = current
    if (progress.filesVerified > current.filesLogged) {
      current.filesLogged = progress.filesVerified
      this.#log(`cluster: snapshot at ${progress.appliedIndex}: ${progress.filesVerified}/${progress.filesTotal} files, ${progress.bytesReceived}/${progress.bytesTotal} bytes verified (${progress.bytesResumed} resumed, ${progress.chunksRefetched} chunks fetched again)`)
    }
  }

  /** What a link offers a replica beyond retention: the newest trusted image, when it starts at or after the WAL's tail. */
  #snapshotSource(): SnapshotChunkSource | undefined {
    const catalog = this.#catalog
    if (catalog === undefined) return undefined
    return {
      readChunk: (request) => catalog.readChunk(request),
      offerFor: (durableLsn) => {
        const newest = catalog.newest()
        if (newest === undefined || newest.appliedIndex <= durableLsn || newest.appliedIndex < this.#options.node.wal.tail) return undefined
        const manifest = catalog.manifestBytesOf(newest.appliedIndex)
        if (manifest === undefined) return undefined
        this.#log(`cluster: a replica at ${durableLsn} is beyond the WAL tail ${this.#options.node.wal.tail}: offering the snapshot at ${newest.appliedIndex}`, { level: 'warn' })
        return { appliedIndex: newest.appliedIndex, manifest }
      },
    }
  }

  async #startReplicaServer(): Promise<void> {
    const { node, peerListen, nodeId } = this.#options
    const state = node.replicaState()
    this.#replicaServer = await ReplicaServer.listen({
      replicaId: nodeId,
      wal: node.wal,
      state: {
        ...state,
        lineageResets: () => this.#assignment?.lineageResets ?? [],
        // The node keeps only what it holds of it, and marks the announcement heard (readiness).
        heardCommitted: (carriedLsn) => node.advanceCommitted(carriedLsn),
      },
      host: peerListen.host,
      port: this.#boundPeerPort ?? peerListen.port,
      snapshot: {
        directory: path.join(path.dirname(node.store.directory), 'rebuild'),
        clusterId: node.clusterId,
        onProgress: (progress) => this.#receiveProgress(progress),
        onStaged: (manifest) => {
          if (this.#receiving !== undefined) this.#receiving.staged = true
          this.#log(`cluster: snapshot at ${manifest.appliedIndex} staged (state hash ${manifest.stateHash.hash.slice(0, 12)}…): reopening to install it`, { level: 'warn' })
          this.#options.onSnapshotStaged?.(manifest.appliedIndex)
        },
        onFailed: (error) => this.#log(`cluster: snapshot transfer: ${error.message}`, { level: 'warn' }),
      },
    })
    this.#boundPeerPort = this.#replicaServer.address.port
  }

  #startPrimary(assignment: ClusterAssignment): void {
    const { node, control, gate, nodeId } = this.#options
    const registration = this.#registration
    if (registration === undefined) throw new InvariantViolation('a primary runs after registering')
    const ttlMs = registration.ttlSeconds * 1000
    const lease = new EtcdPrimaryLease(control, registration, {
      nodeId,
      epoch: assignment.epoch,
      safetyMarginMs: this.#options.safetyMarginMs ?? Math.floor(ttlMs / 4),
      clock: this.#clock,
    })
    const status = node.clusterStatus()
    // The quorum counts voters only: a learner's copy commits nothing (docs/cluster.md, "Membership").
    const tracker = new CommitTracker({
      mode: assignment.durability,
      memberCount: assignment.replicaIds.length + 1,
      voterIds: assignment.replicaIds,
      committedLsn: Lsn.of(status.committedLsn),
    })
    tracker.recordPrimaryDurable(Lsn.of(node.wal.durable))
    const run: PrimaryRun = {
      assignment,
      lease,
      tracker,
      links: new Map(),
      dialedVersions: new Map(),
      recovery: this.#options.recoveryMode === 'links' ? undefined : this.#startRecovery(assignment, tracker, () => run),
      unsubscribe: node.onFlushed((flushedLsn) => {
        tracker.recordPrimaryDurable(Lsn.of(flushedLsn))
        this.#recordCommit(run)
      }),
      recorded: status.committedLsn,
      recording: false,
      retryTimer: undefined,
      deadlineTimer: undefined,
      stopped: false,
    }
    this.#primary = run
    gate.hold(lease)
    lease.onChange((state) => {
      if (run.stopped) return
      this.#log(`cluster: primary lease ${state} at epoch ${assignment.epoch}`, { level: state === 'holding' ? 'info' : 'warn' })
      if (state === 'deposed') gate.depose()
      if (state === 'holding') {
        if (run.deadlineTimer !== undefined) clearTimeout(run.deadlineTimer)
        run.deadlineTimer = undefined
        node.releaseAcknowledgements()
        this.#recordCommit(run)
      } else this.#armWriteDeadline(run)
    })
    void registration.renew()
    this.#syncLinks(run)
  }

  /**
   * No write waits unanswered for etcd: once the lease has not held for
   * `writeDeadlineMs`, every write admitted and not answered is answered as
   * of unknown outcome. Each may still commit when etcd returns (its commit
   * recorded then), which is why the answer says to retry with the same
   * idempotency key: the retry finds the original result.
   */
  #armWriteDeadline(run: PrimaryRun): void {
    if (run.deadlineTimer !== undefined || run.stopped) return
    const deadlineMs = this.#options.writeDeadlineMs ?? writeDeadlineMsDefault
    run.deadlineTimer = setTimeout(() => {
      run.deadlineTimer = undefined
      if (run.stopped || this.#options.gate.canAcknowledge()) return
      const answered = this.#options.node.abandonUnanswered(`the primary could not record a commit in etcd for ${deadlineMs} ms (etcd unreachable, or this primary deposed)`)
      if (answered > 0) this.#log(`cluster: ${answered} unanswered writes answered as of unknown outcome: the lease at epoch ${run.assignment.epoch} has not held for ${deadlineMs} ms`, { level: 'warn' })
      // Writes admitted meanwhile (none while the lease lapses; some if it flapped) get the same bound.
      if (!this.#options.gate.canAcknowledge()) this.#armWriteDeadline(run)
    }, deadlineMs)
    run.deadlineTimer.unref()
  }

  /**
   * The driver of a primary run: acks feed the commit tracker; a lost
   * connection lowers that replica's ack to the recorded commit point (its
   * next connection's first ack says what it holds after the handshake's cut).
   */
  #startRecovery(assignment: ClusterAssignment, tracker: CommitTracker, runOf: () => PrimaryRun): PrimaryRecovery {
    const { node, nodeId } = this.#options
    const storage = this.#storage
    const catalog = this.#catalog
    if (storage === undefined || catalog === undefined) throw new InvariantViolation('a primary runs after its snapshots are open')
    this.#primaryRuns += 1
    const recovery = new PrimaryRecovery({
      nodeId,
      epoch: Epoch.of(assignment.epoch),
      incarnation: this.#primaryRuns,
      wal: node.wal,
      committedLsn: () => Lsn.of(runOf().recorded),
      storage,
      snapshots: { readChunk: (request) => catalog.readChunk(request), manifestBytesOf: (index) => catalog.manifestBytesOf(index) },
      ...(this.#options.link === undefined ? {} : { link: this.#options.link }),
      ...(this.#options.recovery === undefined ? {} : { tuning: this.#options.recovery }),
      clock: this.#clock,
      log: this.#log,
      // The quorum counts voters only: a learner's copy commits nothing (docs/cluster.md, "Membership").
      onAck: (replicaId, durableLsn) => {
        if (!assignment.replicaIds.includes(replicaId)) return
        tracker.resetAck(replicaId, durableLsn)
        this.#recordCommit(runOf())
      },
      onDisconnect: (replicaId) => {
        if (assignment.replicaIds.includes(replicaId)) tracker.lowerAck(replicaId, Lsn.of(runOf().recorded))
      },
      onDeposed: (epoch) => {
        this.#log(`cluster: a replica holds epoch ${epoch}: this primary (epoch ${assignment.epoch}) is deposed`, { level: 'warn' })
        this.#options.gate.depose()
      },
    })
    recovery.start()
    return recovery
  }

  /** One link per replica (voter or learner) of the assignment that registered an address; a new address restarts its link. */
  #syncLinks(run: PrimaryRun): void {
    const { node, nodeId } = this.#options
    if (run.recovery !== undefined) {
      const recovery = run.recovery
      // Learners too: they receive the log (the tracker counts only voters' acks).
      recovery.setMembers(
        shippedTo(run.assignment).map((replicaId) => {
          const endpoint = this.#members.find((member) => member.nodeId === replicaId)?.endpoint
          if (endpoint !== undefined) {
            const dialedVersion = run.dialedVersions.get(replicaId)
            run.dialedVersions.set(replicaId, endpoint.version)
            // Registered again (a restart): a link waiting out its backoff dials now, as in `links` mode below.
            if (dialedVersion !== undefined && endpoint.version > dialedVersion && recovery.transport.link(replicaId)?.redialNow() === true) {
              this.#log(`cluster: replica ${replicaId} registered again at ${endpoint.dataAddress}: dialing it now`)
            }
          }
          return { replicaId, dataAddress: endpoint?.dataAddress, endpointVersion: endpoint?.version ?? 0 }
        }),
      )
      return
    }
    const snapshotSource = this.#snapshotSource()
    for (const replicaId of shippedTo(run.assignment)) {
      const voter = run.assignment.replicaIds.includes(replicaId)
      const endpoint = this.#members.find((member) => member.nodeId === replicaId)?.endpoint
      const address = parsePeerAddress(endpoint?.dataAddress ?? '')
      if (endpoint === undefined || address === undefined) continue
      const existing = run.links.get(replicaId)
      const dialedVersion = run.dialedVersions.get(replicaId)
      run.dialedVersions.set(replicaId, endpoint.version)
      if (existing !== undefined) {
        if (existing.stopped) continue
        if (existing.address.host !== address.host || existing.address.port !== address.port) existing.setAddress(address)
        // Registered again at the same address (a restart): dial now rather than after the backoff (up to 5 s).
        else if (dialedVersion !== undefined && endpoint.version > dialedVersion && existing.redialNow()) {
          this.#log(`cluster: replica ${replicaId} registered again at ${endpoint.dataAddress}: dialing it now`)
        }
        continue
      }
      const link = new PrimaryLink({
        ...(this.#options.link ?? {}),
        localId: nodeId,
        replicaId,
        address,
        wal: node.wal,
        epoch: run.assignment.epoch,
        committedLsn: () => Lsn.of(run.recorded),
        // Acks on one connection only grow; a new connection's first ack says what the replica holds after the handshake's cut.
        onAck: (durableLsn) => {
          if (!voter) return
          run.tracker.resetAck(replicaId, durableLsn)
          this.#recordCommit(run)
        },
        onDisconnect: () => {
          if (voter) run.tracker.lowerAck(replicaId, Lsn.of(run.recorded))
        },
        onDeposed: (epoch) => {
          this.#log(`cluster: replica ${replicaId} holds epoch ${epoch}: this primary (epoch ${run.assignment.epoch}) is deposed`, { level: 'warn' })
          this.#options.gate.depose()
        },
        ...(snapshotSource === undefined ? {} : { snapshotSource }),
      })
      run.links.set(replicaId, link)
      link.start()
      link.setFollow(true)
    }
  }

  /**
   * Records the commit point the tracker allows in etcd (one record at a
   * time, each carrying the highest point known then), then gives it to the
   * node. Only while the lease holds: a primary that may be deposed records
   * nothing a promotion could miss.
   */
  #recordCommit(run: PrimaryRun): void {
    if (run.stopped || run.recording || run.retryTimer !== undefined) return
    const candidate = run.tracker.candidateLsn()
    if (candidate <= run.recorded || !this.#options.gate.canAcknowledge()) return
    run.recording = true
    this.#options.control
      .reportCommitted(run.assignment.epoch, candidate)
      .then((outcome) => {
        if (run.stopped) return
        if (outcome === 'stale_epoch') {
          this.#log(`cluster: etcd holds a newer epoch than ${run.assignment.epoch}: this primary is deposed`, { level: 'warn' })
          this.#options.gate.depose()
          return
        }
        run.recorded = Math.max(run.recorded, candidate)
        run.tracker.advance()
        this.#options.node.advanceCommitted(run.recorded)
      })
      .catch((error: unknown) => {
        if (run.stopped) return
        this.#log(`cluster: recording commit ${candidate}: ${(error as Error).message}`, { level: 'warn' })
        run.retryTimer = setTimeout(() => {
          run.retryTimer = undefined
          this.#recordCommit(run)
        }, 100)
      })
      .finally(() => {
        run.recording = false
        this.#recordCommit(run)
      })
  }

  async #stopPrimary(): Promise<void> {
    const run = this.#primary
    if (run === undefined) return
    this.#primary = undefined
    run.stopped = true
    this.#options.gate.hold(undefined)
    run.lease.close()
    run.unsubscribe()
    if (run.retryTimer !== undefined) clearTimeout(run.retryTimer)
    if (run.deadlineTimer !== undefined) clearTimeout(run.deadlineTimer)
    await Promise.all([...run.links.values()].map((link) => link.stop()))
    await run.recovery?.stop()
  }

  // ---------------------------------------------------------------- ticks

  #schedule(): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      void this.#tick().finally(() => this.#schedule())
    }, this.#options.tickMs ?? clusterTickMsDefault)
    this.#timer.unref()
  }

  /** Members (addresses), the assignment (in case the watch missed one), and this node's report. */
  async #tick(): Promise<void> {
    if (this.#ticking || this.#stopped) return
    this.#ticking = true
    try {
      await this.#refreshMembers()
      const primary = this.#primary
      if (primary !== undefined) this.#syncLinks(primary)
      const assignment = await this.#options.control.readAssignment()
      if (assignment !== undefined && (this.#assignment === undefined || assignment.epoch > this.#assignment.epoch)) this.#follow(assignment)
      await this.#namePrimary()
      await this.#report(false)
    } catch (error) {
      this.#log(`cluster: tick: ${(error as Error).message}`, { level: 'warn' })
    } finally {
      this.#ticking = false
    }
  }

  /** Looks at the primary connection often (no etcd call unless the answer changes), one check at a time. */
  #watchPrimary(): void {
    this.#suspicionTimer = setInterval(() => {
      if (this.#suspecting || this.#stopped) return
      this.#suspecting = true
      this.#suspect()
        .then(() => {
          this.#suspicionError = ''
        })
        .catch((error: unknown) => {
          // etcd unreachable: said once, not every check.
          const message = (error as Error).message
          if (message !== this.#suspicionError) this.#log(`cluster: publishing a suspicion: ${message}`, { level: 'warn' })
          this.#suspicionError = message
        })
        .finally(() => {
          this.#suspecting = false
        })
    }, suspicionCheckMsDefault)
    this.#suspicionTimer.unref()
  }

  /**
   * A replica of the current assignment that has had no live connection
   * from that epoch's primary for `suspectAfterMs` (or one silent for
   * `primarySilenceMs`) publishes a suspicion under its lease; it withdraws
   * it once the primary is back or the epoch moved. A false suspicion (a
   * partition between replicas and a live primary) costs at most one epoch
   * change, never an acknowledged write: the promotion is fenced on the
   * commit mark, and the old primary's next commit record is refused.
   */
  async #suspect(): Promise<void> {
    const registration = this.#registration
    const assignment = this.#assignment
    if (registration === undefined || this.#stopped) return
    let suspicion = ''
    if (this.#role === 'replica' && assignment !== undefined && assignment.replicaIds.includes(this.#options.nodeId)) {
      const now = this.#clock()
      const contact = this.#replicaServer?.primaryContact()
      const silenceMs = this.#options.primarySilenceMs ?? primarySilenceMsDefault
      let last = this.#primaryContact
      if (last === undefined || last.epoch !== assignment.epoch) last = this.#primaryContact = { epoch: assignment.epoch, atMs: now }
      // The replica server's frame times are performance.now(); so is the default clock. A session at the epoch counts while it speaks.
      if (contact !== undefined && contact.epoch === assignment.epoch && performance.now() - contact.lastFrameAtMs < silenceMs) last.atMs = now
      if (now - last.atMs >= (this.#options.suspectAfterMs ?? suspectAfterMsDefault)) suspicion = `${assignment.epoch}/${assignment.primaryId}`
    }
    if (suspicion === this.#publishedSuspicion) return
    if (suspicion === '') await registration.suspect(undefined)
    else if (assignment !== undefined) {
      // Logged once per suspicion, not at every failed attempt to publish it.
      if (suspicion !== this.#loggedSuspicion) this.#log(`cluster: no connection from primary ${assignment.primaryId} of epoch ${assignment.epoch}: suspecting it`, { level: 'warn' })
      this.#loggedSuspicion = suspicion
      await registration.suspect({ epoch: assignment.epoch, primaryId: assignment.primaryId })
    }
    this.#publishedSuspicion = suspicion
  }

  /** The primary does not coordinate while another member is registered: a SIGKILL must not take both. */
  #mayCoordinate(): boolean {
    const assignment = this.#assignment
    if (this.#role !== 'primary' || assignment === undefined) return true
    return !this.#members.some((member) => member.endpoint !== undefined && assignment.replicaIds.includes(member.nodeId))
  }

  /**
   * A replica that adopted its epoch at the primary's hello does not know the
   * primary's id: tell it (at the same epoch this changes nothing else), so
   * a write it refuses names where to go.
   */
  async #namePrimary(): Promise<void> {
    const assignment = this.#assignment
    if (this.#role !== 'replica' || assignment === undefined) return
    const status = this.#options.node.clusterStatus()
    if (status.role !== 'replica' || status.epoch !== assignment.epoch || status.primaryId === assignment.primaryId) return
    await this.#options.node.adoptEpoch(assignment.epoch, assignment.primaryId, assignment.lineageResets)
  }

  async #refreshMembers(): Promise<void> {
    this.#members = await this.#options.control.members()
  }

  /** What this node holds, under its lease: on every change, and at least every third of the TTL. */
  async #report(force: boolean): Promise<void> {
    const registration = this.#registration
    if (registration === undefined || this.#stopped) return
    const { node } = this.#options
    const status = node.clusterStatus()
    // A node that never held an assignment has nothing to report (epochs start at 1):
    // its registration alone makes it a member the bootstrap can assign.
    if (status.epoch === 0) return
    const report = {
      epoch: Epoch.of(status.epoch),
      durableLsn: Lsn.of(status.flushedLsn),
      safeLsn: lineageSafeLsn(node.logView()),
      committedLsn: Lsn.of(status.committedLsn),
      appliedLsn: Lsn.of(status.appliedIndex),
      replicaStates: this.#replicaStates(),
    }
    const text = JSON.stringify(report)
    const now = this.#clock()
    if (!force && text === this.#lastReport && now - this.#lastReportAtMs < (registration.ttlSeconds * 1000) / 3) return
    await registration.report(report)
    this.#lastReport = text
    this.#lastReportAtMs = now
  }

  #replicaStates(): ReplicaStateReport[] {
    const run = this.#primary
    if (run === undefined) return []
    return shippedTo(run.assignment).map((replicaId) => {
      const link = run.links.get(replicaId)
      const acked = link?.ackedLsn
      const state: ReplicaState =
        run.recovery !== undefined
          ? (run.recovery.sender(replicaId)?.state ?? 'disconnected')
          : link === undefined || acked === undefined
            ? 'disconnected'
            : acked >= run.recorded
              ? 'in_sync'
              : 'catching_up'
      const endpointVersion = this.#members.find((member) => member.nodeId === replicaId)?.endpoint?.version ?? 0
      return { replicaId, state, endpointVersion }
    })
  }
}

/** A replica's link on a primary run, in either recovery mode. */
function linkOf(run: PrimaryRun, replicaId: ReplicaId): PrimaryLink | undefined {
  return run.recovery?.transport.link(replicaId) ?? run.links.get(replicaId)
}

/** The replicas a primary ships to: the voters, then the learners (which receive the log but count for nothing). */
function shippedTo(assignment: ClusterAssignment): readonly ReplicaId[] {
  return [...assignment.replicaIds, ...assignment.learnerIds]
}

export function formatAddress(address: PeerAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
}
