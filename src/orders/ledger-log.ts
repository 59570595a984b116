import type { Json, LedgerRecord } from '../domain/index.ts'
import { v2LogHash } from '../audit/v2-log-hash.ts'
import type { LedgerLog, Scope } from './scope.ts'
import { writeLedger } from './scope.ts'

/** Appends a v2 log to a ledger: next log id, hash chained to the previous log. */
export function appendLedgerLog(scope: Scope, ledger: LedgerRecord, type: LedgerLog['type'], data: Json): LedgerRecord {
  const base = { type, data, date: scope.date, ...(scope.idempotencyKey === undefined ? {} : { idempotencyKey: scope.idempotencyKey }) }
  const hash = v2LogHash(ledger.lastLogHash, base)
  scope.appendLog(ledger.name, { id: ledger.nextLogId, hash, ...base })
  const updated: LedgerRecord = { ...ledger, nextLogId: ledger.nextLogId + 1n, lastLogHash: hash }
  writeLedger(scope, updated)
  return updated
}
