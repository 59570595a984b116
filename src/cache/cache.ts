import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import type { Attribute, CanonicalKey } from '../domain/index.ts'
import { InvariantViolation, invariant, kindOf, decodeAttribute } from '../domain/index.ts'

/**
 * The two-generation attribute cache (contract §2.3). Pure: no clock, no I/O.
 * Every mutation also describes its disk-mirror rows to a `MirrorSink`, which
 * the FSM points at the proposal's atomic store batch, so memory and mirror
 * are equal at every applied index (invariant #1).
 */
export interface MirrorSink {
  put(key: Buffer, value: Buffer): void
  del(key: Buffer): void
}

export type CacheCheck = 'hit' | 'miss' | 'unreachable'

/** What the cache knows of a key: a value, a tombstone, or nothing. */
export type CacheLookup =
  | { readonly state: 'live'; readonly attribute: Attribute }
  | { readonly state: 'deleted' }
  | { readonly state: 'absent' }

interface Entry {
  readonly keyHash: Buffer // 16 bytes: the mirror row's key
  readonly tag: Buffer // 8 bytes: collision check, kept by tombstones
  readonly attribute: Attribute | null // null = tombstone
}

export const MIRROR_ZONE = 0xff
const FLAG_LIVE = 0
const FLAG_TOMBSTONE = 1
const ABSENT: CacheLookup = Object.freeze({ state: 'absent' })
const DELETED: CacheLookup = Object.freeze({ state: 'deleted' })

export const cacheRotationThresholdDefault = 1000
/** Gen0's default byte budget: both generations then hold about 2 × 64 MiB of counted bytes. */
export const cacheGenerationBytesMaxDefault = 64 * 1024 * 1024
/**
 * What one cached entry costs beyond its key and value bytes (map slot,
 * entry and attribute objects, buffer headers), counted so that many small
 * entries weigh what they really cost. A constant: the count must be a pure
 * function of applied content, identical on every node.
 */
export const cacheEntryOverheadBytes = 200

/**
 * The cache's replicated settings (contract §2.3): changed only by an
 * ordered log entry, so every node rotates at the same indexes.
 * `generationBytesMax` null: no byte bound (stores created before it existed).
 */
export interface CacheSettings {
  readonly rotationThreshold: number
  readonly generationBytesMax: number | null
}

/** The replicated cache state: settings plus where the two generations start. */
export interface CacheState {
  readonly settings: CacheSettings
  readonly epoch: number
  readonly generation: number
  /** First index of Gen0's generation. */
  readonly gen0FirstIndex: number
  /** First index of Gen1's generation (1 at generation 0, when Gen1 is empty). */
  readonly gen1FirstIndex: number
}

export function validateCacheSettings(settings: CacheSettings): void {
  invariant(Number.isSafeInteger(settings.rotationThreshold) && settings.rotationThreshold >= 1, 'rotation threshold must be ≥ 1')
  invariant(
    settings.generationBytesMax === null || (Number.isSafeInteger(settings.generationBytesMax) && settings.generationBytesMax >= 1),
    'generation byte budget must be ≥ 1',
  )
}

export function sameCacheSettings(a: CacheSettings, b: CacheSettings): boolean {
  return a.rotationThreshold === b.rotationThreshold && a.generationBytesMax === b.generationBytesMax
}

/** The state of an empty cache before index 1: what a new data directory starts from. */
export function initialCacheState(settings: CacheSettings): CacheState {
  validateCacheSettings(settings)
  return { settings, epoch: 0, generation: 0, gen0FirstIndex: 1, gen1FirstIndex: 1 }
}

export class MalformedMirrorRow extends Error {
  constructor(message: string) {
    super(`cache mirror: ${message}; refusing to start (run tally check)`)
    this.name = 'MalformedMirrorRow'
  }
}

/**
 * Rotation (contract §2.3): applying index i starts a new generation when
 * Gen0 has spanned K indexes, or when Gen0's counted bytes reached their
 * budget. Both are functions of applied content only, so every node (and
 * every replay) rotates at the same indexes; the FSM decides, admission
 * predicts from the same rule (`generationAt`).
 */
export class AttributeCache {
  private gen0 = new Map<string, Entry>()
  private gen1 = new Map<string, Entry>()
  private gen0ByteCount = 0
  private gen1ByteCount = 0
  private state: CacheState
  /** The last index the cache entered (applied, stale or not). */
  private lastIndex: number

  /**
   * A new cache is empty. `settings` may be a bare K (no byte bound), as
   * older code and focused tests build it.
   */
  constructor(settings: CacheSettings | number, epoch = 0) {
    const full = typeof settings === 'number' ? { rotationThreshold: settings, generationBytesMax: null } : settings
    this.state = { ...initialCacheState(full), epoch }
    this.lastIndex = 0
  }

