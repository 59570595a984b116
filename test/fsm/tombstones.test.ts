import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AttributeCache } from '../../src/cache/index.ts'
import { GatedScope, LedgerStateMachine, WriteBatch, decodeCacheState } from '../../src/fsm/index.ts'
import type { CoverageEntry, Proposal } from '../../src/fsm/index.ts'
import type { Order, OrderOutput } from '../../src/orders/index.ts'
import type { AccountAddress, Asset, AttributeValue, CanonicalKey, LedgerName } from '../../src/domain/index.ts'
import { volumesKey } from '../../src/domain/index.ts'
import { GENESIS } from '../../src/audit/index.ts'
import { MIRROR_ZONE } from '../../src/cache/index.ts'
import { MetaKey, Store, attributeRowKey, metaKey, prefixEnd } from '../../src/store/index.ts'
import { restoreCache } from '../../src/server/cache-restore.ts'
import { tempDirectory } from '../support/temp.ts'

const KEY: CanonicalKey = volumesKey('main' as LedgerName, 'users:1' as AccountAddress, 'USD' as Asset)
const VALUE: AttributeValue = { kind: 'v', value: { input: 7n, output: 0n } }

/**
 * Test orders (no order deletes a whole attribute yet): the FSM runs them
 * through its real gated scope, write set, flush, cache and audit.
 */
type TestOrder = { type: 'TEST'; action: 'put' | 'delete' | 'read' | 'nothing' }
const order = (action: TestOrder['action']): Order => ({ type: 'TEST', action }) as unknown as Order

function testExecutor(observed: (AttributeValue | undefined)[]) {
  return (scope: GatedScope, raw: Order): OrderOutput => {
    const { action } = raw as unknown as TestOrder
    if (action === 'put') scope.write(KEY, VALUE)
    if (action === 'delete') assert.equal(scope.delete(KEY), true, 'the key existed')
    if (action === 'read') observed.push(scope.read(KEY))
    return { type: 'LEDGER' }
  }
}

function proposal(index: number, action: TestOrder['action'], coverage: CoverageEntry[], storeIndexAtLoad = index - 1): Proposal {
  return {
    id: `p${index}`,
    date: '2026-01-01T00:00:00.000Z',
    predictedIndex: index,
    cacheEpoch: 0,
    storeIndexAtLoad,
    coverage,
    orders: [{ order: order(action), coverageIndexes: coverage.map((_, i) => i) }],
    atomic: false,
    continueOnFailure: false,
  }
}

async function mirrorRows(store: Store): Promise<Map<string, Buffer>> {
  const rows = new Map<string, Buffer>()
  for await (const [key, value] of store.range({ gte: Buffer.of(MIRROR_ZONE), lt: prefixEnd(Buffer.of(MIRROR_ZONE)) })) rows.set(key.toString('hex'), value)
  return rows
}

/** A node's restart, reduced to the cache: state row + streamed mirror. */
async function restart(store: Store, appliedIndex: number): Promise<AttributeCache> {
  const state = decodeCacheState((await store.get(metaKey(MetaKey.cacheState))) as Buffer)
  return restoreCache(store, state, appliedIndex)
}

test('delete → rotation → rotation → restart → read: the delete holds in memory, mirror and store at every step', async () => {
  const tmp = tempDirectory()
  try {
    const store = await Store.open(tmp.directory)
    const observed: (AttributeValue | undefined)[] = []
    let cache = new AttributeCache(2)
    const fsmAt = (applied: number, head = GENESIS) =>
      new LedgerStateMachine({ cache, clusterId: 'c', appliedIndex: applied, auditHead: head, execute: testExecutor(observed) })
    let fsm = fsmAt(0)
    const apply = async (p: Proposal): Promise<void> => {
      const batch = new WriteBatch()
      const result = fsm.apply(p.predictedIndex, p, batch)
      assert.equal(result.outcome, 'applied', JSON.stringify(result))
      await store.write(batch.rows(), { sync: true })
    }
    const crashAndRestart = async (): Promise<void> => {
      const before = cache.contents()
      cache = await restart(store, fsm.appliedIndex)
      fsm = fsmAt(fsm.appliedIndex, fsm.auditHead)
      assert.equal(cache.contents(), before, 'memory == what the mirror restores after restart')
    }

    await apply(proposal(1, 'put', []))
    await apply(proposal(2, 'nothing', []))
    await apply(proposal(3, 'delete', [{ key: KEY }])) // rotation at 3: the value is Gen1's; the tombstone Gen0's
    assert.equal(await store.get(attributeRowKey(KEY)), undefined, 'the store row is deleted with the tombstone')
    // The contract's regression: saved, rotated into Gen1, deleted, crash, restart.
    await crashAndRestart()
    assert.equal(cache.get(KEY).state, 'deleted')

    await apply(proposal(4, 'nothing', []))
    await apply(proposal(5, 'read', [{ key: KEY }])) // rotation at 5: the tombstone is Gen1's now
    assert.equal(observed.pop(), undefined)
    await crashAndRestart() // used to fail: "tombstone outside Gen0"
    assert.equal(cache.get(KEY).state, 'deleted')
    // A seed read before the delete would revive the key: it is past the horizon, so stale.
    const old = fsm.apply(6, proposal(6, 'read', [{ key: KEY, seed: Buffer.from('{"input":7,"output":0}') }], 1), new WriteBatch())
    assert.equal(old.outcome, 'stale')

    // That stale apply was never stored: restart from index 5 again.
    const head = fsm.auditHead
    cache = await restart(store, 5)
    fsm = fsmAt(5, head)
    await apply(proposal(6, 'nothing', []))
    await apply(proposal(7, 'nothing', [])) // rotation at 7: the tombstone leaves
    await crashAndRestart()
    assert.equal(cache.get(KEY).state, 'absent')
    assert.equal((await mirrorRows(store)).size, 0)
    // A read now seeds from the store, which holds no row: the key stays deleted.
    const seed = await store.get(attributeRowKey(KEY))
    assert.equal(seed, undefined)
    await apply(proposal(8, 'read', [{ key: KEY, seed: null }]))
    assert.equal(observed.pop(), undefined)
    await store.close()
  } finally {
    tmp.remove()
  }
})
