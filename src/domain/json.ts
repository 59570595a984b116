import { parse as losslessParse, stringify as losslessStringify } from 'lossless-json'
import { validationError, InvariantViolation } from './errors.ts'

/**
 * The lossless JSON codec for every body we read or write. The v2 wire format
 * carries amounts as JSON numbers that may exceed 2^53: integers parse to
 * `bigint` exactly, other numbers to `number`; `bigint` prints as a JSON
 * number. Node 20's JSON would silently round both ways.
 */
export type Json = null | boolean | number | bigint | string | Json[] | { [key: string]: Json }

const INTEGER = /^-?(0|[1-9][0-9]*)$/

function parseNumber(text: string): number | bigint {
  return INTEGER.test(text) ? BigInt(text) : Number(text)
}

export function parseJson(text: string): Json {
  try {
    return losslessParse(text, null, parseNumber) as Json
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    throw validationError(`malformed JSON: ${message}`)
  }
}

export function stringifyJson(value: unknown): string {
  const text = losslessStringify(value)
  if (text === undefined) throw new InvariantViolation('value has no JSON representation')
  return text
}

/**
 * Canonical encoding: object keys sorted, no whitespace, bigint as number.
 * Used wherever bytes are hashed, so equal values always hash equal.
 */
export function canonicalJson(value: unknown): string {
  return stringifyJson(sortKeys(value))
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value !== null && typeof value === 'object') {
    const source = value as Record<string, unknown>
    const sorted: Record<string, unknown> = {}
    for (const key of Object.keys(source).sort()) {
      const entry = source[key]
      if (entry !== undefined) sorted[key] = sortKeys(entry)
    }
    return sorted
  }
  return value
}

export function isJsonObject(value: unknown): value is { [key: string]: Json } {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
