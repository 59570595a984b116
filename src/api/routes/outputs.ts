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
 * in logs not yet confirmed. Each configuration change is logged on its own
 * line (`component: outputs`; ids and driver, never a URL or setting): an
 * operator's trail until these changes become orders (ADR 0008).
 */
export function outputRoutes(app: FastifyInstance, outputs: Outputs, views: Views): void {
  app.get('/v2/_/exporters', async () => {
    const data = outputs.listExporters().map(exporterView)
    return { cursor: { pageSize: Math.max(1, data.length), hasMore: false, data } }
  })

  app.post('/v2/_/exporters', async (request, reply) => {
    const record = await outputs.createExporter(request.body)
    request.log.info({ component: 'outputs', action: 'create exporter', exporterID: record.id, driver: record.configuration.driver }, 'outputs configuration changed')
    return reply.code(201).send({ data: exporterView(record) })
  })

  app.get('/v2/_/exporters/:exporterID', async (request) => {
    return { data: exporterView(outputs.exporter(idParam(request.params, 'exporterID'))) }
  })

  app.put('/v2/_/exporters/:exporterID', async (request, reply) => {
    const exporterID = idParam(request.params, 'exporterID')
    await outputs.updateExporter(exporterID, request.body)
    request.log.info({ component: 'outputs', action: 'update exporter', exporterID, driver: outputs.exporter(exporterID).configuration.driver }, 'outputs configuration changed')
    return reply.code(204).send()
  })

  app.delete('/v2/_/exporters/:exporterID', async (request, reply) => {
    const exporterID = idParam(request.params, 'exporterID')
    await outputs.deleteExporter(exporterID)
    request.log.info({ component: 'outputs', action: 'delete exporter', exporterID }, 'outputs configuration changed')
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
    request.log.info({ component: 'outputs', action: 'create pipeline', ledger, pipelineID: state.id, exporterID: state.exporterID }, 'outputs configuration changed')
    return reply.code(201).send({ data: state })
  })

  app.get('/v2/:ledger/pipelines/:pipelineID', async (request) => {
    const ledger = ledgerParam(request)
    return { data: await outputs.pipeline(ledger, idParam(request.params, 'pipelineID')) }
  })

  app.delete('/v2/:ledger/pipelines/:pipelineID', async (request, reply) => {
    const ledger = ledgerParam(request)
    const pipelineID = idParam(request.params, 'pipelineID')
    await outputs.deletePipeline(ledger, pipelineID)
    request.log.info({ component: 'outputs', action: 'delete pipeline', ledger, pipelineID }, 'outputs configuration changed')
    return reply.code(204).send()
  })

  const actions = { start: 'startPipeline', stop: 'stopPipeline', reset: 'resetPipeline' } as const
  for (const [action, method] of Object.entries(actions)) {
    app.post(`/v2/:ledger/pipelines/:pipelineID/${action}`, async (request, reply) => {
      const ledger = ledgerParam(request)
      const pipelineID = idParam(request.params, 'pipelineID')
      await outputs[method](ledger, pipelineID)
      request.log.info({ component: 'outputs', action: `${action} pipeline`, ledger, pipelineID }, 'outputs configuration changed')
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
