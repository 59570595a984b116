import { InvariantViolation } from './errors.ts'
import { PrintedJson } from './json.ts'
import type { JsonBytes } from './json-bytes.ts'

/**
 * `canonicalJson(value)` written into `out` as UTF-8: the same bytes (keys
 * sorted, no whitespace, a bigint as its digits), without the string built
 * piece by piece and encoded again when it is hashed. For digests over
 * requests (an idempotency key's request hash: a `_bulk` may carry one per
 * element). Refuses what `canonicalJson` refuses, with the same message.
 */
export function writeCanonicalJson(out: JsonBytes, value: unknown): void {
  if (!writeValue(out, value)) throw new InvariantViolation('value has no JSON representation')
}

/** False, with nothing written, for what JSON skips (undefined, a function, a symbol). */
function writeValue(out: JsonBytes, value: unknown): boolean {
  switch (typeof value) {
    case 'string':
      out.string(value)
      return true
    case 'bigint':
      out.integer(value)
      return true
    case 'number':
      if (!Number.isFinite(value)) throw new InvariantViolation(`non-finite number ${value} has no JSON representation`)
      out.raw(JSON.stringify(value))
      return true
    case 'boolean':
      out.raw(value ? 'true' : 'false')
      return true
    case 'object': {
      if (value === null) {
        out.raw('null')
        return true
      }
      if (value instanceof PrintedJson) throw new InvariantViolation('printed JSON inside a canonical value')
      if (Array.isArray(value)) {
        out.raw('[')
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out.raw(',')
          if (!writeValue(out, value[i])) out.raw('null')
        }
        out.raw(']')
        return true
      }
      const record = value as Record<string, unknown>
      const keys = Object.keys(record)
      if (keys.length > 1) keys.sort()
      out.raw('{')
      let first = true
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string
        const entry = record[key]
        if (entry === undefined || typeof entry === 'function' || typeof entry === 'symbol') continue
        if (!first) out.raw(',')
        out.string(key)
        out.raw(':')
        writeValue(out, entry)
        first = false
      }
      out.raw('}')
      return true
    }
    default:
      return false // undefined, functions and symbols are skipped, as JSON.stringify does
  }
}
