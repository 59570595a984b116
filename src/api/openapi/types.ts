/** The small part of OpenAPI 3.0 that Tally's document needs, as plain JSON values. */
export type OpenApiValue = string | number | boolean | null | readonly OpenApiValue[] | OpenApiObject
export interface OpenApiObject {
  readonly [key: string]: OpenApiValue
}

export type HttpMethod = 'get' | 'head' | 'post' | 'put' | 'delete'

export const httpMethods: readonly HttpMethod[] = ['get', 'head', 'post', 'put', 'delete']

/**
 * Where an operation stands in Tally:
 * - `served`: implemented, with `differences` from v2 spelled out when there are any;
 * - `planned`: not served yet, tracked by an issue; it enters the served document as soon as a route exists;
 * - `unsupported`: answers 501 (see `routes/unsupported.ts`) with `reason`.
 */
export type OperationStatus =
  | { readonly kind: 'served'; readonly differences?: string }
  | { readonly kind: 'planned'; readonly issue: number; readonly what: string }
  | { readonly kind: 'unsupported'; readonly reason: string }

export type OperationTag = 'server' | 'ledgers' | 'transactions' | 'accounts' | 'logs' | 'bulk' | 'aggregates' | 'schemas' | 'outputs' | 'unsupported'

export interface Operation {
  readonly method: HttpMethod
  /** OpenAPI path template, `/v2/{ledger}/…`; also served under `/api/ledger`. */
  readonly path: string
  /** v2's operationId for v2 operations (so a reader can match the spec), `tally…` for Tally's own. */
  readonly operationId: string
  readonly origin: 'v2' | 'tally'
  readonly tag: OperationTag
  readonly summary: string
  readonly description?: string
  readonly status: OperationStatus
  /** Query and header parameters; path parameters are derived from the template. */
  readonly parameters?: readonly OpenApiObject[]
  readonly requestBody?: OpenApiObject
  /** Success responses; error, 501 and 503 responses are added by the document builder. */
  readonly responses: OpenApiObject
}
