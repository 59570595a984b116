/**
 * The primary side of the peer transport, one link per replica: dials the
 * replica, runs the handshake (the replica reports its log, this side finds
 * the match point by (index, epoch) with the protocol's `matchLog` and tells
 * the replica where to cut), then ships durable WAL entries in batches with
 * their own epochs, carrying the committed LSN, and collects the replica's
 * acknowledgements of its fsynced LSN.
 *
 * Bounds: at most `inFlightBytesMax` payload bytes shipped and not yet
 * acknowledged; batches of at most `batchEntriesMax` entries and
 * `batchBytesMax` bytes; a handshake that does not complete within
 * `handshakeTimeoutMs` and a connection silent for `idleTimeoutMs` are
 * closed. A lost connection is redialed after an exponential backoff
 * (`backoffMsMin` doubling up to `backoffMsMax`, reset by a completed
 * handshake); each new connection handshakes again, so shipping resumes
 * exactly after what the replica holds — no gap, no entry appended twice.
 * A replica at a newer epoch refuses the link (STALE_EPOCH): the link stops
 * for good and reports the epoch through `onDeposed`.
 *
 * While the link is matched it holds a WAL retention pin at the replica's
 * acknowledged LSN, so what the replica still needs is not recycled.
 */
import { crc32 } from 'node:zlib'
import * as net from 'node:net'
import { invariant } from '../../domain/index.ts'
import { Lsn, lineageSafeLsn, matchLog, type Epoch, type ReplicaLogView } from '../../replication/index.ts'
import { isWalError, type Wal, type WalRecord } from '../../wal/index.ts'
import { PeerConnection } from './connection.ts'
import { epochAt, readEpochWindow, validWindow, type EpochWindow } from './epochs.ts'
import { PeerError } from './errors.ts'
import { frameBytesMaxDefault, frameOverheadBytes } from './frame.ts'
import { shippedEntryOverheadBytes, type PeerMessage } from './messages.ts'

export interface PeerAddress {
  readonly host: string
  readonly port: number
}

export interface PrimaryLinkOptions {
  readonly localId: string
  readonly replicaId: string
  readonly address: PeerAddress
  readonly wal: Wal
  /** The epoch this primary writes in; every frame carries it. A new epoch needs a new link. */
  readonly epoch: Epoch
  /** The primary's committed LSN now, carried to the replica with entries and heartbeats. */
  readonly committedLsn: () => Lsn
  readonly frameBytesMax?: number
  readonly inFlightBytesMax?: number
  readonly batchEntriesMax?: number
  readonly batchBytesMax?: number
  readonly handshakeTimeoutMs?: number
  readonly idleTimeoutMs?: number
  readonly heartbeatMs?: number
  readonly backoffMsMin?: number
  readonly backoffMsMax?: number
  readonly matchWindowEntriesMax?: number
  /** Each acknowledgement of the replica's fsynced LSN (on the primary's lineage). */
  readonly onAck?: (durableLsn: Lsn) => void
  /** A replica holds a newer epoch: this primary is deposed. */
  readonly onDeposed?: (epoch: number) => void
  /** Every connection lost, with why (tests, logs). */
  readonly onDisconnect?: (error: PeerError) => void
  /** Where the files of an offered snapshot are read (docs/cluster.md, "Snapshots and rebuild"). */
  readonly snapshotSource?: SnapshotChunkSource
}

/** The primary's trusted images, as the link serves them. */
export interface SnapshotChunkSource {
  readChunk(request: { readonly appliedIndex: number; readonly file: string; readonly offset: number; readonly bytes: number }): Promise<Buffer>
  /**
   * A trusted image to rebuild a replica whose durable LSN lies below the
   * WAL's tail (its next entries were recycled): the link offers it on its
   * own instead of shipping. Absent, or undefined, the link ships as usual.
   */
  offerFor?(durableLsn: number): { readonly appliedIndex: number; readonly manifest: Buffer } | undefined
}

/** Chunk requests one connection may have waiting to be served: more is a misbehaving replica. */
export const chunkReadsMax = 64

/** A snapshot offered on one connection, and whether the replica staged it. */
export interface SnapshotOffer {
  readonly generation: number
  readonly appliedIndex: number
  staged: boolean
  bytesServed: number
}

