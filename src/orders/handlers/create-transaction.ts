import type { TransactionRecord } from '../../domain/index.ts'
import { TallyError, mergeMetadata, referenceKey } from '../../domain/index.ts'
import type { CreateTransaction } from '../order.ts'
import type { OrderOutput } from '../output.ts'
import { transactionView } from '../output.ts'
import type { Scope } from '../scope.ts'
import { readLedger, readReference, writeTransaction } from '../scope.ts'
import { accountsOf, applyPostings, touchAccounts } from '../postings-apply.ts'
import { appendLedgerLog } from '../ledger-log.ts'

export function createTransaction(scope: Scope, order: CreateTransaction): OrderOutput {
  const ledger = readLedger(scope, order.ledger)
  if (order.postings.length === 0) {
    throw new TallyError({ code: 'NO_POSTINGS', kind: 'validation', message: 'a transaction needs at least one posting' })
  }
  if (order.reference !== undefined && readReference(scope, order.ledger, order.reference) !== undefined) {
    throw new TallyError({ code: 'CONFLICT', kind: 'conflict', message: `reference ${JSON.stringify(order.reference)} is already used` })
  }
  const timestamp = order.timestamp ?? scope.date
  const volumes = applyPostings(scope, order.ledger, order.postings, order.force)
  touchAccounts(scope, order.ledger, [...accountsOf(order.postings), ...(Object.keys(order.accountMetadata) as never[])], timestamp, order.accountMetadata)
  const transaction: TransactionRecord = {
    id: ledger.nextTransactionId,
    postings: order.postings,
    timestamp,
    insertedAt: scope.date,
    updatedAt: scope.date,
    ...(order.reference === undefined ? {} : { reference: order.reference }),
    metadata: mergeMetadata({}, order.metadata),
    reverted: false,
  }
  writeTransaction(scope, order.ledger, transaction)
  if (order.reference !== undefined) {
    scope.write(referenceKey(order.ledger, order.reference), { kind: 'r', value: { transactionId: transaction.id } })
  }
  const afterTransaction = { ...ledger, nextTransactionId: ledger.nextTransactionId + 1n }
  const logged = appendLedgerLog(scope, afterTransaction, 'NEW_TRANSACTION', {
    transaction: transactionView(transaction),
    accountMetadata: order.accountMetadata,
  })
  return { type: 'TRANSACTION', transaction: transactionView(transaction, volumes), logId: logged.nextLogId - 1n }
}
