import { hash } from 'node:crypto'
import type { Json } from '../domain/index.ts'
import { InvariantViolation, JsonBytes, asciiText, canonicalDate, isFixedWidthDate, isJsonObject, readInstant, validationError } from '../domain/index.ts'

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

/**
 * The hashed form is written once, as UTF-8 bytes, into this writer (`writeLog`), and SHA-256 reads
 * those bytes: no string per field and no encoding of a joined text. The string forms below
 * (`v2LogHashText`, `v2Memento`, the schema's parts) are the same bytes, decoded.
 */
const hashed = new JsonBytes(4 * 1024)

export function v2LogHash(previousHash: string, log: V2LogHashInput): string {
  const from = hashed.length
  try {
    if (previousHash !== '') {
      writeGoString(hashed, previousHash)
      hashed.raw('\n')
    }
    writeLog(hashed, log)
    // One-shot: once per appended log, where a Hash object and its updates cost more than hashing ~300 bytes.
    return hash('sha256', hashed.viewFrom(from), 'base64')
  } finally {
    hashed.discardFrom(from)
  }
}

/** The exact text hashed for one log (after the previous hash line), newline included. */
export function v2LogHashText(log: V2LogHashInput): string {
  return textOf((out) => writeLog(out, log))
}

/** The payload as v2 hashes it, Go-encoded. */
export function v2Memento(type: string, data: Json): string {
  return textOf((out) => writeMemento(out, type, data))
}

/** What `write` puts into the shared writer, as a string; the writer is left as it was (a nested call included). */
function textOf(write: (out: JsonBytes) => void): string {
  const from = hashed.length
  try {
    write(hashed)
  } catch (error) {
    hashed.discardFrom(from)
    throw error
  }
  return hashed.takeStringFrom(from)
}

const LOG_TYPE = asciiText('{"type":')
const LOG_DATA = asciiText(',"data":')
const LOG_DATE = asciiText(',"date":')
const LOG_KEY = asciiText(',"idempotencyKey":')
const LOG_END = asciiText(',"id":0,"hash":null')
const LOG_SCHEMA_VERSION = asciiText(',"schemaVersion":')

/** The one producer of the hashed form: `{"type":…,"data":MEMENTO,…}` and its newline. */
function writeLog(out: JsonBytes, log: V2LogHashInput): void {
  out.ascii(LOG_TYPE)
  writeGoString(out, log.type)
  out.ascii(LOG_DATA)
  writeMemento(out, log.type, log.data)
  out.ascii(LOG_DATE)
  writeGoDate(out, log.date)
  out.ascii(LOG_KEY)
  writeGoString(out, log.idempotencyKey ?? '')
  out.ascii(LOG_END)
  if (log.schemaVersion !== undefined && log.schemaVersion !== '') {
    out.ascii(LOG_SCHEMA_VERSION)
    writeGoString(out, log.schemaVersion)
  }
  out.ascii(CLOSE)
  out.raw('\n')
}

const NEW_TRANSACTION = asciiText('{"transaction":')
const ACCOUNT_METADATA = asciiText(',"accountMetadata":')
const REVERTED_ID = asciiText('{"revertedTransactionID":')
const TRANSACTION = asciiText(',"transaction":')
const TARGET_TYPE = asciiText('{"targetType":')
const TARGET_ID = asciiText(',"targetId":')
const METADATA = asciiText(',"metadata":')
const KEY = asciiText(',"key":')
const SCHEMA = asciiText('{"schema":')
const CLOSE = asciiText('}')

