import { crc32 } from 'node:zlib'
import type { Attribute, AttributeKind, AttributeValue, CanonicalKey } from '../domain/index.ts'
import { invariant, kindOf, decodeAttribute } from '../domain/index.ts'

/**
 * The two-generation attribute cache (contract §2.3). Pure: no clock, no I/O.
 * Every mutation is also recorded in the disk mirror through a `MirrorSink`,
 * which the FSM points at the proposal's atomic store batch, so memory and
 * mirror agree at every applied index (invariant #1).
 *
 * The mirror is one **segment row per applied index** (docs/adr/0010): the
 * keys that index wrote into Gen0, each live (with its value's length) or a
 * tombstone. The values themselves are the attribute rows the same batch
 * writes: restore rebuilds both generations' keys from the segments and reads
 * the values from the attribute rows.
 */
export interface MirrorSink {
  /** A row whose value is encoded when the batch is written (after every mutation of its index). */
  putLater(key: Buffer, value: () => Buffer): void
  del(key: Buffer): void
}

export type CacheCheck = 'hit' | 'miss' | 'unreachable'

/** What the cache knows of a key: a value, a tombstone, or nothing. */
export type CacheLookup =
  | { readonly state: 'live'; readonly attribute: Attribute }
  | { readonly state: 'deleted' }
  | { readonly state: 'absent' }

/**
 * What a generation knows of a key. `bytes` is the value's length when the key
 * was written (0 for a tombstone), counted against the byte budget. A restored
 * Gen1 entry that Gen0 shadows keeps its count but no value: nothing reads it
 * (lookups try Gen0 first) until the next rotation drops it.
 */
type Entry = LiveEntry | AwaitingEntry | TombstoneEntry

/**
 * A live key with its value. It is its own lookup result (`state: 'live'`),
 * so a read on the apply path returns it as it is instead of allocating one.
 */
interface LiveEntry {
  readonly state: 'live'
  readonly attribute: Attribute
  readonly live: true
  readonly bytes: number
}

/** A live key restored from a segment row whose value the attribute row has not yet given. */
interface AwaitingEntry {
  readonly state: 'awaiting'
  readonly attribute: null
  readonly live: true
  readonly bytes: number
}

/** A deletion; the one frozen `TOMBSTONE` is also the `deleted` lookup result. */
interface TombstoneEntry {
  readonly state: 'deleted'
  readonly attribute: null
  readonly live: false
  readonly bytes: 0
}

export const MIRROR_ZONE = 0xff
const FLAG_LIVE = 0
const FLAG_TOMBSTONE = 1
const ABSENT: CacheLookup = Object.freeze({ state: 'absent' })

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
  return cacheState(settings, 0, 0, 1, 1)
}

/**
 * A cache state built in its one shape: every state (new, decoded from its
 * row, restored, reconfigured, rotated) comes from here, and so do its
 * settings, so the cache's hot readers (`rotationDue`, `generationAt`, the
 * getters admission and the FSM call per order) see one hidden class each.
 * A state spread from another (`{ ...state, generation }`) or a frozen or
 * decoded settings object has a map of its own: the first rotation after a
 * restore changed the state's map and deoptimised those readers, which then
 * stayed polymorphic (docs/performance.md, "cache state in one shape").
 */
export function cacheState(settings: CacheSettings, epoch: number, generation: number, gen0FirstIndex: number, gen1FirstIndex: number): CacheState {
  return { settings: cacheSettings(settings.rotationThreshold, settings.generationBytesMax), epoch, generation, gen0FirstIndex, gen1FirstIndex }
}

