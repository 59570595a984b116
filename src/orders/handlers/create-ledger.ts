import { TallyError, ledgerKey, storedMetadata } from '../../domain/index.ts'
import type { CreateLedger } from '../order.ts'
import type { OrderOutput } from '../output.ts'
import type { Scope } from '../scope.ts'
import { writeLedger } from '../scope.ts'

export function createLedger(scope: Scope, order: CreateLedger): OrderOutput {
  if (scope.read(ledgerKey(order.ledger)) !== undefined) {
    throw new TallyError({ code: 'LEDGER_ALREADY_EXISTS', kind: 'business', message: `ledger ${order.ledger} already exists` })
  }
  writeLedger(scope, {
    name: order.ledger,
    bucket: order.bucket,
    addedAt: scope.date,
    metadata: storedMetadata(order.metadata),
    features: storedMetadata(order.features, 'features'),
    nextTransactionId: 0n,
    nextLogId: 0n,
    accountCount: 0n,
    lastLogHash: '',
  })
  return { type: 'LEDGER' }
}