  /** An empty cache at a restored state, for `restoreRow` to fill (boot). */
  static restoring(state: CacheState, appliedIndex: number): AttributeCache {
    validateCacheSettings(state.settings)
    invariant(Number.isSafeInteger(state.generation) && state.generation >= 0, 'generation must be a non-negative integer')
    invariant(state.gen1FirstIndex <= state.gen0FirstIndex, 'Gen1 starts before Gen0')
    invariant(state.gen0FirstIndex <= Math.max(1, appliedIndex), () => `Gen0 starts at ${state.gen0FirstIndex}, after the applied index ${appliedIndex}`)
    const cache = new AttributeCache(state.settings, state.epoch)
    cache.state = state
    cache.lastIndex = appliedIndex
    return cache
  }

  get generation(): number {
    return this.state.generation
  }

  get epoch(): number {
    return this.state.epoch
  }

  get settings(): CacheSettings {
    return this.state.settings
  }

  get rotationThreshold(): number {
    return this.state.settings.rotationThreshold
  }

  /** The replicated state, as the cache-state row records it. */
  get snapshot(): CacheState {
    return this.state
  }

  /** First index of Gen1's generation: every write from there on is still cached. */
  get gen1FirstIndex(): number {
    return this.state.gen1FirstIndex
  }

  get gen0FirstIndex(): number {
    return this.state.gen0FirstIndex
  }

  /** Counted bytes (keys, encoded values, a fixed overhead per entry) per generation. */
  get bytes(): { gen0: number; gen1: number } {
    return { gen0: this.gen0ByteCount, gen1: this.gen1ByteCount }
  }

  /** A settings change takes effect for the indexes after the one that carries it. */
  configure(settings: CacheSettings): void {
    validateCacheSettings(settings)
    this.state = { ...this.state, settings }
  }

  /** Would applying `index` (the next one) rotate? */
  rotationDue(index: number): boolean {
    const { settings, gen0FirstIndex } = this.state
    if (index - gen0FirstIndex >= settings.rotationThreshold) return true
    return settings.generationBytesMax !== null && this.gen0ByteCount >= settings.generationBytesMax
  }

  /**
   * The FSM enters every index in order before applying it (stale or not):
   * rotates when the rule says so. Returns whether it rotated.
   */
  enter(index: number, mirror: MirrorSink): boolean {
    invariant(index === this.lastIndex + 1, () => `cache entered at index ${index} after ${this.lastIndex}`)
    this.lastIndex = index
    if (!this.rotationDue(index)) return false
    this.rotate(index, mirror)
    return true
  }

  /**
   * The generation `index` will be applied in, as far as the cache can tell
   * now: a rotation due at the next index (count or bytes), then one every K
   * indexes. Byte rotations caused by proposals not yet applied cannot be
   * foreseen: they only make the real generation larger, which the FSM
   * refuses as stale when the plan depended on it.
   */
  generationAt(index: number): number {
    const next = this.lastIndex + 1
    const { generation, gen0FirstIndex, settings } = this.state
    if (index < next) return generation
    if (this.rotationDue(next)) return generation + 1 + Math.floor((index - next) / settings.rotationThreshold)
    return generation + Math.floor((index - gen0FirstIndex) / settings.rotationThreshold)
  }

  /** Will `key` still be in the cache when `predictedIndex` is applied? */
  check(key: CanonicalKey, predictedIndex: number): CacheCheck {
    if (predictedIndex <= this.lastIndex) return 'miss'
    const delta = this.generationAt(predictedIndex) - this.state.generation
    if (delta >= 2) return 'unreachable'
    if (delta === 1) return this.gen0.has(key) ? 'hit' : 'miss'
    return this.gen0.has(key) || this.gen1.has(key) ? 'hit' : 'miss'
  }

  /**
   * ADR 0002 with real rotation points: a seed read from the store at
   * `storeIndexAtLoad` is trustworthy at `predictedIndex` while every write
   * after the load is still cached then, i.e. the load is not older than the
   * first index of Gen1's generation at that point.
   */
  seedsHold(storeIndexAtLoad: number, predictedIndex: number): boolean {
    const delta = this.generationAt(predictedIndex) - this.state.generation
    if (delta >= 2) return false
    const gen1First = delta === 1 ? this.state.gen0FirstIndex : this.state.gen1FirstIndex
    return storeIndexAtLoad + 1 >= gen1First
  }

  get(key: CanonicalKey): CacheLookup {
    const entry = this.gen0.get(key) ?? this.gen1.get(key)
    if (entry === undefined) return ABSENT
    return entry.attribute === null ? DELETED : { state: 'live', attribute: entry.attribute }
  }

