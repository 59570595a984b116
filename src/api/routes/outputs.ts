import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Json, LedgerName } from '../../domain/index.ts'
import { InvariantViolation, validationError } from '../../domain/index.ts'
import type { Order, OrderOutput } from '../../orders/index.ts'
import { canonicalExporterConfig, outputIdLengthMax } from '../../orders/index.ts'
import type { ExporterRecord, Outputs } from '../../outputs/index.ts'
import { parseExporterConfiguration } from '../../outputs/index.ts'
import type { LedgerNode } from '../../server/index.ts'
import type { Views } from '../views.ts'
import type { Params } from '../requests.ts'
import { ledgerParam } from '../requests.ts'
import { answer } from '../writes.ts'

/**
 * Exporters (`/v2/_/exporters…`) and pipelines (`/v2/{ledger}/pipelines…`),
 * docs/pipelines.md. Every change is an order (planned, logged, applied by
 * the FSM, audited); once it is applied the node's outputs follow it before
 * the answer, so a read right after sees the change. Each list is one page:
 * the counts are bounded below v2's largest page. A pipeline is served as
 * v2's fields then Tally's state: `lastError`/`lastErrorAt` while failing,
 * `lag` in logs not yet confirmed.
 */
export function outputRoutes(app: FastifyInstance, node: LedgerNode, outputs: Outputs, views: Views): void {
  /** Submits one configuring order; on success lets the outputs follow it, then answers. */
  const configure = async (request: FastifyRequest, reply: FastifyReply, order: Order, success: (reply: FastifyReply) => Promise<FastifyReply> | FastifyReply): Promise<FastifyReply> => {
    const [result] = await node.admission.submit([{ order }], { atomic: true, continueOnFailure: false, dryRun: false })
    // A refusal is answered as any write's; a reply is thenable (it settles once sent), so it is returned, never awaited.
    if (result?.status !== 'applied') return answer(reply, result, (_output: OrderOutput, r: FastifyReply) => r)
    // Ids and driver only, never a URL or setting: an operator's line beside the audited order.
    request.log.info({ component: 'outputs', ...changeOf(order) }, 'outputs configuration changed')
    await outputs.refresh()
    return success(reply)
  }

  app.get('/v2/_/exporters', async () => {
    const data = outputs.listExporters().map(exporterView)
    return { cursor: { pageSize: Math.max(1, data.length), hasMore: false, data } }
  })

  app.post('/v2/_/exporters', async (request, reply) => {
    const configuration = parseExporterConfiguration(request.body)
    const id = randomUUID()
    return configure(request, reply, { type: 'PUT_EXPORTER', id, driver: configuration.driver, config: canonicalExporterConfig(configuration.config), update: false }, (r) =>
      r.code(201).send({ data: exporterView(outputs.exporter(id)) }),
    )
  })

  app.get('/v2/_/exporters/:exporterID', async (request) => {
    return { data: exporterView(outputs.exporter(idParam(request.params, 'exporterID'))) }
  })

  app.put('/v2/_/exporters/:exporterID', async (request, reply) => {
    const id = idParam(request.params, 'exporterID')
    const configuration = parseExporterConfiguration(request.body)
    return configure(request, reply, { type: 'PUT_EXPORTER', id, driver: configuration.driver, config: canonicalExporterConfig(configuration.config), update: true }, (r) => r.code(204).send())
  })

  app.delete('/v2/_/exporters/:exporterID', async (request, reply) => {
    return configure(request, reply, { type: 'DELETE_EXPORTER', id: idParam(request.params, 'exporterID') }, (r) => r.code(204).send())
  })

  app.get('/v2/:ledger/pipelines', async (request) => {
    const ledger = ledgerParam(request)
    await views.ledger(ledger)
    const data = await outputs.listPipelines(ledger)
    return { cursor: { pageSize: Math.max(1, data.length), hasMore: false, data } }
  })

  app.post('/v2/:ledger/pipelines', async (request, reply) => {
    const ledger = ledgerParam(request)
    const exporterID = pipelineBody(request.body ?? {})
    const id = randomUUID()
    return configure(request, reply, { type: 'PUT_PIPELINE', ledger, id, exporterID }, async (r) => r.code(201).send({ data: await outputs.pipeline(ledger, id) }))
  })

  app.get('/v2/:ledger/pipelines/:pipelineID', async (request) => {
    const ledger = ledgerParam(request)
    return { data: await outputs.pipeline(ledger, idParam(request.params, 'pipelineID')) }
  })

  app.delete('/v2/:ledger/pipelines/:pipelineID', async (request, reply) => {
    const { ledger, id } = pipelineOf(request)
    return configure(request, reply, { type: 'DELETE_PIPELINE', ledger, id }, (r) => r.code(204).send())
  })

  const actions: { readonly [action: string]: (ledger: LedgerName, id: string) => Order } = {
    start: (ledger, id) => ({ type: 'SET_PIPELINE_ENABLED', ledger, id, enabled: true }),
    stop: (ledger, id) => ({ type: 'SET_PIPELINE_ENABLED', ledger, id, enabled: false }),
    reset: (ledger, id) => ({ type: 'RESET_PIPELINE', ledger, id }),
  }
  for (const [action, orderOf] of Object.entries(actions)) {
    app.post(`/v2/:ledger/pipelines/:pipelineID/${action}`, async (request, reply) => {
      const { ledger, id } = pipelineOf(request)
      return configure(request, reply, orderOf(ledger, id), (r) => r.code(202).send())
    })
  }
}

