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
export function appendLedgerLog(scope: Scope, ledger: LedgerRecord, type: LedgerLog['type'], data: Json, schemaVersion?: string): LedgerRecord {
  const payload = type === 'REVERTED_TRANSACTION' ? withRevertedTransaction(scope, ledger, data) : data
  const base = {
    type,
    data: payload,
    date: goDate(scope.date),
    ...(scope.idempotencyKey === undefined ? {} : { idempotencyKey: scope.idempotencyKey }),
    ...(schemaVersion === undefined ? {} : { schemaVersion }),
  }
  const hash = v2LogHash(ledger.lastLogHash, base)
  scope.appendLog(ledger.name, { id: ledger.nextLogId, hash, ...base })
  const updated: LedgerRecord = { ...ledger, nextLogId: ledger.nextLogId + 1n, lastLogHash: hash }
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
