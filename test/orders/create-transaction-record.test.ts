import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { AccountAddress, AttributeValue, Asset, CanonicalKey, LedgerName } from '../../src/domain/index.ts'
import { accountKey, ledgerKey } from '../../src/domain/index.ts'
import type { CreateTransaction, LedgerLog, Scope } from '../../src/orders/index.ts'
import { createTransaction } from '../../src/orders/handlers/create-transaction.ts'

/**
 * The transaction record a create writes has one field order whether or not
 * it carries a reference: the common case is built as its own literal
 * (without spreading empty objects), and must not drift from the other.
 */
const L = 'main' as LedgerName

function written(reference: string | undefined): string[] {
  const { scope, values } = mapScope()
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

/** A scope over a map, the ledger `L` in it; its writes land in the map. */
function mapScope(): { scope: Scope; values: Map<CanonicalKey, AttributeValue> } {
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
  return { scope, values }
}

function transfer(destination: string, accountMetadata: Record<string, Record<string, string>>): CreateTransaction {
  return {
    type: 'CREATE_TRANSACTION',
    ledger: L,
    postings: [{ source: 'world' as AccountAddress, destination: destination as AccountAddress, amount: 5n, asset: 'USD/2' as Asset }],
    metadata: {},
    accountMetadata,
    force: false,
  } as unknown as CreateTransaction
}

test('creates advance the ledger record: next transaction and log ids, accounts first used, last log hash — its fields in their one order; account metadata lands on new and existing accounts', () => {
  const { scope, values } = mapScope()
  createTransaction(scope, transfer('users:1', {}))
  createTransaction(scope, transfer('users:1', { 'users:1': { tier: 'gold' } }))
  createTransaction(scope, transfer('users:2', { 'users:2': { tier: 'new' } }))
  const ledger = values.get(ledgerKey(L))
  assert.ok(ledger?.kind === 'l')
  assert.deepEqual(Object.keys(ledger.value), ['name', 'bucket', 'addedAt', 'metadata', 'features', 'nextTransactionId', 'nextLogId', 'accountCount', 'lastLogHash'])
  assert.equal(ledger.value.nextTransactionId, 3n)
  assert.equal(ledger.value.nextLogId, 3n)
  assert.equal(ledger.value.accountCount, 3n, 'world, users:1, users:2')
  assert.notEqual(ledger.value.lastLogHash, '')
  const metadataOf = (address: string): unknown => {
    const account = values.get(accountKey(L, address as AccountAddress))
    assert.ok(account?.kind === 'a', address)
    return { ...account.value.metadata }
  }
  assert.deepEqual(metadataOf('users:1'), { tier: 'gold' }, 'an existing account')
  assert.deepEqual(metadataOf('users:2'), { tier: 'new' }, 'a new account')
  assert.deepEqual(metadataOf('world'), {})
})
