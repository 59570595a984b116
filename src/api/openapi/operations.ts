import { ref } from './schemas.ts'
import type { HttpMethod, OpenApiObject, Operation, OperationStatus } from './types.ts'

/**
 * Every operation of the Formance Ledger v2 document, plus Tally's own, with
 * where each stands in Tally. The served document (`/_/openapi.json`) keeps
 * the operations whose route the app registered; `test/api/openapi.test.ts`
 * checks this list against the app's routes and against the v2 document.
 */

// ---- parameters --------------------------------------------------------------------

function query(name: string, description: string, schema: OpenApiObject): OpenApiObject {
  return { name, in: 'query', required: false, description, schema }
}

const flag = (name: string, description: string): OpenApiObject => query(name, description, { type: 'boolean' })

const pageSize = query('pageSize', 'Items per page, 1 to 1000; 15 when absent.', { type: 'integer', format: 'int64', minimum: 1, maximum: 1000, default: 15 })
const cursor = query('cursor', 'A `next`/`previous` value from an earlier page; it carries the page size and list options, so other paging parameters are ignored.', {
  type: 'string',
})
const expand = query('expand', 'Comma-separated: `volumes`, `effectiveVolumes`.', { type: 'string' })
const pit = query('pit', 'Point in time: read the state as of this date.', { type: 'string', format: 'date-time' })
const sort = query('sort', '`field:asc` or `field:desc`.', { type: 'string' })
const dryRun = flag('dryRun', 'Run every check and compute the result, write nothing.')
const schemaVersion = query('schemaVersion', 'The schema version the write follows: required once the ledger has a schema (`SCHEMA_NOT_SPECIFIED`), checked by the FSM.', { type: 'string' })
const idempotencyKey: OpenApiObject = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Per ledger. The first successful request with a key stores its result; replaying the same request returns it with `Idempotency-Hit: true` and writes nothing; the same key with another request is a 400 `VALIDATION`.',
  schema: { type: 'string', maxLength: 256 },
}
/** Formance's SDKs send the filter as a JSON `query` parameter rather than a body; Tally reads either. */
const filterQuery = query('query', 'The filter as JSON text (what Formance SDKs send); same language as the body.', { type: 'string' })
/** v2 list and count routes take their filter as a JSON body, even on GET and HEAD. */
const filterBody: OpenApiObject = {
  required: false,
  description: 'Filter: `$match $in $exists $like $lt $gt $lte $gte $and $or $not` over the resource fields.',
  content: { 'application/json': { schema: { type: 'object', additionalProperties: true } } },
}

function jsonBody(schema: OpenApiObject, required = true): OpenApiObject {
  return { required, content: { 'application/json': { schema } } }
}

// ---- responses ---------------------------------------------------------------------

const idempotencyHit: OpenApiObject = {
  'Idempotency-Hit': { description: '`true` when the answer replays an earlier request with the same key.', schema: { type: 'string', enum: ['true'] } },
}

function json(description: string, schema: OpenApiObject, headers?: OpenApiObject): OpenApiObject {
  return { description, ...(headers === undefined ? {} : { headers }), content: { 'application/json': { schema } } }
}

const noContent = (description: string, headers?: OpenApiObject): OpenApiObject => ({ description, ...(headers === undefined ? {} : { headers }) })

const countHeader: OpenApiObject = { Count: { description: 'Number of matching items.', schema: { type: 'integer', format: 'bigint', minimum: 0 } } }

// ---- statuses ----------------------------------------------------------------------

const served = (differences?: string): OperationStatus => ({ kind: 'served', ...(differences === undefined ? {} : { differences }) })
const unsupported = (reason: string): OperationStatus => ({ kind: 'unsupported', reason })

function notServed(method: HttpMethod, path: string, operationId: string, summary: string, reason: string): Operation {
  return { method, path, operationId, origin: 'v2', tag: 'unsupported', summary, status: unsupported(reason), responses: {} }
}

/**
 * Decided (issue 14): a Formance bucket is a PostgreSQL schema holding ledgers, and deleting one soft-deletes
 * them. Tally keeps each ledger's bucket name but has no soft-deleted ledger at all (v2 has no operation that
 * deletes one): serving these would first need that state honoured by every write, read, list and replay.
 */
