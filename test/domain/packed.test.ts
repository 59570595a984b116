import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { InvariantViolation, PackedItems, canonicalJson, packItems, packRecord, packValue, parseJson, unpackObjectWithout, unpackRecord, unpackValue } from '../../src/domain/index.ts'

/**
 * The packed encoding against the JSON round trip it replaces inside the
 * engine: unpack(pack(v)) must equal parseJson(canonicalJson(v)) for any
 * value the engine writes (numbers and bigints, lone surrogates, `__proto__`
 * keys, undefined fields), and sorted packing is one canonical form.
 */

const LAYOUT = 0x7e
const key = fc.oneof(fc.string({ unit: 'binary' }), fc.constantFrom('__proto__', 'constructor', 'amount', 'postings', 'id', 'toString'))
const integer = fc.oneof(fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), fc.bigInt({ min: -(2n ** 53n) - 2n, max: 2n ** 53n + 2n }), fc.integer())
const value: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.constant(undefined),
    fc.boolean(),
    integer,
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(1e21, -1e21, 2 ** 60, -0, 0.1, 5e-324),
    fc.string({ unit: 'binary' }),
    fc.string({ unit: 'grapheme-ascii', maxLength: 80 }),
    fc.constantFrom('\ud800', 'a\udc00b', 'é', '€uro', 'USD/2', 'NEW_TRANSACTION', 'x'.repeat(200)),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.uniqueArray(fc.tuple(key, tie('value')), { maxLength: 5, selector: ([k]) => k }).map((entries) => {
      const object: Record<string, unknown> = {}
      for (const [k, v] of entries) Object.defineProperty(object, k, { value: v, enumerable: true, writable: true, configurable: true })
      return object
    }),
  ),
})).value

const viaJson = (v: unknown) => parseJson(canonicalJson(v))

test('unpack(pack(v)) is what the JSON round trip gives', () => {
  fc.assert(
    fc.property(value.filter((v) => v !== undefined), (v) => {
      assert.deepStrictEqual(unpackValue(packValue(v, LAYOUT, true), LAYOUT), viaJson(v))
      assert.deepStrictEqual(unpackValue(packValue(v, LAYOUT, false), LAYOUT), viaJson(v))
    }),
    { numRuns: 3000 },
  )
})

test('unpackObjectWithout is unpackValue less the omitted top-level fields, whatever they hold (property)', () => {
  const object = fc.uniqueArray(fc.tuple(key, value), { maxLength: 8, selector: ([k]) => k }).map((entries) => {
    const record: Record<string, unknown> = {}
    for (const [k, v] of entries) Object.defineProperty(record, k, { value: v, enumerable: true, writable: true, configurable: true })
    return record
  })
  fc.assert(
    fc.property(object, fc.array(key, { maxLength: 3 }), fc.boolean(), (record, omittedKeys, sorted) => {
      const bytes = packValue(record, LAYOUT, sorted)
      const whole = unpackValue(bytes, LAYOUT) as Record<string, unknown>
      const omitted = new Set([...omittedKeys, ...Object.keys(whole).filter((_, at) => at % 2 === 0)])
      const expected: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(whole)) if (!omitted.has(k)) Object.defineProperty(expected, k, { value: v, enumerable: true, writable: true, configurable: true })
      assert.deepStrictEqual(unpackObjectWithout(bytes, LAYOUT, omitted), expected)
    }),
    { numRuns: 3000 },
  )
})

test('unpackObjectWithout refuses what unpackValue refuses: a cut anywhere, a trailing byte, a value that is not an object', () => {
  const bytes = packValue({ a: 1n, skipped: { deep: ['x', 2n ** 70n, 1.5, null, true] }, z: 'end' }, LAYOUT, true)
  const omitted = new Set(['skipped'])
  assert.deepStrictEqual(unpackObjectWithout(bytes, LAYOUT, omitted), { a: 1n, z: 'end' })
  for (let length = 1; length < bytes.length; length++) assert.throws(() => unpackObjectWithout(bytes.subarray(0, length), LAYOUT, omitted), InvariantViolation)
  assert.throws(() => unpackObjectWithout(Buffer.concat([bytes, Buffer.of(0)]), LAYOUT, omitted), InvariantViolation)
  assert.throws(() => unpackObjectWithout(packValue(['a'], LAYOUT, true), LAYOUT, omitted), InvariantViolation)
})

