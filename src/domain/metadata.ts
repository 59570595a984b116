import { validationError } from './errors.ts'
import { describe, lengthLimitError } from './names.ts'
import { isJsonObject } from './json.ts'
import { canonicalJson } from './canonical-json-bytes.ts'
import type { Json } from './json.ts'
import { invariant } from './errors.ts'
import { emptyKeyed, keyedFrom, ownEntries, ownValue } from './keyed.ts'
import type { Keyed } from './keyed.ts'

/**
 * Metadata is string → string on transactions, accounts and ledgers. Every
 * value of this type is in the canonical form `canonicalMetadata` builds: no
 * prototype (a key `__proto__` or `constructor` is data like any other) and
 * keys inserted in sorted order, so that what the FSM stores, logs and hashes
 * and what the checker's replay rebuilds print the same bytes, whatever order
 * a client sent the keys in.
 */
export type Metadata = Keyed<string>

/**
 * Bounds on the metadata of ONE transaction, account or ledger as stored
 * (whatever number of requests built it), and on one request's metadata.
 * They bound the rows that carry metadata, so that a row always fits, as a
 * seed, in the log record a proposal travels in (admission refuses a
 * proposal that would not fit instead of logging it).
 */
export const metadataKeysMax = 1024
/** Size of the canonical JSON encoding of the whole map, in UTF-8 bytes. */
export const metadataBytesMax = 256 * 1024
export const metadataKeyLengthMax = 1024
export const metadataValueLengthMax = 64 * 1024

/**
 * Empty metadata, the most common by far: one frozen map rather than a new
 * one per transaction (a map without prototype is a dictionary in V8, ~200
 * bytes even empty). Metadata is never changed in place: every change builds
 * a new map, and the freeze makes a write into this one throw.
 */
const EMPTY_METADATA: Metadata = Object.freeze(emptyKeyed<string>())
const EMPTY_ACCOUNT_METADATA: Keyed<Metadata> = Object.freeze(emptyKeyed<Metadata>())

/**
 * Whether `map` is the one empty account-metadata map `canonicalAccountMetadata`
 * gives a write that names none (most writes): its readers skip their per-account
 * lookups. Another empty map is simply not recognised (its lookups find nothing).
 */
export function isSharedEmptyAccountMetadata(map: Readonly<Keyed<Metadata>>): boolean {
  return map === EMPTY_ACCOUNT_METADATA
}

/** The one canonical form of metadata (see `Metadata`). */
export function canonicalMetadata(entries: Iterable<readonly [string, string]>): Metadata {
  // Entries already in canonical order (keys strictly ascending, so no key
  // twice: none at all, one, or a stored map's own entries, the usual case
  // on the apply path) are copied as they come, without a map and a sort.
  if (inCanonicalOrder(entries)) {
    if (entries.length === 0) return EMPTY_METADATA
    const metadata = emptyKeyed<string>()
    for (const [key, value] of entries) metadata[key] = value
    return metadata
  }
  const byKey = new Map<string, string>()
  for (const [key, value] of entries) byKey.set(key, value)
  const metadata = emptyKeyed<string>()
  for (const key of [...byKey.keys()].sort()) metadata[key] = byKey.get(key) as string
  return metadata
}

/** An array whose keys are strictly ascending (as `Array#sort` orders strings): no key twice, nothing to reorder. */
function inCanonicalOrder<V>(entries: Iterable<readonly [string, V]>): entries is readonly (readonly [string, V])[] {
  if (!Array.isArray(entries)) return false
  const list = entries as readonly (readonly [string, V])[]
  for (let i = 1; i < list.length; i++) {
    if (!((list[i - 1] as readonly [string, V])[0] < (list[i] as readonly [string, V])[0])) return false
  }
  return true
}

/** The value stored under `key`, never an inherited property. */
export function metadataValue(metadata: Metadata, key: string): string | undefined {
  return ownValue(metadata, key)
}

/**
 * v2 clients sometimes send numbers or booleans as metadata values; Formance
 * v2 rejects non-strings, and so do we, naming the offending key.
 */
