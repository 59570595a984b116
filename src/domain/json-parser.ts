import type { Json } from './json.ts'

/**
 * A lossless JSON parser that can stop and resume. Integer literals parse to
 * `bigint` exactly (amounts go up to 2^256 − 1), other numbers to `number`.
 * It runs in slices of a bounded number of characters, so a large request
 * body can be parsed between other work instead of holding the event loop
 * (`parseJsonBody` in `src/api/json-body.ts`); the same code, run to the end,
 * parses store rows and every log `tally import` reads.
 *
 * Stricter than `JSON.parse` in one way: a key repeated in one object is an
 * error (which value would the ledger have meant?). Like `JSON.parse`, a key
 * `__proto__` is kept as an own data property, never a prototype.
 *
 * Built for speed on the hot path (every request body, every imported log):
 * one loop over character codes with the open containers on an explicit
 * stack, so the loop can stop at any value's start and resume there later;
 * strings without an escape are one `slice`; integer literals of up to 15
 * digits become a `bigint` from their value, with no string built. Its
 * values and its errors (message and position) are those of the state
 * machine it replaced, which the tests keep as their oracle.
 */

export class JsonSyntaxError extends Error {
  constructor(message: string, readonly position: number) {
    super(`${message} at position ${position}`)
    this.name = 'JsonSyntaxError'
  }
}

/** Deeper nesting is refused: no request or row of ours comes near it. */
export const jsonDepthMax = 1000

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
const SPACE = 0x20
const TAB = 0x09
const LINE_FEED = 0x0a
const CARRIAGE_RETURN = 0x0d

/** Up to this many digits, an integer's value is exact in a double (2^53 > 10^15). */
const exactDigitsMax = 15

type JsonObject = { [key: string]: Json }

/**
 * Where the last token read ended (the index after it). The readers below
 * return their token's value and leave its end here: a parse never yields
 * inside a token, so one module-wide cursor serves every parser.
 */
let tokenEnd = 0

export class JsonParser {
  private position = 0
  /** The containers being filled, outermost first. */
  private readonly containers: (Json[] | JsonObject)[] = []
  /** For each open container: the key its next value goes under, or undefined for an array. */
  private readonly keys: (string | undefined)[] = []
  private value: Json | undefined
  private finished = false

  /**
   * With `from`, parsing starts there; with `valueOnly`, it stops right after
   * the first value (`end` tells where) instead of requiring the text to end.
   */
  constructor(
    private readonly text: string,
    from = 0,
    private readonly valueOnly = false,
  ) {
    this.position = from
  }

  /** Where parsing stopped: after the value once done (and after trailing whitespace, unless `valueOnly`). */
  get end(): number {
    return this.position
  }

  get done(): boolean {
    return this.finished
  }

  /** The parsed value; only once `step` returned true. */
  result(): Json {
    if (!this.finished || this.value === undefined) throw new JsonSyntaxError('parse not finished', this.position)
    return this.value
  }

