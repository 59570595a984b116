import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { mkdirSync } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { InvariantViolation, TallyError, invariant, parseJson } from '../domain/index.ts'
import type { AttributeCache, CacheSettings } from '../cache/index.ts'
import { cacheGenerationBytesMaxDefault, cacheRotationThresholdDefault, sameCacheSettings, validateCacheSettings } from '../cache/index.ts'
import type { AuditHead } from '../audit/index.ts'
import { GENESIS } from '../audit/index.ts'
import type { Proposal, ProposalResult } from '../fsm/index.ts'
import { LedgerStateMachine, ProposalApplication, WAL_TYPE_PROPOSAL, WriteBatch, decodeProposal } from '../fsm/index.ts'
import { Admission } from '../admission/index.ts'
import type { Sequencer } from '../admission/index.ts'
import type { RowWrite, WriteSlices } from '../store/index.ts'
import { MetaKey, Store, metaKey, writesInOneStretch } from '../store/index.ts'
import { cacheCreationRows, readCacheState, restoreCache } from './cache-restore.ts'
import { Wal, WalError, datasyncHandle, resetWal } from '../wal/index.ts'
import { AuditCheckpoints } from './audit-checkpoints.ts'
import { silentObserver } from './pipeline-observer.ts'
import type { PipelineObserver } from './pipeline-observer.ts'
import type { LatencyTrace } from './latency-trace.ts'
import type { NodeLog } from './log.ts'
import type { AuditCheckpointSettings } from './audit-checkpoints.ts'
import type { WalIo } from '../wal/index.ts'
import { Lsn, decideEpochAdoption, decidePrimaryTakeover, learnCommitted } from '../replication/index.ts'
import type { Epoch, EpochAdoption, LineageReset, ReplicaLogView } from '../replication/index.ts'
import {
  ReplicationMetaKey,
  ReplicationRefused,
  decodeCounter,
  decodeStateHash,
  encodeStateHash,
  genesisStateHash,
  nextStateHash,
  notPrimary,
  outcomeUnknown,
  replicationMetaKey,
} from './replicated.ts'
import type { SnapshotStatusView, NodeClusterStatus, NodeRole, ReplicatedEntry, ReplicatedModeOptions, StateHash } from './replicated.ts'

export interface LedgerNodeOptions {
  readonly dataDirectory: string
  /**
   * The cache's replicated settings (ADR 0007). A new data directory is
   * created with them (defaults when absent); on an existing one a value that
   * differs from the stored setting is logged as a settings change after
   * recovery, and an absent one keeps the stored setting.
   */
  readonly cacheRotationThreshold?: number
  /** Gen0's byte budget: reaching it rotates early (null: no byte bound). */
  readonly cacheGenerationBytesMax?: number | null
  /** Only when creating a data directory; tests pin it for byte-identical stores. */
  readonly clusterId?: string
  /** false only in tests and benchmarks that accept losing acknowledged writes. */
  readonly sync?: boolean
  readonly now?: () => number
  readonly log?: NodeLog
  /** Bound on proposals per store batch (also kept under half a cache generation). */
  readonly applyBatchProposalsMax?: number
  /**
   * Bound on orders per store batch (default 256): a batch ends after the
   * proposal that reaches it, so the event loop gets a turn (the store
   * write is asynchronous) at least every that many orders, not after up to
   * `applyBatchProposalsMax` large bulks applied in one go. A proposal of
   * more orders is applied alone in its batch, in slices of
   * `applySliceUnits` with a turn between slices; it is still one atomic
   * store write.
   */
  readonly applyBatchOrdersMax?: number
  /** Units of apply work (an order, or the rows of one written key or log) between two turns, in a proposal applied in slices. */
  readonly applySliceUnits?: number
  /** Rows copied into a RocksDB batch between two turns of the event loop (default `storeWriteSliceRows`). */
  readonly storeWriteSliceRows?: number
  /** Applied entries between store checkpoints (a synced store write, then WAL recycling). */
  readonly checkpointEntries?: number
  /** WAL entries kept below the last checkpoint (history for replicas and inspection). */
  readonly walRetainEntries?: number
  /**
   * Bound on the WAL's bytes on disk kept below the last checkpoint, whatever
   * `walRetainEntries` says: an entry is a whole proposal, so a count of
   * entries alone does not bound the disk (bulks of 1,000 transactions make
   * 1M entries hundreds of GiB). Default `walRetainBytesDefault`.
   */
  readonly walRetainBytes?: number
  /** WAL segment size; recycling drops whole segments. */
  readonly walSegmentBytesMax?: number
  /**
   * Zeros the WAL writes ahead of its entries in the open segment, so that a
   * group's fdatasync overwrites allocated blocks and need not commit the
   * file system's journal (docs/wal.md, "Preallocation"); 0: none. Default
   * `walPreallocateBytesDefault`.
   */
  readonly walPreallocateBytes?: number
  /** A checkpoint longer than this logs one warning with its figures. */
  readonly slowCheckpointMs?: number
  /** Signed checkpoints of the audit chain (docs/check.md); none without a key. */
  readonly auditCheckpoints?: AuditCheckpointSettings
  /** Tests: the WAL's file operations (a fault layer modelling power loss). */
  readonly walIo?: Partial<WalIo>
  /** Tests: opens the store instead of `Store.open` (a fault layer modelling power loss). */
  readonly openStore?: (directory: string) => Promise<Store>
  /**
   * RocksDB's block cache, in bytes (default `blockCacheBytesDefault`): data
   * blocks reads have read, and with `storeIndexesInCache` every table
   * file's index and filter blocks (docs/operations.md, "Memory"). Not used
   * with `openStore`.
   */
  readonly storeCacheBytes?: number
  /** Table files' index and filter blocks in the block cache, within its bound (default: beside it; `StoreTuning.indexesInBlockCache`). Not used with `openStore`. */
  readonly storeIndexesInCache?: boolean
  /**
   * Replicated mode (docs/cluster.md, "Node in replicated mode"): entries
   * carry the node's epoch, the FSM applies only what is known committed,
   * and the node opens as a replica until told otherwise. Absent: the
   * embedded single node, whose durable WAL prefix is its committed prefix.
   */
  readonly replicated?: ReplicatedModeOptions
  /** Keep the rolling state hash on a single node too (always kept in replicated mode). */
  readonly stateHash?: boolean
  /**
   * Bound on the concurrent single-order writes admission gathers into one
   * proposal (docs/pipeline.md, "Gathering single writes"); 1: each is a
   * proposal of its own. Default `gatherOrdersMaxDefault`.
   */
  readonly gatherOrdersMax?: number
  /** Bound on a gathered proposal's log record (default `gatherBytesMaxDefault`). */
  readonly gatherBytesMax?: number
  /** Planning reads of at most this many rows are read on the JavaScript thread (default `syncReadKeysMaxDefault`; 0: always through the thread pool). */
  readonly planSyncReadKeysMax?: number
  /**
   * Tests: a single node applies each entry only once its WAL group is
   * durable, instead of while the group is being made durable (the store
   * batch waits for durability either way), so proposals stay planned but
   * not applied for a whole fdatasync, as in replicated mode.
   */
  readonly applyWhenDurable?: boolean
}

export const checkpointEntriesDefault = 10_000
export const slowCheckpointMsDefault = 100
export const walRetainEntriesDefault = 1_000_000
export const walRetainBytesDefault = 1024 * 1024 * 1024
/** Zeros written ahead of the WAL's entries (docs/wal.md, "Preallocation"). */
export const walPreallocateBytesDefault = 4 * 1024 * 1024
/** Orders per store batch: ~25–40 ms of apply at today's cost per order (docs/performance.md, "No stall"). */
export const applyBatchOrdersMaxDefault = 256
/** Apply work between two turns in a large proposal: an order, or the rows of one key or log, each (~10–40 ms in all here). */
export const applySliceUnitsDefault = 128
/** Rows copied into a RocksDB batch between two turns of the event loop (a few ms at ~1–2.5 µs per row). */
export const storeWriteSliceRows = 4096
/** Applied batches waiting for durability at most before the apply loop waits for the store (a single node). */
export const applyAheadBatchesMax = 8
/** A replica that caught up stays ready while it trails what it knows committed by at most this many entries. */
export const readyLagEntriesMaxDefault = 10_000
/** Reads waiting for an applied index at once (`Tally-Min-Applied-Index`); more are refused, retryable. */
export const appliedWaitersMax = 10_000

interface Waiter {
  resolve(result: ProposalResult): void
  reject(error: Error): void
}

/** Reads of committed entries that a concurrent truncation of the tail above them refused, read again at most this often. */
const concurrentTruncateRereadsMax = 8

