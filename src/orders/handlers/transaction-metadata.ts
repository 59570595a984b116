import { mergeMetadata, notFound, storedMetadata, withoutKey } from '../../domain/index.ts'
import type { DeleteTransactionMetadata, SaveTransactionMetadata } from '../order.ts'
import type { OrderOutput } from '../output.ts'
import type { Scope } from '../scope.ts'
import { readLedger, readTransaction, writeTransaction } from '../scope.ts'
import { appendLedgerLog } from '../ledger-log.ts'
import { followedSchema } from '../schema.ts'

export function saveTransactionMetadata(scope: Scope, order: SaveTransactionMetadata): OrderOutput {
  const ledger = readLedger(scope, order.ledger)
  followedSchema(scope, ledger, order.schemaVersion)
  const transaction = readTransaction(scope, order.ledger, order.id)
  if (transaction === undefined) throw notFound(`transaction ${order.id} not found`)
  const metadata = storedMetadata(order.metadata)
  writeTransaction(scope, order.ledger, { ...transaction, metadata: mergeMetadata(transaction.metadata, metadata), updatedAt: scope.date })
  const logged = appendLedgerLog(scope, ledger, 'SET_METADATA', { targetType: 'TRANSACTION', targetId: order.id, metadata }, order.schemaVersion)
  return { type: 'METADATA', logId: logged.nextLogId - 1n }
}

export function deleteTransactionMetadata(scope: Scope, order: DeleteTransactionMetadata): OrderOutput {
  const ledger = readLedger(scope, order.ledger)
  const transaction = readTransaction(scope, order.ledger, order.id)
  if (transaction === undefined) throw notFound(`transaction ${order.id} not found`)
  writeTransaction(scope, order.ledger, { ...transaction, metadata: withoutKey(transaction.metadata, order.key), updatedAt: scope.date })
  const logged = appendLedgerLog(scope, ledger, 'DELETE_METADATA', { targetType: 'TRANSACTION', targetId: order.id, key: order.key })
  return { type: 'METADATA', logId: logged.nextLogId - 1n }
}
