import type { FastifyInstance } from 'fastify'
import type { ExporterRecord, Outputs } from '../../outputs/index.ts'
import type { Views } from '../views.ts'
import type { Params } from '../requests.ts'
import { ledgerParam } from '../requests.ts'

/**
 * Exporters (`/v2/_/exporters…`) and pipelines (`/v2/{ledger}/pipelines…`):
 * this node's outputs (docs/pipelines.md). Each list is one page: the
 * counts are bounded below v2's largest page. A pipeline is served as v2's
 * fields then Tally's state: `lastError`/`lastErrorAt` while failing, `lag`
 * in logs not yet confirmed.
 */
export function outputRoutes(app: FastifyInstance, outputs: Outputs, views: Views): void {
  app.get('/v2/_/exporters', async () => {
    const data = outputs.listExporters().map(exporterView)
    return { cursor: { pageSize: Math.max(1, data.length), hasMore: false, data } }
  })

  app.post('/v2/_/exporters', async (request, reply) => {
    const record = await outputs.createExporter(request.body)
    return reply.code(201).send({ data: exporterView(record) })
  })

  app.get('/v2/_/exporters/:exporterID', async (request) => {
    return { data: exporterView(outputs.exporter(idParam(request.params, 'exporterID'))) }
  })

  app.put('/v2/_/exporters/:exporterID', async (request, reply) => {
    await outputs.updateExporter(idParam(request.params, 'exporterID'), request.body)
    return reply.code(204).send()
  })

  app.delete('/v2/_/exporters/:exporterID', async (request, reply) => {
    await outputs.deleteExporter(idParam(request.params, 'exporterID'))
    return reply.code(204).send()
  })

  app.get('/v2/:ledger/pipelines', async (request) => {
    const ledger = ledgerParam(request)
    await views.ledger(ledger)
    const data = (await outputs.listPipelines(ledger))
    return { cursor: { pageSize: Math.max(1, data.length), hasMore: false, data } }
  })

  app.post('/v2/:ledger/pipelines', async (request, reply) => {
    const ledger = ledgerParam(request)
    await views.ledger(ledger)
    const state = await outputs.createPipeline(ledger, request.body ?? {})
    return reply.code(201).send({ data: state })
  })

  app.get('/v2/:ledger/pipelines/:pipelineID', async (request) => {
    const ledger = ledgerParam(request)
    return { data: await outputs.pipeline(ledger, idParam(request.params, 'pipelineID')) }
  })

  app.delete('/v2/:ledger/pipelines/:pipelineID', async (request, reply) => {
    await outputs.deletePipeline(ledgerParam(request), idParam(request.params, 'pipelineID'))
    return reply.code(204).send()
  })

  const actions = { start: 'startPipeline', stop: 'stopPipeline', reset: 'resetPipeline' } as const
  for (const [action, method] of Object.entries(actions)) {
    app.post(`/v2/:ledger/pipelines/:pipelineID/${action}`, async (request, reply) => {
      await outputs[method](ledgerParam(request), idParam(request.params, 'pipelineID'))
      return reply.code(202).send()
    })
  }
}

function idParam(params: unknown, name: string): string {
  return (params as Params)[name] ?? ''
}

function exporterView(record: ExporterRecord) {
  return { id: record.id, createdAt: record.createdAt, driver: record.configuration.driver, config: record.configuration.config }
}