/**
 * One Tally node: store, WAL, cache, FSM and admission wired into the
 * pipeline of contract §2. Durability (ADR 0005): a write is acknowledged
 * after its WAL group is fsynced, the FSM applied it and its store batch is
 * written; the store is synced at checkpoints, and boot replays the WAL
 * beyond the store's applied index. In replicated mode (docs/cluster.md) a
 * durable entry is applied only once it is known committed, and boot replays
 * only up to the committed watermark.
 */
export class LedgerNode implements Sequencer {
  readonly admission: Admission
  private readonly payloads = new Map<number, Buffer>()
  /** The proposals admission appended here, until applied: the FSM takes them as built (their payloads are the log's truth). */
  private readonly proposals = new Map<number, Proposal>()
  /** When each index was appended (performance.now), for the commit latency metric. */
  private readonly appendedAtMs = new Map<number, number>()
  private readonly waiters = new Map<number, Waiter>()
  private readonly results = new Map<number, ProposalResult>()
  private storedIndex: number
  private applyChain: Promise<void> = Promise.resolve()
  private flushScheduled = false
  private fatal: Error | undefined
  private closed = false
  private readonly unsubscribe: () => void
  private checkpointIndex: number
  private signedCheckpoints: AuditCheckpoints | undefined
  private pipelineObserver: PipelineObserver = silentObserver
  /** Debug: a timeline of the pipeline's steps (`traceLatency`); undefined costs one comparison per step. */
  private latencyTrace: LatencyTrace | undefined
  // ---- replicated mode (docs/cluster.md); a single node keeps role 'single' and epoch 0
  private role: NodeRole | 'single'
  private epoch = 0
  private primaryId: string | undefined
  /** Highest LSN known committed: the durable head on a single node, learned from outside otherwise. */
  private committedKnown: number
  /** Highest index handed to the apply chain (replicated mode). */
  private applyScheduled: number
  /** Indexes this node appended for its own admission (their results have a waiter, or will). */
  private readonly localAppends = new Set<number>()
  /** Writes answered as of unknown outcome before their admission asked for the result (`abandonUnanswered`). */
  private readonly abandoned = new Map<number, string>()
  /** Results the lease gate keeps from being answered. */
  private readonly heldResults: ProposalResult[] = []
  private readonly flushedListeners = new Set<(flushedLsn: number) => void>()
  private readonly appendListeners = new Set<(entry: ReplicatedEntry) => void>()
  private readonly appliedWaiters = new Set<{ readonly index: number; resolve(reached: boolean): void }>()
  /** The epoch at which a replica last learned the committed LSN from its primary (readiness). */
  private committedHeardAtEpoch = -1
  /** The highest committed LSN a replica's primary announced (it may hold less of it yet): readiness compares with it. */
  private committedAnnounced = 0
  /** The epoch at which a replica first applied all it knew committed (readiness latches, then tolerates a bounded lag). */
  private caughtUpAtEpoch = -1
  /** What a primary knew committed when it took over: readiness waits for it. */
  private takeoverCommitted = 0
  /**
   * Runs of equal epochs over the entries this node appended since it opened
   * (`first` ascending), with the head entry found at open: `logView().epochAt`.
   */
  private epochRuns: { first: number; epoch: number }[] = []
  /** The LSNs `epochRuns` describes: [epochRunsFrom, epochRunsTo]. */
  private epochRunsFrom = 0
  private epochRunsTo = 0
  /** Role changes and replicated appends run one at a time (they may truncate the WAL). */
  private transitions: Promise<void> = Promise.resolve()
  private stateHashValue: StateHash | undefined
  private retention: NodeRetentionHooks | undefined
  private snapshotStatus: (() => SnapshotStatusView) | undefined
  /** Set while a proposal's effects go into the cache in slices: admission waits for `settled` before reading the cache. */
  private cacheHold: { readonly settled: Promise<void>; readonly release: () => void } | undefined
  /** A store batch larger than this many rows is copied into RocksDB in slices, with a turn between. */
  private readonly storeSlices: WriteSlices

  private constructor(
    readonly store: Store,
    readonly wal: Wal,
    readonly cache: AttributeCache,
    readonly fsm: LedgerStateMachine,
    readonly clusterId: string,
    private readonly options: LedgerNodeOptions,
    walTiming: WalTiming,
  ) {
    this.storedIndex = fsm.appliedIndex
    this.checkpointIndex = fsm.appliedIndex
    this.storeSlices = { rows: Math.max(1, options.storeWriteSliceRows ?? storeWriteSliceRows), turn: yieldTurn }
    this.role = options.replicated === undefined ? 'single' : 'replica'
    this.committedKnown = fsm.appliedIndex
    this.applyScheduled = fsm.appliedIndex
    // The WAL's scan at open knows the head entry's epoch; entries appended from now on are tracked.
    this.epochRunsFrom = wal.head > wal.tail ? wal.head : wal.head + 1
    this.epochRunsTo = wal.head > wal.tail ? wal.head : wal.head
    if (wal.head > wal.tail) this.epochRuns.push({ first: wal.head, epoch: wal.epochHead })
    this.admission = new Admission({
      cache,
      store,
      sequencer: this,
      now: options.now ?? Date.now,
      newId: randomUUID,
      cacheUnsettled: () => this.cacheHold?.settled,
      ...(options.gatherOrdersMax === undefined ? {} : { gatherOrdersMax: options.gatherOrdersMax }),
      ...(options.gatherBytesMax === undefined ? {} : { gatherBytesMax: options.gatherBytesMax }),
      ...(options.planSyncReadKeysMax === undefined ? {} : { syncReadKeysMax: options.planSyncReadKeysMax }),
    })
    this.unsubscribe = wal.onDurable((from, to) => {
      this.pipelineObserver.walGroupDurable(to - from + 1, walTiming.fsyncSeconds)
      this.latencyTrace?.recordMonotonic('wal-fsync', walTiming.fsyncStartedMs, walTiming.fsyncStartedMs + walTiming.fsyncSeconds * 1000, to - from + 1)
      if (this.role === 'single') {
        // What was not handed to the apply loop at its append (`applyWhenDurable`) is applied now, a group at a time.
        if (to > this.applyScheduled) this.handToApply(to)
        return
      }
      // Replicated: durable is not committed. Report it (acks, the commit tracker); apply what is known committed.
      for (const listener of this.flushedListeners) {
        try {
          listener(to)
        } catch (error) {
          this.fail(error)
        }
      }
      this.scheduleApply()
    })
  }

  static async open(options: LedgerNodeOptions): Promise<LedgerNode> {
    const log = options.log ?? (() => {})
    mkdirSync(options.dataDirectory, { recursive: true })
    const storeDirectory = path.join(options.dataDirectory, 'store')
    const store = await (options.openStore === undefined
      ? Store.open(storeDirectory, {
          ...(options.storeCacheBytes === undefined ? {} : { blockCacheBytes: options.storeCacheBytes }),
          ...(options.storeIndexesInCache === undefined ? {} : { indexesInBlockCache: options.storeIndexesInCache }),
        })
      : options.openStore(storeDirectory))
    let opened: Wal | undefined
    try {
      const { clusterId, created } = await openOrCreateIdentity(store, options)
      const appliedIndex = Number((await store.get(metaKey(MetaKey.appliedIndex)))?.toString('utf8') ?? '0')
      const auditHead = await readAuditHead(store)
      // The stored settings, never the flags: replay must see what the original apply saw.
      const cacheState = await readCacheState(store, options.cacheRotationThreshold ?? cacheRotationThresholdDefault)
      const cache = await restoreCache(store, cacheState, appliedIndex)
      const walDirectory = path.join(options.dataDirectory, 'wal')
      const walTiming: WalTiming = { fsyncSeconds: 0, fsyncStartedMs: 0 }
      const walOptions = {
        directory: walDirectory,
        sync: options.sync ?? true,
        // Times each group's fdatasync for metrics; groups are synced one at a time, so the last timing is the group's.
        io: {
          async sync(handle: FileHandle): Promise<void> {
            const started = performance.now()
            await datasyncHandle(handle)
            walTiming.fsyncStartedMs = started
            walTiming.fsyncSeconds = (performance.now() - started) / 1000
          },
        },
        ...(options.walSegmentBytesMax === undefined ? {} : { segmentBytesMax: options.walSegmentBytesMax }),
        preallocateBytes: options.walPreallocateBytes ?? walPreallocateBytesDefault,
        ...(options.walIo === undefined ? {} : { io: options.walIo }),
      }
      let { wal, recovery } = await Wal.open(walOptions)
      opened = wal
      if (recovery.truncatedTornBytes > 0) log(`wal: dropped a torn tail of ${recovery.truncatedTornBytes} bytes`)
      if (wal.head < appliedIndex) {
        if (wal.head !== 0 || wal.tail !== 0) {
          await wal.close()
          throw new InvariantViolation(`WAL head ${wal.head} is behind the store's applied index ${appliedIndex}`)
        }
        await wal.close()
        opened = undefined
        await resetWal({ directory: walDirectory, head: appliedIndex, ...(options.walIo === undefined ? {} : { io: options.walIo }) })
        ;({ wal } = await Wal.open(walOptions))
        opened = wal
      }
      if (wal.tail > appliedIndex) {
        await wal.close()
        throw new InvariantViolation(`WAL starts after ${wal.tail}, the store is at ${appliedIndex}: entries are missing`)
      }
      const fsm = new LedgerStateMachine({
        cache,
        clusterId,
        appliedIndex,
        auditHead,
        onCoverageMiss: (error, index) => {
          log(`COVERAGE_MISS at index ${index}: ${error.message}`, { level: 'error', index })
          // Called while applying, so after `node` below exists.
          node.pipelineObserver.coverageMiss()
        },
      })
      const node: LedgerNode = new LedgerNode(store, wal, cache, fsm, clusterId, options, walTiming)
      await node.loadReplicationState(log)
      await node.replay(log)
      if (options.auditCheckpoints !== undefined) {
        node.signedCheckpoints = await AuditCheckpoints.open({ store, clusterId, settings: options.auditCheckpoints, head: fsm.auditHead, log }).catch(async (error: unknown) => {
          node.unsubscribe()
          await wal.close().catch(() => {})
          throw error
        })
      }
      try {
        // A new directory was created with the flags: a WAL replayed into it (a rebuild) carries its own changes.
        // Replicated: only a primary logs entries, and the cluster's settings are changed there.
        if (!created && options.replicated === undefined) await node.applyRequestedCacheSettings(log)
      } catch (error) {
        await node.close().catch(() => {})
        throw error
      }
      return node
    } catch (error) {
      // A failed recovery must not leak the WAL's file handle (the caller may retry the open).
      await opened?.close().catch(() => {})
      await store.close().catch(() => {})
      throw error
    }
  }

