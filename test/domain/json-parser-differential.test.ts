import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { Json } from '../../src/domain/index.ts'
import { JsonParser, JsonSyntaxError, jsonDepthMax, parseJson, TallyError } from '../../src/domain/index.ts'
import { parseJsonBody } from '../../src/api/json-body.ts'
import { JsonParser as OracleParser, JsonSyntaxError as OracleSyntaxError } from '../support/json-parser-oracle.ts'

/**
 * The fast parser against the state machine it replaced (kept in
 * test/support as the oracle): on any text, valid or broken, both give the
 * same value — bigint or number exactly, -0 included, keys in the same order
 * — or both refuse with the same message at the same position. Parsed at
 * once or in slices of any size.
 */

type Outcome = { readonly value: unknown } | { readonly error: string; readonly position: number }

/** A value with its type and key order made visible (deepStrictEqual ignores key order). */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return { array: value.map(shape) }
  if (value !== null && typeof value === 'object') {
    assert.equal(Object.getPrototypeOf(value), Object.prototype, 'a parsed object is a plain object')
    return { object: Object.keys(value).map((key) => [key, shape((value as Record<string, unknown>)[key])]) }
  }
  return { [typeof value]: value }
}

function outcome(run: () => Json, errorClass: typeof JsonSyntaxError | typeof OracleSyntaxError): Outcome {
  try {
    return { value: shape(run()) }
  } catch (error) {
    assert.ok(error instanceof errorClass, `a syntax error, not ${String(error)}`)
    return { error: error.message, position: error.position }
  }
}

function oracle(text: string): Outcome {
  return outcome(() => {
    const parser = new OracleParser(text)
    parser.step(Number.POSITIVE_INFINITY)
    return parser.result()
  }, OracleSyntaxError)
}

function fast(text: string, slice = Number.POSITIVE_INFINITY): Outcome {
  return outcome(() => {
    const parser = new JsonParser(text)
    while (!parser.step(slice));
    return parser.result()
  }, JsonSyntaxError)
}

const agree = (text: string, slice?: number): void => {
  assert.deepStrictEqual(fast(text, slice), oracle(text), `text ${JSON.stringify(text)}${slice === undefined ? '' : `, slices of ${slice}`}`)
}

// --- Texts: JSON printed with random whitespace, escapes and number spellings.

const whitespace = fc.constantFrom('', '', '', ' ', '\n', '\t', '\r\n', '  \t ')
const hex = (unit: number, upper: boolean): string => {
  const digits = unit.toString(16).padStart(4, '0')
  return `\\u${upper ? digits.toUpperCase() : digits}`
}
const shortEscapes: Readonly<Record<string, string>> = { '"': '\\"', '\\': '\\\\', '/': '\\/', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' }
/** Code units a string may hold: plain ASCII, what must be escaped, other BMP characters, lone and paired surrogates. */
const unit = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 2, arbitrary: fc.constantFrom(0x22, 0x5c, 0x2f, 0x08, 0x0c, 0x0a, 0x0d, 0x09, 0x00, 0x1f) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xffff }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }) },
)
/** A string token: each code unit printed raw where JSON allows it, or escaped (short or \u, either case). */
const stringToken = fc.array(fc.tuple(unit, fc.nat(3), fc.boolean()), { maxLength: 12 }).map((units) => {
  let text = '"'
  for (const [code, how, upper] of units) {
    const character = String.fromCharCode(code)
    const mustEscape = code < 0x20 || code === 0x22 || code === 0x5c
    if (how === 0 && !mustEscape) text += character
    else if (how === 1 && shortEscapes[character] !== undefined) text += shortEscapes[character]
    else if (how === 2 && !mustEscape) text += character
    else text += hex(code, upper)
  }
  return `${text}"`
})
const digits = (min: number, max: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: min, maxLength: max })
/** Every spelling JSON's number grammar allows: -0, 1.0, 1e2, 1E+2, long integers past 2^53 and 2^256. */
const numberToken = fc
  .tuple(
    fc.boolean(),
    fc.oneof(fc.constant('0'), fc.tuple(fc.constantFrom(...'123456789'), digits(0, 14)).map(([a, b]) => a + b), fc.tuple(fc.constantFrom(...'123456789'), digits(14, 90)).map(([a, b]) => a + b)),
    fc.option(digits(1, 6)),
    fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), digits(1, 3))),
  )
  .map(([negative, integer, fraction, exponent]) => `${negative ? '-' : ''}${integer}${fraction === null ? '' : `.${fraction}`}${exponent === null ? '' : exponent.join('')}`)
