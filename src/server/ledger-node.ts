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
import type { ProposalResult } from '../fsm/index.ts'
import { LedgerStateMachine, WAL_TYPE_PROPOSAL, WriteBatch, decodeProposal } from '../fsm/index.ts'
import { Admission } from '../admission/index.ts'
import type { Sequencer } from '../admission/index.ts'
import type { RowWrite } from '../store/index.ts'
import { MetaKey, Store, metaKey } from '../store/index.ts'
import { cacheCreationRows, readCacheState, restoreCache } from './cache-restore.ts'
import { Wal, resetWal } from '../wal/index.ts'
import { AuditCheckpoints } from './audit-checkpoints.ts'
import { silentObserver } from './pipeline-observer.ts'
import type { PipelineObserver } from './pipeline-observer.ts'
import type { NodeLog } from './log.ts'
import type { AuditCheckpointSettings } from './audit-checkpoints.ts'
import type { WalIo } from '../wal/index.ts'

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
  /** Applied entries between store checkpoints (a synced store write, then WAL recycling). */
  readonly checkpointEntries?: number
  /** WAL entries kept below the last checkpoint (history for replicas and inspection). */
  readonly walRetainEntries?: number
  /** WAL segment size; recycling drops whole segments. */
  readonly walSegmentBytesMax?: number
  /** A checkpoint longer than this logs one warning with its figures. */
  readonly slowCheckpointMs?: number
  /** Signed checkpoints of the audit chain (docs/check.md); none without a key. */
  readonly auditCheckpoints?: AuditCheckpointSettings
  /** Tests: the WAL's file operations (a fault layer modelling power loss). */
  readonly walIo?: Partial<WalIo>
  /** Tests: opens the store instead of `Store.open` (a fault layer modelling power loss). */
  readonly openStore?: (directory: string) => Promise<Store>
}

export const checkpointEntriesDefault = 10_000
export const slowCheckpointMsDefault = 100
export const walRetainEntriesDefault = 1_000_000

interface Waiter {
  resolve(result: ProposalResult): void
  reject(error: Error): void
}

/**
 * One single-node Tally: store, WAL, cache, FSM and admission wired into the
 * pipeline of contract §2. Durability (ADR 0005): a write is acknowledged
 * after its WAL group is fsynced, the FSM applied it and its store batch is
 * written; the store is synced at checkpoints, and boot replays the WAL
 * beyond the store's applied index.
 */
export class LedgerNode implements Sequencer {
  readonly admission: Admission
  private readonly payloads = new Map<number, Buffer>()
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

  private constructor(
    readonly store: Store,
    readonly wal: Wal,
    readonly cache: AttributeCache,
    readonly fsm: LedgerStateMachine,
    readonly clusterId: string,
    private readonly options: LedgerNodeOptions,
    private readonly walTiming: WalTiming,
  ) {
    this.storedIndex = fsm.appliedIndex
    this.checkpointIndex = fsm.appliedIndex
    this.admission = new Admission({ cache, store, sequencer: this, now: options.now ?? Date.now, newId: randomUUID })
    this.unsubscribe = wal.onDurable((from, to) => {
      this.pipelineObserver.walGroupDurable(to - from + 1, walTiming.fsyncSeconds)
      this.applyChain = this.applyChain.then(() => this.applyDurable(from, to)).catch((error: unknown) => this.fail(error))
    })
  }

