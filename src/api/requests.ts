import { hash } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { LedgerName } from '../domain/index.ts'
import { JsonBytes, canonicalJson, isJsonObject, parseJson, parseLedgerName, validationError, writeCanonicalJson } from '../domain/index.ts'
import type { Filter, Resource } from '../query/index.ts'
import { filterInputOf, parseFilter } from '../query/index.ts'
import type { PageRequest } from './paging.ts'
import { parsePageRequest } from './paging.ts'
import { optionalSchemaVersion, parseTimestamp } from '../orders/index.ts'
import type { Expand } from './views.ts'

export type Params = Record<string, string>
export type Query = Record<string, string | undefined>

export function ledgerParam(request: FastifyRequest): LedgerName {
  return parseLedgerName((request.params as Params).ledger, 'ledger')
}

/** v2 boolean query flags: "true"/"false"/"1"/"0"; anything else is a 400. */
export function queryFlag(request: FastifyRequest, name: string): boolean {
  const value = (request.query as Query)[name]
  if (value === undefined || value === '' || value === 'false' || value === '0') return false
  if (value === 'true' || value === '1') return true
  throw validationError(`${name}: expected true or false, got ${JSON.stringify(value)}`)
}

/** `schemaVersion` of a write, as `{schemaVersion}` to spread into its order (nothing when absent). */
export function schemaVersionOf(request: FastifyRequest): { schemaVersion?: string } {
  const version = optionalSchemaVersion((request.query as Query).schemaVersion)
  return version === undefined ? {} : { schemaVersion: version }
}

export const idempotencyKeyLengthMax = 256

export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  // Node keeps every sent Idempotency-Key under this name (repeats joined): absent here, none was sent.
  if (request.headers['idempotency-key'] === undefined) return undefined
  // Node joins repeated headers with ", "; two keys must not pass as one key "k1, k2".
  if (headerCount(request, 'idempotency-key') > 1) throw validationError('Idempotency-Key: sent more than once; send exactly one key')
  const value = request.headers['idempotency-key']
  if (value === undefined || value === '') return undefined
  if (typeof value !== 'string' || value.length > idempotencyKeyLengthMax) {
    throw validationError(`Idempotency-Key: expected one key of at most ${idempotencyKeyLengthMax} characters`)
  }
  return value
}

function headerCount(request: FastifyRequest, lowerCaseName: string): number {
  const raw = request.raw.rawHeaders
  let count = 0
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === lowerCaseName) count++
  return count
}

/**
 * base64url(sha256(canonical request)) — what "the same request" means for
 * an idempotency key. The canonical text is written as bytes and hashed in
 * one call (a `_bulk` may hash one request per element); the writer is
 * shared, used within this synchronous call.
 */
export function requestHash(parts: unknown): string {
  try {
    writeCanonicalJson(requestHashed, parts)
    return hash('sha256', requestHashed.viewFrom(0), 'base64url')
  } finally {
    requestHashed.discardFrom(0)
  }
}

const requestHashed = new JsonBytes()

const EXPANSIONS = ['volumes', 'effectiveVolumes'] as const

/** What a read without `pit` asks for most: no expansion, or `expand=volumes` alone (shared, never changed). */
const expandNone: Expand = Object.freeze({ volumes: false, effectiveVolumes: false })
const expandVolumes: Expand = Object.freeze({ volumes: true, effectiveVolumes: false })

/** `expand=volumes,effectiveVolumes` and `pit` (RFC 3339), validated. */
export function expandOf(options: Readonly<Record<string, string | undefined>>): Expand {
  // Every read parses this: the two common forms answer without splitting, mapping and filtering.
  if (options.pit === undefined) {
    const expand = options.expand
    if (expand === undefined || expand === '') return expandNone
    if (expand === 'volumes') return expandVolumes
  }
  const parts = (options.expand ?? '').split(',').map((part) => part.trim()).filter((part) => part !== '')
  for (const part of parts) {
    if (!(EXPANSIONS as readonly string[]).includes(part)) throw validationError(`expand: unknown expansion ${JSON.stringify(part)}, expected ${EXPANSIONS.join(' or ')}`)
  }
  const pit = parseTimestamp(options.pit, 'pit')
  return { volumes: parts.includes('volumes'), effectiveVolumes: parts.includes('effectiveVolumes'), ...(pit === undefined ? {} : { pit }) }
}

/**
 * The filter of a list or count request and the page request that carries
 * it: the first page takes it from the `query` parameter or the body (v2's
 * two transports); later pages from the cursor, so a page never changes list.
 */
export function listRequest<R extends Resource>(resource: R, request: FastifyRequest): { page: PageRequest; filter: Filter<R> | undefined } {
  const query = request.query as Record<string, string | undefined>
  const page = parsePageRequest(query, request.server.cursorKey)
  const input = page.cursor !== undefined ? parseCursorFilter(page.options.query) : filterInputOf({ query, body: request.body })
  if (input === undefined || (isJsonObject(input) && Object.keys(input).length === 0)) return { page: withoutQuery(page), filter: undefined }
  const filter = parseFilter(resource, input)
  return { page: { ...page, options: { ...page.options, query: canonicalJson(input) } }, filter }
}

/** A count takes its filter the same way, without paging. */
export function countFilter<R extends Resource>(resource: R, request: FastifyRequest): Filter<R> | undefined {
  const input = filterInputOf({ query: request.query as Record<string, string | undefined>, body: request.body })
  if (input === undefined || (isJsonObject(input) && Object.keys(input).length === 0)) return undefined
  return parseFilter(resource, input)
}

function parseCursorFilter(text: string | undefined): unknown {
  return text === undefined ? undefined : parseJson(text)
}

function withoutQuery(page: PageRequest): PageRequest {
  const { query: _query, ...options } = page.options
  return { ...page, options }
}
