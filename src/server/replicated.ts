/**
 * The node's replicated mode (docs/cluster.md, "Node in replicated mode"):
 * the vocabulary and the small pure pieces the pipeline uses — the rows a
 * node keeps about its place in the cluster, the rolling state hash, the
 * typed refusals. The decisions themselves (what to truncate on an epoch
 * change or a takeover, what a replica may call committed) are the
 * protocol's, in `src/replication/`.
 */
import { createHash } from 'node:crypto'
import { TallyError, invariant, parseJson, stringifyJson } from '../domain/index.ts'
import type { RowWrite } from '../store/index.ts'
import { metaKey } from '../store/index.ts'

export type NodeRole = 'primary' | 'replica'

/** What makes a `LedgerNode` replicated; absent, it is the embedded single node. */
export interface ReplicatedModeOptions {
  /** This node's stable id in the cluster (never an address). */
  readonly nodeId: string
  /**
   * The lease gate: while it returns false, results of committed entries
   * are held instead of answered (a primary that cannot renew its lease must
   * not acknowledge). `releaseAcknowledgements()` looks again.
   */
  readonly canAcknowledge?: () => boolean
  /** Readiness: a replica that caught up stays ready while it trails the committed LSN by at most this (default 10 000 entries). */
  readonly readyLagEntriesMax?: number
}

/**
 * Meta rows a node writes about its place in the cluster. The epoch and the
 * committed watermark are the node's own (a replica learns the watermark
 * later than the primary), so they are not part of what replicas compare;
 * the state hash is derived from applied rows only and is the same on every
 * node at the same applied index.
 */
export const ReplicationMetaKey = {
  /** The highest epoch this node adopted; written (synced) before it is used. */
  epoch: 'replication-epoch',
  /** The highest LSN this node knows committed; written with the store batch that applies up to it. */
  committed: 'replication-committed',
  /** `{index, hash}`: the rolling state hash after the applied index `index`. */
  stateHash: 'state-hash',
} as const

/** Meta keys that differ between nodes holding the same state (excluded from byte-identity comparisons). */
export const nodeLocalMetaKeys: readonly string[] = [ReplicationMetaKey.committed, 'checkpoint-index']

export interface StateHash {
  /** The applied index the hash describes (0: nothing hashed yet). */
  readonly index: number
  /** SHA-256, lowercase hex. */
  readonly hash: string
}

export const genesisStateHash: StateHash = { index: 0, hash: '0'.repeat(64) }

/**
 * The rolling state hash: SHA-256 over the previous hash, the index, and
 * the rows applying that index wrote, in one canonical form — rows sorted
 * by key bytes, each as `u32 key length ‖ key ‖ u8 (1 put, 0 delete) ‖
 * u32 value length ‖ value`. Two nodes that applied the same log hold the
 * same hash at the same index; a node that wrote one byte differently
 * holds another one from then on.
 */
export function nextStateHash(previous: StateHash, index: number, rows: readonly RowWrite[]): StateHash {
  invariant(index === previous.index + 1, () => `state hash of index ${index} after ${previous.index}`)
  const hash = createHash('sha256')
  hash.update(Buffer.from(previous.hash, 'hex'))
  const position = Buffer.alloc(8)
  position.writeBigUInt64BE(BigInt(index))
  hash.update(position)
  const sorted = [...rows].sort((a, b) => Buffer.compare(a.key, b.key))
  const header = Buffer.alloc(4)
  for (const row of sorted) {
    header.writeUInt32BE(row.key.byteLength)
    hash.update(header)
    hash.update(row.key)
    hash.update(row.value === null ? Buffer.of(0) : Buffer.of(1))
    header.writeUInt32BE(row.value === null ? 0 : row.value.byteLength)
    hash.update(header)
    if (row.value !== null) hash.update(row.value)
  }
  return { index, hash: hash.digest('hex') }
}

export function encodeStateHash(state: StateHash): Buffer {
  return Buffer.from(stringifyJson({ index: state.index, hash: state.hash }), 'utf8')
}

