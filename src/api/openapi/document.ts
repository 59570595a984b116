import { componentSchemas, ref } from './schemas.ts'
import { operations, pathParameter } from './operations.ts'
import type { HttpMethod, OpenApiObject, OpenApiValue, Operation } from './types.ts'

/** `/v2/{ledger}/accounts/{address}` → `/v2/:ledger/accounts/:address` (fastify's form). */
export function routeUrlOf(path: string): string {
  return path.replace(/\{([^}]+)\}/g, ':$1')
}

/** `/v2/:ledger/accounts/:address` → `/v2/{ledger}/accounts/{address}`. */
export function openApiPathOf(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
}

export function pathParameterNames(path: string): string[] {
  return [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1] as string)
}

export interface DocumentOptions {
  readonly version: string
  /** Whether the app registered a route for this operation (explicitly: an automatic HEAD of a GET does not count). */
  readonly isServed: (method: HttpMethod, path: string) => boolean
}

const unavailable: OpenApiObject = {
  description:
    'Retryable unavailability: too many writes in flight (cache horizon), a plan that went stale repeatedly, or a stopped apply pipeline. ' +
    'Body `{errorCode: INTERNAL, errorMessage, details}` (as v2 answers its own overload), the reason leading `errorMessage` and in ' +
    '`details` (`{"reason": "CACHE_HORIZON_EXCEEDED" | "RESOURCE_EXHAUSTED" | "STALE_PROPOSAL" | "STALE_INPUTS" | "INTERNAL", ' +
    '"retryable": "true"}`); retry after `Retry-After` seconds. Nothing was applied.',
  headers: { 'Retry-After': { description: 'Seconds to wait before retrying (1).', schema: { type: 'integer', minimum: 1 } } },
  content: { 'application/json': { schema: ref('Error') } },
}

const notImplemented: OpenApiObject = {
  description:
    'Tally does not support this operation. Body `{errorCode: "INTERNAL", errorMessage: "NOT_IMPLEMENTED: …", details}`: v2 has no ' +
    'not-implemented code and its clients reject codes outside the v2 enum, so the reason leads the message and `details` (a JSON ' +
    'object as a string) carries `{"reason":"NOT_IMPLEMENTED","operationId":…}`. See docs/api-compatibility.md.',
  content: { 'application/json': { schema: ref('Error') } },
}

const error: OpenApiObject = {
  description: 'v2 error: 400 (validation and refused business operations), 404, 409, 412, 413, 500.',
  content: { 'application/json': { schema: ref('Error') } },
}

function operationObject(operation: Operation): OpenApiObject {
  const pathParameters = pathParameterNames(operation.path).map((name) => pathParameter(operation.path, name))
  const parameters: OpenApiValue[] = [...pathParameters, ...(operation.parameters ?? [])]
  const status = operation.status
  const responses: OpenApiObject =
    status.kind === 'unsupported'
      ? { '501': { $ref: '#/components/responses/NotImplemented' } }
      : { ...operation.responses, '503': { $ref: '#/components/responses/Unavailable' }, default: { $ref: '#/components/responses/Error' } }
  const notes = [
    operation.description,
    status.kind === 'served' && status.differences !== undefined ? `Differences from v2: ${status.differences}.` : undefined,
    status.kind === 'unsupported' ? `Not supported by Tally: ${status.reason}.` : undefined,
  ].filter((note): note is string => note !== undefined)
  return {
    operationId: operation.operationId,
    summary: operation.summary,
    ...(notes.length === 0 ? {} : { description: notes.join('\n\n') }),
    tags: [operation.tag],
    ...(parameters.length === 0 ? {} : { parameters }),
    ...(operation.requestBody === undefined || status.kind === 'unsupported' ? {} : { requestBody: operation.requestBody }),
    responses,
    'x-tally-status': status.kind === 'unsupported' ? 'unsupported' : 'served',
  }
}

/**
 * Tally's OpenAPI 3.0 document: the operations of the catalogue whose route
 * the app serves. A planned operation appears once its route exists, so the
 * document never lists a path that answers 404.
 */
export function buildOpenApiDocument(options: DocumentOptions): OpenApiObject {
  const paths: Record<string, Record<string, OpenApiValue>> = {}
  for (const operation of operations) {
    if (!options.isServed(operation.method, operation.path)) continue
    const item = (paths[operation.path] ??= {})
    item[operation.method] = operationObject(operation)
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'Tally',
      version: options.version,
      description:
        'A double-entry ledger server speaking the Formance Ledger v2 API. Every path below is served both as written (`/v2/…`, `/_/…`) ' +
        'and under the gateway prefix `/api/ledger` that Formance SDKs use. Amounts, volumes, balances and ids are exact JSON integers ' +
        '(`format: bigint`, up to 2^256 − 1 for amounts). Errors are `{errorCode, errorMessage, details?}` with v2 codes only; a 503 ' +
        'carries `Retry-After` and applied nothing. Operations Tally does not support answer 501. Compatibility table: docs/api-compatibility.md.',
    },
    servers: [
      { url: '/', description: 'Direct.' },
      { url: '/api/ledger', description: 'Gateway prefix used by Formance SDKs: the same operations.' },
    ],
    tags: [
      { name: 'server', description: 'Server information and health.' },
      { name: 'ledgers', description: 'Ledgers and their metadata.' },
      { name: 'transactions', description: 'Transactions, their metadata and reverts.' },
      { name: 'accounts', description: 'Accounts, their volumes and metadata.' },
      { name: 'aggregates', description: 'Balances and volumes over many accounts.' },
      { name: 'logs', description: 'The v2 log of each ledger, hash-chained.' },
      { name: 'bulk', description: 'Many writes in one request.' },
      { name: 'schemas', description: 'Ledger schemas: chart of accounts, transaction and query templates.' },
      { name: 'outputs', description: "Exporters (sinks) and pipelines streaming a ledger's logs to them." },
      { name: 'unsupported', description: 'v2 operations Tally answers with 501.' },
    ],
    paths,
    components: {
      schemas: componentSchemas,
      responses: { Error: error, Unavailable: unavailable, NotImplemented: notImplemented },
    },
  }
}
