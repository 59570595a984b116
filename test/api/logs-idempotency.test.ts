import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  asArray,
  asObject,
  asString,
  assertError,
  assertStatus,
  at,
  balanceOf,
  createLedger,
  ledgerSnapshot,
  openTestApi,
  postTransaction,
  transactionBody,
  walkForward,
  withCursor,
} from '../support/api.ts'
import type { JsonObject } from '../support/api.ts'

test('GET logs: every log type, descending ids, hashes, paging, errors', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'main')
    await postTransaction(api, 'main', [{ source: 'world', destination: 'users:1', amount: 5, asset: 'USD' }], { metadata: { m: '1' } })
    assertStatus(await api.request('POST', '/v2/main/transactions/0/metadata', { k: 'v' }), 204)
    assertStatus(await api.request('POST', '/v2/main/accounts/users:1/metadata', { a: 'b' }), 204)
    assertStatus(await api.request('DELETE', '/v2/main/transactions/0/metadata/k'), 204)
    assertStatus(await api.request('DELETE', '/v2/main/accounts/users:1/metadata/a'), 204)
    assertStatus(await api.request('POST', '/v2/main/transactions/0/revert'), 201)
    // Ledger metadata has no v2 log type: it adds no log.
    assertStatus(await api.request('PUT', '/v2/main/metadata', { x: 'y' }), 204)

    const reply = await api.request('GET', '/v2/main/logs')
    assertStatus(reply, 200)
    const logs = asArray(at(reply.body, 'cursor', 'data')).map((log) => asObject(log))
    assert.deepEqual(logs.map((log) => log.id), [5n, 4n, 3n, 2n, 1n, 0n])
    assert.deepEqual(logs.map((log) => log.type), ['REVERTED_TRANSACTION', 'DELETE_METADATA', 'DELETE_METADATA', 'SET_METADATA', 'SET_METADATA', 'NEW_TRANSACTION'])
    const hashes = logs.map((log) => asString(log.hash, 'hash'))
    for (const hash of hashes) assert.match(hash, /^[A-Za-z0-9+/]{43}=$/)
    assert.equal(new Set(hashes).size, hashes.length)
    for (const log of logs) assert.ok(!Number.isNaN(Date.parse(asString(log.date))))
    const byId = (id: number): JsonObject => logs.find((log) => log.id === BigInt(id)) as JsonObject
    assert.equal(at(byId(0), 'data', 'transaction', 'id'), 0n)
    assert.deepEqual(at(byId(0), 'data', 'transaction', 'postings'), [{ source: 'world', destination: 'users:1', amount: 5n, asset: 'USD' }])
    assert.deepEqual(byId(1).data, { targetType: 'TRANSACTION', targetId: 0n, metadata: { k: 'v' } })
    assert.deepEqual(byId(2).data, { targetType: 'ACCOUNT', targetId: 'users:1', metadata: { a: 'b' } })
    assert.deepEqual(byId(3).data, { targetType: 'TRANSACTION', targetId: 0n, key: 'k' })
    assert.deepEqual(byId(4).data, { targetType: 'ACCOUNT', targetId: 'users:1', key: 'a' })
    assert.equal(at(byId(5), 'data', 'revertedTransactionID'), 0n)
    assert.equal(at(byId(5), 'data', 'transaction', 'id'), 1n)

    // Paging through logs: each exactly once, descending.
    const paged = await walkForward(api, '/v2/main/logs?pageSize=2')
    assert.equal(paged.pages.length, 3)
    assert.deepEqual(paged.items.map((log) => at(log, 'id')), [5n, 4n, 3n, 2n, 1n, 0n])
    const lastPage = paged.pages[2] as JsonObject
    const back = await api.request('GET', withCursor('/v2/main/logs', asString(lastPage.previous)))
    assert.deepEqual(at(back.body, 'cursor', 'data'), paged.pages[1]?.data)

    assertError(await api.request('GET', '/v2/main/logs?pageSize=abc'), 400, 'VALIDATION', 'pageSize')
    assertError(await api.request('GET', '/v2/main/logs?cursor=@@'), 400, 'VALIDATION', 'cursor')
    assertError(await api.request('GET', '/v2/nope/logs'), 404, 'LEDGER_NOT_FOUND')
  } finally {
    await api.close()
  }
})

