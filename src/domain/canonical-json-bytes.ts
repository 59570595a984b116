import { InvariantViolation } from './errors.ts'
import { PrintedJson } from './json.ts'
import { ListedVolumes } from './volumes.ts'
import { JsonBytes } from './json-bytes.ts'

/**
 * The canonical encoding, written into `out` as UTF-8: object keys sorted
 * (by UTF-16 code unit), no whitespace, a bigint as its digits, what JSON
 * skips skipped. Used wherever bytes are hashed or compared, so equal values
 * always hash equal: the one writer of it (`canonicalJson` is its text).
 * Writing bytes saves building a string piece by piece and encoding it
 * again when it is hashed (an idempotency key's request hash: a `_bulk` may
 * carry one per element).
 */
export function writeCanonicalJson(out: JsonBytes, value: unknown): void {
  if (!writeValue(out, value)) throw new InvariantViolation('value has no JSON representation')
}

/** The canonical encoding as text (`writeCanonicalJson`'s bytes, decoded). */
export function canonicalJson(value: unknown): string {
  try {
    writeCanonicalJson(canonicalText, value)
    return canonicalText.takeStringFrom(0)
  } catch (error) {
    canonicalText.discardFrom(0)
    throw error
  }
}

const canonicalText = new JsonBytes()

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
      if (value instanceof ListedVolumes) return writeValue(out, value.toMap())
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