  put(key: CanonicalKey, attribute: Attribute, mirror: MirrorSink): void {
    invariant(attribute.value.kind === kindOf(key), 'attribute kind differs from its key')
    const { keyHash, tag } = this.gen0.get(key) ?? this.gen1.get(key) ?? hashKey(key)
    this.setGen0(key, { keyHash, tag, attribute }, mirror)
  }

  /** Tombstone in Gen0; when only Gen1 holds the key the tombstone reuses Gen1's tag. */
  del(key: CanonicalKey, mirror: MirrorSink): 'deleted' | 'not_found' {
    const existing = this.gen0.get(key) ?? this.gen1.get(key)
    if (existing === undefined || existing.attribute === null) return 'not_found'
    this.tombstone(key, mirror)
    return 'deleted'
  }

  /**
   * Records a deletion whatever the cache held: a Gen0 tombstone (reusing
   * the tag of a generation that holds the key). A delete is a write: it must
   * stay cached like any other, or a seed read before it would revive the key
   * (ADR 0002).
   */
  tombstone(key: CanonicalKey, mirror: MirrorSink): void {
    const { keyHash, tag } = this.gen0.get(key) ?? this.gen1.get(key) ?? hashKey(key)
    this.setGen0(key, { keyHash, tag, attribute: null }, mirror)
  }

  /** A seed is written only where neither generation holds the key: the cache is at least as new. */
  preload(key: CanonicalKey, attribute: Attribute | null, mirror: MirrorSink): boolean {
    if (this.gen0.has(key) || this.gen1.has(key)) return false
    if (attribute === null) return false // the store has no row: nothing to seed, reads see "absent"
    this.put(key, attribute, mirror)
    return true
  }

  /**
   * Applying the first index of a new generation: Gen1 := Gen0 (tombstones
   * included: they shadow nothing any more, but they keep the delete cached
   * for the seed horizon), Gen0 := ∅, old Gen1 dropped.
   */
  rotate(firstIndex: number, mirror: MirrorSink): void {
    invariant(firstIndex > this.state.gen0FirstIndex, () => `rotation at ${firstIndex}, Gen0 started at ${this.state.gen0FirstIndex}`)
    const generation = this.state.generation
    for (const [key, entry] of this.gen1) mirror.del(this.mirrorKey(generation - 1, key, entry.keyHash))
    this.gen1 = this.gen0
    this.gen1ByteCount = this.gen0ByteCount
    this.gen0 = new Map()
    this.gen0ByteCount = 0
    this.state = { ...this.state, generation: generation + 1, gen1FirstIndex: this.state.gen0FirstIndex, gen0FirstIndex: firstIndex }
  }

  get size(): { gen0: number; gen1: number } {
    return { gen0: this.gen0.size, gen1: this.gen1.size }
  }

  /**
   * Restores one mirror row read at boot, so that rows stream from the store
   * into the maps without a list of them all. Fails closed on a row that does
   * not decode, has a wrong tag, or sits under Gen1's byte at generation 0.
   * Tombstones may sit under either byte: a rotation relabels Gen0's rows.
   */
  restoreRow(rowKey: Buffer, rowValue: Buffer): void {
    if (rowKey.length !== 19 || rowKey[0] !== MIRROR_ZONE) throw new MalformedMirrorRow(`bad row key ${rowKey.toString('hex')}`)
    const genByte = rowKey[1] as number
    if (genByte !== 0 && genByte !== 1) throw new MalformedMirrorRow(`bad generation byte in ${rowKey.toString('hex')}`)
    const { key, entry } = decodeRow(rowKey, rowValue)
    const generation = this.state.generation
    const isGen0 = genByte === generation % 2
    if (!isGen0 && generation === 0) throw new MalformedMirrorRow(`Gen1 row at generation 0: ${rowKey.toString('hex')}`)
    const map = isGen0 ? this.gen0 : this.gen1
    if (map.has(key)) throw new MalformedMirrorRow(`two rows for one key in ${rowKey.toString('hex')}`)
    map.set(key, entry)
    if (isGen0) this.gen0ByteCount += entryBytes(key, entry)
    else this.gen1ByteCount += entryBytes(key, entry)
  }

  /** Rebuilds both generations from mirror rows (for tests; boot streams through `restoreRow`). */
  restore(rows: Iterable<[Buffer, Buffer]>): void {
    invariant(this.gen0.size === 0 && this.gen1.size === 0, 'restore into a non-empty cache')
    for (const [rowKey, rowValue] of rows) this.restoreRow(rowKey, rowValue)
  }

