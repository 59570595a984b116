import { test } from 'node:test'
import { readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import assert from 'node:assert/strict'
import { LedgerNode } from '../../src/server/index.ts'
import type { Order } from '../../src/orders/index.ts'
import type { OrderResult } from '../../src/fsm/index.ts'
import { decodeCacheState } from '../../src/fsm/index.ts'
import { MetaKey, metaKey } from '../../src/store/index.ts'
import { restoreCache } from '../../src/server/cache-restore.ts'
import { tempDirectory } from '../support/temp.ts'
import type { LedgerName, AccountAddress, Asset } from '../../src/domain/index.ts'

const L = 'main' as LedgerName
const usd = 'USD/2' as Asset
const a = (s: string) => s as AccountAddress

function send(source: string, destination: string, amount: bigint, extra: Partial<Order> = {}): Order {
  return { type: 'CREATE_TRANSACTION', ledger: L, postings: [{ source: a(source), destination: a(destination), amount, asset: usd }], metadata: {}, accountMetadata: {}, force: false, ...extra } as Order
}

async function one(node: LedgerNode, order: Order, idempotencyKey?: string): Promise<OrderResult> {
  const [result] = await node.admission.submit([{ order, ...(idempotencyKey ? { idempotencyKey, requestHash: 'h' } : {}) }], { atomic: false, continueOnFailure: false })
  return result as OrderResult
}

test('pipeline: create ledger, transfer, refuse overdraft, revert, survive restart', async () => {
  const tmp = tempDirectory()
  try {
    let node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: 4 })
    assert.equal((await one(node, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} })).status, 'applied')
    const created = await one(node, send('world', 'users:1', 100n))
    assert.equal(created.status, "applied", JSON.stringify(created, (_k, v) => (typeof v === "bigint" ? String(v) : v)))
    const refused = await one(node, send('users:1', 'users:2', 101n))
    assert.equal(refused.status, 'failed')
    assert.equal(refused.status === 'failed' && refused.error.code, 'INSUFFICIENT_FUND')
    for (let i = 0; i < 10; i++) assert.equal((await one(node, send('users:1', 'users:2', 1n))).status, 'applied')
    const reverted = await one(node, { type: 'REVERT_TRANSACTION', ledger: L, id: 1n, force: false, atEffectiveDate: false, metadata: {} })
    assert.equal(reverted.status, 'applied', JSON.stringify(reverted, (_k, v) => (typeof v === 'bigint' ? String(v) : v)))
    const again = await one(node, { type: 'REVERT_TRANSACTION', ledger: L, id: 1n, force: false, atEffectiveDate: false, metadata: {} })
    assert.equal(again.status === 'failed' && again.error.code, 'ALREADY_REVERT')
    await node.close()
    node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: 4 })
    const afterRestart = await one(node, send('users:2', 'users:3', 9n))
    assert.equal(afterRestart.status, 'applied')
    const tooMuch = await one(node, send('users:2', 'users:3', 1n))
    assert.equal(tooMuch.status === 'failed' && tooMuch.error.code, 'INSUFFICIENT_FUND')
    await node.close()
  } finally {
    tmp.remove()
  }
})

test('checkpoints: a synced store write lets the WAL recycle what the store holds; restart recovers', async () => {
  const tmp = tempDirectory()
  try {
    let node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: 8, checkpointEntries: 5, walRetainEntries: 3, walSegmentBytesMax: 2048, sync: false })
    assert.equal((await one(node, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} })).status, 'applied')
    for (let i = 0; i < 30; i++) assert.equal((await one(node, send('world', 'users:1', 1n))).status, 'applied')
    assert.ok(node.wal.tail > 0, 'the WAL dropped segments below the checkpoint')
    assert.ok(node.wal.tail <= node.fsm.appliedIndex - 3, 'and kept the retained history')
    const applied = node.fsm.appliedIndex
    await node.close()
    node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: 8, checkpointEntries: 5, walRetainEntries: 3, walSegmentBytesMax: 2048, sync: false })
    assert.equal(node.fsm.appliedIndex, applied)
    const refused = await one(node, send('users:1', 'users:2', 31n))
    assert.equal(refused.status === 'failed' && refused.error.code, 'INSUFFICIENT_FUND')
    assert.equal((await one(node, send('users:1', 'users:2', 30n))).status, 'applied')
    await node.close()
  } finally {
    tmp.remove()
  }
})

