import assert from 'node:assert/strict'
import path from 'node:path'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'
import { TallyError } from '../../src/domain/index.ts'
import type { OrderResult } from '../../src/fsm/index.ts'
import type { Order } from '../../src/orders/index.ts'
import type { LedgerNode } from '../../src/server/index.ts'
import { Store } from '../../src/store/index.ts'
import { runCheck } from '../../src/check/index.ts'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { HeldWal } from './held-wal.ts'

/** Orders and store helpers shared by the pipeline-level tests. */

export const MAIN = 'main' as LedgerName
export const USD = 'USD/2' as Asset

/** A one-posting transaction order, as the HTTP parser would build it. */
export function transfer(source: string, destination: string, amount: bigint, options: { ledger?: LedgerName; asset?: Asset } = {}): Order {
  return {
    type: 'CREATE_TRANSACTION',
    ledger: options.ledger ?? MAIN,
    postings: [{ source: source as AccountAddress, destination: destination as AccountAddress, amount, asset: options.asset ?? USD }],
    metadata: {},
    accountMetadata: {},
    force: false,
  } as Order
}

/** Submits one order alone and returns its result. */
export async function submitOne(node: LedgerNode, order: Order): Promise<OrderResult> {
  const [result] = await node.admission.submit([{ order }], { atomic: false, continueOnFailure: false })
  assert.ok(result !== undefined)
  return result
}

/** Every row of a closed data directory's store, hex-encoded (byte-identity checks). */
export async function storeRows(directory: string): Promise<Map<string, string>> {
  const store = await Store.open(path.join(directory, 'store'))
  const rows = new Map<string, string>()
  try {
    for await (const [key, value] of store.range({ gte: Buffer.of(0) })) rows.set(key.toString('hex'), value.toString('hex'))
  } finally {
    await store.close()
  }
  return rows
}

/** Runs `tally check` over a closed data directory and asserts it is clean. */
export async function assertCheckClean(directory: string): Promise<void> {
  const store = await Store.open(path.join(directory, 'store'))
  try {
    const result = await runCheck(store)
    assert.equal(result.ok, true, JSON.stringify(result.findingsList).slice(0, 2000))
  } finally {
    await store.close()
  }
}

/** POSTs a JSON body through fastify's inject. */
export function postJson(app: FastifyInstance, url: string, body: unknown): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
}

/**
 * On a node opened with K = 1 (every index its own generation, so two
 * proposals in flight already reach Δ = 2), one proposal per write, applied
 * only once durable, and `wal`'s I/O: creates ledger `main`, then keeps one
 * transfer in flight (its fdatasync held) and sends eleven behind it, which
 * are planned two generations ahead and refused for the cache horizon
 * whatever the machine's speed; then lets the first one land. The replies,
 * the first one's at index 0.
 */
export async function overrunCacheHorizon(app: FastifyInstance, wal: HeldWal): Promise<LightMyRequestResponse[]> {
  assert.equal((await postJson(app, '/v2/main', {})).statusCode, 204)
  const write = (i: number) => postJson(app, '/v2/main/transactions', { postings: [{ source: 'world', destination: `users:${i}`, amount: 1, asset: 'USD' }] })
  wal.hold()
  try {
    const first = write(0)
    const held = await Promise.race([wal.waiting().then(() => true), first.then(() => false)])
    assert.ok(held, 'the first write waits on its held fdatasync')
    const behind = await Promise.all(Array.from({ length: 11 }, (_, i) => write(i + 1)))
    wal.release()
    return [await first, ...behind]
  } finally {
    wal.release()
  }
}

/** Submits `orders` as one atomic proposal, retrying the retryable 503s as the contract asks a client to; every order must apply. */
export async function submitRetrying(node: LedgerNode, orders: Order[]): Promise<void> {
  for (;;) {
    try {
      const results = await node.admission.submit(
        orders.map((order) => ({ order })),
        { atomic: true, continueOnFailure: false },
      )
      assert.ok(results.every((result) => result.status === 'applied'), JSON.stringify(results.find((result) => result.status !== 'applied')))
      return
    } catch (error) {
      if (!(error instanceof TallyError) || (error.code !== 'CACHE_HORIZON_EXCEEDED' && error.code !== 'STALE_PROPOSAL')) throw error
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
}
