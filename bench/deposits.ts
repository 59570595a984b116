import type { AccountAddress, Asset, LedgerName } from '../src/domain/index.ts'
import type { ProposedOrder } from '../src/orders/index.ts'

/**
 * In-process bench workloads: bulks of deposits from `world`, numbered on
 * from one bulk to the next, to `users:<n mod accounts>` (every order a new
 * account when `accounts` is unbounded). With `idempotencyKeys`, each order
 * carries its own key (`d<n>`), as a bulk element's `ik` does: each leaves
 * an idempotency record holding its answer.
 */
export function depositBulks(ledger: LedgerName, ordersPerBulk: number, accounts = Number.POSITIVE_INFINITY, idempotencyKeys = false): () => ProposedOrder[] {
  let next = 0
  return () =>
    Array.from({ length: ordersPerBulk }, () => {
      const i = next++
      return {
        order: {
          type: 'CREATE_TRANSACTION',
          ledger,
          postings: [{ source: 'world' as AccountAddress, destination: `users:${i % accounts}` as AccountAddress, amount: BigInt(1 + (i % 997)), asset: 'USD/2' as Asset }],
          metadata: {},
          accountMetadata: {},
          force: false,
        },
        ...(idempotencyKeys ? { idempotencyKey: `d${i}`, requestHash: `h${i}` } : {}),
      }
    })
}
