// Store.write leaves no batch behind: the binding's array `batch()` wrote a
// chained batch it never closed, which stayed attached to the database with
// a native copy of its rows for the life of the process (RSS grew with every
// write: bench/store-write-memory.ts, bench/growth.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Store, writesInOneStretch } from '../../src/store/index.ts'
import type { RowWrite } from '../../src/store/index.ts'
import { tempDirectory } from '../support/temp.ts'

/** abstract-level's set of open resources (iterators, chained batches), found by its symbol's description. */
function openResources(store: Store): number {
  const db = (store as unknown as { db: object }).db as Record<symbol, unknown>
  const symbol = Object.getOwnPropertySymbols(db).find((candidate) => candidate.description === 'resources')
  const resources = symbol === undefined ? undefined : db[symbol]
  assert.ok(resources instanceof Set, 'abstract-level keeps its open resources in a set')
  return resources.size
}

function rows(batch: number, count: number): RowWrite[] {
  return Array.from({ length: count }, (_, i) => ({ key: Buffer.from(`k-${batch}-${String(i).padStart(5, '0')}`), value: i % 7 === 0 ? null : Buffer.alloc(64, batch) }))
}

test('writes, whole or in slices, leave no batch attached to the database, and write what they were given', async () => {
  const tmp = tempDirectory()
  const store = await Store.open(tmp.directory)
  try {
    const before = openResources(store)
    let turns = 0
    for (let batch = 0; batch < 40; batch++) {
      const slices = batch % 2 === 0 ? undefined : { rows: 16, turn: async () => void turns++ }
      await store.write(rows(batch, 50), { sync: false, ...(slices === undefined ? {} : { slices }) })
    }
    assert.ok(turns > 0, 'the sliced path ran')
    assert.equal(openResources(store), before)
    const [kept, deleted] = await store.getMany([Buffer.from('k-39-00001'), Buffer.from('k-39-00007')])
    assert.deepEqual(kept, Buffer.alloc(64, 39))
    assert.equal(deleted, undefined)
  } finally {
    await store.close()
    tmp.remove()
  }
})

test('writesInOneStretch says exactly when Store.write awaits no turn before its RocksDB write (what the node answers first on)', async () => {
  const tmp = tempDirectory()
  const store = await Store.open(tmp.directory)
  try {
    let batch = 1000
    for (const sliceRows of [1, 2, 7, 16]) {
      for (let count = 1; count <= 2 * sliceRows + 2; count++) {
        let turns = 0
        const slices = { rows: sliceRows, turn: async () => void turns++ }
        const written = rows(batch, count)
        const writing = store.write(written, { sync: false, slices })
        // In one stretch, the rows are readable as soon as `write` returns its promise (row 1: row 0 is a delete).
        const seen = count >= 2 && store.getManySync([written[1]!.key])[0] !== undefined
        await writing
        const oneStretch = writesInOneStretch(count, slices)
        assert.equal(turns === 0, oneStretch, `${count} rows in slices of ${sliceRows}: ${turns} turns`)
        if (count >= 2) assert.equal(seen, oneStretch, `${count} rows in slices of ${sliceRows}: readable when write returned`)
        batch++
      }
    }
    assert.equal(writesInOneStretch(1_000_000, undefined), true, 'without slices, one stretch')
  } finally {
    await store.close()
    tmp.remove()
  }
})
