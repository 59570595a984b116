import type { AccountAddress, LedgerName, Metadata, TransactionId } from '../domain/index.ts'
import {
  describe,
  isJsonObject,
  parseAccountAddress,
  parseMetadata,
  parseMetadataKey,
  parsePostings,
  referenceLengthMax,
  TallyError,
  validationError,
} from '../domain/index.ts'
import type { CreateTransaction, RevertTransaction } from './order.ts'

/** Builds orders from v2 request bodies; every failure is a precise 400. */
export function parseCreateTransaction(ledger: LedgerName, body: unknown, options: { force?: boolean } = {}): CreateTransaction {
  if (!isJsonObject(body)) throw validationError(`body: expected a transaction object, got ${describe(body)}`)
  if (body.script !== undefined && body.script !== null) {
    throw new TallyError({
      code: 'COMPILATION_FAILED',
      kind: 'validation',
      message: 'Numscript transactions are not available in this build yet; send postings',
    })
  }
  if (body.postings === undefined) throw new TallyError({ code: 'NO_POSTINGS', kind: 'validation', message: 'postings: required' })
  const postings = parsePostings(body.postings)
  const force = parseBoolean(body.force, 'force') || options.force === true
  const metadata = parseMetadata(body.metadata, 'metadata')
  const accountMetadata = parseAccountMetadata(body.accountMetadata)
  const reference = parseReference(body.reference)
  const timestamp = parseTimestamp(body.timestamp, 'timestamp')
  return {
    type: 'CREATE_TRANSACTION',
    ledger,
    postings,
    ...(timestamp === undefined ? {} : { timestamp }),
    ...(reference === undefined ? {} : { reference }),
    metadata,
    accountMetadata,
    force,
  }
}

export function parseRevertTransaction(
  ledger: LedgerName,
  id: TransactionId,
  body: unknown,
  options: { force: boolean; atEffectiveDate: boolean },
): RevertTransaction {
  const metadata = body === undefined || body === null ? {} : isJsonObject(body) ? parseMetadata(body.metadata) : invalidBody(body)
  return { type: 'REVERT_TRANSACTION', ledger, id, force: options.force, atEffectiveDate: options.atEffectiveDate, metadata }
}

function invalidBody(body: unknown): never {
  throw validationError(`body: expected an object, got ${describe(body)}`)
}

export function parseAccountMetadata(value: unknown): Record<string, Metadata> {
  if (value === undefined || value === null) return {}
  if (!isJsonObject(value)) throw validationError(`accountMetadata: expected an object, got ${describe(value)}`)
  const result: Record<string, Metadata> = {}
  for (const address of Object.keys(value).sort()) {
    parseAccountAddress(address, `accountMetadata[${JSON.stringify(address)}]`)
    result[address] = parseMetadata(value[address], `accountMetadata[${JSON.stringify(address)}]`)
  }
  return result
}

export function parseReference(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value !== 'string') throw validationError(`reference: expected a string, got ${describe(value)}`)
  if (value.length > referenceLengthMax) throw validationError(`reference: longer than ${referenceLengthMax} characters`)
  return value
}

/** RFC 3339 in, normalised to UTC with milliseconds so dates order as strings. */
export function parseTimestamp(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw validationError(`${field}: expected an RFC 3339 date, got ${describe(value)}`)
  const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i
  const millis = Date.parse(value)
  if (!rfc3339.test(value) || Number.isNaN(millis)) throw validationError(`${field}: ${describe(value)} is not an RFC 3339 date`)
  return new Date(millis).toISOString()
}

export function parseBoolean(value: unknown, field: string): boolean {
  if (value === undefined || value === null) return false
  if (typeof value === 'boolean') return value
  throw validationError(`${field}: expected a boolean, got ${describe(value)}`)
}

export function parseTransactionId(value: unknown, field = 'id'): TransactionId {
  if (typeof value === 'bigint' && value >= 0n && value < 1n << 63n) return value
  if (typeof value === 'string' && /^[0-9]{1,19}$/.test(value)) {
    const id = BigInt(value)
    if (id < 1n << 63n) return id
  }
  throw validationError(`${field}: expected a transaction id (non-negative integer), got ${describe(value)}`)
}

export { parseAccountAddress, parseMetadata, parseMetadataKey }
export type { AccountAddress }
