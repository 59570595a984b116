import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { parse as losslessParse } from 'lossless-json'
import { canonicalJson, parseJson, stringifyJson, TallyError } from '../../src/domain/index.ts'
import { parseJsonBody } from '../../src/api/json-body.ts'
import type { Json } from '../../src/domain/index.ts'
import { jsonDepthMax } from '../../src/domain/json-parser.ts'

/**
 * The sliceable parser against an independent oracle (the lossless-json
 * library it replaced, with the same number rule), sliced against unsliced,
 * and its accept/reject decisions against JSON.parse.
 */

const INTEGER = /^-?(0|[1-9][0-9]*)$/
const oracle = (text: string): unknown => losslessParse(text, null, (literal: string) => (INTEGER.test(literal) ? BigInt(literal) : Number(literal)))

const amount = fc.bigInt({ min: -(2n ** 256n) + 1n, max: 2n ** 256n - 1n })
const key = fc.oneof(fc.string(), fc.constantFrom(...Object.getOwnPropertyNames(Object.prototype)))
const json: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    amount,
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Number.isInteger(n)),
    fc.string({ unit: 'binary' }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.uniqueArray(fc.tuple(key, tie('value')), { maxLength: 5, selector: ([k]) => k }).map((entries) => {
      const object: { [key: string]: Json } = {}
      for (const [k, v] of entries) Object.defineProperty(object, k, { value: v, writable: true, enumerable: true, configurable: true })
      return object
    }),
  ),
})).value

/** The text with random JSON whitespace between tokens: the printer's output re-spaced. */
const spaced = (text: string, seed: number): string => {
  let out = ''
  let inString = false
  let state = seed
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string
    out += c
    if (inString) {
      if (c === '\\') out += text[++i]
      else if (c === '"') inString = false
      continue
    }
    if (c === '"') inString = true
    else if (',:[{'.includes(c)) {
      state = (state * 1103515245 + 12345) >>> 0
      out += [' ', '\n', '\t', '\r\n ', ''][state % 5]
    }
  }
  return out
}

test('parseJson agrees with the lossless-json oracle on any value, printed compact or spaced', () => {
  fc.assert(
    fc.property(json, fc.nat(), (value, seed) => {
      const text = stringifyJson(value)
      assert.deepStrictEqual(parseJson(text), oracle(text))
      const loose = spaced(text, seed)
      assert.deepStrictEqual(parseJson(loose), oracle(loose))
      assert.equal(canonicalJson(parseJson(loose)), canonicalJson(value), 'round trip')
    }),
    { numRuns: 500 },
  )
})

test('parsing in slices of any size gives the same value as parsing at once', async () => {
  await fc.assert(
    fc.asyncProperty(json, fc.integer({ min: 1, max: 64 }), async (value, slice) => {
      const text = stringifyJson(value)
      assert.deepStrictEqual(await parseJsonBody(text, slice), parseJson(text))
    }),
    { numRuns: 300 },
  )
})

test('accepts exactly what JSON.parse accepts (bar repeated keys), on mutated documents', () => {
  const mutated = fc
    .tuple(json, fc.nat(), fc.constantFrom('', ',', ']', '}', '"', '\\', ':', '0', '-', '.', 'e', ' ', '\u0001', 'x', 'tru', '[', '{'), fc.boolean())
    .map(([value, at, insert, remove]) => {
      const text = stringifyJson(value)
      const i = text.length === 0 ? 0 : at % text.length
      return text.slice(0, i) + insert + text.slice(remove ? i + 1 : i)
    })
  fc.assert(
    fc.property(mutated, (text) => {
      let native: unknown
      let nativeOk = true
      try {
        native = JSON.parse(text)
      } catch {
        nativeOk = false
      }
      let ours: Json | undefined
      let oursError: unknown
      try {
        ours = parseJson(text)
      } catch (error) {
        oursError = error
      }
      if (oursError !== undefined) {
        assert.ok(oursError instanceof TallyError && oursError.code === 'VALIDATION' && oursError.message.startsWith('malformed JSON'), String(oursError))
        const repeatedKey = /duplicate key/.test(oursError.message)
        assert.ok(!nativeOk || repeatedKey, `refused what JSON.parse accepts: ${JSON.stringify(text)}: ${oursError.message}`)
      } else {
        assert.ok(nativeOk, `accepted what JSON.parse refuses: ${JSON.stringify(text)}`)
        assert.deepStrictEqual(ours, oracle(text), `same value as the oracle: ${JSON.stringify(text)}`)
        void native
      }
    }),
    { numRuns: 2000 },
  )
})

