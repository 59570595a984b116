import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  parseJson,
  stringifyJson,
  canonicalJson,
  PrintedJson,
  parseAmount,
  parseAccountAddress,
  parseAsset,
  parseLedgerName,
  parsePostings,
  parseMetadata,
  isAccountAddress,
  isAsset,
  TallyError,
  AMOUNT_LIMIT,
  httpStatusOf,
  mergeMetadata,
  metadataValue,
  ownValue,
  emptyKeyed,
  keyedChild,
  withoutKey,
  addInput,
  addOutput,
  balanceOf,
  ZERO_VOLUMES,
  InvariantViolation,
} from '../../src/domain/index.ts'

function expectValidation(fn: () => unknown, fragment: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof TallyError, 'a TallyError')
    assert.equal(error.code, 'VALIDATION')
    assert.match(error.message, new RegExp(fragment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    return true
  })
}

test('JSON codec keeps integers beyond 2^53 exact both ways', () => {
  const text = '{"amount":115792089237316195423570985008687907853269984665640564039457584007913129639935,"x":1.5}'
  const value = parseJson(text) as { amount: bigint; x: number }
  assert.equal(value.amount, (1n << 256n) - 1n)
  assert.equal(value.x, 1.5)
  assert.equal(stringifyJson(value), text)
  assert.equal(stringifyJson({ a: 9007199254740993n }), '{"a":9007199254740993}')
})

test('JSON codec: every bigint round-trips (property)', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: -(1n << 300n), max: 1n << 300n }), (n) => {
      assert.equal((parseJson(stringifyJson({ n })) as { n: bigint }).n, n)
    }),
  )
})

test('JSON codec rejects malformed input as VALIDATION', () => {
  expectValidation(() => parseJson('{"a":'), 'malformed JSON')
  expectValidation(() => parseJson('{a:1}'), 'malformed JSON')
})

test('canonical JSON sorts keys at every depth and drops undefined', () => {
  assert.equal(canonicalJson({ b: 1n, a: { d: [{ z: 1, y: 2 }], c: undefined } }), '{"a":{"d":[{"y":2,"z":1}]},"b":1}')
})

test('printed JSON is placed as it is by stringifyJson, and refused inside a canonical (hashed) value', () => {
  const printed = new PrintedJson('{"z":1,"a":2}')
  assert.equal(stringifyJson({ cursor: { data: [printed, printed] } }), '{"cursor":{"data":[{"z":1,"a":2},{"z":1,"a":2}]}}')
  assert.throws(() => canonicalJson({ data: [printed] }), InvariantViolation)
})

test('amounts: 0 ≤ a < 2^256, integers only', () => {
  assert.equal(parseAmount(0n), 0n)
  assert.equal(parseAmount(AMOUNT_LIMIT - 1n), AMOUNT_LIMIT - 1n)
  expectValidation(() => parseAmount('12345678901234567890'), 'not strings')
  expectValidation(() => parseAmount(1000), 'decimal point or an exponent')
  expectValidation(() => parseAmount(-1n), 'negative')
  expectValidation(() => parseAmount(AMOUNT_LIMIT), 'exceeds')
  expectValidation(() => parseAmount(1.5), 'not a whole number')
  expectValidation(() => parseAmount('1.5'), 'not strings')
  expectValidation(() => parseAmount('-3'), 'not strings')
  expectValidation(() => parseAmount(null), 'expected a non-negative JSON integer')
  expectValidation(() => parseAmount(true, 'postings[0].amount'), 'postings[0].amount')
})

test('account addresses follow the contract pattern', () => {
  for (const ok of ['world', 'users:1234:wallet', 'a-b_c:D9', 'x']) assert.ok(isAccountAddress(ok), ok)
  for (const bad of ['', ':a', 'a:', 'a::b', 'a b', 'a.b', 'é', 'a:b:', 'a'.repeat(2000)]) {
    assert.ok(!isAccountAddress(bad), bad)
  }
  expectValidation(() => parseAccountAddress('a b', 'postings[0].source'), 'postings[0].source: invalid account address')
})

