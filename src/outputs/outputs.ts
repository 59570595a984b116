import { InvariantViolation, TallyError, canonicalJson, decodeRowValue, notFound, outputsKey, parseJson, stringifyJson } from '../domain/index.ts'
import type { Json, LedgerName, OutputsRecord, PipelineEntry } from '../domain/index.ts'
import type { Order } from '../orders/index.ts'
import { canonicalExporterConfig, exportersMax, pipelinesMax } from '../orders/index.ts'
import { attributeRowKey, decodeLogRow, logRowKey, logRowPrefix, outputRowKey, outputRowPrefix, prefixEnd } from '../store/layout.ts'
import { rangeBatchesOf } from '../store/index.ts'
import type { BatchedRangeReader, StoreReader, StoreWriter } from '../store/index.ts'
import { batchBytesMax, parseExporterConfiguration } from './config.ts'
import type { ExporterConfiguration } from './config.ts'
import { sinkOf } from './sinks.ts'
import type { Sink } from './sinks.ts'
import type { Writable } from 'node:stream'

export { exportersMax, pipelinesMax }

/**
 * This node's outputs: exporters (configured sinks) and pipelines (one
 * ledger's logs → one exporter). The configuration is replicated state: it
 * is changed only by orders (PUT_EXPORTER, PUT_PIPELINE, …) applied by the
 * FSM into the outputs attribute, and this class follows what was applied
 * (`refresh`). Each pipeline's cursor is this node's own I/O state, in the
 * store's outputs zone, written synced after its sink confirmed
 * (docs/adr/0008-outputs-are-node-state.md).
 *
 * Delivery runs beside the write path, never on it: a pipeline reads logs
 * already stored, in batches after its cursor, hands one batch at a time to
 * its sink, and moves the cursor only once the sink confirmed — ordered and
 * at least once. A slow or failing sink delays only its own pipeline.
 */
export interface OutputsOptions {
  /** Where the stdout driver writes; the process's stdout by default. */
  readonly stdout?: Writable
  /** How long a caught-up pipeline waits before looking for new logs. */
  readonly idlePollMs?: number
  /**
   * How often the node looks for configuration applied without it asking
   * (a replicated log, a restart's replay): one row read when nothing changed.
   */
  readonly refreshMs?: number
  /**
   * Whether this node delivers: in a cluster only the primary does
   * (docs/cluster.md, "Pipelines in a cluster"); absent, always (a single
   * node). Looked at before each batch and every `refreshMs`: a node that
   * stops delivering stops its loops, one that starts resumes each pipeline
   * after max(its own cursor, the replicated checkpoint).
   */
  readonly delivering?: () => boolean
  /**
   * How often the delivering node checkpoints its cursors through the write
   * pipeline (SET_PIPELINE_CURSOR, one order per pipeline whose cursor moved);
   * absent, never (a single node has no one to hand over to).
   */
  readonly checkpointMs?: number
}

export const idlePollMsDefault = 50
export const refreshMsDefault = 1000
export const checkpointMsDefault = 1000

/**
 * Proposes orders through the node's write pipeline (one proposal, not
 * atomic: each order stands alone); answers each order's refusal, or
 * undefined where it was applied.
 */
export type SubmitOrders = (orders: readonly Order[]) => Promise<readonly (string | undefined)[]>

export interface ExporterRecord {
  readonly id: string
  readonly createdAt: string
  readonly configuration: ExporterConfiguration
}

export type PipelineRecord = PipelineEntry

/** What GET answers of a pipeline: v2's fields, then Tally's (`lastError`, `lag`). */
export interface PipelineState {
  readonly id: string
  readonly ledger: string
  readonly exporterID: string
  readonly createdAt: string
  readonly enabled: boolean
  readonly lastLogID?: bigint
  readonly lastError?: string
  readonly lastErrorAt?: string
  /** Logs stored in the ledger after `lastLogID` (not yet confirmed by the sink). */
  readonly lag: bigint
}

/** What a start found of the configuration older releases kept in the outputs zone, and did with it. */
export interface OutputsMigration {
  readonly exporters: number
  readonly pipelines: number
  /** Orders the FSM refused (e.g. a pipeline of a ledger that no longer exists): their rows are dropped. */
  readonly refused: readonly string[]
}

type Store = StoreReader & StoreWriter & Partial<BatchedRangeReader>

