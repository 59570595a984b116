import { InvariantViolation, invariant } from './errors.ts'
import { withRoom } from './room.ts'
import { instantCode, instantCodeText } from './dates.ts'
import type { Json } from './json.ts'
import { ListedVolumes } from './volumes.ts'

/**
 * The engine's binary encoding of a JSON-shaped value ("packed"): what the
 * store's attribute rows hold instead of JSON text (docs/adr/0009). JSON stays
 * at the HTTP edge; inside the engine a value is written once, without a
 * printer, and read back without a parser.
 *
 * It decodes to exactly what `parseJson(canonicalJson(value))` gives — the
 * form every reader was written against: integers come back as `bigint`
 * (whether they were `number` or `bigint`), other numbers as `number`,
 * `undefined` fields are dropped, `undefined` array items become `null`, and
 * a `__proto__` key stays an own data property. With `sorted`, object keys
 * are written in JSON's canonical order, so equal values pack to equal bytes.
 *
 * Layout: one leading byte names the layout of the whole buffer (the caller's
 * version byte, checked when unpacking), then one item:
 *
 *   0x00 null | 0x01 false | 0x02 true
 *   0x03 integer, |v| ≤ 2^52: zigzag LEB128 (the zigzag value stays exact in a double)
 *   0x04 integer beyond: sign byte (0 +, 1 −), LEB128 length, magnitude as hex ASCII
 *   0x05 other number: float64 LE
 *   0x06 string: LEB128 byte length, UTF-8
 *   0x07 string that is not well-formed UTF-16 (a lone surrogate): LEB128 unit count, UTF-16LE
 *   0x08 array: LEB128 count, items
 *   0x09 object: LEB128 count, then key (a string item) and value per entry
 *   0x0a word: LEB128 position in `words` (a field name or constant the engine writes often)
 *   0x0b bytes: LEB128 length, the bytes (a `Uint8Array`; records only, see below)
 *   0x0c instant: LEB128 of `instantCode` (`domain/dates.ts`) — a string that is a stored date in
 *        its canonical text (`2026-12-07T03:45:00.123Z`, or microseconds), 8 bytes instead of 26;
 *        it unpacks to that same string (storage schema 4, docs/adr/0011)
 *
 * Bytes have no JSON form, so they break the contract above: only records
 * packed with `packRecord` may hold them (a WAL proposal carries the stored
 * rows it seeds as they are, ADR 0009), and only `unpackRecord` reads them
 * back, as a fresh `Buffer` that shares no memory with the record. `packValue`
 * refuses a `Uint8Array` and `unpackValue` a bytes item: a row holds JSON-shaped
 * values only, and one that does not is malformed.
 *
 * `words` is append-only: a position, once written, means that word forever
 * (a new word takes the next position).
 */

/** The item tags of the layout above (the export's transcoder reads the same items). */
export const PackedTag = { null: 0x00, false: 0x01, true: 0x02, integer: 0x03, bigInteger: 0x04, float: 0x05, string: 0x06, string16: 0x07, array: 0x08, object: 0x09, word: 0x0a, bytes: 0x0b, instant: 0x0c } as const
const Tag = PackedTag

const words: readonly string[] = [
  // transactions and postings
  'id', 'postings', 'source', 'destination', 'amount', 'asset', 'timestamp', 'insertedAt', 'updatedAt', 'reference',
  'metadata', 'reverted', 'revertedAt', 'template', 'preCommitVolumes', 'postCommitVolumes', 'input', 'output',
  // accounts, ledgers, references, idempotency records, schemas
  'address', 'insertionDate', 'firstUsage', 'name', 'bucket', 'addedAt', 'features', 'nextTransactionId', 'nextLogId',
  'accountCount', 'lastLogHash', 'latestSchemaVersion', 'transactionId', 'requestHash', 'result', 'version', 'createdAt',
  'logId', 'data', 'chart',
  // v2 logs and order outputs
  'type', 'date', 'hash', 'idempotencyKey', 'schemaVersion', 'transaction', 'accountMetadata', 'revertedTransactionID',
  'revertedTransaction', 'targetType', 'targetId', 'key', 'NEW_TRANSACTION', 'REVERTED_TRANSACTION', 'SET_METADATA',
  'DELETE_METADATA', 'INSERTED_SCHEMA', 'TRANSACTION', 'ACCOUNT', 'METADATA', 'SCHEMA', 'volumes', 'balance',
  // since storage schema 5 (docs/adr/0012): the names every order and outcome repeats in WAL records and audit bodies
  'order', 'ledger', 'force', 'coverageIndexes', 'coverage', 'seed', 'status', 'applied', 'failed', 'skipped',
  'idempotencyHit', 'code', 'message', 'CREATE_TRANSACTION', 'REVERT_TRANSACTION', 'CREATE_LEDGER', 'script', 'plain',
  'vars', 'scriptInputs', 'atEffectiveDate', 'plannedPostings', 'atomic', 'continueOnFailure', 'proposalId', 'index',
  'seq', 'outcome', 'idempotencyKeys', 'predictedIndex', 'cacheEpoch', 'storeIndexAtLoad', 'cacheGeneration',
]
const wordPositions = new Map<string, number>(words.map((word, i) => [word, i]))
/** No longer string is a word: hashes and most names are written without looking them up. */
const wordLengthMax = Math.max(...words.map((word) => word.length))

