/*
 * The v2 log hash as it was built before the hashed form was written as bytes
 * (one string per field, joined, then hashed): kept, unchanged but for its
 * imports, as the oracle that the byte writer in src/audit/v2-log-hash.ts is
 * held to by the property test in v2-log-hash.test.ts.
 */
import { hash } from 'node:crypto'
import type { Json } from '../../src/domain/index.ts'
import { InvariantViolation, canonicalDate, isFixedWidthDate, isJsonObject, readInstant, validationError } from '../../src/domain/index.ts'

/**
 * Formance v2's log hash (v2's Go `Log.ComputeHash`): SHA-256 over a Go `json.Encoder` stream of
 *
 *   "<previous hash, base64>"\n          (absent for a ledger's first log)
 *   {"type":T,"data":MEMENTO,"date":D,"idempotencyKey":K,"id":0,"hash":null[,"schemaVersion":V]}\n
 *
 * where MEMENTO is the log payload reduced to what v2 hashes (`GetMemento`):
 * a transaction is `{postings, metadata, timestamp, reference?, id,
 * reverted: false}` (volumes and dates other than the timestamp excluded),
 * in Go's struct field order; maps (metadata) in Go's key order (UTF-8
 * bytes). Dates print as Go's RFC 3339 with trailing fractional zeros
 * trimmed (`2026-01-01T00:00:01Z`, `…:01.5Z`). Strings are escaped as Go's
 * encoder does (`<`, `>`, `&`, U+2028, U+2029 as \uXXXX).
 *
 * An INSERTED_SCHEMA payload is v2's `Schema` struct (`schemaText`).
 *
 * A payload that does not have its type's shape is hashed as a generic JSON
 * value (Go's encoding of `map[string]any`: keys sorted).
 */
export interface V2LogHashInput {
  readonly type: string
  readonly data: Json
  readonly date: string
  readonly idempotencyKey?: string
  readonly schemaVersion?: string
}

export function v2LogHash(previousHash: string, log: V2LogHashInput): string {
  const text = v2LogHashText(log)
  // One-shot: once per appended log, where a Hash object and its updates cost more than hashing ~300 bytes.
  return hash('sha256', previousHash === '' ? text : `${goString(previousHash)}\n${text}`, 'base64')
}

/** The exact text hashed for one log (after the previous hash line), newline included. */
export function v2LogHashText(log: V2LogHashInput): string {
  const schemaVersion = log.schemaVersion === undefined || log.schemaVersion === '' ? '' : `,"schemaVersion":${goString(log.schemaVersion)}`
  return (
    `{"type":${goString(log.type)},"data":${v2Memento(log.type, log.data)},"date":${goString(goDate(log.date))},` +
    `"idempotencyKey":${goString(log.idempotencyKey ?? '')},"id":0,"hash":null${schemaVersion}}\n`
  )
}

/** The payload as v2 hashes it, Go-encoded. */
export function v2Memento(type: string, data: Json): string {
  if (!isJsonObject(data)) return goValue(data)
  switch (type) {
    case 'NEW_TRANSACTION': {
      const transaction = data.transaction
      if (!isJsonObject(transaction)) return goValue(data)
      return `{"transaction":${transactionResume(transaction)},"accountMetadata":${goValue(data.accountMetadata ?? null)}}`
    }
    case 'REVERTED_TRANSACTION': {
      const transaction = data.transaction
      const reverted = data.revertedTransaction
      const revertedId = data.revertedTransactionID ?? (isJsonObject(reverted) ? reverted.id : undefined)
      if (!isJsonObject(transaction) || revertedId === undefined) return goValue(data)
      return `{"revertedTransactionID":${goValue(revertedId)},"transaction":${transactionResume(transaction)}}`
    }
    case 'SET_METADATA':
      return `{"targetType":${goValue(data.targetType ?? '')},"targetId":${goValue(data.targetId ?? null)},"metadata":${goValue(data.metadata ?? null)}}`
    case 'DELETE_METADATA':
      return `{"targetType":${goValue(data.targetType ?? '')},"targetId":${goValue(data.targetId ?? null)},"key":${goValue(data.key ?? '')}}`
    case 'INSERTED_SCHEMA': {
      const schema = data.schema
      if (!isJsonObject(schema)) return goValue(data)
      return `{"schema":${schemaText(schema)}}`
    }
    default:
      return goValue(data)
  }
}

// ---- INSERTED_SCHEMA: v2's `Schema` struct, as Go's encoder writes it ------------

/**
 * v2's `ledger.Schema` (`internal/schema.go`): the embedded `SchemaData`
 * first — `chart`, then `transactions` and `queries` (both omitted when
 * empty) — then `version` and `createdAt`. What v2 re-encodes from a log it
 * reads is what it hashes, so each part follows v2's own marshalling:
 */