test('the WAL keeps at most about walRetainBytes below a checkpoint, whatever walRetainEntries says; restart recovers', async () => {
  const tmp = tempDirectory()
  const segmentBytes = 2048
  const settings = { cacheRotationThreshold: 8, checkpointEntries: 5, walRetainEntries: 1_000_000, walRetainBytes: 3 * segmentBytes, walSegmentBytesMax: segmentBytes, sync: false }
  const walBytes = (): number => readdirSync(path.join(tmp.directory, 'wal')).reduce((sum, file) => sum + statSync(path.join(tmp.directory, 'wal', file)).size, 0)
  try {
    let node = await LedgerNode.open({ dataDirectory: tmp.directory, ...settings })
    assert.equal((await one(node, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} })).status, 'applied')
    let most = 0
    for (let i = 0; i < 60; i++) {
      assert.equal((await one(node, send('world', 'users:1', 1n))).status, 'applied')
      most = Math.max(most, walBytes())
    }
    assert.ok(node.wal.tail > 0, 'the byte bound recycled segments the entry count would keep')
    // The bound, one segment that takes the sum over it, the open segment, and what waits for the next checkpoint.
    assert.ok(most <= settings.walRetainBytes + 3 * segmentBytes, `at most ${most} bytes of WAL`)
    const applied = node.fsm.appliedIndex
    await node.close()
    node = await LedgerNode.open({ dataDirectory: tmp.directory, ...settings })
    assert.equal(node.fsm.appliedIndex, applied)
    assert.equal((await one(node, send('users:1', 'users:2', 60n))).status, 'applied')
    await node.close()
    // Without the byte bound, the entry count keeps everything.
    const kept = tempDirectory()
    try {
      const unbounded = await LedgerNode.open({ dataDirectory: kept.directory, ...settings, walRetainBytes: 1 << 30 })
      assert.equal((await one(unbounded, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} })).status, 'applied')
      for (let i = 0; i < 60; i++) assert.equal((await one(unbounded, send('world', 'users:1', 1n))).status, 'applied')
      assert.equal(unbounded.wal.tail, 0)
      await unbounded.close()
    } finally {
      kept.remove()
    }
  } finally {
    tmp.remove()
  }
})

test('a changed cache rotation threshold is an ordered log entry: nothing reset, the cache carries on, memory and mirror agree', async () => {
  const tmp = tempDirectory()
  try {
    const messages: string[] = []
    const log = (message: string): void => void messages.push(message)
    let node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: 4, sync: false, log })
    await one(node, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} })
    for (let i = 0; i < 9; i++) assert.equal((await one(node, send('world', 'users:1', 1n))).status, 'applied')
    const epoch = node.cache.epoch
    const applied = node.fsm.appliedIndex
    await node.close()
    node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: 8, sync: false, log })
    assert.equal(node.cache.epoch, epoch, 'no reset: in-flight plans of other nodes stay valid')
    assert.equal(node.fsm.appliedIndex, applied + 1, 'the change took one index')
    assert.equal(node.cache.settings.rotationThreshold, 8)
    assert.equal(messages.filter((m) => m.startsWith('cache: settings change')).length, 1, messages.join('\n'))
    assert.equal((await one(node, send('users:1', 'users:2', 9n))).status, 'applied')
    const refused = await one(node, send('users:1', 'users:2', 1n))
    assert.equal(refused.status === 'failed' && refused.error.code, 'INSUFFICIENT_FUND')
    await node.close()
    // Without the flag, the stored setting stays: nothing is logged.
    node = await LedgerNode.open({ dataDirectory: tmp.directory, sync: false, log })
    assert.equal(node.cache.settings.rotationThreshold, 8)
    assert.equal(messages.filter((m) => m.startsWith('cache: settings change')).length, 1)
    const state = decodeCacheState((await node.store.get(metaKey(MetaKey.cacheState))) as Buffer)
    const restored = await restoreCache(node.store, state, node.fsm.appliedIndex)
    assert.equal(restored.contents(), node.cache.contents(), 'memory and mirror agree')
    await node.close()
  } finally {
    tmp.remove()
  }
})
