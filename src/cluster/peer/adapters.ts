/**
 * The recovery engine's transport ports over peer links, so the
 * `RecoveryDriver` runs on a real primary: `connect` is the handshake (log
 * matching by (index, epoch), the replica cut at the match point capped at
 * the committed LSN), `streamWal` ships (from, to] and reports the replica's
 * acknowledged fsynced LSN, `truncate` drops a replica's tail above an LSN.
 * Every call is synchronous and non-blocking: it starts work on the link and
 * reports what is known now; the driver polls once per tick.
 *
 * A session is bound to one connection (generation) of its link: if that
 * connection is lost, every later call for the session reports `ok: false`
 * (the driver invalidates it and starts a new one, which redials).
 *
 * Base transfer (docs/cluster.md, "Snapshots and rebuild"): `transferSnapshot`
 * offers a trusted image on the session's matched connection and the replica
 * pulls it into its staging directory. A staged image is installed when the
 * replica's node reopens on it, which ends the connection: the call then
 * reports the image installed with `reopening`, and the session waits for
 * the replica to come back — `connect` for the same session answers the
 * handshake of the link's next connection (the link redials on its own), the
 * session is bound to that connection, and the rebuild ships the WAL tail
 * on it. Full base copies are refused (`full_base_unsupported`).
 */
import { invariant } from '../../domain/index.ts'
import {
  Lsn,
  type ConnectReport,
  type Endpoint,
  type Epoch,
  type ReplicaConnector,
  type ReplicaId,
  type ReplicaTruncator,
  type SessionId,
  type SessionTicket,
  type TransferReport,
  type TruncateReport,
  type WalStreamer,
  type BaseTransfer,
  type BaseTransferReport,
} from '../../replication/index.ts'
import type { Wal } from '../../wal/index.ts'
import type { PeerError } from './errors.ts'
import { PrimaryLink, type PeerAddress, type PrimaryLinkOptions, type SnapshotChunkSource } from './primary-link.ts'

/** The primary's trusted images (a `SnapshotCatalog`). */
export interface SnapshotOfferSource extends SnapshotChunkSource {
  manifestBytesOf(appliedIndex: number): Buffer | undefined
}

export type LinkTuning = Omit<PrimaryLinkOptions, 'localId' | 'replicaId' | 'address' | 'wal' | 'epoch' | 'committedLsn' | 'onAck' | 'onDisconnect' | 'onDeposed' | 'snapshotSource'>

export interface PeerTransportOptions {
  readonly localId: string
  readonly wal: Wal
  /** The primary's epoch; a new epoch needs a new transport (links are fenced by it). */
  readonly epoch: Epoch
  readonly committedLsn: () => Lsn
  readonly link?: LinkTuning
  /** A replica's acknowledged fsynced LSN (the commit tracker's input). */
  readonly onAck?: (replicaId: ReplicaId, durableLsn: Lsn) => void
  /**
   * A replica's connection was lost: its acknowledgements no longer count
   * until the next connection's first ack (the commit tracker lowers it), and
   * a replica that was in sync must be marked degraded so the driver starts a
   * catch-up session for it.
   */
  readonly onDisconnect?: (replicaId: ReplicaId, error: PeerError) => void
  /** Some replica holds a newer epoch: this primary is deposed. */
  readonly onDeposed?: (epoch: number) => void
  /** Trusted snapshots to rebuild replicas from; absent, `transferSnapshot` is refused. */
  readonly snapshots?: SnapshotOfferSource
}

interface SessionBinding {
  readonly sessionId: SessionId
  readonly generation: number
  /** The replica staged an image on `generation` and reopens on it: the session moves to the next matched connection. */
  readonly reopening?: boolean
}

/** `host:port` (IPv6 in brackets: `[::1]:4068`). */
export function parsePeerAddress(text: string, options: { readonly portZero?: boolean } = {}): PeerAddress | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text)
  if (match === null) return undefined
  const port = Number(match[3])
  const host = match[1] ?? match[2]
  if (host === undefined || !Number.isInteger(port) || port < (options.portZero === true ? 0 : 1) || port > 65_535) return undefined
  return { host, port }
}