function schemaText(schema: { [key: string]: Json }): string {
  const parts = [`"chart":${chartText(schema.chart ?? null)}`]
  const transactions = schema.transactions
  if (isJsonObject(transactions) && Object.keys(transactions).length > 0) parts.push(`"transactions":${goMap(transactions, transactionTemplateText)}`)
  const queries = schema.queries
  if (isJsonObject(queries) && Object.keys(queries).length > 0) parts.push(`"queries":${goMap(queries, queryTemplateText)}`)
  parts.push(`"version":${goString(typeof schema.version === 'string' ? schema.version : '')}`)
  parts.push(`"createdAt":${goString(typeof schema.createdAt === 'string' ? goDate(schema.createdAt) : '0001-01-01T00:00:00Z')}`)
  return `{${parts.join(',')}}`
}

/** A Go map of values: keys in byte order. */
function goMap(map: { [key: string]: Json }, text: (value: Json) => string): string {
  const keys = Object.keys(map).sort(compareUtf8)
  return `{${keys.map((key) => `${goString(key)}:${text(map[key] as Json)}`).join(',')}}`
}

/**
 * v2's `ChartOfAccounts` marshals segments back from what it parsed: sub-
 * segments (a variable one as `$label`, with its `.pattern`), and for an
 * account `.metadata` (each key `{default?}`) and `.self: {}` only when it
 * also has sub-segments; `.rules` is never written (v2 defines no rule).
 */
function chartText(chart: Json): string {
  if (chart === null) return '{}'
  if (!isJsonObject(chart)) return goValue(chart)
  return goMap(chart, chartSegmentText)
}

function chartSegmentText(segment: Json): string {
  if (!isJsonObject(segment)) return goValue(segment)
  const out = new Map<string, string>()
  let subsegments = 0
  for (const key of Object.keys(segment)) {
    if (key.startsWith('.')) continue
    subsegments++
    out.set(key, chartSegmentText(segment[key] as Json))
  }
  const isAccount = subsegments === 0 || Object.hasOwn(segment, '.self')
  const metadata = segment['.metadata']
  if (isAccount && isJsonObject(metadata)) out.set('.metadata', goMap(metadata, chartMetadataText))
  if (isAccount && subsegments > 0) out.set('.self', '{}')
  if (typeof segment['.pattern'] === 'string') out.set('.pattern', goString(segment['.pattern']))
  const keys = [...out.keys()].sort(compareUtf8)
  return `{${keys.map((key) => `${goString(key)}:${out.get(key) as string}`).join(',')}}`
}

/** `ChartAccountMetadata{Default *string \`json:"default,omitempty"\`}`. */
function chartMetadataText(entry: Json): string {
  return isJsonObject(entry) && typeof entry.default === 'string' ? `{"default":${goString(entry.default)}}` : '{}'
}

/** `TransactionTemplate{description, script, runtime,omitempty}`: the description is written even when empty. */
function transactionTemplateText(template: Json): string {
  if (!isJsonObject(template)) return goValue(template)
  const description = typeof template.description === 'string' ? template.description : ''
  const script = typeof template.script === 'string' ? template.script : ''
  const runtime = typeof template.runtime === 'string' && template.runtime !== '' ? `,"runtime":${goString(template.runtime)}` : ''
  return `{"description":${goString(description)},"script":${goString(script)}${runtime}}`
}

/**
 * `QueryTemplate{description,omitempty; resource; params,omitempty;
 * vars,omitempty; body,omitempty}`. `params` and `body` are raw JSON in v2:
 * written back as read, keys in the order the log has them; each variable is
 * `{type, default,omitempty}`.
 */
function queryTemplateText(template: Json): string {
  if (!isJsonObject(template)) return goValue(template)
  const parts: string[] = []
  if (typeof template.description === 'string' && template.description !== '') parts.push(`"description":${goString(template.description)}`)
  parts.push(`"resource":${goString(typeof template.resource === 'string' ? template.resource : '')}`)
  if (template.params !== undefined) parts.push(`"params":${goRaw(template.params)}`)
  const vars = template.vars
  if (isJsonObject(vars) && Object.keys(vars).length > 0) parts.push(`"vars":${goMap(vars, variableText)}`)
  if (template.body !== undefined) parts.push(`"body":${goRaw(template.body)}`)
  return `{${parts.join(',')}}`
}

function variableText(declaration: Json): string {
  if (!isJsonObject(declaration)) return `{"type":${goString(typeof declaration === 'string' ? declaration : '')}}`
  const type = `"type":${goString(typeof declaration.type === 'string' ? declaration.type : '')}`
  return declaration.default === undefined || declaration.default === null ? `{${type}}` : `{${type},"default":${goValue(declaration.default)}}`
}

