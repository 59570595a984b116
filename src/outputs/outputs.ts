import { randomUUID } from 'node:crypto'
import type { Writable } from 'node:stream'
import { InvariantViolation, TallyError, notFound, parseJson, stringifyJson, validationError } from '../domain/index.ts'
import type { Json } from '../domain/index.ts'
import { decodeLogRow, logRowKey, logRowPrefix, outputRowKey, outputRowPrefix, prefixEnd } from '../store/layout.ts'
import type { StoreReader, StoreWriter } from '../store/index.ts'
import { batchBytesMax, parseExporterConfiguration } from './config.ts'
import type { ExporterConfiguration } from './config.ts'
import { sinkOf } from './sinks.ts'
import type { Sink } from './sinks.ts'

/**
 * This node's outputs: exporters (configured sinks) and pipelines (one
 * ledger's logs → one exporter). Configuration and cursors live in the
 * store's outputs zone, written by the node (never by the FSM), synced, so
 * they survive restarts and crashes (docs/adr/0008-outputs-are-node-state.md).
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
}

export const idlePollMsDefault = 50
/** Bounds on what a client may configure (each row is small: these bound the zone; each list fits one v2 page of at most 1000). */
export const exportersMax = 256
export const pipelinesMax = 1000
const idLengthMax = 128

export interface ExporterRecord {
  readonly id: string
  readonly createdAt: string
  readonly configuration: ExporterConfiguration
}

export interface PipelineRecord {
  readonly id: string
  readonly ledger: string
  readonly exporterID: string
  readonly createdAt: string
  /** Whether it should run: kept across restarts. */
  readonly enabled: boolean
}

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

type Store = StoreReader & StoreWriter

export class Outputs {
  private readonly exporters = new Map<string, ExporterRecord>()
  private readonly pipelines = new Map<string, PipelineWorker>()
  private readonly stdout: Writable
  private readonly idlePollMs: number
  /** Configuration changes one at a time: each reads, checks and writes without another between. */
  private changes: Promise<unknown> = Promise.resolve()
  private closed = false

  private constructor(
    private readonly store: Store,
    options: OutputsOptions,
  ) {
    this.stdout = options.stdout ?? process.stdout
    this.idlePollMs = options.idlePollMs ?? idlePollMsDefault
  }

  /** Loads the zone and resumes the pipelines that were running. */
  static async open(store: Store, options: OutputsOptions = {}): Promise<Outputs> {
    const outputs = new Outputs(store, options)
    for await (const [, value] of store.range(zoneRange('e'))) {
      const record = exporterFromRow(value)
      outputs.exporters.set(record.id, record)
    }
    for await (const [, value] of store.range(zoneRange('p'))) {
      const record = pipelineFromRow(value)
      const cursor = await store.get(outputRowKey('c', record.id))
      const worker = outputs.worker(record, cursor === undefined ? undefined : BigInt(cursor.toString('utf8')))
      outputs.pipelines.set(record.id, worker)
      if (record.enabled) worker.start()
    }
    return outputs
  }

