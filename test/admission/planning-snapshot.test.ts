import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LedgerNode } from '../../src/server/index.ts'
import type { Order } from '../../src/orders/index.ts'
import type { CanonicalKey, LedgerName } from '../../src/domain/index.ts'
import type { CacheLookup } from '../../src/cache/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { transfer } from '../support/ledger.ts'

const L = 'main' as LedgerName


/**
 * Planning reads values in rounds, awaiting the store between them; under a
 * small K the cache rotates during those awaits. A key the planner already
 * read from the cache must not be read again (and found gone, and fetched,
 * round after round): planning sees one snapshot of every key it read, so it
 * ends within the rounds its value dependencies need, whatever rotates.
 */
test('planning keeps what it read from the cache: keys rotating out between rounds do not exhaust the planning rounds', async () => {
  const tmp = tempDirectory()
  // Planning reads through the thread pool (the hook below counts them).
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: 100_000, planSyncReadKeysMax: 0 })
  try {
    const accounts = Array.from({ length: 12 }, (_, i) => `users:${i}`)
    const [created] = await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} } as Order }], { atomic: true, continueOnFailure: false })
    assert.equal(created?.status, 'applied')
    const funded = await node.admission.submit(accounts.map((account) => ({ order: transfer('world', account, 100n) })), { atomic: true, continueOnFailure: false })
    assert.ok(funded.every((result) => result.status === 'applied'))

    // From here until the proposal is appended, every store read "rotates"
    // one more of the keys the planner has seen out of the cache.
    const cache = node.cache
    const get = cache.get.bind(cache)
    const getMany = node.store.getMany.bind(node.store)
    const append = node.append.bind(node)
    const seen: CanonicalKey[] = []
    let storeReads = 0
    cache.get = (key: CanonicalKey): CacheLookup => {
      if (!seen.includes(key)) seen.push(key)
      return seen.indexOf(key) < storeReads ? { state: 'absent' } : get(key)
    }
    node.store.getMany = async (keys) => {
      storeReads++
      return getMany(keys)
    }
    node.append = (payload: Buffer): number => {
      cache.get = get
      node.store.getMany = getMany
      return append(payload)
    }
    const orders = accounts.map((account, i) => ({ order: transfer(account, accounts[(i + 1) % accounts.length] as string, 1n) }))
    orders.push({ order: transfer('world', 'users:new', 1n) }) // unknown to the cache: one store read at least
    // A revert at the end reads values to plan, so every transfer before it is run speculatively on the cache's values.
    orders.push({ order: { type: 'REVERT_TRANSACTION', ledger: L, id: 0n, force: false, atEffectiveDate: false, metadata: {} } as Order })
    const results = await node.admission.submit(orders, { atomic: true, continueOnFailure: false })
    assert.deepEqual(results.map((result) => result.status), orders.map(() => 'applied'))
    assert.ok(storeReads >= 1, 'the planner read the store')
    assert.ok(seen.length > 8, `the planner read ${seen.length} keys from the cache, more than its planning rounds`)
  } finally {
    await node.close()
    tmp.remove()
  }
})
