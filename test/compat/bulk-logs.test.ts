import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { V2BulkElement } from '@formance/formance-sdk/sdk/models/ledger/index.js'
import { posting, present, rejectsWithV2Error, withServer } from './server.ts'
import type { LedgerV2 } from './server.ts'

async function balance(v2: LedgerV2, address: string): Promise<bigint> {
  const account = await v2.getAccount({ ledger: 'main', address, expand: 'volumes' }).then(
    (response) => present(response.v2AccountResponse, 'account').data,
    () => undefined,
  )
  return account?.volumes?.['USD/2']?.balance ?? 0n
}

test('SDK createBulk: the four actions, results in order with log ids; an element ik makes a replay a no-op', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    await v2.createTransaction({ ledger: 'main', v2PostTransaction: { postings: [posting('world', 'users:1', 50n)], metadata: { n: '0' } } })
    const elements: V2BulkElement[] = [
      { action: 'CREATE_TRANSACTION', ik: 'bulk-0', data: { postings: [posting('world', 'users:2', 5n)], metadata: {} } },
      { action: 'ADD_METADATA', data: { targetType: 'ACCOUNT', targetId: 'users:1', metadata: { tier: 'gold' } } },
      { action: 'ADD_METADATA', data: { targetType: 'TRANSACTION', targetId: 0n, metadata: { checked: 'yes' } } },
      { action: 'DELETE_METADATA', data: { targetType: 'TRANSACTION', targetId: 0n, key: 'n' } },
      { action: 'REVERT_TRANSACTION', data: { id: 0n, metadata: { why: 'test' } } },
    ]
    const response = await v2.createBulk({ ledger: 'main', requestBody: elements })
    assert.equal(response.statusCode, 200, JSON.stringify(response.v2BulkResponse, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value)))
    const results = present(response.v2BulkResponse, 'bulk').data ?? []
    assert.deepEqual(results.map((result) => result.responseType), ['CREATE_TRANSACTION', 'ADD_METADATA', 'ADD_METADATA', 'DELETE_METADATA', 'REVERT_TRANSACTION'])
    const [created, , , , reverted] = results
    assert.ok(created !== undefined && created.responseType === 'CREATE_TRANSACTION')
    assert.equal(created.data.id, 1n)
    assert.ok(reverted !== undefined && reverted.responseType === 'REVERT_TRANSACTION')
    assert.deepEqual(reverted.data.postings, [posting('users:1', 'world', 50n)])
    assert.equal(reverted.data.metadata['why'], 'test')
    const logIds = results.map((result) => result.logID)
    assert.deepEqual(logIds, [1, 2, 3, 4, 5], 'one log per element, after the first transaction\'s log 0')
    const transaction = present((await v2.getTransaction({ ledger: 'main', id: 0n })).v2GetTransactionResponse, 'tx').data
    assert.deepEqual(transaction.metadata, { checked: 'yes' })
    assert.equal(transaction.reverted, true)
    const account = present((await v2.getAccount({ ledger: 'main', address: 'users:1' })).v2AccountResponse, 'account').data
    assert.deepEqual(account.metadata, { tier: 'gold' })

    const replay = await v2.createBulk({ ledger: 'main', requestBody: [elements[0] as V2BulkElement] })
    const replayed = present(replay.v2BulkResponse, 'replay').data?.[0]
    assert.ok(replayed !== undefined && replayed.responseType === 'CREATE_TRANSACTION')
    assert.equal(replayed.data.id, 1n)
    assert.equal(await balance(v2, 'users:2'), 5n, 'the replay applied nothing')
  })
})

test('SDK createBulk: revert a transaction created earlier in the same bulk', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    const response = await v2.createBulk({
      ledger: 'main',
      atomic: true,
      requestBody: [
        { action: 'CREATE_TRANSACTION', data: { postings: [posting('world', 'users:1', 50n)], metadata: {} } },
        { action: 'REVERT_TRANSACTION', data: { id: 0n } },
      ],
    })
    assert.equal(response.statusCode, 200, JSON.stringify(response.v2BulkResponse, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value)))
    assert.deepEqual((present(response.v2BulkResponse, 'bulk').data ?? []).map((result) => result.responseType), ['CREATE_TRANSACTION', 'REVERT_TRANSACTION'])
    assert.equal(await balance(v2, 'users:1'), 0n)
  })
})

