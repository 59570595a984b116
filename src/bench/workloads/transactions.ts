import type { WorkloadDefinition } from '../workload.ts'
import { drawTransaction, encodeTransaction, ledgerPath } from './postings.ts'
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
        const draw = drawTransaction(settings, random)
        // `force` is a query parameter of this route and a body field of
        // V2PostTransaction; send both so either reading works.
        const forced = draw.sourceIndex !== undefined
        return { method: 'POST', path: forced ? `${path}?force=true` : path, body: encodeTransaction(draw), operations: 1 }
      },
      classify: (_request, response) => classifySingle(response, 1),
    }
  },
}