  /** Re-applies what the WAL holds beyond the store's applied index (crash recovery). */
  private async replay(log: NodeLog): Promise<void> {
    const from = this.fsm.appliedIndex + 1
    // Replicated: entries above the committed watermark wait until the primary says they are committed.
    const to = this.role === 'single' ? this.wal.head : Math.min(this.wal.head, this.committedKnown)
    if (this.role !== 'single' && this.wal.head > to) log(`recovery: WAL entries ${to + 1}..${this.wal.head} wait for commit (known committed: ${this.committedKnown})`)
    if (to < from) return
    log(`recovery: replaying WAL entries ${from}..${to}`)
    // Bounded like the apply loop, with a turn between batches and between a
    // large proposal's slices: a node reopened in place (cluster mode) keeps
    // its lease and peer links alive while it replays.
    const ordersMax = this.options.applyBatchOrdersMax ?? applyBatchOrdersMaxDefault
    const slices = this.role === 'single' ? { slices: this.storeSlices } : {}
    let batch = new WriteBatch()
    let count = 0
    let orders = 0
    for await (const record of this.wal.read(from, to)) {
      invariant(record.type === WAL_TYPE_PROPOSAL, () => `unknown WAL record type ${record.type}`)
      const proposal = decodeProposal(record.payload)
      if (proposal.orders.length > ordersMax) await this.applyOneInSlices(record.index, proposal, batch)
      else this.applyOne(record.index, proposal, batch)
      orders += Math.max(1, proposal.orders.length)
      if (++count % this.batchProposalsMax() === 0 || orders >= ordersMax) {
        this.writeNodeRows(batch)
        await this.store.write(batch.rows(), { sync: true, ...slices })
        batch = new WriteBatch()
        orders = 0
        await yieldTurn()
      }
    }
    this.writeNodeRows(batch)
    await this.store.write(batch.rows(), { sync: true, ...slices })
    this.storedIndex = this.fsm.appliedIndex
    this.applyScheduled = this.storedIndex
    log(`recovery: applied up to ${this.storedIndex}`)
  }

  /** The replicated mode's rows (epoch, committed watermark) and the state hash, read back at open. */
  private async loadReplicationState(log: NodeLog): Promise<void> {
    const applied = this.fsm.appliedIndex
    if (this.options.replicated !== undefined || this.options.stateHash === true) {
      const stored = decodeStateHash(await this.store.get(replicationMetaKey(ReplicationMetaKey.stateHash)))
      if (stored.index === applied) this.stateHashValue = stored
      else {
        // Hashing starts (or restarts, after running without it) here: nodes compare hashes from a common start only.
        if (applied > 0) log(`state hash: starting a new chain at applied index ${applied}`)
        this.stateHashValue = { index: applied, hash: genesisStateHash.hash }
      }
    }
    this.epoch = decodeCounter(await this.store.get(replicationMetaKey(ReplicationMetaKey.epoch)), 'epoch')
    if (this.options.replicated === undefined) {
      // A data directory that was replicated, opened as a single node, continues its log at its epoch (0 for one never replicated).
      this.epoch = Math.max(this.epoch, this.wal.epochHead)
      return
    }
    const committed = decodeCounter(await this.store.get(replicationMetaKey(ReplicationMetaKey.committed)), 'committed watermark')
    this.committedKnown = Math.max(committed, applied)
    this.applyScheduled = applied
    invariant(this.epoch >= this.wal.epochHead, () => `the WAL holds an entry of epoch ${this.wal.epochHead}, above the adopted epoch ${this.epoch}`)
  }

  /** Applies one index through the FSM; with the state hash on, hashes the rows it wrote first. */
  private applyOne(index: number, entry: Uint8Array | Proposal, batch: WriteBatch): ProposalResult {
    const started = performance.now()
    try {
      // An entry appended here comes with its proposal; one recovered or shipped is decoded (test/server/determinism.test.ts: the same store either way).
      const proposal = entry instanceof Uint8Array ? decodeProposal(entry) : entry
      const previous = this.stateHashValue
      if (previous === undefined) return this.fsm.apply(index, proposal, batch)
      const own = new WriteBatch()
      const result = this.fsm.apply(index, proposal, own)
      this.foldIntoStateHash(previous, index, own, batch)
      return result
    } finally {
      this.applyTime.milliseconds += performance.now() - started
    }
  }

  /**
   * Wall-clock time the FSM's apply held the JavaScript thread (decoding
   * included; a sliced proposal's turns excluded), since the node opened:
   * read by the event-loop stall watch (`src/server/loop-stalls.ts`).
   */
  readonly applyTime = { milliseconds: 0 }

  /** The rows a proposal wrote (in `own`) extend the rolling state hash, then join the store batch. */
  private foldIntoStateHash(previous: StateHash, index: number, own: WriteBatch, batch: WriteBatch): void {
    const rows = own.rows()
    this.stateHashValue = nextStateHash(previous, index, rows)
    for (const row of rows) {
      if (row.value === null) batch.del(row.key)
      else batch.put(row.key, row.value)
    }
  }

  /**
   * `applyOne` for a proposal of more than `applyBatchOrdersMax` orders: its
   * orders, then the rows of its effects, in slices of `applySliceUnits`
   * with a turn of the event loop between slices (the FSM keeps its effects
   * out of the cache until the last).
   */
  private async applyOneInSlices(index: number, entry: Uint8Array | Proposal, batch: WriteBatch): Promise<ProposalResult> {
    const sliceUnits = Math.max(1, this.options.applySliceUnits ?? applySliceUnitsDefault)
    let started = performance.now()
    const proposal = entry instanceof Uint8Array ? decodeProposal(entry) : entry
    const previous = this.stateHashValue
    const own = previous === undefined ? batch : new WriteBatch()
    let result: ProposalResult
    try {
      const begun = this.fsm.begin(index, proposal, own)
      if (begun instanceof ProposalApplication) {
        try {
          while (!begun.advance(sliceUnits)) {
            // Part of the proposal is in the cache: admission waits until all of it is.
            if (begun.cacheUnsettled) this.holdCacheReaders()
            else this.releaseCacheReaders()
            this.applyTime.milliseconds += performance.now() - started
            await yieldTurn()
            started = performance.now()
          }
        } finally {
          this.releaseCacheReaders()
        }
        result = begun.finish()
      } else result = begun
      if (previous !== undefined) this.foldIntoStateHash(previous, index, own, batch)
    } finally {
      this.applyTime.milliseconds += performance.now() - started
    }
    return result
  }

  private holdCacheReaders(): void {
    if (this.cacheHold !== undefined) return
    let release: () => void = () => {}
    const settled = new Promise<void>((resolve) => (release = resolve))
    this.cacheHold = { settled, release }
  }

  private releaseCacheReaders(): void {
    const hold = this.cacheHold
    this.cacheHold = undefined
    hold?.release()
  }

