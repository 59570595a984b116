import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { AccountAddress, AttributeValue, Asset, CanonicalKey, LedgerName } from '../../src/domain/index.ts'
import { ledgerKey } from '../../src/domain/index.ts'
import type { CreateTransaction, LedgerLog, Scope } from '../../src/orders/index.ts'
import { createTransaction } from '../../src/orders/handlers/create-transaction.ts'

/**
 * The transaction record a create writes has one field order whether or not
 * it carries a reference: the common case is built as its own literal
 * (without spreading empty objects), and must not drift from the other.
 */
const L = 'main' as LedgerName

function written(reference: string | undefined): string[] {
  const values = new Map<CanonicalKey, AttributeValue>()
  values.set(ledgerKey(L), {
    kind: 'l',
    value: { name: L, bucket: '_default', addedAt: '2026-12-07T00:00:00.000Z', metadata: {}, features: {}, nextTransactionId: 0n, nextLogId: 0n, accountCount: 0n, lastLogHash: '' },
  } as AttributeValue)
  const scope: Scope = {
    date: '2026-12-07T00:00:00.000Z',
    idempotencyKey: undefined,
    read: (key) => values.get(key),
    write: (key, value) => void values.set(key, value),
    appendLog: (_ledger: LedgerName, _log: LedgerLog) => {},
  }
  const order = {
    type: 'CREATE_TRANSACTION',
    ledger: L,
    postings: [{ source: 'world' as AccountAddress, destination: 'users:1' as AccountAddress, amount: 5n, asset: 'USD/2' as Asset }],
    metadata: {},
    accountMetadata: {},
    force: false,
    ...(reference === undefined ? {} : { reference }),
  } as CreateTransaction
  createTransaction(scope, order)
  const record = [...values.values()].find((value) => value.kind === 't')
  assert.ok(record !== undefined)
  return Object.keys(record.value)
}

test('a created transaction record: the same fields in the same order, with a reference or without', () => {
  const fields = ['id', 'postings', 'timestamp', 'insertedAt', 'updatedAt', 'metadata', 'reverted', 'preCommitVolumes', 'postCommitVolumes']
  assert.deepEqual(written(undefined), fields)
  assert.deepEqual(written('ref-1'), [...fields.slice(0, 5), 'reference', ...fields.slice(5)])
})
