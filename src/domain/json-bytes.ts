import { InvariantViolation } from './errors.ts'
import { withRoom } from './room.ts'

/**
 * Printable ASCII checked once, as bytes: a printer's constant text (field
 * names, punctuation), encoded when its module loads, that `JsonBytes.ascii`
 * then copies without looking at each code unit again as `raw` does.
 */
export type AsciiText = Uint8Array & { readonly __ascii: true }

export function asciiText(text: string): AsciiText {
  const bytes = new Uint8Array(text.length)
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit > 0x7e || unit < 0x20) throw new InvariantViolation(`constant JSON text holds the code unit ${unit}`)
    bytes[i] = unit
  }
  return bytes as AsciiText
}

/** Integers below this print from small-integer arithmetic (`smallInteger`). */
const smallIntegerBound = 0x7fffffffn

/**
 * JSON text written straight into bytes (UTF-8), for the printers at the
 * HTTP edge and the export: no string is concatenated piece by piece (a
 * rope that the socket or the file then has to flatten and encode again),
 * and the answer leaves as one `Buffer`. What it writes is what
 * `stringifyJson` prints, encoded as UTF-8.
 *
 * A writer is used within one synchronous stretch: `take` hands its bytes
 * on and empties it. Its buffer grows to the largest text written and is
 * kept for the next one.
 */
export class JsonBytes {
  private buffer: Buffer
  private offset = 0

  /**
   * The writers are long-lived and shared (answers, the v2 log hash): one
   * large print grows the buffer, and emptying it gives the room back past
   * `keptBytesMax`, so a 16 MiB answer is not held for the process's life.
   */
  constructor(
    private readonly initialBytes = 16 * 1024,
    private readonly keptBytesMax = 1024 * 1024,
  ) {
    this.buffer = Buffer.allocUnsafe(initialBytes)
  }

  /** The buffer's size: what the writer holds now, written or not. */
  get capacity(): number {
    return this.buffer.length
  }

  /** Called when the writer is empty again. */
  private emptied(): void {
    this.offset = 0
    if (this.buffer.length > this.keptBytesMax) this.buffer = Buffer.allocUnsafe(this.initialBytes)
  }

  /** Bytes written since the last `take`. */
  get length(): number {
    return this.offset
  }

  private reserve(bytes: number): void {
    // The common case stays inline: most writes fit.
    if (this.offset + bytes > this.buffer.length) this.buffer = withRoom(this.buffer, this.offset, bytes)
  }

  /** Text that JSON prints as it is (punctuation, field names, digits): printable ASCII only, and the newline ending a JSON line. */
  raw(text: string): void {
    const length = text.length
    this.reserve(length)
    const buffer = this.buffer
    let offset = this.offset
    for (let i = 0; i < length; i++) {
      const unit = text.charCodeAt(i)
      if (unit > 0x7e || (unit < 0x20 && unit !== 0x0a)) throw new InvariantViolation(`raw JSON text holds the code unit ${unit}`)
      buffer[offset++] = unit
    }
    this.offset = offset
  }

  /** Text checked once by `asciiText` (a printer's constant punctuation and field names), copied as it is. */
  ascii(text: AsciiText): void {
    this.bytes(text)
  }

  /**
   * A string as `JSON.stringify` quotes it: printable ASCII other than `"`
   * and `\` is copied as it is; a string with anything else (control
   * characters, non-ASCII, lone surrogates) is quoted by `JSON.stringify`
   * and encoded.
   */
  string(text: string): void {
    if (!this.plainString(text, false)) this.utf8(JSON.stringify(text))
  }

  /** The first `end` code units of a text the caller has checked to be printable ASCII (a date it validated): copied without another check. */
  checkedAscii(text: string, end: number): void {
    this.reserve(end)
    const buffer = this.buffer
    let offset = this.offset
    for (let i = 0; i < end; i++) buffer[offset++] = text.charCodeAt(i)
    this.offset = offset
  }

  /**
   * A string quoted as it is when it is printable ASCII that neither JSON nor
   * an HTML-safe encoder (Go's) escapes: no `"`, `\`, `<`, `>`, `&`. Checked
   * while copied, in one pass; otherwise nothing is written and the answer is
   * false (the caller escapes it).
   */
  htmlSafePlainString(text: string): boolean {
    return this.plainString(text, true)
  }

