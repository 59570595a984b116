import type { Json } from '../domain/index.ts'
import { describe, parseJson, validationError } from '../domain/index.ts'
import type { Filter, Resource } from './ast.ts'
import { parseFilter } from './parse.ts'

/** The name of the URL parameter Formance's generated SDKs put the filter in. */
export const FILTER_QUERY_PARAMETER = 'query'

/** Longest `query` parameter accepted, in characters. */
export const filterQueryParameterLengthMax = 64 * 1024

export interface FilterRequest {
  /** The request's URL query values (a repeated parameter as an array). */
  readonly query: Readonly<Record<string, string | readonly string[] | undefined>>
  /** The body as the lossless JSON codec parsed it; `undefined` when empty. */
  readonly body: unknown
}

/**
 * The raw filter of a list/count request, as Formance v2 reads it
 * (`getQueryBuilder`): a non-empty `query` URL parameter holding JSON wins
 * (generated SDKs send it there, some as `{}`); otherwise the JSON body of
 * the GET/HEAD. `undefined` when there is neither.
 */
export function filterInputOf(request: FilterRequest): unknown {
  const parameter = request.query[FILTER_QUERY_PARAMETER]
  // Like Go's `URL.Query().Get`, the first of repeated values counts.
  const text = typeof parameter === 'string' ? parameter : parameter?.[0]
  if (text !== undefined && text.trim() !== '') {
    if (text.length > filterQueryParameterLengthMax) {
      throw validationError(`${FILTER_QUERY_PARAMETER}: filter longer than ${filterQueryParameterLengthMax} characters`, {
        path: FILTER_QUERY_PARAMETER,
      })
    }
    let parsed: Json
    try {
      parsed = parseJson(text)
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error)
      throw validationError(`${FILTER_QUERY_PARAMETER}: the filter parameter is not JSON (${reason})`, {
        path: FILTER_QUERY_PARAMETER,
        value: describe(text),
      })
    }
    return parsed
  }
  return request.body
}

/** `filterInputOf` then `parseFilter`: the filter a list/count request asks for. */
export function parseRequestFilter<R extends Resource>(resource: R, request: FilterRequest): Filter<R> {
  return parseFilter(resource, filterInputOf(request))
}
