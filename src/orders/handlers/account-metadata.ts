import { keyedFrom, notFound, storedMetadata, withoutKey } from '../../domain/index.ts'
import type { DeleteAccountMetadata, SaveAccountMetadata } from '../order.ts'
import type { OrderOutput } from '../output.ts'
import type { Scope } from '../scope.ts'
import { readAccount, readLedger, writeAccount } from '../scope.ts'
import { appendLedgerLog } from '../ledger-log.ts'
import { touchAccounts } from '../postings-apply.ts'
import { checkAccountsInChart, followedSchema } from '../schema.ts'

/** Saving metadata on an account that was never used creates it, as in v2. */
export function saveAccountMetadata(scope: Scope, order: SaveAccountMetadata): OrderOutput {
  const ledger = readLedger(scope, order.ledger)
  const schema = followedSchema(scope, ledger, order.schemaVersion)
  if (schema !== undefined) checkAccountsInChart(schema, [order.address], 'the metadata')
  const metadata = storedMetadata(order.metadata)
  const created = touchAccounts(scope, order.ledger, [order.address], scope.date, keyedFrom([[order.address, metadata]]))
  const logged = appendLedgerLog(scope, { ...ledger, accountCount: ledger.accountCount + created }, 'SET_METADATA', { targetType: 'ACCOUNT', targetId: order.address, metadata }, order.schemaVersion)
  return { type: 'METADATA', logId: logged.nextLogId - 1n }
}

export function deleteAccountMetadata(scope: Scope, order: DeleteAccountMetadata): OrderOutput {
  const ledger = readLedger(scope, order.ledger)
  const account = readAccount(scope, order.ledger, order.address)
  if (account === undefined) throw notFound(`account ${order.address} not found`)
  writeAccount(scope, order.ledger, { ...account, metadata: withoutKey(account.metadata, order.key), updatedAt: scope.date })
  const logged = appendLedgerLog(scope, ledger, 'DELETE_METADATA', { targetType: 'ACCOUNT', targetId: order.address, key: order.key })
  return { type: 'METADATA', logId: logged.nextLogId - 1n }
}