function writeMemento(out: JsonBytes, type: string, data: Json): void {
  if (!isJsonObject(data)) return writeGoValue(out, data)
  switch (type) {
    case 'NEW_TRANSACTION': {
      const transaction = data.transaction
      if (!isJsonObject(transaction)) return writeGoValue(out, data)
      out.ascii(NEW_TRANSACTION)
      writeTransactionResume(out, transaction)
      out.ascii(ACCOUNT_METADATA)
      writeGoValue(out, data.accountMetadata ?? null)
      return out.ascii(CLOSE)
    }
    case 'REVERTED_TRANSACTION': {
      const transaction = data.transaction
      const reverted = data.revertedTransaction
      const revertedId = data.revertedTransactionID ?? (isJsonObject(reverted) ? reverted.id : undefined)
      if (!isJsonObject(transaction) || revertedId === undefined) return writeGoValue(out, data)
      out.ascii(REVERTED_ID)
      writeGoValue(out, revertedId)
      out.ascii(TRANSACTION)
      writeTransactionResume(out, transaction)
      return out.ascii(CLOSE)
    }
    case 'SET_METADATA':
      out.ascii(TARGET_TYPE)
      writeGoValue(out, data.targetType ?? '')
      out.ascii(TARGET_ID)
      writeGoValue(out, data.targetId ?? null)
      out.ascii(METADATA)
      writeGoValue(out, data.metadata ?? null)
      return out.ascii(CLOSE)
    case 'DELETE_METADATA':
      out.ascii(TARGET_TYPE)
      writeGoValue(out, data.targetType ?? '')
      out.ascii(TARGET_ID)
      writeGoValue(out, data.targetId ?? null)
      out.ascii(KEY)
      writeGoValue(out, data.key ?? '')
      return out.ascii(CLOSE)
    case 'INSERTED_SCHEMA': {
      const schema = data.schema
      if (!isJsonObject(schema)) return writeGoValue(out, data)
      // Rare (one log per schema): its parts are built as text, then written.
      out.ascii(SCHEMA)
      out.utf8(schemaText(schema))
      return out.ascii(CLOSE)
    }
    default:
      return writeGoValue(out, data)
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

const POSTINGS = asciiText('{"postings":')
const NULL = asciiText('null')
const TIMESTAMP = asciiText(',"timestamp":')
const REFERENCE = asciiText(',"reference":')
const ID = asciiText(',"id":')
const REVERTED_FALSE = asciiText(',"reverted":false}')
const ZERO_TIME = asciiText('"0001-01-01T00:00:00Z"')

/** v2's `transactionResume`: `reverted` is never set in the memento, so it is always false. */
function writeTransactionResume(out: JsonBytes, transaction: { [key: string]: Json }): void {
  out.ascii(POSTINGS)
  const postings = transaction.postings
  if (Array.isArray(postings)) {
    out.ascii(OPEN_ARRAY)
    for (let i = 0; i < postings.length; i++) {
      if (i > 0) out.ascii(COMMA)
      writePosting(out, postings[i] as Json)
    }
    out.ascii(CLOSE_ARRAY)
  } else out.ascii(NULL)
  out.ascii(METADATA)
  writeGoValue(out, transaction.metadata ?? null)
  out.ascii(TIMESTAMP)
  if (typeof transaction.timestamp === 'string') writeGoDate(out, transaction.timestamp)
  else out.ascii(ZERO_TIME)
  if (typeof transaction.reference === 'string' && transaction.reference !== '') {
    out.ascii(REFERENCE)
    writeGoString(out, transaction.reference)
  }
  out.ascii(ID)
  writeGoValue(out, transaction.id ?? 0n)
  out.ascii(REVERTED_FALSE)
}

const SOURCE = asciiText('{"source":')
const DESTINATION = asciiText(',"destination":')
const AMOUNT = asciiText(',"amount":')
const ASSET = asciiText(',"asset":')

function writePosting(out: JsonBytes, posting: Json): void {
  if (!isJsonObject(posting)) return writeGoValue(out, posting)
  out.ascii(SOURCE)
  writeGoValue(out, posting.source ?? '')
  out.ascii(DESTINATION)
  writeGoValue(out, posting.destination ?? '')
  out.ascii(AMOUNT)
  writeGoValue(out, posting.amount ?? null)
  out.ascii(ASSET)
  writeGoValue(out, posting.asset ?? '')
  out.ascii(CLOSE)
}

// ---- Go's encoding/json -------------------------------------------------------

const OPEN_ARRAY = asciiText('[')
const CLOSE_ARRAY = asciiText(']')
const OPEN_OBJECT = asciiText('{')
const COMMA = asciiText(',')
const COLON = asciiText(':')
const TRUE = asciiText('true')
const FALSE = asciiText('false')

/** A generic value as Go encodes `any`, as text (the schema's parts). */
function goValue(value: Json): string {
  return textOf((out) => writeGoValue(out, value))
}

/** A generic value as Go encodes `any`: object keys in byte order of their UTF-8. */
function writeGoValue(out: JsonBytes, value: Json): void {
  switch (typeof value) {
    case 'string':
      return writeGoString(out, value)
    case 'bigint':
      return out.integer(value)
    case 'number':
      if (!Number.isFinite(value)) throw new InvariantViolation('non-finite number in a v2 log')
      return out.raw(JSON.stringify(value))
    case 'boolean':
      return out.ascii(value ? TRUE : FALSE)
    case 'object': {
      if (value === null) return out.ascii(NULL)
      if (Array.isArray(value)) {
        out.ascii(OPEN_ARRAY)
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out.ascii(COMMA)
          writeGoValue(out, value[i] as Json)
        }
        return out.ascii(CLOSE_ARRAY)
      }
      const keys = Object.keys(value)
      if (keys.length > 1) keys.sort(compareUtf8)
      out.ascii(OPEN_OBJECT)
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string
        if (i > 0) out.ascii(COMMA)
        writeGoString(out, key)
        out.ascii(COLON)
        writeGoValue(out, value[key] as Json)
      }
      return out.ascii(CLOSE)
    }
    default:
      throw new InvariantViolation(`value of type ${typeof value} in a v2 log`)
  }
}