const EMPTY: OutputsRecord = { exporters: [], pipelines: [] }
/** Orders per migration proposal: well under admission's bound. */
const migrationChunk = 100

export class Outputs {
  private readonly exporters = new Map<string, ExporterRecord>()
  private readonly pipelines = new Map<string, PipelineWorker>()
  private readonly stdout: Writable
  private readonly idlePollMs: number
  /** The outputs row last followed (its bytes): refresh does nothing while it is unchanged. */
  private followed: Buffer | undefined
  /** Refreshes one at a time: each compares, stops and starts workers without another between. */
  private changes: Promise<unknown> = Promise.resolve()
  private readonly timer: NodeJS.Timeout
  private closed = false
  private readonly delivering: () => boolean
  /** Whether the node delivered when the configuration was last followed (undefined: never followed). */
  private deliveringFollowed: boolean | undefined
  private readonly checkpointTimer: NodeJS.Timeout | undefined
  /** A checkpoint proposal in flight: ticks never overlap, so each pipeline has at most one order per tick. */
  private checkpointing: Promise<void> | undefined
  /** The last checkpoint proposed and applied per pipeline (its reset count too): an unmoved cursor proposes nothing. */
  private readonly checkpointed = new Map<string, { readonly resets: bigint; readonly lastLogID: bigint }>()