  /** Quotes `text` if nothing in it needs escaping (with `htmlSafe`, nor `<`, `>`, `&`); false, with nothing written, otherwise. */
  private plainString(text: string, htmlSafe: boolean): boolean {
    const length = text.length
    this.reserve(length + 2)
    const buffer = this.buffer
    let offset = this.offset
    buffer[offset++] = 0x22
    for (let i = 0; i < length; i++) {
      const unit = text.charCodeAt(i)
      if (unit < 0x20 || unit > 0x7e || unit === 0x22 || unit === 0x5c) return false
      if (htmlSafe && (unit === 0x3c || unit === 0x3e || unit === 0x26)) return false
      buffer[offset++] = unit
    }
    buffer[offset++] = 0x22
    this.offset = offset
    return true
  }

  /**
   * A string given as its UTF-8 bytes (`source[start, end)`, well-formed), as
   * `string` quotes it: copied as it is when nothing in it needs escaping
   * (non-ASCII is printed as UTF-8 either way), else quoted from its text.
   */
  quotedUtf8(source: Uint8Array, start: number, end: number): void {
    this.reserve(end - start + 2)
    const buffer = this.buffer
    let offset = this.offset
    buffer[offset++] = 0x22
    // Checked and copied in one pass (short strings: a loop beats Buffer.copy's call).
    for (let i = start; i < end; i++) {
      const byte = source[i] as number
      if (byte < 0x20 || byte === 0x22 || byte === 0x5c) return this.string(Buffer.from(source.buffer, source.byteOffset + start, end - start).toString('utf8'))
      buffer[offset++] = byte
    }
    buffer[offset++] = 0x22
    this.offset = offset
  }

  /** One byte of JSON punctuation (`{`, `,`, `:`, …). */
  byte(value: number): void {
    this.reserve(1)
    this.buffer[this.offset++] = value
  }

  /** Bytes that are JSON text already (a quoted word kept printed). */
  bytes(source: Uint8Array): void {
    const length = source.length
    this.reserve(length)
    const buffer = this.buffer
    let offset = this.offset
    for (let i = 0; i < length; i++) buffer[offset++] = source[i] as number
    this.offset = offset
  }

  /** A safe integer's digits (a small one written without a string). */
  safeInteger(value: number): void {
    if (!Number.isSafeInteger(value)) throw new InvariantViolation(`${value} is not an integer JSON prints exactly`)
    if (value >= 0 && value < 0x7fffffff) return this.smallInteger(value)
    this.raw(String(value))
  }

  /**
   * An integer as its digits (`bigint`, or a safe integer `number`). Ids,
   * log ids and most amounts and volumes are small: written digit by digit
   * from a small integer, without the string `toString` allocates.
   */
  integer(value: bigint | number): void {
    if (typeof value === 'bigint') {
      if (value >= 0n && value < smallIntegerBound) return this.smallInteger(Number(value))
      return this.raw(value.toString())
    }
    if (typeof value !== 'number') throw new InvariantViolation(`an integer field holds a ${typeof value}`)
    this.safeInteger(value)
  }

  /** The digits of an integer in [0, 2^31 − 1): small-integer arithmetic, no string. */
  private smallInteger(value: number): void {
    let length = 1
    for (let rest = value; rest >= 10; rest = (rest / 10) | 0) length++
    this.reserve(length)
    const buffer = this.buffer
    let at = this.offset + length
    this.offset = at
    let rest = value
    do {
      const next = (rest / 10) | 0
      buffer[--at] = 0x30 + rest - next * 10
      rest = next
    } while (rest > 0)
  }

  /** Any JSON text, encoded as UTF-8 (a fallback: what another printer produced). */
  utf8(text: string): void {
    this.reserve(3 * text.length)
    this.offset += this.buffer.write(text, this.offset, 'utf8')
  }

  /** Forgets the bytes written since `from` (a print that failed half way). */
  discardFrom(from: number): void {
    if (from <= 0) this.emptied()
    else if (from < this.offset) this.offset = from
  }

  /** The bytes written since `from`, not copied: valid only until the next write (a digest read at once). */
  viewFrom(from: number): Uint8Array {
    return this.buffer.subarray(from, this.offset)
  }

  /** The bytes written since `from` as a string, then forgets them (a caller that wants a string). */
  takeStringFrom(from: number): string {
    const text = this.buffer.toString('utf8', from, this.offset)
    if (from <= 0) this.emptied()
    else this.offset = from
    return text
  }

  /** The bytes written since the last `take`, in a `Buffer` of their own; the writer is empty again. */
  take(): Buffer {
    const bytes = Buffer.allocUnsafe(this.offset)
    this.buffer.copy(bytes, 0, 0, this.offset)
    this.emptied()
    return bytes
  }
}