  static async open(options: LedgerNodeOptions): Promise<LedgerNode> {
    const log = options.log ?? (() => {})
    mkdirSync(options.dataDirectory, { recursive: true })
    const store = await (options.openStore ?? Store.open)(path.join(options.dataDirectory, 'store'))
    let opened: Wal | undefined
    try {
      const { clusterId, created } = await openOrCreateIdentity(store, options)
      const appliedIndex = Number((await store.get(metaKey(MetaKey.appliedIndex)))?.toString('utf8') ?? '0')
      const auditHead = await readAuditHead(store)
      // The stored settings, never the flags: replay must see what the original apply saw.
      const cacheState = await readCacheState(store, options.cacheRotationThreshold ?? cacheRotationThresholdDefault)
      const cache = await restoreCache(store, cacheState, appliedIndex)
      const walDirectory = path.join(options.dataDirectory, 'wal')
      const walTiming: WalTiming = { fsyncSeconds: 0 }
      const walOptions = {
        directory: walDirectory,
        sync: options.sync ?? true,
        // Times each group's fdatasync for metrics; groups are synced one at a time, so the last timing is the group's.
        io: {
          async sync(handle: FileHandle): Promise<void> {
            const started = performance.now()
            await handle.datasync()
            walTiming.fsyncSeconds = (performance.now() - started) / 1000
          },
        },
        ...(options.walSegmentBytesMax === undefined ? {} : { segmentBytesMax: options.walSegmentBytesMax }),
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
        if (!created) await node.applyRequestedCacheSettings(log)
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
    if (this.wal.head < from) return
    log(`recovery: replaying WAL entries ${from}..${this.wal.head}`)
    let batch = new WriteBatch()
    let count = 0
    for await (const record of this.wal.read(from)) {
      invariant(record.type === WAL_TYPE_PROPOSAL, () => `unknown WAL record type ${record.type}`)
      this.fsm.apply(record.index, decodeProposal(record.payload), batch)
      if (++count % this.batchProposalsMax() === 0) {
        await this.store.write(batch.rows(), { sync: true })
        batch = new WriteBatch()
      }
    }
    await this.store.write(batch.rows(), { sync: true })
    this.storedIndex = this.fsm.appliedIndex
    log(`recovery: applied up to ${this.storedIndex}`)
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

  append(payload: Buffer): number {
    if (this.fatal !== undefined) throw unavailable(`node stopped: ${this.fatal.message}`)
    if (this.closed) throw unavailable('node is shutting down')
    const index = this.wal.append({ epoch: 0, type: WAL_TYPE_PROPOSAL, payload })
    this.payloads.set(index, payload)
    this.appendedAtMs.set(index, performance.now())
    if (!this.flushScheduled) {
      this.flushScheduled = true
      queueMicrotask(() => {
        this.flushScheduled = false
        this.wal.flush().catch((error: unknown) => this.fail(error))
      })
    }
    return index
  }

  result(index: number): Promise<ProposalResult> {
    const ready = this.results.get(index)
    if (ready !== undefined) {
      this.results.delete(index)
      return Promise.resolve(ready)
    }
    if (this.fatal !== undefined) return Promise.reject(unavailable(`node stopped: ${this.fatal.message}`))
    return new Promise((resolve, reject) => this.waiters.set(index, { resolve, reject }))
  }

  // ---- apply loop --------------------------------------------------------------

  private async applyDurable(from: number, to: number): Promise<void> {
    for (let start = from, end = from - 1; start <= to; start = end + 1) {
      const started = performance.now()
      const last = Math.min(to, start + this.batchProposalsMax() - 1)
      const batch = new WriteBatch()
      const results: ProposalResult[] = []
      const generation = this.cache.generation
      for (end = start; end <= last; end++) {
        const payload = this.payloads.get(end)
        invariant(payload !== undefined, () => `no payload for durable index ${end}`)
        this.payloads.delete(end)
        results.push(this.fsm.apply(end, decodeProposal(payload), batch))
        // A batch ends at a rotation: the store index then keeps up with Gen1's
        // first index, which seeds are judged against (ADR 0002), however
        // often a byte budget rotates.
        if (this.cache.generation !== generation) break
      }
      end = Math.min(end, last)
      // Not fsynced: the WAL group holding these proposals already is (ADR 0005).
      await this.store.write(batch.rows(), { sync: false })
      this.storedIndex = end
      const stored = performance.now()
      this.pipelineObserver.batchApplied(end - start + 1, (stored - started) / 1000)
      for (let index = start; index <= end; index++) {
        const appended = this.appendedAtMs.get(index)
        this.appendedAtMs.delete(index)
        if (appended !== undefined) this.pipelineObserver.proposalCommitted((stored - appended) / 1000)
      }
      this.signedCheckpoints?.observe(this.fsm.auditHead)
      for (const result of results) this.deliver(result)
    }
    if (this.storedIndex - this.checkpointIndex >= (this.options.checkpointEntries ?? checkpointEntriesDefault)) await this.checkpoint()
  }

  /**
   * Makes every store batch so far durable (one synced write flushes RocksDB's
   * log), then lets the WAL drop what the store no longer needs, keeping
   * `walRetainEntries` of history.
   */
  async checkpoint(): Promise<void> {
    const index = this.storedIndex
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
    const recyclable = index - (this.options.walRetainEntries ?? walRetainEntriesDefault)
    if (recyclable > this.wal.tail) await this.wal.recycle(recyclable)
  }

  private deliver(result: ProposalResult): void {
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
      await this.signedCheckpoints?.close()
      await this.store.write([{ key: metaKey(MetaKey.checkpointIndex), value: Buffer.from(String(this.storedIndex)) }], { sync: true })
    }
    this.signedCheckpoints?.stop()
    this.unsubscribe()
    await this.wal.close().catch(() => {})
    await this.store.close()
  }
}

/** The last WAL fdatasync's duration, shared by the WAL's I/O hook and the node. */
interface WalTiming {
  fsyncSeconds: number
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

