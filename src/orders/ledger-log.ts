import type { Json, LedgerRecord } from '../domain/index.ts'
import { invariant, isJsonObject } from '../domain/index.ts'
import { goDate, v2LogHash } from '../audit/v2-log-hash.ts'
import type { LedgerLog, Scope } from './scope.ts'
import { readTransaction, writeLedger } from './scope.ts'
import { transactionView } from './output.ts'

/**
 * Appends a v2 log to a ledger: next log id, hash chained to the previous log
 * by v2's rule (`v2LogHash`). The stored log has v2's shape: its date prints
 * as v2 prints dates, and a REVERTED_TRANSACTION carries the reverted
 * transaction (`revertedTransaction`, as v2's payload does) besides its id.
 */
/**
 * `counts`: a new transaction's ledger counters (its next transaction id, its
 * account count), set in the one updated record this writes rather than in a
 * copy of the ledger made before it (a copy of every field per transaction).
 */
export function appendLedgerLog(
  scope: Scope,
  ledger: LedgerRecord,
  type: LedgerLog['type'],
  data: Json,
  schemaVersion?: string,
  counts?: { readonly nextTransactionId: bigint; readonly accountCount: bigint },
): LedgerRecord {
  const payload = type === 'REVERTED_TRANSACTION' ? withRevertedTransaction(scope, ledger, data) : data
  // One object, its fields in the stored log's order (id, hash, type, data, date, then the optional
  // ones: its row packs them in this order); the hash is over all but the id and the hash.
  const log: { id: bigint; hash: string; type: LedgerLog['type']; data: Json; date: string; idempotencyKey?: string; schemaVersion?: string } = {
    id: ledger.nextLogId,
    hash: '',
    type,
    data: payload,
    date: goDate(scope.date),
  }
  if (scope.idempotencyKey !== undefined) log.idempotencyKey = scope.idempotencyKey
  if (schemaVersion !== undefined) log.schemaVersion = schemaVersion
  const hash = v2LogHash(ledger.lastLogHash, log)
  log.hash = hash
  scope.appendLog(ledger.name, log)
  const updated: LedgerRecord =
    counts === undefined
      ? { ...ledger, nextLogId: ledger.nextLogId + 1n, lastLogHash: hash }
      : { ...ledger, nextTransactionId: counts.nextTransactionId, accountCount: counts.accountCount, nextLogId: ledger.nextLogId + 1n, lastLogHash: hash }
  writeLedger(scope, updated)
  return updated
}

/** The reverted transaction as the revert left it (reverted, revertedAt): a declared, already-written key. */
function withRevertedTransaction(scope: Scope, ledger: LedgerRecord, data: Json): Json {
  invariant(isJsonObject(data), 'a revert log payload is an object')
  const id = data.revertedTransactionID
  invariant(typeof id === 'bigint', 'a revert log names the reverted transaction')
  const reverted = readTransaction(scope, ledger.name, id)
  invariant(reverted !== undefined, 'the reverted transaction exists')
  return { ...data, revertedTransaction: transactionView(reverted) }
}
