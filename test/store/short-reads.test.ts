import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import { Store, shortRangeBatchBytesMax } from '../../src/store/index.ts'
import { PowerLossDisk } from '../support/power-loss.ts'
import type { ShortRange } from '../../src/store/index.ts'

async function withStore(body: (store: Store) => Promise<void>, open: (directory: string) => Promise<Store> = (directory) => Store.open(directory)): Promise<void> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'tally-short-reads-'))
  const store = await open(directory)
  try {
    await body(store)
  } finally {
    await store.close()
    await rm(directory, { recursive: true, force: true })
  }
}

/** The naive reference: every row, filtered and sorted in memory. */
function expectedRows(rows: ReadonlyMap<string, Buffer>, range: ShortRange): { rows: [Buffer, Buffer][]; exhausted: boolean } {
  const inRange = [...rows]
    .map(([hex, value]): [Buffer, Buffer] => [Buffer.from(hex, 'hex'), value])
    .filter(([key]) => Buffer.compare(key, range.gte) >= 0 && (range.lt === undefined || Buffer.compare(key, range.lt) < 0))
    .sort(([left], [right]) => Buffer.compare(left, right))
  if (range.reverse) inRange.reverse()
  return { rows: inRange.slice(0, range.limit), exhausted: inRange.length <= range.limit }
}

// Keys under one zone byte (0x20) so the store's own meta rows stay outside every range.
const key = fc.uint8Array({ minLength: 1, maxLength: 3 }).map((bytes) => Buffer.concat([Buffer.of(0x20), Buffer.from(bytes)]))
const bound = fc.option(key, { nil: undefined })

for (const layer of ['RocksDB', 'the power-loss test layer (unsynced writes in an overlay)'] as const) {
test(`short reads answer what a naive filter and sort of the rows does, in both directions, and see every write once it resolved, on ${layer} (property)`, async () => {
  const open = layer === 'RocksDB' ? undefined : (directory: string) => new PowerLossDisk({ random: () => 0.5 }).openStore(directory)
  await withStore(async (store) => {
    const rows = new Map<string, Buffer>()
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(key, fc.option(fc.uint8Array({ maxLength: 8 }), { nil: null })), { maxLength: 12 }),
        fc.array(fc.record({ gte: key, lt: bound, reverse: fc.boolean(), limit: fc.integer({ min: 1, max: 6 }), keysOnly: fc.boolean() }), { minLength: 1, maxLength: 6 }),
        async (writes, ranges) => {
          // A write between two reads: the second must see it (no iterator outlives a write).
          await store.write(
            writes.map(([row, value]) => ({ key: row, value: value === null ? null : Buffer.from(value) })),
            // On the power-loss layer an unsynced write stays in its overlay, a synced one carries it down.
            { sync: writes.length % 3 === 0 },
          )
          for (const [row, value] of writes) {
            if (value === null) rows.delete(row.toString('hex'))
            else rows.set(row.toString('hex'), Buffer.from(value))
          }
          for (const range of ranges) {
            const shortRange: ShortRange = { ...range, lt: range.reverse && range.lt === undefined ? Buffer.of(0x21) : range.lt }
            const read = store.rowsSync(shortRange)
            const expected = expectedRows(rows, shortRange)
            // Keys alone: the same keys; a value is left out (empty) or, where a layer gives it anyway, the row's own.
            const valueOf = (seen: Buffer, row: Buffer) => (range.keysOnly && (seen.length === 0 || seen.equals(row)) ? '' : seen.toString('hex'))
            assert.deepEqual(
              read.rows.map(([k, v], at) => [k.toString('hex'), valueOf(v, expected.rows[at]?.[1] ?? Buffer.alloc(0))]),
              expected.rows.map(([k, v]) => [k.toString('hex'), range.keysOnly ? '' : v.toString('hex')]),
            )
            // `exhausted` may only be false when the page is full (then more rows may or may not follow).
            if (read.rows.length < shortRange.limit) assert.equal(read.exhausted, true)
            if (!expected.exhausted) assert.equal(read.exhausted, false)
          }
        },
      ),
      { numRuns: 150 },
    )
  }, open)
})
}

test('a short read spans RocksDB batches cut at the byte bound, and refuses an unbounded descending read or an oversized limit', async () => {
  await withStore(async (store) => {
    // Three rows of half the batch bound each: every batch holds two at most.
    const large = Buffer.alloc(shortRangeBatchBytesMax / 2 + 1, 7)
    const keys = [1, 2, 3].map((n) => Buffer.of(0x20, n))
    await store.write(keys.map((row) => ({ key: row, value: large })), { sync: false })
    const read = store.rowsSync({ gte: Buffer.of(0x20), lt: Buffer.of(0x21), reverse: false, limit: 3 })
    assert.deepEqual(read.rows.map(([row]) => row), keys)
    assert.equal(read.exhausted, true)
    const down = store.rowsSync({ gte: Buffer.of(0x20), lt: Buffer.of(0x20, 3), reverse: true, limit: 5 })
    assert.deepEqual(down.rows.map(([row]) => row), [keys[1], keys[0]], 'lt itself is excluded')
    assert.throws(() => store.rowsSync({ gte: Buffer.of(0x20), lt: undefined, reverse: true, limit: 1 }), /upper bound/)
    assert.throws(() => store.rowsSync({ gte: Buffer.of(0x20), lt: undefined, reverse: false, limit: 1001 }), /short read of 1001 rows/)
  })
})