test('sorted packing is canonical: key order does not change the bytes', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(key, value), { maxLength: 8, selector: ([k]) => k }), (entries) => {
      const forward: Record<string, unknown> = {}
      const backward: Record<string, unknown> = {}
      for (const [k, v] of entries) Object.defineProperty(forward, k, { value: v, enumerable: true, writable: true, configurable: true })
      for (const [k, v] of [...entries].reverse()) Object.defineProperty(backward, k, { value: v, enumerable: true, writable: true, configurable: true })
      assert.deepStrictEqual(packValue(forward, LAYOUT, true), packValue(backward, LAYOUT, true))
    }),
  )
})

test('a __proto__ key stays an own data property', () => {
  const decoded = unpackValue(packValue(JSON.parse('{"__proto__":{"polluted":1}}'), LAYOUT, true), LAYOUT) as Record<string, unknown>
  assert.equal(Object.getPrototypeOf(decoded), Object.prototype)
  assert.ok(Object.hasOwn(decoded, '__proto__'))
  assert.equal(({} as Record<string, unknown>).polluted, undefined)
})

test('integers unpack as bigint, exactly, on both sides of 2^53', () => {
  for (const n of [0n, 1n, -1n, 2n ** 53n - 1n, 2n ** 53n, -(2n ** 53n) + 1n, -(2n ** 53n), 2n ** 256n, -(2n ** 256n)]) {
    assert.equal(unpackValue(packValue(n, LAYOUT, true), LAYOUT), n)
  }
  assert.equal(unpackValue(packValue(7, LAYOUT, true), LAYOUT), 7n)
  assert.equal(unpackValue(packValue(0.5, LAYOUT, true), LAYOUT), 0.5)
})

test('another layout byte, a cut or a trailing byte is refused', () => {
  const packed = packValue({ amount: 100n, asset: 'USD' }, LAYOUT, true)
  assert.throws(() => unpackValue(packed, LAYOUT + 1), InvariantViolation)
  for (let cut = 1; cut < packed.length; cut++) assert.throws(() => unpackValue(packed.subarray(0, cut), LAYOUT), InvariantViolation)
  assert.throws(() => unpackValue(Buffer.concat([packed, Buffer.of(0)]), LAYOUT), InvariantViolation)
})

test('the encoding is smaller than the JSON it replaces', () => {
  const transaction = {
    id: 12345n,
    postings: [{ source: 'world', destination: 'users:0042', amount: 100n, asset: 'USD/2' }],
    timestamp: '2026-12-06T22:00:00.000Z',
    insertedAt: '2026-12-06T22:00:00.000Z',
    updatedAt: '2026-12-06T22:00:00.000Z',
    metadata: {},
    reverted: false,
  }
  assert.ok(packValue(transaction, LAYOUT, true).length < Buffer.byteLength(canonicalJson(transaction)) * 0.7)
})

test('objects and arrays past one count byte (128 entries and more) round-trip', () => {
  const wide: Record<string, unknown> = {}
  for (let i = 0; i < 300; i++) wide[`k${i}`] = i % 3 === 0 ? undefined : BigInt(i)
  const long = Array.from({ length: 300 }, (_, i) => `v${i}`)
  for (const value of [wide, long, { wide, long }]) {
    assert.deepStrictEqual(unpackValue(packValue(value, LAYOUT, true), LAYOUT), viaJson(value))
  }
})

test('values larger than the writer buffer (it starts at 4 KiB and grows) round-trip whole, and a small one after them too', () => {
  const large = { text: 'x'.repeat(100_000), items: Array.from({ length: 5_000 }, (_, i) => ({ id: BigInt(i), note: `n${i}` })) }
  const packed = packValue(large, LAYOUT, true)
  assert.ok(packed.byteLength > 100_000, `${packed.byteLength} bytes`)
  assert.deepStrictEqual(unpackValue(packed, LAYOUT), viaJson(large))
  assert.deepStrictEqual(unpackValue(packValue({ small: 1n }, LAYOUT, true), LAYOUT), viaJson({ small: 1n }))
})

