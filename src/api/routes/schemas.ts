import type { FastifyInstance } from 'fastify'
import type { LedgerNode } from '../../server/index.ts'
import type { Json, Keyed, LedgerName } from '../../domain/index.ts'
import { canonicalJson, describe, emptyKeyed, isJsonObject, notFound, ownEntries, ownValue, parseJson, validationError } from '../../domain/index.ts'
import type { QueryResource } from '../../orders/index.ts'
import { parseQueryParams, parseQueryResource, parseSchemaData, parseSchemaVersion, parseTimestamp, schemaView } from '../../orders/index.ts'
import { fillTemplate, parseFilter, templateValues } from '../../query/index.ts'
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
    const resource = parseQueryResource(template.resource ?? templateParams?.resource, 'resource')
    if (run.params.resource !== undefined && run.params.resource !== resource) {
      throw validationError(`params.resource: the query template runs on ${resource}, not ${String(run.params.resource)}`)
    }
    const page = pageRequestOf(request.server.cursorKey, query, template, run)
    // A later page takes its filter from the cursor, as any list does: the page never changes list.
    const input = page.cursor !== undefined ? cursorFilterInput(page) : filterInput(resource, template, run.vars)
    const withFilter: PageRequest = input === undefined ? page : { ...page, options: { ...page.options, query: canonicalJson(input) } }
    // v2 names the resource beside the page, so a client can tell which list it got.
    return { resource, cursor: await runList(node, views, ledger, resource, withFilter, input) }
  })
}

interface RunRequest {
  readonly params: Keyed<Json>
  readonly vars: Json | undefined
  readonly cursor: string | undefined
}

/** The run's body: `{params?, vars?, cursor?}`, each validated. */
function runRequestOf(body: unknown): RunRequest {
  if (body === undefined || body === null) return { params: emptyKeyed(), vars: undefined, cursor: undefined }
  if (!isJsonObject(body)) throw validationError(`body: expected {params?, vars?, cursor?}, got ${describe(body)}`)
  for (const key of Object.keys(body)) {
    if (key !== 'params' && key !== 'vars' && key !== 'cursor') throw validationError(`${key}: unknown field, expected params, vars or cursor`)
  }
  const params = body.params === undefined || body.params === null ? emptyKeyed<Json>() : parseQueryParams(body.params, 'params')
  if (body.vars !== undefined && body.vars !== null && !isJsonObject(body.vars)) throw validationError(`vars: expected an object, got ${describe(body.vars)}`)
  const vars = body.vars === null ? undefined : body.vars
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
 * The template's filter with its variables filled in (`src/query/template.ts`):
 * each declared variable takes the run's value, else its default; a
 * variable the template does not declare, a value of the wrong type, or a
 * placeholder with neither value nor default is a 400 naming it.
 */
function filterInput(resource: QueryResource, template: { [key: string]: Json }, given: Json | undefined): Json | undefined {
  const declared = isJsonObject(template.vars) ? template.vars : emptyKeyed<Json>()
  const values = templateValues(declared, given)
  if (template.body === undefined || template.body === null) return undefined
  return fillTemplate(resource, template.body, declared, values)
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
