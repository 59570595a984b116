/**
 * The recovery engine's storage port on a real primary (`StorageAdapter`,
 * docs/replication.md): the retained history of the node's WAL, with the
 * newest **trusted** snapshot as its checkpoint, and the retention pins a
 * session holds while it catches a replica up or rebuilds it.
 *
 * It also decides when snapshots are taken and how far the WAL may be
 * recycled (`NodeRetentionHooks`): an image is taken at a store checkpoint
 * once the newest one is `snapshotEveryEntries` behind, and the WAL is never
 * recycled past the newest trusted image nor past a pinned range, so a
 * replica beyond retention can always be rebuilt from snapshot + tail.
 */
import { Lsn, type PinOwner, type PinResult, type RetainedHistory, type StorageAdapter } from '../../replication/index.ts'
import type { LedgerNode, NodeLog, NodeRetentionHooks } from '../../server/index.ts'
import type { SnapshotCatalog } from './image.ts'

/** What the adapter reads of the node (a `LedgerNode` in cluster mode). */
export type SnapshotNodeView = Pick<LedgerNode, 'wal' | 'store' | 'clusterStatus'>

export interface NodeSnapshotStorageOptions {
  readonly node: SnapshotNodeView
  readonly catalog: SnapshotCatalog
  /** A new image once the newest is this many entries behind the checkpoint. */
  readonly snapshotEveryEntries: number
  readonly log?: NodeLog
}

export class NodeSnapshotStorage implements StorageAdapter, NodeRetentionHooks {
  readonly #options: NodeSnapshotStorageOptions
  /** Pinned WAL ranges: the lowest kept LSN (exclusive) per live pin. */
  readonly #walPins = new Map<number, number>()
  #pinCounter = 0
  #taking = false

  constructor(options: NodeSnapshotStorageOptions) {
    this.#options = options
  }

  retainedHistory(): RetainedHistory {
    const { wal } = this.#options.node
    const status = this.#options.node.clusterStatus()
    const newest = this.#options.catalog.newest()
    // Only an image whose files matched its manifest is a checkpoint the engine may rebuild from.
    const trusted = newest !== undefined && newest.appliedIndex <= wal.head
    return {
      headLsn: Lsn.of(wal.head),
      tailLsn: Lsn.of(wal.tail),
      committedLsn: Lsn.of(Math.min(status.committedLsn, wal.head)),
      checkpointLsn: Lsn.of(trusted ? newest.appliedIndex : 0),
      checkpointTrusted: trusted,
    }
  }

  pinWalRetention(_owner: PinOwner, fromLsnExclusive: Lsn): PinResult {
    if (fromLsnExclusive < this.#options.node.wal.tail) return { ok: false, reason: `recycled: the WAL starts after ${this.#options.node.wal.tail}` }
    const id = ++this.#pinCounter
    this.#walPins.set(id, fromLsnExclusive)
    // Not logged here: the engine's recovery log records the pin with its session (`pin_acquired`, `plan_created … pins=`).
    return { ok: true, release: () => void this.#walPins.delete(id) }
  }

  pinSnapshot(_owner: PinOwner, snapshotLsn: Lsn): PinResult {
    return this.#options.catalog.pin(snapshotLsn)
  }

  pinFullBase(_owner: PinOwner, _targetLsn: Lsn): PinResult {
    return { ok: false, reason: 'full_base_unsupported: a replica is rebuilt from a trusted snapshot and its WAL tail only' }
  }

  recycleFloor(): number {
    const newest = this.#options.catalog.newest()
    // No image yet: hold the WAL until the first one exists.
    let floor = newest === undefined ? this.#options.node.wal.tail : newest.appliedIndex
    for (const pinned of this.#walPins.values()) floor = Math.min(floor, pinned)
    return floor
  }

  onCheckpoint(index: number): void {
    const newest = this.#options.catalog.newest()
    if (this.#taking || (newest !== undefined && index - newest.appliedIndex < this.#options.snapshotEveryEntries)) return
    this.#taking = true
    void this.#options.catalog
      .take(this.#options.node.store, { epoch: this.#options.node.clusterStatus().epoch })
      .catch((error: unknown) => this.#options.log?.(`snapshot: not taken: ${(error as Error).message}`, { level: 'warn' }))
      .finally(() => {
        this.#taking = false
      })
  }

  /** Pins held now (status). */
  get walPins(): number {
    return this.#walPins.size
  }
}
