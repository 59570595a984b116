import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { Json } from '../../src/domain/index.ts'
import { stringifyJson } from '../../src/domain/index.ts'
import { parseJsonStream } from '../../src/check/index.ts'
import { parseJsonStream as oracleStream } from '../support/json-stream-oracle.ts'

/**
 * The import's stream reader, which parses a log where it lies in its chunk,
 * against the reader it replaced (kept in test/support), which delimited
 * each log by counting brackets and parsed it alone: on streams of valid and
 * broken logs, as lines or one array, cut anywhere (inside a string, an
 * escape, a multi-byte character), both give the same values in the same
 * order and stop with the same error, or both end cleanly.
 */

const text = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('{', '}', '[', ']', '"', '\\', '\\"', '{"a":[', 'é', '€', '\u{1F600}', '\n'))
const value: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    text,
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(text, tie('value'), { maxKeys: 3 }),
  ),
})).value
const log = fc.dictionary(text, value, { maxKeys: 4 }).map((entry) => stringifyJson(entry))
/** A log's text broken: a character inserted, removed or replaced somewhere. */
const brokenLog = fc.tuple(log, fc.nat(), fc.constantFrom('', ',', ']', '}', '[', '{', '"', '\\', ':', '01', 'x', '\u0001', ' '), fc.nat(1)).map(([entry, at, insert, removed]) => {
  const i = at % (entry.length + 1)
  return entry.slice(0, i) + insert + entry.slice(i + removed)
})
const separator = fc.constantFrom('\n', '', ' ', '\r\n', '\t\n ')
const stray = fc.constantFrom('7', 'x', ']', '[', ',', '}')

interface Run {
  readonly values: unknown[]
  readonly error?: string
}

async function* chunked(bytes: Buffer, cuts: readonly number[]): AsyncGenerator<Buffer> {
  let at = 0
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)) {
    yield bytes.subarray(at, cut)
    at = cut
  }
  yield bytes.subarray(at)
}

async function run(reader: typeof parseJsonStream, bytes: Buffer, cuts: readonly number[], valueBytesMax?: number): Promise<Run> {
  const values: unknown[] = []
  try {
    for await (const parsed of reader(chunked(bytes, cuts), valueBytesMax)) values.push(parsed)
    return { values }
  } catch (error) {
    return { values, error: String(error) }
  }
}

const agree = async (bytes: Buffer, cuts: readonly number[], valueBytesMax?: number): Promise<void> => {
  assert.deepStrictEqual(await run(parseJsonStream, bytes, cuts, valueBytesMax), await run(oracleStream, bytes, cuts, valueBytesMax), `stream ${JSON.stringify(bytes.toString('utf8'))}, cuts ${JSON.stringify(cuts)}`)
}

test('streams of valid logs, as lines or one array, cut anywhere: the same values as the reader it replaced', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(log, separator), { maxLength: 6 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 8 }), async (logs, asArray, cuts) => {
      const printed = logs.map(([entry, space]) => `${space}${entry}`)
      const stream = asArray ? `[${printed.join(',')}]\n` : `${printed.join('\n')}\n`
      await agree(Buffer.from(stream, 'utf8'), cuts)
    }),
    { numRuns: 400 },
  )
})

test('streams with broken logs and stray characters, cut anywhere: the same values, then the same error', async () => {
  const piece = fc.oneof({ weight: 3, arbitrary: log }, { weight: 2, arbitrary: brokenLog }, { weight: 1, arbitrary: stray })
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(piece, separator), { maxLength: 6 }), fc.constantFrom('lines', 'array', 'unclosed array'), fc.array(fc.nat(), { maxLength: 8 }), fc.constantFrom(undefined, 8, 40), async (pieces, shape, cuts, valueBytesMax) => {
      const printed = pieces.map(([entry, space]) => `${space}${entry}`)
      const stream = shape === 'lines' ? printed.join('\n') : `[${printed.join(',')}${shape === 'array' ? ']' : ''}`
      await agree(Buffer.from(stream, 'utf8'), cuts, valueBytesMax)
    }),
    { numRuns: 1500 },
  )
})

test('the cases named: a log past the size bound, split across many chunks, invalid UTF-8, an object closed by the wrong bracket', async () => {
  const long = stringifyJson({ a: 'x'.repeat(100), b: [1n, 2n, { c: '"}]\\' }] })
  for (const stream of [`${long}\n${long}`, `[${long},${long}]`, '{"a":1]}', '{"a":"}', '{"a":1}}', '{"a":1} 7', '[{"a":1}] {"b":2}', `{"a":${'['.repeat(1001)}${']'.repeat(1001)}}`]) {
    const bytes = Buffer.from(stream, 'utf8')
    for (const cuts of [[], [1], [5, 6, 7, 8, 9, 10], Array.from({ length: bytes.length }, (_, k) => k)]) {
      await agree(bytes, cuts)
      await agree(bytes, cuts, 50)
    }
  }
  await agree(Buffer.of(0x7b, 0x22, 0xff, 0x22, 0x7d), [])
  await agree(Buffer.of(0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe2, 0x82, 0xac, 0x22, 0x7d), [7])
})
