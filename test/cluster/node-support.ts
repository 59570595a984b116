import assert from 'node:assert/strict'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'
import { TallyError } from '../../src/domain/index.ts'
import type { OrderResult } from '../../src/fsm/index.ts'
import type { Order } from '../../src/orders/index.ts'
import { LedgerNode, nodeLocalMetaKeys } from '../../src/server/index.ts'
import type { LedgerNodeOptions } from '../../src/server/index.ts'
import { metaKey } from '../../src/store/index.ts'
import { storeRows } from '../support/ledger.ts'
import { mulberry32 } from '../crash/power-loss-harness.ts'

/** Helpers of the replicated-node tests (test/cluster/node-*.test.ts). */

export const CLUSTER = 'loopback-cluster'
export const LEDGER = 'main' as LedgerName
const USD = 'USD/2' as Asset

export function openNode(directory: string, nodeId: string, extra: Partial<LedgerNodeOptions> = {}): Promise<LedgerNode> {
  let clock = Date.parse('2026-01-01T00:00:00Z')
  return LedgerNode.open({
    dataDirectory: directory,
    clusterId: CLUSTER,
    cacheRotationThreshold: 16,
    sync: false,
    now: () => (clock += 1000),
    log: () => {},
    replicated: { nodeId },
    // One log entry per submit: these tests count entries (LSNs) by the writes they make.
    gatherOrdersMax: 1,
    ...extra,
  })
}

/** Like a SIGKILL: no drain, no final checkpoint; the WAL and the store are abandoned as they are. */
export async function kill(node: LedgerNode): Promise<void> {
  await node.wal.close().catch(() => {})
  await node.store.close().catch(() => {})
}

/** Submits one order, retrying the retryable refusals a client retries. */
export async function submit(node: LedgerNode, order: Order): Promise<OrderResult> {
  for (;;) {
    try {
      const [result] = await node.admission.submit([{ order }], { atomic: true, continueOnFailure: false })
      assert.ok(result !== undefined)
      return result
    } catch (error) {
      if (!(error instanceof TallyError) || (error.code !== 'CACHE_HORIZON_EXCEEDED' && error.code !== 'STALE_PROPOSAL')) throw error
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
}

export const createLedger: Order = { type: 'CREATE_LEDGER', ledger: LEDGER, bucket: '_default', metadata: {}, features: {} } as Order

/** A seeded mix of deposits, transfers (some refused for funds), metadata writes and reverts. */
export function randomOrders(seed: number, count: number): Order[] {
  const random = mulberry32(seed)
  const user = () => `users:${Math.floor(random() * 6)}` as AccountAddress
  const orders: Order[] = []
  for (let i = 0; i < count; i++) {
    const pick = random()
    if (pick < 0.45) {
      orders.push({ type: 'CREATE_TRANSACTION', ledger: LEDGER, postings: [{ source: 'world' as AccountAddress, destination: user(), amount: BigInt(1 + Math.floor(random() * 500)), asset: USD }], metadata: { seed: String(seed) }, accountMetadata: {}, force: false } as Order)
    } else if (pick < 0.8) {
      orders.push({ type: 'CREATE_TRANSACTION', ledger: LEDGER, postings: [{ source: user(), destination: user(), amount: BigInt(1 + Math.floor(random() * 300)), asset: USD }], metadata: {}, accountMetadata: {}, force: false } as Order)
    } else if (pick < 0.92) {
      orders.push({ type: 'SAVE_ACCOUNT_METADATA', ledger: LEDGER, address: user(), metadata: { k: String(i) } } as Order)
    } else {
      orders.push({ type: 'REVERT_TRANSACTION', ledger: LEDGER, id: BigInt(Math.floor(random() * 10)), force: true, atEffectiveDate: false, metadata: {} } as Order)
    }
  }
  return orders
}

/** Runs the orders `concurrency` at a time; business refusals are results, not errors. */
export async function runWorkload(node: LedgerNode, orders: readonly Order[], concurrency = 6): Promise<OrderResult[]> {
  const results: OrderResult[] = []
  for (let start = 0; start < orders.length; start += concurrency) {
    results.push(...(await Promise.all(orders.slice(start, start + concurrency).map((order) => submit(node, order)))))
  }
  return results
}

/** Every store row of a closed data directory but the node-local meta rows (the committed watermark, the checkpoint index). */
export async function comparableRows(directory: string): Promise<Map<string, string>> {
  const rows = await storeRows(directory)
  for (const name of nodeLocalMetaKeys) rows.delete(metaKey(name).toString('hex'))
  return rows
}