/** The word a packed word item names (`packed-json.ts` prints it without decoding the item around it). */
export function packedWord(position: number): string {
  const word = words[position]
  invariant(word !== undefined, 'packed word out of range')
  return word
}

/**
 * The longest bare unsigned integer a fixed layout holds: 2^256 - 1 (an
 * amount's bound, `AMOUNT_LIMIT`) takes 37 groups of 7 bits.
 */
const UNSIGNED_BYTES_MAX = 37
const UNSIGNED_LIMIT = 1n << BigInt(7 * UNSIGNED_BYTES_MAX)

/** Zigzag doubles magnitudes: beyond 2^52 the result would not be exact in a double. */
const INTEGER_MAX = 2 ** 52
const INTEGER_MAX_BIG = BigInt(INTEGER_MAX)

/** A growable buffer reused by every pack (packing is synchronous, never nested). */
class Writer {
  buffer: Buffer = Buffer.allocUnsafe(4096)
  offset = 0

  reserve(bytes: number): void {
    // The common case stays inline: most writes fit.
    if (this.offset + bytes > this.buffer.length) this.buffer = withRoom(this.buffer, this.offset, bytes)
  }

  byte(value: number): void {
    this.reserve(1)
    this.buffer[this.offset++] = value
  }

  /**
   * What was written, in a fresh buffer of exactly its size. A row is short:
   * it is copied byte by byte, without `Buffer#copy`, whose checks and source
   * view (a `Uint8Array` per call) cost more than copying a row.
   */
  take(): Buffer {
    const length = this.offset
    // A row the cache keeps is in memory of its own (`packsOwnMemory`) when it is larger than V8 keeps
    // a typed array inside its heap; other packs take a slice of Node's pool.
    const packed = packOwned && length > ON_HEAP_TYPED_ARRAY_BYTES_MAX ? Buffer.allocUnsafeSlow(length) : Buffer.allocUnsafe(length)
    if (length > COPY_LOOP_BYTES_MAX) {
      this.buffer.copy(packed, 0, 0, length)
      return packed
    }
    const buffer = this.buffer
    for (let i = 0; i < length; i++) packed[i] = buffer[i] as number
    return packed
  }

  /** LEB128 of a non-negative integer up to 2^54 (exact in a double). */
  varint(value: number): void {
    this.reserve(8)
    while (value >= 0x80) {
      this.buffer[this.offset++] = (value % 0x80) | 0x80
      value = Math.floor(value / 0x80)
    }
    this.buffer[this.offset++] = value
  }
}

/** Up to this many bytes `Writer.take` copies in a loop; a longer pack (a WAL record, an audit body) through `Buffer#copy`. */
const COPY_LOOP_BYTES_MAX = 512

const writer = new Writer()

/** Whether `Writer.take` gives each pack an ArrayBuffer of its own (`packsOwnMemory`). */
let packOwned = false

/**
 * V8 keeps a typed array of up to 64 bytes inside its heap (`Buffer.allocUnsafeSlow` of a short
 * row makes one); the first native call or `.buffer` read then moves it out, an ArrayBuffer and a
 * copy. A short row is better packed in the pool: the store takes the slice as it is and the cache
 * copies it into a heap array of its own (`ownedRow`), which nothing moves.
 */
