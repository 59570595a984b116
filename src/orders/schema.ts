import type { AccountAddress, ChartAccount, Json, Keyed, LedgerName, LedgerRecord, Metadata, SchemaRecord } from '../domain/index.ts'
import {
  TallyError,
  canonicalAccountMetadata,
  canonicalJson,
  canonicalMetadata,
  compileChart,
  describe,
  emptyKeyed,
  findChartAccount,
  isJsonObject,
  lengthLimitError,
  mergeMetadata,
  notFound,
  ownEntries,
  ownValue,
  parseChart,
  parseDate,
  schemaKey,
  validationError,
  valueOfKind,
} from '../domain/index.ts'
import { checkTemplateBody, parseTemplateVariables } from '../query/index.ts'
import type { Scope } from './scope.ts'
import { readAccount } from './scope.ts'
import { compileScript } from './script.ts'

/** v2 names versions freely (`v1.0.0`); Tally bounds them to what a key and a URL carry plainly. */
export const SCHEMA_VERSION_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9._+-]{0,63}$/

/** A schema is read by every write that follows it: its canonical form is bounded in bytes. */
export const schemaBytesMax = 1024 * 1024

export const QUERY_RESOURCES = ['transactions', 'accounts', 'logs', 'volumes'] as const
export type QueryResource = (typeof QUERY_RESOURCES)[number]

export function parseSchemaVersion(value: unknown, field = 'schemaVersion'): string {
  if (typeof value !== 'string' || !SCHEMA_VERSION_PATTERN.test(value)) {
    throw validationError(`${field}: invalid schema version ${describe(value)}, expected ${SCHEMA_VERSION_PATTERN.source}`)
  }
  return value
}

/** `schemaVersion` as a write's query string gives it: absent or empty means none. */
export function optionalSchemaVersion(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined
  return parseSchemaVersion(value)
}

/**
 * `V2SchemaData` → its canonical form: `chart` (required, `parseChart`),
 * `transactions` (templates whose scripts must compile) and `queries`
 * (templates of list queries). Every refusal is a 400 naming the field.
 */
export function parseSchemaData(body: unknown): Keyed<Json> {
  if (!isJsonObject(body)) throw validationError(`body: expected a schema {chart, transactions?, queries?}, got ${describe(body)}`)
  for (const key of Object.keys(body)) {
    if (key !== 'chart' && key !== 'transactions' && key !== 'queries') throw validationError(`${key}: unknown field, expected chart, transactions or queries`)
  }
  if (body.chart === undefined || body.chart === null) throw validationError('chart: required (the chart of accounts)')
  const data = emptyKeyed<Json>()
  data.chart = parseChart(body.chart)
  if (body.transactions !== undefined && body.transactions !== null) data.transactions = parseTransactionTemplates(body.transactions)
  if (body.queries !== undefined && body.queries !== null) data.queries = parseQueryTemplates(body.queries)
  const bytes = Buffer.byteLength(canonicalJson(data), 'utf8')
  if (bytes > schemaBytesMax) throw lengthLimitError('body', 'schema (canonical JSON bytes)', bytes, schemaBytesMax)
  return canonicalSchemaData(data)
}

/**
 * The one form a schema is stored, logged and served in, whatever order its
 * keys arrived in (a request, or an order decoded from the WAL or the audit
 * chain): keys sorted at every depth, maps without prototype.
 */
export function canonicalSchemaData(data: { readonly [key: string]: Json }): Keyed<Json> {
  return sortedJson(data) as Keyed<Json>
}

function sortedJson(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortedJson)
  if (!isJsonObject(value)) return value
  const sorted = emptyKeyed<Json>()
  for (const key of Object.keys(value).sort()) sorted[key] = sortedJson(value[key] as Json)
  return sorted
}

const TEMPLATE_NAME = /^[a-zA-Z0-9_.-]{1,128}$/

