import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { InvariantViolation, TallyError, compareDates, isFixedWidthDate, parseDate, parseInstant } from '../../src/domain/index.ts'

/**
 * The date parser against a naive reference built on `Date`: a text names an
 * instant exactly when `Date`, given its fields, gives them back unchanged
 * (it rolls `02-29` of a common year over to March, `24:00` to the next day).
 */

const two = (value: number): string => String(value).padStart(2, '0')

const dateText = fc.record({
  // Century and leap years, February and month ends drawn often: that is where calendars go wrong.
  year: fc.oneof(fc.integer({ min: 0, max: 9999 }), fc.constantFrom(0, 1600, 1700, 1900, 1970, 2000, 2020, 2021, 2100, 2400, 9999)),
  month: fc.oneof(fc.integer({ min: 0, max: 13 }), fc.constant(2)),
  day: fc.oneof(fc.integer({ min: 0, max: 32 }), fc.integer({ min: 28, max: 31 })),
  hour: fc.integer({ min: 0, max: 25 }),
  minute: fc.integer({ min: 0, max: 61 }),
  second: fc.integer({ min: 0, max: 61 }),
  fraction: fc.stringMatching(/^[0-9]{0,9}$/),
  zone: fc.oneof(fc.constant('Z'), fc.record({ sign: fc.constantFrom('+', '-'), hours: fc.integer({ min: 0, max: 25 }), minutes: fc.integer({ min: 0, max: 61 }) })),
})

type Fields = typeof dateText extends fc.Arbitrary<infer T> ? T : never

function render(fields: Fields): string {
  const zone = fields.zone === 'Z' ? 'Z' : `${fields.zone.sign}${two(fields.zone.hours)}:${two(fields.zone.minutes)}`
  const fraction = fields.fraction === '' ? '' : `.${fields.fraction}`
  return `${String(fields.year).padStart(4, '0')}-${two(fields.month)}-${two(fields.day)}T${two(fields.hour)}:${two(fields.minute)}:${two(fields.second)}${fraction}${zone}`
}

/** Nanoseconds since the epoch by way of `Date`, or undefined when a field is out of range. */
function reference(fields: Fields): bigint | undefined {
  const date = new Date(0)
  date.setUTCFullYear(fields.year, fields.month - 1, fields.day)
  date.setUTCHours(fields.hour, fields.minute, fields.second, 0)
  const same =
    fields.month >= 1 &&
    fields.month <= 12 &&
    date.getUTCFullYear() === fields.year &&
    date.getUTCMonth() === fields.month - 1 &&
    date.getUTCDate() === fields.day &&
    date.getUTCHours() === fields.hour &&
    date.getUTCMinutes() === fields.minute &&
    date.getUTCSeconds() === fields.second
  if (!same) return undefined
  let offsetMs = 0
  if (fields.zone !== 'Z') {
    if (fields.zone.hours > 23 || fields.zone.minutes > 59) return undefined
    offsetMs = (fields.zone.sign === '-' ? -1 : 1) * (fields.zone.hours * 3600 + fields.zone.minutes * 60) * 1000
  }
  return BigInt(date.getTime() - offsetMs) * 1_000_000n + BigInt(fields.fraction.padEnd(9, '0'))
}

/** The canonical text by way of `toISOString`: microseconds rounded half up, milliseconds when exact. */
function referenceCanonical(nanos: bigint): string | undefined {
  const micros = nanos >= 0n ? (nanos + 500n) / 1000n : -((-nanos - 500n + 999n) / 1000n)
  const floorMillis = micros >= 0n ? micros / 1000n : -((-micros + 999n) / 1000n)
  const iso = new Date(Number(floorMillis)).toISOString()
  if (iso.length !== 24) return undefined // outside 0000–9999
  const rest = micros - floorMillis * 1000n
  return rest === 0n ? iso : `${iso.slice(0, 23)}${String(rest).padStart(3, '0')}Z`
}

test('parseInstant agrees with the Date-based reference on every field combination (property)', () => {
  fc.assert(
    fc.property(dateText, (fields) => {
      const text = render(fields)
      assert.equal(parseInstant(text)?.nanos, reference(fields), text)
    }),
    { numRuns: 20_000 },
  )
})

test('parseDate: the canonical text of the instant rounded to the microsecond, or a 400 naming the field (property)', () => {
  fc.assert(
    fc.property(dateText, (fields) => {
      const text = render(fields)
      const nanos = reference(fields)
      const expected = nanos === undefined ? undefined : referenceCanonical(nanos)
      if (expected === undefined) {
        assert.throws(() => parseDate(text, 'timestamp'), (error: unknown) => error instanceof TallyError && error.code === 'VALIDATION' && error.message.startsWith('timestamp: '), text)
      } else {
        assert.equal(parseDate(text, 'timestamp'), expected, text)
        // Canonical texts are fixed points.
        assert.equal(parseDate(expected, 'timestamp'), expected)
      }
    }),
    { numRuns: 20_000 },
  )
})

