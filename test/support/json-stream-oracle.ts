import type { Json } from '../../src/domain/index.ts'
import { TallyError, parseJson } from '../../src/domain/index.ts'

/** Largest single log accepted in a stream: bounds the memory of a streamed import. */
export const streamedValueBytesMax = 16 * 1024 * 1024

function importError(message: string): TallyError {
  return new TallyError({ code: 'IMPORT', kind: 'validation', message })
}

/**
 * THE ORACLE: the import's stream reader as it was before it parsed logs in
 * place (commit 6e187b9), kept unchanged for the differential tests.
 *
 * Splits a stream of JSON objects — JSON lines (any whitespace between
 * objects, as Go's decoder reads v2 exports) or one JSON array of objects —
 * into parsed values, one at a time, holding at most one object's text.
 * Values go through the lossless codec (amounts stay exact).
 */
export async function* parseJsonStream(source: AsyncIterable<Buffer | string>, valueBytesMax = streamedValueBytesMax): AsyncGenerator<Json> {
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let mode: 'undetermined' | 'lines' | 'array' | 'ended' = 'undetermined'
  let pending = '' // text of the value being read, from earlier chunks
  let depth = 0 // > 0 while inside a value
  let inString = false
  let escaped = false
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
    let start = depth > 0 ? 0 : -1
    const length = text.length
    for (let i = 0; i < length; i++) {
      // Code units, not one-character strings: every character of a stream passes here.
      const code = text.charCodeAt(i)
      if (depth === 0) {
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
        depth = 1
        start = i
        continue
      }
      if (inString) {
        if (escaped) escaped = false
        else if (code === 0x5c /* \ */) escaped = true
        else if (code === 0x22 /* " */) inString = false
        continue
      }
      if (code === 0x22) inString = true
      else if (code === 0x7b || code === 0x5b) depth++
      else if (code === 0x7d || code === 0x5d) {
        depth--
        if (depth === 0) {
          const value = pending + text.slice(start, i + 1)
          pending = ''
          start = -1
          yield parseValue(value)
        }
      }
    }
    if (depth > 0) {
      pending += text.slice(start)
      if (pending.length > valueBytesMax) throw importError(`a log is larger than ${valueBytesMax} bytes`)
    }
  }
  if (depth > 0) throw importError('the stream ends inside a log object')
  if (mode === 'array') throw importError('the stream ends inside the JSON array')
}

function parseValue(text: string): Json {
  try {
    return parseJson(text)
  } catch (error) {
    throw importError(`a log is not valid JSON: ${(error as Error).message}`)
  }
}
