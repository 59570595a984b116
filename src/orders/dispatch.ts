import { InvariantViolation } from '../domain/index.ts'
import type { Order } from './order.ts'
import type { OrderOutput } from './output.ts'
import type { Scope } from './scope.ts'
import { createLedger } from './handlers/create-ledger.ts'
import { createTransaction } from './handlers/create-transaction.ts'
import { revertTransaction } from './handlers/revert-transaction.ts'
import { deleteTransactionMetadata, saveTransactionMetadata } from './handlers/transaction-metadata.ts'
import { deleteAccountMetadata, saveAccountMetadata } from './handlers/account-metadata.ts'
import { deleteLedgerMetadata, saveLedgerMetadata } from './handlers/ledger-metadata.ts'
import { insertSchema } from './handlers/insert-schema.ts'
import { deleteExporter, deletePipeline, putExporter, putPipeline, resetPipeline, setPipelineCursor, setPipelineEnabled } from './handlers/outputs-config.ts'

/** Runs one order's handler. Business refusals throw `TallyError`. */
export function executeOrder(scope: Scope, order: Order): OrderOutput {
  switch (order.type) {
    case 'CREATE_LEDGER':
      return createLedger(scope, order)
    case 'CREATE_TRANSACTION':
      return createTransaction(scope, order)
    case 'REVERT_TRANSACTION':
      return revertTransaction(scope, order)
    case 'SAVE_TRANSACTION_METADATA':
      return saveTransactionMetadata(scope, order)
    case 'DELETE_TRANSACTION_METADATA':
      return deleteTransactionMetadata(scope, order)
    case 'SAVE_ACCOUNT_METADATA':
      return saveAccountMetadata(scope, order)
    case 'DELETE_ACCOUNT_METADATA':
      return deleteAccountMetadata(scope, order)
    case 'SAVE_LEDGER_METADATA':
      return saveLedgerMetadata(scope, order)
    case 'DELETE_LEDGER_METADATA':
      return deleteLedgerMetadata(scope, order)
    case 'INSERT_SCHEMA':
      return insertSchema(scope, order)
    case 'PUT_EXPORTER':
      return putExporter(scope, order)
    case 'DELETE_EXPORTER':
      return deleteExporter(scope, order)
    case 'PUT_PIPELINE':
      return putPipeline(scope, order)
    case 'DELETE_PIPELINE':
      return deletePipeline(scope, order)
    case 'SET_PIPELINE_ENABLED':
      return setPipelineEnabled(scope, order)
    case 'RESET_PIPELINE':
      return resetPipeline(scope, order)
    case 'SET_PIPELINE_CURSOR':
      return setPipelineCursor(scope, order)
    default: {
      const never: never = order
      throw new InvariantViolation(`unknown order ${JSON.stringify(never)}`)
    }
  }
}
