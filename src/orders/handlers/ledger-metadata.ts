import { mergeMetadata, withoutKey } from '../../domain/index.ts'
import type { DeleteLedgerMetadata, SaveLedgerMetadata } from '../order.ts'
import type { OrderOutput } from '../output.ts'
import type { Scope } from '../scope.ts'
import { readLedger, writeLedger } from '../scope.ts'

/** Ledger metadata has no v2 log: v2's log types do not cover it. */
export function saveLedgerMetadata(scope: Scope, order: SaveLedgerMetadata): OrderOutput {
  const ledger = readLedger(scope, order.ledger)
  writeLedger(scope, { ...ledger, metadata: mergeMetadata(ledger.metadata, order.metadata) })
  return { type: 'METADATA', logId: null }
}

export function deleteLedgerMetadata(scope: Scope, order: DeleteLedgerMetadata): OrderOutput {
  const ledger = readLedger(scope, order.ledger)
  writeLedger(scope, { ...ledger, metadata: withoutKey(ledger.metadata, order.key) })
  return { type: 'METADATA', logId: null }
}
