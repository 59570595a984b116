import type { FastifyInstance } from 'fastify'
import type { Views } from '../views.ts'
import { parsePageRequest } from '../paging.ts'
import type { Query } from '../requests.ts'
import { ledgerParam } from '../requests.ts'

export function logRoutes(app: FastifyInstance, views: Views): void {
  app.get('/v2/:ledger/logs', async (request) => {
    const ledger = ledgerParam(request)
    return { cursor: await views.listLogs(ledger, parsePageRequest(request.query as Query)) }
  })
}
