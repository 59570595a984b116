import { WorkloadRegistry } from '../workload.ts'
import { bulkWorkload } from './bulk.ts'
import { transactionsWorkload } from './transactions.ts'

export { transactionsWorkload } from './transactions.ts'
export { bulkWorkload } from './bulk.ts'
export { nextTransactionData, userAccount, ledgerPath, benchAsset, amountMax } from './postings.ts'
export type { BenchPosting, BenchTransactionData } from './postings.ts'
export { classifySingle, classifyBulk, failureKeyOf, parseResponseBody, isSuccessStatus } from './responses.ts'

/** A registry holding every built-in workload. Issue 3 adds its read workloads here. */
export function createDefaultRegistry(): WorkloadRegistry {
  return new WorkloadRegistry().register(transactionsWorkload).register(bulkWorkload)
}
