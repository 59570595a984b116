import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { InvariantViolation, instantCode, instantCodeText, isFixedWidthDate, packValue, unpackValue } from '../../src/domain/index.ts'

/**
 * The packed encoding's instant item (storage schema 4): a string that is a
 * stored date in its canonical text is written as one number and unpacks to
 * that very string; every other string — other spellings of a date, dates
 * before 1970, impossible dates — stays a string. The contract of
 * `unpackValue` (what the JSON round trip gives) is unchanged.
 */

const LAYOUT = 0x7e
const INSTANT = 0x0c
const STRING = 0x06
const MS_MAX = 253402300799999 // 9999-12-31T23:59:59.999Z

/** Dates of other instants, packed and unpacked between a value's packing and its unpacking (the converters keep the last date). */
const OTHERS = ['2000-01-01T00:00:00.000Z', '2001-02-03T04:05:06.789012Z'].map((text) => packValue(text, LAYOUT, false))

function roundTrip(text: string): Buffer {
  const bytes = packValue(text, LAYOUT, false)
  for (const other of OTHERS) unpackValue(other, LAYOUT)
  assert.equal(unpackValue(bytes, LAYOUT), text)
  // Inside objects (as a key and as a value) and sorted, as rows hold them.
  const nested = { [text]: [text, { at: text }] }
  assert.deepEqual(unpackValue(packValue(nested, LAYOUT, true), LAYOUT), nested)
  return bytes
}

test('every millisecond date from 1970 to 9999 packs as an instant of at most 9 bytes and unpacks to the same text (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: MS_MAX }), (ms) => {
      const text = new Date(ms).toISOString()
      const bytes = roundTrip(text)
      assert.equal(bytes[1], INSTANT, text)
      assert.ok(bytes.length <= 1 + 1 + 8, `${text}: ${bytes.length} bytes`)
      assert.equal(instantCode(text), 2 * ms)
    }),
    { numRuns: 3000 },
  )
  for (const text of ['1970-01-01T00:00:00.000Z', '2000-02-29T23:59:59.999Z', '9999-12-31T23:59:59.999Z', '2026-12-07T03:45:00.120Z']) assert.equal(roundTrip(text)[1], INSTANT, text)
})

test('a microsecond date keeps its six digits (also when they end in 000); past 2^53 microseconds it stays a string (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: MS_MAX }), fc.integer({ min: 0, max: 999 }), (ms, micros) => {
      const iso = new Date(ms).toISOString()
      const text = `${iso.slice(0, 23)}${String(micros).padStart(3, '0')}Z`
      const bytes = roundTrip(text)
      const micro = BigInt(ms) * 1000n + BigInt(micros)
      assert.equal(bytes[1], 2n * micro + 1n <= 2n ** 53n ? INSTANT : STRING, text)
    }),
    { numRuns: 3000 },
  )
  assert.equal(roundTrip('2026-12-07T03:45:00.123000Z')[1], INSTANT)
  assert.equal(roundTrip('2112-09-17T23:53:47.370495Z')[1], INSTANT, 'the last microsecond date under 2^53')
  assert.equal(roundTrip('2112-09-17T23:53:47.370497Z')[1], STRING, 'the first one past it')
})

test('strings shaped like dates round-trip whatever they hold: impossible dates, other spellings and years before 1970 stay strings (property)', () => {
  const digit = fc.constantFrom(...'0123456789')
  const shaped = fc
    .tuple(fc.array(digit, { minLength: 23, maxLength: 23 }), fc.boolean(), fc.constantFrom('Z', 'z', '+'))
    .map(([digits, micro, end]) => {
      const d = digits.join('')
      return `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${d.slice(8, 10)}:${d.slice(10, 12)}:${d.slice(12, 14)}.${micro ? d.slice(14, 20) : d.slice(14, 17)}${end}`
    })
  fc.assert(
    fc.property(fc.oneof(shaped, fc.string({ minLength: 24, maxLength: 24 }), fc.string({ minLength: 27, maxLength: 27 })), (text) => {
      const bytes = roundTrip(text)
      const year = Number(text.slice(0, 4))
      if (bytes[1] === INSTANT) assert.ok(isFixedWidthDate(text) && year >= 1970, text)
      else assert.ok(!isFixedWidthDate(text) || year < 1970 || instantCode(text) === -1, text)
    }),
    { numRuns: 5000 },
  )
  for (const text of ['2021-02-29T00:00:00.000Z', '2026-13-01T00:00:00.000Z', '2026-12-07T24:00:00.000Z', '2026-12-07T23:60:00.000Z', '2026-12-07T23:59:60.000Z', '1969-12-31T23:59:59.999Z', '2026-12-07T03:45:00.123z', '2026-12-07 03:45:00.123Z', '2026-12-07T03:45:00.1234Z', '2026-12-07T03:45:00Z']) {
    assert.equal(roundTrip(text)[1], STRING, text)
  }
})

test('instantCodeText refuses a code that names no stored date; a row holding one fails closed when read', () => {
  assert.throws(() => instantCodeText(-2))
  assert.throws(() => instantCodeText(2 ** 54))
  assert.throws(() => instantCodeText(2 * (MS_MAX + 1)), /past year 9999/)
  // A corrupted row: an instant item past year 9999 (LEB128 of 2 × (MS_MAX + 1)), then one cut short.
  let code = 2 * (MS_MAX + 1)
  const varint: number[] = []
  while (code >= 0x80) {
    varint.push((code % 0x80) | 0x80)
    code = Math.floor(code / 0x80)
  }
  varint.push(code)
  assert.throws(() => unpackValue(Buffer.from([LAYOUT, INSTANT, ...varint]), LAYOUT), InvariantViolation)
  assert.throws(() => unpackValue(Buffer.from([LAYOUT, INSTANT, 0x80]), LAYOUT), InvariantViolation)
})

test('dates unpack right in any order after packing in any order (the one-date memory of the converters changes no result) (property)', () => {
  const date = fc.oneof(
    fc.integer({ min: 0, max: MS_MAX }).map((ms) => new Date(ms).toISOString()),
    fc.tuple(fc.integer({ min: 0, max: 4102444800000 }), fc.integer({ min: 0, max: 999 })).map(([ms, micros]) => `${new Date(ms).toISOString().slice(0, 23)}${String(micros).padStart(3, '0')}Z`),
  )
  fc.assert(
    fc.property(fc.array(date, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { minLength: 1, maxLength: 24 }), (texts, picks) => {
      const packed = texts.map((text) => packValue(text, LAYOUT, false))
      for (const pick of picks) {
        const at = pick % texts.length
        assert.equal(unpackValue(packed[at] as Buffer, LAYOUT), texts[at])
        // Packing again between reads gives the same bytes.
        assert.deepEqual(packValue(texts[(pick >> 3) % texts.length] as string, LAYOUT, false), packed[(pick >> 3) % texts.length])
      }
    }),
    { numRuns: 2000 },
  )
})
