import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, rmSync } from 'node:fs'
import path from 'node:path'
import { LedgerNode } from '../../src/server/index.ts'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'
import { TallyError, decodeRowValue, volumesKey } from '../../src/domain/index.ts'
import { MetaKey, Store, attributeRowKey, metaKey } from '../../src/store/index.ts'
import { runCheck } from '../../src/check/index.ts'
import type { CheckResult } from '../../src/check/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { clock } from '../check/workload.ts'
import { submitOne, transfer } from '../support/ledger.ts'

const L = 'main' as LedgerName
const usd = 'USD/2' as Asset
const CLUSTER = 'cache-settings-cluster'


async function check(directory: string): Promise<CheckResult> {
  const store = await Store.open(path.join(directory, 'store'))
  try {
    return await runCheck(store)
  } finally {
    await store.close()
  }
}

async function balanceOf(directory: string, account: string): Promise<bigint | undefined> {
  const store = await Store.open(path.join(directory, 'store'))
  try {
    const row = await store.get(attributeRowKey(volumesKey(L, account as AccountAddress, usd)))
    if (row === undefined) return undefined
    const volumes = decodeRowValue('v', row)
    return volumes.input - volumes.output
  } finally {
    await store.close()
  }
}

test('regression: acknowledged writes survive a power loss followed by a restart with another rotation threshold; tally check stays clean', async () => {
  const tmp = tempDirectory('tally-settings-')
  const synced = tempDirectory('tally-synced-store-')
  try {
    const options = { dataDirectory: tmp.directory, clusterId: CLUSTER, now: clock(), checkpointEntries: 1_000_000 }
    let node = await LedgerNode.open({ ...options, cacheRotationThreshold: 4 })
    assert.equal((await submitOne(node, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} })).status, 'applied')
    await node.close() // a clean close syncs the store: this is its last synced state
    const storeDirectory = path.join(tmp.directory, 'store')
    cpSync(storeDirectory, synced.directory, { recursive: true })

    node = await LedgerNode.open({ ...options, cacheRotationThreshold: 4 })
    for (let i = 0; i < 5; i++) assert.equal((await submitOne(node, transfer('world', 'users:1', 10n))).status, 'applied', `transfer ${i} acknowledged`)
    const acknowledged = node.fsm.appliedIndex
    await node.close()
    // Power loss: the WAL (fsynced) survives, the store falls back to its last synced state.
    rmSync(storeDirectory, { recursive: true, force: true })
    cpSync(synced.directory, storeDirectory, { recursive: true })

    node = await LedgerNode.open({ ...options, cacheRotationThreshold: 2 })
    assert.ok(node.fsm.appliedIndex >= acknowledged)
    // The five transfers are there: users:1 can spend 50 and not a cent more.
    assert.equal((await submitOne(node, transfer('users:1', 'users:2', 50n))).status, 'applied')
    const refused = await submitOne(node, transfer('users:1', 'users:2', 1n))
    assert.equal(refused.status === 'failed' && refused.error.code, 'INSUFFICIENT_FUND')
    assert.equal(node.cache.settings.rotationThreshold, 2, 'the new threshold is in force after recovery')
    await node.close()
    assert.equal(await balanceOf(tmp.directory, 'users:2'), 50n)
    const result = await check(tmp.directory)
    assert.equal(result.ok, true, JSON.stringify(result.findingsList).slice(0, 2000))
    assert.equal(result.stopped, undefined)
  } finally {
    tmp.remove()
    synced.remove()
  }
})

test('regression: lowering the rotation threshold before the first rotation keeps the node writable', async () => {
  const tmp = tempDirectory('tally-settings-')
  try {
    const options = { dataDirectory: tmp.directory, clusterId: CLUSTER, now: clock(), sync: false }
    let node = await LedgerNode.open({ ...options, cacheRotationThreshold: 1000 })
    await submitOne(node, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} })
    for (let i = 0; i < 20; i++) assert.equal((await submitOne(node, transfer('world', 'users:1', 1n))).status, 'applied')
    await node.close()
    node = await LedgerNode.open({ ...options, cacheRotationThreshold: 3 })
    for (let i = 0; i < 20; i++) {
      try {
        assert.equal((await submitOne(node, transfer('users:1', 'users:2', 1n))).status, 'applied', `write ${i} after lowering K`)
      } catch (error) {
        assert.fail(`write ${i} after lowering K was refused: ${error instanceof TallyError ? error.code : String(error)}`)
      }
    }
    const refused = await submitOne(node, transfer('users:1', 'users:2', 1n))
    assert.equal(refused.status === 'failed' && refused.error.code, 'INSUFFICIENT_FUND')
    await node.close()
    const result = await check(tmp.directory)
    assert.equal(result.ok, true, JSON.stringify(result.findingsList).slice(0, 2000))
  } finally {
    tmp.remove()
  }
})

test('a store from before ADR 0007 (cache state without settings or start indexes, no genesis row) opens, keeps rotating at the same indexes and checks clean', async () => {
  const tmp = tempDirectory('tally-settings-')
  try {
    const options = { dataDirectory: tmp.directory, clusterId: CLUSTER, now: clock(), sync: false }
    let node = await LedgerNode.open({ ...options, cacheRotationThreshold: 2, cacheGenerationBytesMax: null })
    await submitOne(node, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} })
    for (let i = 0; i < 6; i++) assert.equal((await submitOne(node, transfer('world', 'users:1', 1n))).status, 'applied')
    const generation = node.cache.generation
    const mirror = node.cache.contents()
    await node.close()
    // Rewrite the meta rows as the code before ADR 0007 left them.
    const store = await Store.open(path.join(tmp.directory, 'store'))
    await store.write(
      [
        { key: metaKey(MetaKey.cacheState), value: Buffer.from(JSON.stringify({ generation, epoch: 0, rotationThreshold: 2 })) },
        { key: metaKey(MetaKey.cacheGenesis), value: null },
      ],
      { sync: true },
    )
    await store.close()
    node = await LedgerNode.open({ ...options, cacheRotationThreshold: 2 })
    assert.deepEqual(node.cache.settings, { rotationThreshold: 2, generationBytesMax: null })
    assert.deepEqual(node.cache.contents(), mirror)
    for (let i = 0; i < 5; i++) assert.equal((await submitOne(node, transfer('users:1', 'users:2', 1n))).status, 'applied')
    assert.ok(node.cache.generation > generation)
    await node.close()
    const result = await check(tmp.directory)
    assert.equal(result.ok, true, JSON.stringify(result.findingsList).slice(0, 2000))
  } finally {
    tmp.remove()
  }
})
