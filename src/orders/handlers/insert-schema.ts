import { TallyError, schemaKey } from '../../domain/index.ts'
import type { Json, SchemaRecord } from '../../domain/index.ts'
import type { InsertSchema } from '../order.ts'
import type { OrderOutput } from '../output.ts'
import type { Scope } from '../scope.ts'
import { readLedger } from '../scope.ts'
import { appendLedgerLog } from '../ledger-log.ts'
import { canonicalSchemaData } from '../schema.ts'

/**
 * Schemas are immutable: a version is inserted once (SCHEMA_ALREADY_EXISTS
 * after), logged as v2's INSERTED_SCHEMA, and becomes the ledger's latest,
 * after which every write v2 validates must name the version it follows.
 */
export function insertSchema(scope: Scope, order: InsertSchema): OrderOutput {
  const ledger = readLedger(scope, order.ledger)
  const key = schemaKey(order.ledger, order.version)
  if (scope.read(key) !== undefined) {
    throw new TallyError({ code: 'SCHEMA_ALREADY_EXISTS', kind: 'business', message: `schema ${order.version} already exists in ledger ${order.ledger} (schemas are immutable: insert a new version)` })
  }
  // Canonical here, in the FSM: the log row's bytes must not depend on the order's key order (live or replayed).
  const schema: SchemaRecord = { version: order.version, createdAt: order.createdAt ?? scope.date, logId: ledger.nextLogId, data: canonicalSchemaData(order.data) }
  scope.write(key, { kind: 's', value: schema })
  const logged = appendLedgerLog(scope, { ...ledger, latestSchemaVersion: order.version }, 'INSERTED_SCHEMA', { schema: schemaView(schema) })
  return { type: 'SCHEMA', logId: logged.nextLogId - 1n }
}

/** The v2 wire shape of a schema (`V2Schema`): its data, version and creation date. */
export function schemaView(schema: SchemaRecord): { [key: string]: Json } {
  return { ...schema.data, version: schema.version, createdAt: schema.createdAt }
}
