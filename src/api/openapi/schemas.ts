import type { OpenApiObject } from './types.ts'

/**
 * Component schemas of Tally's OpenAPI document: the wire shapes of the v2
 * API as Tally serves them. Every amount, volume, balance and id is an exact
 * JSON integer (`type: integer, format: bigint`): Tally parses and prints them
 * without going through a float, up to 2^256 − 1 for amounts.
 */

export function ref(name: string): OpenApiObject {
  return { $ref: `#/components/schemas/${name}` }
}

function bigint(description: string, minimum?: number): OpenApiObject {
  return { type: 'integer', format: 'bigint', description, ...(minimum === undefined ? {} : { minimum }) }
}

const dateTime = (description: string): OpenApiObject => ({ type: 'string', format: 'date-time', description })

/** `{cursor: {pageSize, hasMore, previous?, next?, data: [item]}}`, the v2 page envelope. */
function page(item: string, what: string): OpenApiObject {
  return {
    type: 'object',
    description: `One page of ${what}. Pass \`next\` or \`previous\` back as \`cursor\` to move; a cursor carries the page size and the list's options.`,
    required: ['cursor'],
    properties: {
      cursor: {
        type: 'object',
        required: ['pageSize', 'hasMore', 'data'],
        properties: {
          pageSize: { type: 'integer', format: 'int64', minimum: 1, maximum: 1000 },
          hasMore: { type: 'boolean', description: 'Whether a `next` page exists.' },
          previous: { type: 'string', description: 'Opaque cursor of the page before this one.' },
          next: { type: 'string', description: 'Opaque cursor of the page after this one.' },
          data: { type: 'array', items: ref(item) },
        },
      },
    },
  }
}

function dataOf(item: string): OpenApiObject {
  return { type: 'object', required: ['data'], properties: { data: ref(item) } }
}

/** The v2 error codes, the only values `errorCode` ever takes on the wire. */
export const v2ErrorCodes = [
  'INTERNAL',
  'INSUFFICIENT_FUND',
  'VALIDATION',
  'CONFLICT',
  'COMPILATION_FAILED',
  'METADATA_OVERRIDE',
  'NOT_FOUND',
  'REVERT_OCCURRING',
  'ALREADY_REVERT',
  'NO_POSTINGS',
  'LEDGER_NOT_FOUND',
  'IMPORT',
  'TIMEOUT',
  'BULK_SIZE_EXCEEDED',
  'INTERPRETER_PARSE',
  'INTERPRETER_RUNTIME',
  'LEDGER_ALREADY_EXISTS',
  'SCHEMA_ALREADY_EXISTS',
  'SCHEMA_NOT_SPECIFIED',
  'OUTDATED_SCHEMA',
] as const

const metadata: OpenApiObject = {
  type: 'object',
  description: 'String keys to string values.',
  additionalProperties: { type: 'string' },
}

const posting: OpenApiObject = {
  type: 'object',
  required: ['source', 'destination', 'amount', 'asset'],
  properties: {
    source: { type: 'string', description: 'Account address the amount leaves (`world` may go negative).' },
    destination: { type: 'string', description: 'Account address the amount enters.' },
    amount: bigint('Non-negative amount in the smallest unit of the asset: a JSON integer (a string, decimal point or exponent is a 400).', 0),
    asset: { type: 'string', description: 'Asset code, optionally with a precision suffix (`USD/2`).' },
  },
}

const volume: OpenApiObject = {
  type: 'object',
  required: ['input', 'output', 'balance'],
  properties: {
    input: bigint('Total received.', 0),
    output: bigint('Total sent.', 0),
    balance: bigint('input − output.'),
  },
}

const transaction: OpenApiObject = {
  type: 'object',
  required: ['id', 'postings', 'timestamp', 'insertedAt', 'metadata', 'reverted'],
  properties: {
    id: bigint('Sequential id inside the ledger, from 0.', 0),
    postings: { type: 'array', items: ref('Posting') },
    timestamp: dateTime('Effective date (may be in the past when the request backdates it).'),
    insertedAt: dateTime('When Tally applied it.'),
    updatedAt: dateTime('Last metadata change or revert.'),
    reference: { type: 'string', description: 'Unique inside the ledger when given.' },
    metadata,
    reverted: { type: 'boolean' },
    revertedAt: dateTime('When it was reverted.'),
    preCommitVolumes: ref('AggregatedVolumes'),
    postCommitVolumes: ref('AggregatedVolumes'),
    preCommitEffectiveVolumes: ref('AggregatedVolumes'),
    postCommitEffectiveVolumes: ref('AggregatedVolumes'),
  },
}