const ON_HEAP_TYPED_ARRAY_BYTES_MAX = 64

/**
 * While on, every pack's buffer longer than 64 bytes owns its memory exactly
 * (offset 0, no larger ArrayBuffer behind it) rather than being a slice of
 * Node's shared pool: for attribute rows, which the cache keeps (it would
 * otherwise copy each into memory of its own, `ownedRow`). The bytes are the
 * same either way. The caller turns it off again (try…finally): packing is
 * synchronous.
 */
export function packsOwnMemory(on: boolean): void {
  packOwned = on
}

/** Whether the pack in progress may write bytes items (`packRecord`): set by every entry point (packing is never nested). */
let bytesAllowed = false

/** Packs `value` behind the layout byte `layout`; a fresh buffer of exactly its size. */
export function packValue(value: unknown, layout: number, sorted: boolean): Buffer {
  return pack(value, layout, sorted, false)
}

/**
 * As `packValue` (in the value's own key order), and a `Uint8Array` anywhere
 * in `value` is written as a bytes item: for engine records that carry
 * binary data (a WAL proposal's seeds), never for rows.
 */
export function packRecord(value: unknown, layout: number): Buffer {
  return pack(value, layout, false, true)
}

function pack(value: unknown, layout: number, sorted: boolean, withBytes: boolean): Buffer {
  invariant(Number.isInteger(layout) && layout >= 0 && layout <= 0xff, 'a layout is one byte')
  writer.offset = 0
  writer.byte(layout)
  bytesAllowed = withBytes
  startKeyStack()
  if (!writeItem(value, sorted)) throw new InvariantViolation('value has no packed representation')
  return writer.take()
}

/**
 * The items of an array packed ahead of the value that holds them, in
 * chunks (`packItems`): `packValue` writes it as that array, the same bytes
 * as packing the items in place. A large value is so packed a slice at a
 * time (a bulk's orders, with turns of the event loop between slices).
 */
export class PackedItems {
  constructor(
    readonly count: number,
    readonly chunks: readonly Buffer[],
  ) {}

  get byteLength(): number {
    let bytes = 0
    for (const chunk of this.chunks) bytes += chunk.byteLength
    return bytes
  }
}

/** Packs `items` as an array's items, without layout byte or array header: one chunk of `PackedItems`. */
export function packItems(items: readonly unknown[], sorted: boolean): Buffer {
  writer.offset = 0
  bytesAllowed = false
  startKeyStack()
  for (const item of items) if (!writeItem(item, sorted)) writer.byte(Tag.null)
  return writer.take()
}

/**
 * Packing a value of a shape known ahead (the hot rows: a volumes attribute,
 * a by-account index row, a transaction record) field by field, without the
 * generic walk's `Object.keys`, sort and per-field checks. The caller writes
 * exactly what `packValue(value, layout, sorted)` would: the fields present
 * (never an undefined one), in canonical order when `sorted`, each object's
 * count first. It is one canonical form with the generic packer, so the
 * bytes are the same (held by `test/domain/packed-shapes.test.ts`); a value
 * of a shape the caller does not know goes through `packValue`. Synchronous
 * and never nested, like every pack.
 */
