import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync } from 'node:fs'
import path from 'node:path'
import { LedgerNode } from '../../src/server/index.ts'
import type { Order } from '../../src/orders/index.ts'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'
import { TallyError } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { storeRows } from '../support/ledger.ts'
import { clock } from '../check/workload.ts'

const L = 'main' as LedgerName
const acct = (s: string) => s as AccountAddress
const CLUSTER = 'determinism-cluster'

test('determinism: the same WAL applied into two fresh stores yields byte-identical stores, equal to the live one', async () => {
  const live = tempDirectory()
  const replayA = tempDirectory()
  const replayB = tempDirectory()
  try {
    const node = await LedgerNode.open({ dataDirectory: live.directory, cacheRotationThreshold: 3, clusterId: CLUSTER, sync: false, now: clock() })
    // A client retries 503 CACHE_HORIZON_EXCEEDED, as the contract asks.
    const submit = async (order: Order): Promise<unknown> => {
      for (;;) {
        try {
          return await node.admission.submit([{ order }], { atomic: false, continueOnFailure: false })
        } catch (error) {
          if (!(error instanceof TallyError) || error.code !== 'CACHE_HORIZON_EXCEEDED') throw error
          await new Promise((resolve) => setImmediate(resolve))
        }
      }
    }
    await submit({ type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} })
    const pending: Promise<unknown>[] = []
    for (let i = 0; i < 60; i++) {
      const source = i % 3 === 0 ? 'world' : `users:${i % 5}`
      const order: Order = {
        type: 'CREATE_TRANSACTION',
        ledger: L,
        postings: [{ source: acct(source), destination: acct(`users:${(i * 7) % 5}`), amount: BigInt(1 + (i % 13)), asset: (i % 2 ? 'USD/2' : 'EUR') as Asset }],
        metadata: { i: String(i) },
        accountMetadata: {},
        force: i % 11 === 0,
      }
      // Concurrent submissions: admission plans against a moving cache.
      pending.push(submit(order))
      if (i % 10 === 9) pending.push(submit({ type: 'REVERT_TRANSACTION', ledger: L, id: BigInt(i - 5), force: true, atEffectiveDate: false, metadata: {} }))
      if (i % 8 === 0) pending.push(submit({ type: 'SAVE_ACCOUNT_METADATA', ledger: L, address: acct(`users:${i % 5}`), metadata: { k: String(i) } }))
    }
    await Promise.all(pending)
    await node.close()

    for (const replay of [replayA, replayB]) {
      cpSync(path.join(live.directory, 'wal'), path.join(replay.directory, 'wal'), { recursive: true })
      const replayed = await LedgerNode.open({ dataDirectory: replay.directory, cacheRotationThreshold: 3, clusterId: CLUSTER, sync: false })
      assert.equal(replayed.fsm.appliedIndex, node.fsm.appliedIndex)
      await replayed.close()
    }
    const [rowsLive, rowsA, rowsB] = await Promise.all([storeRows(live.directory), storeRows(replayA.directory), storeRows(replayB.directory)])
    assert.ok(rowsLive.size > 100, `a non-trivial store (${rowsLive.size} rows)`)
    assert.deepEqual(rowsA, rowsB)
    assert.deepEqual(rowsA, rowsLive)
  } finally {
    live.remove()
    replayA.remove()
    replayB.remove()
  }
})