const transactionRequest: OpenApiObject = {
  type: 'object',
  description: 'Either `postings` or `script` (Numscript).',
  properties: {
    postings: { type: 'array', items: ref('Posting') },
    script: {
      type: 'object',
      required: ['plain'],
      properties: {
        plain: { type: 'string', description: 'Numscript source.' },
        vars: { type: 'object', additionalProperties: { type: 'string' }, description: 'Values of the script variables, as strings.' },
        template: { type: 'string', description: 'A transaction template of the schema named by `schemaVersion` (instead of `plain`); also in `_bulk` elements.' },
      },
    },
    runtime: { type: 'string', enum: ['experimental-interpreter', 'machine'], description: 'Ignored: Tally has one Numscript interpreter.' },
    timestamp: dateTime('Backdates the transaction; defaults to now. A real RFC 3339 date (`2021-02-29` is a 400), kept to the microsecond (finer digits rounded half up).'),
    reference: { type: 'string' },
    metadata,
    accountMetadata: { type: 'object', additionalProperties: ref('Metadata'), description: 'Metadata to save on accounts, by address, in the same write.' },
    force: { type: 'boolean', description: 'Skip balance checks (same as the `force` query flag).' },
  },
}

const account: OpenApiObject = {
  type: 'object',
  required: ['address', 'metadata'],
  properties: {
    address: { type: 'string', pattern: '^[a-zA-Z0-9_-]+(:[a-zA-Z0-9_-]+)*$' },
    metadata,
    insertionDate: dateTime('First write that touched the account.'),
    updatedAt: dateTime('Last write that touched the account.'),
    firstUsage: dateTime('Earliest effective date of a move on the account.'),
    volumes: ref('VolumesByAsset'),
    effectiveVolumes: ref('VolumesByAsset'),
  },
}

const ledger: OpenApiObject = {
  type: 'object',
  required: ['name', 'addedAt', 'bucket'],
  properties: {
    name: { type: 'string', pattern: '^[a-zA-Z0-9_-]{1,63}$' },
    addedAt: dateTime('Creation date.'),
    bucket: { type: 'string', description: 'Recorded as given (default `_default`); Tally has no buckets of its own.' },
    metadata,
    features: { type: 'object', additionalProperties: { type: 'string' }, description: 'Recorded as given.' },
  },
}

const log: OpenApiObject = {
  type: 'object',
  required: ['id', 'type', 'data', 'hash', 'date'],
  properties: {
    id: bigint('Sequential id inside the ledger, from 0.', 0),
    type: { type: 'string', enum: ['NEW_TRANSACTION', 'SET_METADATA', 'REVERTED_TRANSACTION', 'DELETE_METADATA', 'INSERTED_SCHEMA'] },
    data: {
      type: 'object',
      additionalProperties: true,
      description:
        'NEW_TRANSACTION: `{transaction, accountMetadata}`; SET_METADATA: `{targetType, targetId, metadata}`; ' +
        'REVERTED_TRANSACTION: `{revertedTransaction, transaction}`; DELETE_METADATA: `{targetType, targetId, key}`; INSERTED_SCHEMA: `{schema}`.',
    },
    schemaVersion: { type: 'string', description: 'The schema version the write followed, when it named one (hashed).' },
    hash: { type: 'string', format: 'byte', description: 'base64 SHA-256 chained over the previous log, by v2\'s rule.' },
    date: dateTime('When the log was written.'),
  },
}

