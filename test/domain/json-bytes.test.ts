import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { InvariantViolation, JsonBytes, asciiText } from '../../src/domain/index.ts'

/**
 * The byte writer's integers and constant text against what JavaScript
 * itself prints: `integer` writes small values digit by digit (no string),
 * larger ones through `toString`, and must give the same digits either way,
 * at every boundary between the two.
 */

function printed(write: (out: JsonBytes) => void): string {
  const out = new JsonBytes(8) // small: writes also make it grow
  write(out)
  return out.take().toString('utf8')
}

const boundaries = [0, 1, 9, 10, 11, 99, 100, 101, 2 ** 31 - 3, 2 ** 31 - 2, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1]

test('integer: the digits toString gives, for bigint and safe numbers, on both sides of the small-integer bound', () => {
  for (const value of boundaries) {
    assert.equal(printed((out) => out.integer(value)), String(value), `number ${value}`)
    assert.equal(printed((out) => out.integer(-value)), String(-value), `number ${-value}`)
    assert.equal(printed((out) => out.integer(BigInt(value))), String(value), `bigint ${value}`)
    assert.equal(printed((out) => out.integer(-BigInt(value))), String(-BigInt(value)), `bigint ${-value}`)
  }
  assert.equal(printed((out) => out.integer(2n ** 256n - 1n)), (2n ** 256n - 1n).toString())
  fc.assert(
    fc.property(fc.oneof(fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }), fc.bigInt({ min: -(2n ** 256n), max: 2n ** 256n })), fc.maxSafeInteger(), (big, small) => {
      assert.equal(printed((out) => out.integer(big)), big.toString())
      assert.equal(printed((out) => out.integer(small)), String(small))
      // Several in a row, as a transaction's fields are written.
      assert.equal(printed((out) => [big, small, big].forEach((value) => out.integer(value))), `${big}${small}${big}`)
    }),
    { numRuns: 500 },
  )
  assert.throws(() => printed((out) => out.integer(2 ** 53)), InvariantViolation)
  assert.throws(() => printed((out) => out.integer(1.5)), InvariantViolation)
})

test('ascii: constant text is copied as raw would write it; anything but printable ASCII is refused once, when encoded', () => {
  for (const text of ['{"id":', ',"postings":[', '}', ',"reverted":false', ' !~']) {
    assert.equal(printed((out) => out.ascii(asciiText(text))), printed((out) => out.raw(text)))
  }
  for (const text of ['é', '\n', '\u0000', '\u007f', '😀']) assert.throws(() => asciiText(text), InvariantViolation, JSON.stringify(text))
})

test('htmlSafePlainString: quotes exactly what JSON.stringify does when it accepts, writes nothing when it refuses (property)', () => {
  const edges = fc.constantFrom('"', '\\', '<', '>', '&', '\u001f', '\u007f', '\u0080', 'é', '\ud800', ' ', '~', 'a')
  const text = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme-ascii' }), fc.array(edges, { maxLength: 6 }).map((parts) => parts.join('')))
  fc.assert(
    fc.property(text, (value) => {
      let accepted = false
      const written = printed((out) => {
        out.raw('[')
        accepted = out.htmlSafePlainString(value)
        out.raw(']')
      })
      const plain = /^[\x20-\x7e]*$/.test(value) && !/["\\<>&]/.test(value)
      assert.equal(accepted, plain)
      assert.equal(written, plain ? `[${JSON.stringify(value)}]` : '[]')
    }),
    { numRuns: 2000 },
  )
})

test('a writer emptied after a large print gives its room back past keptBytesMax, and keeps a smaller buffer', () => {
  const large = 'x'.repeat(3000)
  const emptyings: [string, (out: JsonBytes) => void][] = [
    ['take', (out) => void out.take()],
    ['discardFrom(0)', (out) => out.discardFrom(0)],
    ['takeStringFrom(0)', (out) => void out.takeStringFrom(0)],
  ]
  for (const [name, empty] of emptyings) {
    const out = new JsonBytes(256, 1024)
    out.string(large)
    assert.ok(out.capacity > 1024, `${name}: the buffer grew`)
    empty(out)
    assert.equal(out.length, 0, name)
    assert.equal(out.capacity, 256, `${name}: room given back`)
    out.string('small')
    assert.equal(out.take().toString(), '"small"', `${name}: still writes`)
  }
  const kept = new JsonBytes(256, 1024 * 1024)
  kept.string(large)
  const grown = kept.capacity
  kept.take()
  assert.equal(kept.capacity, grown, 'under the bound the buffer is kept (no churn)')
  const nested = new JsonBytes(256, 1024)
  nested.string('head')
  const from = nested.length
  nested.string(large)
  nested.discardFrom(from)
  assert.equal(nested.take().toString(), '"head"', 'discarding a nested print keeps what came before it')
})
