import { ATTRIBUTE_ROW_LAYOUT, JsonBytes, PackedTag, asciiText, isPackedString, packedObjectFields, readPackedString, writePackedJson } from '../domain/index.ts'
import type { AsciiText, PackedCursor } from '../domain/index.ts'

/**
 * A transaction as every answer prints it (`printTransaction`, without
 * commit or effective volumes), straight from its stored row: each field's
 * packed bytes copied as JSON (`writePackedJson`: exactly what printing the
 * decoded value gives) in the printer's order, without decoding the row into
 * a record first. For list pages that print rows as they are stored (no
 * `pit`, no filter left to judge, no volumes); `test/api/transaction-row-json.test.ts`
 * holds it to `printTransaction` of the decoded row.
 *
 * Undefined when the row is not of the shape this printer knows (a field
 * the printer needs missing, a posting of other fields): the caller then
 * decodes it and prints the record.
 */
export function printTransactionRow(row: Buffer): string | undefined {
  const fields = packedObjectFields(row, ATTRIBUTE_ROW_LAYOUT)
  const out = writer
  const from = out.length
  try {
    for (const [name, quoted] of leadingFields) {
      const offset = fields.get(name)
      if (offset === undefined) return undefined
      out.ascii(quoted)
      if (name !== 'postings') writePackedJson(row, { offset }, out)
      else if (!writePostings(row, offset, out)) return undefined
    }
    for (const [name, quoted] of optionalFields) {
      const offset = fields.get(name)
      if (offset === undefined) continue
      out.ascii(quoted)
      writePackedJson(row, { offset }, out)
    }
    out.byte(closeBrace)
    return out.takeStringFrom(from)
  } finally {
    out.discardFrom(from)
  }
}

/** `[{"source":…,"destination":…,"amount":…,"asset":…},…]` from the packed array at `offset`; false for another shape. */
function writePostings(row: Buffer, offset: number, out: JsonBytes): boolean {
  const cursor: PackedCursor = { offset }
  if (row[cursor.offset++] !== PackedTag.array) return false
  const count = varint(row, cursor)
  out.byte(openBracket)
  const at = new Map<string, number>()
  for (let i = 0; i < count; i++) {
    if (row[cursor.offset++] !== PackedTag.object) return false
    const fieldCount = varint(row, cursor)
    if (fieldCount !== postingFields.length) return false
    at.clear()
    for (let field = 0; field < fieldCount; field++) {
      if (!isPackedString(row, cursor.offset)) return false
      const name = readPackedString(row, cursor)
      at.set(name, cursor.offset)
      writePackedJson(row, cursor, undefined)
    }
    if (i > 0) out.byte(comma)
    for (const [name, quoted] of postingFields) {
      const value = at.get(name)
      if (value === undefined) return false
      out.ascii(quoted)
      writePackedJson(row, { offset: value }, out)
    }
    out.byte(closeBrace)
  }
  out.byte(closeBracket)
  return true
}

/** A packed LEB128 count (array or object size). */
function varint(bytes: Buffer, cursor: PackedCursor): number {
  let value = 0
  let scale = 1
  for (;;) {
    const byte = bytes[cursor.offset++]
    if (byte === undefined) return Number.NaN
    value += (byte & 0x7f) * scale
    if (byte < 0x80) return value
    scale *= 0x80
  }
}

/** Transaction answers are printed within one synchronous call, through this writer. */
const writer = new JsonBytes()

const comma = 0x2c
const closeBrace = 0x7d
const openBracket = 0x5b
const closeBracket = 0x5d

const named = (names: readonly string[], first: string): readonly (readonly [string, AsciiText])[] =>
  names.map((name, at) => [name, asciiText(`${at === 0 ? first : ','}${JSON.stringify(name)}:`)] as const)

/** The fields every transaction has, in the printer's order. */
const leadingFields = named(['id', 'postings', 'timestamp', 'insertedAt', 'updatedAt', 'metadata', 'reverted'], '{')
/** Fields printed when the transaction has them, after those. */
const optionalFields = named(['reference', 'revertedAt', 'template'], ',')
const postingFields = named(['source', 'destination', 'amount', 'asset'], '{')