test('packing what unpacking gave gives the same bytes (a checker re-packs decoded bodies to verify their hash)', () => {
  fc.assert(
    fc.property(value.filter((v) => v !== undefined), (v) => {
      const packed = packValue(v, LAYOUT, true)
      assert.deepStrictEqual(packValue(unpackValue(packed, LAYOUT), LAYOUT, true), packed)
    }),
    { numRuns: 2000 },
  )
})

test("sorted packing writes keys in JSON's canonical order (the order canonicalJson prints)", () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(key, fc.constant(1n)), { minLength: 0, maxLength: 40, selector: ([k]) => k }), (entries) => {
      const object: Record<string, unknown> = {}
      for (const [k, v] of entries) Object.defineProperty(object, k, { value: v, enumerable: true, writable: true, configurable: true })
      const unpacked = unpackValue(packValue(object, LAYOUT, true), LAYOUT) as Record<string, unknown>
      assert.deepStrictEqual(Object.keys(unpacked), Object.keys(parseJson(canonicalJson(object)) as Record<string, unknown>))
    }),
  )
})

test('sorted packing of objects past the insertion sort (17 keys and more), nested in one another, writes each in canonical order', () => {
  const entries = fc.uniqueArray(fc.tuple(key, fc.constant(1n)), { minLength: 17, maxLength: 60, selector: ([k]) => k })
  fc.assert(
    fc.property(entries, entries, (outer, inner) => {
      const object: Record<string, unknown> = {}
      for (const [k, v] of outer) Object.defineProperty(object, k, { value: v, enumerable: true, writable: true, configurable: true })
      const nested: Record<string, unknown> = {}
      for (const [k, v] of inner) Object.defineProperty(nested, k, { value: v, enumerable: true, writable: true, configurable: true })
      const value = { b: object, a: [nested, object] }
      const unpacked = unpackValue(packValue(value, LAYOUT, true), LAYOUT)
      assert.deepStrictEqual(unpacked, parseJson(canonicalJson(value)))
      const [first] = (unpacked as { a: Record<string, unknown>[] }).a
      assert.deepStrictEqual(Object.keys(first as Record<string, unknown>), Object.keys(parseJson(canonicalJson(nested)) as Record<string, unknown>))
      assert.deepStrictEqual(Object.keys((unpacked as { b: Record<string, unknown> }).b), Object.keys(parseJson(canonicalJson(object)) as Record<string, unknown>))
    }),
    { numRuns: 200 },
  )
})

test('items packed ahead in chunks (PackedItems) pack to the same bytes as the array in place, whatever the chunks', () => {
  fc.assert(
    fc.property(fc.array(value, { maxLength: 300 }), fc.array(fc.nat(), { maxLength: 6 }), value, fc.boolean(), (items, cuts, other, sorted) => {
      const bounds = [...new Set(cuts.map((cut) => cut % (items.length + 1)))].sort((a, b) => a - b)
      const chunks: Buffer[] = []
      let from = 0
      for (const bound of [...bounds, items.length]) {
        chunks.push(packItems(items.slice(from, bound), sorted))
        from = bound
      }
      const inPlace = packValue({ before: other, items, after: 1 }, LAYOUT, sorted)
      const ahead = packValue({ before: other, items: new PackedItems(items.length, chunks), after: 1 }, LAYOUT, sorted)
      assert.ok(ahead.equals(inPlace))
    }),
  )
})