const schemaData: OpenApiObject = {
  type: 'object',
  required: ['chart'],
  description:
    'A ledger schema (`docs/schemas.md`). `chart`: address segments; `$name` is a variable segment (one per level) with an optional `.pattern`; ' +
    'a segment without sub-segments is an account, `.self: {}` makes one with sub-segments an account too; `.metadata` gives default values; `.rules` must be empty (v2 defines none).',
  properties: {
    chart: { type: 'object', additionalProperties: true },
    transactions: { type: 'object', additionalProperties: { type: 'object', required: ['script'], properties: { script: { type: 'string' }, description: { type: 'string' }, runtime: { type: 'string', enum: ['machine', 'experimental-interpreter'] } } } },
    queries: { type: 'object', additionalProperties: { type: 'object', additionalProperties: true } },
  },
}

const bulkElement: OpenApiObject = {
  type: 'object',
  required: ['action', 'data'],
  description:
    '`CREATE_TRANSACTION` (data: TransactionRequest), `ADD_METADATA` (data: `{targetType, targetId, metadata}`), ' +
    '`REVERT_TRANSACTION` (data: `{id, force?, atEffectiveDate?, metadata?}`), `DELETE_METADATA` (data: `{targetType, targetId, key}`).',
  properties: {
    action: { type: 'string', enum: ['CREATE_TRANSACTION', 'ADD_METADATA', 'REVERT_TRANSACTION', 'DELETE_METADATA'] },
    ik: { type: 'string', maxLength: 256, description: 'Idempotency key of this element.' },
    data: { type: 'object', additionalProperties: true },
  },
}

const bulkResult: OpenApiObject = {
  type: 'object',
  required: ['responseType', 'logID'],
  properties: {
    responseType: { type: 'string', enum: ['CREATE_TRANSACTION', 'ADD_METADATA', 'REVERT_TRANSACTION', 'DELETE_METADATA', 'ERROR'] },
    logID: bigint('Id of the log the element wrote (0 for errors).', 0),
    data: ref('Transaction'),
    errorCode: ref('ErrorCode'),
    errorDescription: { type: 'string' },
  },
}