/** `goString`, written: printable ASCII that neither JSON nor Go escapes goes in as it is, checked as it is copied. */
function writeGoString(out: JsonBytes, text: string): void {
  if (!out.htmlSafePlainString(text)) out.utf8(goString(text))
}

function isPlainAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit < 0x20 || unit > 0x7e || unit === 0x22 || unit === 0x5c || unit === 0x3c || unit === 0x3e || unit === 0x26) return false
  }
  return true
}

/** JSON.stringify escapes what Go escapes except the HTML-safe set and the JS line separators. */
export function goString(text: string): string {
  // Most strings the hash sees (addresses, assets, dates, keys) are printable ASCII that
  // neither JSON nor Go escapes: quoted as they are, without the printer and the regex.
  if (isPlainAscii(text)) return `"${text}"`
  return JSON.stringify(text).replace(/[<>&\u2028\u2029]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** Go sorts map keys as byte strings; UTF-16 order differs only around surrogates. */
export function compareUtf8(left: string, right: string): number {
  if (left === right) return 0
  return Buffer.compare(Buffer.from(left, 'utf8'), Buffer.from(right, 'utf8'))
}

// ---- dates --------------------------------------------------------------------

const QUOTE = asciiText('"')
const Z_QUOTE = asciiText('Z"')

/** The last date found fixed-width: a log's date and its transaction's timestamp are most often the same text. */
let lastFixedWidthDate = ''

/**
 * `goDate`, written: a fixed-width UTC date (the form Tally stores) is copied up to its fraction's trailing zeros, without a string.
 * Another form (a log's date, already in Go's form, whose fraction lost its trailing zeros) goes through `goDate`, which keeps its last answer.
 */
function writeGoDate(out: JsonBytes, text: string): void {
  if (text !== lastFixedWidthDate) {
    if (!isFixedWidthDate(text)) return writeGoString(out, goDate(text))
    lastFixedWidthDate = text
  }
  out.ascii(QUOTE)
  out.checkedAscii(text, fixedWidthDateEnd(text))
  out.ascii(Z_QUOTE)
}

/** Where a fixed-width date's Go form stops before its `Z`: trailing zeros of the fraction, and a bare dot, dropped. */
function fixedWidthDateEnd(text: string): number {
  let end = text.length - 1
  while (end > 20 && text.charCodeAt(end - 1) === 0x30) end--
  return end === 20 ? 19 : end
}

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

/** `goDate`'s last argument and answer: every log of a proposal has the proposal's date, and a log's date, already in Go's form, is converted again when hashed. */
let lastGoDateOf: string | undefined
let lastGoDate = ''

/** Go's `time.RFC3339Nano` of a UTC time: the fraction without trailing zeros, none when zero. */
export function goDate(text: string): string {
  if (text === lastGoDateOf) return lastGoDate
  const converted = goDateOf(text)
  lastGoDateOf = text
  lastGoDate = converted
  return converted
}

/** `goDate` without its memory of the last answer (a pure function of `text`, which the memory relies on). */
function goDateOf(text: string): string {
  // Already UTC with whole seconds at 0–19: only the fraction's trailing zeros (and a bare dot) go.
  if (isFixedWidthDate(text)) return `${text.slice(0, fixedWidthDateEnd(text))}Z`
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
