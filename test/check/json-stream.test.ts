import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { Json } from '../../src/domain/index.ts'
import { parseJson, stringifyJson } from '../../src/domain/index.ts'
import { parseJsonStream } from '../../src/check/index.ts'

/**
 * The import's stream splitter: log objects as JSON lines (any whitespace
 * between them) or one JSON array, in chunks cut anywhere (inside a string,
 * an escape, a multi-byte character), give back each object as the
 * lossless parser reads it alone.
 */

const text = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('{', '}', '[', ']', '"', '\\', '\\"', '{"a":[', 'é', '€', '\u{1F600}', '\n'))
const value: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    text,
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(text, tie('value'), { maxKeys: 3 }),
  ),
})).value
const log = fc.dictionary(text, value, { maxKeys: 4 }) as fc.Arbitrary<{ [key: string]: Json }>
const whitespace = fc.stringMatching(/^[ \t\r\n]{0,3}$/)

async function* chunked(bytes: Buffer, cuts: readonly number[]): AsyncGenerator<Buffer> {
  let at = 0
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)) {
    yield bytes.subarray(at, cut)
    at = cut
  }
  yield bytes.subarray(at)
}

async function parsed(bytes: Buffer, cuts: readonly number[]): Promise<Json[]> {
  const values: Json[] = []
  for await (const parsedValue of parseJsonStream(chunked(bytes, cuts))) values.push(parsedValue)
  return values
}

test('a stream of log objects, as lines or one array, cut anywhere, gives back each object', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(log, whitespace), { maxLength: 6 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 8 }), async (logs, asArray, cuts) => {
      const printed = logs.map(([entry, space]) => `${space}${stringifyJson(entry)}`)
      const stream = asArray ? `[${printed.join(',')}]\n` : `${printed.join('\n')}\n`
      const expected = printed.map((line) => parseJson(line))
      assert.deepEqual(await parsed(Buffer.from(stream, 'utf8'), cuts), expected)
    }),
    { numRuns: 300 },
  )
})

test('what is not a stream of log objects is refused, naming it', async () => {
  await assert.rejects(parsed(Buffer.from('{"a":1}\n7\n'), []), /expected a log object, found "7"/)
  await assert.rejects(parsed(Buffer.from('[{"a":1}] {"b":2}'), []), /data after the end of the JSON array/)
  await assert.rejects(parsed(Buffer.from('{"a":"}'), []), /ends inside a log object/)
  await assert.rejects(parsed(Buffer.from('[{"a":1},'), []), /ends inside the JSON array/)
  await assert.rejects(parsed(Buffer.of(0x7b, 0x22, 0xff, 0x22, 0x7d), []), /not valid UTF-8/)
})