test('assets follow the contract pattern', () => {
  for (const ok of ['USD', 'USD/2', 'BTC/8', 'COIN', 'EUR_CENT/2', 'A', 'USD/123456']) assert.ok(isAsset(ok), ok)
  for (const bad of ['usd', 'USD/', 'USD/1234567', '1USD', 'USD_', 'USD_cent', '', 'ABCDEFGHIJKLMNOPQR']) {
    assert.ok(!isAsset(bad), bad)
  }
  expectValidation(() => parseAsset('usd'), 'invalid asset')
})

test('ledger names: 1..63 of [a-zA-Z0-9_-]', () => {
  assert.equal(parseLedgerName('main-1_X'), 'main-1_X')
  expectValidation(() => parseLedgerName('a'.repeat(64)), 'ledger name of 64 characters is longer than the limit of 63')
  expectValidation(() => parseLedgerName(''), 'invalid ledger name')
  expectValidation(() => parseLedgerName('a/b'), 'invalid ledger name')
})

test('postings: strict shape with precise field paths', () => {
  const postings = parsePostings([{ source: 'world', destination: 'a', amount: 10n, asset: 'USD/2' }])
  assert.deepEqual(postings, [{ source: 'world', destination: 'a', amount: 10n, asset: 'USD/2' }])
  expectValidation(() => parsePostings({}), 'postings: expected an array')
  expectValidation(
    () => parsePostings([{ source: 'world', destination: 'a', amount: 10n, asset: 'USD', extra: 1 }]),
    'unknown field "extra"',
  )
  expectValidation(() => parsePostings([{ source: 'world', destination: 'a', amount: -1n, asset: 'USD' }]), 'postings[0].amount')
  expectValidation(() => parsePostings([{ source: 'world', destination: 'a b', amount: 1n, asset: 'USD' }]), 'postings[0].destination')
})

/** Metadata as the domain builds it: no prototype. */
const bare = (entries: Record<string, string>) => Object.assign(Object.create(null) as Record<string, string>, entries)

test('metadata: strings only, keys named on error', () => {
  assert.deepEqual(parseMetadata({ a: 'b' }), bare({ a: 'b' }))
  assert.deepEqual(parseMetadata(undefined), bare({}))
  expectValidation(() => parseMetadata({ a: 1n }), 'metadata["a"]: expected a string')
  expectValidation(() => parseMetadata([]), 'expected an object')
  assert.deepEqual(mergeMetadata({ b: '1', a: '2' }, { b: '3' }), bare({ a: '2', b: '3' }))
  assert.deepEqual(Object.keys(mergeMetadata({ z: '1' }, { a: '2' })), ['a', 'z'])
  assert.deepEqual(withoutKey({ a: '1', b: '2' }, 'a'), bare({ b: '2' }))
})

test('json codec: a `__proto__` key is data both ways, nested or not, and never reaches Object.prototype', () => {
  const text = '{"__proto__":{"polluted":"yes","__proto__":"x"},"constructor":{"prototype":"p"},"a":[{"__proto__":1}]}'
  const parsed = parseJson(text) as Record<string, unknown>
  assert.equal(Object.hasOwn(parsed, '__proto__'), true)
  assert.equal(Object.getPrototypeOf(parsed), Object.prototype)
  assert.equal(stringifyJson(parsed), text)
  assert.equal(canonicalJson(parsed), '{"__proto__":{"__proto__":"x","polluted":"yes"},"a":[{"__proto__":1}],"constructor":{"prototype":"p"}}')
  assert.equal(Object.hasOwn(Object.prototype, 'polluted'), false)
  assert.equal(stringifyJson(parseMetadata(parseJson('{"__proto__":"p"}'))), '{"__proto__":"p"}')
})

