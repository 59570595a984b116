import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { cursorKeyOf, pageOfRows, parsePageRequest, sortedRows } from '../../src/api/paging.ts'
import type { Page, RowSelection } from '../../src/api/paging.ts'
import type { ShortRange, ShortReader, StoreReader } from '../../src/store/index.ts'

const cursorKey = cursorKeyOf('paging-test')
const prefix = Buffer.of(0x30)

/** The same rows as `sortedRows`, also answering short reads (naively), as the RocksDB store does. */
function withShortReads(rows: readonly [Buffer, Buffer][], shortReads: { count: number }): StoreReader & ShortReader {
  const base = sortedRows(rows)
  return {
    ...base,
    getManySync: () => [],
    rowsSync(range: ShortRange) {
      shortReads.count++
      const inRange = rows.filter(([key]) => Buffer.compare(key, range.gte) >= 0 && (range.lt === undefined || Buffer.compare(key, range.lt) < 0))
      if (range.reverse) inRange.reverse()
      return { rows: inRange.slice(0, range.limit), exhausted: inRange.length <= range.limit }
    },
  }
}

/** Every page of a list, following `next` from the first page, then `previous` back from the last. */
async function walk(store: StoreReader, selection: RowSelection<string>, descending: boolean, pageSize: number): Promise<string[][]> {
  const pages: Page<string>[] = []
  let request = parsePageRequest({ pageSize: String(pageSize) }, cursorKey)
  for (let guard = 0; guard < 100; guard++) {
    const page = await pageOfRows(store, { prefix, descending, request, ...selection })
    pages.push(page)
    if (page.next === undefined) break
    request = parsePageRequest({ cursor: page.next }, cursorKey)
  }
  const back: Page<string>[] = []
  let previous = pages[pages.length - 1]?.previous
  for (let guard = 0; previous !== undefined && guard < 100; guard++) {
    const page = await pageOfRows(store, { prefix, descending, request: parsePageRequest({ cursor: previous }, cursorKey), ...selection })
    back.push(page)
    previous = page.previous
  }
  return [...pages, ...back].map((page) => [String(page.hasMore), ...page.data])
}

test('pages read through short reads equal pages read through the async range alone, filtered or not, both ways (property)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.integer({ min: 0, max: 400 }), { maxLength: 60 }),
      fc.integer({ min: 1, max: 7 }),
      fc.boolean(),
      fc.integer({ min: 1, max: 5 }),
      fc.boolean(),
      async (ids, pageSize, descending, keepEvery, batched) => {
        const rows = ids
          .map((id): [Buffer, Buffer] => [Buffer.concat([prefix, Buffer.from(id.toString(16).padStart(4, '0'), 'hex')]), Buffer.from(String(id))])
          .sort(([left], [right]) => Buffer.compare(left, right))
        // Rows outside the prefix on both sides must never show up.
        const all: [Buffer, Buffer][] = [[Buffer.of(0x2f, 0xff), Buffer.from('below')], ...rows, [Buffer.of(0x31), Buffer.from('above')]]
        const select = (_key: Buffer, value: Buffer): string | undefined => (Number(value.toString()) % keepEvery === 0 ? value.toString() : undefined)
        const selection: RowSelection<string> = batched ? { selectMany: (batch) => batch.map(([key, value]) => select(key, value)) } : { select }
        const shortReads = { count: 0 }
        const expected = await walk(sortedRows(all), { select }, descending, pageSize)
        const actual = await walk(withShortReads(all, shortReads), selection, descending, pageSize)
        assert.deepEqual(actual, expected)
        assert.ok(shortReads.count > 0, 'the short path was taken')
        // Against a model sharing no code with pageOfRows: the forward pages are the selected rows in list order, cut every pageSize.
        const selected = (descending ? [...rows].reverse() : rows).map(([, value]) => value.toString()).filter((value) => Number(value) % keepEvery === 0)
        const pageCount = Math.max(1, Math.ceil(selected.length / pageSize))
        const model = Array.from({ length: pageCount }, (_, page) => [String(page < pageCount - 1), ...selected.slice(page * pageSize, (page + 1) * pageSize)])
        assert.deepEqual(actual.slice(0, pageCount), model)
        assert.deepEqual(expected.slice(0, pageCount), model)
      },
    ),
    { numRuns: 300 },
  )
})

test('a cursor tag is HMAC-SHA256 of the payload under the cursor key, truncated, for any key and payload (property)', async () => {
  const { createHmac } = await import('node:crypto')
  const { cursorTag } = await import('../../src/api/paging.ts')
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 150, size: 'max' }), fc.uint8Array({ maxLength: 300, size: 'max' }), (keyBytes, payloadBytes) => {
      const key = Buffer.from(keyBytes) as Parameters<typeof cursorTag>[1]
      const payload = Buffer.from(payloadBytes)
      assert.deepEqual(cursorTag(payload, key), createHmac('sha256', key).update(payload).digest().subarray(0, 16))
    }),
    { numRuns: 500 },
  )
  assert.deepEqual(cursorTag(Buffer.from('{}'), cursorKey), createHmac('sha256', cursorKey).update('{}').digest().subarray(0, 16))
})