  /**
   * Parses about `charactersMax` more characters (a value started before the
   * bound is read to its end or to its first nested value); true once the
   * text is parsed.
   */
  step(charactersMax: number): boolean {
    if (this.finished) return true
    const text = this.text
    const length = text.length
    const containers = this.containers
    const keys = this.keys
    const stop = this.position + charactersMax
    let depth = containers.length
    let i = this.position
    let value: Json
    let c: number
    // Each turn reads one value at `i` (a value is expected there), then
    // places it and every container it closes.
    for (;;) {
      if (i >= stop) {
        this.position = i
        return false
      }
      c = text.charCodeAt(i)
      while (c === SPACE || c === LINE_FEED || c === CARRIAGE_RETURN || c === TAB) c = text.charCodeAt(++i)
      if (c === QUOTE) {
        value = readString(text, i)
        i = tokenEnd
      } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
        value = readNumber(text, i)
        i = tokenEnd
      } else if (c === OPEN_BRACE) {
        if (depth >= jsonDepthMax) throw new JsonSyntaxError(`nesting deeper than ${jsonDepthMax}`, i)
        c = text.charCodeAt(++i)
        while (c === SPACE || c === LINE_FEED || c === CARRIAGE_RETURN || c === TAB) c = text.charCodeAt(++i)
        if (c === CLOSE_BRACE) {
          value = {}
          i++
        } else {
          // The first key, then its value is expected.
          if (c !== QUOTE) throw endOrUnexpected('property name', text, i)
          const key = readKey(text, i)
          i = tokenEnd
          c = text.charCodeAt(i)
          while (c === SPACE || c === LINE_FEED || c === CARRIAGE_RETURN || c === TAB) c = text.charCodeAt(++i)
          if (c !== COLON) throw endOrUnexpected("':' after property name", text, i)
          i++
          containers.push({})
          keys.push(key)
          depth++
          continue
        }
      } else if (c === OPEN_BRACKET) {
        if (depth >= jsonDepthMax) throw new JsonSyntaxError(`nesting deeper than ${jsonDepthMax}`, i)
        c = text.charCodeAt(++i)
        while (c === SPACE || c === LINE_FEED || c === CARRIAGE_RETURN || c === TAB) c = text.charCodeAt(++i)
        if (c === CLOSE_BRACKET) {
          value = []
          i++
        } else {
          if (i >= length) throw new JsonSyntaxError('unexpected end of input', length)
          containers.push([])
          keys.push(undefined)
          depth++
          continue
        }
      } else if (c === 0x74 /* t */ && text.charCodeAt(i + 1) === 0x72 && text.charCodeAt(i + 2) === 0x75 && text.charCodeAt(i + 3) === 0x65) {
        value = true
        i += 4
      } else if (c === 0x66 /* f */ && text.charCodeAt(i + 1) === 0x61 && text.charCodeAt(i + 2) === 0x6c && text.charCodeAt(i + 3) === 0x73 && text.charCodeAt(i + 4) === 0x65) {
        value = false
        i += 5
      } else if (c === 0x6e /* n */ && text.charCodeAt(i + 1) === 0x75 && text.charCodeAt(i + 2) === 0x6c && text.charCodeAt(i + 3) === 0x6c) {
        value = null
        i += 4
      } else if (i >= length) {
        throw new JsonSyntaxError(depth === 0 ? 'JSON value expected but reached end of input' : 'unexpected end of input', length)
      } else {
        throw unexpected('JSON value', c, i)
      }
      // Place the value; while that closes a container, place the container.
      for (;;) {
        if (depth === 0) {
          if (this.valueOnly) {
            this.position = i
            this.value = value
            this.finished = true
            return true
          }
          c = text.charCodeAt(i)
          while (c === SPACE || c === LINE_FEED || c === CARRIAGE_RETURN || c === TAB) c = text.charCodeAt(++i)
          if (i < length) throw unexpected('end of input', c, i)
          this.position = i
          this.value = value
          this.finished = true
          return true
        }
        const container = containers[depth - 1] as Json[] | JsonObject
        const key = keys[depth - 1]
        if (key === undefined) {
          ;(container as Json[]).push(value)
          c = text.charCodeAt(i)
          while (c === SPACE || c === LINE_FEED || c === CARRIAGE_RETURN || c === TAB) c = text.charCodeAt(++i)
          if (c === COMMA) {
            i++
            break
          }
          if (c !== CLOSE_BRACKET) throw endOrUnexpected("',' or ']'", text, i)
        } else {
          const object = container as JsonObject
          if (Object.hasOwn(object, key)) throw new JsonSyntaxError(`duplicate key ${JSON.stringify(key)}`, i)
          // Assigning `__proto__` would set the prototype: keep it as data, as JSON.parse does.
          if (key === '__proto__') Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true })
          else object[key] = value
          c = text.charCodeAt(i)
          while (c === SPACE || c === LINE_FEED || c === CARRIAGE_RETURN || c === TAB) c = text.charCodeAt(++i)
          if (c === COMMA) {
            c = text.charCodeAt(++i)
            while (c === SPACE || c === LINE_FEED || c === CARRIAGE_RETURN || c === TAB) c = text.charCodeAt(++i)
            if (c !== QUOTE) throw endOrUnexpected('property name', text, i)
            keys[depth - 1] = readKey(text, i)
            i = tokenEnd
            c = text.charCodeAt(i)
            while (c === SPACE || c === LINE_FEED || c === CARRIAGE_RETURN || c === TAB) c = text.charCodeAt(++i)
            if (c !== COLON) throw endOrUnexpected("':' after property name", text, i)
            i++
            break
          }
          if (c !== CLOSE_BRACE) throw endOrUnexpected("',' or '}'", text, i)
        }
        // The container closes: it is the value to place in its parent.
        i++
        containers.pop()
        keys.pop()
        depth--
        value = container
      }
    }
  }
}

/** At the end of the text, the end-of-input error; otherwise `expected` but got the character at `at`. */
function endOrUnexpected(expected: string, text: string, at: number): JsonSyntaxError {
  return at >= text.length ? new JsonSyntaxError('unexpected end of input', text.length) : unexpected(expected, text.charCodeAt(at), at)
}

function unexpected(expected: string, c: number, at: number): JsonSyntaxError {
  return new JsonSyntaxError(`${expected} expected but got '${String.fromCharCode(c)}'`, at)
}

const keyCacheSize = 1024
/**
 * Only short keys are kept: V8 copies a slice this short, where a longer one
 * may point into the whole text, which the cache would then keep alive (a
 * body of megabytes behind one key). Most keys of ours are this short.
 */
const cachedKeyLengthMax = 12
const keyCache: (string | undefined)[] = new Array(keyCacheSize).fill(undefined)

/**
 * A key: a string token, the same string object as the last time these
 * characters were a key when the cache holds it (a key repeated from object
 * to object is then neither copied nor looked up again as a property name).
 * The cache only saves work: a key is taken from it only when every
 * character matches, so any text gives the same keys with or without it.
 */
