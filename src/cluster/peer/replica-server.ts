/**
 * The replica side of the peer transport: accepts a primary's connection,
 * fences every frame by epoch, answers the handshake with its log for
 * matching by (index, epoch), applies truncations (never below what it knows
 * is committed), appends shipped entries to its own WAL with their own
 * epochs, and acknowledges the LSN it has fsynced — never more.
 *
 * Decisions are the replication protocol's pure functions (`fenceEpoch`,
 * `decideEpochAdoption`, `lineageSafeLsn`, `learnCommitted`); this module
 * only does the I/O. Persisting the epoch and the known committed LSN is
 * the server's job, through `ReplicaNodeState`.
 *
 * Frames from every connection are handled one at a time, in arrival order
 * (one WAL, one writer). A connection whose queued frames exceed
 * `queuedBytesMax` stops being read until the queue drains (TCP then pushes
 * back on the primary).
 */
import * as net from 'node:net'
import { performance } from 'node:perf_hooks'
import { InvariantViolation, invariant } from '../../domain/index.ts'
import {
  Epoch,
  Lsn,
  decideEpochAdoption,
  fenceEpoch,
  learnCommitted,
  lineageSafeLsn,
  type EpochAdoption,
  type LineageReset,
  type ProtocolFaults,
  type ReplicaLogView,
} from '../../replication/index.ts'
import type { Wal, WalRecord } from '../../wal/index.ts'
import { PeerConnection } from './connection.ts'
import { readEpochWindow } from './epochs.ts'
import { decodeManifest, type SnapshotManifest } from '../snapshot/manifest.ts'
import { receiveSnapshot, type SnapshotChunk, type TransferProgress } from '../snapshot/transfer.ts'
import { PeerError } from './errors.ts'
import { frameBytesMaxDefault } from './frame.ts'
import type { PeerMessage } from './messages.ts'

/** What the replica's server keeps about itself; the transport reads it and asks it to persist. */
export interface ReplicaNodeState {
  /** The epoch this node has persisted (its assignment's). */
  epoch(): Epoch
  /** The highest LSN this node knows is committed (persisted by the server). */
  knownCommittedLsn(): Lsn
  /** The LSN its store's last trusted checkpoint covers. */
  checkpointLsn(): Lsn
  isPrimary(): boolean
  lineageResets?(): readonly LineageReset[]
  /**
   * A primary brought a newer epoch and the protocol decided to adopt it:
   * persist `persistEpoch` and `knownCommittedLsn` (and wipe the store when
   * `wipeStore`) before resolving. The transport truncates the WAL itself
   * afterwards.
   */
  adoptEpoch(adoption: Extract<EpochAdoption, { kind: 'adopt' }>): Promise<void>
  /** A ship or heartbeat taught a higher committed LSN (held here). Persist lazily; it only grows. */
  learnCommitted(lsn: Lsn): void
  /**
   * Every ship or heartbeat of a matched session: the committed LSN its
   * primary announced, as carried (it may exceed what this replica holds).
   * A node's readiness needs it even when it teaches nothing new (a cluster
   * with nothing committed yet is caught up once it heard so).
   */
  heardCommitted?(carriedLsn: Lsn): void
}

export interface ReplicaServerOptions {
  readonly replicaId: string
  readonly wal: Wal
  readonly state: ReplicaNodeState
  readonly host?: string
  /** 0 = any free port */
  readonly port?: number
  readonly frameBytesMax?: number
  /** Close a connection that sends nothing for this long (the primary heartbeats). Default 10 s. */
  readonly idleTimeoutMs?: number
  /** Stop reading a connection while this many received bytes wait to be handled. Default 8 MiB. */
  readonly queuedBytesMax?: number
  /** Entries of its own log the replica describes at a handshake. Default 65 536. */
  readonly matchWindowEntriesMax?: number
  /** Open connections at once; more are refused. Default 8. */
  readonly connectionsMax?: number
  /** A bug shows: by default rethrown on the next tick (crashes the process); tests may collect it. */
  readonly onInvariantViolation?: (error: InvariantViolation) => void
  /** Every acknowledgement, as it is sent (tests observe ack ≤ fsynced). */
  readonly onAck?: (durableLsn: number) => void
  readonly faults?: ProtocolFaults
  /** Base transfer (docs/cluster.md, "Snapshots and rebuild"): absent, an offered snapshot is refused. */
  readonly snapshot?: ReplicaSnapshotOptions
}