export function parseMetadata(value: unknown, field = 'metadata'): Metadata {
  if (value === undefined || value === null) return canonicalMetadata([])
  if (!isJsonObject(value)) throw validationError(`${field}: expected an object of strings, got ${describe(value)}`)
  const entries = ownEntries<Json>(value)
  if (entries.length > metadataKeysMax) throw validationError(`${field}: more than ${metadataKeysMax} keys`)
  for (const [key, entry] of entries) {
    if (key.length === 0) throw validationError(`${field}: a key is empty; keys have 1 to ${metadataKeyLengthMax} characters`)
    if (key.length > metadataKeyLengthMax) throw lengthLimitError(field, `key ${describe(key)}`, key.length, metadataKeyLengthMax)
    if (typeof entry !== 'string') {
      throw validationError(`${field}[${JSON.stringify(key)}]: expected a string, got ${describe(entry)}`)
    }
    if (entry.length > metadataValueLengthMax) {
      throw lengthLimitError(`${field}[${JSON.stringify(key)}]`, 'value', entry.length, metadataValueLengthMax)
    }
  }
  return boundedMetadata(canonicalMetadata(entries as [string, string][]), field)
}

/**
 * `metadata` when it is within the stored bounds (`metadataKeysMax`,
 * `metadataBytesMax`); otherwise a 400 naming the limit.
 */
export function boundedMetadata(metadata: Metadata, field = 'metadata'): Metadata {
  const keys = Object.keys(metadata).length
  if (keys === 0) return metadata // "{}": within every bound
  if (keys > metadataKeysMax) {
    throw validationError(`${field}: ${keys} keys, over the limit of ${metadataKeysMax} metadata keys per transaction, account or ledger`)
  }
  const bytes = Buffer.byteLength(canonicalJson(metadata), 'utf8')
  if (bytes > metadataBytesMax) {
    throw validationError(`${field}: ${bytes} bytes, over the limit of ${metadataBytesMax} bytes of metadata per transaction, account or ledger (JSON-encoded)`)
  }
  return metadata
}

/** Metadata as it will be stored: canonical, and within the per-entity bounds (else a 400). */
export function storedMetadata(metadata: Metadata, field = 'metadata'): Metadata {
  return boundedMetadata(canonicalMetadata(ownEntries(metadata)), field)
}

/** Metadata read back from a row or a log we wrote: canonical again, or an invariant violation. */
export function decodeMetadata(value: unknown, what: string): Metadata {
  invariant(value !== null && typeof value === 'object' && !Array.isArray(value), () => `${what}: metadata is not an object`)
  const entries = ownEntries(value as Keyed<unknown>)
  for (const [key, entry] of entries) invariant(typeof entry === 'string', () => `${what}: metadata ${JSON.stringify(key)} is not a string`)
  return canonicalMetadata(entries as [string, string][])
}

export function parseMetadataKey(value: unknown, field = 'key'): string {
  if (typeof value === 'string' && value.length > metadataKeyLengthMax) throw lengthLimitError(field, 'metadata key', value.length, metadataKeyLengthMax)
  if (typeof value !== 'string' || value.length === 0) {
    throw validationError(`${field}: expected a metadata key of 1..${metadataKeyLengthMax} characters`)
  }
  return value
}

/**
 * `update` over `base`, own keys only, in the canonical form. The merged
 * map is what gets stored, so the per-entity bounds apply to it: a save
 * that would grow metadata past them is refused (400), whatever the size of
 * the request itself.
 */
export function mergeMetadata(base: Metadata, update: Metadata): Metadata {
  return boundedMetadata(canonicalMetadata([...ownEntries(base), ...ownEntries(update)]), 'metadata after this save')
}

/**
 * The one canonical form of metadata by account (`accountMetadata`):
 * addresses sorted, no prototype, each account's metadata canonical and
 * within bounds (`storedMetadata`).
 */
export function canonicalAccountMetadata(entries: Iterable<readonly [string, Metadata]>): Keyed<Metadata> {
  // Already in order (none, one, a stored map's own entries): no map, no sort.
  if (inCanonicalOrder(entries)) {
    if (entries.length === 0) return EMPTY_ACCOUNT_METADATA
    const result = emptyKeyed<Metadata>()
    for (const [address, metadata] of entries) result[address] = storedMetadata(metadata, `accountMetadata[${JSON.stringify(address)}]`)
    return result
  }
  const byAddress = new Map(entries)
  return keyedFrom(
    [...byAddress.keys()].sort().map((address) => [address, storedMetadata(byAddress.get(address) as Metadata, `accountMetadata[${JSON.stringify(address)}]`)]),
  )
}

export function withoutKey(base: Metadata, key: string): Metadata {
  return canonicalMetadata(ownEntries(base).filter(([existing]) => existing !== key))
}