export const componentSchemas: Readonly<Record<string, OpenApiObject>> = {
  ErrorCode: { type: 'string', enum: [...v2ErrorCodes], description: 'v2 error codes; Tally never sends another value.' },
  Error: {
    type: 'object',
    required: ['errorCode', 'errorMessage'],
    description:
      'Every error. Tally-specific reasons (`NOT_IMPLEMENTED`, `CACHE_HORIZON_EXCEEDED`, …) travel as `INTERNAL` with the reason ' +
      'leading `errorMessage` (`"NOT_IMPLEMENTED: …"`) and in `details` as `{"reason": …}` (plus `"retryable": "true"` on a 503), ' +
      'so clients with a closed v2 enum still parse the body and programs can still tell the reasons apart.',
    properties: {
      errorCode: ref('ErrorCode'),
      errorMessage: { type: 'string' },
      details: { type: 'string', description: 'JSON object as a string, when the error has structured details.' },
    },
  },
  Metadata: metadata,
  Posting: posting,
  Volume: volume,
  VolumesByAsset: { type: 'object', additionalProperties: ref('Volume'), description: 'Volumes by asset.' },
  AggregatedVolumes: { type: 'object', additionalProperties: ref('VolumesByAsset'), description: 'Volumes by account, then by asset.' },
  Transaction: transaction,
  TransactionRequest: transactionRequest,
  RevertRequest: { type: 'object', properties: { metadata } },
  TransactionData: dataOf('Transaction'),
  TransactionPage: page('Transaction', 'transactions, newest first'),
  Account: account,
  AccountData: dataOf('Account'),
  AccountPage: page('Account', 'accounts'),
  Ledger: ledger,
  LedgerData: dataOf('Ledger'),
  LedgerPage: page('Ledger', 'ledgers'),
  CreateLedgerRequest: {
    type: 'object',
    properties: { bucket: { type: 'string', pattern: '^[a-zA-Z0-9_-]{1,63}$' }, metadata, features: { type: 'object', additionalProperties: { type: 'string' } } },
  },
  LedgerInfo: {
    type: 'object',
    required: ['data'],
    properties: {
      data: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          storage: {
            type: 'object',
            properties: { migrations: { type: 'array', items: { type: 'object' }, description: 'Always empty: Tally has no SQL migrations.' } },
          },
        },
      },
    },
  },
  Log: log,
  SchemaData: schemaData,
  Schema: { allOf: [schemaData, { type: 'object', required: ['version', 'createdAt'], properties: { version: { type: 'string' }, createdAt: dateTime('When the schema was inserted.') } }] },
  SchemaResponse: dataOf('Schema'),
  SchemaPage: page('Schema', 'schemas, newest first'),
  LogPage: page('Log', 'logs, newest first'),
  ExporterConfiguration: {
    type: 'object',
    required: ['driver', 'config'],
    description: 'driver `stdout` (config: batchSize) or `http` (config: url, batchSize, timeoutMs, backoffMinMs, backoffMaxMs); defaults are filled in and served back.',
    properties: { driver: { type: 'string', enum: ['stdout', 'http'] }, config: { type: 'object', additionalProperties: true } },
  },
  Exporter: { allOf: [ref('ExporterConfiguration'), { type: 'object', required: ['id', 'createdAt'], properties: { id: { type: 'string' }, createdAt: dateTime('When the exporter was created.') } }] },
  ExporterResponse: dataOf('Exporter'),
  ExporterPage: page('Exporter', 'exporters, oldest first (always one page)'),
  PipelineRequest: { type: 'object', required: ['exporterID'], properties: { exporterID: { type: 'string' } } },
  Pipeline: {
    type: 'object',
    required: ['id', 'ledger', 'exporterID', 'createdAt', 'enabled', 'lag'],
    properties: {
      id: { type: 'string' },
      ledger: { type: 'string' },
      exporterID: { type: 'string' },
      createdAt: dateTime('When the pipeline was created.'),
      enabled: { type: 'boolean', description: 'Whether the pipeline is running.' },
      lastLogID: { type: 'integer', format: 'bigint', description: 'The last log the sink confirmed; absent before the first.' },
      lastError: { type: 'string', description: "Tally: the sink's last failure, while it lasts (cleared by the next confirmed batch)." },
      lastErrorAt: dateTime('Tally: when lastError happened.'),
      lag: { type: 'integer', format: 'bigint', description: 'Tally: logs stored after lastLogID, not yet confirmed.' },
    },
  },
  PipelineResponse: dataOf('Pipeline'),
  PipelinePage: page('Pipeline', "the ledger's pipelines, oldest first (always one page)"),
  BulkElement: bulkElement,
  BulkResult: bulkResult,
  BulkResponse: {
    type: 'object',
    properties: {
      data: { type: 'array', items: ref('BulkResult') },
      errorCode: ref('ErrorCode'),
      errorMessage: { type: 'string' },
    },
  },
  Stats: {
    type: 'object',
    required: ['data'],
    properties: {
      data: {
        type: 'object',
        required: ['accounts', 'transactions'],
        properties: { accounts: bigint('Accounts in the ledger.', 0), transactions: bigint('Transactions in the ledger.', 0) },
      },
    },
  },
  AggregatedBalances: {
    type: 'object',
    required: ['data'],
    properties: { data: { type: 'object', additionalProperties: { type: 'integer', format: 'bigint' }, description: 'Balance by asset.' } },
  },
  VolumesWithBalance: {
    type: 'object',
    required: ['account', 'asset', 'input', 'output', 'balance'],
    properties: {
      account: { type: 'string' },
      asset: { type: 'string' },
      input: bigint('Total received.', 0),
      output: bigint('Total sent.', 0),
      balance: bigint('input − output.'),
    },
  },
  VolumesPage: page('VolumesWithBalance', 'volumes by account and asset'),
  ServerInfo: {
    type: 'object',
    required: ['server', 'version'],
    properties: { server: { type: 'string', enum: ['tally'] }, version: { type: 'string' }, experimentalFeatures: { type: 'array', items: { type: 'string' } } },
  },
  Health: {
    type: 'object',
    required: ['status'],
    properties: {
      status: { type: 'string', enum: ['ok', 'failed'] },
      appliedIndex: bigint('Index of the last proposal applied to the store.', 0),
      reason: { type: 'string', description: 'Why the apply pipeline stopped (with `failed`).' },
    },
  },
  OpenApiDocument: { type: 'object', additionalProperties: true, description: 'This document.' },
}
