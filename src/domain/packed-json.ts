import { InvariantViolation, invariant } from './errors.ts'
import type { JsonBytes } from './json-bytes.ts'
import { PackedTag, packedWord, unpackValue } from './packed.ts'
import { instantCodeText } from './dates.ts'
import { stringifyJson } from './json.ts'

/**
 * JSON text straight from packed bytes (`packed.ts`), without decoding them
 * into objects first: what an export prints for every stored log. The text
 * is exactly `stringifyJson(unpackValue(bytes))` encoded as UTF-8 — keys in
 * the packed order, which is the order the decoded object iterates (a packed
 * object was written from an object's own iteration order; an object with
 * integer-like keys is printed from its decoded value, since decoding puts
 * those first whatever the packed order), integers as
 * digits, strings quoted as `JSON.stringify` quotes them. Most of it is a
 * copy: field names and ASCII or UTF-8 strings with nothing to escape go from
 * the row to the output as they are; a string that needs escaping, a lone
 * surrogate, a float or an integer beyond 2^52 goes through the decoded value.
 *
 * It reads the item layout only, not a row's meaning: whichever row holds a
 * packed JSON-shaped value can be printed with it.
 */

const Tag = PackedTag

/** Where an item ends, and its value when a caller asked for a string (a field it needs to read). */
export interface PackedCursor {
  offset: number
}

function varint(bytes: Buffer, cursor: PackedCursor): number {
  let value = 0
  let scale = 1
  for (;;) {
    const byte = bytes[cursor.offset++]
    if (byte === undefined) throw new InvariantViolation('packed value cut short')
    value += (byte & 0x7f) * scale
    if (byte < 0x80) return value
    scale *= 0x80
    invariant(scale <= 2 ** 56, 'packed varint too long')
  }
}

function take(bytes: Buffer, cursor: PackedCursor, length: number): number {
  const start = cursor.offset
  invariant(start + length <= bytes.length, 'packed value cut short')
  cursor.offset = start + length
  return start
}

/**
 * Writes the item at `cursor` as JSON into `out` (or, with `out` undefined,
 * only moves past it) and leaves `cursor` after it.
 */
export function writePackedJson(bytes: Buffer, cursor: PackedCursor, out: JsonBytes | undefined): void {
  const tag = bytes[cursor.offset++]
  switch (tag) {
    case Tag.null:
      return out?.bytes(NULL)
    case Tag.false:
      return out?.bytes(FALSE)
    case Tag.true:
      return out?.bytes(TRUE)
    case Tag.integer: {
      // Read before `out?.`: an optional call skips evaluating its arguments.
      const zigzag = varint(bytes, cursor)
      // |v| ≤ 2^52: exact in a double, printed as the same digits a bigint prints.
      if (out !== undefined) out.safeInteger(zigzag % 2 === 0 ? zigzag / 2 : -(zigzag + 1) / 2)
      return
    }
    case Tag.bigInteger: {
      const negative = bytes[cursor.offset++] === 1
      const length = varint(bytes, cursor)
      const start = take(bytes, cursor, length)
      if (out === undefined) return
      const magnitude = BigInt(`0x${bytes.toString('latin1', start, start + length)}`)
      return out.raw((negative ? -magnitude : magnitude).toString())
    }
    case Tag.float: {
      const start = take(bytes, cursor, 8)
      return out?.utf8(JSON.stringify(bytes.readDoubleLE(start)))
    }
    case Tag.string: {
      const length = varint(bytes, cursor)
      const start = take(bytes, cursor, length)
      return out?.quotedUtf8(bytes, start, start + length)
    }
    case Tag.string16: {
      const length = varint(bytes, cursor)
      const start = take(bytes, cursor, 2 * length)
      return out?.string(bytes.toString('utf16le', start, start + 2 * length))
    }
    case Tag.instant: {
      // A stored date: its text is printable ASCII with nothing to escape.
      const text = instantCodeText(varint(bytes, cursor))
      return out?.string(text)
    }
    case Tag.word: {
      const position = varint(bytes, cursor)
      const quoted = quotedWords[position] ?? quoteWord(position)
      if (out !== undefined) out.bytes(quoted)
      return
    }
    case Tag.array: {
      const count = varint(bytes, cursor)
      invariant(count <= bytes.length - cursor.offset, 'packed array longer than its buffer')
      out?.byte(0x5b) // [
      for (let i = 0; i < count; i++) {
        if (i > 0) out?.byte(0x2c) // ,
        writePackedJson(bytes, cursor, out)
      }
      return out?.byte(0x5d) // ]
    }
    case Tag.object: {
      const start = cursor.offset - 1
      const mark = out?.length ?? 0
      const count = varint(bytes, cursor)
      invariant(2 * count <= bytes.length - cursor.offset, 'packed object longer than its buffer')
      out?.byte(0x7b) // {
      let inIterationOrder = true
      for (let i = 0; i < count; i++) {
        if (i > 0) out?.byte(0x2c) // ,
        invariant(isStringTag(bytes[cursor.offset]), 'a packed object key is a string')
        if (inIterationOrder && isArrayIndexKey(bytes, cursor.offset)) inIterationOrder = false
        writePackedJson(bytes, cursor, out)
        out?.byte(0x3a) // :
        writePackedJson(bytes, cursor, out)
      }
      if (out === undefined) return
      if (inIterationOrder) return out.byte(0x7d) // }
      // A decoded object iterates integer-like keys first, whatever the packed order
      // (a canonically sorted row puts "10" before "2"): print what decoding gives.
      out.discardFrom(mark)
      return out.utf8(stringifyJson(unpackValue(Buffer.concat([Buffer.of(0), bytes.subarray(start, cursor.offset)]), 0)))
    }
    default:
      throw new InvariantViolation(`packed item with tag ${String(tag)}`)
  }
}