export const PackedShape = {
  begin(layout: number): void {
    writer.offset = 0
    writer.byte(layout)
    bytesAllowed = false
    startKeyStack()
  },
  /** An object header: `count` fields follow, each a `key` then its value. */
  object(count: number): void {
    writer.byte(Tag.object)
    writer.varint(count)
  },
  array(count: number): void {
    writer.byte(Tag.array)
    writer.varint(count)
  },
  key(name: string): void {
    writeString(name)
  },
  /** A field name packed ahead (`packedKey`): its bytes copied, without the date test and word lookup of `key`. */
  knownKey(key: PackedKey): void {
    const bytes = key.bytes
    writer.reserve(bytes.length)
    const buffer = writer.buffer
    let offset = writer.offset
    for (let i = 0; i < bytes.length; i++) buffer[offset++] = bytes[i] as number
    writer.offset = offset
  },
  string(text: string): void {
    writeString(text)
  },
  integer(value: bigint): void {
    if (value <= INTEGER_MAX_BIG && value >= -INTEGER_MAX_BIG) writeInteger(Number(value))
    else writeBigInteger(value)
  },
  boolean(value: boolean): void {
    writer.byte(value ? Tag.true : Tag.false)
  },
  /** A bare LEB128 count or position (no tag): fixed layouts know what comes where. */
  count(value: number): void {
    invariant(Number.isSafeInteger(value) && value >= 0, 'a packed count is a non-negative integer')
    writer.varint(value)
  },
  /** A bare LEB128 of a non-negative integer of any size (no tag): amounts and ids in fixed layouts. */
  unsigned(value: bigint): void {
    invariant(value >= 0n, 'a packed unsigned integer is not negative')
    if (value <= INTEGER_MAX_BIG) {
      writer.varint(Number(value))
      return
    }
    // What a reader takes (`UNSIGNED_BYTES_MAX` groups of 7 bits) is all a writer may write: amounts stay below 2^256.
    invariant(value < UNSIGNED_LIMIT, 'a packed unsigned integer past 2^259')
    writer.reserve(UNSIGNED_BYTES_MAX)
    let rest = value
    while (rest >= 0x80n) {
      writer.buffer[writer.offset++] = Number(rest & 0x7fn) | 0x80
      rest >>= 7n
    }
    writer.buffer[writer.offset++] = Number(rest)
  },
  /** Bytes of a length the layout fixes (a log's 32-byte hash), as they are: no tag, no length. */
  raw(bytes: Uint8Array): void {
    writer.reserve(bytes.length)
    writer.buffer.set(bytes, writer.offset)
    writer.offset += bytes.length
  },
  /** Any value, through the generic walk (nested values of no fixed shape: metadata). */
  item(value: unknown, sorted: boolean): void {
    if (!writeItem(value, sorted)) throw new InvariantViolation('value has no packed representation')
  },
  /** Own keys in the order `packValue` writes them when sorted. */
  sortedKeys(record: Record<string, unknown>): string[] {
    return sortedKeys(record)
  },
  end(): Buffer {
    return writer.take()
  },
}

/** A field name's packed item, computed once (`PackedShape.knownKey` writes it). */
export interface PackedKey {
  readonly name: string
  readonly bytes: Uint8Array
}

/**
 * The item `PackedShape.key(name)` writes for `name`, computed once by that
 * same writer (so the bytes cannot differ), ahead of any pack (it packs,
 * and packing is never nested): the shape writers name their
 * constant fields through it.
 */
export function packedKey(name: string): PackedKey {
  return { name, bytes: Uint8Array.from(pack(name, 0, false, false).subarray(1)) }
}

/** Writes one item; false (nothing written) for what JSON skips: undefined, functions, symbols. */
function writeItem(value: unknown, sorted: boolean): boolean {
  switch (typeof value) {
    case 'string':
      writeString(value)
      return true
    case 'bigint':
      if (value <= INTEGER_MAX_BIG && value >= -INTEGER_MAX_BIG) writeInteger(Number(value))
      else writeBigInteger(value)
      return true
    case 'number':
      if (!Number.isFinite(value)) throw new InvariantViolation(`non-finite number ${value} has no packed representation`)
      // As JSON: an integer printed without exponent parses back as an exact integer.
      if (Number.isInteger(value) && Math.abs(value) < 1e21) {
        if (Math.abs(value) <= INTEGER_MAX) writeInteger(value)
        else writeBigInteger(BigInt(String(value))) // the digits JSON prints (2^60 prints …847000)
      } else {
        writer.reserve(9)
        writer.buffer[writer.offset++] = Tag.float
        writer.offset = writer.buffer.writeDoubleLE(value, writer.offset)
      }
      return true
    case 'boolean':
      writer.byte(value ? Tag.true : Tag.false)
      return true
    case 'object': {
      if (value === null) {
        writer.byte(Tag.null)
        return true
      }
      if (value instanceof PackedItems) {
        writer.byte(Tag.array)
        writer.varint(value.count)
        for (const chunk of value.chunks) {
          writer.reserve(chunk.byteLength)
          writer.offset += chunk.copy(writer.buffer, writer.offset)
        }
        return true
      }
      if (Array.isArray(value)) {
        writer.byte(Tag.array)
        writer.varint(value.length)
        for (const item of value) if (!writeItem(item, sorted)) writer.byte(Tag.null)
        return true
      }
      if (value instanceof Uint8Array) {
        if (!bytesAllowed) throw new InvariantViolation('bytes have no packed representation outside a record')
        writer.byte(Tag.bytes)
        writer.varint(value.byteLength)
        writer.reserve(value.byteLength)
        writer.buffer.set(value, writer.offset)
        writer.offset += value.byteLength
        return true
      }
      // A write's commit volumes as its apply built them (an idempotency record's answer): packed as the map of the same volumes.
      writeObject(value instanceof ListedVolumes ? value.toMap() : (value as Record<string, unknown>), sorted)
      return true
    }
    default:
      return false
  }
}

