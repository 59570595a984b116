/**
 * What a boot's cache restore costs: a node filled with transfers between
 * `accounts` users (every key cached: the default budget holds them), closed,
 * then `restoreCache` timed over the closed store, `rounds` times.
 *
 *   node --import tsx bench/cache-restore.ts [--accounts 20000] [--orders 500] [--rounds 5]
 *
 * Runs on any build with `restoreCache(store, state, appliedIndex)`, so the
 * same file measures a build before and after a mirror layout change
 * (extract both with `git archive`, copy this file into the older tree).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { LedgerNode } from '../src/server/index.ts'
import { restoreCache } from '../src/server/cache-restore.ts'
import { decodeCacheState } from '../src/fsm/index.ts'
import type { AccountAddress, Asset, LedgerName } from '../src/domain/index.ts'
import type { ProposedOrder } from '../src/orders/index.ts'
import { MetaKey, Store, metaKey } from '../src/store/index.ts'

const { values } = parseArgs({ options: { accounts: { type: 'string' }, orders: { type: 'string' }, rounds: { type: 'string' } } })
const accounts = Number(values.accounts ?? 20_000)
const ordersPerProposal = Number(values.orders ?? 500)
const rounds = Number(values.rounds ?? 5)

const directory = mkdtempSync(path.join(os.tmpdir(), 'tally-restore-'))
const ledger = 'bench' as LedgerName
const user = (n: number) => `users:${String(n).padStart(6, '0')}` as AccountAddress
const order = (source: AccountAddress, destination: AccountAddress, amount: bigint): ProposedOrder => ({
  order: { type: 'CREATE_TRANSACTION', ledger, postings: [{ source, destination, amount, asset: 'USD/2' as Asset }], metadata: {}, accountMetadata: {}, force: false },
})
try {
  const node = await LedgerNode.open({ dataDirectory: directory, sync: false })
  const submit = (orders: ProposedOrder[]) => node.admission.submit(orders, { atomic: false, continueOnFailure: true })
  await submit([{ order: { type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: {}, features: {} } }])
  for (let from = 0; from < accounts; from += ordersPerProposal) {
    await submit(Array.from({ length: Math.min(ordersPerProposal, accounts - from) }, (_, i) => order('world' as AccountAddress, user(from + i), 1_000_000n)))
  }
  for (let from = 0; from < accounts; from += ordersPerProposal) {
    await submit(Array.from({ length: Math.min(ordersPerProposal, accounts - from) }, (_, i) => order(user(from + i), user((from + i + 1) % accounts), 1n)))
  }
  const applied = node.fsm.appliedIndex
  const cached = node.cache.size
  await node.close()
  const store = await Store.open(path.join(directory, 'store'))
  try {
    const state = decodeCacheState((await store.get(metaKey(MetaKey.cacheState))) as Buffer)
    let mirrorRows = 0
    for await (const row of store.range({ gte: Buffer.of(0xff) })) if (row[0][0] === 0xff) mirrorRows++
    const times: number[] = []
    for (let round = 0; round < rounds; round++) {
      const started = process.hrtime.bigint()
      const cache = await restoreCache(store, state, applied)
      times.push(Number(process.hrtime.bigint() - started) / 1e6)
      if (cache.size.gen0 + cache.size.gen1 !== cached.gen0 + cached.gen1) throw new Error('restored another cache')
    }
    const entries = cached.gen0 + cached.gen1
    console.log(`${entries} cached entries (gen0 ${cached.gen0}, gen1 ${cached.gen1}) at index ${applied}, ${mirrorRows} mirror rows`)
    console.log(`restore ms per round: ${times.map((t) => t.toFixed(1)).join(' / ')}; best ${(Math.min(...times) * 1000 / entries).toFixed(2)} µs per entry`)
  } finally {
    await store.close()
  }
} finally {
  rmSync(directory, { recursive: true, force: true })
}