  /** Rows the node adds to a store batch besides the FSM's: the state hash, the committed watermark. */
  private writeNodeRows(batch: WriteBatch): void {
    if (this.stateHashValue !== undefined) batch.put(replicationMetaKey(ReplicationMetaKey.stateHash), encodeStateHash(this.stateHashValue))
    // Never below what the batch applies: after a crash, the store is never ahead of its own watermark.
    if (this.role !== 'single') batch.put(replicationMetaKey(ReplicationMetaKey.committed), Buffer.from(String(Math.max(this.committedKnown, this.fsm.appliedIndex))))
  }

  /**
   * A cache setting given for an existing data directory that differs from
   * the stored one becomes an ordered log entry, after recovery: every node
   * and every replay applies it at the same index (ADR 0007).
   */
  private async applyRequestedCacheSettings(log: NodeLog): Promise<void> {
    const current = this.cache.settings
    const requested: CacheSettings = {
      rotationThreshold: this.options.cacheRotationThreshold ?? current.rotationThreshold,
      generationBytesMax: this.options.cacheGenerationBytesMax === undefined ? current.generationBytesMax : this.options.cacheGenerationBytesMax,
    }
    validateCacheSettings(requested)
    if (sameCacheSettings(current, requested)) return
    log(
      `cache: settings change logged at index ${this.nextIndex()}: rotation threshold ${current.rotationThreshold} → ${requested.rotationThreshold}, ` +
        `generation byte budget ${current.generationBytesMax ?? 'none'} → ${requested.generationBytesMax ?? 'none'}`,
    )
    await this.admission.changeCacheSettings(requested)
  }

  /** Proposals per store batch: bounded, and under half a generation so the seed horizon keeps up. */
  private batchProposalsMax(): number {
    return Math.max(1, Math.min(this.options.applyBatchProposalsMax ?? 1024, Math.floor(this.cache.rotationThreshold / 2)))
  }

  /**
   * Reports the pipeline's work to `observer` (metrics) from now on; also
   * admission's proposals and horizon refusals.
   */
  observe(observer: PipelineObserver): void {
    this.pipelineObserver = observer
    this.admission.observer = observer
  }

  /** Debug: records the pipeline's steps into `trace` (`src/server/latency-trace.ts`). */
  traceLatency(trace: LatencyTrace): void {
    this.latencyTrace = trace
    this.admission.onGatheringAppended = (firstSubmitMs, orders) => trace.recordMonotonic('gather', firstSubmitMs, performance.now(), orders)
  }

  // ---- Sequencer -------------------------------------------------------------

  nextIndex(): number {
    return this.wal.head + 1
  }

  storeIndex(): number {
    return this.storedIndex
  }

  payloadBytesMax(): number {
    return this.wal.payloadBytesMax
  }

  append(payload: Buffer, proposal?: Proposal): number {
    if (this.fatal !== undefined) throw unavailable(`node stopped: ${this.fatal.message}`)
    if (this.closed) throw unavailable('node is shutting down')
    if (this.role === 'replica') throw notPrimary('replica', this.primaryId)
    const index = this.wal.append({ epoch: this.epoch, type: WAL_TYPE_PROPOSAL, payload })
    if (this.role !== 'single') this.noteEpoch(index, this.epoch)
    this.payloads.set(index, payload)
    // The FSM applies the proposal admission built, not a decode of the bytes it just encoded.
    if (proposal !== undefined) this.proposals.set(index, proposal)
    this.appendedAtMs.set(index, performance.now())
    if (this.role === 'primary') {
      this.localAppends.add(index)
      const entry: ReplicatedEntry = { index, epoch: this.epoch, type: WAL_TYPE_PROPOSAL, payload }
      for (const listener of this.appendListeners) {
        try {
          listener(entry)
        } catch (error) {
          // The entry is logged: a failing shipper must not make admission think otherwise.
          this.fail(error)
        }
      }
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true
      queueMicrotask(() => {
        this.flushScheduled = false
        this.wal.flush().catch((error: unknown) => this.fail(error))
        // After the flush started: the FSM applies the group while its fdatasync runs.
        if (this.role === 'single' && this.options.applyWhenDurable !== true) this.scheduleApplyAppended()
      })
    }
    return index
  }

  /**
   * A single node hands what was appended to the apply loop at once: the FSM
   * applies it while its WAL group is being made durable, and the store
   * queue (`drainStoreQueue`) writes the store batch, and answers, only once
   * the group is durable (ADR 0005). The fdatasync and the apply overlap, instead of
   * adding up, in a write's latency — also under load, where a slow
   * fdatasync gathers many proposals behind it: they are applied while it
   * runs, not all in one long turn after it.
   */
  private scheduleApplyAppended(): void {
    this.handToApply(this.wal.head)
  }

  /** Hands the entries up to `target` not yet handed over to the apply loop (a single node). */
  private handToApply(target: number): void {
    if (target <= this.applyScheduled) return
    const from = this.applyScheduled + 1
    this.applyScheduled = target
    this.applyChain = this.applyChain.then(() => this.applyDurable(from, target)).catch((error: unknown) => this.fail(error))
  }

  /** Applied batches waiting for durability, in log order (a single node; `appliesAhead`). */
  private readonly storeQueue: AppliedBatch[] = []
  /** Whether `drainStoreQueue` runs; `storeDrained` settles when it has emptied the queue. */
  private storeDraining = false
  private storeDrained: Promise<void> = Promise.resolve()

  result(index: number): Promise<ProposalResult> {
    return new Promise((resolve, reject) => this.resultTo(index, { resolve, reject }))
  }

  /** `result` through a callback, called in the stretch that delivers the result (at once if it is known). */
  resultTo(index: number, waiter: Waiter): void {
    const ready = this.results.get(index)
    if (ready !== undefined) {
      this.results.delete(index)
      return waiter.resolve(ready)
    }
    if (this.fatal !== undefined) return waiter.reject(unavailable(`node stopped: ${this.fatal.message}`))
    const abandoned = this.abandoned.get(index)
    if (abandoned !== undefined) {
      this.abandoned.delete(index)
      return waiter.reject(outcomeUnknown(index, abandoned))
    }
    this.waiters.set(index, waiter)
  }

  // ---- apply loop --------------------------------------------------------------

  private async applyDurable(from: number, to: number): Promise<void> {
    // Replicated: applied ≤ committed ≤ head, always; a store holds committed state only.
    if (this.role !== 'single') invariant(to <= this.committedKnown && to <= this.wal.durable, () => `apply up to ${to} beyond committed ${this.committedKnown} or durable ${this.wal.durable}`)
    for (let start = from, end = from - 1; start <= to; start = end + 1) {
      const started = performance.now()
      const last = Math.min(to, start + this.batchProposalsMax() - 1)
      const batch = new WriteBatch()
      const results: ProposalResult[] = []
      const generation = this.cache.generation
      const ordersMax = this.options.applyBatchOrdersMax ?? applyBatchOrdersMaxDefault
      let orders = 0
      if (this.role !== 'single') await this.loadPayloads(start, last)
      for (end = start; end <= last; end++) {
        const payload = this.payloads.get(end)
        invariant(payload !== undefined, () => `no payload for durable index ${end}`)
        // An entry appended here comes with its proposal; one recovered or shipped is decoded (test/server/determinism.test.ts: the same store either way).
        const proposal = this.proposals.get(end) ?? decodeProposal(payload)
        // A proposal applied in slices yields while the earlier ones of its batch would wait unanswered: it starts a batch of its own.
        const sliced = proposal.orders.length > ordersMax
        if (sliced && end > start) {
          // The next batch starts with it: kept decoded, so that a large proposal shipped to a replica is decoded once.
          this.proposals.set(end, proposal)
          break
        }
        this.payloads.delete(end)
        this.proposals.delete(end)
        const result = sliced ? await this.applyOneInSlices(end, proposal, batch) : this.applyOne(end, proposal, batch)
        results.push(result)
        // A batch ends at a rotation: the store index then keeps up with Gen1's
        // first index, which seeds are judged against (ADR 0002), however
        // often a byte budget rotates.
        if (this.cache.generation !== generation) break
        // And once it holds enough orders: the store write yields, so health
        // checks and other requests are served between large bulks.
        orders += result.outcome === 'applied' ? Math.max(1, result.results.length) : 1
        if (orders >= ordersMax) break
      }
      // Broken out of: `end` is the last applied (a rotation, enough orders) or the first not applied (a sliced proposal next).
      end = Math.min(results.length === end - start + 1 ? end : end - 1, last)
      const appliedMs = performance.now()
      const rotated = this.cache.generation !== generation
      if (this.latencyTrace !== undefined) {
        this.latencyTrace.recordMonotonic('apply', started, appliedMs, results.length)
        if (rotated) this.latencyTrace.recordMonotonic('rotation', appliedMs, appliedMs, this.cache.generation)
      }
      const applied: AppliedBatch = { start, end, batch, results, orders, applyMs: appliedMs - started, auditHead: this.fsm.auditHead }
      if (this.appliesAhead()) {
        // What the store step writes besides the FSM's rows is taken now, as of this batch's last entry.
        this.writeNodeRows(batch)
        this.storeQueue.push(applied)
        if (!this.storeDraining) {
          this.storeDraining = true
          this.storeDrained = this.drainStoreQueue().catch((error: unknown) => this.fail(error))
        }
        // The store catches up at a rotation (the seed horizon, ADR 0002), and is never more than a few batches behind.
        if (rotated || this.storeQueue.length >= applyAheadBatchesMax) {
          await this.storeDrained
          if (this.fatal !== undefined) return
        }
      } else await this.storeApplied([applied])
      // RocksDB's batch write is synchronous (its promise settles on the next
      // tick), so awaiting it gives the event loop no turn: yield one here,
      // between batches, or a backlog of large bulks holds it for seconds.
      if (end < to) await yieldTurn()
    }
  }