export function decodeStateHash(row: Buffer | undefined): StateHash {
  if (row === undefined) return genesisStateHash
  const json = parseJson(row.toString('utf8')) as { index?: unknown; hash?: unknown }
  const index = Number(json.index)
  invariant(Number.isSafeInteger(index) && index >= 0 && typeof json.hash === 'string' && /^[0-9a-f]{64}$/.test(json.hash), 'the state hash row is malformed')
  return { index, hash: json.hash }
}

export function replicationMetaKey(name: (typeof ReplicationMetaKey)[keyof typeof ReplicationMetaKey]): Buffer {
  return metaKey(name)
}

export function decodeCounter(row: Buffer | undefined, what: string): number {
  if (row === undefined) return 0
  const value = Number(row.toString('utf8'))
  invariant(Number.isSafeInteger(value) && value >= 0, () => `the ${what} row is not a non-negative integer`)
  return value
}

/**
 * A write reached a node that is not the primary. 503 (retryable) naming the
 * primary when the node knows it, so a client (or, later, the node itself)
 * can send it there.
 */
export function notPrimary(role: NodeRole | 'single', primaryId: string | undefined): TallyError {
  return new TallyError({
    code: 'NOT_PRIMARY',
    kind: 'unavailable',
    message:
      primaryId === undefined
        ? `this node is a ${role}, not the primary, and knows no primary yet: retry later`
        : `this node is a ${role}, not the primary: send writes to node ${primaryId}`,
    details: primaryId === undefined ? {} : { primary: primaryId },
  })
}

/** A write whose outcome this node can no longer tell (deposed before it committed, or before it could answer). */
export function outcomeUnknown(index: number, why: string): TallyError {
  return new TallyError({
    code: 'NOT_PRIMARY',
    kind: 'unavailable',
    message: `the write logged at index ${index} was not acknowledged: ${why}; it may or may not be committed — retry with the same idempotency key`,
    details: { index: String(index) },
  })
}

/** A replica refuses entries it cannot place: a gap, an epoch it has not adopted, or a rewrite of its committed prefix. */
export class ReplicationRefused extends TallyError {
  constructor(
    readonly reason: 'not_replica' | 'gap' | 'future_epoch' | 'stale_epoch' | 'unknown_type' | 'needs_rebuild',
    message: string,
  ) {
    super({ code: 'REPLICATION_REFUSED', kind: 'unavailable', message, details: { refusal: reason } })
  }
}

/** One entry as it travels primary → replica: its position, its epoch, and the WAL record's type and payload. */
export interface ReplicatedEntry {
  readonly index: number
  readonly epoch: number
  readonly type: number
  readonly payload: Uint8Array
}

/** What `/_/cluster` shows of a node. */
export interface NodeClusterStatus {
  readonly mode: 'single' | 'replicated'
  readonly nodeId: string | undefined
  readonly role: NodeRole | 'single'
  readonly epoch: number
  readonly primaryId: string | undefined
  /** Highest LSN appended to the WAL. */
  readonly headLsn: number
  /** Highest LSN fsynced. */
  readonly flushedLsn: number
  /** Highest LSN this node knows committed. */
  readonly committedLsn: number
  /** Highest index applied and stored (reads reflect at least this). */
  readonly appliedIndex: number
  readonly stateHash: StateHash | undefined
  /** Whether reads here reflect the cluster's committed state (readiness). */
  readonly caughtUp: boolean
  /** Results held by the lease gate. */
  readonly heldAcknowledgements: number
  /** Snapshots and base transfers (cluster mode; docs/cluster.md, "Snapshots and rebuild"). */
  readonly snapshots?: SnapshotStatusView
}

/** What `/_/cluster` shows of trusted snapshots and base transfers. */
export interface SnapshotStatusView {
  /** The newest trusted image of this node's store. */
  readonly newest: { readonly appliedIndex: number; readonly stateHash: string } | undefined
  /** The image this replica is receiving (or last received) to be rebuilt from. */
  readonly receiving: {
    readonly appliedIndex: number
    readonly bytesTotal: number
    readonly bytesReceived: number
    readonly bytesResumed: number
    readonly filesTotal: number
    readonly filesVerified: number
    readonly chunksRefetched: number
    readonly staged: boolean
  } | undefined
  /** Images this primary serves to replicas being rebuilt. */
  readonly serving: readonly { readonly replicaId: string; readonly appliedIndex: number; readonly bytesServed: number; readonly staged: boolean }[]
}
