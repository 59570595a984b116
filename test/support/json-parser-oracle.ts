import type { Json } from '../../src/domain/index.ts'

/**
 * THE ORACLE: the resumable state-machine parser as it was before the
 * recursive fast parser replaced it (commit 061e821), kept unchanged so the
 * differential tests can hold the new one to its values and errors.
 *
 * A lossless JSON parser that can stop and resume. Integer literals parse to
 * `bigint` exactly (amounts go up to 2^256 − 1), other numbers to `number`.
 * It runs in slices of a bounded number of characters, so a large request
 * body can be parsed between other work instead of holding the event loop
 * (`parseJsonBody` in `src/api/json-body.ts`); the same code, run to the end,
 * parses store rows.
 *
 * Stricter than `JSON.parse` in one way: a key repeated in one object is an
 * error (which value would the ledger have meant?). Like `JSON.parse`, a key
 * `__proto__` is kept as an own data property, never a prototype.
 */

export class JsonSyntaxError extends Error {
  constructor(message: string, readonly position: number) {
    super(`${message} at position ${position}`)
    this.name = 'JsonSyntaxError'
  }
}

/** Deeper nesting is refused: no request or row of ours comes near it. */
export const jsonDepthMax = 1000

const enum Expect {
  Value,
  ValueOrArrayEnd,
  KeyOrObjectEnd,
  Key,
  Colon,
  CommaOrEnd,
  End,
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const MINUS = 0x2d
const PLUS = 0x2b
const DOT = 0x2e
const ZERO = 0x30
const NINE = 0x39

type Container = { readonly array: Json[]; readonly object?: undefined; key?: undefined } | { readonly array?: undefined; readonly object: { [key: string]: Json }; key: string | undefined }

export class JsonParser {
  private position = 0
  private expect: Expect = Expect.Value
  private readonly stack: Container[] = []
  private value: Json | undefined

  constructor(private readonly text: string) {}

  get done(): boolean {
    return this.expect === Expect.End && this.position >= this.text.length
  }

  /** The parsed value; only once `step` returned true. */
  result(): Json {
    if (!this.done || this.value === undefined) throw new JsonSyntaxError('parse not finished', this.position)
    return this.value
  }

  /** Parses about `charactersMax` more characters (one token may overrun it); true once the text is parsed. */
  step(charactersMax: number): boolean {
    const text = this.text
    const length = text.length
    const stop = this.position + charactersMax
    while (this.position < stop) {
      let c = text.charCodeAt(this.position)
      while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = text.charCodeAt(++this.position)
      if (this.position >= length) break
      switch (this.expect) {
        case Expect.ValueOrArrayEnd:
        case Expect.Value:
          if (c === CLOSE_BRACKET && this.expect === Expect.ValueOrArrayEnd) {
            this.position++
            this.close()
          } else {
            this.readValue(c)
          }
          break
        case Expect.KeyOrObjectEnd:
        case Expect.Key: {
          if (c === CLOSE_BRACE && this.expect === Expect.KeyOrObjectEnd) {
            this.position++
            this.close()
            break
          }
          if (c !== QUOTE) throw this.unexpected('property name', c)
          const top = this.stack[this.stack.length - 1] as Container
          top.key = this.readString()
          this.expect = Expect.Colon
          break
        }
        case Expect.Colon:
          if (c !== COLON) throw this.unexpected("':' after property name", c)
          this.position++
          this.expect = Expect.Value
          break
        case Expect.CommaOrEnd: {
          const top = this.stack[this.stack.length - 1] as Container
          this.position++
          if (c === COMMA) this.expect = top.array !== undefined ? Expect.Value : Expect.Key
          else if (c === (top.array !== undefined ? CLOSE_BRACKET : CLOSE_BRACE)) this.close()
          else {
            this.position--
            throw this.unexpected(top.array !== undefined ? "',' or ']'" : "',' or '}'", c)
          }
          break
        }
        case Expect.End:
          throw this.unexpected('end of input', c)
      }
    }
    if (this.position >= length && this.expect !== Expect.End) {
      throw new JsonSyntaxError(this.expect === Expect.Value && this.stack.length === 0 && this.value === undefined ? 'JSON value expected but reached end of input' : 'unexpected end of input', this.position)
    }
    return this.done
  }

  private readValue(c: number): void {
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (this.stack.length >= jsonDepthMax) throw new JsonSyntaxError(`nesting deeper than ${jsonDepthMax}`, this.position)
      this.position++
      if (c === OPEN_BRACE) {
        this.stack.push({ object: {}, key: undefined })
        this.expect = Expect.KeyOrObjectEnd
      } else {
        this.stack.push({ array: [] })
        this.expect = Expect.ValueOrArrayEnd
      }
      return
    }
    if (c === QUOTE) return this.emit(this.readString())
    if (c === MINUS || (c >= ZERO && c <= NINE)) return this.emit(this.readNumber())
    if (this.text.startsWith('true', this.position)) {
      this.position += 4
      return this.emit(true)
    }
    if (this.text.startsWith('false', this.position)) {
      this.position += 5
      return this.emit(false)
    }
    if (this.text.startsWith('null', this.position)) {
      this.position += 4
      return this.emit(null)
    }
    throw this.unexpected('JSON value', c)
  }

  private emit(value: Json): void {
    const top = this.stack[this.stack.length - 1]
    if (top === undefined) {
      this.value = value
      this.expect = Expect.End
      return
    }
    this.expect = Expect.CommaOrEnd
    if (top.array !== undefined) {
      top.array.push(value)
      return
    }
    const key = top.key as string
    if (Object.hasOwn(top.object, key)) throw new JsonSyntaxError(`duplicate key ${JSON.stringify(key)}`, this.position)
    // Assigning `__proto__` would set the prototype: keep it as data, as JSON.parse does.
    if (key === '__proto__') Object.defineProperty(top.object, key, { value, writable: true, enumerable: true, configurable: true })
    else top.object[key] = value
  }

  private close(): void {
    const top = this.stack.pop() as Container
    this.emit(top.array ?? top.object)
  }

  /** A string token at `position` (its opening quote); leaves `position` after the closing quote. */
  private readString(): string {
    const text = this.text
    const start = this.position + 1
    let i = start
    for (;;) {
      const c = text.charCodeAt(i)
      if (c === QUOTE) {
        this.position = i + 1
        return text.slice(start, i)
      }
      if (c === BACKSLASH) break
      if (!(c >= 0x20)) throw this.badStringCharacter(i) // also NaN: the text ended
      i++
    }
    let value = text.slice(start, i)
    for (;;) {
      const c = text.charCodeAt(i)
      if (c === QUOTE) {
        this.position = i + 1
        return value
      }
      if (c === BACKSLASH) {
        value += this.readEscape(i)
        i += text.charCodeAt(i + 1) === 0x75 ? 6 : 2
        continue
      }
      if (!(c >= 0x20)) throw this.badStringCharacter(i)
      const runStart = i
      let d = c
      while (d !== QUOTE && d !== BACKSLASH && d >= 0x20) d = text.charCodeAt(++i)
      value += text.slice(runStart, i)
    }
  }

  private readEscape(at: number): string {
    const code = this.text.charCodeAt(at + 1)
    switch (code) {
      case QUOTE:
        return '"'
      case BACKSLASH:
        return '\\'
      case 0x2f:
        return '/'
      case 0x62:
        return '\b'
      case 0x66:
        return '\f'
      case 0x6e:
        return '\n'
      case 0x72:
        return '\r'
      case 0x74:
        return '\t'
      case 0x75: {
        const hex = this.text.slice(at + 2, at + 6)
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new JsonSyntaxError(`invalid unicode escape \\u${hex}`, at)
        return String.fromCharCode(parseInt(hex, 16))
      }
      default:
        throw new JsonSyntaxError(Number.isNaN(code) ? 'unterminated string' : `invalid escape character '\\${this.text[at + 1]}'`, at)
    }
  }

  private badStringCharacter(at: number): JsonSyntaxError {
    return at >= this.text.length ? new JsonSyntaxError('unterminated string', at) : new JsonSyntaxError(`control character U+${this.text.charCodeAt(at).toString(16).padStart(4, '0')} in string`, at)
  }

  /** JSON's number grammar; an integer literal (no fraction, no exponent) becomes an exact bigint. */
  private readNumber(): number | bigint {
    const text = this.text
    const start = this.position
    let i = start
    if (text.charCodeAt(i) === MINUS) i++
    const first = text.charCodeAt(i)
    if (first === ZERO) i++
    else if (first > ZERO && first <= NINE) i = this.digits(i)
    else throw new JsonSyntaxError(`invalid number '${text.slice(start, i + 1)}', a digit expected`, i)
    let integer = true
    if (text.charCodeAt(i) === DOT) {
      integer = false
      const after = this.digits(i + 1)
      if (after === i + 1) throw new JsonSyntaxError(`invalid number '${text.slice(start, after + 1)}', a digit expected after '.'`, after)
      i = after
    }
    const e = text.charCodeAt(i)
    if (e === 0x65 || e === 0x45) {
      integer = false
      i++
      const sign = text.charCodeAt(i)
      if (sign === PLUS || sign === MINUS) i++
      const after = this.digits(i)
      if (after === i) throw new JsonSyntaxError(`invalid number '${text.slice(start, after + 1)}', a digit expected in the exponent`, after)
      i = after
    }
    this.position = i
    const literal = text.slice(start, i)
    return integer ? BigInt(literal) : Number(literal)
  }

  private digits(from: number): number {
    let i = from
    let c = this.text.charCodeAt(i)
    while (c >= ZERO && c <= NINE) c = this.text.charCodeAt(++i)
    return i
  }

  private unexpected(expected: string, c: number): JsonSyntaxError {
    return new JsonSyntaxError(`${expected} expected but got '${String.fromCharCode(c)}'`, this.position)
  }
}
