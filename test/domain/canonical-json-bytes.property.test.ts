import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { InvariantViolation, JsonBytes, PrintedJson, canonicalJson, parseJson, writeCanonicalJson } from '../../src/domain/index.ts'
import { parseCreateTransaction } from '../../src/orders/index.ts'
import { requestHash } from '../../src/api/requests.ts'
import { canonicalJsonOracle } from '../support/canonical-json-oracle.ts'

/**
 * `writeCanonicalJson` (and `canonicalJson`, its text) against the string
 * encoder it replaced (`test/support/canonical-json-oracle.ts`): on any value
 * the same bytes as the oracle's string encoded as UTF-8 (keys sorted by code unit, what JSON skips
 * skipped, a bigint as its digits, strings quoted as `JSON.stringify` quotes
 * them, lone surrogates included), or the same refusal. `requestHash`, an
 * idempotency key's digest stored with its record, must not move: it is
 * held to the sha256 of the oracle's text too.
 */

type Outcome = { readonly bytes: string } | { readonly refused: string }

function viaString(value: unknown, encode: (value: unknown) => string = canonicalJsonOracle): Outcome {
  try {
    return { bytes: Buffer.from(encode(value), 'utf8').toString('hex') }
  } catch (error) {
    assert.ok(error instanceof InvariantViolation, String(error))
    return { refused: error.message }
  }
}

const out = new JsonBytes(16)
function viaBytes(value: unknown): Outcome {
  try {
    writeCanonicalJson(out, value)
    return { bytes: out.take().toString('hex') }
  } catch (error) {
    out.discardFrom(0)
    assert.ok(error instanceof InvariantViolation, String(error))
    return { refused: error.message }
  }
}

const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom('a', 'Z', '"', '\\', '\n', '\u0000', '\u007f', 'é', '\ud83d', '\ude00', '<', '&', '\u2028') }),
)
const leaf = fc.oneof(
  text,
  fc.bigInt(),
  fc.constantFrom<unknown>(0, -0, 1.5, -2e-7, 1e21, 123456789012, Number.MAX_SAFE_INTEGER, true, false, null, undefined, () => 1, Symbol('s')),
  fc.double(),
)
const value = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('node'), { maxLength: 5 }),
  object: fc.dictionary(fc.oneof(text, fc.constantFrom('a', 'b', 'B', '10', '9', '__proto__', 'constructor')), tie('node'), { maxKeys: 5 }),
})).node

test('writeCanonicalJson and canonicalJson: the bytes of the encoder they replaced, or its refusal', () => {
  fc.assert(
    fc.property(value, (chosen) => {
      const expected = viaString(chosen)
      assert.deepStrictEqual(viaBytes(chosen), expected)
      assert.deepStrictEqual(viaString(chosen, canonicalJson), expected)
    }),
    { numRuns: 3000 },
  )
  for (const refused of [undefined, Number.NaN, [1, Number.POSITIVE_INFINITY], { a: new PrintedJson('1') }, () => 1]) {
    assert.deepStrictEqual(viaBytes(refused), viaString(refused))
    assert.deepStrictEqual(viaString(refused, canonicalJson), viaString(refused))
    assert.ok('refused' in viaBytes(refused))
  }
})

test('requestHash: sha256 of the canonical text, as before, for orders and odd values alike', () => {
  const order = parseCreateTransaction('main' as never, parseJson('{"postings":[{"source":"world","destination":"users:e9","amount":123456789012345678901234567890,"asset":"USD/2"}],"metadata":{"b":"2","a":"\\ud83d"},"reference":"r"}'))
  fc.assert(
    fc.property(value, (chosen) => {
      const parts = ['bulk', chosen, order]
      const outcome = (digest: () => string): string => {
        try {
          return digest()
        } catch (error) {
          assert.ok(error instanceof InvariantViolation, String(error))
          return `refused: ${error.message}`
        }
      }
      assert.equal(outcome(() => requestHash(parts)), outcome(() => createHash('sha256').update(canonicalJsonOracle(parts)).digest('base64url')))
    }),
    { numRuns: 500 },
  )
})
