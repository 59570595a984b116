import { test } from 'node:test'
import assert from 'node:assert/strict'
import { headerOf, posting, present, withServer } from './server.ts'
import type { CompatServer } from './server.ts'

/**
 * The SDK operations of issue 3 (filters, counts, time travel, aggregations,
 * dryRun, order/reverse/sort) and issue 4 (log export/import). A test stays a
 * `todo` while its feature is missing, and is listed in docs/api-compatibility.md.
 */

async function seeded(body: (server: CompatServer) => Promise<void>): Promise<void> {
  await withServer(async (server) => {
    const { v2 } = server
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    await v2.createTransaction({ ledger: 'main', v2PostTransaction: { postings: [posting('world', 'users:1', 100n)], metadata: { kind: 'deposit' }, timestamp: new Date('2024-01-01T00:00:00Z') } })
    await v2.createTransaction({ ledger: 'main', v2PostTransaction: { postings: [posting('world', 'users:2', 50n)], metadata: { kind: 'deposit' }, timestamp: new Date('2024-02-01T00:00:00Z') } })
    await v2.createTransaction({ ledger: 'main', v2PostTransaction: { postings: [posting('users:1', 'merchants:1', 30n)], metadata: { kind: 'payment' }, timestamp: new Date('2024-03-01T00:00:00Z') } })
    await body(server)
  })
}

test('SDK countTransactions / countAccounts: HEAD with the Count header', async () => {
  await seeded(async ({ v2 }) => {
    assert.equal(headerOf((await v2.countTransactions({ ledger: 'main' })).headers, 'Count'), '3')
    assert.equal(headerOf((await v2.countAccounts({ ledger: 'main' })).headers, 'Count'), '4')
    assert.equal(headerOf((await v2.countAccounts({ ledger: 'main', query: { $match: { address: 'users:' } } })).headers, 'Count'), '2')
  })
})

test('SDK filters (the SDK sends them as a JSON `query` parameter): accounts, transactions, logs', async () => {
  await seeded(async ({ v2 }) => {
    const users = present((await v2.listAccounts({ ledger: 'main', query: { $match: { address: 'users:' } } })).v2AccountsCursorResponse, 'accounts').cursor.data
    assert.deepEqual(users.map((account) => account.address), ['users:1', 'users:2'])
    const rich = present((await v2.listAccounts({ ledger: 'main', query: { $gte: { 'balance[USD/2]': 60 } } })).v2AccountsCursorResponse, 'rich').cursor.data
    assert.deepEqual(rich.map((account) => account.address), ['users:1'])
    const payments = present((await v2.listTransactions({ ledger: 'main', query: { $match: { 'metadata[kind]': 'payment' } } })).v2TransactionsCursorResponse, 'txs').cursor.data
    assert.deepEqual(payments.map((transaction) => transaction.id), [2n])
    const touching = present((await v2.listTransactions({ ledger: 'main', query: { $match: { account: 'users:1' } } })).v2TransactionsCursorResponse, 'txs').cursor.data
    assert.deepEqual(touching.map((transaction) => transaction.id), [2n, 0n])
    const logs = present((await v2.listLogs({ ledger: 'main', query: { $lt: { id: 1 } } })).v2LogsCursorResponse, 'logs').cursor.data
    assert.deepEqual(logs.map((log) => log.id), [0n])
  })
})

test('SDK listTransactions reverse and sort', async () => {
  await seeded(async ({ v2 }) => {
    const reversed = present((await v2.listTransactions({ ledger: 'main', reverse: true })).v2TransactionsCursorResponse, 'reverse').cursor.data
    assert.deepEqual(reversed.map((transaction) => transaction.id), [0n, 1n, 2n])
    const sorted = present((await v2.listTransactions({ ledger: 'main', sort: 'id:asc' })).v2TransactionsCursorResponse, 'sort').cursor.data
    assert.deepEqual(sorted.map((transaction) => transaction.id), [0n, 1n, 2n])
  })
})

