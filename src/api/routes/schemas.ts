import type { FastifyInstance } from 'fastify'
import type { LedgerNode } from '../../server/index.ts'
import type { Json, Keyed, LedgerName } from '../../domain/index.ts'
import { canonicalJson, describe, emptyKeyed, isJsonObject, notFound, ownEntries, ownValue, parseJson, stringifyJson, validationError } from '../../domain/index.ts'
import type { QueryResource } from '../../orders/index.ts'
import { parseQueryParams, parseQueryResource, parseSchemaData, parseSchemaVersion, parseTimestamp, schemaView } from '../../orders/index.ts'
import { parseFilter } from '../../query/index.ts'
import type { Views } from '../views.ts'
import { parsePageRequest } from '../paging.ts'
import type { PageRequest } from '../paging.ts'
import type { Params, Query } from '../requests.ts'
import { expandOf, idempotencyKeyOf, ledgerParam, requestHash } from '../requests.ts'
import { noContent, submitOne } from '../writes.ts'
import { listVolumes, parseGroupBy } from '../aggregates.ts'

/**
 * Ledger schemas (`/v2/{ledger}/schemas…`) and query templates
 * (`/v2/{ledger}/queries/{id}/run`). Inserting a schema is an order like any
 * write (planned, logged, applied by the FSM, audited); reads come from the store.
 */
export function schemaRoutes(app: FastifyInstance, node: LedgerNode, views: Views): void {
  app.post('/v2/:ledger/schemas/:version', async (request, reply) => {
    const ledger = ledgerParam(request)
    const version = parseSchemaVersion((request.params as Params).version, 'version')
    const data = parseSchemaData(request.body)
    const key = idempotencyKeyOf(request)
    return submitOne(
      node,
      reply,
      { order: { type: 'INSERT_SCHEMA', ledger, version, data }, ...(key ? { idempotencyKey: key, requestHash: requestHash(['insert-schema', version, data]) } : {}) },
      noContent,
    )
  })

  app.get('/v2/:ledger/schemas/:version', async (request) => {
    const ledger = ledgerParam(request)
    const version = parseSchemaVersion((request.params as Params).version, 'version')
    return { data: schemaView(await views.schema(ledger, version)) }
  })

  app.get('/v2/:ledger/schemas', async (request) => {
    const ledger = ledgerParam(request)
    return { cursor: await views.listSchemas(ledger, parsePageRequest(request.query as Query, request.server.cursorKey)) }
  })

  app.post('/v2/:ledger/queries/:id/run', async (request) => {
    const ledger = ledgerParam(request)
    const query = request.query as Query
    const version = parseSchemaVersion(query.schemaVersion)
    const id = (request.params as Params).id ?? ''
    const schema = await views.schema(ledger, version)
    const templates = schema.data.queries
    const template = isJsonObject(templates) ? ownValue(templates, id) : undefined
    if (template === undefined || !isJsonObject(template)) throw notFound(`query template ${JSON.stringify(id)} not found in schema ${version}`)
    const run = runRequestOf(request.body)
    const templateParams = isJsonObject(template.params) ? template.params : undefined
    const resource = parseQueryResource(run.params.resource ?? template.resource ?? templateParams?.resource, 'params.resource')
    const page = pageRequestOf(request.server.cursorKey, query, template, run)
    // A later page takes its filter from the cursor, as any list does: the page never changes list.
    const input = page.cursor !== undefined ? cursorFilterInput(page) : filterInput(template, run.vars)
    const withFilter: PageRequest = input === undefined ? page : { ...page, options: { ...page.options, query: canonicalJson(input) } }
    return { cursor: await runList(node, views, ledger, resource, withFilter, input) }
  })
}

interface RunRequest {
  readonly params: Keyed<Json>
  readonly vars: Keyed<string>
  readonly cursor: string | undefined
}

/** The run's body: `{params?, vars?, cursor?}`, each validated. */
function runRequestOf(body: unknown): RunRequest {
  if (body === undefined || body === null) return { params: emptyKeyed(), vars: emptyKeyed(), cursor: undefined }
  if (!isJsonObject(body)) throw validationError(`body: expected {params?, vars?, cursor?}, got ${describe(body)}`)
  for (const key of Object.keys(body)) {
    if (key !== 'params' && key !== 'vars' && key !== 'cursor') throw validationError(`${key}: unknown field, expected params, vars or cursor`)
  }
  const params = body.params === undefined || body.params === null ? emptyKeyed<Json>() : parseQueryParams(body.params, 'params')
  const vars = emptyKeyed<string>()
  if (body.vars !== undefined && body.vars !== null) {
    if (!isJsonObject(body.vars)) throw validationError(`vars: expected an object, got ${describe(body.vars)}`)
    for (const [name, value] of ownEntries(body.vars)) {
      if (typeof value === 'string') vars[name] = value
      else if (typeof value === 'bigint' || typeof value === 'number' || typeof value === 'boolean') vars[name] = String(value)
      else throw validationError(`vars[${JSON.stringify(name)}]: expected a string, got ${describe(value)}`)
    }
  }
  if (body.cursor !== undefined && body.cursor !== null && typeof body.cursor !== 'string') throw validationError(`cursor: expected a string, got ${describe(body.cursor)}`)
  return { params, vars, cursor: typeof body.cursor === 'string' && body.cursor !== '' ? body.cursor : undefined }
}