/**
 * Whether the key at `offset` is an array index ("0", "7", "4294967294"):
 * the keys a JavaScript object iterates first, in numeric order.
 */
function isArrayIndexKey(bytes: Buffer, offset: number): boolean {
  if (bytes[offset] !== Tag.string) return false
  const length = bytes[offset + 1] as number
  if (length < 1 || length > 10) return false
  const first = bytes[offset + 2] as number
  if (first === 0x30) return length === 1
  let value = 0
  for (let i = 0; i < length; i++) {
    const byte = bytes[offset + 2 + i] as number
    if (byte < 0x30 || byte > 0x39) return false
    value = value * 10 + (byte - 0x30)
  }
  return value < 4294967295
}

const NULL = Buffer.from('null')
const FALSE = Buffer.from('false')
const TRUE = Buffer.from('true')

/** Each word as JSON prints it (quoted), built on first use. */
const quotedWords: Buffer[] = []

function quoteWord(position: number): Buffer {
  const quoted = Buffer.from(JSON.stringify(packedWord(position)), 'utf8')
  quotedWords[position] = quoted
  return quoted
}

function isStringTag(tag: number | undefined): boolean {
  return tag === Tag.string || tag === Tag.word || tag === Tag.string16 || tag === Tag.instant
}

/** The string item at `cursor` (a key, or a field a caller reads), leaving `cursor` after it. */
export function readPackedString(bytes: Buffer, cursor: PackedCursor): string {
  const tag = bytes[cursor.offset++]
  switch (tag) {
    case Tag.word:
      return packedWord(varint(bytes, cursor))
    case Tag.instant:
      return instantCodeText(varint(bytes, cursor))
    case Tag.string: {
      const length = varint(bytes, cursor)
      const start = take(bytes, cursor, length)
      return bytes.toString('utf8', start, start + length)
    }
    case Tag.string16: {
      const length = varint(bytes, cursor)
      const start = take(bytes, cursor, 2 * length)
      return bytes.toString('utf16le', start, start + 2 * length)
    }
    default:
      throw new InvariantViolation(`packed string with tag ${String(tag)}`)
  }
}

/**
 * The field count of the packed object behind the layout byte `layout`,
 * leaving `cursor` at its first key; undefined (cursor unmoved) when the
 * bytes do not start so. For a reader that walks a row's fields in one pass.
 */
export function openPackedObject(bytes: Buffer, layout: number, cursor: PackedCursor): number | undefined {
  if (bytes.length < 3 || bytes[0] !== layout || bytes[1] !== Tag.object) return undefined
  cursor.offset = 2
  return varint(bytes, cursor)
}

/** A bare LEB128 count at `cursor` (a fixed layout's, `PackedShape.count`), leaving `cursor` after it. */
export function readPackedCount(bytes: Buffer, cursor: PackedCursor): number {
  return varint(bytes, cursor)
}

/** Whether the item at `offset` is a string (the caller then reads it with `readPackedString`). */
export function isPackedString(bytes: Buffer, offset: number): boolean {
  return isStringTag(bytes[offset])
}

/**
 * The top-level fields of a packed object behind the layout byte `layout`:
 * each field's name and the offset of its value item, in packed order.
 * Nothing is decoded but the names.
 */
export function packedObjectFields(bytes: Buffer, layout: number): Map<string, number> {
  invariant(bytes.length > 0 && bytes[0] === layout, () => `packed value of layout ${bytes[0] ?? 'none'}, ${layout} expected`)
  const cursor: PackedCursor = { offset: 1 }
  invariant(bytes[cursor.offset++] === Tag.object, 'a packed object expected')
  const count = varint(bytes, cursor)
  const fields = new Map<string, number>()
  for (let i = 0; i < count; i++) {
    const name = readPackedString(bytes, cursor)
    invariant(!fields.has(name), () => `packed object repeats key ${JSON.stringify(name)}`)
    fields.set(name, cursor.offset)
    writePackedJson(bytes, cursor, undefined)
  }
  invariant(cursor.offset === bytes.length, 'packed value followed by extra bytes')
  return fields
}
