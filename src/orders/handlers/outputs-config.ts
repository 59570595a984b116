import { TallyError, canonicalJson, emptyKeyed, isJsonObject, notFound, outputsKey, validationError, valueOfKind } from '../../domain/index.ts'
import type { ExporterEntry, Json, Keyed, OutputsRecord, PipelineEntry } from '../../domain/index.ts'
import type { DeleteExporter, DeletePipeline, PutExporter, PutPipeline, ResetPipeline, SetPipelineCursor, SetPipelineEnabled } from '../order.ts'
import type { OrderOutput } from '../output.ts'
import type { Scope } from '../scope.ts'
import { readLedger } from '../scope.ts'

/**
 * Exporters and pipelines, configured through the write pipeline: each order
 * reads and rewrites the one outputs attribute (`outputsKey`), so every check
 * spanning them is one read and a replay applies exactly what the node did.
 * The node's delivery loops follow this state once the order is applied
 * (src/outputs). Cursors are node-local; only their checkpoints
 * (SET_PIPELINE_CURSOR, proposed by the delivering node) are here.
 */

/** Bounds on what may be configured: they bound the outputs row (each list also fits one v2 page). */
export const exportersMax = 256
export const pipelinesMax = 1000
export const outputIdLengthMax = 128
/** A parsed configuration is far smaller (URLs are at most 2048 characters): this bounds a replayed order too. */
export const exporterConfigBytesMax = 8 * 1024

const OUTPUTS: OrderOutput = { type: 'OUTPUTS' }

/**
 * The one form an exporter's configuration is ordered, stored and hashed in:
 * keys sorted at every depth, integers as bigint (what the WAL and the audit
 * chain decode them to), whatever form the parser or a decoder produced.
 */
export function canonicalExporterConfig(config: object): Keyed<Json> {
  return canonicalValue(config) as Keyed<Json>
}

function canonicalValue(value: unknown): Json {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw validationError(`config: ${value} is not an integer`)
    return BigInt(value)
  }
  if (typeof value === 'string' || typeof value === 'boolean' || typeof value === 'bigint' || value === null) return value
  if (Array.isArray(value)) return value.map(canonicalValue)
  if (typeof value === 'object' && value !== null) {
    const sorted = emptyKeyed<Json>()
    for (const key of Object.keys(value).sort()) sorted[key] = canonicalValue((value as { readonly [key: string]: unknown })[key])
    return sorted
  }
  throw validationError(`config: ${typeof value} is not a JSON value`)
}

function readOutputs(scope: Scope): OutputsRecord {
  return valueOfKind(scope.read(outputsKey()), 'o') ?? { exporters: [], pipelines: [] }
}

function writeOutputs(scope: Scope, outputs: OutputsRecord): OrderOutput {
  scope.write(outputsKey(), { kind: 'o', value: outputs })
  return OUTPUTS
}

function checkId(id: string, what: string): void {
  if (id.length === 0 || id.length > outputIdLengthMax) throw validationError(`${what}: an id of 1 to ${outputIdLengthMax} characters`)
}

function exporterNotFound(id: string): TallyError {
  return notFound(`exporter ${id} not found`)
}

/** The pipeline `id` of `ledger`, or NOT_FOUND (a pipeline of another ledger is not found either). */
function pipelineOf(outputs: OutputsRecord, ledger: string, id: string): PipelineEntry {
  const found = outputs.pipelines.find((pipeline) => pipeline.id === id)
  if (found === undefined || found.ledger !== ledger) throw notFound(`pipeline ${id} not found in ledger ${ledger}`)
  return found
}

function replacePipeline(outputs: OutputsRecord, next: PipelineEntry): OutputsRecord {
  return { exporters: outputs.exporters, pipelines: outputs.pipelines.map((pipeline) => (pipeline.id === next.id ? next : pipeline)) }
}

export function putExporter(scope: Scope, order: PutExporter): OrderOutput {
  checkId(order.id, 'id')
  if (!isJsonObject(order.config)) throw validationError('config must be an object')
  const config = canonicalExporterConfig(order.config)
  const bytes = Buffer.byteLength(canonicalJson(config), 'utf8')
  if (bytes > exporterConfigBytesMax) throw validationError(`config: ${bytes} bytes, at most ${exporterConfigBytesMax}`)
  const outputs = readOutputs(scope)
  const existing = outputs.exporters.find((exporter) => exporter.id === order.id)
  if (order.update) {
    if (existing === undefined) throw exporterNotFound(order.id)
    const next: ExporterEntry = { ...existing, driver: order.driver, config }
    return writeOutputs(scope, { exporters: outputs.exporters.map((exporter) => (exporter.id === order.id ? next : exporter)), pipelines: outputs.pipelines })
  }
  if (existing !== undefined) throw new TallyError({ code: 'CONFLICT', kind: 'conflict', message: `exporter ${order.id} already exists` })
  if (outputs.exporters.length >= exportersMax) throw validationError(`at most ${exportersMax} exporters`)
  const created: ExporterEntry = { id: order.id, createdAt: order.createdAt ?? scope.date, driver: order.driver, config }
  return writeOutputs(scope, { exporters: [...outputs.exporters, created], pipelines: outputs.pipelines })
}