/** A Go `json.RawMessage` re-encoded: compacted, HTML-escaped, object keys in the order written. */
function goRaw(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(goRaw).join(',')}]`
  if (isJsonObject(value)) return `{${Object.keys(value).map((key) => `${goString(key)}:${goRaw(value[key] as Json)}`).join(',')}}`
  return goValue(value)
}

/** v2's `transactionResume`: `reverted` is never set in the memento, so it is always false. */
function transactionResume(transaction: { [key: string]: Json }): string {
  const postings = transaction.postings
  const postingsText = Array.isArray(postings) ? `[${postings.map(postingText).join(',')}]` : 'null'
  const timestamp = typeof transaction.timestamp === 'string' ? goDate(transaction.timestamp) : '0001-01-01T00:00:00Z'
  const reference = typeof transaction.reference === 'string' && transaction.reference !== '' ? `,"reference":${goString(transaction.reference)}` : ''
  return `{"postings":${postingsText},"metadata":${goValue(transaction.metadata ?? null)},"timestamp":${goString(timestamp)}${reference},"id":${goValue(transaction.id ?? 0n)},"reverted":false}`
}

function postingText(posting: Json): string {
  if (!isJsonObject(posting)) return goValue(posting)
  return `{"source":${goValue(posting.source ?? '')},"destination":${goValue(posting.destination ?? '')},"amount":${goValue(posting.amount ?? null)},"asset":${goValue(posting.asset ?? '')}}`
}

// ---- Go's encoding/json -------------------------------------------------------

/** A generic value as Go encodes `any`: object keys in byte order of their UTF-8. */
function goValue(value: Json): string {
  switch (typeof value) {
    case 'string':
      return goString(value)
    case 'bigint':
      return value.toString()
    case 'number':
      if (!Number.isFinite(value)) throw new InvariantViolation('non-finite number in a v2 log')
      return JSON.stringify(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'object': {
      if (value === null) return 'null'
      if (Array.isArray(value)) return `[${value.map(goValue).join(',')}]`
      const keys = Object.keys(value).sort(compareUtf8)
      return `{${keys.map((key) => `${goString(key)}:${goValue(value[key] as Json)}`).join(',')}}`
    }
    default:
      throw new InvariantViolation(`value of type ${typeof value} in a v2 log`)
  }
}

/** JSON.stringify escapes what Go escapes except the HTML-safe set and the JS line separators. */
export function goString(text: string): string {
  // Most strings the hash sees (addresses, assets, dates, keys) are printable ASCII that
  // neither JSON nor Go escapes: quoted as they are, without the printer and the regex.
  let plain = true
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit < 0x20 || unit > 0x7e || unit === 0x22 || unit === 0x5c || unit === 0x3c || unit === 0x3e || unit === 0x26) {
      plain = false
      break
    }
  }
  if (plain) return `"${text}"`
  return JSON.stringify(text).replace(/[<>&\u2028\u2029]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** Go sorts map keys as byte strings; UTF-16 order differs only around surrogates. */
export function compareUtf8(left: string, right: string): number {
  if (left === right) return 0
  return Buffer.compare(Buffer.from(left, 'utf8'), Buffer.from(right, 'utf8'))
}

// ---- dates --------------------------------------------------------------------

interface ParsedDate {
  /** `YYYY-MM-DDTHH:MM:SS` in UTC. */
  readonly seconds: string
  /** Fraction of a second, exactly 9 digits. */
  readonly nanos: string
}

/** Through the domain's parser: an impossible date (`2021-02-29`) names no instant here either. */
function parseRfc3339(text: string): ParsedDate | undefined {
  const read = readInstant(text)
  if ('error' in read) return undefined
  const nanosOfSecond = ((read.nanos % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n
  const whole = canonicalDate(read.nanos - nanosOfSecond)
  if (whole === undefined) return undefined
  return { seconds: whole.slice(0, 19), nanos: String(nanosOfSecond).padStart(9, '0') }
}

/** Go's `time.RFC3339Nano` of a UTC time: the fraction without trailing zeros, none when zero. */
export function goDate(text: string): string {
  if (isFixedWidthDate(text)) {
    // Already UTC with whole seconds at 0–19: only the fraction's trailing zeros (and a bare dot) go.
    let end = text.length - 1
    while (end > 20 && text.charCodeAt(end - 1) === 0x30) end--
    return `${text.slice(0, end === 20 ? 19 : end)}Z`
  }
  const parsed = parseRfc3339(text)
  if (parsed === undefined) throw new InvariantViolation(`not an RFC 3339 date: ${JSON.stringify(text)}`)
  const fraction = parsed.nanos.replace(/0+$/, '')
  return `${parsed.seconds}${fraction === '' ? '' : `.${fraction}`}Z`
}

/**
 * A v2 date (microsecond precision) as Tally stores dates: `toISOString`'s
 * millisecond form when the date falls on a millisecond, else six digits, so
 * both our own exports and v2's round-trip to the same instant and hash.
 */
export function importedDate(text: string, field: string): string {
  const read = readInstant(text)
  if ('error' in read) throw validationError(`${field}: ${JSON.stringify(text)} is not a date: ${read.error}`)
  // Refused, not rounded (as a request's date is): the imported hash covers the date as written.
  if (read.nanos % 1000n !== 0n) throw validationError(`${field}: ${JSON.stringify(text)} is finer than v2's microsecond precision`)
  const canonical = canonicalDate(read.nanos)
  if (canonical === undefined) throw validationError(`${field}: ${JSON.stringify(text)} is outside years 0000–9999`)
  return canonical
}
