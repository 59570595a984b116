import { validationError } from './errors.ts'
import { describe, lengthLimitError } from './names.ts'
import { isJsonObject } from './json.ts'

/** Metadata is string → string on transactions, accounts and ledgers. */
export type Metadata = Record<string, string>

export const metadataKeysMax = 1024
export const metadataKeyLengthMax = 1024
export const metadataValueLengthMax = 64 * 1024

/**
 * v2 clients sometimes send numbers or booleans as metadata values; Formance
 * v2 rejects non-strings, and so do we, naming the offending key.
 */
export function parseMetadata(value: unknown, field = 'metadata'): Metadata {
  if (value === undefined || value === null) return {}
  if (!isJsonObject(value)) throw validationError(`${field}: expected an object of strings, got ${describe(value)}`)
  const keys = Object.keys(value)
  if (keys.length > metadataKeysMax) throw validationError(`${field}: more than ${metadataKeysMax} keys`)
  const metadata: Metadata = {}
  for (const key of keys) {
    const entry = value[key]
    if (key.length === 0) throw validationError(`${field}: a key is empty; keys have 1 to ${metadataKeyLengthMax} characters`)
    if (key.length > metadataKeyLengthMax) throw lengthLimitError(field, `key ${describe(key)}`, key.length, metadataKeyLengthMax)
    if (typeof entry !== 'string') {
      throw validationError(`${field}[${JSON.stringify(key)}]: expected a string, got ${describe(entry)}`)
    }
    if (entry.length > metadataValueLengthMax) {
      throw lengthLimitError(`${field}[${JSON.stringify(key)}]`, 'value', entry.length, metadataValueLengthMax)
    }
    metadata[key] = entry
  }
  return metadata
}

export function parseMetadataKey(value: unknown, field = 'key'): string {
  if (typeof value === 'string' && value.length > metadataKeyLengthMax) throw lengthLimitError(field, 'metadata key', value.length, metadataKeyLengthMax)
  if (typeof value !== 'string' || value.length === 0) {
    throw validationError(`${field}: expected a metadata key of 1..${metadataKeyLengthMax} characters`)
  }
  return value
}

/** Keys sorted so that stored and hashed metadata is canonical. */
export function mergeMetadata(base: Metadata, update: Metadata): Metadata {
  const merged: Metadata = {}
  for (const key of [...new Set([...Object.keys(base), ...Object.keys(update)])].sort()) {
    merged[key] = (update[key] ?? base[key]) as string
  }
  return merged
}

export function withoutKey(base: Metadata, key: string): Metadata {
  const result: Metadata = {}
  for (const existing of Object.keys(base)) if (existing !== key) result[existing] = base[existing] as string
  return result
}
