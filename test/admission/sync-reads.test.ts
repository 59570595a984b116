import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Order } from '../../src/orders/index.ts'
import { syncReadKeysMaxDefault } from '../../src/admission/index.ts'
import { LedgerNode } from '../../src/server/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { MAIN as L, transfer } from '../support/ledger.ts'

const once = { atomic: true, continueOnFailure: false }

/** Counts the store reads planning makes, by kind, from the first call on. */
function countReads(node: LedgerNode): { sync: number[]; pooled: number[] } {
  const reads = { sync: [] as number[], pooled: [] as number[] }
  const getMany = node.store.getMany.bind(node.store)
  const getManySync = node.store.getManySync.bind(node.store)
  node.store.getMany = (keys) => {
    reads.pooled.push(keys.length)
    return getMany(keys)
  }
  node.store.getManySync = (keys) => {
    reads.sync.push(keys.length)
    return getManySync(keys)
  }
  return reads
}

test('planning reads a few rows on the JavaScript thread and many through the pool, and plans the same either way', async () => {
  for (const syncReadKeysMax of [undefined, 0, 3]) {
    const tmp = tempDirectory()
    // A tiny cache: the accounts written before have left it, so planning reads them from the store.
    const node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: 2, gatherOrdersMax: 1, ...(syncReadKeysMax === undefined ? {} : { planSyncReadKeysMax: syncReadKeysMax }) })
    try {
      await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} } as Order }], once)
      const accounts = Array.from({ length: 6 }, (_, i) => `users:${i}`)
      for (const account of accounts) await node.admission.submit([{ order: transfer('world', account, 100n) }], once)
      for (let i = 0; i < 4; i++) await node.admission.submit([{ order: transfer('world', `users:filler${i}`, 1n) }], once)
      const reads = countReads(node)
      // One order: a few keys to read.
      const [small] = await node.admission.submit([{ order: transfer('users:0', 'users:1', 5n) }], once)
      assert.equal(small?.status, 'applied')
      const smallReads = { sync: reads.sync.length, pooled: reads.pooled.length }
      // Six orders over six stored accounts: more keys than a small read.
      const large = await node.admission.submit(
        accounts.map((account, i) => ({ order: transfer(account, accounts[(i + 1) % accounts.length] as string, 1n) })),
        once,
      )
      assert.deepEqual(large.map((result) => result.status), accounts.map(() => 'applied'))
      const bound = syncReadKeysMax ?? syncReadKeysMaxDefault
      const all = [...reads.sync, ...reads.pooled]
      assert.ok(all.length > 0, 'planning read the store')
      for (const keys of reads.sync) assert.ok(keys <= bound, `a read of ${keys} rows on the JavaScript thread, over ${bound}`)
      for (const keys of reads.pooled) assert.ok(keys > bound, `a read of ${keys} rows through the pool, within ${bound}`)
      if (bound === 0) assert.equal(reads.sync.length, 0)
      if (syncReadKeysMax === undefined) assert.ok(smallReads.sync > 0 && smallReads.pooled === 0, `the one-order proposal read ${smallReads.sync} times at once, ${smallReads.pooled} through the pool`)
      if (bound === 3) assert.ok(reads.pooled.length > 0, 'the six-order proposal read through the pool')
      // Whatever the route of the reads, the balances are exact: users:0 holds 100 − 5 − 1 + 1.
      const [all95] = await node.admission.submit([{ order: transfer('users:0', 'users:5', 95n) }], once)
      assert.equal(all95?.status, 'applied')
      const [more] = await node.admission.submit([{ order: transfer('users:0', 'users:5', 1n) }], once)
      assert.equal(more?.status, 'failed')
    } finally {
      await node.close()
      tmp.remove()
    }
  }
})