/** Cache settings in their one shape (see `cacheState`). */
export function cacheSettings(rotationThreshold: number, generationBytesMax: number | null): CacheSettings {
  return { rotationThreshold, generationBytesMax }
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
  /** The indexes whose segment rows hold each generation's keys, ascending: a rotation deletes Gen1's. */
  private gen0Segments: number[] = []
  private gen1Segments: number[] = []
  /** The segment of the index being applied: its keys' last state, encoded when the batch is written. */
  private segment: { readonly index: number; readonly entries: Map<string, Entry> } | undefined
  private state: CacheState
  /** The last index the cache entered (applied, stale or not). */
  private lastIndex: number

  /**
   * A new cache is empty. `settings` may be a bare K (no byte bound), as
   * older code and focused tests build it.
   */
  constructor(settings: CacheSettings | number, epoch = 0) {
    const full = typeof settings === 'number' ? { rotationThreshold: settings, generationBytesMax: null } : settings
    validateCacheSettings(full)
    this.state = cacheState(full, epoch, 0, 1, 1)
    this.lastIndex = 0
  }

  /** An empty cache at a restored state, for `restoreRow` to fill (boot). */
  static restoring(state: CacheState, appliedIndex: number): AttributeCache {
    validateCacheSettings(state.settings)
    invariant(Number.isSafeInteger(state.generation) && state.generation >= 0, 'generation must be a non-negative integer')
    invariant(state.gen1FirstIndex <= state.gen0FirstIndex, 'Gen1 starts before Gen0')
    invariant(state.gen0FirstIndex <= Math.max(1, appliedIndex), () => `Gen0 starts at ${state.gen0FirstIndex}, after the applied index ${appliedIndex}`)
    const cache = new AttributeCache(state.settings, state.epoch)
    cache.state = cacheState(state.settings, state.epoch, state.generation, state.gen0FirstIndex, state.gen1FirstIndex)
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
    const { epoch, generation, gen0FirstIndex, gen1FirstIndex } = this.state
    this.state = cacheState(settings, epoch, generation, gen0FirstIndex, gen1FirstIndex)
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
   * `check` of every key of a plan at `predictedIndex`, the generation
   * arithmetic done once: per key, whether it is a hit (a miss otherwise);
   * 'unreachable' when any key is (then every key is).
   */
  checkAll(keys: readonly CanonicalKey[], predictedIndex: number): boolean[] | 'unreachable' {
    const hits: boolean[] = []
    if (keys.length === 0 || predictedIndex <= this.lastIndex) {
      for (let i = 0; i < keys.length; i++) hits.push(false)
      return hits
    }
    const delta = this.generationAt(predictedIndex) - this.state.generation
    if (delta >= 2) return 'unreachable'
    const gen0 = this.gen0
    const gen1 = delta === 1 ? undefined : this.gen1
    for (const key of keys) hits.push(gen0.has(key) || (gen1 !== undefined && gen1.has(key)))
    return hits
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
    invariant(entry.state !== 'awaiting', () => `cached key ${key} has no value (restore incomplete)`)
    // A live entry and the tombstone are read-only lookup results themselves.
    return entry
  }

  put(key: CanonicalKey, attribute: Attribute, mirror: MirrorSink): void {
    const kind = attribute.value.kind
    invariant(kind === kindOf(key), 'attribute kind differs from its key')
    // A transaction is cached as its row's bytes, decoded when first read (a revert, a metadata change):
    // its record, postings and commit volumes (~2.5 KB of objects per transfer, read again rarely)
    // would otherwise live as long as the cache holds the key, promoted to the old generation. So is
    // an idempotency record (its answer, read again only by a replay): a replay then decodes the
    // row as it would after a restart or from a seed, and prints the same bytes (commit volumes
    // are built in the row's order, `commitVolumes`).
    // The row is kept in memory of its own, so the cache holds the bytes it counts (`ownedRow`).
    const bytes = ownedRow(attribute.bytes)
    const kept = kind === 't' || kind === 'i' ? new RowAttribute(kind, bytes) : bytes === attribute.bytes ? attribute : { value: attribute.value, bytes }
    this.setGen0(key, { state: 'live', attribute: kept, live: true, bytes: bytes.length }, mirror)
  }

  /** Tombstone in Gen0 when a generation holds the key live. */
  del(key: CanonicalKey, mirror: MirrorSink): 'deleted' | 'not_found' {
    const existing = this.gen0.get(key) ?? this.gen1.get(key)
    if (existing === undefined || !existing.live) return 'not_found'
    this.tombstone(key, mirror)
    return 'deleted'
  }

  /**
   * Records a deletion whatever the cache held: a Gen0 tombstone. A delete is
   * a write: it must stay cached like any other, or a seed read before it
   * would revive the key (ADR 0002).
   */
  tombstone(key: CanonicalKey, mirror: MirrorSink): void {
    this.setGen0(key, TOMBSTONE, mirror)
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
   * for the seed horizon), Gen0 := ∅, old Gen1 dropped with its segment rows.
   * Gen0's segments become Gen1's as they are: a generation's byte is its
   * number's parity.
   */
  rotate(firstIndex: number, mirror: MirrorSink): void {
    invariant(firstIndex > this.state.gen0FirstIndex, () => `rotation at ${firstIndex}, Gen0 started at ${this.state.gen0FirstIndex}`)
    const generation = this.state.generation
    for (const index of this.gen1Segments) mirror.del(segmentRowKey(generation - 1, index))
    this.gen1 = this.gen0
    this.gen1ByteCount = this.gen0ByteCount
    this.gen1Segments = this.gen0Segments
    this.gen0 = new Map()
    this.gen0ByteCount = 0
    this.gen0Segments = []
    this.segment = undefined
    const { settings, epoch, gen0FirstIndex } = this.state
    this.state = cacheState(settings, epoch, generation + 1, firstIndex, gen0FirstIndex)
  }

  get size(): { gen0: number; gen1: number } {
    return { gen0: this.gen0.size, gen1: this.gen1.size }
  }

  /**
   * Restores one segment row read at boot (rows stream from the store in key
   * order: per generation byte, by index). Fails closed on a row that does not
   * decode, sits under Gen1's byte at generation 0, or names an index outside
   * its generation's span. Keys come first; their values follow from the
   * attribute rows (`keysAwaitingValues`, `restoreValue`).
   */
  restoreSegment(rowKey: Buffer, rowValue: Buffer): void {
    if (rowKey.length !== SEGMENT_KEY_LENGTH || rowKey[0] !== MIRROR_ZONE) throw new MalformedMirrorRow(`bad row key ${rowKey.toString('hex')}`)
    const genByte = rowKey[1] as number
    if (genByte !== 0 && genByte !== 1) throw new MalformedMirrorRow(`bad generation byte in ${rowKey.toString('hex')}`)
    const index = Number(rowKey.readBigUInt64BE(2))
    const generation = this.state.generation
    const isGen0 = genByte === generation % 2
    if (!isGen0 && generation === 0) throw new MalformedMirrorRow(`Gen1 row at generation 0: ${rowKey.toString('hex')}`)
    const [first, last] = isGen0 ? [this.state.gen0FirstIndex, this.lastIndex] : [this.state.gen1FirstIndex, this.state.gen0FirstIndex - 1]
    if (index < first || index > last) throw new MalformedMirrorRow(`segment of index ${index} outside its generation's indexes ${first}..${last}`)
    const segments = isGen0 ? this.gen0Segments : this.gen1Segments
    invariant(segments.length === 0 || (segments[segments.length - 1] as number) < index, 'segment rows stream in index order')
    segments.push(index)
    const map = isGen0 ? this.gen0 : this.gen1
    for (const [key, entry] of decodeSegment(rowKey, rowValue)) {
      const previous = map.get(key)
      map.set(key, entry)
      const delta = entryBytes(key, entry) - (previous === undefined ? 0 : entryBytes(key, previous))
      if (isGen0) this.gen0ByteCount += delta
      else this.gen1ByteCount += delta
    }
  }

  /**
   * The live keys whose values restore must read from the attribute rows:
   * every live Gen0 key, and every live Gen1 key Gen0 does not shadow.
   */
  *keysAwaitingValues(): Generator<CanonicalKey> {
    for (const [key, entry] of this.gen0) if (entry.live && entry.attribute === null) yield key as CanonicalKey
    for (const [key, entry] of this.gen1) if (entry.live && entry.attribute === null && !this.gen0.has(key)) yield key as CanonicalKey
  }

  /**
   * A live key's value, read from its attribute row at boot. The row is the
   * key's last write, so it must exist and have the length the segment
   * recorded; anything else fails closed.
   */
  restoreValue(key: CanonicalKey, row: Buffer | undefined): void {
    const inGen0 = this.gen0.get(key)
    const map = inGen0 !== undefined ? this.gen0 : this.gen1
    const entry = inGen0 ?? this.gen1.get(key)
    invariant(entry !== undefined && entry.live && entry.attribute === null, () => `no live key ${key} awaits a value`)
    if (row === undefined) throw new MalformedMirrorRow(`live cached key ${key} has no attribute row`)
    if (row.length !== entry.bytes) throw new MalformedMirrorRow(`attribute row of ${key} is ${row.length} bytes, its last write was ${entry.bytes}`)
    const kind = kindOf(key)
    let attribute: Attribute
    try {
      // Decoded from the row's own copy: nothing the cache keeps points into the read's buffer.
      attribute = decodeAttribute(kind, ownedRow(row))
    } catch (error) {
      if (error instanceof Error) throw new MalformedMirrorRow(`undecodable attribute row of ${key}: ${error.message}`)
      throw error
    }
    // Kept as `put` keeps it: a transaction or an idempotency record as its row, decoded when first
    // read (decoded here only so that a bad row fails the boot). Kept decoded, a restored cache took
    // ~4.4 × its counted bytes of heap against ~1.9 × for the same cache built by writes
    // (docs/performance.md, "Memory bounded by configuration").
    const kept = kind === 't' || kind === 'i' ? new RowAttribute(kind, attribute.bytes) : attribute
    map.set(key, { state: 'live', attribute: kept, live: true, bytes: entry.bytes })
  }

  /**
   * Every stored row a live entry keeps, with its key: what the byte count
   * counts, for checks that the cache holds no more memory than it counts.
   */
  *heldRows(): Generator<[CanonicalKey, Buffer]> {
    for (const map of [this.gen0, this.gen1]) {
      for (const [key, entry] of map) if (entry.attribute !== null) yield [key as CanonicalKey, entry.attribute.bytes]
    }
  }

  /** Restore from rows already in memory (tests, the simulator): segments, then values from `read`. */
  restoreSync(rows: Iterable<[Buffer, Buffer]>, read: (key: CanonicalKey) => Buffer | undefined): void {
    invariant(this.gen0.size === 0 && this.gen1.size === 0, 'restore into a non-empty cache')
    for (const [rowKey, rowValue] of rows) this.restoreSegment(rowKey, rowValue)
    for (const key of [...this.keysAwaitingValues()]) this.restoreValue(key, read(key))
  }

  /**
   * What the cache holds, in one canonical form, for invariant #1 checks (a
   * cache restored from the store equals the one that wrote it): per
   * generation, each key's state, counted bytes and value — except Gen1
   * values Gen0 shadows, which restore does not read back — and whether the
   * value is held as its row (decoded when read) or decoded: a restored
   * cache holds what the writes held, in the same heap.
   */
  contents(): string {
    const describe = (map: Map<string, Entry>, shadow?: Map<string, Entry>): string[] =>
      [...map]
        .map(([key, entry]) => `${key} ${entry.live ? 'live' : 'tombstone'} ${entry.bytes}${entry.live && shadow?.has(key) !== true ? ` ${entry.attribute instanceof RowAttribute ? 'row' : 'decoded'} ${entry.attribute?.bytes.toString('hex')}` : ''}`)
        .sort()
    return JSON.stringify({
      state: this.state,
      bytes: this.bytes,
      gen0Segments: this.gen0Segments,
      gen1Segments: this.gen1Segments,
      gen0: describe(this.gen0),
      gen1: describe(this.gen1, this.gen0),
    })
  }

  private setGen0(key: CanonicalKey, entry: Entry, mirror: MirrorSink): void {
    // The key's own bytes count in both entries: measured once.
    const keyBytes = Buffer.byteLength(key, 'utf8')
    const previous = this.gen0.get(key)
    if (previous !== undefined) this.gen0ByteCount -= keyBytes + previous.bytes + cacheEntryOverheadBytes
    this.gen0.set(key, entry)
    this.gen0ByteCount += keyBytes + entry.bytes + cacheEntryOverheadBytes
    let segment = this.segment
    if (segment === undefined || segment.index !== this.lastIndex) {
      const entries = new Map<string, Entry>()
      segment = this.segment = { index: this.lastIndex, entries }
      this.gen0Segments.push(this.lastIndex)
      mirror.putLater(segmentRowKey(this.state.generation, this.lastIndex), () => encodeSegment(entries))
    }
    segment.entries.set(key, entry)
  }
}

/**
 * A cached attribute held as its stored row, decoded on first read (then
 * kept): the value a restore would decode from the same row, so a key reads
 * the same whether the node wrote it or restored it.
 */
class RowAttribute implements Attribute {
  private decoded: AttributeValue | undefined

  constructor(
    private readonly kind: AttributeKind,
    readonly bytes: Buffer,
  ) {}

  get value(): AttributeValue {
    if (this.decoded === undefined) this.decoded = decodeAttribute(this.kind, this.bytes).value
    return this.decoded
  }
}

/**
 * `row` in memory of its own. A row can be a view into a larger buffer: a
 * seed decoded from a WAL record, or a row packed outside `encodeAttribute`,
 * comes from Node's shared 8 KiB pool (a store adapter could also hand out
 * views into one read buffer; RocksDB's rows own their memory, and so do the
 * rows of more than 64 bytes the FSM encodes, `packsOwnMemory`: kept without
 * a copy; a shorter one is copied into a typed array V8 keeps in its heap). Kept as it is, it would keep
 * that whole buffer alive while the cache counts only the row's length, and
 * the byte budget (docs/adr/0007) would not bound what the cache holds. A row
 * that already owns its memory exactly is kept as it is.
 */
function ownedRow(row: Buffer): Buffer {
  if (row.byteOffset === 0 && row.buffer.byteLength === row.length) return row
  const length = row.length
  const owned = Buffer.allocUnsafeSlow(length)
  // A row is short: copied byte by byte (Buffer#copy's checks cost more than the copy).
  if (length > OWNED_COPY_LOOP_BYTES_MAX) row.copy(owned, 0, 0, length)
  else for (let i = 0; i < length; i++) owned[i] = row[i] as number
  return owned
}

const OWNED_COPY_LOOP_BYTES_MAX = 512

const TOMBSTONE: TombstoneEntry = Object.freeze({ state: 'deleted', attribute: null, live: false, bytes: 0 })

/** What an entry counts against the byte budget: a pure function of the key and the written value's length (`setGen0` inlines it). */
function entryBytes(key: string, entry: Entry): number {
  return Buffer.byteLength(key, 'utf8') + entry.bytes + cacheEntryOverheadBytes
}

/** Segment rows: [zone][generation % 2][index u64 BE]. */
const SEGMENT_KEY_LENGTH = 10
export function segmentRowKey(generation: number, index: number): Buffer {
  const row = Buffer.allocUnsafe(SEGMENT_KEY_LENGTH)
  row[0] = MIRROR_ZONE
  row[1] = generation % 2
  // An index is a safe integer: its two 32-bit halves, the bytes `writeBigUInt64BE` would write.
  invariant(Number.isSafeInteger(index) && index >= 0, 'a segment is keyed by a non-negative safe integer index')
  const high = Math.floor(index / 2 ** 32)
  row.writeUInt32BE(high, 2)
  row.writeUInt32BE(index - high * 2 ** 32, 6)
  return row
}

/**
 * Segment value: [crc32 u32 LE][count varint] then per key, in the order the
 * index first wrote it: [kind: the key's first byte][shared·2 + tombstone
 * varint][suffix length varint][suffix][value length varint, live only]. A
 * key is written front-coded against the previous key of its kind in the
 * segment: `shared` bytes of that key (0 when it is the first of its kind),
 * then the suffix — a bulk's volumes keys share their ledger and account
 * prefix, its transaction keys all but their last hex digits (storage schema
 * 5, docs/adr/0012). The CRC covers everything after it, so restore fails
 * closed on any flipped byte, not only on rows that no longer parse.
 */
function encodeSegment(entries: Map<string, Entry>): Buffer {
  // Every key's UTF-8 bytes go once into the scratch, one after another; each key's front coding is
  // measured there against the previous key of its kind (no buffer per key).
  const count = entries.size
  const starts: number[] = []
  const lengths: number[] = []
  const shares: number[] = []
  lastOfKind.fill(-1)
  let scratch = segmentScratch
  let used = 0
  let size = 4 + varintLength(count)
  for (const [key, entry] of entries) {
    // A UTF-16 unit takes at most 3 bytes of UTF-8 (a pair 4 for its 2 units, a lone surrogate 3 as U+FFFD).
    if (used + 3 * key.length > scratch.length) scratch = segmentScratch = grown(scratch, used, 3 * key.length)
    const length = writeKeyBytes(scratch, key, used)
    const kind = scratch[used] as number
    const previous = lastOfKind[kind] as number
    const shared = previous < 0 ? 0 : sharedPrefixLength(scratch, starts[previous] as number, lengths[previous] as number, used, length)
    lastOfKind[kind] = starts.length
    starts.push(used)
    lengths.push(length)
    shares.push(shared)
    used += length
    const suffix = length - shared
    size += 1 + varintLength(2 * shared + 1) + varintLength(suffix) + suffix + (entry.live ? varintLength(entry.bytes) : 0)
  }
  const row = Buffer.allocUnsafe(size)
  let at = writeVarint(row, 4, count)
  let i = 0
  for (const entry of entries.values()) {
    const start = starts[i] as number
    const length = lengths[i] as number
    const shared = shares[i++] as number
    row[at++] = scratch[start] as number
    at = writeVarint(row, at, 2 * shared + (entry.live ? FLAG_LIVE : FLAG_TOMBSTONE))
    at = writeVarint(row, at, length - shared)
    // A key's suffix is short: copied byte by byte (Buffer#copy's checks cost more than the copy).
    for (let from = start + shared; from < start + length; from++) row[at++] = scratch[from] as number
    if (entry.live) at = writeVarint(row, at, entry.bytes)
  }
  invariant(at === size, 'segment size computed exactly')
  row.writeUInt32LE(crc32(row.subarray(4)), 0)
  return row
}

/** `encodeSegment`'s keys, one after another (encoding is synchronous and never nested); grows to the largest segment's keys. */
let segmentScratch: Buffer = Buffer.allocUnsafe(16 * 1024)
/** Per kind (a key's first byte), the position in the segment of the last key of that kind; -1 before the first. */
const lastOfKind = new Int32Array(256)

/**
 * Writes `key` as UTF-8 at `at` (the caller made room: 3 bytes per unit);
 * returns its byte length. An ASCII key (every key a ledger of ASCII names
 * writes) is copied unit by unit, without a call into the UTF-8 encoder.
 */
function writeKeyBytes(buffer: Buffer, key: string, at: number): number {
  const length = key.length
  for (let i = 0; i < length; i++) {
    const unit = key.charCodeAt(i)
    if (unit >= 0x80) return buffer.write(key, at, 'utf8')
    buffer[at + i] = unit
  }
  return length
}

/** A buffer of at least `used + more` bytes holding `buffer`'s first `used` (doubling). */
function grown(buffer: Buffer, used: number, more: number): Buffer {
  let length = buffer.length * 2
  while (length < used + more) length *= 2
  const larger = Buffer.allocUnsafe(length)
  buffer.copy(larger, 0, 0, used)
  return larger
}

/**
 * Bytes two keys share from their start: `a` at `aStart` (`aLength` bytes)
 * and `b` at `bStart` (`bLength`), both in `bytes`; never the whole of `b`
 * (a key always writes at least one byte of its own).
 */
function sharedPrefixLength(bytes: Buffer, aStart: number, aLength: number, bStart: number, bLength: number): number {
  const limit = Math.min(aLength, bLength - 1)
  let shared = 0
  while (shared < limit && bytes[aStart + shared] === bytes[bStart + shared]) shared++
  return shared
}

/** A segment's keys and their state, values not yet read; throws `MalformedMirrorRow` on any inconsistency. */
export function decodeSegment(rowKey: Buffer, row: Buffer): [CanonicalKey, Entry][] {
  const where = rowKey.toString('hex')
  if (row.length < 5) throw new MalformedMirrorRow(`short row ${where}`)
  if (row.readUInt32LE(0) !== crc32(row.subarray(4))) throw new MalformedMirrorRow(`checksum mismatch in ${where}`)
  const read = { at: 4 }
  const varint = (): number => {
    let value = 0
    for (let shift = 0; shift < 35; shift += 7) {
      if (read.at >= row.length) throw new MalformedMirrorRow(`truncated row ${where}`)
      const byte = row[read.at++] as number
      value += (byte & 0x7f) * 2 ** shift
      if (byte < 0x80) return value
    }
    throw new MalformedMirrorRow(`bad length in ${where}`)
  }
  const count = varint()
  if (count === 0) throw new MalformedMirrorRow(`empty segment ${where}`)
  const entries: [CanonicalKey, Entry][] = []
  const seen = new Set<string>()
  const lastOfKind = new Map<number, Buffer>()
  for (let i = 0; i < count; i++) {
    if (read.at >= row.length) throw new MalformedMirrorRow(`truncated row ${where}`)
    const kind = row[read.at++] as number
    const sharedAndFlag = varint()
    const flag = sharedAndFlag % 2
    const shared = (sharedAndFlag - flag) / 2
    const previous = lastOfKind.get(kind)
    if (shared > 0 && (previous === undefined || shared > previous.length)) throw new MalformedMirrorRow(`key shares more than its kind's previous key in ${where}`)
    const suffixLength = varint()
    if (suffixLength === 0 || read.at + suffixLength > row.length) throw new MalformedMirrorRow(`key overruns row ${where}`)
    const suffix = row.subarray(read.at, read.at + suffixLength)
    read.at += suffixLength
    const keyBytes = shared === 0 ? Buffer.from(suffix) : Buffer.concat([(previous as Buffer).subarray(0, shared), suffix])
    if (keyBytes[0] !== kind) throw new MalformedMirrorRow(`key of another kind in ${where}`)
    if (shared !== keysSharedLength(previous ?? EMPTY, keyBytes)) throw new MalformedMirrorRow(`key not in its one front-coded form in ${where}`)
    lastOfKind.set(kind, keyBytes)
    const key = keyBytes.toString('utf8') as CanonicalKey
    if (!isAttributeKey(key) || seen.has(key) || Buffer.byteLength(key, 'utf8') !== keyBytes.length) throw new MalformedMirrorRow(`bad or repeated key in ${where}`)
    seen.add(key)
    entries.push([key, flag === FLAG_LIVE ? { state: 'awaiting', attribute: null, live: true, bytes: varint() } : TOMBSTONE])
  }
  if (read.at !== row.length) throw new MalformedMirrorRow(`trailing bytes in ${where}`)
  return entries
}

const EMPTY = Buffer.alloc(0)

/** `sharedPrefixLength` of two keys in buffers of their own (restore, which checks the one front-coded form). */
function keysSharedLength(a: Buffer, b: Buffer): number {
  const limit = Math.min(a.length, b.length - 1)
  let shared = 0
  while (shared < limit && a[shared] === b[shared]) shared++
  return shared
}

function isAttributeKey(key: string): boolean {
  try {
    kindOf(key as CanonicalKey)
    return true
  } catch {
    return false
  }
}

function varintLength(value: number): number {
  let length = 1
  while (value >= 0x80) {
    value = Math.floor(value / 0x80)
    length++
  }
  return length
}

function writeVarint(row: Buffer, at: number, value: number): number {
  while (value >= 0x80) {
    row[at++] = (value & 0x7f) | 0x80
    value = Math.floor(value / 0x80)
  }
  row[at++] = value
  return at
}
