import { invariant } from '../../domain/index.ts'
import type { WorkloadDefinition } from '../workload.ts'
import { drawTransaction, encodeTransaction, ledgerPath } from './postings.ts'
import { createBulkCounter } from './responses.ts'

/** B transactions per request: `POST /v2/{ledger}/_bulk?atomic=false` with CREATE_TRANSACTION elements. */
export const bulkWorkload: WorkloadDefinition = {
  name: 'bulk',
  summary: 'POST /v2/{ledger}/_bulk?atomic=false with --bulk-size CREATE_TRANSACTION elements',
  kind: 'write',
  createGenerator(settings, random) {
    invariant(settings.bulkSize >= 1, 'bulk size must be at least 1')
    const path = `${ledgerPath(settings.ledger)}/_bulk?atomic=false`
    const count = createBulkCounter()
    const elementPrefix = '{"action":"CREATE_TRANSACTION","data":'
    return {
      next() {
        // Written straight as text (see encodeTransaction): the generator's
        // cost per transaction must stay far below the server's.
        let body = '['
        for (let index = 0; index < settings.bulkSize; index++) {
          body += `${index === 0 ? '' : ','}${elementPrefix}${encodeTransaction(drawTransaction(settings, random))}}`
        }
        return { method: 'POST', path, body: `${body}]`, operations: settings.bulkSize }
      },
      classify: (request, response) => count(response, request.operations),
    }
  },
}
