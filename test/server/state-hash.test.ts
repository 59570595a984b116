import { test } from 'node:test'
import assert from 'node:assert/strict'
import { genesisStateHash, nextStateHash } from '../../src/server/index.ts'

const row = (key: string, value: string | null) => ({ key: Buffer.from(key), value: value === null ? null : Buffer.from(value) })

test('state hash: one canonical form — row order does not matter, every byte, deletion and index does', () => {
  const rows = [row('a', '1'), row('b', '2'), row('c', null)]
  const base = nextStateHash(genesisStateHash, 1, rows)
  assert.match(base.hash, /^[0-9a-f]{64}$/)
  assert.deepEqual(nextStateHash(genesisStateHash, 1, [...rows].reverse()), base)
  const variants = [
    [row('a', '1'), row('b', '3'), row('c', null)],
    [row('a', '1'), row('b', '2'), row('c', '')],
    [row('a', '1'), row('b', '2')],
    [row('a', '1'), row('b2', ''), row('c', null)],
  ]
  for (const variant of variants) assert.notEqual(nextStateHash(genesisStateHash, 1, variant).hash, base.hash)
  // Key/value boundaries are framed: moving a byte from the key to the value changes the hash.
  assert.notEqual(nextStateHash(genesisStateHash, 1, [row('ab', 'c')]).hash, nextStateHash(genesisStateHash, 1, [row('a', 'bc')]).hash)
  // Rolling: the same rows at the next index after another history differ.
  assert.notEqual(nextStateHash(base, 2, rows).hash, nextStateHash(nextStateHash(genesisStateHash, 1, []), 2, rows).hash)
  assert.throws(() => nextStateHash(base, 3, rows), /state hash of index 3 after 1/)
})
