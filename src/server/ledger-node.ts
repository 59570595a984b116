import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { InvariantViolation, TallyError, invariant, parseJson } from '../domain/index.ts'
import { AttributeCache, MIRROR_ZONE, cacheRotationThresholdDefault, generationOf } from '../cache/index.ts'
import type { AuditHead } from '../audit/index.ts'
import { GENESIS } from '../audit/index.ts'
import type { ProposalResult } from '../fsm/index.ts'
import { LedgerStateMachine, WAL_TYPE_PROPOSAL, WriteBatch, decodeProposal, encodeCacheState } from '../fsm/index.ts'
import { Admission } from '../admission/index.ts'
import type { Sequencer } from '../admission/index.ts'
import { MetaKey, Store, metaKey, prefixEnd } from '../store/index.ts'
import { Wal, resetWal } from '../wal/index.ts'
import type { WalIo } from '../wal/index.ts'

export interface LedgerNodeOptions {
  readonly dataDirectory: string
  readonly cacheRotationThreshold?: number
  /** Only when creating a data directory; tests pin it for byte-identical stores. */
  readonly clusterId?: string
  /** false only in tests and benchmarks that accept losing acknowledged writes. */
  readonly sync?: boolean
  readonly now?: () => number
  readonly log?: (message: string) => void
  /** Bound on proposals per store batch (also kept under half a cache generation). */
  readonly applyBatchProposalsMax?: number
  /** Applied entries between store checkpoints (a synced store write, then WAL recycling). */
  readonly checkpointEntries?: number
  /** WAL entries kept below the last checkpoint (history for replicas and inspection). */
  readonly walRetainEntries?: number
  /** WAL segment size; recycling drops whole segments. */
  readonly walSegmentBytesMax?: number
  /** Tests: the WAL's file operations (a fault layer modelling power loss). */
  readonly walIo?: Partial<WalIo>
  /** Tests: opens the store instead of `Store.open` (a fault layer modelling power loss). */
  readonly openStore?: (directory: string) => Promise<Store>
}

export const checkpointEntriesDefault = 10_000
const slowCheckpointMs = 100
export const walRetainEntriesDefault = 1_000_000

interface Waiter {
  resolve(result: ProposalResult): void
  reject(error: Error): void
}

/**
 * One single-node Tally: store, WAL, cache, FSM and admission wired into the
 * pipeline of contract §2. Durability: a write is acknowledged only after its
 * WAL group is fsynced, the FSM applied it and its store batch is synced.
 */
export class LedgerNode implements Sequencer {
  readonly admission: Admission
  private readonly payloads = new Map<number, Buffer>()
  private readonly waiters = new Map<number, Waiter>()
  private readonly results = new Map<number, ProposalResult>()
  private storedIndex: number
  private applyChain: Promise<void> = Promise.resolve()
  private flushScheduled = false
  private fatal: Error | undefined
  private closed = false
  private readonly unsubscribe: () => void
  private readonly batchProposalsMax: number
  private checkpointIndex: number

  private constructor(
    readonly store: Store,
    readonly wal: Wal,
    readonly cache: AttributeCache,
    readonly fsm: LedgerStateMachine,
    readonly clusterId: string,
    private readonly options: LedgerNodeOptions,
  ) {
    this.storedIndex = fsm.appliedIndex
    this.checkpointIndex = fsm.appliedIndex
    this.batchProposalsMax = Math.max(1, Math.min(options.applyBatchProposalsMax ?? 1024, Math.floor(cache.rotationThreshold / 2)))
    this.admission = new Admission({ cache, store, sequencer: this, now: options.now ?? Date.now, newId: randomUUID })
    this.unsubscribe = wal.onDurable((from, to) => {
      this.applyChain = this.applyChain.then(() => this.applyDurable(from, to)).catch((error: unknown) => this.fail(error))
    })
  }

