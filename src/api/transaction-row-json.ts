import { ATTRIBUTE_ROW_LAYOUT, InvariantViolation, JsonBytes, PackedTag, TRANSACTION_ROW_LAYOUT, TransactionRowFlag, asciiText, isPackedString, packedObjectFields, readPackedString, writePackedJson } from '../domain/index.ts'
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
  if (row[0] === TRANSACTION_ROW_LAYOUT) return printFixedTransactionRow(row)
  if (row[0] !== ATTRIBUTE_ROW_LAYOUT) return undefined
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

/**
 * A row of the transaction layout (`TRANSACTION_ROW_LAYOUT`, docs/adr/0012)
 * printed as `printTransaction` prints its decoded record: the layout's
 * items are copied in the printer's order, names looked up by position,
 * the commit volumes left unread (answers printed as stored have none).
 * `decodeTransactionRow` owns the layout's checks; here a row that does not
 * read as the layout says is an InvariantViolation, as there.
 */
function printFixedTransactionRow(row: Buffer): string {
  const out = writer
  const from = out.length
  try {
    const cursor: PackedCursor = { offset: 1 }
    const flags = varint(row, cursor)
    out.ascii(fixed.id)
    writeUnsigned(row, cursor, out)
    const timestamp = skipItem(row, cursor)
    const insertedAt = (flags & TransactionRowFlag.insertedAt) !== 0 ? skipItem(row, cursor) : timestamp
    const updatedAt = (flags & TransactionRowFlag.updatedAt) !== 0 ? skipItem(row, cursor) : insertedAt
    const reference = (flags & TransactionRowFlag.reference) !== 0 ? skipItem(row, cursor) : -1
    const revertedAt = (flags & TransactionRowFlag.revertedAt) !== 0 ? skipItem(row, cursor) : -1
    const template = (flags & TransactionRowFlag.template) !== 0 ? skipItem(row, cursor) : -1
    const metadata = skipItem(row, cursor)
    const postings = varint(row, cursor)
    if (!(postings <= row.length)) throw new InvariantViolation('transaction row with more postings than bytes')
    names.length = 0
    out.ascii(fixed.postings)
    for (let i = 0; i < postings; i++) {
      const source = nameAt(row, cursor)
      const destination = nameAt(row, cursor)
      const asset = nameAt(row, cursor)
      out.ascii(i === 0 ? fixed.firstSource : fixed.source)
      writePackedJson(row, { offset: source }, out)
      out.ascii(fixed.destination)
      writePackedJson(row, { offset: destination }, out)
      out.ascii(fixed.amount)
      writeUnsigned(row, cursor, out)
      out.ascii(fixed.asset)
      writePackedJson(row, { offset: asset }, out)
      out.byte(closeBrace)
    }
    out.ascii(fixed.timestamp)
    writePackedJson(row, { offset: timestamp }, out)
    out.ascii(fixed.insertedAt)
    writePackedJson(row, { offset: insertedAt }, out)
    out.ascii(fixed.updatedAt)
    writePackedJson(row, { offset: updatedAt }, out)
    out.ascii(fixed.metadata)
    writePackedJson(row, { offset: metadata }, out)
    out.ascii((flags & TransactionRowFlag.reverted) !== 0 ? fixed.revertedTrue : fixed.revertedFalse)
    if (reference >= 0) {
      out.ascii(fixed.reference)
      writePackedJson(row, { offset: reference }, out)
    }
    if (revertedAt >= 0) {
      out.ascii(fixed.revertedAt)
      writePackedJson(row, { offset: revertedAt }, out)
    }
    if (template >= 0) {
      out.ascii(fixed.template)
      writePackedJson(row, { offset: template }, out)
    }
    out.byte(closeBrace)
    return out.takeStringFrom(from)
  } finally {
    out.discardFrom(from)
  }
}

/** The offset of the item at `cursor`, stepped over. */
function skipItem(row: Buffer, cursor: PackedCursor): number {
  const at = cursor.offset
  writePackedJson(row, cursor, undefined)
  return at
}

/** The offsets of the names a fixed row has met so far (one row printed at a time). */
const names: number[] = []

/** A name reference (a known position, or the next one followed by the name's item): the name item's offset. */
function nameAt(row: Buffer, cursor: PackedCursor): number {
  const position = varint(row, cursor)
  if (position < names.length) return names[position] as number
  if (position !== names.length) throw new InvariantViolation(`transaction row names position ${position} of ${names.length}`)
  const at = skipItem(row, cursor)
  names.push(at)
  return at
}

/** A bare LEB128 unsigned integer (an id, an amount) printed as its decimal digits. */
function writeUnsigned(row: Buffer, cursor: PackedCursor, out: JsonBytes): void {
  const start = cursor.offset
  let value = 0
  let scale = 1
  // Seven groups are at most 2^49: exact in a double. A longer number is read as a bigint.
  for (let group = 0; group < 7; group++) {
    const byte = row[cursor.offset++]
    if (byte === undefined) throw new InvariantViolation('transaction row cut short')
    value += (byte & 0x7f) * scale
    if (byte < 0x80) return out.safeInteger(value)
    scale *= 0x80
  }
  cursor.offset = start
  let big = 0n
  let shift = 0n
  for (;;) {
    const byte = row[cursor.offset++]
    if (byte === undefined) throw new InvariantViolation('transaction row cut short')
    big |= BigInt(byte & 0x7f) << shift
    if (byte < 0x80) return out.raw(big.toString())
    shift += 7n
  }
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
/** The fixed layout's printed field openings, in the printer's order. */
const fixed = {
  id: asciiText('{"id":'),
  postings: asciiText(',"postings":['),
  firstSource: asciiText('{"source":'),
  source: asciiText(',{"source":'),
  destination: asciiText(',"destination":'),
  amount: asciiText(',"amount":'),
  asset: asciiText(',"asset":'),
  timestamp: asciiText('],"timestamp":'),
  insertedAt: asciiText(',"insertedAt":'),
  updatedAt: asciiText(',"updatedAt":'),
  metadata: asciiText(',"metadata":'),
  revertedTrue: asciiText(',"reverted":true'),
  revertedFalse: asciiText(',"reverted":false'),
  reference: asciiText(',"reference":'),
  revertedAt: asciiText(',"revertedAt":'),
  template: asciiText(',"template":'),
}
