import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Store, groupedRows, rangeBatchesOf, rangeValueBatchesOf } from '../../src/store/index.ts'
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

test('rangeBatches with firstBatchRows: a small first batch, each next one twice the last up to 1 000 rows; groupedRows batches the same rows alike', async () => {
  const temp = tempDirectory('tally-range-batches-first-')
  const store = await Store.open(temp.directory)
  try {
    const written = rows(5000)
    await store.write(written, { sync: false })
    const range = { gte: Buffer.of(0x42), lt: Buffer.of(0x43) }
    // Bytes never bind here: the row counts alone shape the batches.
    const options = { ...range, batchBytes: 64 * 1024 * 1024, firstBatchRows: 3, readAhead: false }
    const read = async (batches: AsyncIterable<readonly [Buffer, Buffer][]>) => {
      const sizes: number[] = []
      const seen: string[] = []
      for await (const batch of batches) {
        sizes.push(batch.length)
        for (const [key] of batch) seen.push(key.toString('hex'))
      }
      return { sizes, seen }
    }
    const native = await read(store.rangeBatches(options))
    assert.deepEqual(native.sizes.slice(0, 10), [3, 6, 12, 24, 48, 96, 192, 384, 768, 1000])
    assert.equal(native.sizes.reduce((sum, size) => sum + size, 0), 5000)
    assert.deepEqual(native.seen, written.map(({ key }) => key.toString('hex')))
    // Reading ahead after the first batch (read on the JavaScript thread) changes nothing of what is read.
    assert.deepEqual(await read(store.rangeBatches({ ...options, readAhead: true })), native)
    // A range that fits in the first batch: one batch, the iterator closed.
    assert.deepEqual((await read(store.rangeBatches({ ...options, lt: written[2]?.key }))).sizes, [2])
    // Keys alone: the same keys in the same batches, every value left out (empty), on the JavaScript thread's first batch and the pool's after it.
    const keysOnly = store.rangeBatches({ ...options, keysOnly: true })
    const values: number[] = []
    const keys = await read({
      async *[Symbol.asyncIterator]() {
        for await (const batch of keysOnly) {
          for (const [, value] of batch) values.push(value.length)
          yield batch
        }
      },
    })
    assert.deepEqual(keys, native)
    assert.ok(values.every((length) => length === 0), 'no value read')
    // A reader without rangeBatches (a test double, the simulator): its range rows grouped the same way.
    const plain = { get: store.get.bind(store), getMany: store.getMany.bind(store), range: store.range.bind(store) }
    assert.deepEqual(await read(rangeBatchesOf(plain, options)), native)
    // Grouped by bytes: one row more than the bound at most.
    const bytesBound = 4096
    for await (const batch of groupedRows(store.range(range), { ...range, batchBytes: bytesBound })) {
      const before = batch.slice(0, -1).reduce((sum, [key, value]) => sum + key.length + value.length, 0)
      assert.ok(before < bytesBound, `a grouped batch of ${before} bytes before its last row`)
    }
  } finally {
    await store.close()
    temp.remove()
  }
})

test('rangeValueBatches: the values of range() in order, in batches bounded in bytes and rows, no batch after the last; an empty range yields nothing; the fallback over rangeBatches agrees; stopping early closes cleanly', async () => {
  const temp = tempDirectory('tally-range-value-batches-')
  const store = await Store.open(temp.directory)
  try {
    const written = rows(5000)
    await store.write(written, { sync: false })
    // A row on each side of the range: neither may be read.
    await store.write([{ key: Buffer.of(0x41, 0xff), value: Buffer.of(1) }, { key: Buffer.of(0x43), value: Buffer.of(2) }], { sync: false })
    const range = { gte: Buffer.of(0x42), lt: Buffer.of(0x43) }
    const expected = written.map(({ value }) => value.toString('hex'))
    const read = async (batches: AsyncIterable<readonly Buffer[]>, batchBytes: number, rowsMax: number) => {
      const seen: string[] = []
      const sizes: number[] = []
      for await (const batch of batches) {
        sizes.push(batch.length)
        let bytes = 0
        batch.forEach((value, i) => {
          if (i < batch.length - 1) bytes += value.length
          seen.push(value.toString('hex'))
        })
        assert.ok(bytes < batchBytes, `a batch of ${bytes} bytes before its last row`)
        assert.ok(batch.length <= rowsMax && batch.length > 0, `a batch of ${batch.length} rows`)
      }
      return { seen, sizes }
    }
    const byBytes = await read(store.rangeValueBatches({ ...range, batchBytes: 16 * 1024, rowsMax: 100_000 }), 16 * 1024, 100_000)
    assert.deepEqual(byBytes.seen, expected)
    assert.ok(byBytes.sizes.length > 10, `${byBytes.sizes.length} batches`)
    const byRows = await read(store.rangeValueBatches({ ...range, batchBytes: 64 * 1024 * 1024, rowsMax: 700 }), 64 * 1024 * 1024, 700)
    assert.deepEqual(byRows.seen, expected)
    assert.deepEqual(byRows.sizes, [...Array.from({ length: 7 }, () => 700), 100])
    // Exactly a whole number of batches: the range ends with a full batch, and no empty one follows.
    assert.deepEqual((await read(store.rangeValueBatches({ ...range, batchBytes: 64 * 1024 * 1024, rowsMax: 1000 }), 64 * 1024 * 1024, 1000)).sizes, [1000, 1000, 1000, 1000, 1000])
    assert.deepEqual((await read(store.rangeValueBatches({ gte: Buffer.of(0x50), lt: Buffer.of(0x51), batchBytes: 1024 }), 1024, 1000)).sizes, [])
    // A reader with only rangeBatches (a test double): the same values.
    const fallback = await read(rangeValueBatchesOf({ rangeBatches: (options) => store.rangeBatches(options) }, { ...range, batchBytes: 16 * 1024 }), 16 * 1024, 1000)
    assert.deepEqual(fallback.seen, expected)
    for await (const batch of store.rangeValueBatches({ ...range, batchBytes: 1024 })) {
      assert.ok(batch.length > 0)
      break
    }
  } finally {
    await store.close()
    temp.remove()
  }
})