test('Idempotency-Key: replay returns the same body with Idempotency-Hit and applies nothing twice', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'main')
    await createLedger(api, 'other')
    const body = transactionBody([{ source: 'world', destination: 'users:1', amount: 2n ** 60n, asset: 'USD' }], { metadata: { order: '42' } })
    const first = await api.request('POST', '/v2/main/transactions', body, { 'Idempotency-Key': 'key-1' })
    assertStatus(first, 200)
    assert.equal(first.headers['idempotency-hit'], undefined)
    const snapshot = await ledgerSnapshot(api, 'main')
    for (let i = 0; i < 3; i++) {
      const replay = await api.request('POST', '/v2/main/transactions', body, { 'Idempotency-Key': 'key-1' })
      assertStatus(replay, 200)
      assert.equal(replay.headers['idempotency-hit'], 'true')
      assert.equal(replay.text, first.text)
    }
    assert.equal(await ledgerSnapshot(api, 'main'), snapshot)
    assert.equal(await balanceOf(api, 'main', 'users:1', 'USD'), 2n ** 60n)
    // The log records the key.
    const logs = await walkForward(api, '/v2/main/logs')
    assert.equal(logs.items.length, 1)
    assert.equal(at(logs.items[0], 'idempotencyKey'), 'key-1')

    // Same key, another body: 400 VALIDATION, nothing applied.
    const other = transactionBody([{ source: 'world', destination: 'users:1', amount: 1, asset: 'USD' }])
    assertError(await api.request('POST', '/v2/main/transactions', other, { 'Idempotency-Key': 'key-1' }), 400, 'VALIDATION', 'key-1')
    assert.equal(await ledgerSnapshot(api, 'main'), snapshot)
    // Keys are per ledger.
    const elsewhere = await api.request('POST', '/v2/other/transactions', body, { 'Idempotency-Key': 'key-1' })
    assertStatus(elsewhere, 200)
    assert.equal(elsewhere.headers['idempotency-hit'], undefined)
    // A refused request does not consume its key.
    const overdraw = transactionBody([{ source: 'users:1', destination: 'users:2', amount: 2n ** 60n + 1n, asset: 'USD' }])
    assertError(await api.request('POST', '/v2/main/transactions', overdraw, { 'Idempotency-Key': 'key-2' }), 400, 'INSUFFICIENT_FUND')
    await postTransaction(api, 'main', [{ source: 'world', destination: 'users:1', amount: 1, asset: 'USD' }])
    const retried = await api.request('POST', '/v2/main/transactions', overdraw, { 'Idempotency-Key': 'key-2' })
    assertStatus(retried, 200)
    assert.equal(retried.headers['idempotency-hit'], undefined)
    assertError(await api.request('POST', '/v2/main/transactions', other, { 'Idempotency-Key': 'k'.repeat(257) }), 400, 'VALIDATION', 'Idempotency-Key')
  } finally {
    await api.close()
  }
})

test('Idempotency-Key on revert and metadata routes', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'main')
    await postTransaction(api, 'main', [{ source: 'world', destination: 'users:1', amount: 5, asset: 'USD' }])
    const key = { 'Idempotency-Key': 'revert-0' }
    const revert = await api.request('POST', '/v2/main/transactions/0/revert', undefined, key)
    assertStatus(revert, 201)
    const replay = await api.request('POST', '/v2/main/transactions/0/revert', undefined, key)
    assertStatus(replay, 201)
    assert.equal(replay.headers['idempotency-hit'], 'true')
    assert.equal(replay.text, revert.text)
    assertError(await api.request('POST', '/v2/main/transactions/0/revert'), 400, 'ALREADY_REVERT')

    const routes: [('POST' | 'PUT' | 'DELETE'), string, unknown, unknown][] = [
      ['POST', '/v2/main/transactions/0/metadata', { a: '1' }, { a: '2' }],
      ['POST', '/v2/main/accounts/users:1/metadata', { a: '1' }, { a: '2' }],
      ['PUT', '/v2/main/metadata', { a: '1' }, { a: '2' }],
    ]
    for (const [method, url, body, otherBody] of routes) {
      const headers = { 'Idempotency-Key': `meta ${url}` }
      assertStatus(await api.request(method, url, body, headers), 204)
      const before = await ledgerSnapshot(api, 'main')
      const again = await api.request(method, url, body, headers)
      assertStatus(again, 204)
      assert.equal(again.headers['idempotency-hit'], 'true', url)
      assert.equal(await ledgerSnapshot(api, 'main'), before, url)
      assertError(await api.request(method, url, otherBody, headers), 400, 'VALIDATION')
    }
    const deleteKey = { 'Idempotency-Key': 'delete-a' }
    assertStatus(await api.request('DELETE', '/v2/main/accounts/users:1/metadata/a', undefined, deleteKey), 204)
    const deleteAgain = await api.request('DELETE', '/v2/main/accounts/users:1/metadata/a', undefined, deleteKey)
    assertStatus(deleteAgain, 204)
    assert.equal(deleteAgain.headers['idempotency-hit'], 'true')
    // The same key on another route is another request.
    assertError(await api.request('DELETE', '/v2/main/transactions/0/metadata/a', undefined, deleteKey), 400, 'VALIDATION')
  } finally {
    await api.close()
  }
})

test('Idempotency-Key: concurrent requests with one key apply once and all answer the same transaction', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'main')
    const body = transactionBody([{ source: 'world', destination: 'users:1', amount: 3, asset: 'USD' }])
    const replies = await Promise.all(Array.from({ length: 8 }, () => api.request('POST', '/v2/main/transactions', body, { 'Idempotency-Key': 'same' })))
    for (const reply of replies) assertStatus(reply, 200)
    assert.equal(new Set(replies.map((reply) => at(reply.body, 'data', 'id'))).size, 1)
    assert.equal(replies.filter((reply) => reply.headers['idempotency-hit'] === undefined).length, 1, 'exactly one request applied it')
    assert.equal(await balanceOf(api, 'main', 'users:1', 'USD'), 3n)
    assert.equal((await walkForward(api, '/v2/main/transactions')).items.length, 1)
    // Concurrent conflicting bodies under one key: one applies, the others are VALIDATION.
    const conflicting = await Promise.all(
      [1, 2, 3, 4].map((amount) => api.request('POST', '/v2/main/transactions', transactionBody([{ source: 'world', destination: 'users:2', amount, asset: 'USD' }]), { 'Idempotency-Key': 'clash' })),
    )
    assert.equal(conflicting.filter((reply) => reply.status === 200).length, 1, conflicting.map((reply) => reply.text).join('\n'))
    for (const reply of conflicting) if (reply.status !== 200) assertError(reply, 400, 'VALIDATION')
    assert.equal((await walkForward(api, '/v2/main/transactions')).items.length, 2)
  } finally {
    await api.close()
  }
})