export class PeerTransport implements ReplicaConnector, WalStreamer, ReplicaTruncator, BaseTransfer {
  readonly #options: PeerTransportOptions
  readonly #links = new Map<ReplicaId, PrimaryLink>()
  readonly #sessions = new Map<ReplicaId, SessionBinding>()

  constructor(options: PeerTransportOptions) {
    this.#options = options
  }

  link(replicaId: ReplicaId): PrimaryLink | undefined {
    return this.#links.get(replicaId)
  }

  connect(request: { readonly replicaId: ReplicaId; readonly sessionId: SessionId; readonly endpoint: Endpoint; readonly epoch: Epoch }): ConnectReport {
    if (request.epoch !== this.#options.epoch) return { ok: false, reason: 'epoch_mismatch' }
    const address = parsePeerAddress(request.endpoint.dataAddress)
    if (address === undefined) return { ok: false, reason: 'bad_address' }
    const link = this.#linkFor(request.replicaId, address)
    if (link.stopped) return { ok: false, reason: link.deposedBy === undefined ? 'link_stopped' : 'deposed' }
    let binding = this.#sessions.get(request.replicaId)
    if (binding !== undefined && binding.sessionId === request.sessionId && binding.reopening === true) {
      // Back after its reopen: the first connection matched after the staging one carries the session on.
      const match = link.lastMatch
      if (match === undefined || match.generation <= binding.generation || match.generation !== link.generation) return { ok: true, flushedLsn: undefined }
      this.#sessions.set(request.replicaId, { sessionId: request.sessionId, generation: match.generation })
      return { ok: true, flushedLsn: match.flushedLsn }
    }
    if (binding === undefined || binding.sessionId !== request.sessionId) {
      // A new session gets a fresh connection and handshake; live shipping stops until it completes.
      link.setFollow(false)
      link.restart(request.sessionId)
      binding = { sessionId: request.sessionId, generation: link.generation }
      this.#sessions.set(request.replicaId, binding)
    }
    const match = link.lastMatch
    if (match !== undefined && match.generation === binding.generation) return { ok: true, flushedLsn: match.flushedLsn }
    if (link.generation !== binding.generation || link.phase === 'idle') return { ok: false, reason: this.#lostReason(link) }
    return { ok: true, flushedLsn: undefined }
  }

  streamWal(request: { readonly ticket: SessionTicket; readonly fromLsnExclusive: Lsn; readonly toLsnInclusive: Lsn }): TransferReport {
    const link = this.#boundLink(request.ticket)
    if (typeof link === 'string') return { ok: false, reason: link }
    link.shipTo(request.toLsnInclusive)
    const acked = link.ackedLsn
    if (acked === undefined) return { ok: false, reason: 'not_matched' }
    return { ok: true, durableLsn: acked }
  }

  /**
   * The handshake already cut the replica at or below the committed LSN, so
   * a replica holding nothing above `toLsn` on this session reports the
   * truncation as done at once. Otherwise the truncation is sent on the
   * matched connection and the call answers "pending" (`truncatedToLsn`
   * undefined) until the replica's `truncated` reply arrives; the executor
   * polls within its `truncateTimeoutTicks`.
   */
  truncate(request: { readonly ticket: SessionTicket; readonly toLsn: Lsn }): TruncateReport {
    const link = this.#boundLink(request.ticket)
    if (typeof link === 'string') return { ok: false, reason: link }
    if (link.truncating) return { ok: true, truncatedToLsn: undefined }
    const shipped = link.shippedLsn
    if (shipped === undefined) return { ok: false, reason: 'not_matched' }
    if (shipped <= request.toLsn) return { ok: true, truncatedToLsn: request.toLsn }
    if (!link.requestTruncate(request.toLsn)) return { ok: false, reason: 'not_matched' }
    return { ok: true, truncatedToLsn: undefined }
  }

  transferSnapshot(request: { readonly ticket: SessionTicket; readonly snapshotLsn: Lsn }): BaseTransferReport {
    const snapshots = this.#options.snapshots
    if (snapshots === undefined) return { ok: false, reason: 'snapshots_disabled' }
    const binding = this.#sessions.get(request.ticket.replicaId)
    const staged = this.#links.get(request.ticket.replicaId)?.lastSnapshotOffer
    if (binding !== undefined && binding.sessionId === request.ticket.sessionId && staged !== undefined && staged.generation === binding.generation && staged.appliedIndex === request.snapshotLsn && staged.staged) {
      // The replica installs it by reopening, which ends this connection (perhaps already): the session waits for its next one.
      this.#sessions.set(request.ticket.replicaId, { sessionId: request.ticket.sessionId, generation: binding.generation, reopening: true })
      return { ok: true, installedLsn: request.snapshotLsn, reopening: true }
    }
    const link = this.#boundLink(request.ticket)
    if (typeof link === 'string') return { ok: false, reason: link }
    const offer = link.snapshotOffer
    if (offer === undefined || offer.appliedIndex !== request.snapshotLsn) {
      const manifest = snapshots.manifestBytesOf(request.snapshotLsn)
      if (manifest === undefined) return { ok: false, reason: 'snapshot_missing' }
      if (!link.offerSnapshot(request.snapshotLsn, manifest)) return { ok: false, reason: 'not_matched' }
    }
    return { ok: true, installedLsn: undefined }
  }

  transferFullBase(_request: { readonly ticket: SessionTicket; readonly targetLsn: Lsn }): BaseTransferReport {
    return { ok: false, reason: 'full_base_unsupported' }
  }

  /** Live shipping to a replica whose recovery completed (`DriverReady.completed`). */
  follow(replicaId: ReplicaId): void {
    this.#links.get(replicaId)?.setFollow(true)
  }

  /** Stops and forgets a replica's link (removed from the assignment). */
  async forget(replicaId: ReplicaId): Promise<void> {
    const link = this.#links.get(replicaId)
    this.#links.delete(replicaId)
    this.#sessions.delete(replicaId)
    await link?.stop()
  }

  async close(): Promise<void> {
    const links = [...this.#links.values()]
    this.#links.clear()
    this.#sessions.clear()
    await Promise.all(links.map((link) => link.stop()))
  }

  #linkFor(replicaId: ReplicaId, address: PeerAddress): PrimaryLink {
    const existing = this.#links.get(replicaId)
    // Deposed stays deposed: keep the stopped link so callers see why.
    if (existing !== undefined && (!existing.stopped || existing.deposedBy !== undefined)) {
      if (!existing.stopped && (existing.address.host !== address.host || existing.address.port !== address.port)) existing.setAddress(address)
      return existing
    }
    const link = new PrimaryLink({
      ...(this.#options.link ?? {}),
      localId: this.#options.localId,
      replicaId,
      address,
      wal: this.#options.wal,
      epoch: this.#options.epoch,
      committedLsn: this.#options.committedLsn,
      onAck: (durableLsn) => this.#options.onAck?.(replicaId, durableLsn),
      onDisconnect: (error) => this.#options.onDisconnect?.(replicaId, error),
      onDeposed: (epoch) => this.#options.onDeposed?.(epoch),
      ...(this.#options.snapshots === undefined ? {} : { snapshotSource: this.#options.snapshots }),
    })
    this.#links.set(replicaId, link)
    this.#sessions.delete(replicaId)
    return link
  }

  #boundLink(ticket: SessionTicket): PrimaryLink | string {
    const link = this.#links.get(ticket.replicaId)
    const binding = this.#sessions.get(ticket.replicaId)
    if (link === undefined || binding === undefined || binding.sessionId !== ticket.sessionId) return 'session_unknown'
    if (link.generation !== binding.generation || link.phase === 'idle') return this.#lostReason(link)
    invariant(ticket.epoch === this.#options.epoch, 'a bound session has the transport epoch')
    return link
  }

  #lostReason(link: PrimaryLink): string {
    const error = link.lastError
    return error === undefined ? 'connection_lost' : `connection_lost_${error.reason.toLowerCase()}`
  }
}
