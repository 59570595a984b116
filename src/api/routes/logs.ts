import type { FastifyInstance } from 'fastify'
import type { Views } from '../views.ts'
import { ledgerParam, listRequest } from '../requests.ts'

export function logRoutes(app: FastifyInstance, views: Views): void {
  app.get('/v2/:ledger/logs', async (request) => {
    const ledger = ledgerParam(request)
    const { page, filter } = listRequest('logs', request)
    return { cursor: await views.listLogs(ledger, page, filter) }
  })
}