export const inFlightBytesMaxDefault = 4 * 1024 * 1024
export const batchEntriesMaxDefault = 1024
export const batchBytesMaxDefault = 1024 * 1024
export const handshakeTimeoutMsDefault = 5_000
export const linkIdleTimeoutMsDefault = 10_000
export const heartbeatMsDefault = 1_000
export const backoffMsMinDefault = 50
export const backoffMsMaxDefault = 5_000

type Phase = 'idle' | 'dialing' | 'hello' | 'truncating' | 'matched'

interface Live {
  readonly generation: number
  readonly connection: PeerConnection
  phase: Phase
  /** The cut the handshake asked for. */
  cutLsn: number
  /** Highest LSN sent on this connection. */
  shippedLsn: number
  /** Highest LSN the replica acknowledged on this connection. */
  ackedLsn: number
  /** The smaller of both sides' frame bounds, learned from the hello reply. */
  frameBytesMax: number
  /** Shipped batches not yet acknowledged: last LSN and payload bytes. */
  readonly inFlight: Array<{ lsn: number; bytes: number }>
  inFlightBytes: number
  handshakeTimer: NodeJS.Timeout | undefined
  /** Chunk requests waiting to be served, in arrival order, with the offer each was checked against. */
  readonly chunkQueue: Array<{ readonly request: Extract<PeerMessage, { kind: 'chunk_request' }>; readonly offer: SnapshotOffer }>
  /** A loop is serving `chunkQueue`. */
  servingChunks: boolean
  /** A snapshot was offered on this connection: no entries are shipped on it. */
  rebuilding: boolean
}

/** The outcome of the handshake of a given connection generation. */
export interface LinkMatch {
  readonly generation: number
  readonly flushedLsn: Lsn
}

export class PrimaryLink {
  readonly #options: PrimaryLinkOptions
  #address: PeerAddress
  #live: Live | undefined
  #generation = 0
  #lastMatch: LinkMatch | undefined
  #lastError: PeerError | undefined
  #failures = 0
  #retryTimer: NodeJS.Timeout | undefined
  #heartbeatTimer: NodeJS.Timeout | undefined
  #stopped = false
  #offer: SnapshotOffer | undefined
  #deposedBy: number | undefined
  #follow = false
  #targetLsn = 0
  #pumping = false
  #pinRelease: (() => void) | undefined
  #pinnedAt = -1
  /** Names the engine's session in the hello (logs on the replica); else `<local>/<generation>`. */
  #sessionLabel: string | undefined
  readonly #unsubscribe: () => void
  readonly counters = { connections: 0, handshakes: 0, batches: 0, entries: 0, acks: 0 }