/**
 * Own keys in JSON's canonical order (UTF-16 code units, as `Array#sort`
 * orders strings). Records are small: an insertion sort with `<` beats the
 * generic sort's comparator calls there.
 */
function sortedKeys(record: Record<string, unknown>): string[] {
  const keys = Object.keys(record)
  if (keys.length > 16) return keys.sort()
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i] as string
    let j = i - 1
    while (j >= 0 && (keys[j] as string) > key) {
      keys[j + 1] = keys[j] as string
      j--
    }
    keys[j + 1] = key
  }
  return keys
}

/**
 * The keys of the objects being packed, outermost first: each `writeObject`
 * gathers its record's keys above `keyStackTop` with `for…in` (an array per
 * object from `Object.keys` was the packer's largest allocation: several
 * records per order, for the WAL and the audit body) and gives its slots
 * back when done. Every entry point starts it empty (packing is never
 * nested; a pack that threw leaves nothing behind).
 *
 * `for…in` lists what `Object.keys` lists for the records packed here
 * (plain objects and maps without prototype: own enumerable string keys,
 * integer-like ones first, then in insertion order), and nothing else as long
 * as no enumerable property is added to `Object.prototype`, which every pack
 * checks (`startKeyStack`).
 */
const keyStack: string[] = []
let keyStackTop = 0
const plainRecord = {}

/**
 * Empties the key stack for a new pack. Refuses to pack once anything has
 * given `Object.prototype` an enumerable property: `for…in` would list it
 * in every plain record, and packed bytes (hashed, compared across nodes)
 * would change.
 */
function startKeyStack(): void {
  keyStackTop = 0
  for (const key in plainRecord) throw new InvariantViolation(`Object.prototype has an enumerable property ${JSON.stringify(key)}: a plain record would pack it`)
}

/** Past this many keys an object's keys are sorted by the generic sort; below, by insertion. */
const KEYS_INSERTION_SORT_MAX = 16

function writeObject(record: Record<string, unknown>, sorted: boolean): void {
  const keys = keyStack
  const from = keyStackTop
  let end = from
  for (const key in record) keys[end++] = key
  if (sorted) sortKeyRange(keys, from, end)
  keyStackTop = end
  writer.byte(Tag.object)
  // Under 0x80 keys the count is one byte, patched once the skipped fields (undefined, functions) are
  // known; past it the fields are counted first, the varint's length depending on the count.
  let countAt = -1
  if (end - from < 0x80) {
    writer.reserve(1)
    countAt = writer.offset++
  } else {
    let count = 0
    for (let at = from; at < end; at++) if (isPackedField(record[keys[at] as string])) count++
    writer.varint(count)
  }
  let count = 0
  for (let at = from; at < end; at++) {
    const key = keys[at] as string
    const field = record[key]
    if (!isPackedField(field)) continue
    writeString(key)
    writeItem(field, sorted)
    count++
  }
  if (countAt >= 0) writer.buffer[countAt] = count
  keyStackTop = from
}

/** Whether an object's field is packed: JSON drops undefined, functions and symbols. */
function isPackedField(field: unknown): boolean {
  return field !== undefined && typeof field !== 'function' && typeof field !== 'symbol'
}

/** `keys[from, end)` in JSON's canonical order (UTF-16 code units, as `sortedKeys`). */
function sortKeyRange(keys: string[], from: number, end: number): void {
  if (end - from > KEYS_INSERTION_SORT_MAX) {
    const range = keys.slice(from, end).sort()
    for (let i = 0; i < range.length; i++) keys[from + i] = range[i] as string
    return
  }
  for (let i = from + 1; i < end; i++) {
    const key = keys[i] as string
    let j = i - 1
    while (j >= from && (keys[j] as string) > key) {
      keys[j + 1] = keys[j] as string
      j--
    }
    keys[j + 1] = key
  }
}