  async close(): Promise<void> {
    this.closed = true
    await this.changes.catch(() => undefined)
    await Promise.all([...this.pipelines.values()].map((worker) => worker.stop()))
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

  createExporter(body: unknown): Promise<ExporterRecord> {
    const configuration = parseExporterConfiguration(body)
    return this.change(async () => {
      if (this.exporters.size >= exportersMax) throw validationError(`at most ${exportersMax} exporters`)
      const record: ExporterRecord = { id: randomUUID(), createdAt: new Date().toISOString(), configuration }
      await this.store.write([{ key: outputRowKey('e', record.id), value: exporterRow(record) }], { sync: true })
      this.exporters.set(record.id, record)
      return record
    })
  }

  /** Replaces the configuration; the exporter's running pipelines go on with the new sink from their cursor. */
  updateExporter(id: string, body: unknown): Promise<void> {
    const configuration = parseExporterConfiguration(body)
    return this.change(async () => {
      const record = { ...this.exporter(id), configuration }
      await this.store.write([{ key: outputRowKey('e', id), value: exporterRow(record) }], { sync: true })
      this.exporters.set(id, record)
      for (const worker of this.pipelines.values()) {
        if (worker.record.exporterID !== id) continue
        await worker.stop()
        worker.sink = sinkOf(configuration, { stdout: this.stdout })
        worker.batchSize = configuration.config.batchSize
        worker.backoff = backoffOf(configuration)
        if (worker.record.enabled) worker.start()
      }
    })
  }

  /** Refused while a pipeline uses it: delete the pipelines first. */
  deleteExporter(id: string): Promise<void> {
    return this.change(async () => {
      this.exporter(id)
      const users = [...this.pipelines.values()].filter((worker) => worker.record.exporterID === id).map((worker) => worker.record.id)
      if (users.length > 0) throw validationError(`exporter ${id} is used by pipelines ${users.join(', ')}; delete them first`)
      await this.store.write([{ key: outputRowKey('e', id), value: null }], { sync: true })
      this.exporters.delete(id)
    })
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
    return this.stateOf(this.pipelineWorker(ledger, id))
  }

  /** A new pipeline starts at once, from the ledger's first log. One pipeline per ledger and exporter. */
  createPipeline(ledger: string, body: unknown): Promise<PipelineState> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw validationError('a pipeline is an object {exporterID}')
    const fields = body as { readonly [key: string]: Json }
    for (const key of Object.keys(fields)) if (key !== 'exporterID') throw validationError(`unknown field ${key} (a pipeline is {exporterID})`)
    const exporterID = fields.exporterID
    if (typeof exporterID !== 'string' || exporterID.length === 0 || exporterID.length > idLengthMax) throw validationError('exporterID must be an exporter id')
    return this.change(async () => {
      const exporter = this.exporters.get(exporterID)
      if (exporter === undefined) throw notFound(`exporter ${exporterID} not found`)
      for (const worker of this.pipelines.values()) {
        if (worker.record.ledger === ledger && worker.record.exporterID === exporterID) {
          throw new TallyError({ code: 'CONFLICT', kind: 'conflict', message: `ledger ${ledger} already has pipeline ${worker.record.id} to exporter ${exporterID}` })
        }
      }
      if (this.pipelines.size >= pipelinesMax) throw validationError(`at most ${pipelinesMax} pipelines`)
      const record: PipelineRecord = { id: randomUUID(), ledger, exporterID, createdAt: new Date().toISOString(), enabled: true }
      await this.store.write([{ key: outputRowKey('p', record.id), value: pipelineRow(record) }], { sync: true })
      const worker = this.worker(record, undefined)
      this.pipelines.set(record.id, worker)
      worker.start()
      return this.stateOf(worker)
    })
  }

  deletePipeline(ledger: string, id: string): Promise<void> {
    return this.change(async () => {
      const worker = this.pipelineWorker(ledger, id)
      await worker.stop()
      await this.store.write(
        [
          { key: outputRowKey('p', id), value: null },
          { key: outputRowKey('c', id), value: null },
        ],
        { sync: true },
      )
      this.pipelines.delete(id)
    })
  }

  startPipeline(ledger: string, id: string): Promise<void> {
    return this.change(async () => {
      const worker = this.pipelineWorker(ledger, id)
      await this.setEnabled(worker, true)
      worker.start()
    })
  }

  stopPipeline(ledger: string, id: string): Promise<void> {
    return this.change(async () => {
      const worker = this.pipelineWorker(ledger, id)
      await this.setEnabled(worker, false)
      await worker.stop()
    })
  }

  /** From the beginning: the cursor is dropped, every log is delivered again; a running pipeline keeps running. */
  resetPipeline(ledger: string, id: string): Promise<void> {
    return this.change(async () => {
      const worker = this.pipelineWorker(ledger, id)
      await worker.stop()
      await this.store.write([{ key: outputRowKey('c', id), value: null }], { sync: true })
      worker.lastLogID = undefined
      worker.lastError = undefined
      if (worker.record.enabled) worker.start()
    })
  }

  // ---- inside ----------------------------------------------------------------------

