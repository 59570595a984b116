import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { writeTransactionIndexes } from '../../src/fsm/indexes.ts'
import { WriteBatch } from '../../src/fsm/write-batch.ts'
import { InvariantViolation } from '../../src/domain/index.ts'
import type { LedgerLog } from '../../src/orders/index.ts'
import { writeTransactionIndexesOracle } from '../support/transaction-indexes-oracle.ts'

/**
 * A transaction's index rows (one per account it moves, then the row by
 * date) held to the code they replaced (`test/support/transaction-indexes-oracle.ts`):
 * the same keys and bytes, in the same order, for transfers, accounts moving
 * several assets, an account on both sides, and more postings than the
 * in-place scan takes (the maps' path).
 */

const accounts = ['world', 'a', 'b', 'users:1', 'é']
const assets = ['USD/2', 'EUR', 'COIN', 'A']
const postingArbitrary = fc.record({
  source: fc.constantFrom(...accounts),
  destination: fc.constantFrom(...accounts),
  amount: fc.bigInt({ min: 0n, max: 2n ** 200n }),
  asset: fc.constantFrom(...assets),
})
const transactionArbitrary = fc.record({
  id: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  insertedAt: fc.constantFrom('2026-12-07T10:00:00.000Z', '2026-12-07T10:00:00.123Z'),
  timestamp: fc.constantFrom('2026-12-07T10:00:00.000Z', '2020-01-01T00:00:00Z', '2026-12-07T10:00:00.123456Z'),
  postings: fc.oneof(fc.array(postingArbitrary, { minLength: 1, maxLength: 3 }), fc.array(postingArbitrary, { minLength: 1, maxLength: 24 })),
})

type Drafted = typeof transactionArbitrary extends fc.Arbitrary<infer T> ? T : never

function logOf(transaction: Drafted, type: 'NEW_TRANSACTION' | 'REVERTED_TRANSACTION' = 'NEW_TRANSACTION'): LedgerLog {
  return { id: transaction.id, type, data: { transaction: { ...transaction, metadata: {}, reverted: false } } } as unknown as LedgerLog
}

function rowsOf(write: (batch: WriteBatch) => void): [string, string][] {
  const batch = new WriteBatch()
  write(batch)
  return batch.rows().map((row) => [row.key.toString('hex'), (row.value as Buffer).toString('hex')])
}

test('index rows of a transaction: the bytes and order of the code they replaced (property)', () => {
  fc.assert(
    fc.property(fc.array(transactionArbitrary, { minLength: 1, maxLength: 4 }), fc.constantFrom('NEW_TRANSACTION', 'REVERTED_TRANSACTION') as fc.Arbitrary<'NEW_TRANSACTION' | 'REVERTED_TRANSACTION'>, (transactions, type) => {
      // Several transactions into one batch, as a proposal's apply does.
      const written = rowsOf((batch) => {
        for (const transaction of transactions) writeTransactionIndexes('ledger', logOf(transaction, type), batch)
      })
      const expected = rowsOf((batch) => {
        for (const transaction of transactions) writeTransactionIndexesOracle('ledger', logOf(transaction, type), batch)
      })
      assert.deepEqual(written, expected)
    }),
    { numRuns: 400 },
  )
})

test('a transaction refused inside the index rows leaves nothing to the next one', () => {
  const refused: Drafted = {
    id: 1n,
    insertedAt: '2026-12-07T10:00:00.000Z',
    timestamp: '2026-12-07T10:00:00.000Z',
    postings: [
      { source: 'a', destination: 'b', amount: 5n, asset: 'USD' },
      { source: 'c', destination: 'd', amount: -1n, asset: 'EUR' },
    ],
  }
  assert.throws(() => writeTransactionIndexes('ledger', logOf(refused), new WriteBatch()), InvariantViolation)
  const next: Drafted = { id: 2n, insertedAt: refused.insertedAt, timestamp: refused.timestamp, postings: [{ source: 'world', destination: 'a', amount: 7n, asset: 'USD' }] }
  assert.deepEqual(
    rowsOf((batch) => writeTransactionIndexes('ledger', logOf(next), batch)),
    rowsOf((batch) => writeTransactionIndexesOracle('ledger', logOf(next), batch)),
  )
})