export function deleteExporter(scope: Scope, order: DeleteExporter): OrderOutput {
  const outputs = readOutputs(scope)
  if (!outputs.exporters.some((exporter) => exporter.id === order.id)) throw exporterNotFound(order.id)
  const users = outputs.pipelines.filter((pipeline) => pipeline.exporterID === order.id).map((pipeline) => pipeline.id)
  if (users.length > 0) throw validationError(`exporter ${order.id} is used by pipelines ${users.join(', ')}; delete them first`)
  return writeOutputs(scope, { exporters: outputs.exporters.filter((exporter) => exporter.id !== order.id), pipelines: outputs.pipelines })
}

export function putPipeline(scope: Scope, order: PutPipeline): OrderOutput {
  checkId(order.id, 'id')
  checkId(order.exporterID, 'exporterID')
  readLedger(scope, order.ledger)
  const outputs = readOutputs(scope)
  if (!outputs.exporters.some((exporter) => exporter.id === order.exporterID)) throw exporterNotFound(order.exporterID)
  for (const pipeline of outputs.pipelines) {
    if (pipeline.id === order.id) throw new TallyError({ code: 'CONFLICT', kind: 'conflict', message: `pipeline ${order.id} already exists` })
    if (pipeline.ledger === order.ledger && pipeline.exporterID === order.exporterID) {
      throw new TallyError({ code: 'CONFLICT', kind: 'conflict', message: `ledger ${order.ledger} already has pipeline ${pipeline.id} to exporter ${order.exporterID}` })
    }
  }
  if (outputs.pipelines.length >= pipelinesMax) throw validationError(`at most ${pipelinesMax} pipelines`)
  const created: PipelineEntry = { id: order.id, ledger: order.ledger, exporterID: order.exporterID, createdAt: order.createdAt ?? scope.date, enabled: true, resets: 0n }
  return writeOutputs(scope, { exporters: outputs.exporters, pipelines: [...outputs.pipelines, created] })
}

export function deletePipeline(scope: Scope, order: DeletePipeline): OrderOutput {
  const outputs = readOutputs(scope)
  pipelineOf(outputs, order.ledger, order.id)
  return writeOutputs(scope, { exporters: outputs.exporters, pipelines: outputs.pipelines.filter((pipeline) => pipeline.id !== order.id) })
}

export function setPipelineEnabled(scope: Scope, order: SetPipelineEnabled): OrderOutput {
  const outputs = readOutputs(scope)
  const pipeline = pipelineOf(outputs, order.ledger, order.id)
  // Starting a running pipeline (or stopping a stopped one) changes nothing: no row is rewritten.
  if (pipeline.enabled === order.enabled) return OUTPUTS
  return writeOutputs(scope, replacePipeline(outputs, { ...pipeline, enabled: order.enabled }))
}

export function resetPipeline(scope: Scope, order: ResetPipeline): OrderOutput {
  const outputs = readOutputs(scope)
  const pipeline = pipelineOf(outputs, order.ledger, order.id)
  // From the first log again: the checkpoint of the previous count goes with it.
  const { checkpoint: _dropped, ...kept } = pipeline
  return writeOutputs(scope, replacePipeline(outputs, { ...kept, resets: pipeline.resets + 1n }))
}

/**
 * Moves the pipeline's replicated checkpoint forward, never back: a
 * checkpoint at or below the applied one changes nothing (checkpoints of
 * one primary arrive in order, but an old primary's may be applied after a
 * newer one's). One of another reset count describes deliveries the reset
 * made void: refused. One beyond the ledger's logs cannot have been
 * confirmed: refused.
 */
export function setPipelineCursor(scope: Scope, order: SetPipelineCursor): OrderOutput {
  checkId(order.id, 'id')
  const outputs = readOutputs(scope)
  const pipeline = pipelineOf(outputs, order.ledger, order.id)
  if (order.resets !== pipeline.resets) {
    throw new TallyError({ code: 'CONFLICT', kind: 'conflict', message: `pipeline ${order.id}: a checkpoint of reset count ${order.resets}, the pipeline is at ${pipeline.resets}` })
  }
  if (order.lastLogID < 0n || order.lastLogID >= readLedger(scope, order.ledger).nextLogId) {
    throw validationError(`pipeline ${order.id}: log ${order.lastLogID} is not a log of ledger ${order.ledger}`)
  }
  if (pipeline.checkpoint !== undefined && order.lastLogID <= pipeline.checkpoint) return OUTPUTS
  return writeOutputs(scope, replacePipeline(outputs, { ...pipeline, checkpoint: order.lastLogID }))
}
