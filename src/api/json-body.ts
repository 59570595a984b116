import type { Json } from '../domain/index.ts'
import { JsonParser, malformedJson, parseJson } from '../domain/index.ts'

/** Characters parsed between two yields to the event loop: a few milliseconds of work. */
export const jsonSliceCharacters = 256 * 1024

/**
 * `parseJson` for request bodies: a large body parses a slice at a time,
 * letting the event loop run between slices (health checks, other clients).
 * Same parser, same result; a body of tens of MB never holds the loop for
 * more than a slice. Small bodies parse at once.
 */
export async function parseJsonBody(text: string, sliceCharacters = jsonSliceCharacters): Promise<Json> {
  if (text.length <= sliceCharacters) return parseJson(text)
  const parser = new JsonParser(text)
  try {
    while (!parser.step(sliceCharacters)) await new Promise<void>((resolve) => setImmediate(resolve))
    return parser.result()
  } catch (error) {
    throw malformedJson(error)
  }
}