function parseTransactionTemplates(value: Json): Keyed<Json> {
  if (!isJsonObject(value)) throw validationError(`transactions: expected templates by name, got ${describe(value)}`)
  const templates = emptyKeyed<Json>()
  for (const [name, template] of ownEntries(value)) {
    const field = `transactions[${JSON.stringify(name)}]`
    if (!TEMPLATE_NAME.test(name)) throw validationError(`${field}: invalid template name, expected ${TEMPLATE_NAME.source}`)
    if (!isJsonObject(template)) throw validationError(`${field}: expected {script, description?, runtime?}, got ${describe(template)}`)
    const parsed = emptyKeyed<Json>()
    for (const [key, entry] of ownEntries(template)) {
      if (key === 'script' || key === 'description') {
        if (typeof entry !== 'string') throw validationError(`${field}.${key}: expected a string, got ${describe(entry)}`)
        parsed[key] = entry
      } else if (key === 'runtime') {
        if (entry !== 'machine' && entry !== 'experimental-interpreter') throw validationError(`${field}.runtime: expected machine or experimental-interpreter, got ${describe(entry)}`)
        parsed[key] = entry
      } else {
        throw validationError(`${field}.${key}: unknown field, expected script, description or runtime`)
      }
    }
    if (typeof parsed.script !== 'string' || parsed.script.trim() === '') throw validationError(`${field}.script: required (the Numscript source)`)
    try {
      compileScript({ plain: parsed.script, vars: emptyKeyed() })
    } catch (error) {
      if (error instanceof TallyError) throw new TallyError({ code: error.code, kind: error.kind, message: `${field}.script: ${error.message}` })
      throw error
    }
    templates[name] = parsed
  }
  return templates
}

function parseQueryTemplates(value: Json): Keyed<Json> {
  if (!isJsonObject(value)) throw validationError(`queries: expected templates by id, got ${describe(value)}`)
  const templates = emptyKeyed<Json>()
  for (const [id, template] of ownEntries(value)) {
    const field = `queries[${JSON.stringify(id)}]`
    if (!TEMPLATE_NAME.test(id)) throw validationError(`${field}: invalid query id, expected ${TEMPLATE_NAME.source}`)
    if (!isJsonObject(template)) throw validationError(`${field}: expected {resource, params?, vars?, body?, description?}, got ${describe(template)}`)
    const parsed = emptyKeyed<Json>()
    for (const [key, entry] of ownEntries(template)) {
      switch (key) {
        case 'description':
          if (typeof entry !== 'string') throw validationError(`${field}.description: expected a string, got ${describe(entry)}`)
          parsed[key] = entry
          break
        case 'resource':
          parsed[key] = parseQueryResource(entry, `${field}.resource`)
          break
        case 'params':
          parsed[key] = parseQueryParams(entry, `${field}.params`)
          break
        case 'vars':
          parsed[key] = parseTemplateVariables(entry, `${field}.vars`)
          break
        case 'body':
          if (!isJsonObject(entry)) throw validationError(`${field}.body: expected a filter object, got ${describe(entry)}`)
          parsed[key] = entry
          break
        default:
          throw validationError(`${field}.${key}: unknown field, expected description, resource, params, vars or body`)
      }
    }
    const params = parsed.params
    const inParams = isJsonObject(params) ? params.resource : undefined
    if (parsed.resource === undefined && inParams === undefined) {
      throw validationError(`${field}.resource: required, here or in params.resource (${QUERY_RESOURCES.join(', ')})`)
    }
    if (parsed.resource !== undefined && inParams !== undefined && parsed.resource !== inParams) {
      throw validationError(`${field}.params.resource: ${describe(inParams)} differs from resource ${describe(parsed.resource)}`)
    }
    // v2 always records a template's resource beside its params: one canonical place for it.
    const resource = (parsed.resource ?? inParams) as QueryResource
    parsed.resource = resource
    if (parsed.body !== undefined) checkTemplateBody(resource, parsed.body, isJsonObject(parsed.vars) ? parsed.vars : emptyKeyed<Json>(), `${field}.body`)
    templates[id] = parsed
  }
  return templates
}

export function parseQueryResource(value: unknown, field: string): QueryResource {
  if (typeof value !== 'string' || !(QUERY_RESOURCES as readonly string[]).includes(value)) {
    throw validationError(`${field}: expected one of ${QUERY_RESOURCES.join(', ')}, got ${describe(value)}`)
  }
  return value as QueryResource
}