test('SDK createBulk: atomic rolls everything back on a failure; continueOnFailure applies the rest; atomic+parallel is refused', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    const good: V2BulkElement = { action: 'CREATE_TRANSACTION', data: { postings: [posting('world', 'users:1', 10n)], metadata: {} } }
    const bad: V2BulkElement = { action: 'CREATE_TRANSACTION', data: { postings: [posting('users:9', 'users:1', 10n)], metadata: {} } }

    const atomic = await v2.createBulk({ ledger: 'main', atomic: true, requestBody: [good, bad, good] })
    assert.equal(atomic.statusCode, 400)
    const atomicBody = present(atomic.v2BulkResponse, 'atomic')
    assert.equal(atomicBody.errorCode, 'INSUFFICIENT_FUND')
    assert.ok((atomicBody.data ?? []).some((result) => result.responseType === 'ERROR' && result.errorCode === 'INSUFFICIENT_FUND'))
    assert.equal(await balance(v2, 'users:1'), 0n, 'nothing applied')

    const continued = await v2.createBulk({ ledger: 'main', continueOnFailure: true, requestBody: [good, bad, good] })
    assert.equal(continued.statusCode, 400, 'v2 answers 400 as soon as one element failed')
    const types = (present(continued.v2BulkResponse, 'continued').data ?? []).map((result) => result.responseType)
    assert.deepEqual(types, ['CREATE_TRANSACTION', 'ERROR', 'CREATE_TRANSACTION'])
    assert.equal(await balance(v2, 'users:1'), 20n)

    const parallel = await v2.createBulk({ ledger: 'main', parallel: true, requestBody: [good, good] })
    assert.equal(parallel.statusCode, 200)
    assert.equal(await balance(v2, 'users:1'), 40n)
    await rejectsWithV2Error(v2.createBulk({ ledger: 'main', atomic: true, parallel: true, requestBody: [good] }), { status: 412, errorCode: 'VALIDATION' })
    await rejectsWithV2Error(v2.createBulk({ ledger: 'missing', requestBody: [good] }), { status: 404, errorCode: 'LEDGER_NOT_FOUND' })
  })
})

test('SDK createBulk: more elements than the configured limit is BULK_SIZE_EXCEEDED (a 400, which the SDK returns as a bulk response)', async () => {
  await withServer(
    async ({ v2 }) => {
      await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
      const element: V2BulkElement = { action: 'ADD_METADATA', data: { targetType: 'ACCOUNT', targetId: 'users:1', metadata: { a: '1' } } }
      // v2 documents 400 on _bulk as a bulk response, so the SDK resolves with it instead of throwing.
      const refused = await v2.createBulk({ ledger: 'main', requestBody: [element, element, element] })
      assert.equal(refused.statusCode, 400)
      assert.equal(present(refused.v2BulkResponse, 'refused').errorCode, 'BULK_SIZE_EXCEEDED')
      assert.equal((await v2.createBulk({ ledger: 'main', requestBody: [element, element] })).statusCode, 200)
    },
    { bulkElementsMax: 2 },
  )
})

test('SDK listLogs: v2 log types and payloads, newest first, hashes, cursor paging', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    await v2.createTransaction({ ledger: 'main', v2PostTransaction: { postings: [posting('world', 'users:1', 5n)], metadata: {}, accountMetadata: { 'users:1': { a: '1' } } } })
    await v2.addMetadataToAccount({ ledger: 'main', address: 'users:1', requestBody: { b: '2' } })
    await v2.deleteAccountMetadata({ ledger: 'main', address: 'users:1', key: 'b' })
    await v2.addMetadataOnTransaction({ ledger: 'main', id: 0n, requestBody: { c: '3' } })
    await v2.revertTransaction({ ledger: 'main', id: 0n })

    const logs = present((await v2.listLogs({ ledger: 'main' })).v2LogsCursorResponse, 'logs').cursor.data
    assert.deepEqual(logs.map((log) => log.type), ['REVERTED_TRANSACTION', 'SET_METADATA', 'DELETE_METADATA', 'SET_METADATA', 'NEW_TRANSACTION'])
    assert.deepEqual(logs.map((log) => log.id), [4n, 3n, 2n, 1n, 0n])
    for (const log of logs) {
      assert.match(log.hash, /^[A-Za-z0-9+/]{43}=$/, 'base64 SHA-256')
      assert.ok(log.date instanceof Date)
    }
    assert.equal(new Set(logs.map((log) => log.hash)).size, logs.length)
    const created = logs[4]
    assert.ok(created !== undefined)
    const payload = created.data as { transaction?: { id?: number | bigint }; accountMetadata?: Record<string, Record<string, string>> }
    assert.deepEqual(payload.accountMetadata, { 'users:1': { a: '1' } })
    const deleted = logs[2]?.data as { targetType?: string; targetId?: unknown; key?: string }
    assert.equal(deleted.targetType, 'ACCOUNT')
    assert.equal(deleted.key, 'b')

    const first = present((await v2.listLogs({ ledger: 'main', pageSize: 2 })).v2LogsCursorResponse, 'first').cursor
    assert.deepEqual(first.data.map((log) => log.id), [4n, 3n])
    const second = present((await v2.listLogs({ ledger: 'main', cursor: present(first.next, 'next') })).v2LogsCursorResponse, 'second').cursor
    assert.deepEqual(second.data.map((log) => log.id), [2n, 1n])
    await rejectsWithV2Error(v2.listLogs({ ledger: 'missing' }), { status: 404, errorCode: 'LEDGER_NOT_FOUND' })
  })
})