test('metadata: keys named after Object.prototype are data; one canonical order whatever the input order', () => {
  const names = [...new Set([...Object.getOwnPropertyNames(Object.prototype), '__proto__'])]
  const body = parseJson(`{${names.map((name, i) => `${JSON.stringify(name)}:"${i}"`).reverse().join(',')}}`)
  const metadata = parseMetadata(body)
  assert.deepEqual(Object.keys(metadata), [...names].sort())
  names.forEach((name, i) => assert.equal(metadataValue(metadata, name), String(i)))
  assert.equal(Object.getPrototypeOf(metadata), null)
  // A stored `constructor` key survives an unrelated save; an absent one is not read through the prototype.
  const saved = mergeMetadata(parseMetadata(parseJson('{"constructor":"kept"}')), parseMetadata(parseJson('{"other":"1"}')))
  assert.deepEqual(Object.entries(saved), [['constructor', 'kept'], ['other', '1']])
  assert.deepEqual(Object.entries(mergeMetadata(parseMetadata({}), parseMetadata(parseJson('{"a":"1"}')))), [['a', '1']])
  assert.equal(metadataValue(parseMetadata({}), 'toString'), undefined)
  // A plain object (a parsed body, a decoded order) is read by its own keys only.
  assert.equal(ownValue<unknown>({}, 'constructor'), undefined)
  assert.equal(ownValue(parseJson('{"__proto__":"p"}') as Record<string, string>, '__proto__'), 'p')
  const child = emptyKeyed<Record<string, string>>()
  keyedChild(child, '__proto__').USD = '1'
  assert.equal(Object.hasOwn(Object.prototype, 'USD'), false)
  assert.deepEqual(Object.keys(child), ['__proto__'])
  assert.deepEqual(Object.keys(withoutKey(metadata, '__proto__')), [...names].sort().filter((name) => name !== '__proto__'))
  assert.equal(canonicalJson(parseMetadata(parseJson('{"b":"1","a":"2"}'))), canonicalJson(parseMetadata(parseJson('{"a":"2","b":"1"}'))))
  assert.equal(stringifyJson(parseMetadata(parseJson('{"b":"1","a":"2"}'))), '{"a":"2","b":"1"}')
  assert.equal(stringifyJson(parseMetadata(parseJson('{"__proto__":"p"}'))), '{"__proto__":"p"}')
})

test('volumes: balance = input − output; negative amounts are invariant violations', () => {
  const v = addOutput(addInput(ZERO_VOLUMES, 10n), 25n)
  assert.equal(balanceOf(v), -15n)
  assert.throws(() => addInput(ZERO_VOLUMES, -1n), InvariantViolation)
  assert.throws(() => addInput({ input: AMOUNT_LIMIT - 1n, output: 0n }, 1n), InvariantViolation, "a volume past 2^256 - 1 is an invariant the apply path guards")
  assert.throws(() => addOutput({ input: 0n, output: AMOUNT_LIMIT - 1n }, 1n), InvariantViolation)
  assert.deepEqual(addInput({ input: AMOUNT_LIMIT - 2n, output: 0n }, 1n), { input: AMOUNT_LIMIT - 1n, output: 0n })
})

test('every error kind maps to one HTTP status', () => {
  assert.equal(httpStatusOf('validation'), 400)
  assert.equal(httpStatusOf('not_found'), 404)
  assert.equal(httpStatusOf('conflict'), 409)
  assert.equal(httpStatusOf('unavailable'), 503)
  assert.equal(httpStatusOf('internal'), 500)
  assert.equal(httpStatusOf('precondition'), 412)
  assert.equal(httpStatusOf('too_large'), 413)
  assert.equal(httpStatusOf('business'), 400)
})

test('JSON printer matches JSON.stringify on bigint-free values (property)', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      assert.equal(stringifyJson(value), JSON.stringify(value))
    }),
  )
})

test('canonical JSON is insensitive to key order (property)', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.oneof(fc.bigInt(), fc.string())), (record) => {
      const reversed = Object.fromEntries(Object.entries(record).reverse())
      assert.equal(canonicalJson(record), canonicalJson(reversed))
      assert.deepEqual(parseJson(canonicalJson(record)), parseJson(stringifyJson(record)))
    }),
  )
})