  /**
   * A single node applies what was appended as soon as it is appended, while
   * its WAL group is made durable, and batches wait for durability in the
   * store queue, in order; the apply loop goes on with later entries
   * meanwhile (docs/performance.md, "Latency at half load"). Otherwise
   * (replicated mode, `applyWhenDurable`) a batch is stored before the next
   * is applied.
   */
  private appliesAhead(): boolean {
    return this.role === 'single' && this.options.applyWhenDurable !== true
  }

  /**
   * Stores the batches applied ahead, in order, each once the WAL holds it
   * (ADR 0005): the batches one fdatasync made durable go to the store in one
   * write and are answered together, up to `applyBatchOrdersMax` orders per
   * turn of the event loop — answers for durable writes before the FSM's
   * work on later ones. Runs while the queue holds batches; a failure fails
   * the node, and no later batch reaches the store after it.
   */
  private async drainStoreQueue(): Promise<void> {
    const ordersMax = this.options.applyBatchOrdersMax ?? applyBatchOrdersMaxDefault
    try {
      for (;;) {
        const first = this.storeQueue[0]
        if (first === undefined || this.fatal !== undefined) return
        if (this.wal.durable < first.end) await this.wal.waitDurable(first.end)
        if (this.fatal !== undefined) return
        let taken = 1
        let orders = first.orders
        for (let next = this.storeQueue[taken]; next !== undefined && next.end <= this.wal.durable && orders + next.orders <= ordersMax; next = this.storeQueue[taken]) {
          orders += next.orders
          taken++
        }
        await this.storeApplied(this.storeQueue.splice(0, taken))
        if (this.storeQueue.length > 0) await yieldTurn()
      }
    } finally {
      this.storeDraining = false
    }
  }

  /**
   * Writes applied batches (consecutive) to the store in one write once the
   * WAL holds them, and answers their proposals: nothing of them reaches the
   * store, and nobody is answered, before their WAL group is durable (ADR 0005).
   *
   * A single node whose batch goes to RocksDB in one synchronous call
   * answers first, then writes, in one synchronous stretch: an answer's bytes
   * leave while the store write runs, and no read or planning step can run
   * between the two (nothing yields), so none sees the answered write
   * missing. If the store write then fails, the node stops; the answered
   * writes are in the durable WAL and replayed at the next open.
   */
  private async storeApplied(applied: readonly AppliedBatch[]): Promise<void> {
    // A failed step fails the node: no later batch may reach the store after it.
    if (this.fatal !== undefined) return
    const first = applied[0]
    const last = applied.at(-1)
    invariant(first !== undefined && last !== undefined, 'a store step has a batch')
    const start = first.start
    const end = last.end
    if (this.wal.durable < end) await this.wal.waitDurable(end)
    if (this.fatal !== undefined) return
    const started = performance.now()
    if (!this.appliesAhead()) this.writeNodeRows(first.batch)
    let rows = first.batch.rows()
    for (let at = 1; at < applied.length; at++) {
      const batch = applied[at] as AppliedBatch
      invariant(batch.start === applied[at - 1]!.end + 1, 'batches stored together are consecutive')
      rows = rows.concat(batch.batch.rows())
    }
    // Not fsynced: the WAL group holding these proposals already is (ADR 0005).
    // A large batch is handed to RocksDB in slices, on a single node only: in
    // replicated mode the batch carries the committed watermark, which a
    // role change may write meanwhile, and must land in the same turn as it
    // was read.
    if (this.appliesAhead()) invariant(this.storedIndex === start - 1, () => `store batch ${start}..${end} would follow index ${this.storedIndex}`)
    const slices = this.role === 'single' ? this.storeSlices : undefined
    const answerFirst = this.role === 'single' && writesInOneStretch(rows.length, slices)
    // Answers carry the applied index they reflect (`Tally-Applied-Index`): when they go first, the
    // store holds it before anything else runs (the write below, in the same stretch).
    if (answerFirst) {
      this.storedIndex = end
      for (const batch of applied) for (const result of batch.results) this.deliver(result)
    }
    await this.store.write(rows, { sync: false, ...(slices === undefined ? {} : { slices }) })
    if (!answerFirst) this.storedIndex = end
    this.latchCaughtUp()
    this.wakeAppliedWaiters()
    const stored = performance.now()
    this.latencyTrace?.recordMonotonic('store-write', started, stored, rows.length)
    // Apply and store write time, the wait for durability excluded.
    this.pipelineObserver.batchApplied(end - start + 1, (applied.reduce((sum, batch) => sum + batch.applyMs, 0) + stored - started) / 1000)
    for (let index = start; index <= end; index++) {
      const appended = this.appendedAtMs.get(index)
      this.appendedAtMs.delete(index)
      if (appended !== undefined) this.pipelineObserver.proposalCommitted((stored - appended) / 1000)
    }
    for (const batch of applied) {
      this.signedCheckpoints?.observe(batch.auditHead)
      if (!answerFirst) for (const result of batch.results) this.deliver(result)
    }
    if (this.storedIndex - this.checkpointIndex >= (this.options.checkpointEntries ?? checkpointEntriesDefault)) {
      const checkpointStarted = performance.now()
      await this.checkpoint()
      this.latencyTrace?.recordMonotonic('checkpoint', checkpointStarted, performance.now())
    }
  }

  /**
   * Makes every store batch so far durable (one synced write flushes RocksDB's
   * log), then lets the WAL drop what the store no longer needs, keeping
   * `walRetainEntries` of history, in at most about `walRetainBytes` (whole
   * segments).
   */
  async checkpoint(): Promise<void> {
    const index = this.storedIndex
    // Off the JavaScript thread first (durability still comes from the synced write below; docs/adr/0005-durability.md).
    await this.store.syncLogAhead()
    const started = performance.now()
    await this.signedCheckpoints?.flush()
    await this.store.write([{ key: metaKey(MetaKey.checkpointIndex), value: Buffer.from(String(index)) }], { sync: true })
    const elapsedMs = performance.now() - started
    this.pipelineObserver.checkpointed(elapsedMs / 1000)
    const slowCheckpointMs = this.options.slowCheckpointMs ?? slowCheckpointMsDefault
    if (elapsedMs >= slowCheckpointMs) {
      this.options.log?.(`slow checkpoint at index ${index}: ${elapsedMs.toFixed(0)} ms`, { level: 'warn', index, durationMs: Math.round(elapsedMs), slowCheckpointMs })
    }
    this.checkpointIndex = index
    this.retention?.onCheckpoint?.(index)
    // History a rebuild still needs (a pinned WAL range, the tail after the newest snapshot) is never recycled.
    const byEntries = index - (this.options.walRetainEntries ?? walRetainEntriesDefault)
    const byBytes = Math.min(index, this.wal.indexKeepingBytes(this.options.walRetainBytes ?? walRetainBytesDefault))
    const recyclable = Math.min(Math.max(byEntries, byBytes), this.retention?.recycleFloor?.() ?? Number.POSITIVE_INFINITY)
    if (recyclable > this.wal.tail) await this.wal.recycle(recyclable)
  }

  /**
   * Cluster mode's say in checkpoints (docs/cluster.md, "Snapshots and
   * rebuild"): `onCheckpoint` after each synced checkpoint (snapshots are
   * taken there), `recycleFloor` the highest LSN the WAL may be recycled to.
   */
  setRetention(hooks: NodeRetentionHooks | undefined): void {
    this.retention = hooks
  }

  private deliver(result: ProposalResult): void {
    if (this.role !== 'single') {
      // Entries shipped from a primary have nobody waiting here.
      if (!this.localAppends.has(result.index)) return
      if (this.role === 'primary' && !(this.options.replicated?.canAcknowledge?.() ?? true)) {
        this.heldResults.push(result)
        return
      }
      this.localAppends.delete(result.index)
    }
    const waiter = this.waiters.get(result.index)
    if (waiter === undefined) {
      this.results.set(result.index, result)
      return
    }
    this.waiters.delete(result.index)
    waiter.resolve(result)
  }

