import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { JsonBytes, packValue, packedObjectFields, stringifyJson, unpackValue, writePackedJson } from '../../src/domain/index.ts'

/**
 * `writePackedJson` prints packed bytes as JSON without decoding them: its
 * bytes must be those of `stringifyJson(unpackValue(bytes))` (UTF-8), for
 * every value the packer writes — keys in the decoded object's order
 * (integer-like keys first), `__proto__` as data, strings that need
 * escaping, lone surrogates, words, integers on both sides of 2^52, floats.
 */

const layout = 0x02
/** Strings in a stored date's form, which the packer writes as instants (`dates.ts`), beside near misses it keeps as text. */
const storedDate = fc.oneof(
  fc.date({ min: new Date(0), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }).map((date) => date.toISOString()),
  fc.date({ min: new Date(0), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }).chain((date) => fc.integer({ min: 0, max: 999 }).map((micros) => `${date.toISOString().slice(0, 23)}${String(micros).padStart(3, '0')}Z`)),
  fc.constantFrom('2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000000Z', '2026-13-01T00:00:00.000Z', '2026-01-01T00:00:00.000+01:00', '1969-12-31T23:59:59.999Z'),
)
const key = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('__proto__', 'constructor', 'id', 'type', 'hash', '0', '1', '10', '2', '4294967295', '-1', '01', 'a"b', 'tab\there', '\ud800'),
  storedDate,
)
const value: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.constant(undefined),
    fc.boolean(),
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
    fc.bigInt({ min: -(2n ** 52n) - 2n, max: 2n ** 52n + 2n }),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(1e21, -1e21, 2 ** 60, -0, 0.1, 5e-324),
    fc.string({ unit: 'binary' }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    storedDate,
    fc.constantFrom('\ud800', 'a\udc00b', 'é', '€uro', 'USD/2', 'NEW_TRANSACTION', 'quote " and \\ back', 'back\\slash', 'line\nfeed\u0001\u001f\u007f', '\u2028\u2029'),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.uniqueArray(fc.tuple(key, tie('value')), { maxLength: 6, selector: ([k]) => k }).map((entries) => {
      const object: Record<string, unknown> = {}
      for (const [k, v] of entries) Object.defineProperty(object, k, { value: v, enumerable: true, writable: true, configurable: true })
      return object
    }),
  ),
})).value

function transcoded(packed: Buffer): Buffer {
  const out = new JsonBytes(16)
  const cursor = { offset: 1 }
  writePackedJson(packed, cursor, out)
  assert.equal(cursor.offset, packed.length, 'the cursor ends after the value')
  return out.take()
}

test('packed bytes print as stringifyJson of their decoded value, byte for byte', () => {
  fc.assert(
    fc.property(value, fc.boolean(), (v, sorted) => {
      const packed = packValue([v], layout, sorted)
      const expected = Buffer.from(stringifyJson(unpackValue(packed, layout)), 'utf8')
      assert.deepEqual(transcoded(packed), expected)
    }),
    { numRuns: 2000 },
  )
})

test('an object is located field by field, each field printing as its decoded value', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(key, value), { maxLength: 8, selector: ([k]) => k }), (entries) => {
      const object: Record<string, unknown> = {}
      for (const [k, v] of entries) Object.defineProperty(object, k, { value: v, enumerable: true, writable: true, configurable: true })
      const packed = packValue(object, layout, false)
      const decoded = unpackValue(packed, layout) as Record<string, unknown>
      const fields = packedObjectFields(packed, layout)
      assert.deepEqual([...fields.keys()], Object.keys(decoded))
      for (const [name, at] of fields) {
        const out = new JsonBytes(16)
        writePackedJson(packed, { offset: at }, out)
        assert.equal(out.take().toString('utf8'), stringifyJson(decoded[name]))
      }
    }),
    { numRuns: 1000 },
  )
})

test('a cut or foreign row is refused, not printed', () => {
  const packed = packValue({ a: 'text', b: [1, 2] }, layout, false)
  assert.throws(() => transcoded(packed.subarray(0, packed.length - 2)), /cut short|tag/)
  assert.throws(() => packedObjectFields(packValue({ a: 1 }, 0x03, false), layout), /layout/)
  assert.throws(() => packedObjectFields(Buffer.concat([packed, Buffer.of(0)]), layout), /extra bytes/)
})