/**
 * The list options a run pages with: the template's params, then the run's
 * body params, then the query string (later wins). A cursor carries them
 * for the following pages, as any list's cursor does.
 */
function pageRequestOf(cursorKey: Parameters<typeof parsePageRequest>[1], query: Query, template: { [key: string]: Json }, run: RunRequest): PageRequest {
  const options: Record<string, string> = {}
  const layer = (params: Json | undefined) => {
    if (!isJsonObject(params)) return
    for (const [key, value] of ownEntries(params)) {
      if (key === 'resource') continue
      if (typeof value === 'string' || typeof value === 'bigint' || typeof value === 'boolean') options[key] = String(value)
    }
  }
  layer(template.params)
  layer(run.params)
  for (const key of ['pageSize', 'cursor', 'expand', 'pit', 'sort', 'reverse', 'order', 'insertionDate', 'groupBy', 'startTime', 'endTime']) {
    const value = query[key]
    if (value !== undefined && value !== '') options[key] = value
  }
  if (run.cursor !== undefined) options.cursor = run.cursor
  return parsePageRequest(options, cursorKey)
}

/**
 * The template's filter with its variables filled in: `<name>` inside any
 * string of the body is replaced by the run's value, else the variable's
 * default (v2's substitution). A variable the template does not declare is refused.
 */
function filterInput(template: { [key: string]: Json }, given: Keyed<string>): Json | undefined {
  const declared = isJsonObject(template.vars) ? template.vars : emptyKeyed<Json>()
  const values = new Map<string, string>()
  for (const [name, spec] of ownEntries(declared)) {
    if (isJsonObject(spec) && spec.default !== undefined && spec.default !== null) {
      values.set(name, typeof spec.default === 'string' ? spec.default : stringifyJson(spec.default))
    }
  }
  for (const [name, value] of ownEntries(given)) {
    if (!Object.hasOwn(declared, name)) throw validationError(`vars[${JSON.stringify(name)}]: the query template declares no such variable`)
    values.set(name, value)
  }
  if (template.body === undefined || template.body === null) return undefined
  return substitute(template.body, values)
}

function substitute(value: Json, values: ReadonlyMap<string, string>): Json {
  if (typeof value === 'string') {
    return value.replace(/<([a-zA-Z_][a-zA-Z0-9_]*)>/g, (whole, name: string) => {
      const found = values.get(name)
      if (found === undefined) throw validationError(`vars[${JSON.stringify(name)}]: required by the query template (no value and no default)`)
      return found
    })
  }
  if (Array.isArray(value)) return value.map((item) => substitute(item, values))
  if (isJsonObject(value)) {
    const result = emptyKeyed<Json>()
    for (const [key, item] of ownEntries(value)) result[substitute(key, values) as string] = substitute(item, values)
    return result
  }
  return value
}

function cursorFilterInput(page: PageRequest): Json | undefined {
  const text = page.options.query
  return text === undefined ? undefined : parseJson(text)
}

/** The page of the template's resource; its filter is parsed for that resource (a 400 naming what it cannot filter on). */
async function runList(node: LedgerNode, views: Views, ledger: LedgerName, resource: QueryResource, page: PageRequest, input: Json | undefined) {
  switch (resource) {
    case 'transactions':
      return views.listTransactions(ledger, page, input === undefined ? undefined : parseFilter('transactions', input), expandOf(page.options))
    case 'accounts':
      return views.listAccounts(ledger, page, input === undefined ? undefined : parseFilter('accounts', input), expandOf(page.options))
    case 'logs':
      return views.listLogs(ledger, page, input === undefined ? undefined : parseFilter('logs', input))
    case 'volumes': {
      const options = page.options
      const insertionDate = options.insertionDate === 'true' || options.insertionDate === '1'
      const startTime = parseTimestamp(options.startTime, 'startTime')
      const endTime = parseTimestamp(options.endTime, 'endTime')
      const filter = input === undefined ? undefined : parseFilter('volumes', input)
      return listVolumes(node.store, views, ledger, filter, {
        ...(startTime === undefined ? {} : { startTime }),
        ...(endTime === undefined ? {} : { endTime }),
        insertionDate,
        groupBy: parseGroupBy(options.groupBy),
      }, page)
    }
    default: {
      const never: never = resource
      throw validationError(`unknown resource ${String(never)}`)
    }
  }
}
