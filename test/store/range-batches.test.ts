import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Store } from '../../src/store/index.ts'
import { tempDirectory } from '../support/temp.ts'

/** Rows of the zone 0x42: keys in order, values of varied sizes. */
function rows(count: number): { key: Buffer; value: Buffer }[] {
  return Array.from({ length: count }, (_, i) => {
    const key = Buffer.alloc(5)
    key[0] = 0x42
    key.writeUInt32BE(i, 1)
    return { key, value: Buffer.alloc(10 + (i % 97) * 13, i % 251) }
  })
}

test('rangeBatches: the rows of range() in order, in batches bounded in bytes, with and without reading ahead; stopping early closes cleanly', async () => {
  const temp = tempDirectory('tally-range-batches-')
  const store = await Store.open(temp.directory)
  try {
    const written = rows(5000)
    await store.write(written, { sync: false })
    const range = { gte: Buffer.of(0x42), lt: Buffer.of(0x43) }
    const batchBytes = 16 * 1024
    const expected: string[] = []
    for await (const [key, value] of store.range(range)) expected.push(`${key.toString('hex')}=${value.toString('hex')}`)
    assert.equal(expected.length, 5000)
    for (const readAhead of [true, false]) {
      const seen: string[] = []
      let batches = 0
      for await (const batch of store.rangeBatches({ ...range, batchBytes, readAhead })) {
        batches++
        let bytes = 0
        batch.forEach(([key, value], i) => {
          // The bound is passed by one row at most.
          if (i < batch.length - 1) bytes += key.length + value.length
          seen.push(`${key.toString('hex')}=${value.toString('hex')}`)
        })
        assert.ok(bytes < batchBytes, `a batch of ${bytes} bytes before its last row`)
      }
      assert.deepEqual(seen, expected, `readAhead ${readAhead}`)
      assert.ok(batches > 10, `${batches} batches`)
    }
    // A reader that stops after the first batch leaves a read in flight: the iterator still closes, and the store with it.
    for await (const batch of store.rangeBatches({ ...range, batchBytes })) {
      assert.ok(batch.length > 0)
      break
    }
  } finally {
    await store.close()
    temp.remove()
  }
})