test('compareDates orders stored dates as instants, not as text (property)', () => {
  const stored = fc.bigInt({ min: 0n, max: 253_402_300_799_999_999n }).map((micros) => referenceCanonical(micros * 1000n) as string)
  fc.assert(
    fc.property(stored, stored, (left, right) => {
      const a = parseInstant(left)?.nanos as bigint
      const b = parseInstant(right)?.nanos as bigint
      assert.equal(compareDates(left, right), a < b ? -1 : a > b ? 1 : 0, `${left} vs ${right}`)
    }),
  )
  assert.equal(compareDates('2024-01-01T00:00:00.123Z', '2024-01-01T00:00:00.123456Z'), -1, 'text order says otherwise')
})

test('compareDates gives the same answers when the same few texts come back again and again (it remembers the texts it accepted), impossible ones refused every time', () => {
  // Each text compared with every other many times over, in a fixed order: more texts than are remembered, so some are forgotten and checked again.
  const texts = [
    '2024-01-01T00:00:00.123Z',
    '2024-01-01T00:00:00.123456Z',
    '2023-12-31T23:59:59.999Z',
    '2021-02-29T00:00:00.000Z', // fixed width, but no such day
    '2024-01-01T00:00:00.124Z',
    '2024-01-01T01:00:00+01:00',
    '2021-02-28T00:00:00.000000Z',
  ]
  for (let round = 0; round < 3; round++) {
    for (const left of texts) {
      for (const right of texts) {
        const a = parseInstant(left)?.nanos
        const b = parseInstant(right)?.nanos
        if (left === right) assert.equal(compareDates(left, right), 0)
        else if (a === undefined || b === undefined) assert.throws(() => compareDates(left, right), InvariantViolation, `${left} vs ${right}`)
        else assert.equal(compareDates(left, right), a < b ? -1 : a > b ? 1 : 0, `${left} vs ${right}`)
      }
    }
  }
})

/** Fixed-width texts (`….fffZ`, `….ffffffZ`), impossible fields included: the shape the fast paths read by character. */
const fixedWidthFields = fc
  .tuple(dateText, fc.integer({ min: 0, max: 999_999 }), fc.constantFrom(3, 6))
  .map(([fields, fraction, digits]): Fields => ({ ...fields, fraction: String(fraction).padStart(6, '0').slice(0, digits), zone: 'Z' }))

test('fixed-width dates take the character path with the same results as the general parser (property)', () => {
  fc.assert(
    fc.property(fixedWidthFields, fixedWidthFields, (leftFields, rightFields) => {
      const left = render(leftFields)
      const right = render(rightFields)
      const leftNanos = reference(leftFields)
      const rightNanos = reference(rightFields)
      assert.equal(isFixedWidthDate(left), leftNanos !== undefined, left)
      const expected = leftNanos === undefined ? undefined : referenceCanonical(leftNanos)
      if (expected === undefined) assert.throws(() => parseDate(left, 'timestamp'), TallyError, left)
      else assert.equal(parseDate(left, 'timestamp'), expected, left)
      if (leftNanos === undefined || rightNanos === undefined) {
        if (left !== right) assert.throws(() => compareDates(left, right), InvariantViolation, `${left} vs ${right}`)
      } else {
        assert.equal(compareDates(left, right), leftNanos < rightNanos ? -1 : leftNanos > rightNanos ? 1 : 0, `${left} vs ${right}`)
      }
    }),
    { numRuns: 5_000 },
  )
  // Equal instants in both precisions, and an order text alone gets wrong.
  assert.equal(compareDates('2024-01-01T00:00:00.123Z', '2024-01-01T00:00:00.123000Z'), 0)
  assert.equal(compareDates('2024-01-01T00:00:00.123Z', '2024-01-01T00:00:00.122999Z'), 1)
  assert.equal(parseDate('2024-01-01T00:00:00.123000Z', 'timestamp'), '2024-01-01T00:00:00.123Z')
  for (const spelled of ['2024-01-01t00:00:00.123Z', '2024-01-01T00:00:00.123z', '+2024-01-01T00:00:00.12Z', '2024-01-01T00:00:00.1234Z']) assert.equal(isFixedWidthDate(spelled), false, spelled)
})

test('the reasons an impossible date gives', () => {
  const reason = (text: string): string => {
    try {
      parseDate(text, 'pit')
    } catch (error) {
      return (error as Error).message
    }
    return 'accepted'
  }
  assert.match(reason('2021-02-29T00:00:00Z'), /February 2021 has 28 days, not 29/)
  assert.match(reason('2021-04-31T00:00:00Z'), /April 2021 has 30 days, not 31/)
  assert.match(reason('2021-01-01T24:00:00Z'), /hour 24 does not exist/)
  assert.match(reason('2021-01-01T00:00:00+24:00'), /offset \+24:00 does not exist/)
  assert.match(reason('2021-01-01'), /not an RFC 3339 date-time/)
  assert.equal(parseDate(undefined, 'pit'), undefined)
})