/** What a configuring order changed, in the log line's words: the action and the ids. */
function changeOf(order: Order): { readonly [field: string]: string } {
  switch (order.type) {
    case 'PUT_EXPORTER':
      return { order: order.type, action: order.update ? 'update exporter' : 'create exporter', exporterID: order.id, driver: order.driver }
    case 'DELETE_EXPORTER':
      return { order: order.type, action: 'delete exporter', exporterID: order.id }
    case 'PUT_PIPELINE':
      return { order: order.type, action: 'create pipeline', ledger: order.ledger, pipelineID: order.id, exporterID: order.exporterID }
    case 'DELETE_PIPELINE':
      return { order: order.type, action: 'delete pipeline', ledger: order.ledger, pipelineID: order.id }
    case 'SET_PIPELINE_ENABLED':
      return { order: order.type, action: order.enabled ? 'start pipeline' : 'stop pipeline', ledger: order.ledger, pipelineID: order.id }
    case 'RESET_PIPELINE':
      return { order: order.type, action: 'reset pipeline', ledger: order.ledger, pipelineID: order.id }
    default:
      throw new InvariantViolation(`${order.type} does not configure outputs`)
  }
}

function idParam(params: unknown, name: string): string {
  return (params as Params)[name] ?? ''
}

function pipelineOf(request: FastifyRequest): { ledger: LedgerName; id: string } {
  return { ledger: ledgerParam(request), id: idParam(request.params, 'pipelineID') }
}

/** `V2CreatePipelineRequest`: `{exporterID}` and nothing else. */
function pipelineBody(body: unknown): string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw validationError('a pipeline is an object {exporterID}')
  const fields = body as { readonly [key: string]: Json }
  for (const key of Object.keys(fields)) if (key !== 'exporterID') throw validationError(`unknown field ${key} (a pipeline is {exporterID})`)
  const exporterID = fields.exporterID
  if (typeof exporterID !== 'string' || exporterID.length === 0 || exporterID.length > outputIdLengthMax) throw validationError('exporterID must be an exporter id')
  return exporterID
}

function exporterView(record: ExporterRecord) {
  return { id: record.id, createdAt: record.createdAt, driver: record.configuration.driver, config: record.configuration.config }
}
