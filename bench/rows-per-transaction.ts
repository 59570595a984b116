/**
 * What the store is asked to write per transaction under a bulk load: rows
 * (puts and deletes, after the batch's own coalescing) and bytes (keys and
 * values), by zone, counted at `Store.write`. The WAL's bytes per
 * transaction are read from its counters.
 *
 *   node --import tsx bench/rows-per-transaction.ts [--proposals 30] [--orders 100] [--accounts 1000] [--cache-rotation K]
 *
 * Transfers between `accounts` users (after one deposit bulk funds them), so
 * the rows are those of a bulk of transfers between existing accounts. A
 * small `--cache-rotation` (the cache's rotation threshold) lets the
 * accounts' rows leave the cache, so proposals carry them as seeds.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { LedgerNode } from '../src/server/index.ts'
import type { AccountAddress, Asset, LedgerName } from '../src/domain/index.ts'
import type { ProposedOrder } from '../src/orders/index.ts'
import { Store, Zone } from '../src/store/index.ts'
import type { RowWrite } from '../src/store/index.ts'

const { values } = parseArgs({ options: { proposals: { type: 'string' }, orders: { type: 'string' }, accounts: { type: 'string' }, 'cache-rotation': { type: 'string' } } })
const proposals = Number(values.proposals ?? 30)
const ordersPerProposal = Number(values.orders ?? 100)
const accounts = Number(values.accounts ?? 1000)

const zoneNames = new Map<number, string>([
  [Zone.meta, 'meta'],
  [Zone.logs, 'v2 logs'],
  [Zone.attributes, 'attributes'],
  [Zone.audit, 'audit'],
  [Zone.indexes, 'indexes'],
  [Zone.cacheMirror, 'cache mirror'],
])
const counted = new Map<string, { rows: number; bytes: number }>()
let counting = false

class CountingStore extends Store {
  static async openCounting(directory: string): Promise<Store> {
    const store = new CountingStore(await Store.openDatabase(directory), directory)
    await store.checkSchemaVersion()
    return store
  }

  override async write(rows: readonly RowWrite[], options: { sync: boolean }): Promise<void> {
    if (counting) {
      for (const row of rows) {
        const zone = zoneNames.get(row.key[0] as number) ?? 'other'
        const entry = counted.get(zone) ?? { rows: 0, bytes: 0 }
        entry.rows++
        entry.bytes += row.key.length + (row.value?.length ?? 0)
        counted.set(zone, entry)
      }
    }
    return super.write(rows, options)
  }
}

const directory = mkdtempSync(path.join(os.tmpdir(), 'tally-rows-'))
const ledger = 'bench' as LedgerName
const user = (n: number) => `users:${String(n).padStart(4, '0')}` as AccountAddress
const order = (source: AccountAddress, destination: AccountAddress, amount: bigint): ProposedOrder => ({
  order: { type: 'CREATE_TRANSACTION', ledger, postings: [{ source, destination, amount, asset: 'USD/2' as Asset }], metadata: {}, accountMetadata: {}, force: false },
})
try {
  const rotation = values['cache-rotation'] === undefined ? {} : { cacheRotationThreshold: Number(values['cache-rotation']) }
  const node = await LedgerNode.open({ dataDirectory: directory, sync: false, openStore: CountingStore.openCounting, ...rotation })
  const submit = (orders: ProposedOrder[]) => node.admission.submit(orders, { atomic: false, continueOnFailure: true })
  await submit([{ order: { type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: {}, features: {} } }])
  for (let from = 0; from < accounts; from += ordersPerProposal) {
    await submit(Array.from({ length: Math.min(ordersPerProposal, accounts - from) }, (_, i) => order('world' as AccountAddress, user(from + i), 1_000_000n)))
  }
  const walBytesBefore = node.wal.counters.bytesWritten
  counting = true
  let next = 0
  for (let p = 0; p < proposals; p++) {
    await submit(
      Array.from({ length: ordersPerProposal }, () => {
        const i = next++
        return order(user((i * 7) % accounts), user((i * 13 + 1) % accounts), BigInt(1 + (i % 97)))
      }),
    )
  }
  counting = false
  await node.wal.flush()
  const walBytes = node.wal.counters.bytesWritten - walBytesBefore
  await node.close()
  const transactions = proposals * ordersPerProposal
  const lines = ['| zone | rows per transaction | bytes per transaction |', '| --- | --- | --- |']
  let rows = 0
  let bytes = 0
  for (const [zone, entry] of [...counted].sort((a, b) => b[1].bytes - a[1].bytes)) {
    lines.push(`| ${zone} | ${(entry.rows / transactions).toFixed(2)} | ${(entry.bytes / transactions).toFixed(0)} |`)
    rows += entry.rows
    bytes += entry.bytes
  }
  lines.push(`| **store, all zones** | **${(rows / transactions).toFixed(2)}** | **${(bytes / transactions).toFixed(0)}** |`)
  lines.push(`| WAL (proposal records) | — | ${(walBytes / transactions).toFixed(0)} |`)
  console.log(`${transactions} transfers in bulks of ${ordersPerProposal} between ${accounts} accounts\n`)
  console.log(lines.join('\n'))
} finally {
  rmSync(directory, { recursive: true, force: true })
}
