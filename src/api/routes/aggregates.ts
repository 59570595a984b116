import type { FastifyInstance } from 'fastify'
import type { Store } from '../../store/index.ts'
import type { Views } from '../views.ts'
import { aggregateBalances, listVolumes, parseGroupBy } from '../aggregates.ts'
import type { Query } from '../requests.ts'
import { countFilter, ledgerParam, listRequest, queryFlag } from '../requests.ts'
import { parseTimestamp } from '../../orders/index.ts'

export function aggregateRoutes(app: FastifyInstance, store: Store, views: Views): void {
  app.get('/v2/:ledger/aggregate/balances', async (request) => {
    const ledger = ledgerParam(request)
    const query = request.query as Query
    const pit = parseTimestamp(query.pit, 'pit')
    const data = await aggregateBalances(views, ledger, countFilter('accounts', request), {
      ...(pit === undefined ? {} : { pit }),
      useInsertionDate: queryFlag(request, 'useInsertionDate'),
    })
    return { data }
  })

  app.get('/v2/:ledger/volumes', async (request) => {
    const ledger = ledgerParam(request)
    const { page, filter } = listRequest('volumes', request)
    const options = page.options
    const startTime = parseTimestamp(options.startTime, 'startTime')
    const endTime = parseTimestamp(options.endTime, 'endTime')
    const insertionDate = options.insertionDate === 'true' || options.insertionDate === '1'
    const cursor = await listVolumes(store, views, ledger, filter, {
      ...(startTime === undefined ? {} : { startTime }),
      ...(endTime === undefined ? {} : { endTime }),
      insertionDate,
      groupBy: parseGroupBy(options.groupBy),
    }, page)
    return { cursor }
  })
}
