// What the store tells the event-loop stall watch (src/server/loop-stalls.ts):
// the time its writes held the thread, and RocksDB's cumulative write stall.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Store, cumulativeStallSeconds } from '../../src/store/index.ts'
import { tempDirectory } from '../support/temp.ts'

test("cumulativeStallSeconds reads RocksDB's H:M:S figure from rocksdb.dbstats", () => {
  const stats = '\n** DB Stats **\nUptime(secs): 9.1 total, 0.0 interval\nCumulative stall: 01:02:03.250 H:M:S, 3.1 percent\nInterval stall: 00:00:0.000 H:M:S, 0.0 percent\n'
  assert.equal(cumulativeStallSeconds(stats), 3600 + 2 * 60 + 3.25)
  assert.equal(cumulativeStallSeconds('Cumulative stall: 00:00:0.000 H:M:S, 0.0 percent'), 0)
  assert.equal(cumulativeStallSeconds('no such line'), undefined)
})

test('a store counts the time its writes took, whole or in slices, and reads its write-stall time', async () => {
  const tmp = tempDirectory()
  const store = await Store.open(tmp.directory)
  try {
    assert.equal(store.writeStallSeconds(), 0)
    const before = { ...store.writeTime }
    const rows = Array.from({ length: 3000 }, (_, i) => ({ key: Buffer.from(`k-${String(i).padStart(5, '0')}`), value: Buffer.alloc(100, i) }))
    await store.write(rows, { sync: false })
    let turns = 0
    await store.write(rows, { sync: false, slices: { rows: 1000, turn: async () => void turns++ } })
    assert.equal(turns, 2)
    assert.equal(store.writeTime.writes, before.writes + 2)
    assert.ok(store.writeTime.milliseconds > before.milliseconds)
  } finally {
    await store.close()
    tmp.remove()
  }
  assert.equal(store.writeStallSeconds(), undefined)
})
