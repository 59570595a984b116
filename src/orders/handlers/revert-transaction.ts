import { createHash } from 'node:crypto'
import type { Posting, TransactionRecord } from '../../domain/index.ts'
import { REVERTS_METADATA_KEY, TallyError, canonicalJson, canonicalMetadata, invariant, mergeMetadata, notFound } from '../../domain/index.ts'
import type { RevertTransaction } from '../order.ts'
import type { OrderOutput } from '../output.ts'
import { transactionView } from '../output.ts'
import type { Scope } from '../scope.ts'
import { readLedger, readTransaction, staleInputs, writeTransaction } from '../scope.ts'
import { accountsOf, applyPostings, touchAccounts } from '../postings-apply.ts'
import { appendLedgerLog } from '../ledger-log.ts'
import { checkAccountsInChart, followedSchema } from '../schema.ts'

/** Inverse postings, last first, as v2 builds a revert. */
export function revertPostings(postings: readonly Posting[]): Posting[] {
  return [...postings].reverse().map((p) => ({ source: p.destination, destination: p.source, amount: p.amount, asset: p.asset }))
}

/**
 * Fingerprint of what decides a revert's reads: the reverted transaction's
 * postings (immutable once written), or its absence. Admission stamps it on
 * the order; the FSM compares before reading any volumes.
 */
export function revertedPostingsFingerprint(transaction: TransactionRecord | undefined): string {
  if (transaction === undefined) return 'absent'
  return createHash('sha256').update(canonicalJson(transaction.postings), 'utf8').digest('base64url')
}

export function revertTransaction(scope: Scope, order: RevertTransaction): OrderOutput {
  const ledger = readLedger(scope, order.ledger)
  const schema = followedSchema(scope, ledger, order.schemaVersion)
  const original = readTransaction(scope, order.ledger, order.id)
  invariant(order.plannedPostings !== undefined, 'a revert order carries the postings admission planned on')
  // Planned while the transaction did not exist yet (another proposal in flight created it): retry.
  if (revertedPostingsFingerprint(original) !== order.plannedPostings) throw staleInputs(`transaction ${order.id} is not the one planned`)
  if (original === undefined) throw notFound(`transaction ${order.id} not found`)
  if (original.reverted) {
    throw new TallyError({ code: 'ALREADY_REVERT', kind: 'business', message: `transaction ${order.id} is already reverted` })
  }
  const postings = revertPostings(original.postings)
  if (schema !== undefined) checkAccountsInChart(schema, accountsOf(postings), 'the revert')
  const timestamp = order.atEffectiveDate ? original.timestamp : scope.date
  // The transaction is the one planned: every read below was declared, a miss is a planning gap (COVERAGE_MISS).
  const volumes = applyPostings(scope, order.ledger, postings, order.force)
  const created = touchAccounts(scope, order.ledger, accountsOf(postings), timestamp)
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
  }, order.schemaVersion)
  return { type: 'TRANSACTION', transaction: transactionView(revert, { volumes: true }), logId: logged.nextLogId - 1n }
}