function writeInteger(value: number): void {
  writer.byte(Tag.integer)
  writer.varint(value >= 0 ? value * 2 : -value * 2 - 1)
}

function writeBigInteger(value: bigint): void {
  const negative = value < 0n
  const hex = (negative ? -value : value).toString(16)
  writer.byte(Tag.bigInteger)
  writer.byte(negative ? 1 : 0)
  writer.varint(hex.length)
  writer.reserve(hex.length)
  writer.offset += writer.buffer.write(hex, writer.offset, 'latin1')
}

const asciiFastPathMax = 64

function writeString(text: string): void {
  const length = text.length
  if (length === 24 || length === 27) {
    // The dates of every transaction, account and log: one number, not 24 characters (no word is a date).
    const code = instantCode(text)
    if (code >= 0) {
      writer.byte(Tag.instant)
      writer.varint(code)
      return
    }
  }
  if (length <= wordLengthMax) {
    const position = wordPositions.get(text)
    if (position !== undefined) {
      writer.byte(Tag.word)
      writer.varint(position)
      return
    }
  }
  if (length <= asciiFastPathMax) {
    // Short ASCII (names, assets, dates of other forms): bytes written directly, no UTF-8 encoder call.
    writer.reserve(2 + length)
    const buffer = writer.buffer
    const start = writer.offset + 2
    let i = 0
    for (; i < length; i++) {
      const unit = text.charCodeAt(i)
      if (unit >= 0x80) break
      buffer[start + i] = unit
    }
    if (i === length) {
      buffer[writer.offset] = Tag.string
      buffer[writer.offset + 1] = length
      writer.offset = start + length
      return
    }
  }
  if (!(text as unknown as { isWellFormed(): boolean }).isWellFormed()) {
    // UTF-8 cannot carry a lone surrogate (it would become U+FFFD): keep the code units.
    writer.byte(Tag.string16)
    writer.varint(length)
    writer.reserve(2 * length)
    writer.offset += writer.buffer.write(text, writer.offset, 'utf16le')
    return
  }
  const bytes = Buffer.byteLength(text, 'utf8')
  writer.byte(Tag.string)
  writer.varint(bytes)
  writer.reserve(bytes)
  writer.offset += writer.buffer.write(text, writer.offset, bytes, 'utf8')
}

/** Reads what `packValue` wrote behind `layout`; anything else (a bytes item too) is an InvariantViolation. */
export function unpackValue(bytes: Uint8Array, layout: number): Json {
  return unpack(bytes, layout, false) as Json
}

/**
 * `unpackValue` of a packed object without the top-level fields named in
 * `omitted`: their bytes are stepped over, nothing of them is built. A list
 * page that does not print a transaction's commit volumes need not decode
 * them (docs/performance.md, "Reads").
 */
export function unpackObjectWithout(bytes: Uint8Array, layout: number, omitted: ReadonlySet<string>): { [key: string]: Json } {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  invariant(buffer.length > 0 && buffer[0] === layout, () => `packed value of layout ${buffer[0] ?? 'none'}, ${layout} expected`)
  const reader = new Reader(buffer, false)
  reader.offset = 1
  const value = reader.objectWithout(omitted)
  invariant(reader.offset === buffer.length, 'packed value followed by extra bytes')
  return value as { [key: string]: Json }
}

/** A packed record's value: JSON-shaped, with `Buffer`s where bytes were packed. */
export type PackedRecordValue = Json | Buffer | PackedRecordValue[] | { [key: string]: PackedRecordValue }

/** Reads what `packRecord` (or `packValue`) wrote behind `layout`; bytes come back as fresh `Buffer`s. */
export function unpackRecord(bytes: Uint8Array, layout: number): PackedRecordValue {
  return unpack(bytes, layout, true)
}

function unpack(bytes: Uint8Array, layout: number, withBytes: boolean): PackedRecordValue {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  invariant(buffer.length > 0 && buffer[0] === layout, () => `packed value of layout ${buffer[0] ?? 'none'}, ${layout} expected`)
  const reader = new Reader(buffer, withBytes)
  reader.offset = 1
  const value = reader.item()
  invariant(reader.offset === buffer.length, 'packed value followed by extra bytes')
  return value
}

