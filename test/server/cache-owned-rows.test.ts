import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync } from 'node:fs'
import path from 'node:path'
import { LedgerNode } from '../../src/server/index.ts'
import type { LedgerNodeOptions } from '../../src/server/index.ts'
import type { Order } from '../../src/orders/index.ts'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'
import type { AttributeCache } from '../../src/cache/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { submitRetrying } from '../support/ledger.ts'
import { clock } from '../check/workload.ts'

const L = 'owned' as LedgerName
const CLUSTER = 'cache-owned-cluster'

/** Transfers among a few accounts again and again: after rotations, their volumes come back as seeds. */
function transfers(round: number, size: number): Order[] {
  return Array.from({ length: size }, (_, i) => ({
    type: 'CREATE_TRANSACTION' as const,
    ledger: L,
    postings: [{ source: 'world' as AccountAddress, destination: `users:${(round * 7 + i) % 12}` as AccountAddress, amount: BigInt(1 + i), asset: 'USD/2' as Asset }],
    metadata: { round: String(round) },
    accountMetadata: { [`users:${i % 12}`]: { seen: String(round) } },
    force: false,
  }))
}

/** Every view into an ArrayBuffer reachable from `value` (a decoded attribute: objects, arrays, maps). */
function viewsIn(value: unknown, found: Uint8Array[], seen = new Set<unknown>()): Uint8Array[] {
  if (value === null || typeof value !== 'object' || seen.has(value)) return found
  seen.add(value)
  if (value instanceof Uint8Array) found.push(value)
  else if (value instanceof Map) {
    for (const [k, v] of value) {
      viewsIn(k, found, seen)
      viewsIn(v, found, seen)
    }
  } else for (const v of Object.values(value)) viewsIn(v, found, seen)
  return found
}

/** Every row the cache keeps owns no more memory than the cache counts for it: its own length. */
function assertHoldsWhatItCounts(cache: AttributeCache, where: string): number {
  let rows = 0
  for (const [key, row] of cache.heldRows()) {
    rows++
    assert.equal(row.buffer.byteLength, row.length, `${where}: the row of ${key} (${row.length} bytes) keeps a buffer of ${row.buffer.byteLength} bytes`)
    const lookup = cache.get(key)
    assert.equal(lookup.state, 'live')
    if (lookup.state !== 'live') continue
    for (const view of viewsIn(lookup.attribute.value, [])) {
      assert.ok(view.buffer === row.buffer || view.buffer.byteLength === view.byteLength, `${where}: the value of ${key} keeps a buffer of ${view.buffer.byteLength} bytes`)
    }
  }
  return rows
}

test('cache memory: every row the cache keeps (written, seeded, restored, replayed from the WAL) owns exactly its counted bytes', async () => {
  const live = tempDirectory('tally-owned-')
  const replay = tempDirectory('tally-owned-replay-')
  try {
    // Rotations every few indexes: written keys leave the cache, and the next writes read them back as seeds.
    const options: Omit<LedgerNodeOptions, 'dataDirectory'> = { cacheRotationThreshold: 3, clusterId: CLUSTER, sync: false }
    const node = await LedgerNode.open({ ...options, dataDirectory: live.directory, now: clock() })
    let seeded = 0
    const apply = node.fsm.apply.bind(node.fsm)
    node.fsm.apply = (index, proposal, batch) => {
      for (const entry of proposal.coverage) if (entry.seed !== undefined && entry.seed !== null) seeded++
      return apply(index, proposal, batch)
    }
    await submitRetrying(node, [{ type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} }])
    for (let round = 0; round < 30; round++) await submitRetrying(node, transfers(round, 1 + (round % 5)))
    assert.ok(seeded > 0, 'the workload reads keys back as seeds')
    assert.ok(assertHoldsWhatItCounts(node.cache, 'written and seeded') > 0)
    const contents = node.cache.contents()
    await node.close()

    // Restart: values restored from the store's rows.
    const reopened = await LedgerNode.open({ ...options, dataDirectory: live.directory })
    assert.equal(reopened.cache.contents(), contents)
    assert.ok(assertHoldsWhatItCounts(reopened.cache, 'restored') > 0)
    await reopened.close()

    // A replica replaying the WAL: rows packed by the FSM again, seeds decoded from the WAL's records.
    cpSync(path.join(live.directory, 'wal'), path.join(replay.directory, 'wal'), { recursive: true })
    const replayed = await LedgerNode.open({ ...options, dataDirectory: replay.directory })
    assert.equal(replayed.cache.contents(), contents)
    assert.ok(assertHoldsWhatItCounts(replayed.cache, 'replayed') > 0)
    await replayed.close()
  } finally {
    live.remove()
    replay.remove()
  }
})
