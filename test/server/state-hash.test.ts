import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync } from 'node:fs'
import path from 'node:path'
import { LedgerNode, genesisStateHash, nextStateHash } from '../../src/server/index.ts'
import type { Order } from '../../src/orders/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { MAIN, submitOne, transfer } from '../support/ledger.ts'
import { clock } from '../check/workload.ts'

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

test('state hash on a single node (stateHash: true): a restart continues the chain, and a replay of the same WAL into a fresh store reaches the same hash', async () => {
  const live = tempDirectory()
  const replay = tempDirectory()
  const options = { clusterId: 'hash-cluster', cacheRotationThreshold: 8, sync: false, stateHash: true, now: clock() }
  try {
    let node = await LedgerNode.open({ dataDirectory: live.directory, ...options })
    assert.equal(node.clusterStatus().mode, 'single')
    await submitOne(node, { type: 'CREATE_LEDGER', ledger: MAIN, bucket: '_default', metadata: {}, features: {} } as Order)
    for (let i = 0; i < 20; i++) await submitOne(node, transfer('world', `users:${i % 4}`, BigInt(i + 1)))
    const before = node.stateHash
    assert.equal(before?.index, node.storeIndex())
    await node.close()
    node = await LedgerNode.open({ dataDirectory: live.directory, ...options })
    assert.deepEqual(node.stateHash, before, 'read back at open')
    for (let i = 0; i < 20; i++) await submitOne(node, transfer(`users:${i % 4}`, 'users:9', 1n))
    const after = node.stateHash
    await node.close()
    cpSync(path.join(live.directory, 'wal'), path.join(replay.directory, 'wal'), { recursive: true })
    const replayed = await LedgerNode.open({ dataDirectory: replay.directory, ...options })
    try {
      assert.deepEqual(replayed.stateHash, after)
      assert.deepEqual(replayed.clusterStatus().stateHash, after)
    } finally {
      await replayed.close()
    }
    // Without the option, a single node keeps no hash (and writes no row).
    const plain = await LedgerNode.open({ dataDirectory: replay.directory, clusterId: 'hash-cluster' })
    assert.equal(plain.stateHash, undefined)
    await plain.close()
  } finally {
    live.remove()
    replay.remove()
  }
})
