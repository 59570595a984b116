import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync } from 'node:fs'
import path from 'node:path'
import fc from 'fast-check'
import { LedgerNode } from '../../src/server/index.ts'
import { Store } from '../../src/store/index.ts'
import { runCheck } from '../../src/check/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { clock, runWorkload, stepArbitrary } from '../check/workload.ts'
import { storeRows } from '../support/ledger.ts'

const CLUSTER = 'cache-budget-cluster'

/**
 * Byte rotations anywhere: random workloads (reverts, metadata, idempotency,
 * bulks, concurrent submissions) under tiny byte budgets and random K, with a
 * settings change halfway. Every store checks clean, restarts to the same
 * cache, and a replay of its WAL rebuilds it byte for byte.
 */
test('property: under any byte budget and K, with a settings change midway, check is clean, restart and replay agree', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(stepArbitrary, { minLength: 2, maxLength: 30 }),
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 300, max: 4000 }),
      fc.integer({ min: 300, max: 4000 }),
      async (steps, threshold, budgetBefore, budgetAfter) => {
        const live = tempDirectory('tally-budget-')
        const replay = tempDirectory('tally-budget-replay-')
        try {
          const half = Math.floor(steps.length / 2)
          let node = await LedgerNode.open({ dataDirectory: live.directory, cacheRotationThreshold: threshold, cacheGenerationBytesMax: budgetBefore, clusterId: CLUSTER, sync: false, now: clock() })
          await runWorkload(node, steps.slice(0, half))
          await node.close()
          node = await LedgerNode.open({ dataDirectory: live.directory, cacheGenerationBytesMax: budgetAfter, clusterId: CLUSTER, sync: false, now: clock(Date.UTC(2026, 1, 1)) })
          await runWorkload(node, steps.slice(half))
          const mirror = node.cache.contents()
          const bytes = node.cache.bytes
          await node.close()
          node = await LedgerNode.open({ dataDirectory: live.directory, sync: false })
          assert.deepEqual(node.cache.contents(), mirror)
          assert.deepEqual(node.cache.bytes, bytes)
          await node.close()

          const store = await Store.open(path.join(live.directory, 'store'))
          const result = await runCheck(store)
          await store.close()
          assert.equal(result.ok, true, JSON.stringify(result.findingsList).slice(0, 2000))
          assert.equal(result.stopped, undefined)

          cpSync(path.join(live.directory, 'wal'), path.join(replay.directory, 'wal'), { recursive: true })
          const replayed = await LedgerNode.open({ dataDirectory: replay.directory, cacheRotationThreshold: threshold, cacheGenerationBytesMax: budgetBefore, clusterId: CLUSTER, sync: false })
          await replayed.close()
          assert.deepEqual(await storeRows(replay.directory), await storeRows(live.directory))
        } finally {
          live.remove()
          replay.remove()
        }
      },
    ),
    { numRuns: 10 },
  )
})
