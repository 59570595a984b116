/**
 * The string-building canonical encoder `src/domain/json.ts` had before
 * `writeCanonicalJson` became the one writer: kept, never changed, as the
 * oracle the property test holds the writer to (stored digests — request
 * hashes, revert hashes — must not move).
 */
import { InvariantViolation, PrintedJson } from '../../src/domain/index.ts'

export function canonicalJsonOracle(value: unknown): string {
  const text = write(value)
  if (text === undefined) throw new InvariantViolation('value has no JSON representation')
  return text
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
      if (value instanceof PrintedJson) throw new InvariantViolation('printed JSON inside a canonical value')
      if (Array.isArray(value)) {
        let text = '['
        for (let i = 0; i < value.length; i++) {
          if (i > 0) text += ','
          text += write(value[i]) ?? 'null'
        }
        return `${text}]`
      }
      const record = value as Record<string, unknown>
      const keys = Object.keys(record).sort()
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
      return undefined
  }
}