/**
 * A reader over a row of a fixed layout (a sequence of items and bare
 * counts at known places, `PackedShape.count` / `unsigned` writing the
 * bare ones): the caller reads them in the order they were written and
 * calls `end` to check nothing is left. The layout byte is checked here.
 */
export interface PackedFields {
  /** A bare count (`PackedShape.count`). */
  count(): number
  /** A bare unsigned integer (`PackedShape.unsigned`). */
  unsigned(): bigint
  /** A string item (text, word or instant). */
  string(): string
  /** Any item, as `unpackValue` reads it. */
  item(): Json
  /** `length` bytes as written by `PackedShape.raw` (a view of the row, not a copy). */
  raw(length: number): Buffer
  /** Throws unless every byte was read. */
  end(): void
}

export function packedFields(bytes: Uint8Array, layout: number): PackedFields {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  invariant(buffer.length > 0 && buffer[0] === layout, () => `packed value of layout ${buffer[0] ?? 'none'}, ${layout} expected`)
  const reader = new Reader(buffer, false)
  reader.offset = 1
  // Without bytes allowed, `item` reads JSON-shaped values only (a bytes item is refused).
  return reader as unknown as PackedFields
}

/** True when `bytes` starts with the layout byte `layout` (rows of another encoding do not). */
export function isPacked(bytes: Uint8Array, layout: number): boolean {
  return bytes.length > 0 && bytes[0] === layout
}

class Reader {
  offset = 0
  constructor(
    private readonly buffer: Buffer,
    private readonly withBytes: boolean,
  ) {}

  private byte(): number {
    const value = this.buffer[this.offset++]
    if (value === undefined) throw new InvariantViolation('packed value cut short')
    return value
  }

  count(): number {
    return this.varint()
  }

  /** A bare LEB128 of any size, refused when not minimal (one value, one form) or past `UNSIGNED_BYTES_MAX` bytes. */
  unsigned(): bigint {
    let small = 0
    let scale = 1
    let at = 0
    for (;;) {
      const byte = this.byte()
      if (byte < 0x80) {
        invariant(byte !== 0 || at === 0, 'packed unsigned integer not in its shortest form')
        small += byte * scale
        return BigInt(small)
      }
      small += (byte & 0x7f) * scale
      scale *= 0x80
      if (++at === 7) break // 49 bits: beyond, a double would lose digits
    }
    let value = BigInt(small)
    let shift = 49n
    for (;;) {
      const byte = this.byte()
      invariant(++at <= UNSIGNED_BYTES_MAX, 'packed unsigned integer too long')
      value |= BigInt(byte & 0x7f) << shift
      if (byte < 0x80) {
        invariant(byte !== 0, 'packed unsigned integer not in its shortest form')
        return value
      }
      shift += 7n
    }
  }

  end(): void {
    invariant(this.offset === this.buffer.length, 'packed value followed by extra bytes')
  }

  private varint(): number {
    let value = 0
    let scale = 1
    for (;;) {
      const byte = this.byte()
      value += (byte & 0x7f) * scale
      if (byte < 0x80) return value
      scale *= 0x80
      invariant(scale <= 2 ** 56, 'packed varint too long')
    }
  }

  raw(length: number): Buffer {
    const start = this.take(length)
    return this.buffer.subarray(start, start + length)
  }

  private take(length: number): number {
    const start = this.offset
    invariant(start + length <= this.buffer.length, 'packed value cut short')
    this.offset = start + length
    return start
  }

  string(): string {
    const tag = this.byte()
    switch (tag) {
      case Tag.word: {
        const word = words[this.varint()]
        invariant(word !== undefined, 'packed word out of range')
        return word
      }
      case Tag.string: {
        const length = this.varint()
        const start = this.take(length)
        return this.buffer.toString('utf8', start, start + length)
      }
      case Tag.string16: {
        const length = this.varint()
        const start = this.take(2 * length)
        return this.buffer.toString('utf16le', start, start + 2 * length)
      }
      case Tag.instant:
        return instantCodeText(this.varint())
      default:
        throw new InvariantViolation(`packed string with tag ${tag}`)
    }
  }

