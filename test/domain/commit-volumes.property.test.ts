import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { Json, MovedVolumes, TransactionRecord, VolumesMap } from '../../src/domain/index.ts'
import {
  InvariantViolation,
  ListedVolumes,
  PairList,
  arrayIndexOf,
  canonicalJson,
  commitVolumes,
  decodeAttribute,
  emptyKeyed,
  encodeAttribute,
  packValue,
  printTransaction,
  stringifyJson,
  unpackValue,
} from '../../src/domain/index.ts'
import { transactionView } from '../../src/orders/index.ts'
import { commitVolumesAsMaps } from '../support/commit-volumes-oracle.ts'

/**
 * Commit volumes as a list (`ListedVolumes`, what an apply builds) against
 * the maps they replace (`commitVolumesAsMaps`, the code before, frozen):
 * the same answer bytes, the same stored row (fixed layout and generic),
 * the same generic JSON, packed and canonical forms. Names include array
 * indices (`10`, `9`, `0`, `4294967294`), which a JS object lists first by
 * value, near misses (`01`, `4294967295`, `-1`), `__proto__`, and text past
 * ASCII.
 */

const name = fc.oneof(
  fc.constantFrom('world', 'users:1', 'users:10', 'USD/2', 'EUR', '__proto__', '10', '9', '0', '01', '4294967294', '4294967295', '-1', 'é', '😀', 'a"b', '', 'z'),
  fc.string({ maxLength: 6 }),
)
const amount = fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }))
const volumes = fc.record({ input: amount, output: amount })
const movedPairs = fc.uniqueArray(fc.record({ account: name, asset: name, pre: volumes, post: volumes }), {
  maxLength: 12,
  selector: (entry) => `${entry.account}\u0000${entry.asset}`,
})

function recordWith(pre: unknown, post: unknown): TransactionRecord {
  return {
    id: 7n,
    postings: [{ source: 'world', destination: 'users:1', amount: 1n, asset: 'USD/2' }],
    timestamp: '2026-12-07T00:00:00Z',
    insertedAt: '2026-12-07T00:00:00Z',
    updatedAt: '2026-12-07T00:00:00Z',
    metadata: emptyKeyed(),
    reverted: false,
    preCommitVolumes: pre,
    postCommitVolumes: post,
  } as unknown as TransactionRecord
}

test('listed commit volumes print, pack and encode as the maps they replace (property)', () => {
  fc.assert(
    fc.property(movedPairs, (moved) => {
      const expected = commitVolumesAsMaps(moved)
      const listed = commitVolumes([...moved] as MovedVolumes[])
      // The same maps, keys in the same order.
      assert.deepStrictEqual(listed.pre.toMap(), expected.pre)
      assert.deepStrictEqual(listed.post.toMap(), expected.post)
      assert.deepStrictEqual(Object.keys(listed.pre.toMap()), Object.keys(expected.pre))
      const fresh = recordWith(listed.pre, listed.post)
      const before = recordWith(expected.pre, expected.post)
      // The answer's printer.
      assert.equal(printTransaction(fresh, { volumes: true }), printTransaction(before, { volumes: true }))
      // The stored row (fixed layout), and what it decodes to.
      const row = encodeAttribute({ kind: 't', value: fresh }).bytes
      assert.deepEqual(row, encodeAttribute({ kind: 't', value: before }).bytes)
      assert.deepStrictEqual(decodeAttribute('t', row).value, decodeAttribute('t', encodeAttribute({ kind: 't', value: before }).bytes).value)
      // The generic walkers, as an order's output meets them (an idempotency record packs it; stringifyJson; canonical JSON).
      const view = transactionView(fresh, { volumes: true })
      const viewBefore = transactionView(before, { volumes: true })
      assert.equal(stringifyJson(view), stringifyJson(viewBefore))
      assert.deepEqual(packValue(view, 0x01, true), packValue(viewBefore, 0x01, true))
      assert.deepEqual(packValue(view, 0x01, false), packValue(viewBefore, 0x01, false))
      assert.equal(canonicalJson(view), canonicalJson(viewBefore))
      // An idempotent replay prints the stored answer (maps, read back) as the write printed its own (a list).
      const replayed = unpackValue(packValue(view, 0x01, true), 0x01) as unknown as TransactionRecord
      assert.equal(printTransaction(replayed, { volumes: true }), printTransaction(fresh, { volumes: true }))
    }),
    { numRuns: 1000 },
  )
})

