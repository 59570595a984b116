import { WorkloadRegistry } from '../workload.ts'
import { bulkWorkload } from './bulk.ts'
import { transactionsWorkload } from './transactions.ts'
import { aggregateBalancesWorkload, getAccountWorkload, listFilterWorkload } from './reads.ts'

export { transactionsWorkload } from './transactions.ts'
export { bulkWorkload } from './bulk.ts'
export { getAccountWorkload, listFilterWorkload, aggregateBalancesWorkload } from './reads.ts'
export { nextTransactionData, userAccount, ledgerPath, benchAsset, amountMax } from './postings.ts'
export type { BenchPosting, BenchTransactionData } from './postings.ts'
export { classifySingle, classifyBulk, failureKeyOf, parseResponseBody, isSuccessStatus } from './responses.ts'

/** A registry holding every built-in workload: writes, and reads to run beside them. */
export function createDefaultRegistry(): WorkloadRegistry {
  return new WorkloadRegistry()
    .register(transactionsWorkload)
    .register(bulkWorkload)
    .register(getAccountWorkload)
    .register(listFilterWorkload)
    .register(aggregateBalancesWorkload)
}
