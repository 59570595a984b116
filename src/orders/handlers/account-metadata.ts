import { keyedFrom, notFound, ownValue, storedMetadata, withoutKey } from '../../domain/index.ts'
import type { DeleteAccountMetadata, SaveAccountMetadata } from '../order.ts'
import type { OrderOutput } from '../output.ts'
import type { Scope } from '../scope.ts'
import { readAccount, readLedger, writeAccount } from '../scope.ts'
import { appendLedgerLog } from '../ledger-log.ts'
import { touchAccounts } from '../postings-apply.ts'
import { checkAccountsInChart, followedSchema, withChartDefaults } from '../schema.ts'

/** Saving metadata on an account that was never used creates it, as in v2. */
export function saveAccountMetadata(scope: Scope, order: SaveAccountMetadata): OrderOutput {
  const ledger = readLedger(scope, order.ledger)
  const schema = followedSchema(scope, ledger, order.schemaVersion)
  const chartAccounts = schema === undefined ? undefined : checkAccountsInChart(schema, [order.address], 'the metadata')
  const given = storedMetadata(order.metadata)
  // An account this save creates takes its chart defaults under the saved values, as in v2, whose
  // log records the saved values only: a replay naming the version derives the defaults again.
  const metadata = chartAccounts === undefined ? given : (ownValue(withChartDefaults(scope, order.ledger, chartAccounts, keyedFrom([[order.address, given]])), order.address) ?? given)
  const created = touchAccounts(scope, order.ledger, [order.address], scope.date, keyedFrom([[order.address, metadata]]))
  const logged = appendLedgerLog(scope, { ...ledger, accountCount: ledger.accountCount + created }, 'SET_METADATA', { targetType: 'ACCOUNT', targetId: order.address, metadata: given }, order.schemaVersion)
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