  private constructor(
    private readonly store: Store,
    private readonly submit: SubmitOrders | undefined,
    options: OutputsOptions,
  ) {
    this.stdout = options.stdout ?? process.stdout
    this.idlePollMs = options.idlePollMs ?? idlePollMsDefault
    this.delivering = options.delivering ?? (() => true)
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), options.refreshMs ?? refreshMsDefault)
    this.timer.unref()
    if (options.checkpointMs !== undefined && submit !== undefined) {
      this.checkpointTimer = setInterval(() => void this.checkpoint(), options.checkpointMs)
      this.checkpointTimer.unref()
    }
  }

  /**
   * Converts the configuration an older release kept in the outputs zone
   * (if any) into orders, then follows the applied configuration, resuming
   * the pipelines that are enabled from their cursors.
   */
  static async open(store: Store, submit: SubmitOrders | undefined, options: OutputsOptions = {}): Promise<{ outputs: Outputs; migration: OutputsMigration | undefined }> {
    let migration: OutputsMigration | undefined
    try {
      migration = submit === undefined ? undefined : await migrateLegacyConfiguration(store, submit)
    } catch (error) {
      // A node that cannot propose now (it is not the one taking writes) keeps the rows: a later start converts them.
      if (!(error instanceof TallyError)) throw error
      migration = { exporters: 0, pipelines: 0, refused: [`not converted (${error.code}: ${error.message}); the rows stay for the next start`] }
    }
    const outputs = new Outputs(store, submit, options)
    await outputs.refresh()
    return { outputs, migration }
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.timer)
    // A checkpoint in flight is not awaited: its answer may be held (a primary without its lease) until the node closes.
    clearInterval(this.checkpointTimer)
    await this.changes.catch(() => undefined)
    await Promise.all([...this.pipelines.values()].map((worker) => worker.stop()))
  }

  /**
   * Follows the applied configuration: starts, reconfigures, resets and stops
   * delivery loops to match the outputs row. Called after each configuring
   * order is applied, and every `refreshMs`.
   */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve()
    const next = this.changes.then(() => this.follow())
    this.changes = next.catch(() => undefined)
    return next
  }

  /**
   * Proposes a checkpoint (SET_PIPELINE_CURSOR) for each pipeline whose
   * confirmed cursor moved since its last checkpoint; called every
   * `checkpointMs`. Only the delivering node proposes, one tick at a time;
   * a refused or failed proposal is dropped and the next tick tries again
   * (it never holds a client's write). Resolves when the tick is done.
   */
  checkpoint(): Promise<void> {
    if (this.closed || this.submit === undefined || this.checkpointing !== undefined || !this.delivering()) return this.checkpointing ?? Promise.resolve()
    const submit = this.submit
    const tick = (async () => {
      const due: { order: Extract<Order, { type: 'SET_PIPELINE_CURSOR' }> }[] = []
      for (const worker of this.pipelines.values()) {
        const confirmed = worker.lastLogID
        if (confirmed === undefined) continue
        const { id, ledger, resets } = worker.record
        const last = this.checkpointed.get(id)
        const known = maxCursor(worker.record.checkpoint, last !== undefined && last.resets === resets ? last.lastLogID : undefined)
        if (known !== undefined && confirmed <= known) continue
        due.push({ order: { type: 'SET_PIPELINE_CURSOR', ledger, id, resets, lastLogID: confirmed } })
      }
      for (let start = 0; start < due.length; start += migrationChunk) {
        const chunk = due.slice(start, start + migrationChunk)
        const results = await submit(chunk.map((entry) => entry.order))
        results.forEach((refusal, i) => {
          const order = chunk[i]?.order
          if (refusal === undefined && order !== undefined) this.checkpointed.set(order.id, { resets: order.resets, lastLogID: order.lastLogID })
        })
      }
    })()
      .catch(() => undefined)
      .finally(() => {
        this.checkpointing = undefined
      })
    this.checkpointing = tick
    return tick
  }

  // ---- exporters ----------------------------------------------------------------

  listExporters(): readonly ExporterRecord[] {
    return [...this.exporters.values()].sort(byCreation)
  }

  exporter(id: string): ExporterRecord {
    const record = this.exporters.get(id)
    if (record === undefined) throw notFound(`exporter ${id} not found`)
    return record
  }

  // ---- pipelines ----------------------------------------------------------------

  async listPipelines(ledger: string): Promise<PipelineState[]> {
    const workers = [...this.pipelines.values()].filter((worker) => worker.record.ledger === ledger)
    workers.sort((a, b) => byCreation(a.record, b.record))
    return Promise.all(workers.map((worker) => this.stateOf(worker)))
  }

  /** Every pipeline of the node, for metrics. */
  async states(): Promise<PipelineState[]> {
    return Promise.all([...this.pipelines.values()].map((worker) => this.stateOf(worker)))
  }

  async pipeline(ledger: string, id: string): Promise<PipelineState> {
    const worker = this.pipelines.get(id)
    if (worker === undefined || worker.record.ledger !== ledger) throw notFound(`pipeline ${id} not found in ledger ${ledger}`)
    return this.stateOf(worker)
  }

  // ---- inside ----------------------------------------------------------------------

  private async follow(): Promise<void> {
    const row = await this.store.get(attributeRowKey(outputsKey()))
    const delivering = this.delivering()
    const unchanged = row === undefined ? this.followed === undefined && this.pipelines.size + this.exporters.size === 0 : this.followed !== undefined && row.equals(this.followed)
    if (unchanged && delivering === this.deliveringFollowed) return
    const applied = row === undefined ? EMPTY : decodeRowValue('o', row)
    const changedExporters = new Set<string>()
    const exporters = new Map<string, ExporterRecord>()
    for (const entry of applied.exporters) {
      const record: ExporterRecord = { id: entry.id, createdAt: entry.createdAt, configuration: parseExporterConfiguration({ driver: entry.driver, config: entry.config }) }
      const before = this.exporters.get(entry.id)
      if (before !== undefined && canonicalJson(before.configuration) !== canonicalJson(record.configuration)) changedExporters.add(entry.id)
      exporters.set(entry.id, record)
    }
    this.exporters.clear()
    for (const [id, record] of exporters) this.exporters.set(id, record)

    const wanted = new Map(applied.pipelines.map((entry) => [entry.id, entry]))
    for (const [id, worker] of this.pipelines) {
      if (wanted.has(id)) continue
      await worker.stop()
      await this.store.write([{ key: outputRowKey('c', id), value: null }], { sync: true })
      this.pipelines.delete(id)
      this.checkpointed.delete(id)
    }
    for (const entry of applied.pipelines) {
      const worker = this.pipelines.get(entry.id)
      if (worker === undefined) {
        const created = this.worker(entry, maxCursor(await this.cursorOf(entry), entry.checkpoint))
        this.pipelines.set(entry.id, created)
        if (entry.enabled && delivering) created.start()
        continue
      }
      const reset = entry.resets > worker.record.resets
      const reconfigured = changedExporters.has(entry.exporterID)
      // A checkpoint ahead of this node's cursor: another node's sink confirmed those logs (this one did not deliver them).
      const behind = !reset && entry.checkpoint !== undefined && (worker.lastLogID === undefined || entry.checkpoint > worker.lastLogID)
      // A loop that is not running holds no connection (stop closed its sink): a replica following checkpoints each second stops nothing.
      if ((reset || reconfigured || behind || !entry.enabled || !delivering) && worker.running) await worker.stop()
      if (behind) worker.lastLogID = maxCursor(worker.lastLogID, entry.checkpoint)
      if (reset) {
        // The reset order is applied: from the first log again, whatever this node had confirmed.
        await this.store.write([{ key: outputRowKey('c', entry.id), value: null }], { sync: true })
        worker.lastLogID = undefined
        worker.lastError = undefined
      }
      if (reconfigured) this.configure(worker, this.exporterOf(entry))
      worker.record = entry
      if (entry.enabled && delivering) worker.start()
    }
    this.followed = row
    this.deliveringFollowed = delivering
  }

  /** The cursor this node kept for the pipeline, unless a reset applied since made it stale. */
  private async cursorOf(entry: PipelineEntry): Promise<bigint | undefined> {
    const row = await this.store.get(outputRowKey('c', entry.id))
    if (row === undefined) return undefined
    const cursor = decodeCursor(row)
    if (cursor.resets >= entry.resets) return cursor.lastLogID
    await this.store.write([{ key: outputRowKey('c', entry.id), value: null }], { sync: true })
    return undefined
  }

  private exporterOf(entry: PipelineEntry): ExporterRecord {
    const exporter = this.exporters.get(entry.exporterID)
    // The FSM refuses to delete an exporter a pipeline names, and a pipeline naming a missing one.
    if (exporter === undefined) throw new InvariantViolation(`pipeline ${entry.id} names exporter ${entry.exporterID}, which is not configured`)
    return exporter
  }

  private configure(worker: PipelineWorker, exporter: ExporterRecord): void {
    worker.sink = sinkOf(exporter.configuration, { stdout: this.stdout })
    worker.batchSize = exporter.configuration.config.batchSize
    worker.backoff = backoffOf(exporter.configuration)
  }

  private worker(entry: PipelineEntry, lastLogID: bigint | undefined): PipelineWorker {
    const exporter = this.exporterOf(entry)
    const worker = new PipelineWorker(entry, this.store, sinkOf(exporter.configuration, { stdout: this.stdout }), this.idlePollMs, this.delivering)
    worker.lastLogID = lastLogID
    this.configure(worker, exporter)
    return worker
  }

  private async stateOf(worker: PipelineWorker): Promise<PipelineState> {
    const newest = await newestLogID(this.store, worker.record.ledger)
    const confirmed = maxCursor(worker.lastLogID, worker.record.checkpoint)
    const lag = newest === undefined ? 0n : confirmed === undefined ? newest + 1n : newest - confirmed
    return {
      id: worker.record.id,
      ledger: worker.record.ledger,
      exporterID: worker.record.exporterID,
      createdAt: worker.record.createdAt,
      // The configuration's state: a replica does not run the loop, yet the pipeline is enabled.
      enabled: worker.record.enabled,
      ...(confirmed === undefined ? {} : { lastLogID: confirmed }),
      ...(worker.lastError === undefined ? {} : { lastError: worker.lastError.message, lastErrorAt: worker.lastError.at }),
      lag,
    }
  }
}