test('a negative amount in listed volumes leaves the fixed layout for the generic row, as the maps did', () => {
  const pairs = new PairList(['users:1', 'USD'])
  const pre = new ListedVolumes(pairs, [-1n, 0n])
  const post = new ListedVolumes(pairs, [0n, 0n])
  const row = encodeAttribute({ kind: 't', value: recordWith(pre, post) }).bytes
  const expected = encodeAttribute({ kind: 't', value: recordWith(pre.toMap(), post.toMap()) }).bytes
  assert.deepEqual(row, expected)
  assert.equal(row[0], 0x01, 'the generic layout')
})

test('a pair list refuses pairs out of sorted order or twice', () => {
  assert.throws(() => new PairList(['b', 'USD', 'a', 'USD']), InvariantViolation)
  assert.throws(() => new PairList(['a', 'USD', 'a', 'USD']), InvariantViolation)
  assert.throws(() => new PairList(['a', 'USD', 'a', 'EUR']), InvariantViolation)
  assert.throws(() => new PairList(['a']), InvariantViolation)
  assert.throws(() => new ListedVolumes(new PairList(['a', 'USD']), [1n]), InvariantViolation)
  assert.equal(new PairList(['a', 'EUR', 'a', 'USD', 'b', 'USD']).accountCount, 2)
})

test('array indices are the canonical decimals 0 to 2^32 - 2', () => {
  for (const [text, index] of [['0', 0], ['9', 9], ['10', 10], ['4294967294', 4294967294], ['4294967295', -1], ['01', -1], ['-1', -1], ['1.5', -1], ['1e3', -1], ['', -1], ['99999999999', -1], ['users:1', -1]] as const) {
    assert.equal(arrayIndexOf(text), index, text)
    // What a JS object does with the same name: an array index is listed before a name added earlier.
    const object: Record<string, number> = emptyKeyed()
    object.z = 0
    object[text] = 1
    assert.equal(Object.keys(object)[0] === text, index >= 0, `object order of ${JSON.stringify(text)}`)
  }
})

test('the printer prints listed volumes whose names are array indices in object order', () => {
  const { pre, post } = commitVolumes([
    { account: 'users:1', asset: 'USD', pre: { input: 1n, output: 0n }, post: { input: 2n, output: 0n } },
    { account: '10', asset: 'USD', pre: { input: 3n, output: 0n }, post: { input: 4n, output: 0n } },
    { account: '9', asset: 'USD', pre: { input: 5n, output: 0n }, post: { input: 6n, output: 0n } },
    { account: '9', asset: '2', pre: { input: 7n, output: 0n }, post: { input: 8n, output: 0n } },
  ])
  const printed = printTransaction(recordWith(pre, post), { volumes: true })
  assert.ok(
    printed.includes('"preCommitVolumes":{"9":{"2":{"input":7,"output":0,"balance":7},"USD":{"input":5,"output":0,"balance":5}},"10":{"USD":{"input":3,"output":0,"balance":3}},"users:1":{"USD":{"input":1,"output":0,"balance":1}}}'),
    printed,
  )
  const asJson = JSON.parse(printed) as { postCommitVolumes: Json }
  assert.deepEqual(Object.keys(asJson.postCommitVolumes as Record<string, Json>), ['9', '10', 'users:1'])
  const map: VolumesMap = pre.toMap()
  assert.deepEqual(Object.keys(map), ['9', '10', 'users:1'])
})
