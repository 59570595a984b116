import type { AccountAddress, Amount, Asset, Keyed, LedgerName, Metadata, Posting } from '../../src/domain/index.ts'
import {
  ASSET_PATTERN,
  TallyError,
  assetCodeLengthMax,
  assetPrecisionDigitsMax,
  assetSuffixLengthMax,
  describe,
  emptyKeyed,
  isAsset,
  isJsonObject,
  lengthLimitError,
  parseAccountAddress,
  parseAmount,
  postingsPerTransactionMax,
  validationError,
} from '../../src/domain/index.ts'
import type { CreateTransaction, CreateTransactionOptions } from '../../src/orders/index.ts'
import { parseAccountMetadata, parseBoolean, parseReference, parseTimestamp, scriptTemplateOf } from '../../src/orders/index.ts'
import { parseScript } from '../../src/orders/parse.ts'
import { parseMetadata } from '../../src/domain/index.ts'

/**
 * THE ORACLE: `parseCreateTransaction`, `parsePostings` and `parseAsset` as
 * they were before the bulk fast path (commit 519f612): every field name
 * built before it is needed, the asset's shape matched before it is checked,
 * the order assembled from spreads, and absent `accountMetadata` a new empty
 * map. Kept unchanged so the differential test can hold the new code to the
 * same orders (keys in the same order) and the same refusals.
 */
export function oracleParseCreateTransaction(ledger: LedgerName, body: unknown, options: CreateTransactionOptions = {}): CreateTransaction {
  if (!isJsonObject(body)) throw validationError(`body: expected a transaction object, got ${describe(body)}`)
  const template = scriptTemplateOf(body)
  const script = parseScript(body.script, template === undefined ? undefined : resolvedTemplate(template, options))
  const hasPostings = body.postings !== undefined && body.postings !== null && !(Array.isArray(body.postings) && body.postings.length === 0)
  if (script !== undefined && hasPostings) throw validationError('postings and script: send one or the other')
  if (script === undefined && (body.postings === undefined || body.postings === null)) {
    throw new TallyError({ code: 'NO_POSTINGS', kind: 'validation', message: 'postings: required (or a script)' })
  }
  const postings = script === undefined ? parsePostings(body.postings) : []
  const force = parseBoolean(body.force, 'force') || options.force === true
  const metadata = parseMetadata(body.metadata, 'metadata')
  const accountMetadata = body.accountMetadata === undefined || body.accountMetadata === null ? emptyKeyed<Metadata>() : (parseAccountMetadata(body.accountMetadata) as Keyed<Metadata>)
  const reference = parseReference(body.reference)
  const timestamp = parseTimestamp(body.timestamp, 'timestamp')
  return {
    type: 'CREATE_TRANSACTION',
    ledger,
    postings,
    ...(script === undefined ? {} : { script }),
    ...(template === undefined ? {} : { template }),
    ...(options.schemaVersion === undefined ? {} : { schemaVersion: options.schemaVersion }),
    ...(timestamp === undefined ? {} : { timestamp }),
    ...(reference === undefined ? {} : { reference }),
    metadata,
    accountMetadata,
    force,
  }
}

function resolvedTemplate(template: string, options: CreateTransactionOptions): string {
  if (options.schemaVersion === undefined) {
    throw new TallyError({ code: 'SCHEMA_NOT_SPECIFIED', kind: 'validation', message: `script.template: template ${JSON.stringify(template)} comes from a schema; name its version (schemaVersion)` })
  }
  if (options.templateScript === undefined) throw new Error('a caller parsing a template names its schema\'s templates')
  return options.templateScript(template)
}

function parsePostings(value: unknown, field = 'postings'): Posting[] {
  if (!Array.isArray(value)) throw validationError(`${field}: expected an array, got ${describe(value)}`)
  if (value.length > postingsPerTransactionMax) {
    throw validationError(`${field}: more than ${postingsPerTransactionMax} postings`)
  }
  return value.map((entry, i) => parsePosting(entry, `${field}[${i}]`))
}

function parsePosting(value: unknown, field: string): Posting {
  if (!isJsonObject(value)) throw validationError(`${field}: expected an object, got ${describe(value)}`)
  for (const key of Object.keys(value)) {
    if (key !== 'source' && key !== 'destination' && key !== 'amount' && key !== 'asset') {
      throw validationError(`${field}: unknown field ${JSON.stringify(key)}`)
    }
  }
  return {
    source: parseAccountAddress(value.source, `${field}.source`) as AccountAddress,
    destination: parseAccountAddress(value.destination, `${field}.destination`) as AccountAddress,
    amount: parseAmount(value.amount, `${field}.amount`) as Amount,
    asset: parseAsset(value.asset, `${field}.asset`),
  }
}

const ASSET_SHAPE = /^([A-Z][A-Z0-9]*)(?:_([A-Z]+))?(?:\/(\d+))?$/

function parseAsset(value: unknown, field = 'asset'): Asset {
  const shape = typeof value === 'string' ? ASSET_SHAPE.exec(value) : null
  if (shape !== null && !isAsset(value)) {
    const [, code = '', suffix = '', precision = ''] = shape
    if (code.length > assetCodeLengthMax) throw lengthLimitError(field, 'asset code', code.length, assetCodeLengthMax)
    if (suffix.length > assetSuffixLengthMax) throw lengthLimitError(field, 'asset suffix (after _)', suffix.length, assetSuffixLengthMax)
    if (precision.length > assetPrecisionDigitsMax) throw lengthLimitError(field, 'asset precision (after /)', precision.length, assetPrecisionDigitsMax)
  }
  if (!isAsset(value)) {
    throw validationError(`${field}: invalid asset ${describe(value)}, expected ${ASSET_PATTERN.source}`)
  }
  return value
}