  /** An object; the values of the keys in `omitted` are stepped over and left out (their keys are still checked for repeats). */
  objectWithout(omitted: ReadonlySet<string> | undefined): { [key: string]: PackedRecordValue } {
    const tag = this.byte()
    invariant(tag === Tag.object, () => `packed object expected, tag ${tag}`)
    const count = this.varint()
    invariant(2 * count <= this.buffer.length - this.offset, 'packed object longer than its buffer')
    const object: { [key: string]: PackedRecordValue } = {}
    const seen = omitted === undefined ? undefined : new Set<string>()
    for (let i = 0; i < count; i++) {
      const key = this.string()
      if (omitted !== undefined && omitted.has(key)) {
        invariant(!(seen as Set<string>).has(key), () => `packed object repeats key ${JSON.stringify(key)}`)
        ;(seen as Set<string>).add(key)
        this.skip()
        continue
      }
      const value = this.item()
      invariant(!Object.hasOwn(object, key), () => `packed object repeats key ${JSON.stringify(key)}`)
      // Assigning `__proto__` would set the prototype: keep it as data, as the JSON parser does.
      if (key === '__proto__') Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true })
      else object[key] = value
    }
    return object
  }

  /** Steps over a string (an object's key) without building it; the tags `string` reads. */
  private skipString(): void {
    const tag = this.byte()
    if (tag === Tag.word) invariant(this.varint() < words.length, 'packed word out of range')
    else if (tag === Tag.string) this.take(this.varint())
    else if (tag === Tag.string16) this.take(2 * this.varint())
    else throw new InvariantViolation(`packed string with tag ${tag}`)
  }

  /** Steps over one item without building it, checking what `item` checks of its shape. */
  private skip(): void {
    const tag = this.byte()
    switch (tag) {
      case Tag.null:
      case Tag.false:
      case Tag.true:
        return
      case Tag.word:
      case Tag.string:
      case Tag.string16:
        this.offset--
        this.skipString()
        return
      case Tag.integer:
        this.varint()
        return
      case Tag.bigInteger:
        this.byte()
        this.take(this.varint())
        return
      case Tag.float:
        this.take(8)
        return
      case Tag.array: {
        const count = this.varint()
        invariant(count <= this.buffer.length - this.offset, 'packed array longer than its buffer')
        for (let i = 0; i < count; i++) this.skip()
        return
      }
      case Tag.object: {
        const count = this.varint()
        invariant(2 * count <= this.buffer.length - this.offset, 'packed object longer than its buffer')
        for (let i = 0; i < count; i++) {
          this.skipString()
          this.skip()
        }
        return
      }
      case Tag.bytes:
        invariant(this.withBytes, 'packed bytes outside a record')
        this.take(this.varint())
        return
      default:
        throw new InvariantViolation(`packed item with tag ${String(tag)}`)
    }
  }

  item(): PackedRecordValue {
    const tag = this.buffer[this.offset]
    switch (tag) {
      case Tag.word:
      case Tag.string:
      case Tag.string16:
      case Tag.instant:
        return this.string()
      case Tag.null:
        this.offset++
        return null
      case Tag.false:
        this.offset++
        return false
      case Tag.true:
        this.offset++
        return true
      case Tag.integer: {
        this.offset++
        const zigzag = this.varint()
        return BigInt(zigzag % 2 === 0 ? zigzag / 2 : -(zigzag + 1) / 2)
      }
      case Tag.bigInteger: {
        this.offset++
        const negative = this.byte() === 1
        const length = this.varint()
        const start = this.take(length)
        const magnitude = BigInt(`0x${this.buffer.toString('latin1', start, start + length)}`)
        return negative ? -magnitude : magnitude
      }
      case Tag.float: {
        this.offset++
        const start = this.take(8)
        return this.buffer.readDoubleLE(start)
      }
      case Tag.array: {
        this.offset++
        const count = this.varint()
        invariant(count <= this.buffer.length - this.offset, 'packed array longer than its buffer')
        const items: PackedRecordValue[] = []
        for (let i = 0; i < count; i++) items.push(this.item())
        return items
      }
      case Tag.object:
        return this.objectWithout(undefined)
      case Tag.bytes: {
        invariant(this.withBytes, 'packed bytes outside a record')
        this.offset++
        const length = this.varint()
        const start = this.take(length)
        // A copy: whoever keeps the bytes (the cache keeps seeded rows) must not pin the whole record.
        return Buffer.from(this.buffer.subarray(start, start + length))
      }
      default:
        throw new InvariantViolation(`packed item with tag ${String(tag)}`)
    }
  }
}