function readKey(text: string, start: number): string {
  const from = start + 1
  const end = text.indexOf('"', from)
  const length = end - from
  if (end < 0 || length > cachedKeyLengthMax) return readString(text, start)
  const slot = (length * 61 + text.charCodeAt(from) * 7 + text.charCodeAt(end - 1)) & (keyCacheSize - 1)
  const cached = keyCache[slot]
  if (cached !== undefined && cached.length === length) {
    let k = 0
    while (k < length && cached.charCodeAt(k) === text.charCodeAt(from + k)) k++
    if (k === length) {
      tokenEnd = end + 1
      return cached
    }
  }
  for (let k = from; k < end; k++) {
    const c = text.charCodeAt(k)
    if (c === BACKSLASH || c < SPACE) return readString(text, start)
  }
  tokenEnd = end + 1
  const key = text.slice(from, end)
  keyCache[slot] = key
  return key
}

/** A string token at `start` (its opening quote); `tokenEnd` after the closing quote. */
function readString(text: string, start: number): string {
  const from = start + 1
  let i = from
  for (;;) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      tokenEnd = i + 1
      return text.slice(from, i)
    }
    if (c === BACKSLASH) break
    if (!(c >= SPACE)) throw badStringCharacter(text, i) // also NaN: the text ended
    i++
  }
  let value = text.slice(from, i)
  for (;;) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      tokenEnd = i + 1
      return value
    }
    if (c === BACKSLASH) {
      value += readEscape(text, i)
      i += text.charCodeAt(i + 1) === 0x75 ? 6 : 2
      continue
    }
    if (!(c >= SPACE)) throw badStringCharacter(text, i)
    const runStart = i
    let d = c
    while (d !== QUOTE && d !== BACKSLASH && d >= SPACE) d = text.charCodeAt(++i)
    value += text.slice(runStart, i)
  }
}

function readEscape(text: string, at: number): string {
  const code = text.charCodeAt(at + 1)
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
      let unit = 0
      for (let k = at + 2; k < at + 6; k++) {
        const h = text.charCodeAt(k)
        const digit = h >= ZERO && h <= NINE ? h - ZERO : h >= 0x61 && h <= 0x66 ? h - 0x57 : h >= 0x41 && h <= 0x46 ? h - 0x37 : -1
        if (digit < 0) throw new JsonSyntaxError(`invalid unicode escape \\u${text.slice(at + 2, at + 6)}`, at)
        unit = unit * 16 + digit
      }
      return String.fromCharCode(unit)
    }
    default:
      throw new JsonSyntaxError(Number.isNaN(code) ? 'unterminated string' : `invalid escape character '\\${text[at + 1]}'`, at)
  }
}

function badStringCharacter(text: string, at: number): JsonSyntaxError {
  return at >= text.length ? new JsonSyntaxError('unterminated string', at) : new JsonSyntaxError(`control character U+${text.charCodeAt(at).toString(16).padStart(4, '0')} in string`, at)
}

/**
 * JSON's number grammar at `start`; `tokenEnd` after it. An integer literal
 * (no fraction, no exponent) becomes an exact bigint: from its value when it
 * has at most 15 digits, from its text otherwise.
 */
function readNumber(text: string, start: number): number | bigint {
  let i = start
  const negative = text.charCodeAt(i) === MINUS
  if (negative) i++
  let c = text.charCodeAt(i)
  const digitsStart = i
  let magnitude = 0
  if (c === ZERO) {
    c = text.charCodeAt(++i)
  } else if (c > ZERO && c <= NINE) {
    do {
      magnitude = magnitude * 10 + (c - ZERO)
      c = text.charCodeAt(++i)
    } while (c >= ZERO && c <= NINE)
  } else {
    throw new JsonSyntaxError(`invalid number '${text.slice(start, i + 1)}', a digit expected`, i)
  }
  if (c !== DOT && c !== 0x65 && c !== 0x45) {
    tokenEnd = i
    if (i - digitsStart <= exactDigitsMax) return BigInt(negative ? -magnitude : magnitude)
    return BigInt(text.slice(start, i))
  }
  if (c === DOT) {
    const after = skipDigits(text, i + 1)
    if (after === i + 1) throw new JsonSyntaxError(`invalid number '${text.slice(start, after + 1)}', a digit expected after '.'`, after)
    i = after
    c = text.charCodeAt(i)
  }
  if (c === 0x65 || c === 0x45) {
    i++
    const sign = text.charCodeAt(i)
    if (sign === PLUS || sign === MINUS) i++
    const after = skipDigits(text, i)
    if (after === i) throw new JsonSyntaxError(`invalid number '${text.slice(start, after + 1)}', a digit expected in the exponent`, after)
    i = after
  }
  tokenEnd = i
  return Number(text.slice(start, i))
}

function skipDigits(text: string, from: number): number {
  let i = from
  let c = text.charCodeAt(i)
  while (c >= ZERO && c <= NINE) c = text.charCodeAt(++i)
  return i
}