/**
 * A cursor row: `{resets}:{lastLogID}` — the pipeline's reset count it was
 * confirmed under, so a reset applied while the node was down still drops
 * it. Rows of older releases hold the id alone: written before any reset
 * order existed, they belong to count 0.
 */
function encodeCursor(resets: bigint, lastLogID: bigint): Buffer {
  return Buffer.from(`${resets}:${lastLogID}`, 'utf8')
}

/** The further of two cursors (undefined: nothing confirmed). */
function maxCursor(a: bigint | undefined, b: bigint | undefined): bigint | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return a > b ? a : b
}

function decodeCursor(row: Buffer): { resets: bigint; lastLogID: bigint } {
  const text = row.toString('utf8')
  const colon = text.indexOf(':')
  if (colon < 0) return { resets: 0n, lastLogID: BigInt(text) }
  return { resets: BigInt(text.slice(0, colon)), lastLogID: BigInt(text.slice(colon + 1)) }
}

/**
 * Older releases kept exporters and pipelines as node rows in the outputs
 * zone. Each one the applied configuration lacks is proposed as the orders
 * that recreate it (same id, creation date and running state), then the
 * rows are dropped; cursors stay. Run again after a crash in between, it
 * finds the configuration applied and only drops the rows.
 */
async function migrateLegacyConfiguration(store: Store, submit: SubmitOrders): Promise<OutputsMigration | undefined> {
  const legacyExporters: { id: string; createdAt: string; driver: Json; config: Json }[] = []
  const legacyPipelines: { id: string; ledger: string; exporterID: string; createdAt: string; enabled: boolean }[] = []
  const rows: Buffer[] = []
  for await (const [key, value] of store.range(zoneRange('e'))) {
    legacyExporters.push(parseJson(value.toString('utf8')) as unknown as (typeof legacyExporters)[number])
    rows.push(key)
  }
  for await (const [key, value] of store.range(zoneRange('p'))) {
    legacyPipelines.push(parseJson(value.toString('utf8')) as unknown as (typeof legacyPipelines)[number])
    rows.push(key)
  }
  if (rows.length === 0) return undefined
  const row = await store.get(attributeRowKey(outputsKey()))
  const applied = row === undefined ? EMPTY : decodeRowValue('o', row)
  const orders: Order[] = []
  for (const exporter of legacyExporters) {
    if (applied.exporters.some((entry) => entry.id === exporter.id)) continue
    const configuration = parseExporterConfiguration({ driver: exporter.driver, config: exporter.config })
    orders.push({ type: 'PUT_EXPORTER', id: exporter.id, driver: configuration.driver, config: canonicalExporterConfig(configuration.config), update: false, createdAt: exporter.createdAt })
  }
  for (const pipeline of legacyPipelines) {
    if (applied.pipelines.some((entry) => entry.id === pipeline.id)) continue
    const ledger = pipeline.ledger as LedgerName
    orders.push({ type: 'PUT_PIPELINE', ledger, id: pipeline.id, exporterID: pipeline.exporterID, createdAt: pipeline.createdAt })
    if (!pipeline.enabled) orders.push({ type: 'SET_PIPELINE_ENABLED', ledger, id: pipeline.id, enabled: false })
  }
  const refused: string[] = []
  // Exporters come first, each chunk applied before the next: a pipeline's exporter exists when it is created.
  for (let start = 0; start < orders.length; start += migrationChunk) {
    const chunk = orders.slice(start, start + migrationChunk)
    const results = await submit(chunk)
    results.forEach((refusal, i) => {
      if (refusal !== undefined) refused.push(`${chunk[i]?.type} ${(chunk[i] as { id: string }).id}: ${refusal}`)
    })
  }
  await store.write(
    rows.map((key) => ({ key, value: null })),
    { sync: true },
  )
  return { exporters: legacyExporters.length, pipelines: legacyPipelines.length, refused }
}

