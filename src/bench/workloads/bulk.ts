import { invariant, stringifyJson } from '../../domain/index.ts'
import type { WorkloadDefinition } from '../workload.ts'
import { ledgerPath, nextTransactionData } from './postings.ts'
import { classifyBulk } from './responses.ts'

/** B transactions per request: `POST /v2/{ledger}/_bulk?atomic=false` with CREATE_TRANSACTION elements. */
export const bulkWorkload: WorkloadDefinition = {
  name: 'bulk',
  summary: 'POST /v2/{ledger}/_bulk?atomic=false with --bulk-size CREATE_TRANSACTION elements',
  kind: 'write',
  createGenerator(settings, random) {
    invariant(settings.bulkSize >= 1, 'bulk size must be at least 1')
    const path = `${ledgerPath(settings.ledger)}/_bulk?atomic=false`
    return {
      next() {
        const elements = []
        for (let index = 0; index < settings.bulkSize; index++) {
          elements.push({ action: 'CREATE_TRANSACTION', data: nextTransactionData(settings, random) })
        }
        return { method: 'POST', path, body: stringifyJson(elements), operations: settings.bulkSize }
      },
      classify: (request, response) => classifyBulk(response, request.operations),
    }
  },
}
