import { stringifyJson } from '../../domain/index.ts'
import type { WorkloadDefinition } from '../workload.ts'
import { ledgerPath, nextTransactionData } from './postings.ts'
import { classifySingle } from './responses.ts'

/** One transaction per request: `POST /v2/{ledger}/transactions`. */
export const transactionsWorkload: WorkloadDefinition = {
  name: 'transactions',
  summary: 'POST /v2/{ledger}/transactions, one posting per request (world → users:k, or a forced users:i → users:j transfer)',
  kind: 'write',
  createGenerator(settings, random) {
    const path = `${ledgerPath(settings.ledger)}/transactions`
    return {
      next() {
        const data = nextTransactionData(settings, random)
        // `force` is a query parameter of this route and a body field of
        // V2PostTransaction; send both so either reading works.
        return { method: 'POST', path: data.force ? `${path}?force=true` : path, body: stringifyJson(data), operations: 1 }
      },
      classify: (_request, response) => classifySingle(response, 1),
    }
  },
}