interface Backoff {
  readonly minMs: number
  readonly maxMs: number
}

function backoffOf(configuration: ExporterConfiguration): Backoff {
  return configuration.driver === 'stdout' ? { minMs: 100, maxMs: 30_000 } : { minMs: configuration.config.backoffMinMs, maxMs: configuration.config.backoffMaxMs }
}

/**
 * One pipeline's delivery loop. At most one batch in flight; the cursor row
 * is written (synced) after the sink confirmed and before the next batch is
 * read, so a crash at any point re-delivers at most the batch in flight.
 */
class PipelineWorker {
  lastLogID: bigint | undefined
  lastError: { readonly message: string; readonly at: string } | undefined
  batchSize = 1
  backoff: Backoff = { minMs: 100, maxMs: 30_000 }
  private loop: Promise<void> | undefined
  private abort = new AbortController()

  constructor(
    public record: PipelineEntry,
    private readonly store: Store,
    public sink: Sink,
    private readonly idlePollMs: number,
    private readonly delivering: () => boolean,
  ) {}

  get running(): boolean {
    return this.loop !== undefined
  }

  start(): void {
    if (this.loop !== undefined) return
    const abort = new AbortController()
    this.abort = abort
    const loop = this.run(abort.signal).finally(() => {
      if (this.loop === loop) this.loop = undefined
    })
    this.loop = loop
  }

  /** Stops the loop and lets go of the sink's connection (a later start opens it again). */
  async stop(): Promise<void> {
    this.abort.abort()
    await this.loop
    await this.sink.close()
  }

