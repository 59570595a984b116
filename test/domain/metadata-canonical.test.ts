import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { boundedMetadata, canonicalAccountMetadata, canonicalMetadata, emptyKeyed, keyedFrom, mergeMetadata, storedMetadata } from '../../src/domain/index.ts'
import type { Keyed, Metadata } from '../../src/domain/index.ts'

/**
 * `canonicalMetadata` copies entries already in canonical order as they come
 * (no map, no sort). Against the code it replaced on that path (a map, a sort
 * of its keys, a prototype-less object filled in sorted order): the same
 * keys in the same order, the same values, no prototype, the same JSON, for
 * every input — sorted or not, with repeats, `__proto__`, integer-like keys.
 */
function canonicalModel(entries: Iterable<readonly [string, string]>): Metadata {
  const byKey = new Map<string, string>()
  for (const [key, value] of entries) byKey.set(key, value)
  const metadata = emptyKeyed<string>()
  for (const key of [...byKey.keys()].sort()) metadata[key] = byKey.get(key) as string
  return metadata
}

function assertSame(actual: Metadata, expected: Metadata): void {
  assert.equal(Object.getPrototypeOf(actual), null)
  assert.deepEqual(Object.keys(actual), Object.keys(expected))
  for (const key of Object.keys(expected)) assert.equal(actual[key], expected[key])
  assert.equal(JSON.stringify(actual), JSON.stringify(expected))
}

const key = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'toString', 'a', 'b', 'B', '0', '1', '10', '2', '01', '-1', '4294967295', '4294967294', 'é', 'e\u0301', '\u{1F600}', '\uFFFF', ''),
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc.string({ maxLength: 4 }),
)
const entry = fc.tuple(key, fc.string({ maxLength: 4 }))
const entries = fc.oneof(
  fc.array(entry, { maxLength: 12 }),
  // Strictly ascending keys: the copied-as-they-come path.
  fc.uniqueArray(entry, { selector: ([k]) => k, maxLength: 12 }).map((list) => list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
)

test('canonicalMetadata equals the map-and-sort model, for arrays and other iterables, ascending or not', () => {
  fc.assert(
    fc.property(entries, (list) => {
      assertSame(canonicalMetadata(list), canonicalModel(list))
      assertSame(canonicalMetadata(new Map(list)), canonicalModel(list))
      // Canonical form is a fixed point: re-canonicalising a stored map's own entries changes nothing.
      const once = canonicalMetadata(list)
      assertSame(storedMetadata(once), once)
      assertSame(mergeMetadata(once, canonicalMetadata([])), once)
    }),
    { numRuns: 2000 },
  )
})

test('canonicalMetadata copies ascending entries into a new map: a later change to the input does not reach it', () => {
  const list: [string, string][] = [['a', '1'], ['b', '2']]
  const metadata = canonicalMetadata(list)
  list[0] = ['a', 'changed']
  assert.equal(metadata.a, '1')
})

test('empty metadata is one frozen map without prototype: nothing can be written into it', () => {
  const empty = canonicalMetadata([])
  assert.equal(canonicalMetadata([]), empty, 'the same map each time')
  assert.equal(Object.getPrototypeOf(empty), null)
  assert.ok(Object.isFrozen(empty))
  assert.throws(() => {
    ;(empty as Record<string, string>).a = '1'
  }, TypeError)
  assert.deepEqual(Object.keys(empty), [])
  const byAccount = canonicalAccountMetadata([])
  assert.equal(canonicalAccountMetadata([]), byAccount)
  assert.equal(Object.getPrototypeOf(byAccount), null)
  assert.ok(Object.isFrozen(byAccount))
  // What is built from it is a new map.
  const merged = mergeMetadata(empty, canonicalMetadata([['a', '1']]))
  assert.notEqual(merged, empty)
  assert.deepEqual(Object.keys(empty), [])
})

test('boundedMetadata: empty metadata is within every bound, and is returned as given', () => {
  const empty = emptyKeyed<string>()
  assert.equal(boundedMetadata(empty), empty)
})

/** The by-account form as built before the in-order path: a map, its addresses sorted, each account's metadata stored. */
function accountModel(entries: Iterable<readonly [string, Metadata]>): Keyed<Metadata> {
  const byAddress = new Map(entries)
  return keyedFrom([...byAddress.keys()].sort().map((address) => [address, storedMetadata(byAddress.get(address) as Metadata)]))
}

test('canonicalAccountMetadata equals the map-and-sort model, ascending addresses or not', () => {
  const byAccount = fc.oneof(
    fc.array(fc.tuple(key, entries), { maxLength: 6 }),
    fc.uniqueArray(fc.tuple(key, entries), { selector: ([k]) => k, maxLength: 6 }).map((list) => list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  )
  fc.assert(
    fc.property(byAccount, (list) => {
      // Each account's metadata as a caller holds it: keys in any order, not yet canonical.
      const input = list.map(([address, metadata]) => [address, keyedFrom(metadata)] as const)
      const actual = canonicalAccountMetadata(input)
      const expected = accountModel(input)
      assert.equal(Object.getPrototypeOf(actual), null)
      assert.deepEqual(Object.keys(actual), Object.keys(expected))
      for (const address of Object.keys(expected)) assertSame(actual[address] as Metadata, expected[address] as Metadata)
      assert.equal(JSON.stringify(actual), JSON.stringify(expected))
    }),
    { numRuns: 1000 },
  )
})