test('SDK pit and expand: account volumes at a point in time, commit volumes on a read transaction', async () => {
  await seeded(async ({ v2 }) => {
    const before = present((await v2.getAccount({ ledger: 'main', address: 'users:1', expand: 'volumes,effectiveVolumes', pit: new Date('2024-02-15T00:00:00Z') })).v2AccountResponse, 'pit').data
    assert.deepEqual(before.effectiveVolumes?.['USD/2'], { input: 100n, output: 0n, balance: 100n })
    const transaction = present((await v2.getTransaction({ ledger: 'main', id: 2n, expand: 'volumes' })).v2GetTransactionResponse, 'tx').data
    assert.deepEqual(transaction.postCommitVolumes?.['users:1']?.['USD/2'], { input: 100n, output: 30n, balance: 70n })
  })
})

test('SDK readStats, getBalancesAggregated, getVolumesWithBalances', async () => {
  await seeded(async ({ v2 }) => {
    const stats = present((await v2.readStats({ ledger: 'main' })).v2StatsResponse, 'stats').data
    assert.equal(stats.transactions, 3n)
    assert.equal(stats.accounts, 4)
    const aggregated = present((await v2.getBalancesAggregated({ ledger: 'main', query: { $match: { address: 'users:' } } })).v2AggregateBalancesResponse, 'aggregate').data
    assert.deepEqual(aggregated, { 'USD/2': 120n })
    const volumes = present((await v2.getVolumesWithBalances({ ledger: 'main', groupBy: 1 })).v2VolumesWithBalanceCursorResponse, 'volumes').cursor.data
    const users = volumes.find((volume) => volume.account === 'users' && volume.asset === 'USD/2')
    assert.deepEqual(users === undefined ? undefined : { input: users.input, output: users.output, balance: users.balance }, { input: 150n, output: 30n, balance: 120n })
  })
})

test('SDK dryRun: the transaction comes back, nothing is written', async () => {
  await seeded(async ({ v2 }) => {
    const dry = await v2.createTransaction({ ledger: 'main', dryRun: true, v2PostTransaction: { postings: [posting('world', 'users:3', 5n)], metadata: {} } })
    assert.equal(present(dry.v2CreateTransactionResponse, 'dry').data.postings[0]?.amount, 5n)
    const listed = present((await v2.listTransactions({ ledger: 'main' })).v2TransactionsCursorResponse, 'list').cursor.data
    assert.equal(listed.length, 3)
    const logs = present((await v2.listLogs({ ledger: 'main' })).v2LogsCursorResponse, 'logs').cursor.data
    assert.equal(logs.length, 3)
  })
})

test('SDK exportLogs then importLogs into an empty ledger: same transactions', async () => {
  await seeded(async ({ v2, url }) => {
    // The SDK's exportLogs discards the body (its v2 document gives the 200 no schema it reads), so the stream is read over HTTP.
    assert.equal((await v2.exportLogs({ ledger: 'main' })).statusCode, 200)
    const exported = await fetch(`${url}/api/ledger/v2/main/logs/export`, { method: 'POST' })
    assert.equal(exported.status, 200)
    const stream = await exported.text()
    await v2.createLedger({ ledger: 'copy', v2CreateLedgerRequest: {} })
    assert.equal((await v2.importLogs({ ledger: 'copy', v2ImportLogsRequest: new TextEncoder().encode(stream) })).statusCode, 204)
    const original = present((await v2.listTransactions({ ledger: 'main' })).v2TransactionsCursorResponse, 'main').cursor.data
    const copy = present((await v2.listTransactions({ ledger: 'copy' })).v2TransactionsCursorResponse, 'copy').cursor.data
    assert.deepEqual(copy.map((transaction) => transaction.postings), original.map((transaction) => transaction.postings))
  })
})
