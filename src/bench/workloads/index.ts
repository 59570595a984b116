import { WorkloadRegistry } from '../workload.ts'
import { bulkWorkload } from './bulk.ts'
import { transactionsWorkload } from './transactions.ts'
import { aggregateBalancesWorkload, getAccountWorkload, listFilterWorkload } from './reads.ts'

export { transactionsWorkload } from './transactions.ts'
export { bulkWorkload } from './bulk.ts'
export { getAccountWorkload, listFilterWorkload, aggregateBalancesWorkload } from './reads.ts'
export { nextTransactionData, drawTransaction, transactionDataOf, encodeTransaction, userAccount, ledgerPath, benchAsset, amountMax } from './postings.ts'
export type { BenchPosting, BenchTransactionData, TransactionDraw } from './postings.ts'
export { classifySingle, classifyBulk, countBulk, createBulkCounter, bulkResponseSampleEvery, failureKeyOf, parseResponseBody, isSuccessStatus } from './responses.ts'

/** A registry holding every built-in workload: writes, and reads to run beside them. */
export function createDefaultRegistry(): WorkloadRegistry {
  return new WorkloadRegistry()
    .register(transactionsWorkload)
    .register(bulkWorkload)
    .register(getAccountWorkload)
    .register(listFilterWorkload)
    .register(aggregateBalancesWorkload)
}