export interface ReplicaSnapshotOptions {
  /** Staging directory of received images (`<data>/rebuild`). */
  readonly directory: string
  readonly clusterId: string
  readonly chunkBytes?: number
  readonly inFlightBytesMax?: number
  readonly onProgress?: (progress: TransferProgress) => void
  /** Every file verified in `directory`: the node installs it when it reopens (`installSnapshot`). */
  readonly onStaged?: (manifest: SnapshotManifest, directory: string) => void
  readonly onFailed?: (error: Error) => void
}

/** A snapshot being received on one session: the chunk requests waiting for their answer. */
interface Reception {
  readonly appliedIndex: number
  readonly waiting: Map<string, { resolve(chunk: SnapshotChunk): void; reject(error: Error): void }>
}

interface Session {
  readonly connection: PeerConnection
  epoch: number
  /** When this session's last frame arrived (monotonic ms): a primary heartbeats, so silence means it is gone or cut off. */
  lastFrameAtMs: number
  /** The primary saw this replica's log and told it where to cut: entries may flow. */
  matched: boolean
  queuedBytes: number
  paused: boolean
  reception?: Reception | undefined
}

/** Work a handled frame left running: the fsync and ack of shipped entries. */
interface Pending {
  readonly acknowledged: Promise<void>
}

export const replicaIdleTimeoutMsDefault = 10_000
export const queuedBytesMaxDefault = 8 * 1024 * 1024
export const matchWindowEntriesMaxDefault = 65_536
export const connectionsMaxDefault = 8
/** What a queued message costs against `queuedBytesMax` besides its entries' payloads. */
const messageCostBytes = 64

export class ReplicaServer {
  readonly #options: ReplicaServerOptions
  readonly #server: net.Server
  readonly #sessions = new Set<Session>()
  /** The session that last completed a hello: entries from any other are refused. */
  #current: Session | undefined
  #work: Promise<void> = Promise.resolve()
  #address: { host: string; port: number } | undefined
  #closed = false
  readonly counters = { appended: 0, duplicatesSkipped: 0, truncations: 0, refusedStale: 0, acks: 0 }

  private constructor(options: ReplicaServerOptions) {
    this.#options = options
    this.#server = net.createServer((socket) => this.#accept(socket))
  }