  static async open(options: LedgerNodeOptions): Promise<LedgerNode> {
    const log = options.log ?? (() => {})
    mkdirSync(options.dataDirectory, { recursive: true })
    const store = await (options.openStore ?? Store.open)(path.join(options.dataDirectory, 'store'))
    let opened: Wal | undefined
    try {
      const clusterId = await ensureClusterId(store, options.clusterId)
      const appliedIndex = Number((await store.get(metaKey(MetaKey.appliedIndex)))?.toString('utf8') ?? '0')
      const auditHead = await readAuditHead(store)
      const cache = await restoreCache(store, options.cacheRotationThreshold ?? cacheRotationThresholdDefault, log)
      const walDirectory = path.join(options.dataDirectory, 'wal')
      const walOptions = {
        directory: walDirectory,
        sync: options.sync ?? true,
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
        onCoverageMiss: (error, index) => log(`COVERAGE_MISS at index ${index}: ${error.message}`),
      })
      const node = new LedgerNode(store, wal, cache, fsm, clusterId, options)
      await node.replay(log)
      return node
    } catch (error) {
      // A failed recovery must not leak the WAL's file handle (the caller may retry the open).
      await opened?.close().catch(() => {})
      await store.close().catch(() => {})
      throw error
    }
  }

  /** Re-applies what the WAL holds beyond the store's applied index (crash recovery). */
  private async replay(log: (message: string) => void): Promise<void> {
    const from = this.fsm.appliedIndex + 1
    if (this.wal.head < from) return
    log(`recovery: replaying WAL entries ${from}..${this.wal.head}`)
    let batch = new WriteBatch()
    let count = 0
    for await (const record of this.wal.read(from)) {
      invariant(record.type === WAL_TYPE_PROPOSAL, () => `unknown WAL record type ${record.type}`)
      this.fsm.apply(record.index, decodeProposal(record.payload), batch)
      if (++count % this.batchProposalsMax === 0) {
        await this.store.write(batch.rows(), { sync: true })
        batch = new WriteBatch()
      }
    }
    await this.store.write(batch.rows(), { sync: true })
    this.storedIndex = this.fsm.appliedIndex
    log(`recovery: applied up to ${this.storedIndex}`)
  }

  // ---- Sequencer -------------------------------------------------------------

  nextIndex(): number {
    return this.wal.head + 1
  }

  storeIndex(): number {
    return this.storedIndex
  }

  append(payload: Buffer): number {
    if (this.fatal !== undefined) throw unavailable(`node stopped: ${this.fatal.message}`)
    if (this.closed) throw unavailable('node is shutting down')
    const index = this.wal.append({ epoch: 0, type: WAL_TYPE_PROPOSAL, payload })
    this.payloads.set(index, payload)
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
    for (let start = from; start <= to; start += this.batchProposalsMax) {
      const end = Math.min(to, start + this.batchProposalsMax - 1)
      const batch = new WriteBatch()
      const results: ProposalResult[] = []
      for (let index = start; index <= end; index++) {
        const payload = this.payloads.get(index)
        invariant(payload !== undefined, () => `no payload for durable index ${index}`)
        this.payloads.delete(index)
        results.push(this.fsm.apply(index, decodeProposal(payload), batch))
      }
      // Not fsynced: the WAL group holding these proposals already is (ADR 0005).
      await this.store.write(batch.rows(), { sync: false })
      this.storedIndex = end
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
    await this.store.write([{ key: metaKey(MetaKey.checkpointIndex), value: Buffer.from(String(index)) }], { sync: true })
    const elapsedMs = performance.now() - started
    if (elapsedMs > slowCheckpointMs) this.options.log?.(`checkpoint at ${index} held the event loop ${elapsedMs.toFixed(0)} ms`)
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
      ;(this.options.log ?? console.error)(`FATAL: the apply pipeline stopped: ${failure.stack ?? failure.message}`)
    }
    for (const waiter of this.waiters.values()) waiter.reject(unavailable(`node stopped: ${failure.message}`))
    this.waiters.clear()
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
      await this.store.write([{ key: metaKey(MetaKey.checkpointIndex), value: Buffer.from(String(this.storedIndex)) }], { sync: true })
    }
    this.unsubscribe()
    await this.wal.close().catch(() => {})
    await this.store.close()
  }
}

function unavailable(message: string): TallyError {
  return new TallyError({ code: 'INTERNAL', kind: 'unavailable', message })
}

async function ensureClusterId(store: Store, requested: string | undefined): Promise<string> {
  const existing = await store.get(metaKey(MetaKey.clusterId))
  if (existing !== undefined) return existing.toString('utf8')
  const clusterId = requested ?? randomUUID()
  await store.write([{ key: metaKey(MetaKey.clusterId), value: Buffer.from(clusterId) }], { sync: true })
  return clusterId
}

async function readAuditHead(store: Store): Promise<AuditHead> {
  const row = await store.get(metaKey(MetaKey.auditHead))
  if (row === undefined) return GENESIS
  const json = parseJson(row.toString('utf8')) as { seq: bigint; hash: string }
  return { seq: json.seq, hash: json.hash }
}

/**
 * Rebuilds the cache from its disk mirror, failing closed on a malformed row.
 * A changed rotation threshold resets the cache (new epoch) instead.
 */
async function restoreCache(store: Store, threshold: number, log: (message: string) => void): Promise<AttributeCache> {
  const stateRow = await store.get(metaKey(MetaKey.cacheState))
  const state = stateRow === undefined ? { generation: 0n, epoch: 0n, rotationThreshold: BigInt(threshold) } : (parseJson(stateRow.toString('utf8')) as { generation: bigint; epoch: bigint; rotationThreshold: bigint })
  const mirrorPrefix = Buffer.of(MIRROR_ZONE)
  const rows: [Buffer, Buffer][] = []
  for await (const row of store.range({ gte: mirrorPrefix, lt: prefixEnd(mirrorPrefix) })) rows.push(row)
  if (Number(state.rotationThreshold) !== threshold) {
    log(`cache: rotation threshold changed from ${state.rotationThreshold} to ${threshold}; resetting the cache`)
    const appliedIndex = Number((await store.get(metaKey(MetaKey.appliedIndex)))?.toString('utf8') ?? '0')
    const batch = new WriteBatch()
    for (const [key] of rows) batch.del(key)
    // A new epoch (in-flight plans go stale), aligned so that gen(applied) is current under the new K.
    const realigned = new AttributeCache(threshold, Number(state.epoch) + 1, generationOf(appliedIndex, threshold))
    batch.put(metaKey(MetaKey.cacheState), encodeCacheState(realigned))
    await store.write(batch.rows(), { sync: true })
    return realigned
  }
  const cache = new AttributeCache(threshold, Number(state.epoch))
  cache.restore(Number(state.generation), rows)
  return cache
}