  private async run(signal: AbortSignal): Promise<void> {
    let failures = 0
    while (!signal.aborted) {
      let batch: LogBatchRead | undefined
      // Nothing escapes an iteration: a failure (sink, store) is the pipeline's lastError, then a backoff.
      try {
        // A node deposed since the loop started sends nothing more (the next refresh stops the loop).
        if (!this.delivering()) {
          await pause(this.idlePollMs, signal)
          continue
        }
        batch = await this.readBatch()
        if (batch === undefined) {
          await pause(this.idlePollMs, signal)
          continue
        }
        await this.sink.deliver({ ledger: this.record.ledger, pipelineID: this.record.id, logs: batch.logs, ids: batch.ids }, signal)
        // Confirmed: persisted even if a stop arrived meanwhile, so a confirmed batch is not sent again needlessly.
        await this.store.write([{ key: outputRowKey('c', this.record.id), value: encodeCursor(this.record.resets, batch.last) }], { sync: true })
      } catch (error) {
        if (signal.aborted) return
        failures++
        this.lastError = { message: error instanceof Error ? messageOf(error) : String(error), at: new Date().toISOString() }
        await pause(Math.min(this.backoff.maxMs, this.backoff.minMs * 2 ** Math.min(failures - 1, 30)), signal)
        continue
      }
      this.lastLogID = batch.last
      this.lastError = undefined
      failures = 0
    }
  }

  /** The logs after the cursor, in id order, up to the batch size and byte bound; undefined when caught up. */
  private readBatch(): Promise<LogBatchRead | undefined> {
    return readLogBatch(this.store, this.record.ledger, this.lastLogID, { rows: this.batchSize, bytes: batchBytesMax, scanBytes: batchBytesMax })
  }
}

/** A pipeline's next batch: each log's JSON text, its id, and the last id (the cursor once delivered). */
export interface LogBatchRead {
  readonly logs: string[]
  readonly ids: bigint[]
  readonly last: bigint
}

/**
 * A delivery batch's bounds: at most `rows` logs, and no more than `bytes`
 * of stored rows unless the first alone is larger; the store is read in
 * `nextv` batches of about `scanBytes` (a test makes them small to put
 * their boundaries everywhere).
 */
export interface LogBatchBounds {
  readonly rows: number
  readonly bytes: number
  readonly scanBytes: number
}

/**
 * The logs of `ledger` after `after` (from the first when undefined), read
 * a store batch at a time — one thread-pool read per batch, not an await
 * per row — and cut at the delivery bounds; undefined when there is none.
 */
export async function readLogBatch(store: StoreReader & Partial<BatchedRangeReader>, ledger: string, after: bigint | undefined, bounds: LogBatchBounds): Promise<LogBatchRead | undefined> {
  const prefix = logRowPrefix(ledger)
  const gte = after === undefined ? prefix : logRowKey(ledger, after + 1n)
  const logs: string[] = []
  const ids: bigint[] = []
  let bytes = 0
  let last: bigint | undefined
  // No read ahead: the scan stops at the bounds, and a read past them is thrown away.
  scan: for await (const rows of rangeBatchesOf(store, { gte, lt: prefixEnd(prefix), limit: bounds.rows, batchBytes: bounds.scanBytes, readAhead: false })) {
    for (const [key, value] of rows) {
      if (logs.length > 0 && bytes + value.length > bounds.bytes) break scan
      // Rows are packed (docs/adr/0009): sinks get the log's JSON text, as v2 prints it.
      logs.push(stringifyJson(decodeLogRow(value)))
      bytes += value.length
      last = key.readBigUInt64BE(key.length - 8)
      ids.push(last)
    }
  }
  return last === undefined ? undefined : { logs, ids, last }
}

function messageOf(error: Error): string {
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : ''
  return `${error.message}${cause}`.slice(0, 1024)
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
  })
}

async function newestLogID(store: StoreReader, ledger: string): Promise<bigint | undefined> {
  const prefix = logRowPrefix(ledger)
  for await (const [key] of store.range({ gte: prefix, lt: prefixEnd(prefix), reverse: true, limit: 1 })) return key.readBigUInt64BE(key.length - 8)
  return undefined
}

function zoneRange(kind: 'e' | 'p'): { gte: Buffer; lt: Buffer | undefined } {
  const prefix = outputRowPrefix(kind)
  return { gte: prefix, lt: prefixEnd(prefix) }
}

function byCreation(a: { readonly createdAt: string; readonly id: string }, b: { readonly createdAt: string; readonly id: string }): number {
  return a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}