  private change<T>(body: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new TallyError({ code: 'INTERNAL', kind: 'unavailable', message: 'the node is closing' }))
    const next = this.changes.then(body, body)
    this.changes = next.catch(() => undefined)
    return next
  }

  private pipelineWorker(ledger: string, id: string): PipelineWorker {
    const worker = this.pipelines.get(id)
    if (worker === undefined || worker.record.ledger !== ledger) throw notFound(`pipeline ${id} not found in ledger ${ledger}`)
    return worker
  }

  private async setEnabled(worker: PipelineWorker, enabled: boolean): Promise<void> {
    if (worker.record.enabled === enabled) return
    const record = { ...worker.record, enabled }
    await this.store.write([{ key: outputRowKey('p', record.id), value: pipelineRow(record) }], { sync: true })
    worker.record = record
  }

  private worker(record: PipelineRecord, lastLogID: bigint | undefined): PipelineWorker {
    const exporter = this.exporters.get(record.exporterID)
    // An exporter cannot be deleted while a pipeline names it (deleteExporter refuses).
    if (exporter === undefined) throw new InvariantViolation(`pipeline ${record.id} names exporter ${record.exporterID}, which is not stored`)
    const worker = new PipelineWorker(record, this.store, sinkOf(exporter.configuration, { stdout: this.stdout }), this.idlePollMs)
    worker.lastLogID = lastLogID
    worker.batchSize = exporter.configuration.config.batchSize
    worker.backoff = backoffOf(exporter.configuration)
    return worker
  }

  private async stateOf(worker: PipelineWorker): Promise<PipelineState> {
    const newest = await newestLogID(this.store, worker.record.ledger)
    const confirmed = worker.lastLogID
    const lag = newest === undefined ? 0n : confirmed === undefined ? newest + 1n : newest - confirmed
    return {
      id: worker.record.id,
      ledger: worker.record.ledger,
      exporterID: worker.record.exporterID,
      createdAt: worker.record.createdAt,
      enabled: worker.running,
      ...(confirmed === undefined ? {} : { lastLogID: confirmed }),
      ...(worker.lastError === undefined ? {} : { lastError: worker.lastError.message, lastErrorAt: worker.lastError.at }),
      lag,
    }
  }
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
    public record: PipelineRecord,
    private readonly store: Store,
    public sink: Sink,
    private readonly idlePollMs: number,
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
      let batch: { readonly logs: string[]; readonly ids: bigint[]; readonly last: bigint } | undefined
      // Nothing escapes an iteration: a failure (sink, store) is the pipeline's lastError, then a backoff.
      try {
        batch = await this.readBatch()
        if (batch === undefined) {
          await pause(this.idlePollMs, signal)
          continue
        }
        await this.sink.deliver({ ledger: this.record.ledger, pipelineID: this.record.id, logs: batch.logs, ids: batch.ids }, signal)
        // Confirmed: persisted even if a stop arrived meanwhile, so a confirmed batch is not sent again needlessly.
        await this.store.write([{ key: outputRowKey('c', this.record.id), value: Buffer.from(batch.last.toString(), 'utf8') }], { sync: true })
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
  private async readBatch(): Promise<{ logs: string[]; ids: bigint[]; last: bigint } | undefined> {
    const prefix = logRowPrefix(this.record.ledger)
    const gte = this.lastLogID === undefined ? prefix : logRowKey(this.record.ledger, this.lastLogID + 1n)
    const logs: string[] = []
    const ids: bigint[] = []
    let bytes = 0
    let last: bigint | undefined
    for await (const [key, value] of this.store.range({ gte, lt: prefixEnd(prefix), limit: this.batchSize })) {
      if (logs.length > 0 && bytes + value.length > batchBytesMax) break
      // Rows are packed (docs/adr/0009): sinks get the log's JSON text, as v2 prints it.
      logs.push(stringifyJson(decodeLogRow(value)))
      bytes += value.length
      last = key.readBigUInt64BE(key.length - 8)
      ids.push(last)
    }
    return last === undefined ? undefined : { logs, ids, last }
  }
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

function exporterRow(record: ExporterRecord): Buffer {
  return Buffer.from(stringifyJson({ id: record.id, createdAt: record.createdAt, driver: record.configuration.driver, config: record.configuration.config }), 'utf8')
}

function exporterFromRow(value: Buffer): ExporterRecord {
  const row = parseJson(value.toString('utf8')) as { id: string; createdAt: string; driver: Json; config: Json }
  return { id: row.id, createdAt: row.createdAt, configuration: parseExporterConfiguration({ driver: row.driver, config: row.config }) }
}

function pipelineRow(record: PipelineRecord): Buffer {
  return Buffer.from(stringifyJson(record), 'utf8')
}

function pipelineFromRow(value: Buffer): PipelineRecord {
  return parseJson(value.toString('utf8')) as unknown as PipelineRecord
}