  static async listen(options: ReplicaServerOptions): Promise<ReplicaServer> {
    const server = new ReplicaServer(options)
    await new Promise<void>((resolve, reject) => {
      server.#server.once('error', reject)
      server.#server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.#server.off('error', reject)
        resolve()
      })
    })
    const address = server.#server.address()
    invariant(address !== null && typeof address === 'object', 'a TCP server has an address')
    server.#address = { host: address.address, port: address.port }
    return server
  }

  get address(): { host: string; port: number } {
    invariant(this.#address !== undefined, 'listening')
    return this.#address
  }

  /**
   * The primary this replica is connected to now: the epoch of the session
   * that last completed a hello, and when its last frame arrived
   * (`performance.now()` ms). Undefined while no primary session is open.
   */
  primaryContact(): { readonly epoch: number; readonly lastFrameAtMs: number } | undefined {
    const current = this.#current
    if (current === undefined || current.connection.closed) return undefined
    return { epoch: current.epoch, lastFrameAtMs: current.lastFrameAtMs }
  }

  /** Stops accepting, closes every connection, and waits for the frame in hand. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    for (const session of this.#sessions) session.connection.close()
    await closed
    await this.#work
  }

  #accept(socket: net.Socket): void {
    if (this.#closed || this.#sessions.size >= (this.#options.connectionsMax ?? connectionsMaxDefault)) {
      socket.destroy()
      return
    }
    // The connection's callbacks need the session, and the session holds the connection.
    const holder: { session?: Session } = {}
    const connection = new PeerConnection(socket, {
      frameBytesMax: this.#options.frameBytesMax ?? frameBytesMaxDefault,
      idleTimeoutMs: this.#options.idleTimeoutMs ?? replicaIdleTimeoutMsDefault,
      onMessage: (message, epoch) => {
        if (holder.session === undefined) return
        holder.session.lastFrameAtMs = performance.now()
        this.#enqueue(holder.session, message, epoch)
      },
      onClose: () => {
        const closed = holder.session
        if (closed === undefined) return
        this.#sessions.delete(closed)
        if (this.#current === closed) this.#current = undefined
        // A dropped connection ends its transfer; the staging directory keeps what was verified for the next offer.
        for (const waiter of closed.reception?.waiting.values() ?? []) waiter.reject(new Error('connection lost'))
      },
    })
    const session: Session = { connection, epoch: 0, lastFrameAtMs: performance.now(), matched: false, queuedBytes: 0, paused: false }
    holder.session = session
    this.#sessions.add(session)
  }

  #enqueue(session: Session, message: PeerMessage, epoch: number): void {
    // Every queued message counts (a flood of small frames is bounded too); entries by their payloads.
    const bytes = messageCostBytes + (message.kind === 'entries' ? message.entries.reduce((sum, entry) => sum + entry.payload.byteLength, 0) : message.kind === 'chunk' ? message.data.byteLength : 0)
    session.queuedBytes += bytes
    if (!session.paused && session.queuedBytes > (this.#options.queuedBytesMax ?? queuedBytesMaxDefault)) {
      session.paused = true
      session.connection.pause()
    }
    const release = (): void => {
      session.queuedBytes -= bytes
      if (session.paused && session.queuedBytes <= (this.#options.queuedBytesMax ?? queuedBytesMaxDefault) / 2) {
        session.paused = false
        session.connection.resume()
      }
    }
    this.#work = this.#work.then(async () => {
      let flushing: Promise<void> | undefined
      try {
        if (!session.connection.closed) flushing = (await this.#handle(session, message, epoch))?.acknowledged
      } catch (error) {
        this.#refuse(session, error)
      }
      // Shipped bytes count against the queue until they are fsynced, not merely appended.
      if (flushing === undefined) release()
      else
        flushing.then(release, (error: unknown) => {
          this.#refuse(session, error)
          release()
        })
    })
  }

  #refuse(session: Session, error: unknown): void {
    const epoch = this.#options.state.epoch()
    if (error instanceof PeerError) {
      session.connection.fail(epoch, error)
      return
    }
    session.connection.fail(epoch, new PeerError({ reason: 'INTERNAL', message: error instanceof Error ? error.message : String(error), cause: error }))
    if (error instanceof InvariantViolation) this.#reportViolation(error)
  }

  #reportViolation(error: InvariantViolation): void {
    const report = this.#options.onInvariantViolation
    if (report !== undefined) report(error)
    else
      process.nextTick(() => {
        throw error
      })
  }

  /** Every frame passes the epoch fence first; only a hello may bring a newer epoch. */
  /** Returns, for shipped entries, the promise of their fsync and acknowledgement (the next frame need not wait for it). */
  async #handle(session: Session, message: PeerMessage, frameEpoch: number): Promise<Pending | undefined> {
    const { state } = this.#options
    const nodeEpoch = state.epoch()
    const fence = frameEpoch < Epoch.first ? 'stale' : fenceEpoch(nodeEpoch, Epoch.of(frameEpoch), this.#options.faults)
    if (fence === 'stale') {
      this.counters.refusedStale += 1
      throw new PeerError({ reason: 'STALE_EPOCH', message: `frame of epoch ${frameEpoch}, this replica is at epoch ${nodeEpoch}` })
    }
    if (message.kind === 'hello') {
      await this.#hello(session, message, Epoch.of(frameEpoch), fence === 'future')
      return undefined
    }
    if (fence === 'future' || frameEpoch !== session.epoch) {
      throw new PeerError({ reason: 'FUTURE_EPOCH', message: `a ${message.kind} of epoch ${frameEpoch} on a session of epoch ${session.epoch}` })
    }
    switch (message.kind) {
      case 'truncate':
        await this.#truncate(session, message.toLsn)
        return undefined
      case 'entries':
        // Wrapped: an async function returning a bare promise would wait for it.
        return { acknowledged: this.#entries(session, message.entries, message.committedLsn) }
      case 'heartbeat':
        this.#learn(session, message.committedLsn)
        this.#ack(session)
        return undefined
      case 'snapshot_offer':
        this.#offer(session, message.manifest)
        return undefined
      case 'chunk':
        this.#chunk(session, message)
        return undefined
      case 'hello_reply':
      case 'truncated':
      case 'ack':
      case 'error':
      case 'chunk_request':
      case 'snapshot_staged':
        throw new PeerError({ reason: 'PROTOCOL', message: `a replica does not take ${message.kind}` })
      default: {
        const never: never = message
        throw new PeerError({ reason: 'PROTOCOL', message: `unknown message ${String(never)}` })
      }
    }
  }

  /** Starts pulling an offered image (once per session); the frames it needs flow while other work goes on. */
  #offer(session: Session, manifestBytes: Uint8Array): void {
    const options = this.#options.snapshot
    if (options === undefined) throw new PeerError({ reason: 'PROTOCOL', message: 'this replica takes no snapshots' })
    if (session.reception !== undefined) return
    const decoded = decodeManifest(manifestBytes)
    if (!decoded.ok) throw new PeerError({ reason: 'MALFORMED', message: `snapshot manifest: ${decoded.message}` })
    const reception: Reception = { appliedIndex: decoded.manifest.appliedIndex, waiting: new Map() }
    session.reception = reception
    const epoch = session.epoch
    receiveSnapshot({
      directory: options.directory,
      manifest: manifestBytes,
      clusterId: options.clusterId,
      ...(options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes }),
      ...(options.inFlightBytesMax === undefined ? {} : { inFlightBytesMax: options.inFlightBytesMax }),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      fetch: (request) =>
        new Promise<SnapshotChunk>((resolve, reject) => {
          if (session.connection.closed) return reject(new Error('connection lost'))
          reception.waiting.set(`${request.file}@${request.offset}`, { resolve, reject })
          session.connection.send(epoch, { kind: 'chunk_request', appliedIndex: reception.appliedIndex, ...request })
        }),
    })
      .then((manifest) => {
        if (!session.connection.closed) session.connection.send(epoch, { kind: 'snapshot_staged', appliedIndex: manifest.appliedIndex })
        options.onStaged?.(manifest, options.directory)
      })
      .catch((error: unknown) => {
        const failure = error instanceof Error ? error : new Error(String(error))
        options.onFailed?.(failure)
        if (!session.connection.closed) this.#refuse(session, new PeerError({ reason: 'INTERNAL', message: failure.message }))
      })
      .finally(() => {
        if (session.reception === reception) session.reception = undefined
      })
  }

  #chunk(session: Session, message: Extract<PeerMessage, { kind: 'chunk' }>): void {
    const key = `${message.file}@${message.offset}`
    const waiter = session.reception?.waiting.get(key)
    if (waiter === undefined || session.reception?.appliedIndex !== message.appliedIndex) throw new PeerError({ reason: 'PROTOCOL', message: `a chunk nobody asked for: ${key.slice(0, 80)}` })
    session.reception?.waiting.delete(key)
    waiter.resolve({ file: message.file, offset: message.offset, data: message.data, crc32: message.crc32 })
  }

  #view(): ReplicaLogView {
    const { wal, state } = this.#options
    return {
      headLsn: Lsn.of(wal.head),
      durableLsn: Lsn.of(wal.durable),
      checkpointLsn: state.checkpointLsn(),
      knownCommittedLsn: state.knownCommittedLsn(),
      epochAt: () => undefined, // the replica never matches itself: the primary does, from the hello reply
    }
  }

  async #hello(session: Session, message: Extract<PeerMessage, { kind: 'hello' }>, epoch: Epoch, future: boolean): Promise<void> {
    const { wal, state } = this.#options
    if (future) {
      const adoption = decideEpochAdoption({
        log: this.#view(),
        currentEpoch: state.epoch(),
        offeredEpoch: epoch,
        isPrimary: state.isPrimary(),
        ...(state.lineageResets === undefined ? {} : { lineageResets: state.lineageResets() }),
      })
      if (adoption.kind === 'ignore') {
        throw new PeerError({ reason: 'FUTURE_EPOCH', message: `epoch ${epoch} not adopted (${adoption.reason})` })
      }
      await state.adoptEpoch(adoption)
      invariant(state.epoch() === epoch, () => `adoptEpoch persisted epoch ${state.epoch()}, not ${epoch}`)
      if (adoption.wipeStore) throw new PeerError({ reason: 'REBUILD_REQUIRED', message: `the store lies above a lineage reset; rebuild at epoch ${epoch}` })
      if (wal.head > adoption.truncateToLsn) await this.#truncateWal(adoption.truncateToLsn)
    }
    // A newer hello supersedes: one primary session at a time.
    const previous = this.#current
    if (previous !== undefined && previous !== session) previous.connection.close()
    this.#current = session
    session.epoch = epoch
    session.matched = false
    const floor = lineageSafeLsn(this.#view())
    const window = await readEpochWindow(wal, {
      afterLsn: floor,
      toLsn: wal.durable,
      entriesMax: this.#options.matchWindowEntriesMax ?? matchWindowEntriesMaxDefault,
    })
    session.connection.send(state.epoch(), {
      kind: 'hello_reply',
      replicaId: this.#options.replicaId,
      headLsn: wal.head,
      durableLsn: wal.durable,
      tailLsn: wal.tail,
      knownCommittedLsn: state.knownCommittedLsn(),
      checkpointLsn: state.checkpointLsn(),
      frameBytesMax: this.#options.frameBytesMax ?? frameBytesMaxDefault,
      runsFromLsn: window.fromLsn,
      runs: window.runs,
    })
    void message
  }

  async #truncate(session: Session, toLsn: number): Promise<void> {
    if (this.#current !== session) throw new PeerError({ reason: 'PROTOCOL', message: 'truncate on a superseded session' })
    const floor = lineageSafeLsn(this.#view())
    if (toLsn < floor && toLsn < this.#options.wal.head) {
      // The primary computed the cut from this replica's own report: below the floor is a bug on one side.
      this.#reportViolation(new InvariantViolation(`asked to truncate after ${toLsn}, below the lineage-safe LSN ${floor}`))
      throw new PeerError({ reason: 'TRUNCATE_BELOW_COMMITTED', message: `truncate after ${toLsn} is below the lineage-safe LSN ${floor}` })
    }
    const { wal } = this.#options
    if (wal.head > toLsn) await this.#truncateWal(toLsn)
    session.matched = true
    session.connection.send(this.#options.state.epoch(), { kind: 'truncated', durableLsn: wal.durable })
  }

  async #truncateWal(toLsn: number): Promise<void> {
    await this.#options.wal.truncateAfter(toLsn)
    this.counters.truncations += 1
  }

  /**
   * Appends at once (synchronous, in order) and returns the promise of the
   * fsync and the ack: batches handled while a group is being written join
   * the next one (group commit), and acks still follow their fsync, in order.
   */
  #entries(session: Session, entries: readonly WalRecord[], committedLsn: number): Promise<void> {
    const { wal } = this.#options
    if (this.#current !== session || !session.matched) {
      throw new PeerError({ reason: 'PROTOCOL', message: 'entries before the handshake matched the logs' })
    }
    for (const entry of entries) {
      if (entry.index <= wal.head) {
        // Sent again after a resend: the handshake proved this prefix is the primary's.
        this.counters.duplicatesSkipped += 1
        continue
      }
      if (entry.index !== wal.head + 1) {
        throw new PeerError({ reason: 'GAP', message: `entry ${entry.index} does not follow head ${wal.head}` })
      }
      if (entry.epoch > session.epoch || entry.epoch < wal.epochHead) {
        throw new PeerError({ reason: 'PROTOCOL', message: `entry ${entry.index} of epoch ${entry.epoch} (session ${session.epoch}, head epoch ${wal.epochHead})` })
      }
      const index = wal.append({ epoch: entry.epoch, type: entry.type, payload: entry.payload })
      invariant(index === entry.index, () => `appended at ${index}, shipped as ${entry.index}`)
      this.counters.appended += 1
    }
    return wal.flush().then(() => {
      if (session.connection.closed) return
      this.#learn(session, committedLsn)
      this.#ack(session)
    })
  }

  #learn(session: Session, carriedCommittedLsn: number): void {
    if (!session.matched) return
    const { wal, state } = this.#options
    const known = learnCommitted(this.#view(), Lsn.of(carriedCommittedLsn), Lsn.of(wal.durable))
    if (known > state.knownCommittedLsn()) state.learnCommitted(known)
    state.heardCommitted?.(Lsn.of(carriedCommittedLsn))
  }

  #ack(session: Session): void {
    if (!session.matched) return
    const durableLsn = this.#options.wal.durable
    this.counters.acks += 1
    this.#options.onAck?.(durableLsn)
    session.connection.send(this.#options.state.epoch(), { kind: 'ack', durableLsn })
  }
}
