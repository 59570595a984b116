import { validationError, InvariantViolation } from './errors.ts'
import { JsonParser, JsonSyntaxError } from './json-parser.ts'
import { ListedVolumes } from './volumes.ts'

export { JsonParser, JsonSyntaxError, jsonDepthMax } from './json-parser.ts'

/**
 * The lossless JSON codec for every body we read or write. The v2 wire format
 * carries amounts as JSON numbers that may exceed 2^53: integers parse to
 * `bigint` exactly, other numbers to `number`; `bigint` prints as a JSON
 * number. Node 20's JSON would silently round both ways. The parser is our
 * own (`json-parser.ts`): it can run in slices (the HTTP edge parses large
 * bodies that way, `src/api/json-body.ts`), and is faster than the library
 * it replaced.
 */
export type Json = null | boolean | number | bigint | string | Json[] | { [key: string]: Json }

export function parseJson(text: string): Json {
  const parser = new JsonParser(text)
  try {
    parser.step(Number.POSITIVE_INFINITY)
    return parser.result()
  } catch (error) {
    throw malformedJson(error)
  }
}

/** A parser failure as the codec reports it: a 400 VALIDATION "malformed JSON: …" for a syntax error. */
export function malformedJson(error: unknown): Error {
  if (!(error instanceof JsonSyntaxError)) return error instanceof Error ? error : new Error(String(error))
  return validationError(`malformed JSON: ${error.message}`)
}

/**
 * Prints JSON with `bigint` as a JSON number. Our own printer (not a
 * library's): it is on the hot path of every response, WAL entry and
 * store row, and this one is several times faster. Strings and finite
 * numbers print exactly as `JSON.stringify` prints them.
 */
export function stringifyJson(value: unknown): string {
  const text = write(value)
  if (text === undefined) throw new InvariantViolation('value has no JSON representation')
  return text
}

/**
 * JSON text already printed by a field-by-field printer (a transaction:
 * `printTransaction`), placed as it is where `stringifyJson` meets it, so a
 * list of transactions prints each one as every other answer does. Never
 * part of a canonical (hashed) value.
 */
export class PrintedJson {
  constructor(readonly text: string) {}
}

function write(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value)
    case 'bigint':
      return value.toString()
    case 'number':
      if (!Number.isFinite(value)) throw new InvariantViolation(`non-finite number ${value} has no JSON representation`)
      return JSON.stringify(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'object': {
      if (value === null) return 'null'
      if (value instanceof PrintedJson) return value.text
      // A write's commit volumes as its apply built them: printed as the map of the same volumes.
      if (value instanceof ListedVolumes) return write(value.toMap())
      if (Array.isArray(value)) {
        let text = '['
        for (let i = 0; i < value.length; i++) {
          if (i > 0) text += ','
          text += write(value[i]) ?? 'null'
        }
        return `${text}]`
      }
      const record = value as Record<string, unknown>
      const keys = Object.keys(record)
      let text = '{'
      let first = true
      for (const key of keys) {
        const entry = write(record[key])
        if (entry === undefined) continue
        text += `${first ? '' : ','}${JSON.stringify(key)}:${entry}`
        first = false
      }
      return `${text}}`
    }
    default:
      return undefined // undefined and functions are skipped, as JSON.stringify does
  }
}

export function isJsonObject(value: unknown): value is { [key: string]: Json } {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