  constructor(options: PrimaryLinkOptions) {
    invariant(options.replicaId !== options.localId, 'a primary does not link to itself')
    this.#options = options
    this.#address = options.address
    this.#unsubscribe = options.wal.onDurable(() => {
      if (this.#follow) this.#pump()
    })
  }

  get replicaId(): string {
    return this.#options.replicaId
  }

  get address(): PeerAddress {
    return this.#address
  }

  get epoch(): Epoch {
    return this.#options.epoch
  }

  /** The current connection generation (a new one per dial). */
  get generation(): number {
    return this.#generation
  }

  get phase(): Phase {
    return this.#live?.phase ?? 'idle'
  }

  /** The replica's acknowledged fsynced LSN on the current connection, if it is matched. */
  get ackedLsn(): Lsn | undefined {
    const live = this.#live
    return live !== undefined && live.phase === 'matched' ? Lsn.of(live.ackedLsn) : undefined
  }

  get lastMatch(): LinkMatch | undefined {
    return this.#lastMatch
  }

  get lastError(): PeerError | undefined {
    return this.#lastError
  }

  get deposedBy(): number | undefined {
    return this.#deposedBy
  }

  /** Highest LSN sent on the current connection, if it is matched. */
  get shippedLsn(): Lsn | undefined {
    const live = this.#live
    return live !== undefined && live.phase === 'matched' ? Lsn.of(live.shippedLsn) : undefined
  }

  get inFlightBytes(): number {
    return this.#live?.inFlightBytes ?? 0
  }

  get stopped(): boolean {
    return this.#stopped
  }

  /** Dials now if idle (and keeps the link up, redialing after failures, until `stop`). */
  start(): void {
    if (this.#stopped || this.#live !== undefined || this.#retryTimer !== undefined) return
    this.#dial()
  }

  /** The replica moved (same identity, new endpoint): the next dial goes there. */
  setAddress(address: PeerAddress): void {
    this.#address = address
    this.restart()
  }

  /**
   * The replica registered again (it restarted): if the link is waiting out
   * its backoff, dial now; true when it did. A live connection is left alone.
   */
  redialNow(): boolean {
    if (this.#stopped || this.#live !== undefined || this.#retryTimer === undefined) return false
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    this.#failures = 0
    this.#dial()
    return true
  }

  /** Drops the current connection and dials again at once (a new session wants a fresh handshake). */
  restart(sessionLabel?: string): void {
    this.#sessionLabel = sessionLabel
    if (this.#stopped) return
    this.#live?.connection.close()
    if (this.#retryTimer !== undefined) {
      clearTimeout(this.#retryTimer)
      this.#retryTimer = undefined
    }
    this.#dial()
  }

  /** Live shipping: follow the WAL's durable head (after recovery completed), or stop following. */
  setFollow(follow: boolean): void {
    this.#follow = follow
    if (follow) this.#pump()
  }

  /** Ship at least up to `toLsn` on the current connection. */
  shipTo(toLsn: number): void {
    this.#targetLsn = Math.max(this.#targetLsn, toLsn)
    this.#pump()
  }

  /** A truncation was sent on the live connection and its answer has not come back yet. */
  get truncating(): boolean {
    return this.#live?.phase === 'truncating'
  }

  /** Asks the replica to drop entries above `toLsn` on the current, matched connection. */
  requestTruncate(toLsn: number): boolean {
    const live = this.#live
    if (live === undefined || live.phase !== 'matched') return false
    live.phase = 'truncating'
    live.cutLsn = toLsn
    live.shippedLsn = Math.min(live.shippedLsn, toLsn)
    live.connection.send(this.#options.epoch, { kind: 'truncate', toLsn })
    return true
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.#unsubscribe()
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    if (this.#heartbeatTimer !== undefined) clearInterval(this.#heartbeatTimer)
    this.#heartbeatTimer = undefined
    const live = this.#live
    if (live !== undefined) {
      const closed = new Promise<void>((resolve) => {
        if (live.connection.socket.destroyed) resolve()
        else live.connection.socket.once('close', () => resolve())
      })
      live.connection.close()
      await closed
    }
    this.#releasePin()
    // Let a pump that is reading the WAL notice the stop.
    while (this.#pumping) await new Promise<void>((resolve) => setImmediate(resolve))
  }

  // ------------------------------------------------------------ connection

  #dial(): void {
    invariant(!this.#stopped, 'no dial after stop')
    this.#retryTimer = undefined
    this.#generation += 1
    this.counters.connections += 1
    const generation = this.#generation
    const socket = net.connect({ host: this.#address.host, port: this.#address.port })
    const connection = new PeerConnection(socket, {
      frameBytesMax: this.#options.frameBytesMax ?? frameBytesMaxDefault,
      idleTimeoutMs: this.#options.idleTimeoutMs ?? linkIdleTimeoutMsDefault,
      onMessage: (message, epoch) => this.#receive(generation, message, epoch),
      onClose: (error) => this.#closed(generation, error),
    })
    const live: Live = {
      generation,
      connection,
      phase: 'dialing',
      chunkQueue: [],
      servingChunks: false,
      rebuilding: false,
      cutLsn: 0,
      shippedLsn: 0,
      ackedLsn: 0,
      frameBytesMax: this.#options.frameBytesMax ?? frameBytesMaxDefault,
      inFlight: [],
      inFlightBytes: 0,
      handshakeTimer: undefined,
    }
    this.#live = live
    live.handshakeTimer = setTimeout(() => {
      if (this.#live === live && live.phase !== 'matched') {
        connection.fail(this.#options.epoch, new PeerError({ reason: 'TIMEOUT', message: `handshake not done in ${this.#handshakeTimeoutMs()} ms` }))
      }
    }, this.#handshakeTimeoutMs())
    live.handshakeTimer.unref()
    socket.once('connect', () => {
      if (this.#live !== live) return
      live.phase = 'hello'
      connection.send(this.#options.epoch, {
        kind: 'hello',
        senderId: this.#options.localId,
        sessionId: this.#sessionLabel ?? `${this.#options.localId}/${generation}`,
        committedLsn: this.#options.committedLsn(),
      })
    })
  }

  #handshakeTimeoutMs(): number {
    return this.#options.handshakeTimeoutMs ?? handshakeTimeoutMsDefault
  }

  #closed(generation: number, error: PeerError | undefined): void {
    const live = this.#live
    if (live === undefined || live.generation !== generation) return
    if (live.handshakeTimer !== undefined) clearTimeout(live.handshakeTimer)
    this.#live = undefined
    this.#releasePin()
    const lost = error ?? new PeerError({ reason: 'CLOSED', message: 'connection closed' })
    this.#lastError = lost
    this.#options.onDisconnect?.(lost)
    if (lost.reason === 'STALE_EPOCH' && lost.peerEpoch !== undefined && lost.peerEpoch > this.#options.epoch) {
      // A newer primary exists: never ship again from this epoch.
      this.#deposedBy = lost.peerEpoch
      this.#stopped = true
      this.#options.onDeposed?.(lost.peerEpoch)
      return
    }
    if (this.#stopped) return
    this.#failures += 1
    const backoffMsMin = this.#options.backoffMsMin ?? backoffMsMinDefault
    const backoffMsMax = this.#options.backoffMsMax ?? backoffMsMaxDefault
    const delay = Math.min(backoffMsMax, backoffMsMin * 2 ** Math.min(this.#failures - 1, 20))
    this.#retryTimer = setTimeout(() => this.#dial(), delay)
    this.#retryTimer.unref()
  }

  #fail(live: Live, error: PeerError): void {
    live.connection.fail(this.#options.epoch, error)
  }

  // -------------------------------------------------------------- messages

  #receive(generation: number, message: PeerMessage, epoch: number): void {
    const live = this.#live
    if (live === undefined || live.generation !== generation) return
    if (epoch !== this.#options.epoch) {
      // Replicas answer at the epoch they adopted from our hello: anything else is another lineage's traffic.
      if (epoch > this.#options.epoch) {
        this.#fail(live, new PeerError({ reason: 'STALE_EPOCH', message: `replica is at epoch ${epoch}, this primary at ${this.#options.epoch}`, peerEpoch: epoch }))
        return
      }
      this.#fail(live, new PeerError({ reason: 'STALE_EPOCH', message: `a ${message.kind} of epoch ${epoch}, this primary is at ${this.#options.epoch}` }))
      return
    }
    switch (message.kind) {
      case 'hello_reply':
        if (live.phase !== 'hello') return this.#fail(live, new PeerError({ reason: 'PROTOCOL', message: `hello reply in phase ${live.phase}` }))
        live.phase = 'truncating'
        this.#match(live, message).catch((error: unknown) => this.#fail(live, asPeerError(error)))
        return
      case 'truncated':
        return this.#truncated(live, message.durableLsn)
      case 'ack':
        return this.#ack(live, message.durableLsn)
      case 'chunk_request':
        return this.#serveChunk(live, message)
      case 'snapshot_staged': {
        const offer = this.#offer
        if (offer === undefined || offer.generation !== live.generation || offer.appliedIndex !== message.appliedIndex) return this.#fail(live, new PeerError({ reason: 'PROTOCOL', message: `snapshot ${message.appliedIndex} staged, but not offered` }))
        offer.staged = true
        return
      }
      case 'hello':
      case 'truncate':
      case 'entries':
      case 'heartbeat':
      case 'error':
      case 'snapshot_offer':
      case 'chunk':
        return this.#fail(live, new PeerError({ reason: 'PROTOCOL', message: `a primary does not take ${message.kind}` }))
      default: {
        const never: never = message
        return this.#fail(live, new PeerError({ reason: 'PROTOCOL', message: `unknown message ${String(never)}` }))
      }
    }
  }

  /**
   * Offers a trusted snapshot on the matched connection (once per
   * connection): the replica pulls its files with chunk requests. False when
   * no connection is matched or no source is configured.
   */
  offerSnapshot(appliedIndex: number, manifest: Uint8Array): boolean {
    const live = this.#live
    if (live === undefined || live.phase !== 'matched' || this.#options.snapshotSource === undefined) return false
    if (this.#offer?.generation === live.generation && this.#offer.appliedIndex === appliedIndex) return true
    // Shipping would only be refused above the replica's gap: it stops on this connection while the image travels.
    live.rebuilding = true
    this.#offer = { generation: live.generation, appliedIndex, staged: false, bytesServed: 0 }
    live.connection.send(this.#options.epoch, { kind: 'snapshot_offer', manifest })
    return true
  }

  /** The last snapshot offered, on whichever connection: a staged one outlives the connection the replica's reopen ends. */
  get lastSnapshotOffer(): Readonly<SnapshotOffer> | undefined {
    return this.#offer
  }

  /** The snapshot offered on the current connection, if any (progress, staging). */
  get snapshotOffer(): Readonly<SnapshotOffer> | undefined {
    const offer = this.#offer
    return offer !== undefined && offer.generation === this.#live?.generation ? offer : undefined
  }

  #serveChunk(live: Live, request: Extract<PeerMessage, { kind: 'chunk_request' }>): void {
    const offer = this.#offer
    const source = this.#options.snapshotSource
    if (source === undefined || offer === undefined || offer.generation !== live.generation || offer.appliedIndex !== request.appliedIndex) {
      return this.#fail(live, new PeerError({ reason: 'PROTOCOL', message: `chunk of snapshot ${request.appliedIndex}, which was not offered` }))
    }
    if (live.chunkQueue.length + (live.servingChunks ? 1 : 0) >= chunkReadsMax) return this.#fail(live, new PeerError({ reason: 'PROTOCOL', message: `more than ${chunkReadsMax} chunk requests at once` }))
    live.chunkQueue.push({ request, offer })
    if (!live.servingChunks) void this.#serveChunks(live, source)
  }

  /**
   * Serves a connection's chunk requests one at a time, with a turn of the
   * event loop after each: a chunk (up to 4 MiB read, CRC'd and framed) is
   * the most this does between two turns, so lease renewals, heartbeats
   * and the API run while an image is served. Answered all at once, the
   * requests of a replica's window (their reads completing together) were
   * one long stretch on the event loop.
   */
  async #serveChunks(live: Live, source: SnapshotChunkSource): Promise<void> {
    live.servingChunks = true
    try {
      for (let next = live.chunkQueue.shift(); next !== undefined; next = live.chunkQueue.shift()) {
        if (live.connection.closed) return
        const { request, offer } = next
        let data: Buffer
        try {
          data = await source.readChunk(request)
        } catch (error) {
          return this.#fail(live, new PeerError({ reason: 'PROTOCOL', message: `chunk ${request.file.slice(0, 64)}@${request.offset}: ${(error as Error).message}` }))
        }
        if (live.connection.closed) return
        offer.bytesServed += data.byteLength
        live.connection.send(this.#options.epoch, { kind: 'chunk', appliedIndex: request.appliedIndex, file: request.file, offset: request.offset, crc32: crc32(data), data })
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
    } finally {
      live.servingChunks = false
      if (live.connection.closed) live.chunkQueue.length = 0
    }
  }

  /**
   * Finds where the replica's log stops matching this one (by (index,
   * epoch), never below its lineage-safe LSN) and capped at the committed
   * LSN: an uncommitted tail is dropped and re-shipped rather than revived,
   * so the engine's plan never needs a separate ahead-of-committed truncation.
   */
  async #match(live: Live, reply: Extract<PeerMessage, { kind: 'hello_reply' }>): Promise<void> {
    const replicaWindow: EpochWindow = { fromLsn: reply.runsFromLsn, toLsn: reply.durableLsn, runs: reply.runs }
    if (!validWindow(replicaWindow)) throw new PeerError({ reason: 'MALFORMED', message: 'epoch runs out of order' })
    if (reply.frameBytesMax < frameOverheadBytes + 1024) throw new PeerError({ reason: 'PROTOCOL', message: `replica frame bound ${reply.frameBytesMax} is too small to ship anything` })
    live.frameBytesMax = Math.min(live.frameBytesMax, reply.frameBytesMax)
    const { wal } = this.#options
    const replica: ReplicaLogView = {
      headLsn: Lsn.of(reply.headLsn),
      durableLsn: Lsn.of(reply.durableLsn),
      checkpointLsn: Lsn.of(reply.checkpointLsn),
      knownCommittedLsn: Lsn.of(reply.knownCommittedLsn),
      epochAt: (lsn) => epochAt(replicaWindow, lsn) as Epoch | undefined,
    }
    const floor = lineageSafeLsn(replica)
    const top = Math.min(reply.durableLsn, wal.durable)
    const ownWindow = await readEpochWindow(wal, {
      afterLsn: floor,
      toLsn: top,
      entriesMax: this.#options.matchWindowEntriesMax ?? 65_536,
    })
    if (this.#live !== live) return
    const matched = matchLog(replica, { headLsn: Lsn.of(top), epochAt: (lsn) => epochAt(ownWindow, lsn) as Epoch | undefined })
    const cut = Lsn.max(floor, Lsn.min(matched, this.#options.committedLsn()))
    live.cutLsn = cut
    this.counters.handshakes += 1
    live.connection.send(this.#options.epoch, { kind: 'truncate', toLsn: cut })
  }

  #truncated(live: Live, durableLsn: number): void {
    if (live.phase !== 'truncating') return this.#fail(live, new PeerError({ reason: 'PROTOCOL', message: `truncated in phase ${live.phase}` }))
    if (durableLsn > live.cutLsn) return this.#fail(live, new PeerError({ reason: 'PROTOCOL', message: `durable ${durableLsn} above the cut ${live.cutLsn}` }))
    const first = this.#lastMatch === undefined || this.#lastMatch.generation !== live.generation
    live.phase = 'matched'
    live.ackedLsn = durableLsn
    live.shippedLsn = durableLsn
    live.inFlight.length = 0
    live.inFlightBytes = 0
    if (live.handshakeTimer !== undefined) clearTimeout(live.handshakeTimer)
    live.handshakeTimer = undefined
    if (first) this.#lastMatch = { generation: live.generation, flushedLsn: Lsn.of(durableLsn) }
    this.#failures = 0
    this.#movePin(durableLsn)
    this.#startHeartbeat()
    this.#options.onAck?.(Lsn.of(durableLsn))
    // Beyond retention: what the replica needs next was recycled, so it is rebuilt from a snapshot first.
    if (durableLsn < this.#options.wal.tail) {
      const offer = this.#options.snapshotSource?.offerFor?.(durableLsn)
      if (offer !== undefined && this.offerSnapshot(offer.appliedIndex, offer.manifest)) return
    }
    this.#pump()
  }

  #ack(live: Live, durableLsn: number): void {
    if (live.phase !== 'matched') return // an ack of entries sent before a truncate: superseded by its answer
    if (durableLsn > live.shippedLsn) {
      return this.#fail(live, new PeerError({ reason: 'PROTOCOL', message: `ack of ${durableLsn} beyond what was shipped (${live.shippedLsn})` }))
    }
    this.counters.acks += 1
    if (durableLsn <= live.ackedLsn) return
    live.ackedLsn = durableLsn
    while (live.inFlight.length > 0 && (live.inFlight[0]?.lsn ?? Infinity) <= durableLsn) {
      const batch = live.inFlight.shift()
      invariant(batch !== undefined, 'batch present')
      live.inFlightBytes -= batch.bytes
    }
    this.#movePin(durableLsn)
    this.#options.onAck?.(Lsn.of(durableLsn))
    this.#pump()
  }

  #startHeartbeat(): void {
    if (this.#heartbeatTimer !== undefined) return
    this.#heartbeatTimer = setInterval(() => {
      const live = this.#live
      if (live === undefined || live.phase !== 'matched') return
      live.connection.send(this.#options.epoch, { kind: 'heartbeat', committedLsn: this.#options.committedLsn() })
    }, this.#options.heartbeatMs ?? heartbeatMsDefault)
    this.#heartbeatTimer.unref()
  }

  // -------------------------------------------------------------- retention

  #movePin(ackedLsn: number): void {
    if (ackedLsn <= this.#pinnedAt && this.#pinRelease !== undefined) return
    let release: (() => void) | undefined
    try {
      release = this.#options.wal.pinRetention(ackedLsn)
    } catch (error) {
      // Already recycled: the engine's plan will see it too and rebuild; shipping fails on read.
      if (!isWalError(error) || error.reason !== 'RECYCLED') throw error
    }
    this.#releasePin()
    this.#pinRelease = release
    this.#pinnedAt = release === undefined ? -1 : ackedLsn
  }

  #releasePin(): void {
    this.#pinRelease?.()
    this.#pinRelease = undefined
    this.#pinnedAt = -1
  }

  // --------------------------------------------------------------- shipping

  #pump(): void {
    if (this.#pumping) return
    const live = this.#live
    if (live === undefined || live.phase !== 'matched' || live.rebuilding) return
    this.#pumping = true
    this.#shipWhileRoom(live)
      .catch((error: unknown) => {
        if (this.#live === live) this.#fail(live, asPeerError(error))
      })
      .finally(() => {
        this.#pumping = false
        // Something may have arrived while this pump was reading.
        if (this.#live === live && live.phase === 'matched' && live.shippedLsn < this.#shipTarget() && live.inFlightBytes < this.#inFlightBytesMax()) this.#pump()
      })
  }

  #shipTarget(): number {
    const { wal } = this.#options
    return Math.min(wal.durable, this.#follow ? Math.max(wal.durable, this.#targetLsn) : this.#targetLsn)
  }

  #inFlightBytesMax(): number {
    return this.#options.inFlightBytesMax ?? inFlightBytesMaxDefault
  }

  async #shipWhileRoom(live: Live): Promise<void> {
    const batchEntriesMax = this.#options.batchEntriesMax ?? batchEntriesMaxDefault
    // An entries payload: committed u64 + count u32, then the entries.
    const frameRoom = live.frameBytesMax - frameOverheadBytes - 12
    const batchBytesMax = Math.min(this.#options.batchBytesMax ?? batchBytesMaxDefault, frameRoom)
    while (this.#live === live && live.phase === 'matched' && !this.#stopped) {
      const target = this.#shipTarget()
      if (live.shippedLsn >= target || live.inFlightBytes >= this.#inFlightBytesMax()) return
      const fromLsn = live.shippedLsn + 1
      const toLsn = Math.min(target, live.shippedLsn + batchEntriesMax)
      const entries: WalRecord[] = []
      let bytes = 0
      for await (const record of this.#options.wal.read(fromLsn, toLsn)) {
        const size = shippedEntryOverheadBytes + record.payload.byteLength
        if (entries.length > 0 && bytes + size > batchBytesMax) break
        if (size > frameRoom) throw new PeerError({ reason: 'FRAME_TOO_LARGE', message: `entry ${record.index} of ${size} bytes does not fit a frame` })
        entries.push(record)
        bytes += size
      }
      if (this.#live !== live || live.phase !== 'matched') return
      const last = entries[entries.length - 1]
      invariant(last !== undefined && entries[0]?.index === fromLsn, 'a batch continues what was shipped')
      live.connection.send(this.#options.epoch, { kind: 'entries', committedLsn: this.#options.committedLsn(), entries })
      live.shippedLsn = last.index
      live.inFlight.push({ lsn: last.index, bytes })
      live.inFlightBytes += bytes
      this.counters.batches += 1
      this.counters.entries += entries.length
    }
  }
}

function asPeerError(error: unknown): PeerError {
  if (error instanceof PeerError) return error
  if (isWalError(error)) return new PeerError({ reason: 'INTERNAL', message: `primary WAL: ${error.message}`, cause: error })
  return new PeerError({ reason: 'INTERNAL', message: error instanceof Error ? error.message : String(error), cause: error })
}