test('a record carries bytes as they are: packRecord/unpackRecord round trip bytes of any length, beside JSON values', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), value, (bytes, other) => {
      const record = { seed: bytes, other, list: [bytes, null] }
      const packed = packRecord(record, LAYOUT)
      const unpacked = unpackRecord(packed, LAYOUT) as { seed: Buffer; other: unknown; list: unknown[] }
      assert.ok(Buffer.isBuffer(unpacked.seed))
      assert.deepStrictEqual(unpacked.seed, Buffer.from(bytes))
      assert.deepStrictEqual(unpacked.list, [Buffer.from(bytes), null])
      assert.deepStrictEqual(unpacked.other, (viaJson({ other }) as Record<string, unknown>).other)
      // Bytes packed without text encoding: 1 tag byte and the length's varint beside them.
      assert.ok(packed.length <= packValue({ seed: null, other, list: [null, null] }, LAYOUT, false).length + 2 * (bytes.length + 2))
    }),
  )
})

test('bytes unpacked from a record share no memory with it', () => {
  const packed = packRecord({ seed: Buffer.from('row bytes') }, LAYOUT)
  const unpacked = unpackRecord(packed, LAYOUT) as { seed: Buffer }
  packed.fill(0)
  assert.equal(unpacked.seed.toString(), 'row bytes')
})

test('rows hold JSON-shaped values only: packValue refuses bytes, unpackValue refuses a bytes item, a cut bytes item is refused', () => {
  assert.throws(() => packValue({ seed: Buffer.from('x') }, LAYOUT, true), InvariantViolation)
  assert.throws(() => packValue([new Uint8Array(2)], LAYOUT, false), InvariantViolation)
  const packed = packRecord({ seed: Buffer.from('row bytes') }, LAYOUT)
  assert.throws(() => unpackValue(packed, LAYOUT), InvariantViolation)
  for (let cut = 1; cut < packed.length; cut++) assert.throws(() => unpackRecord(packed.subarray(0, cut), LAYOUT), InvariantViolation)
  // A refused record leaves no permission behind for the next pack, whichever entry it uses.
  assert.throws(() => packRecord({ bad: Infinity, seed: Buffer.from('x') }, LAYOUT), InvariantViolation)
  assert.throws(() => packValue({ seed: Buffer.from('x') }, LAYOUT, false), InvariantViolation)
  assert.throws(() => packRecord({ bad: Infinity }, LAYOUT), InvariantViolation)
  assert.throws(() => packItems([{ seed: Buffer.from('x') }], false), InvariantViolation)
})

test('field names and constants of the word table pack as one word (tag and position), the longest ones too; other strings as strings', () => {
  // The table is a format: a row written with a word must be written with it again (stores stay byte-identical across builds).
  for (const word of ['id', 'postings', 'NEW_TRANSACTION', 'REVERTED_TRANSACTION', 'revertedTransactionID', 'revertedTransaction', 'postCommitVolumes']) {
    const bytes = packValue(word, 0x01, false)
    assert.equal(bytes.length, 3, word)
    assert.equal(bytes[1], 0x0a, `${word} is a word item`)
    assert.equal(unpackValue(bytes, 0x01), word)
  }
  // (A date of 24 characters, longer than every word, is an instant item: test/domain/packed-instants.test.ts.)
  for (const text of ['revertedTransactionIDs', 'users:0001', 'q0J5Yg8GZ1oQcf1mB2b0b5y6oH3b9b0oLk2m0p2n8wA=']) {
    const bytes = packValue(text, 0x01, false)
    assert.equal(bytes[1], 0x06, `${text} is a string item`)
    assert.equal(unpackValue(bytes, 0x01), text)
  }
})

test('packing refuses once Object.prototype has an enumerable property (for…in would pack it in every plain record)', () => {
  assert.ok(packValue({ a: 1 }, LAYOUT, true).length > 0)
  Object.defineProperty(Object.prototype, 'polluted', { value: 1, enumerable: true, configurable: true, writable: true })
  try {
    assert.throws(() => packValue({ a: 1 }, LAYOUT, true), InvariantViolation)
    assert.throws(() => packItems([{ a: 1 }], true), InvariantViolation)
  } finally {
    delete (Object.prototype as Record<string, unknown>).polluted
  }
  assert.deepEqual(unpackValue(packValue({ a: 1 }, LAYOUT, true), LAYOUT), { a: 1n })
})
