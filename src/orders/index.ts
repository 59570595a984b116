export type * from './order.ts'
export type { Scope, LedgerLog } from './scope.ts'
export type { OrderOutput, AggregatedVolumes } from './output.ts'
export { transactionView } from './output.ts'
export { executeOrder } from './dispatch.ts'
export { needsOf, needsReadValues } from './needs.ts'
export type { KnownValue, Needs } from './needs.ts'
export {
  parseCreateTransaction,
  scriptTemplateOf,
  parseRevertTransaction,
  parseAccountMetadata,
  parseReference,
  parseTimestamp,
  parseBoolean,
  parseTransactionId,
} from './parse.ts'
export { revertPostings, revertedPostingsFingerprint } from './handlers/revert-transaction.ts'
export { scriptInputFingerprint } from './script.ts'
export type { ScriptInput } from './script.ts'
export { schemaView } from './handlers/insert-schema.ts'
export { ledgerOfOrder } from './order.ts'
export { canonicalExporterConfig, exportersMax, pipelinesMax, outputIdLengthMax } from './handlers/outputs-config.ts'
export {
  parseSchemaData,
  parseSchemaVersion,
  optionalSchemaVersion,
  parseQueryParams,
  parseQueryResource,
  schemaNotFound,
  templateScript,
  QUERY_RESOURCES,
  SCHEMA_VERSION_PATTERN,
  schemaBytesMax,
} from './schema.ts'
export type { QueryResource } from './schema.ts'
export type { CreateTransactionOptions } from './parse.ts'