/** Keys from a small pool (so objects repeat keys now and then), prototype names among them. */
const keyToken = fc.oneof(fc.constantFrom('"a"', '"b"', '"amount"', '"__proto__"', '"constructor"', '"toString"', '"hasOwnProperty"', '"\\u0061"', '"10"', '"9"'), stringToken)

const jsonText: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom('true', 'false', 'null'),
    numberToken,
    stringToken,
    fc.tuple(fc.array(fc.tuple(whitespace, tie('value'), whitespace), { maxLength: 5 }), whitespace).map(([items, inner]) => (items.length === 0 ? `[${inner}]` : `[${items.map((parts) => parts.join('')).join(',')}]`)),
    fc
      .tuple(fc.array(fc.tuple(whitespace, keyToken, whitespace, whitespace, tie('value'), whitespace), { maxLength: 5 }), whitespace)
      .map(([entries, inner]) => (entries.length === 0 ? `{${inner}}` : `{${entries.map(([w1, k, w2, w3, v, w4]) => `${w1}${k}${w2}:${w3}${v}${w4}`).join(',')}}`)),
  ),
})).value
const document = fc.tuple(whitespace, jsonText, whitespace).map((parts) => parts.join(''))

/** A document broken anywhere: characters inserted, deleted or replaced, cut short, or garbage added. */
const brokenDocument = fc
  .tuple(document, fc.array(fc.tuple(fc.nat(), fc.constantFrom('', ',', ']', '}', '[', '{', '"', '\\', ':', '0', '01', '-', '.', 'e', '+', ' ', '\u0001', '\u001f', 'x', 't', 'tru', 'nul', 'fals', '\\u12', '\\x', '\ud800', '1e400'), fc.nat(2)), { minLength: 1, maxLength: 3 }))
  .map(([text, edits]) => {
    let out = text
    for (const [at, insert, removed] of edits) {
      const i = out.length === 0 ? 0 : at % (out.length + 1)
      out = out.slice(0, i) + insert + out.slice(i + removed)
    }
    return out
  })

test('on any valid document, printed with random whitespace, escapes and number spellings: same value as the oracle', () => {
  fc.assert(
    fc.property(document, (text) => agree(text)),
    { numRuns: 3000 },
  )
})

test('on broken documents: both refuse with the same message at the same position (or both accept the same value)', () => {
  fc.assert(
    fc.property(brokenDocument, (text) => agree(text)),
    { numRuns: 5000 },
  )
})

test('on arbitrary short texts over the JSON alphabet: same outcome as the oracle', () => {
  const alphabet = fc.constantFrom(...'{}[]":,\\-+.0123456789eEtrufalsn \n\tx'.split(''), '\u0000', '\ud83d')
  fc.assert(
    fc.property(fc.string({ unit: alphabet, maxLength: 24 }), (text) => agree(text)),
    { numRuns: 5000 },
  )
})

test('in slices of any size (valid or broken): the same outcome as the oracle parsing at once', () => {
  fc.assert(
    fc.property(fc.oneof(document, brokenDocument), fc.integer({ min: 1, max: 40 }), (text, slice) => agree(text, slice)),
    { numRuns: 3000 },
  )
})