  /** The mirror rows memory implies, for invariant #1 checks. */
  mirrorRows(): Map<string, Buffer> {
    const rows = new Map<string, Buffer>()
    const add = (generation: number, map: Map<string, Entry>): void => {
      for (const [key, entry] of map) {
        rows.set(this.mirrorKey(generation, key, entry.keyHash).toString('hex'), encodeRow(key, entry))
      }
    }
    if (this.state.generation > 0) add(this.state.generation - 1, this.gen1)
    add(this.state.generation, this.gen0)
    return rows
  }

  private setGen0(key: CanonicalKey, entry: Entry, mirror: MirrorSink): void {
    const previous = this.gen0.get(key)
    if (previous !== undefined) this.gen0ByteCount -= entryBytes(key, previous)
    this.gen0.set(key, entry)
    this.gen0ByteCount += entryBytes(key, entry)
    mirror.put(this.mirrorKey(this.state.generation, key, entry.keyHash), encodeRow(key, entry))
  }

  private mirrorKey(generation: number, key: string, keyHash: Buffer): Buffer {
    const row = Buffer.allocUnsafe(19)
    row[0] = MIRROR_ZONE
    row[1] = generation % 2
    row[2] = key.charCodeAt(0)
    keyHash.copy(row, 3)
    return row
  }
}

/** What an entry counts against the byte budget: a pure function of the entry. */
function entryBytes(key: string, entry: Entry): number {
  return Buffer.byteLength(key, 'utf8') + (entry.attribute?.bytes.length ?? 0) + cacheEntryOverheadBytes
}

function hashKey(key: string): { keyHash: Buffer; tag: Buffer } {
  const digest = createHash('sha256').update(key, 'utf8').digest()
  return { keyHash: digest.subarray(0, 16), tag: digest.subarray(16, 24) }
}

/**
 * Row value: [tag 8][flag 1][crc32 4][key length u32][key][value bytes when
 * live]. The CRC covers everything after it, so restore fails closed on any
 * flipped byte, not only on rows that no longer parse.
 */
const HEADER = 17
function encodeRow(key: string, entry: Entry): Buffer {
  const keyBytes = Buffer.from(key, 'utf8')
  const valueBytes = entry.attribute?.bytes
  const row = Buffer.allocUnsafe(HEADER + keyBytes.length + (valueBytes?.length ?? 0))
  entry.tag.copy(row, 0)
  row[8] = entry.attribute === null ? FLAG_TOMBSTONE : FLAG_LIVE
  row.writeUInt32LE(keyBytes.length, 13)
  keyBytes.copy(row, HEADER)
  valueBytes?.copy(row, HEADER + keyBytes.length)
  row.writeUInt32LE(crc32(row.subarray(13)), 9)
  return row
}

function decodeRow(rowKey: Buffer, row: Buffer): { key: CanonicalKey; entry: Entry } {
  if (row.length < HEADER) throw new MalformedMirrorRow(`short row ${rowKey.toString('hex')}`)
  const flag = row[8]
  if (flag !== FLAG_LIVE && flag !== FLAG_TOMBSTONE) throw new MalformedMirrorRow(`bad flag in ${rowKey.toString('hex')}`)
  if (row.readUInt32LE(9) !== crc32(row.subarray(13))) throw new MalformedMirrorRow(`checksum mismatch in ${rowKey.toString('hex')}`)
  const keyLength = row.readUInt32LE(13)
  if (HEADER + keyLength > row.length) throw new MalformedMirrorRow(`key overruns row ${rowKey.toString('hex')}`)
  const key = row.toString('utf8', HEADER, HEADER + keyLength) as CanonicalKey
  const { keyHash, tag } = hashKey(key)
  if (!keyHash.equals(rowKey.subarray(3)) || !tag.equals(row.subarray(0, 8)) || rowKey[2] !== key.charCodeAt(0)) {
    throw new MalformedMirrorRow(`hash or tag mismatch in ${rowKey.toString('hex')}`)
  }
  if (flag === FLAG_TOMBSTONE) {
    if (row.length !== HEADER + keyLength) throw new MalformedMirrorRow(`tombstone with payload ${rowKey.toString('hex')}`)
    return { key, entry: { keyHash, tag, attribute: null } }
  }
  let attribute: Attribute
  try {
    attribute = decodeAttribute(kindOf(key), Buffer.from(row.subarray(HEADER + keyLength)))
  } catch (error) {
    if (error instanceof InvariantViolation || error instanceof Error) {
      throw new MalformedMirrorRow(`undecodable value in ${rowKey.toString('hex')}: ${error.message}`)
    }
    throw error
  }
  return { key, entry: { keyHash, tag, attribute } }
}