  private fail(error: unknown): void {
    const failure = error instanceof Error ? error : new Error(String(error))
    if (this.fatal === undefined) {
      this.fatal = failure
      const message = `FATAL: the apply pipeline stopped: ${failure.stack ?? failure.message}`
      if (this.options.log === undefined) console.error(message)
      else this.options.log(message, { level: 'error' })
    }
    for (const waiter of this.waiters.values()) waiter.reject(unavailable(`node stopped: ${failure.message}`))
    this.waiters.clear()
    this.wakeAppliedWaiters(true)
  }

  // ---- replicated mode (docs/cluster.md, "Node in replicated mode") ------------

  /** Role, epoch, LSNs, state hash: what `/_/cluster` shows. */
  clusterStatus(): NodeClusterStatus {
    return {
      mode: this.role === 'single' ? 'single' : 'replicated',
      nodeId: this.options.replicated?.nodeId,
      role: this.role,
      epoch: this.epoch,
      primaryId: this.role === 'primary' ? this.options.replicated?.nodeId : this.primaryId,
      headLsn: this.wal.head,
      flushedLsn: this.wal.durable,
      committedLsn: this.role === 'single' ? this.wal.durable : this.committedKnown,
      appliedIndex: this.storedIndex,
      stateHash: this.stateHashValue,
      caughtUp: this.caughtUp(),
      heldAcknowledgements: this.heldResults.length,
      ...(this.snapshotStatus === undefined ? {} : { snapshots: this.snapshotStatus() }),
    }
  }

  /** A primary's epoch (what its write answers carry as `Tally-Epoch`); undefined on any other node. Read per answer, unlike `clusterStatus()`. */
  primaryEpoch(): number | undefined {
    return this.role === 'primary' ? this.epoch : undefined
  }

  /** Cluster mode's snapshot figures, shown by `clusterStatus()` (`/_/cluster`). */
  setSnapshotStatus(source: (() => SnapshotStatusView) | undefined): void {
    this.snapshotStatus = source
  }

  /** The rolling state hash after the applied index (undefined when not kept). */
  get stateHash(): StateHash | undefined {
    return this.stateHashValue
  }

  /**
   * Whether reads here reflect the cluster's committed state: always on a
   * single node; a primary once it applied what was committed when it took
   * over; a replica once it heard the committed LSN from its epoch's
   * primary and applied up to it.
   */
  caughtUp(): boolean {
    if (this.fatal !== undefined) return false
    if (this.role === 'single') return true
    if (this.role === 'primary') return this.storedIndex >= this.takeoverCommitted
    if (this.committedHeardAtEpoch !== this.epoch) return false
    this.latchCaughtUp()
    // Once caught up, a replica under load trails its primary a little: ready while the lag stays bounded.
    return this.caughtUpAtEpoch === this.epoch && this.committedAnnounced - this.storedIndex <= (this.options.replicated?.readyLagEntriesMax ?? readyLagEntriesMaxDefault)
  }

  /** Caught up: applied all its primary announced committed (not only what it holds of it). */
  private latchCaughtUp(): void {
    if (this.role === 'replica' && this.committedHeardAtEpoch === this.epoch && this.storedIndex >= this.committedAnnounced) this.caughtUpAtEpoch = this.epoch
  }

  /** `listener(flushedLsn)` after each durable WAL group (replicated mode): a replica acks it, a primary feeds its commit tracker. */
  onFlushed(listener: (flushedLsn: number) => void): () => void {
    this.flushedListeners.add(listener)
    return () => this.flushedListeners.delete(listener)
  }

  /** `listener(entry)` for each entry the primary appends, synchronously (live shipping before the local fsync). */
  onAppended(listener: (entry: ReplicatedEntry) => void): () => void {
    this.appendListeners.add(listener)
    return () => this.appendListeners.delete(listener)
  }

  /** Durable entries in [from, to], with their epochs (catch-up shipping). */
  async *readLog(from: number, to: number): AsyncIterable<ReplicatedEntry> {
    for await (const record of this.wal.read(from, to)) yield { index: record.index, epoch: record.epoch, type: record.type, payload: record.payload }
  }

  /** The epoch of the entry at `lsn`, or undefined when this node holds none there (recycled, or beyond head). */
  async entryEpoch(lsn: number): Promise<number | undefined> {
    if (lsn < 1 || lsn > this.wal.head || lsn <= this.wal.tail) return undefined
    if (lsn > this.wal.durable) await this.wal.waitDurable(lsn)
    for await (const record of this.wal.read(lsn, lsn)) return record.epoch
    return undefined
  }

  /** What the protocol's replica-side rules read of this node's log (entry epochs are read with `entryEpoch`). */
  logView(): ReplicaLogView {
    return {
      headLsn: Lsn.of(this.wal.head),
      durableLsn: Lsn.of(this.wal.durable),
      checkpointLsn: Lsn.of(this.checkpointIndex),
      knownCommittedLsn: Lsn.of(this.committedKnown),
      epochAt: (lsn) => this.knownEpochAt(lsn),
    }
  }

  /** The epoch of the entry at `lsn` when this node tracked it since it opened; undefined otherwise (read it with `entryEpoch`). */
  private knownEpochAt(lsn: number): Epoch | undefined {
    if (lsn < this.epochRunsFrom || lsn > this.epochRunsTo || lsn > this.wal.head || lsn <= this.wal.tail) return undefined
    for (let i = this.epochRuns.length - 1; i >= 0; i--) {
      const run = this.epochRuns[i] as { first: number; epoch: number }
      if (run.first <= lsn) return run.epoch as Epoch
    }
    return undefined
  }

  private noteEpoch(index: number, epoch: number): void {
    if (index !== this.epochRunsTo + 1) {
      // Entries were appended behind the node's back (a transport writing the WAL itself): start over from here.
      this.epochRuns = []
      this.epochRunsFrom = index
    }
    if (this.epochRuns.at(-1)?.epoch !== epoch) this.epochRuns.push({ first: index, epoch })
    this.epochRunsTo = index
  }

  /**
   * The committed LSN moved: on a primary, from its commit tracker (fed by
   * `onFlushed` and the replicas' acks); on a replica, as carried by the
   * primary's traffic — only what it holds counts (`learnCommitted`). The
   * FSM then applies up to it, never beyond the local durable LSN.
   */
  advanceCommitted(committedLsn: number): void {
    this.requireReplicated()
    invariant(Number.isSafeInteger(committedLsn) && committedLsn >= 0, () => `committed LSN ${committedLsn} is not a non-negative integer`)
    let known: number
    if (this.role === 'replica') {
      known = learnCommitted(this.logView(), Lsn.of(committedLsn), Lsn.of(this.wal.head))
      if (this.committedHeardAtEpoch !== this.epoch) this.committedAnnounced = 0
      this.committedHeardAtEpoch = this.epoch
      this.committedAnnounced = Math.max(this.committedAnnounced, committedLsn)
    } else {
      // A primary's commit point never passes what it holds durably itself (the tracker guarantees it; checked here too).
      invariant(committedLsn <= this.wal.durable, () => `committed LSN ${committedLsn} beyond the primary's durable LSN ${this.wal.durable}`)
      known = committedLsn
    }
    if (known > this.committedKnown) {
      this.committedKnown = known
      this.scheduleApply()
    }
    this.latchCaughtUp()
  }

  /**
   * A replica appends entries shipped by its primary, each with its own
   * epoch: duplicates of what it holds are skipped, a conflicting
   * uncommitted tail (a deposed primary's) is truncated first, a gap or an
   * epoch it has not adopted is refused. Resolves with the flushed LSN once
   * they are durable (what the replica acknowledges).
   */
  async appendReplicated(entries: readonly ReplicatedEntry[]): Promise<number> {
    this.requireReplicated()
    const last = await this.exclusive(async () => {
      if (this.role !== 'replica') throw new ReplicationRefused('not_replica', `node ${this.options.replicated?.nodeId ?? ''} is ${this.role} at epoch ${this.epoch}: it takes no shipped entries`)
      let appended = 0
      for (const entry of entries) {
        if (entry.epoch > this.epoch) throw new ReplicationRefused('future_epoch', `entry ${entry.index} of epoch ${entry.epoch}: this node has adopted epoch ${this.epoch} only`)
        if (entry.index <= this.wal.head) {
          // The committed prefix is the same on every node: nothing to check there.
          if (entry.index <= Math.max(this.committedKnown, this.applyScheduled)) continue
          const held = await this.entryEpoch(entry.index)
          if (held === entry.epoch) continue
          await this.truncateTail(entry.index - 1, `entry ${entry.index} of epoch ${entry.epoch} replaces one of epoch ${String(held)}`)
        }
        if (entry.index !== this.wal.head + 1) throw new ReplicationRefused('gap', `entry ${entry.index} does not follow this node's head ${this.wal.head}`)
        if (entry.epoch < this.wal.epochHead) throw new ReplicationRefused('stale_epoch', `entry ${entry.index} of epoch ${entry.epoch} after one of epoch ${this.wal.epochHead}`)
        if (entry.type !== WAL_TYPE_PROPOSAL) throw new ReplicationRefused('unknown_type', `entry ${entry.index} has the unknown WAL record type ${entry.type}`)
        const index = this.wal.append({ epoch: entry.epoch, type: entry.type, payload: entry.payload })
        this.noteEpoch(index, entry.epoch)
        this.payloads.set(index, Buffer.from(entry.payload.buffer, entry.payload.byteOffset, entry.payload.byteLength))
        appended = index
      }
      return appended
    })
    // A truncation queued meanwhile may have dropped some of them: wait for what is still there.
    if (last > 0) await this.wal.waitDurable(Math.min(last, this.wal.head))
    return this.wal.durable
  }

