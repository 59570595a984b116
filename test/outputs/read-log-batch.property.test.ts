import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { readLogBatch } from '../../src/outputs/outputs.ts'
import type { LogBatchBounds } from '../../src/outputs/outputs.ts'
import { Store } from '../../src/store/index.ts'
import type { StoreReader } from '../../src/store/index.ts'
import { encodeLogRow, logRowKey } from '../../src/store/layout.ts'
import { decodeLogRow } from '../../src/store/layout.ts'
import { stringifyJson } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'

/** A log as the FSM stores it, its data padded to `pad` characters so rows differ in size. */
function logOf(id: number, pad: number): unknown {
  return { id, type: 'NEW_TRANSACTION', data: { transaction: { id, metadata: { note: 'x'.repeat(pad) } } }, date: '2026-12-07T10:00:00Z', hash: 'h'.repeat(8) }
}

/** The store's own reader, or one that serves `range` only (the pipeline falls back to grouping its rows). */
function readerOf(store: Store, batched: boolean): StoreReader {
  return batched ? store : { get: (key) => store.get(key), getMany: (keys) => store.getMany(keys), range: (options) => store.range(options) }
}

test('readLogBatch: a pipeline walking its cursor gets every log once, in order, each batch within its bounds and cut only by them, wherever the store batches end', async () => {
  const temp = tempDirectory('tally-read-log-batch-')
  const store = await Store.open(temp.directory)
  let run = 0
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat({ max: 400 }), { minLength: 0, maxLength: 120 }),
        fc.record({ rows: fc.integer({ min: 1, max: 40 }), bytes: fc.integer({ min: 1, max: 4000 }), scanBytes: fc.integer({ min: 1, max: 3000 }) }),
        fc.boolean(),
        async (pads, bounds: LogBatchBounds, batched) => {
          // A ledger of its own per run, between two neighbours whose logs must never show up.
          const ledger = `l${run++}`
          const neighbours = [`${ledger.slice(0, -1)}`, `${ledger}0`]
          const rows = pads.map((pad, i) => ({ key: logRowKey(ledger, BigInt(i + 1)), value: encodeLogRow(logOf(i + 1, pad)) }))
          const noise = neighbours.flatMap((name) => [1n, 2n].map((id) => ({ key: logRowKey(name, id), value: encodeLogRow(logOf(Number(id), 3)) })))
          await store.write([...rows, ...noise], { sync: false })
          const reader = readerOf(store, batched)
          const delivered: string[] = []
          let after: bigint | undefined
          for (;;) {
            const batch = await readLogBatch(reader, ledger, after, bounds)
            if (batch === undefined) break
            const first = after === undefined ? 0 : Number(after)
            assert.deepEqual(batch.ids, batch.ids.map((_, i) => BigInt(first + i + 1)), 'ids follow the cursor, none dropped or repeated')
            assert.equal(batch.last, batch.ids[batch.ids.length - 1])
            assert.ok(batch.logs.length >= 1 && batch.logs.length <= bounds.rows, `${batch.logs.length} logs for a bound of ${bounds.rows}`)
            const sizes = batch.ids.map((id) => (rows[Number(id) - 1] as { value: Buffer }).value.length)
            const bytes = sizes.reduce((sum, size) => sum + size, 0)
            assert.ok(batch.logs.length === 1 || bytes <= bounds.bytes, `${bytes} bytes for a bound of ${bounds.bytes}`)
            // Cut by a bound only: the next log (if any) would pass one of them.
            const next = rows[first + batch.logs.length]
            if (next !== undefined) assert.ok(batch.logs.length === bounds.rows || bytes + next.value.length > bounds.bytes, 'a batch cut short of its bounds')
            delivered.push(...batch.logs)
            after = batch.last
          }
          assert.deepEqual(
            delivered,
            rows.map((row) => stringifyJson(decodeLogRow(row.value))),
          )
          await store.write(
            [...rows, ...noise].map((row) => ({ key: row.key, value: null })),
            { sync: false },
          )
        },
      ),
      { numRuns: 60 },
    )
  } finally {
    await store.close()
    temp.remove()
  }
})