test('the cases named: big integers, -0, 1e2, 1.0, escapes, surrogates, repeated and prototype keys, depth, empty and trailing text', () => {
  const cases = [
    `${2n ** 256n - 1n}`,
    `-${2n ** 256n - 1n}`,
    '999999999999999', // 15 digits: from its value
    '9999999999999999', // 16 digits: from its text
    '-999999999999999',
    '9007199254740993',
    '-0',
    '-0.0',
    '0',
    '1e2',
    '1E+2',
    '1.0',
    '1.5e-7',
    '1e400',
    '-1e400',
    '01',
    '-01',
    '00',
    '1.',
    '.5',
    '-',
    '1e',
    '1e+',
    '+1',
    '0x10',
    'NaN',
    'Infinity',
    '"\\ud83d\\ude00 \\uD83D \\ude00 \\u00e9\\"\\\\\\/\\b\\f\\n\\r\\t"',
    '"\\u12"',
    '"\\u12g4"',
    '"\\x"',
    '"\\',
    '"abc',
    '"a\u0000b"',
    '"\ud800"',
    '{"a":1,"a":2}',
    '{"a":1,"\\u0061":2}',
    '{"a":{"b":1,"b":[1,2]}}',
    '{"a":1,"a":[x]}',
    '{"__proto__":1,"__proto__":2}',
    '{"__proto__":{"polluted":1},"constructor":2,"toString":3,"hasOwnProperty":4}',
    '{"9":1,"10":2,"a":3}',
    '',
    ' ',
    ' \n\t\r ',
    '1 2',
    '{} x',
    '[1,2] ]',
    'true false',
    'tru',
    'nul',
    '[1,]',
    '[,1]',
    '{"a":1,}',
    '{,}',
    '{"a" 1}',
    '{"a":}',
    '{a:1}',
    '[',
    '{',
    '[1',
    '{"a"',
    '{"a":',
    '{"a":1',
    '[{"a":[1,{"b":null}]},"x"]',
    // Keys that share the key cache's slot (same length, first and last character) and differ inside.
    '[{"a1z":1},{"a2z":2},{"a1z":3,"a2z":4}]',
    '{"a1z":1,"a2z":2,"a1z":3}',
    '[{"users:1:x":1},{"users:2:x":2},{"users:1:x":3}]',
    // At and past the longest cached key; escaped spellings of a cached key.
    '[{"abcdefghijkl":1},{"abcdefghijkl":2,"abcdefghijkm":3}]',
    '[{"abcdefghijklm":1},{"abcdefghijklm":2,"abcdefghijklm":3}]',
    '[{"ab":1},{"\\u0061b":2},{"a\\u0062":3,"ab":4}]',
    '[{"":1},{"":2,"":3}]',
  ]
  for (const text of cases) {
    agree(text)
    for (const slice of [1, 2, 3, 7]) agree(text, slice)
  }
  for (const open of ['[', '{"k":']) {
    const close = open === '[' ? ']' : '}'
    for (const depth of [jsonDepthMax - 1, jsonDepthMax, jsonDepthMax + 1]) agree(`${open.repeat(depth)}1${close.repeat(depth)}`)
  }
  assert.equal(parseJson(`${2n ** 256n - 1n}`), 2n ** 256n - 1n)
  assert.equal(parseJson('999999999999999'), 999999999999999n)
  assert.equal(parseJson('-0'), 0n)
  assert.ok(Object.is(parseJson('-0.0'), -0))
  assert.equal(parseJson('1.0'), 1)
  assert.equal(parseJson('1e2'), 100)
})

test('the HTTP edge refuses what the oracle refuses, with its message, in slices or at once', async () => {
  for (const text of ['{"a":1,"a":2}', '01', '[1,]', `${'['.repeat(jsonDepthMax + 1)}`]) {
    const expected = oracle(text)
    assert.ok('error' in expected)
    for (const slice of [1, 5, 1 << 20]) {
      await assert.rejects(parseJsonBody(text, slice), (error: unknown) => error instanceof TallyError && error.code === 'VALIDATION' && error.message === `malformed JSON: ${expected.error}`)
    }
  }
})

test('one value read where it lies (valueOnly): the oracle\'s value of that text, and its end, whatever follows', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 5 }), jsonText, fc.constantFrom('', ' ', 'x', '{"a":1}', ']', '\n{'), (before, text, after) => {
      const expected = oracle(text)
      fc.pre('value' in expected)
      const parser = new JsonParser(before + text + after, before.length, true)
      assert.equal(parser.step(Number.POSITIVE_INFINITY), true)
      assert.deepStrictEqual(shape(parser.result()), expected.value)
      assert.equal(parser.end, before.length + text.length)
    }),
    { numRuns: 1000 },
  )
})