  /**
   * Replica → primary at `epoch` (the control plane's assignment names this
   * node, with the cluster's committed LSN). The uncommitted tail is dropped
   * (`decidePrimaryTakeover`; never what this node knows committed), the
   * epoch is persisted (synced) before any entry carries it, then admission
   * is open. Returns 'stale' for an epoch below the adopted one.
   */
  becomePrimary(epoch: number, committedLsn: number): Promise<'promoted' | 'already' | 'stale'> {
    this.requireReplicated()
    return this.exclusive(async () => {
      if (epoch < this.epoch || (epoch === this.epoch && this.role === 'primary')) return epoch === this.epoch ? 'already' : 'stale'
      const committed = Lsn.of(Math.max(committedLsn, this.committedKnown))
      const takeover = decidePrimaryTakeover(this.logView(), committed)
      if (takeover.truncateToLsn !== undefined) await this.truncateTail(takeover.truncateToLsn, `promoted at epoch ${epoch}: the tail above committed ${committed} is dropped`)
      await this.persistEpoch(epoch, takeover.knownCommittedLsn)
      this.epoch = epoch
      this.committedKnown = Math.max(this.committedKnown, takeover.knownCommittedLsn)
      this.takeoverCommitted = Math.min(this.committedKnown, this.wal.head)
      this.primaryId = this.options.replicated?.nodeId
      this.role = 'primary'
      this.options.log?.(`replication: primary at epoch ${epoch}, committed ${this.committedKnown}, head ${this.wal.head}`, { level: 'info' })
      this.scheduleApply()
      return 'promoted'
    })
  }

  /**
   * A newer epoch reached this node (it names `primaryId`): a primary is
   * deposed and stops admitting at once; the tail beyond what it may keep
   * whatever lineage wins is dropped (`decideEpochAdoption`), the epoch is
   * persisted (synced), and the node is a replica of that epoch. Writes it
   * admitted and can no longer answer are refused as of unknown outcome.
   */
  adoptEpoch(epoch: number, primaryId: string | undefined, lineageResets: readonly LineageReset[] = []): Promise<'adopted' | 'current' | 'stale'> {
    this.requireReplicated()
    return this.exclusive(async () => {
      // A primary is deposed only by a newer epoch (one primary per epoch).
      if (epoch < this.epoch || (epoch === this.epoch && this.role === 'primary')) return 'stale'
      if (epoch === this.epoch && this.role === 'replica') {
        this.primaryId = primaryId ?? this.primaryId
        return 'current'
      }
      const wasPrimary = this.role === 'primary'
      this.role = 'replica'
      this.primaryId = primaryId
      if (wasPrimary) this.rejectHeld(`node deposed at epoch ${epoch}`)
      const decision = decideEpochAdoption({ log: this.logView(), currentEpoch: this.epoch as Epoch, offeredEpoch: epoch as Epoch, isPrimary: false, lineageResets })
      if (decision.kind === 'ignore') return 'current'
      if (decision.wipeStore || decision.knownCommittedLsn < this.applyScheduled) {
        throw new ReplicationRefused('needs_rebuild', `epoch ${epoch}: this node applied up to ${this.applyScheduled}, beyond what the new lineage keeps (${decision.knownCommittedLsn}): it needs a rebuild`)
      }
      if (decision.truncateToLsn < this.wal.head) await this.truncateTail(decision.truncateToLsn, `adopting epoch ${epoch}: a tail that may be a deposed primary's is dropped`)
      await this.persistEpoch(epoch, decision.knownCommittedLsn)
      this.epoch = epoch
      this.committedKnown = decision.knownCommittedLsn
      this.options.log?.(`replication: replica at epoch ${epoch} (primary ${primaryId ?? 'unknown'}), head ${this.wal.head}, committed ${this.committedKnown}`, { level: 'info' })
      return 'adopted'
    })
  }

  /**
   * A primary that has been unable to record commits for too long (etcd
   * unreachable) answers every write it admitted and has not answered —
   * waiting for its commit, or committed and held by the lease gate — as of
   * unknown outcome (503 `NOT_PRIMARY`, retryable): each may still commit
   * later, so the client retries with the same idempotency key and gets the
   * original result, never a second apply. The entries stay in the log; when
   * they commit, nobody is waiting for them. Returns how many were answered.
   */
  abandonUnanswered(why: string): number {
    if (this.role !== 'primary') return 0
    this.heldResults.splice(0)
    let answered = 0
    for (const index of this.localAppends) {
      const waiter = this.waiters.get(index)
      this.waiters.delete(index)
      // Admission asks for the result right after the append: one that has not asked yet is told when it does.
      if (waiter === undefined) this.abandoned.set(index, why)
      else waiter.reject(outcomeUnknown(index, why))
      answered += 1
    }
    this.localAppends.clear()
    return answered
  }

  /** The lease gate opened again: answers the results it held. */
  releaseAcknowledgements(): void {
    if (this.role !== 'primary' || !(this.options.replicated?.canAcknowledge?.() ?? true)) return
    for (const result of this.heldResults.splice(0)) this.deliver(result)
  }

  /**
   * Resolves true once the applied (and stored) index reaches `index`, false
   * after `timeoutMs` or when the node stops: a read at or after an index.
   */
  waitForApplied(index: number, timeoutMs: number): Promise<boolean> {
    if (this.storedIndex >= index) return Promise.resolve(true)
    if (this.fatal !== undefined || this.closed) return Promise.resolve(false)
    if (this.appliedWaiters.size >= appliedWaitersMax) {
      return Promise.reject(new TallyError({ code: 'RESOURCE_EXHAUSTED', kind: 'unavailable', message: `${appliedWaitersMax} reads already wait for an applied index, retry` }))
    }
    return new Promise((resolve) => {
      const waiter = {
        index,
        resolve: (reached: boolean) => {
          clearTimeout(timer)
          this.appliedWaiters.delete(waiter)
          resolve(reached)
        },
      }
      const timer = setTimeout(() => waiter.resolve(false), timeoutMs)
      this.appliedWaiters.add(waiter)
    })
  }

  private wakeAppliedWaiters(stopping = false): void {
    for (const waiter of [...this.appliedWaiters]) {
      if (stopping) waiter.resolve(false)
      else if (waiter.index <= this.storedIndex) waiter.resolve(true)
    }
  }

  /** Hands the known-committed, locally durable entries not yet scheduled to the apply chain. */
  private scheduleApply(): void {
    const target = Math.min(this.committedKnown, this.wal.durable)
    if (target <= this.applyScheduled) return
    const from = this.applyScheduled + 1
    this.applyScheduled = target
    this.applyChain = this.applyChain.then(() => this.applyDurable(from, target)).catch((error: unknown) => this.fail(error))
  }

  /** Payloads not in memory (entries recovered from the WAL, or appended before a restart) are read back. */
  private async loadPayloads(from: number, to: number): Promise<void> {
    let missing = false
    for (let index = from; index <= to && !missing; index++) missing = !this.payloads.has(index)
    if (!missing) return
    // These entries are committed and durable: no truncation ever reaches them. But the WAL refuses any read a
    // truncation overlapped (the peer transport cuts a replica's uncommitted tail at a new epoch's hello, while this
    // node applies below it), so such a read is simply read again; it stops a node only if that keeps happening.
    for (let attempt = 1; ; attempt++) {
      try {
        for await (const record of this.wal.read(from, to)) {
          if (this.payloads.has(record.index)) continue
          invariant(record.type === WAL_TYPE_PROPOSAL, () => `unknown WAL record type ${record.type}`)
          this.payloads.set(record.index, Buffer.from(record.payload.buffer, record.payload.byteOffset, record.payload.byteLength))
        }
        return
      } catch (error) {
        if (!(error instanceof WalError && error.reason === 'CONCURRENT_TRUNCATE') || attempt >= concurrentTruncateRereadsMax) throw error
        invariant(to <= this.wal.durable, () => `committed entries up to ${to} read again after a truncation left the WAL durable to ${this.wal.durable}`)
      }
    }
  }

