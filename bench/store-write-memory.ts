/**
 * Memory kept by `Store.write` (issue 12, target 4): the store alone, no ledger.
 *
 *   node --import tsx bench/store-write-memory.ts [--batches 400] [--rows 4000] [--value-bytes 170] [--path array|sliced]
 *
 * Writes --batches batches of --rows rows through `Store.write`, either as
 * one array batch (`--path array`: the path of every write of at most
 * `storeWriteSliceRows` rows) or copied in slices into a chained batch
 * (`--path sliced`: larger writes), and prints every 50 batches the
 * process's RSS beside the V8 heap and the number of resources the
 * abstract-level database holds open (iterators and chained batches it
 * would close at `close()`).
 *
 * Why: `bench/growth.ts` shows a server's RSS growing with the ledger while
 * its V8 heap stays flat. `@nxtedition/rocksdb`'s array `batch()` builds a
 * chained batch, writes it and never closes it, so the batch stays attached
 * to the database (abstract-level's resource set) with its native
 * `WriteBatch` — every row it wrote — for the life of the process. A chained
 * batch written with `write()` is closed and detached: `Store.write` now
 * writes every batch that way (test/store/write-batches.test.ts), so both
 * paths should keep RSS flat. A benchmark, not a test.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Store, type RowWrite } from '../src/store/index.ts'

const { values } = parseArgs({
  options: {
    batches: { type: 'string', default: '400' },
    rows: { type: 'string', default: '4000' },
    'value-bytes': { type: 'string', default: '170' },
    path: { type: 'string', default: 'array' },
  },
})
const batches = Number(values.batches)
const rowsPerBatch = Number(values.rows)
const valueBytes = Number(values['value-bytes'])
if (values.path !== 'array' && values.path !== 'sliced') throw new Error('--path array or sliced')
const sliced = values.path === 'sliced'

const directory = mkdtempSync(path.join(os.tmpdir(), 'tally-store-write-memory-'))
const store = await Store.open(path.join(directory, 'store'))
/** abstract-level's set of open resources, found by its symbol's description (read only). */
function openResources(): number {
  const db = (store as unknown as { db: Record<symbol, unknown> }).db
  const symbol = Object.getOwnPropertySymbols(db).find((candidate) => candidate.description === 'resources')
  const resources = symbol === undefined ? undefined : db[symbol]
  return resources instanceof Set ? resources.size : Number.NaN
}
const mib = (bytes: number): string => (bytes / 1048576).toFixed(0)
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

let next = 0
try {
  console.log(`| batches | MiB of rows written | RSS MiB | V8 heap total MiB | RSS − heap MiB | open resources |`)
  console.log(`| --- | --- | --- | --- | --- | --- |`)
  for (let batch = 1; batch <= batches; batch++) {
    const rows: RowWrite[] = []
    for (let row = 0; row < rowsPerBatch; row++) {
      const key = Buffer.alloc(24)
      key[0] = 0x10
      key.writeUInt32BE(next++, 20)
      rows.push({ key, value: randomBytes(valueBytes) })
    }
    await store.write(rows, sliced ? { sync: false, slices: { rows: 1024, turn } } : { sync: false })
    // A turn between writes, as the server's apply loop has: N-API finalizers of
    // collected native batches are deferred to the event loop, so a loop that
    // never turns holds them all and hides what the store itself keeps.
    await turn()
    if (batch % 50 === 0 || batch === batches) {
      const memory = process.memoryUsage()
      console.log(`| ${batch} | ${mib(batch * rowsPerBatch * (24 + valueBytes))} | ${mib(memory.rss)} | ${mib(memory.heapTotal)} | ${mib(memory.rss - memory.heapTotal)} | ${openResources()} |`)
    }
  }
} finally {
  await store.close()
  rmSync(directory, { recursive: true, force: true })
}
