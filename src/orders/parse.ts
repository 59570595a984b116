import type { Keyed, LedgerName, Metadata, TransactionId } from '../domain/index.ts'
import {
  describe,
  emptyKeyed,
  invariant,
  canonicalAccountMetadata,
  ownEntries,
  isJsonObject,
  lengthLimitError,
  parseAccountAddress,
  parseDate,
  parseMetadata,
  parsePostings,
  referenceLengthMax,
  TallyError,
  validationError,
} from '../domain/index.ts'
import type { CreateTransaction, RevertTransaction, TransactionScript } from './order.ts'
import { compileScript } from './script.ts'

/** Builds orders from v2 request bodies; every failure is a precise 400. */
export interface CreateTransactionOptions {
  readonly force?: boolean
  /** The schema version the transaction follows (`schemaVersion`). */
  readonly schemaVersion?: string
  /** The script of a transaction template of that schema (`script.template`), loaded by the caller. */
  readonly templateScript?: (template: string) => string
}

export function parseCreateTransaction(ledger: LedgerName, body: unknown, options: CreateTransactionOptions = {}): CreateTransaction {
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
  const accountMetadata = parseAccountMetadata(body.accountMetadata)
  const reference = parseReference(body.reference)
  const timestamp = parseTimestamp(body.timestamp, 'timestamp')
  // The common order (postings only) as one literal: a bulk builds one per element, and each spread
  // below is an object of its own. Same keys in the same order as the general form (the packed log
  // record follows the key order).
  if (script === undefined && template === undefined && options.schemaVersion === undefined && timestamp === undefined && reference === undefined) {
    return { type: 'CREATE_TRANSACTION', ledger, postings, metadata, accountMetadata, force }
  }
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

export function parseRevertTransaction(
  ledger: LedgerName,
  id: TransactionId,
  body: unknown,
  options: { force: boolean; atEffectiveDate: boolean },
): RevertTransaction {
  const metadata = body === undefined || body === null ? {} : isJsonObject(body) ? parseMetadata(body.metadata) : invalidBody(body)
  return { type: 'REVERT_TRANSACTION', ledger, id, force: options.force, atEffectiveDate: options.atEffectiveDate, metadata }
}

export const scriptLengthMax = 256 * 1024

/**
 * `script: {plain, vars}`. Compiled here so that parse and type errors are a
 * 400 before anything is proposed (INTERPRETER_PARSE / COMPILATION_FAILED,
 * with line and column). Variables are strings as in v2; integers and
 * `{amount, asset}` monetaries are accepted and written in Numscript's syntax.
 */
export function parseScript(value: unknown, templatePlain?: string): TransactionScript | undefined {
  if (value === undefined || value === null) return undefined
  if (!isJsonObject(value)) throw validationError(`script: expected {plain, vars}, got ${describe(value)}`)
  if (templatePlain !== undefined && value.plain !== undefined && value.plain !== null && value.plain !== '') {
    throw validationError('script: send script.plain or script.template, not both')
  }
  const plain = templatePlain ?? value.plain
  if (typeof plain !== 'string' || plain.trim() === '') throw validationError('script.plain: expected the Numscript source')
  if (plain.length > scriptLengthMax) throw lengthLimitError('script.plain', 'script', plain.length, scriptLengthMax)
  const vars = emptyKeyed<string>()
  if (value.vars !== undefined && value.vars !== null) {
    if (!isJsonObject(value.vars)) throw validationError(`script.vars: expected an object, got ${describe(value.vars)}`)
    for (const [name, raw] of ownEntries(value.vars)) vars[name] = scriptVariable(name, raw)
  }
  const script: TransactionScript = { plain, vars }
  compileScript(script)
  return script
}

/** Template names are at most this long in a schema (`parseSchemaData`): a longer one names nothing. */
const templateNameLengthMax = 128

/** `script.template`, when the body names one. */
export function scriptTemplateOf(body: { [key: string]: unknown }): string | undefined {
  const script = body.script
  if (!isJsonObject(script) || script.template === undefined || script.template === null || script.template === '') return undefined
  if (typeof script.template !== 'string') throw validationError(`script.template: expected a template name, got ${describe(script.template)}`)
  if (script.template.length > templateNameLengthMax) throw lengthLimitError('script.template', 'template name', script.template.length, templateNameLengthMax)
  return script.template
}

function resolvedTemplate(template: string, options: CreateTransactionOptions): string {
  if (options.schemaVersion === undefined) {
    throw new TallyError({ code: 'SCHEMA_NOT_SPECIFIED', kind: 'validation', message: `script.template: template ${JSON.stringify(template)} comes from a schema; name its version (schemaVersion)` })
  }
  invariant(options.templateScript !== undefined, 'a caller parsing a template names its schema\'s templates')
  return options.templateScript(template)
}

function scriptVariable(name: string, raw: unknown): string {
  if (typeof raw === 'string') return raw
  if (typeof raw === 'bigint') return raw.toString()
  if (isJsonObject(raw) && typeof raw.asset === 'string' && (typeof raw.amount === 'bigint' || typeof raw.amount === 'string')) {
    return `${raw.asset} ${String(raw.amount)}`
  }
  throw validationError(`script.vars[${JSON.stringify(name)}]: expected a string, got ${describe(raw)}`)
}

function invalidBody(body: unknown): never {
  throw validationError(`body: expected an object, got ${describe(body)}`)
}

/** `accountMetadata`: by address, addresses in sorted order, each map canonical. */
export function parseAccountMetadata(value: unknown): Keyed<Metadata> {
  // The one frozen empty map, as for `{}` (canonicalAccountMetadata): not a new dictionary per transaction.
  if (value === undefined || value === null) return canonicalAccountMetadata([])
  if (!isJsonObject(value)) throw validationError(`accountMetadata: expected an object, got ${describe(value)}`)
  const entries = ownEntries(value).map(([address, metadata]): [string, Metadata] => {
    const field = `accountMetadata[${JSON.stringify(address)}]`
    parseAccountAddress(address, field)
    return [address, parseMetadata(metadata, field)]
  })
  return canonicalAccountMetadata(entries)
}

export function parseReference(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value !== 'string') throw validationError(`reference: expected a string, got ${describe(value)}`)
  if (value.length > referenceLengthMax) throw lengthLimitError('reference', 'reference', value.length, referenceLengthMax)
  return value
}

/**
 * A date a request gives, in the one canonical text dates are stored and
 * compared in (`parseDate`: real calendar dates only, v2's microseconds).
 */
export function parseTimestamp(value: unknown, field: string): string | undefined {
  return parseDate(value, field)
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

