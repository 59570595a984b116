import type { Posting, TransactionRecord } from '../../domain/index.ts'
import { REVERTS_METADATA_KEY, TallyError, canonicalMetadata, mergeMetadata, notFound } from '../../domain/index.ts'
import type { RevertTransaction } from '../order.ts'
import type { OrderOutput } from '../output.ts'
import { transactionView } from '../output.ts'
import type { Scope } from '../scope.ts'
import { plannedRead, readLedger, readTransaction, writeTransaction } from '../scope.ts'
import { accountsOf, applyPostings, touchAccounts } from '../postings-apply.ts'
import { appendLedgerLog } from '../ledger-log.ts'

/** Inverse postings, last first, as v2 builds a revert. */
export function revertPostings(postings: readonly Posting[]): Posting[] {
  return [...postings].reverse().map((p) => ({ source: p.destination, destination: p.source, amount: p.amount, asset: p.asset }))
}

export function revertTransaction(scope: Scope, order: RevertTransaction): OrderOutput {
  const ledger = readLedger(scope, order.ledger)
  const original = readTransaction(scope, order.ledger, order.id)
  if (original === undefined) throw notFound(`transaction ${order.id} not found`)
  if (original.reverted) {
    throw new TallyError({ code: 'ALREADY_REVERT', kind: 'business', message: `transaction ${order.id} is already reverted` })
  }
  const postings = revertPostings(original.postings)
  const timestamp = order.atEffectiveDate ? original.timestamp : scope.date
  // The accounts to read come from the stored transaction: if it is not the one admission planned on, retry.
  const reason = `transaction ${order.id} is not the one planned`
  const volumes = plannedRead(reason, () => applyPostings(scope, order.ledger, postings, order.force))
  const created = plannedRead(reason, () => touchAccounts(scope, order.ledger, accountsOf(postings), timestamp))
  const revert: TransactionRecord = {
    id: ledger.nextTransactionId,
    postings,
    timestamp,
    insertedAt: scope.date,
    updatedAt: scope.date,
    metadata: mergeMetadata(order.metadata, canonicalMetadata([[REVERTS_METADATA_KEY, original.id.toString()]])),
    reverted: false,
    preCommitVolumes: volumes.pre,
    postCommitVolumes: volumes.post,
  }
  writeTransaction(scope, order.ledger, revert)
  writeTransaction(scope, order.ledger, { ...original, reverted: true, revertedAt: scope.date, updatedAt: scope.date })
  const next = { ...ledger, nextTransactionId: ledger.nextTransactionId + 1n, accountCount: ledger.accountCount + created }
  const logged = appendLedgerLog(scope, next, 'REVERTED_TRANSACTION', {
    revertedTransactionID: original.id,
    transaction: transactionView(revert),
  })
  return { type: 'TRANSACTION', transaction: transactionView(revert, { volumes: true }), logId: logged.nextLogId - 1n }
}