const NO_BUCKETS =
  'a Formance bucket is a PostgreSQL schema of ledgers and deleting it soft-deletes them; Tally records the bucket name of each ledger but has no soft-deleted ledger state for a bucket deletion to set or a restore to clear'

// ---- the catalogue -----------------------------------------------------------------

export const operations: readonly Operation[] = [
  // Tally's own and v2's server routes
  {
    method: 'get', path: '/_/info', operationId: 'v2GetInfo', origin: 'v2', tag: 'server', summary: 'Server name and version', status: served(),
    responses: { '200': json('Server information.', ref('ServerInfo')) },
  },
  {
    method: 'get', path: '/_/metrics', operationId: 'getMetrics', origin: 'v2', tag: 'server', summary: 'Metrics, in the Prometheus text format',
    status: served('Prometheus text format by default (what a scraper reads); a client accepting JSON but not text gets v2\'s JSON object of metrics by name; see docs/operations.md'),
    responses: {
      '200': {
        description: 'Metrics: Prometheus text (text/plain; version=0.0.4), or JSON by metric name for `Accept: application/json`.',
        content: { 'text/plain': { schema: { type: 'string' } }, 'application/json': { schema: { type: 'object', additionalProperties: true } } },
      },
    },
  },
  {
    method: 'get', path: '/_/healthz', operationId: 'tallyHealth', origin: 'tally', tag: 'server', summary: 'Liveness of the apply pipeline', status: served(),
    description: '200 while the apply pipeline runs; 503 (with `Retry-After`) once it stopped.',
    responses: { '200': json('Healthy.', ref('Health')) },
  },
  {
    method: 'get', path: '/_/readyz', operationId: 'tallyReadiness', origin: 'tally', tag: 'server', summary: 'Readiness: healthy and, in replicated mode, caught up', status: served(),
    description: '503 (with `Retry-After`) while the apply pipeline is stopped or, in replicated mode, until the node applied what it knows committed (docs/cluster.md).',
    responses: { '200': json('Ready.', ref('Health')) },
  },
  {
    method: 'get', path: '/_/cluster', operationId: 'tallyClusterStatus', origin: 'tally', tag: 'server', summary: "This node's place in the cluster", status: served(),
    description: 'Mode, role, epoch, primary, head/flushed/committed/applied LSNs, the rolling state hash and readiness (docs/cluster.md).',
    responses: { '200': json('The node status.', { type: 'object', additionalProperties: true }) },
  },
  {
    method: 'get', path: '/_/openapi.json', operationId: 'tallyOpenApi', origin: 'tally', tag: 'server', summary: "This document: the operations this server's routes serve", status: served(),
    responses: { '200': json('OpenAPI 3.0 document.', ref('OpenApiDocument')) },
  },
  {
    method: 'post', path: '/_/check', operationId: 'tallyCheck', origin: 'tally', tag: 'server', summary: 'Verify the audit chain and every projection of the store',
    status: served(),
    responses: { '200': { description: 'Progress and findings, streamed.', content: { 'application/x-ndjson': { schema: { type: 'string' } } } } },
  },
  {
    method: 'get', path: '/_/audit/checkpoint', operationId: 'tallyAuditCheckpoint', origin: 'tally', tag: 'server', summary: 'The latest signed checkpoint of the audit chain (C2SP tlog-checkpoint note)',
    status: served(),
    responses: { '200': { description: 'The signed note.', content: { 'text/plain': { schema: { type: 'string' } } } } },
  },

  // ledgers
  {
    method: 'get', path: '/v2', operationId: 'v2ListLedgers', origin: 'v2', tag: 'ledgers', summary: 'List ledgers, by name',
    status: served('`includeDeleted` has no effect (Tally never deletes ledgers); `sort` by `name` only'),
    parameters: [pageSize, cursor, flag('includeDeleted', 'No effect: Tally never deletes ledgers.'), sort],
    requestBody: filterBody,
    responses: { '200': json('A page of ledgers.', ref('LedgerPage')) },
  },
  {
    method: 'get', path: '/v2/{ledger}', operationId: 'v2GetLedger', origin: 'v2', tag: 'ledgers', summary: 'Get a ledger', status: served(),
    responses: { '200': json('The ledger.', ref('LedgerData')) },
  },
  {
    method: 'post', path: '/v2/{ledger}', operationId: 'v2CreateLedger', origin: 'v2', tag: 'ledgers', summary: 'Create a ledger',
    status: served('`bucket` and `features` are recorded, not acted on'),
    description: '`LEDGER_ALREADY_EXISTS` (400) when the name is taken.',
    requestBody: jsonBody(ref('CreateLedgerRequest'), false),
    responses: { '204': noContent('Created.') },
  },
  {
    method: 'put', path: '/v2/{ledger}/metadata', operationId: 'v2UpdateLedgerMetadata', origin: 'v2', tag: 'ledgers', summary: 'Add or replace ledger metadata keys', status: served(),
    parameters: [idempotencyKey],
    requestBody: jsonBody(ref('Metadata')),
    responses: { '204': noContent('Saved.', idempotencyHit) },
  },
  {
    method: 'delete', path: '/v2/{ledger}/metadata/{key}', operationId: 'v2DeleteLedgerMetadata', origin: 'v2', tag: 'ledgers', summary: 'Remove one ledger metadata key', status: served(),
    responses: { '204': noContent('Removed (also when the key was absent).') },
  },
  {
    method: 'get', path: '/v2/{ledger}/_info', operationId: 'v2GetLedgerInfo', origin: 'v2', tag: 'ledgers', summary: 'Ledger storage information',
    status: served('`storage.migrations` is always empty: Tally has no SQL migrations'),
    responses: { '200': json('Storage information.', ref('LedgerInfo')) },
  },
  {
    method: 'get', path: '/v2/{ledger}/stats', operationId: 'v2ReadStats', origin: 'v2', tag: 'ledgers', summary: 'Count accounts and transactions',
    status: served(),
    responses: { '200': json('Counts.', ref('Stats')) },
  },

  // schemas: chart of accounts, transaction and query templates
  {
    method: 'post', path: '/v2/{ledger}/schemas/{version}', operationId: 'v2InsertSchema', origin: 'v2', tag: 'schemas', summary: 'Insert an immutable ledger schema',
    status: served('versions match `^[a-zA-Z0-9][a-zA-Z0-9._+-]{0,63}$`; a schema is at most 1 MiB; chart patterns that can backtrack exponentially, and account rules v2 does not define, are refused; a query template\'s variables and body are checked at insertion, as v2 checks them'),
    description:
      'Logged as `INSERTED_SCHEMA`. `SCHEMA_ALREADY_EXISTS` (400) for a version already inserted; `VALIDATION` (400) naming the offending chart segment or template; a template script that does not compile is `INTERPRETER_PARSE` or `COMPILATION_FAILED`.',
    parameters: [idempotencyKey],
    requestBody: jsonBody(ref('SchemaData')),
    responses: { '204': noContent('Inserted.', idempotencyHit) },
  },
  {
    method: 'get', path: '/v2/{ledger}/schemas/{version}', operationId: 'v2GetSchema', origin: 'v2', tag: 'schemas', summary: 'Get a ledger schema', status: served(),
    responses: { '200': json('The schema.', ref('SchemaResponse')) },
  },
  {
    method: 'get', path: '/v2/{ledger}/schemas', operationId: 'v2ListSchemas', origin: 'v2', tag: 'schemas', summary: 'List ledger schemas by creation, newest first',
    status: served(),
    parameters: [pageSize, cursor, query('sort', 'Only `created_at`.', { type: 'string', enum: ['created_at'] }), query('order', 'asc or desc (default).', { type: 'string', enum: ['asc', 'desc'] })],
    responses: { '200': json('A page of schemas.', ref('SchemaPage')) },
  },
  {
    method: 'post', path: '/v2/{ledger}/queries/{id}/run', operationId: 'v2RunQuery', origin: 'v2', tag: 'schemas', summary: 'Run a query template of a schema',
    status: served('placeholders are v2\'s `$name` / `${name}` and variables are typed (`string`, `int`, `boolean`, `date`); an `int`, `boolean` or `date` value may be sent as the string that spells it; a variable the template does not declare is a 400 (v2 ignores it); the answer names its `resource` and pages like the list of that resource'),
    parameters: [
      { name: 'schemaVersion', in: 'query', required: true, description: 'The schema holding the query template.', schema: { type: 'string' } },
      pageSize, cursor, expand, pit, sort,
    ],
    requestBody: jsonBody({ type: 'object', properties: { cursor: { type: 'string' }, params: { type: 'object', additionalProperties: true }, vars: { type: 'object', description: 'Values of the template\'s variables: strings (as v2 sends them) or JSON values of each variable\'s type.', additionalProperties: {} } } }),
    responses: { '200': json('A page of the resource the template queries, and that resource.', { type: 'object', additionalProperties: true }) },
  },

  // transactions
  {
    method: 'get', path: '/v2/{ledger}/transactions', operationId: 'v2ListTransactions', origin: 'v2', tag: 'transactions', summary: 'List transactions, newest first',
    status: served('`sort` by `id` or `timestamp` (another field is a 400), `reverse`, `order=effective`; `pit`: dated at or before it, later reverts not yet seen'),
    parameters: [filterQuery, pageSize, cursor, expand, pit, query('order', 'Deprecated in v2: `effective` orders by timestamp.', { type: 'string', enum: ['effective'] }), flag('reverse', 'Oldest first.'), sort],
    requestBody: filterBody,
    responses: { '200': json('A page of transactions.', ref('TransactionPage')) },
  },
  {
    method: 'head', path: '/v2/{ledger}/transactions', operationId: 'v2CountTransactions', origin: 'v2', tag: 'transactions', summary: 'Count transactions (header `Count`)',
    status: served(),
    parameters: [filterQuery, pit],
    requestBody: filterBody,
    responses: { '204': noContent('Counted.', countHeader) },
  },
  {
    method: 'post', path: '/v2/{ledger}/transactions', operationId: 'v2CreateTransaction', origin: 'v2', tag: 'transactions', summary: 'Create a transaction from postings or a Numscript script',
    status: served('`runtime` is ignored'),
    description:
      '`force` (query or body) skips balance checks. Errors: `NO_POSTINGS`, `INSUFFICIENT_FUND`, `COMPILATION_FAILED`, `INTERPRETER_PARSE`, `INTERPRETER_RUNTIME` (400), `CONFLICT` (409, reference used), `LEDGER_NOT_FOUND` (404).',
    parameters: [flag('force', 'Skip balance checks.'), dryRun, schemaVersion, idempotencyKey],
    requestBody: jsonBody(ref('TransactionRequest')),
    responses: { '200': json('The transaction, with `preCommitVolumes` and `postCommitVolumes`.', ref('TransactionData'), idempotencyHit) },
  },
  {
    method: 'get', path: '/v2/{ledger}/transactions/{id}', operationId: 'v2GetTransaction', origin: 'v2', tag: 'transactions', summary: 'Get a transaction', status: served(),
    parameters: [expand, pit],
    responses: { '200': json('The transaction.', ref('TransactionData')) },
  },
  {
    method: 'post', path: '/v2/{ledger}/transactions/{id}/metadata', operationId: 'v2AddMetadataOnTransaction', origin: 'v2', tag: 'transactions', summary: 'Add or replace transaction metadata keys',
    status: served(),
    parameters: [dryRun, schemaVersion, idempotencyKey],
    requestBody: jsonBody(ref('Metadata')),
    responses: { '204': noContent('Saved.', idempotencyHit) },
  },
  {
    method: 'delete', path: '/v2/{ledger}/transactions/{id}/metadata/{key}', operationId: 'v2DeleteTransactionMetadata', origin: 'v2', tag: 'transactions', summary: 'Remove one transaction metadata key',
    status: served(),
    parameters: [idempotencyKey],
    responses: { '204': noContent('Removed.', idempotencyHit) },
  },
  {
    method: 'post', path: '/v2/{ledger}/transactions/{id}/revert', operationId: 'v2RevertTransaction', origin: 'v2', tag: 'transactions', summary: 'Revert a transaction',
    status: served(),
    description: 'Writes the mirror transaction. `ALREADY_REVERT` (400) on a second revert; `INSUFFICIENT_FUND` unless `force`.',
    parameters: [flag('force', 'Allow balances to go negative.'), flag('atEffectiveDate', "Date the revert at the original transaction's timestamp."), dryRun, schemaVersion, idempotencyKey],
    requestBody: jsonBody(ref('RevertRequest'), false),
    responses: { '201': json('The reverting transaction.', ref('TransactionData'), idempotencyHit) },
  },

  // accounts
  {
    method: 'get', path: '/v2/{ledger}/accounts', operationId: 'v2ListAccounts', origin: 'v2', tag: 'accounts', summary: 'List accounts, by address',
    status: served('ascending by address by default (v2 documents descending); `sort` by `address` only, `reverse`'),
    parameters: [filterQuery, pageSize, cursor, expand, pit, sort],
    requestBody: filterBody,
    responses: { '200': json('A page of accounts.', ref('AccountPage')) },
  },
  {
    method: 'head', path: '/v2/{ledger}/accounts', operationId: 'v2CountAccounts', origin: 'v2', tag: 'accounts', summary: 'Count accounts (header `Count`)',
    status: served(),
    parameters: [filterQuery, pit],
    requestBody: filterBody,
    responses: { '204': noContent('Counted.', countHeader) },
  },
  {
    method: 'get', path: '/v2/{ledger}/accounts/{address}', operationId: 'v2GetAccount', origin: 'v2', tag: 'accounts', summary: 'Get an account',
    status: served('404 `NOT_FOUND` for an address never used'),
    parameters: [expand, pit],
    responses: { '200': json('The account.', ref('AccountData')) },
  },
  {
    method: 'post', path: '/v2/{ledger}/accounts/{address}/metadata', operationId: 'v2AddMetadataToAccount', origin: 'v2', tag: 'accounts', summary: 'Add or replace account metadata keys (creates the account)',
    status: served(),
    parameters: [dryRun, schemaVersion, idempotencyKey],
    requestBody: jsonBody(ref('Metadata')),
    responses: { '204': noContent('Saved.', idempotencyHit) },
  },
  {
    method: 'delete', path: '/v2/{ledger}/accounts/{address}/metadata/{key}', operationId: 'v2DeleteAccountMetadata', origin: 'v2', tag: 'accounts', summary: 'Remove one account metadata key',
    status: served(),
    parameters: [idempotencyKey],
    responses: { '204': noContent('Removed.', idempotencyHit) },
  },

  // aggregates
  {
    method: 'get', path: '/v2/{ledger}/aggregate/balances', operationId: 'v2GetBalancesAggregated', origin: 'v2', tag: 'aggregates', summary: 'Sum balances by asset over the matching accounts',
    status: served(),
    parameters: [filterQuery, pit, flag('useInsertionDate', 'Use insertion dates instead of effective dates.')],
    requestBody: filterBody,
    responses: { '200': json('Balances by asset.', ref('AggregatedBalances')) },
  },
  {
    method: 'get', path: '/v2/{ledger}/volumes', operationId: 'v2GetVolumesWithBalances', origin: 'v2', tag: 'aggregates', summary: 'Volumes and balances by account and asset over a period',
    status: served(),
    parameters: [filterQuery, 
      pageSize,
      cursor,
      query('startTime', 'Start of the period (inclusive).', { type: 'string', format: 'date-time' }),
      query('endTime', 'End of the period.', { type: 'string', format: 'date-time' }),
      flag('insertionDate', 'Use insertion dates instead of effective dates.'),
      query('groupBy', 'Group by the first N address segments.', { type: 'integer', format: 'int64', minimum: 0, maximum: 1000 }),
      sort,
    ],
    requestBody: filterBody,
    responses: { '200': json('A page of volumes.', ref('VolumesPage')) },
  },

  // logs
  {
    method: 'get', path: '/v2/{ledger}/logs', operationId: 'v2ListLogs', origin: 'v2', tag: 'logs', summary: 'List logs, newest first',
    status: served('`sort` by `id` only, `reverse`; `pit`: logs dated at or before it'),
    parameters: [filterQuery, pageSize, cursor, pit, sort],
    requestBody: filterBody,
    responses: { '200': json('A page of logs.', ref('LogPage')) },
  },
  {
    method: 'post', path: '/v2/{ledger}/logs/import', operationId: 'v2ImportLogs', origin: 'v2', tag: 'logs', summary: 'Replay a v2 log stream into an empty ledger',
    status: served(),
    requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
    responses: { '204': noContent('Imported.') },
  },
  {
    method: 'post', path: '/v2/{ledger}/logs/export', operationId: 'v2ExportLogs', origin: 'v2', tag: 'logs', summary: 'Stream the logs, one JSON object a line',
    status: served(),
    responses: { '200': { description: 'The logs.', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } } },
  },

  // bulk
  {
    method: 'post', path: '/v2/{ledger}/_bulk', operationId: 'v2CreateBulk', origin: 'v2', tag: 'bulk', summary: 'Apply many writes in one request',
    status: served('up to 10,000 elements by default (v2: 100); `parallel` elements are applied in order; `schemaVersion` is ignored'),
    description:
      '`atomic`: all or nothing. `continueOnFailure`: later elements run after a failure. `atomic` with `parallel` is a 412. Any failed element makes the answer a 400 whose body is still the element list, with the first error in `errorCode`/`errorMessage`.',
    parameters: [flag('atomic', 'All elements or none.'), flag('continueOnFailure', 'Keep going after a failed element.'), flag('parallel', 'Elements are independent.'), schemaVersion],
    requestBody: jsonBody({ type: 'array', items: ref('BulkElement') }),
    responses: {
      '200': json('One result per element.', ref('BulkResponse')),
      '400': json('At least one element failed; results per element.', ref('BulkResponse')),
    },
  },

  // exporters and pipelines: this node's outputs (docs/pipelines.md)
  {
    method: 'get', path: '/v2/_/exporters', operationId: 'v2ListExporters', origin: 'v2', tag: 'outputs', summary: 'List exporters', status: served('one page: at most 256 exporters'),
    description: "Needs `ledger:admin`: an exporter's configuration says where a ledger's history goes.",
    responses: { '200': json('The exporters.', ref('ExporterPage')) },
  },
  {
    method: 'post', path: '/v2/_/exporters', operationId: 'v2CreateExporter', origin: 'v2', tag: 'outputs', summary: 'Create an exporter',
    status: served('drivers `stdout`, `http` and `nats` (JetStream); ClickHouse and Elasticsearch are not served; every configuring call is an order: logged, applied by the FSM, audited, replayed by `tally check`; not part of a v2 log export (docs/adr/0008-outputs-are-node-state.md)'),
    description: 'Needs `ledger:admin`. An unknown driver or setting is `VALIDATION` (400).',
    requestBody: jsonBody(ref('ExporterConfiguration')),
    responses: { '201': json('The exporter.', ref('ExporterResponse')) },
  },
  {
    method: 'get', path: '/v2/_/exporters/{exporterID}', operationId: 'v2GetExporterState', origin: 'v2', tag: 'outputs', summary: 'Get an exporter', status: served(),
    description: "Needs `ledger:admin`: an exporter's configuration says where a ledger's history goes.",
    responses: { '200': json('The exporter.', ref('ExporterResponse')) },
  },
  {
    method: 'put', path: '/v2/_/exporters/{exporterID}', operationId: 'v2UpdateExporter', origin: 'v2', tag: 'outputs', summary: 'Update an exporter', status: served(),
    description: "Needs `ledger:admin`. The exporter's running pipelines go on from their cursor with the new configuration.",
    requestBody: jsonBody(ref('ExporterConfiguration')),
    responses: { '204': noContent('Updated.') },
  },
  {
    method: 'delete', path: '/v2/_/exporters/{exporterID}', operationId: 'v2DeleteExporter', origin: 'v2', tag: 'outputs', summary: 'Delete an exporter',
    status: served('refused (`VALIDATION`) while a pipeline uses it'),
    responses: { '204': noContent('Deleted.') },
  },
  notServed('delete', '/v2/_/buckets/{bucket}', 'v2DeleteBucket', 'Soft-delete the ledgers of a bucket', NO_BUCKETS),
  notServed('post', '/v2/_/buckets/{bucket}/restore', 'v2RestoreBucket', 'Restore the ledgers of a bucket', NO_BUCKETS),
  {
    method: 'get', path: '/v2/{ledger}/pipelines', operationId: 'v2ListPipelines', origin: 'v2', tag: 'outputs', summary: "List a ledger's pipelines", status: served('one page: at most 1000 pipelines'),
    responses: { '200': json('The pipelines.', ref('PipelinePage')) },
  },
  {
    method: 'post', path: '/v2/{ledger}/pipelines', operationId: 'v2CreatePipeline', origin: 'v2', tag: 'outputs', summary: 'Create a pipeline (it starts at once, from the first log)',
    status: served('one pipeline per ledger and exporter (`CONFLICT`, 409, for a second); an audited order, the cursor is node state (docs/adr/0008-outputs-are-node-state.md)'),
    description: 'Needs `ledger:admin`. Delivery is ordered and at least once: each log carries its `id`.',
    requestBody: jsonBody(ref('PipelineRequest')),
    responses: { '201': json('The pipeline.', ref('PipelineResponse')) },
  },
  {
    method: 'get', path: '/v2/{ledger}/pipelines/{pipelineID}', operationId: 'v2GetPipelineState', origin: 'v2', tag: 'outputs', summary: 'Get a pipeline and its state',
    status: served('adds `lag`, and `lastError`/`lastErrorAt` while the sink fails'),
    responses: { '200': json('The pipeline.', ref('PipelineResponse')) },
  },
  {
    method: 'delete', path: '/v2/{ledger}/pipelines/{pipelineID}', operationId: 'v2DeletePipeline', origin: 'v2', tag: 'outputs', summary: 'Delete a pipeline', status: served(),
    responses: { '204': noContent('Deleted.') },
  },
  {
    method: 'post', path: '/v2/{ledger}/pipelines/{pipelineID}/reset', operationId: 'v2ResetPipeline', origin: 'v2', tag: 'outputs', summary: 'Reset a pipeline: deliver again from the first log', status: served(),
    responses: { '202': noContent('Reset.') },
  },
  {
    method: 'post', path: '/v2/{ledger}/pipelines/{pipelineID}/start', operationId: 'v2StartPipeline', origin: 'v2', tag: 'outputs', summary: 'Start a pipeline from its cursor', status: served(),
    responses: { '202': noContent('Started.') },
  },
  {
    method: 'post', path: '/v2/{ledger}/pipelines/{pipelineID}/stop', operationId: 'v2StopPipeline', origin: 'v2', tag: 'outputs', summary: 'Stop a pipeline (its cursor stays)', status: served(),
    responses: { '202': noContent('Stopped.') },
  },
]

/** Path parameters by name; `id` is a transaction id except under `/queries/`. */
export function pathParameter(path: string, name: string): OpenApiObject {
  const described = (description: string, schema: OpenApiObject): OpenApiObject => ({ name, in: 'path', required: true, description, schema })
  switch (name) {
    case 'ledger':
      return described('Ledger name.', { type: 'string', pattern: '^[a-zA-Z0-9_-]{1,63}$' })
    case 'address':
      return described('Account address, segments separated by `:`.', { type: 'string', pattern: '^[a-zA-Z0-9_-]+(:[a-zA-Z0-9_-]+)*$' })
    case 'id':
      return path.includes('/transactions/')
        ? described('Transaction id.', { type: 'integer', format: 'bigint', minimum: 0 })
        : described('Query template id.', { type: 'string' })
    case 'key':
      return described('Metadata key.', { type: 'string' })
    default:
      return described(`The ${name}.`, { type: 'string' })
  }
}