  /**
   * Drops every entry above `lsn`. Never an entry this node knows committed
   * and holds durably, never one handed to the FSM: those are facts every
   * node shares. Writes this node admitted there are answered as of unknown
   * outcome.
   */
  private async truncateTail(lsn: number, why: string): Promise<void> {
    invariant(lsn >= Math.min(this.committedKnown, this.wal.durable), () => `truncation to ${lsn} would drop committed entries (committed ${this.committedKnown}, durable ${this.wal.durable})`)
    invariant(lsn >= this.applyScheduled, () => `truncation to ${lsn} below the applied index ${this.applyScheduled}`)
    const head = this.wal.head
    this.options.log?.(`replication: truncating WAL entries ${lsn + 1}..${head}: ${why}`, { level: 'warn' })
    await this.wal.truncateAfter(lsn)
    this.forgetAbove(lsn)
    this.forgetEntriesAbove(lsn, head, why)
    this.committedKnown = Math.min(this.committedKnown, Math.max(lsn, this.applyScheduled))
  }

  /** What the node keeps about entries above `lsn` (payloads, waiters, epochs) goes: they are, or are about to be, truncated. */
  private forgetEntriesAbove(lsn: number, head: number, why: string): void {
    for (let index = lsn + 1; index <= head; index++) {
      this.payloads.delete(index)
      this.proposals.delete(index)
      this.appendedAtMs.delete(index)
      if (this.localAppends.delete(index)) {
        const waiter = this.waiters.get(index)
        this.waiters.delete(index)
        waiter?.reject(outcomeUnknown(index, why))
      }
    }
    this.forgetAbove(lsn)
  }

  private forgetAbove(lsn: number): void {
    this.epochRuns = this.epochRuns.filter((run) => run.first <= lsn)
    this.epochRunsTo = Math.min(this.epochRunsTo, lsn)
    this.epochRunsFrom = Math.min(this.epochRunsFrom, lsn + 1)
  }

  /**
   * The node as a transport that writes the replica's WAL itself sees it
   * (the peer protocol's replica side): the persisted epoch, the known
   * committed and checkpoint LSNs, and two hooks — adopting an epoch the
   * protocol decided on (persisted, synced, before the transport truncates
   * the WAL; a deposed primary's waiters above the cut are refused) and
   * learning a committed LSN (the FSM then applies up to it).
   */
  replicaState(): {
    epoch(): Epoch
    knownCommittedLsn(): Lsn
    checkpointLsn(): Lsn
    isPrimary(): boolean
    adoptEpoch(adoption: Extract<EpochAdoption, { kind: 'adopt' }>): Promise<void>
    learnCommitted(lsn: Lsn): void
  } {
    this.requireReplicated()
    return {
      epoch: () => this.epoch as Epoch,
      knownCommittedLsn: () => Lsn.of(this.committedKnown),
      checkpointLsn: () => Lsn.of(this.checkpointIndex),
      isPrimary: () => this.role === 'primary',
      adoptEpoch: (adoption) =>
        this.exclusive(async () => {
          if (adoption.persistEpoch <= this.epoch) return
          if (adoption.wipeStore || adoption.knownCommittedLsn < this.applyScheduled) {
            throw new ReplicationRefused('needs_rebuild', `epoch ${adoption.persistEpoch}: this node applied up to ${this.applyScheduled}, beyond what the new lineage keeps (${adoption.knownCommittedLsn}): it needs a rebuild`)
          }
          invariant(adoption.truncateToLsn >= this.applyScheduled, () => `a cut at ${adoption.truncateToLsn} below the applied index ${this.applyScheduled}`)
          const wasPrimary = this.role === 'primary'
          this.role = 'replica'
          if (wasPrimary) this.rejectHeld(`node deposed at epoch ${adoption.persistEpoch}`)
          this.forgetEntriesAbove(adoption.truncateToLsn, this.wal.head, `adopting epoch ${adoption.persistEpoch}`)
          await this.persistEpoch(adoption.persistEpoch, adoption.knownCommittedLsn)
          this.epoch = adoption.persistEpoch
          this.committedKnown = adoption.knownCommittedLsn
          this.primaryId = undefined
        }),
      learnCommitted: (lsn) => this.advanceCommitted(lsn),
    }
  }

  /** The epoch (with what is known committed) reaches the disk before anything uses it. */
  private async persistEpoch(epoch: number, committed: number): Promise<void> {
    await this.store.write(
      [
        { key: replicationMetaKey(ReplicationMetaKey.epoch), value: Buffer.from(String(epoch)) },
        { key: replicationMetaKey(ReplicationMetaKey.committed), value: Buffer.from(String(Math.max(committed, this.storedIndex))) },
      ],
      { sync: true },
    )
  }

  private rejectHeld(why: string): void {
    for (const result of this.heldResults.splice(0)) {
      this.localAppends.delete(result.index)
      const waiter = this.waiters.get(result.index)
      this.waiters.delete(result.index)
      waiter?.reject(outcomeUnknown(result.index, why))
    }
  }

  private requireReplicated(): void {
    if (this.role === 'single') throw new InvariantViolation('replicated-mode operation on a single node (open it with `replicated`)')
    if (this.fatal !== undefined) throw unavailable(`node stopped: ${this.fatal.message}`)
  }

  private exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.transitions.then(operation)
    this.transitions = result.then(
      () => undefined,
      () => undefined,
    )
    return result
  }

  /** The signed audit checkpoints this node produces, when it was given a key. */
  get auditCheckpoints(): AuditCheckpoints | undefined {
    return this.signedCheckpoints
  }

  get failure(): Error | undefined {
    return this.fatal
  }

  /** Drains in-flight writes, then closes the WAL and the store. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.fatal === undefined) {
      await this.wal.flush().catch(() => {})
      await this.applyChain
      await this.storeDrained
      await this.signedCheckpoints?.close()
      await this.store.write([{ key: metaKey(MetaKey.checkpointIndex), value: Buffer.from(String(this.storedIndex)) }], { sync: true })
    }
    this.signedCheckpoints?.stop()
    this.rejectHeld('the node is shutting down')
    this.wakeAppliedWaiters(true)
    this.unsubscribe()
    await this.wal.close().catch(() => {})
    await this.store.close()
  }
}

/** One turn of the event loop (I/O callbacks, timers), not only the microtask queue. */
function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** See `LedgerNode.setRetention`. */
export interface NodeRetentionHooks {
  onCheckpoint?(index: number): void
  recycleFloor?(): number
}

/** A store batch the FSM applied, waiting to be stored (`storeApplied`). */
interface AppliedBatch {
  readonly start: number
  readonly end: number
  readonly batch: WriteBatch
  readonly results: readonly ProposalResult[]
  /** Its orders (a proposal not applied counts one), for the bound on a store step. */
  readonly orders: number
  /** The FSM's time applying it (ms). */
  readonly applyMs: number
  /** The audit chain's head after its last entry. */
  readonly auditHead: AuditHead
}

/** The last WAL fdatasync's duration, shared by the WAL's I/O hook and the node. */
interface WalTiming {
  fsyncSeconds: number
  /** When the last fdatasync started (`performance.now()`), for the latency trace. */
  fsyncStartedMs: number
}

function unavailable(message: string): TallyError {
  return new TallyError({ code: 'INTERNAL', kind: 'unavailable', message })
}

/**
 * A new data directory gets its cluster id and its cache settings in one
 * synced batch (ADR 0007), so that a later flag never silently changes them.
 */
async function openOrCreateIdentity(store: Store, options: LedgerNodeOptions): Promise<{ clusterId: string; created: boolean }> {
  const existing = await store.get(metaKey(MetaKey.clusterId))
  if (existing !== undefined) return { clusterId: existing.toString('utf8'), created: false }
  const clusterId = options.clusterId ?? randomUUID()
  const settings: CacheSettings = {
    rotationThreshold: options.cacheRotationThreshold ?? cacheRotationThresholdDefault,
    generationBytesMax: options.cacheGenerationBytesMax === undefined ? cacheGenerationBytesMaxDefault : options.cacheGenerationBytesMax,
  }
  validateCacheSettings(settings)
  const rows: RowWrite[] = [{ key: metaKey(MetaKey.clusterId), value: Buffer.from(clusterId) }]
  // A store that already applied entries without a cluster id predates this: leave its cache state alone.
  if ((await store.get(metaKey(MetaKey.appliedIndex))) === undefined) rows.push(...cacheCreationRows(settings))
  await store.write(rows, { sync: true })
  return { clusterId, created: true }
}

async function readAuditHead(store: Store): Promise<AuditHead> {
  const row = await store.get(metaKey(MetaKey.auditHead))
  if (row === undefined) return GENESIS
  const json = parseJson(row.toString('utf8')) as { seq: bigint; hash: string }
  return { seq: json.seq, hash: json.hash }
}