/** `V2QueryParams`: the list options a query runs with (a run's own params override them). */
export function parseQueryParams(value: unknown, field: string): Keyed<Json> {
  if (!isJsonObject(value)) throw validationError(`${field}: expected an object, got ${describe(value)}`)
  const params = emptyKeyed<Json>()
  for (const [key, entry] of ownEntries(value)) {
    const at = `${field}.${key}`
    switch (key) {
      case 'pageSize':
        if (typeof entry !== 'bigint' || entry < 1n || entry > 1000n) throw validationError(`${at}: expected an integer from 1 to 1000, got ${describe(entry)}`)
        params[key] = entry
        break
      case 'resource':
        params[key] = parseQueryResource(entry, at)
        break
      case 'pit':
        params[key] = parseDate(entry, at) ?? null
        break
      case 'cursor':
      case 'expand':
      case 'sort':
        if (typeof entry !== 'string') throw validationError(`${at}: expected a string, got ${describe(entry)}`)
        params[key] = entry
        break
      case 'insertionDate':
        if (typeof entry !== 'boolean') throw validationError(`${at}: expected a boolean, got ${describe(entry)}`)
        params[key] = entry
        break
      case 'groupBy':
        if (typeof entry !== 'bigint' || entry < 0n || entry > 1000n) throw validationError(`${at}: expected an integer from 0 to 1000, got ${describe(entry)}`)
        params[key] = entry
        break
      default:
        throw validationError(`${at}: unknown parameter, expected pageSize, cursor, expand, pit, sort, resource, insertionDate or groupBy`)
    }
  }
  return params
}

// ---- following a schema in the state machine --------------------------------------

/**
 * The schema a write follows, read through the gate: the version it names
 * (NOT_FOUND when the ledger has no such schema, naming the latest), or none
 * — refused with SCHEMA_NOT_SPECIFIED once the ledger has a schema, as v2
 * refuses it.
 */
export function followedSchema(scope: Scope, ledger: LedgerRecord, version: string | undefined): SchemaRecord | undefined {
  if (version === undefined) {
    if (ledger.latestSchemaVersion === undefined) return undefined
    throw new TallyError({
      code: 'SCHEMA_NOT_SPECIFIED',
      kind: 'validation',
      message: `ledger ${ledger.name} has a schema (latest ${ledger.latestSchemaVersion}): name the version this write follows (schemaVersion)`,
    })
  }
  const schema = valueOfKind(scope.read(schemaKey(ledger.name, version)), 's')
  if (schema === undefined) throw schemaNotFound(ledger.name, version, ledger.latestSchemaVersion)
  return schema
}

export function schemaNotFound(ledger: LedgerName, version: string, latest: string | undefined): TallyError {
  return notFound(`schema ${version} not found in ledger ${ledger}${latest === undefined ? ' (it has no schema)' : ` (latest: ${latest})`}`)
}

/**
 * Refuses, with the first account outside the chart, a write touching
 * accounts the schema does not allow; else the chart entry of each account.
 */
export function checkAccountsInChart(schema: SchemaRecord, accounts: Iterable<string>, what: string): Map<string, ChartAccount> {
  const chart = schema.data.chart
  if (!isJsonObject(chart)) throw validationError(`schema ${schema.version} has no chart`)
  const compiled = compileChart(chart)
  const entries = new Map<string, ChartAccount>()
  for (const account of accounts) {
    const found = findChartAccount(compiled, account)
    if ('refusal' in found) {
      throw new TallyError({
        code: 'VALIDATION',
        kind: 'validation',
        message: `${what} breaks schema ${schema.version}: ${found.refusal}`,
        details: { schemaVersion: schema.version, account },
      })
    }
    entries.set(account, found.account)
  }
  return entries
}

/**
 * The account metadata a write following a schema applies: for each account
 * it uses for the first time (no account row yet), its chart entry's
 * `.metadata` defaults, under whatever the write itself sets. Read through the
 * gate like the write's own account reads, so a replay applies the same.
 */
export function withChartDefaults(scope: Scope, ledger: LedgerName, chartAccounts: ReadonlyMap<string, ChartAccount>, given: Readonly<Keyed<Metadata>>): Keyed<Metadata> {
  const byAccount = new Map<string, Metadata>(ownEntries(given))
  for (const [address, entry] of chartAccounts) {
    if (entry.metadataDefaults.size === 0 || readAccount(scope, ledger, address as AccountAddress) !== undefined) continue
    byAccount.set(address, mergeMetadata(canonicalMetadata(entry.metadataDefaults), byAccount.get(address) ?? emptyKeyed<string>()))
  }
  return canonicalAccountMetadata(byAccount)
}

/** The script of a transaction template of `schema`, or a precise 400/404. */
export function templateScript(schema: SchemaRecord, template: string): string {
  const templates = schema.data.transactions
  const found = isJsonObject(templates) ? ownValue(templates, template) : undefined
  if (found === undefined) throw notFound(`transaction template ${JSON.stringify(template)} not found in schema ${schema.version}`)
  if (!isJsonObject(found) || typeof found.script !== 'string') throw validationError(`transaction template ${JSON.stringify(template)} of schema ${schema.version} has no script`)
  return found.script
}