test('numbers: integer literals are exact bigints up to 2^256 − 1, other forms are numbers', () => {
  assert.equal(parseJson(`${2n ** 256n - 1n}`), 2n ** 256n - 1n)
  assert.equal(parseJson(`-${2n ** 256n - 1n}`), -(2n ** 256n - 1n))
  assert.equal(parseJson('9007199254740993'), 9007199254740993n)
  assert.equal(parseJson('-0'), 0n)
  assert.equal(parseJson('1.5'), 1.5)
  assert.equal(parseJson('1e2'), 100)
  assert.equal(parseJson('1.0'), 1)
  for (const bad of ['01', '1.', '.5', '-', '1e', '+1', '0x10', 'NaN', 'Infinity']) {
    assert.throws(() => parseJson(bad), (error: unknown) => error instanceof TallyError && error.code === 'VALIDATION', bad)
  }
})

test('keys named after Object.prototype members stay data: own properties, no prototype change, nothing polluted', () => {
  for (const name of Object.getOwnPropertyNames(Object.prototype)) {
    const parsed = parseJson(`{${JSON.stringify(name)}:{"polluted":"yes"},"other":"1"}`) as { [key: string]: Json }
    assert.equal(Object.getPrototypeOf(parsed), Object.prototype, name)
    assert.ok(Object.hasOwn(parsed, name), name)
    assert.deepStrictEqual(Object.keys(parsed), [name, 'other'], name)
    assert.equal(stringifyJson(parsed), `{${JSON.stringify(name)}:{"polluted":"yes"},"other":"1"}`)
  }
  assert.equal(({} as { polluted?: unknown }).polluted, undefined, 'Object.prototype untouched')
})

test('a repeated key is refused; nesting is bounded', () => {
  assert.throws(() => parseJson('{"a":"1","a":"2"}'), /duplicate key "a"/)
  assert.throws(() => parseJson('{"__proto__":"1","__proto__":"1"}'), /duplicate key/)
  assert.deepStrictEqual(parseJson(`${'['.repeat(jsonDepthMax)}${']'.repeat(jsonDepthMax)}`) !== null, true)
  assert.throws(() => parseJson(`${'['.repeat(jsonDepthMax + 1)}${']'.repeat(jsonDepthMax + 1)}`), /nesting deeper/)
  assert.throws(() => parseJson('"unterminated'), /unterminated string/)
  assert.throws(() => parseJson('"tab\there"'), /control character/)
  assert.throws(() => parseJson(''), /malformed JSON/)
})

test('parsing in slices lets other work run between slices (the event loop is not held for the whole body)', async () => {
  const text = stringifyJson(Array.from({ length: 20_000 }, (_, i) => ({ source: 'world', destination: `users:${i}`, amount: BigInt(i), asset: 'USD/2' })))
  const slice = 16 * 1024
  let turns = 0
  let running = true
  const spin = (): void => {
    turns++
    if (running) setImmediate(spin)
  }
  setImmediate(spin)
  const parsed = await parseJsonBody(text, slice)
  running = false
  assert.equal((parsed as Json[]).length, 20_000)
  const slices = Math.floor(text.length / slice)
  assert.ok(turns >= slices / 2, `other work ran ${turns} times during ${slices} slices`)
})
