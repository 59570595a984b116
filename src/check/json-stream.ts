import type { Json } from '../domain/index.ts'
import { JsonParser, TallyError, parseJson } from '../domain/index.ts'

/** Largest single log accepted in a stream: bounds the memory of a streamed import. */
export const streamedValueBytesMax = 16 * 1024 * 1024

function importError(message: string): TallyError {
  return new TallyError({ code: 'IMPORT', kind: 'validation', message })
}

/**
 * Splits a stream of JSON objects — JSON lines (any whitespace between
 * objects, as Go's decoder reads v2 exports) or one JSON array of objects —
 * into parsed values, one at a time, holding at most one object's text.
 * Values go through the lossless codec (amounts stay exact).
 *
 * A log that lies whole in one chunk is parsed where it lies, in one pass
 * (the parser finds its end). Only a log that runs past its chunk, or one the
 * parser refuses, is delimited by counting brackets outside strings, then
 * parsed alone: its text is then held across chunks, and a refused log is
 * reported exactly as when read alone.
 */
export async function* parseJsonStream(source: AsyncIterable<Buffer | string>, valueBytesMax = streamedValueBytesMax): AsyncGenerator<Json> {
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let mode: 'undetermined' | 'lines' | 'array' | 'ended' = 'undetermined'
  let pending = '' // text of the value being delimited, from earlier chunks
  const delimiter = new Delimiter()
  let position = 0
  const decode = (chunk: Buffer | string, last: boolean): string => {
    try {
      return typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: !last })
    } catch {
      throw importError(`the stream is not valid UTF-8 near byte ${position}`)
    }
  }
  const chunks = (async function* () {
    for await (const chunk of source) {
      yield decode(chunk, false)
      position += chunk.length
    }
    yield decode(Buffer.alloc(0), true)
  })()
  for await (const text of chunks) {
    const length = text.length
    let i = 0
    if (delimiter.depth > 0) {
      // A log begun in an earlier chunk: find its end, then parse it alone.
      const close = delimiter.scan(text, 0)
      if (close < 0) {
        pending += text
        if (pending.length > valueBytesMax) throw importError(`a log is larger than ${valueBytesMax} bytes`)
        continue
      }
      const value = pending + text.slice(0, close + 1)
      pending = ''
      yield parseValue(value)
      i = close + 1
    }
    for (; i < length; i++) {
      // Code units, not one-character strings: every character between logs passes here.
      const code = text.charCodeAt(i)
      if (code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09) continue
      if (mode === 'ended') throw importError('data after the end of the JSON array')
      if (code === 0x5b /* [ */ && mode === 'undetermined') {
        mode = 'array'
        continue
      }
      if (mode === 'array' && code === 0x2c /* , */) continue
      if (mode === 'array' && code === 0x5d /* ] */) {
        mode = 'ended'
        continue
      }
      if (code !== 0x7b /* { */) throw importError(`expected a log object, found ${JSON.stringify(text[i])} near byte ${position + i}`)
      if (mode === 'undetermined') mode = 'lines'
      const parser = new JsonParser(text, i, true)
      let parsed = false
      try {
        parsed = parser.step(Number.POSITIVE_INFINITY)
      } catch {
        // Refused, or cut short by the chunk's end: delimited below.
      }
      if (parsed) {
        yield parser.result()
        i = parser.end - 1
        continue
      }
      const close = delimiter.scan(text, i)
      if (close < 0) {
        pending = text.slice(i)
        if (pending.length > valueBytesMax) throw importError(`a log is larger than ${valueBytesMax} bytes`)
        break
      }
      yield parseValue(text.slice(i, close + 1)) // refused: the error it gets alone
      i = close
    }
  }
  if (delimiter.depth > 0) throw importError('the stream ends inside a log object')
  if (mode === 'array') throw importError('the stream ends inside the JSON array')
}

/**
 * Finds where a JSON object ends by counting brackets outside strings, across
 * chunks: its state carries over from one chunk's text to the next.
 */
class Delimiter {
  depth = 0
  private inString = false
  private escaped = false

  /** Scans `text` from `from` (an object's `{`, or the start of a later chunk); the index of its closing bracket, or -1 if it runs past the text. */
  scan(text: string, from: number): number {
    const length = text.length
    for (let i = from; i < length; i++) {
      const code = text.charCodeAt(i)
      if (this.inString) {
        if (this.escaped) this.escaped = false
        else if (code === 0x5c /* \ */) this.escaped = true
        else if (code === 0x22 /* " */) this.inString = false
        continue
      }
      if (code === 0x22) this.inString = true
      else if (code === 0x7b || code === 0x5b) this.depth++
      else if (code === 0x7d || code === 0x5d) {
        this.depth--
        if (this.depth === 0) return i
      }
    }
    return -1
  }
}

function parseValue(text: string): Json {
  try {
    return parseJson(text)
  } catch (error) {
    throw importError(`a log is not valid JSON: ${(error as Error).message}`)
  }
}
