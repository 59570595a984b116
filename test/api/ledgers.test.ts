import { test } from 'node:test'
import assert from 'node:assert/strict'
import { asArray, asObject, assertError, assertStatus, at, createLedger, openTestApi, show } from '../support/api.ts'

test('system routes: /_/info, /_/healthz, /_/readyz', async () => {
  const api = await openTestApi()
  try {
    const info = await api.request('GET', '/_/info')
    assertStatus(info, 200)
    assert.equal(at(info.body, 'server'), 'tally')
    assert.equal(typeof at(info.body, 'version'), 'string')
    assert.deepEqual(at(info.body, 'experimentalFeatures'), [])
    for (const route of ['/_/healthz', '/_/readyz']) {
      const health = await api.request('GET', route)
      assertStatus(health, 200)
      assert.equal(at(health.body, 'status'), 'ok')
      assert.equal(typeof at(health.body, 'appliedIndex'), 'bigint')
    }
    await createLedger(api, 'main')
    const after = await api.request('GET', '/_/healthz')
    assert.ok((at(after.body, 'appliedIndex') as bigint) >= 1n, after.text)
  } finally {
    await api.close()
  }
})

test('POST /v2/{ledger}: 204, LEDGER_ALREADY_EXISTS, invalid name, bad body', async () => {
  const api = await openTestApi()
  try {
    assertStatus(await api.request('POST', '/v2/main'), 204)
    assertStatus(await api.request('POST', '/v2/with-body', { metadata: { owner: 'ops' }, features: { MOVES_HISTORY: 'ON' } }), 204)
    assertStatus(await api.request('POST', '/v2/empty_object', {}), 204)
    assertError(await api.request('POST', '/v2/main'), 400, 'LEDGER_ALREADY_EXISTS', 'main')
    assertError(await api.request('POST', '/v2/main', {}), 400, 'LEDGER_ALREADY_EXISTS')
    assertError(await api.request('POST', '/v2/bad.name'), 400, 'VALIDATION', 'ledger')
    assertError(await api.request('POST', `/v2/${'x'.repeat(64)}`), 400, 'VALIDATION', 'ledger')
    assertError(await api.request('POST', '/v2/arr', [1]), 400, 'VALIDATION', 'body')
    assertError(await api.request('POST', '/v2/meta', { metadata: { a: 1 } }), 400, 'VALIDATION', 'metadata["a"]')
    assertError(await api.request('POST', '/v2/bucket', { bucket: 'no spaces' }), 400, 'VALIDATION', 'bucket')
    assertError(await api.request('POST', '/v2/feat', { features: 'x' }), 400, 'VALIDATION', 'features')
    assertError(await api.request('POST', '/v2/broken', '{"metadata":'), 400, 'VALIDATION', 'malformed JSON')
    // None of the refused ledgers exist.
    for (const name of ['arr', 'meta', 'bucket', 'feat', 'broken']) assertError(await api.request('GET', `/v2/${name}`), 404, 'LEDGER_NOT_FOUND')
    const withBody = await api.request('GET', '/v2/with-body')
    assertStatus(withBody, 200)
    assert.deepEqual(at(withBody.body, 'data', 'metadata'), { owner: 'ops' })
    assert.deepEqual(at(withBody.body, 'data', 'features'), { MOVES_HISTORY: 'ON' })
  } finally {
    await api.close()
  }
})

test('GET /v2/{ledger} and /_info: 200 and LEDGER_NOT_FOUND', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'main')
    const ledger = await api.request('GET', '/v2/main')
    assertStatus(ledger, 200)
    assert.equal(at(ledger.body, 'data', 'name'), 'main')
    assert.equal(at(ledger.body, 'data', 'bucket'), '_default')
    assert.deepEqual(at(ledger.body, 'data', 'metadata'), {})
    assert.ok(!Number.isNaN(Date.parse(at(ledger.body, 'data', 'addedAt') as string)))
    assertError(await api.request('GET', '/v2/nope'), 404, 'LEDGER_NOT_FOUND', 'nope')
    assertError(await api.request('GET', '/v2/bad.name'), 400, 'VALIDATION')
    const info = await api.request('GET', '/v2/main/_info')
    assertStatus(info, 200)
    assert.equal(at(info.body, 'data', 'name'), 'main')
    assert.deepEqual(at(info.body, 'data', 'storage', 'migrations'), [])
    assertError(await api.request('GET', '/v2/nope/_info'), 404, 'LEDGER_NOT_FOUND')
  } finally {
    await api.close()
  }
})

test('GET /v2: list ledgers with paging, bad pageSize and cursor', async () => {
  const api = await openTestApi()
  try {
    const empty = await api.request('GET', '/v2')
    assertStatus(empty, 200)
    assert.deepEqual(at(empty.body, 'cursor', 'data'), [])
    assert.equal(at(empty.body, 'cursor', 'hasMore'), false)
    const names = ['l0', 'l1', 'l2', 'l3', 'l4', 'l5', 'l6']
    for (const name of names) await createLedger(api, name)
    const seen: string[] = []
    let url = '/v2?pageSize=3'
    let pages = 0
    for (;;) {
      const reply = await api.request('GET', url)
      assertStatus(reply, 200)
      const cursor = asObject(at(reply.body, 'cursor'))
      assert.equal(cursor.pageSize, 3n)
      pages++
      for (const ledger of asArray(cursor.data)) seen.push(at(ledger, 'name') as string)
      if (typeof cursor.next !== 'string') {
        assert.equal(cursor.hasMore, false)
        break
      }
      assert.equal(cursor.hasMore, true)
      url = `/v2?cursor=${cursor.next}`
    }
    assert.equal(pages, 3)
    assert.deepEqual(seen, names, show(seen))
    assertError(await api.request('GET', '/v2?pageSize=0'), 400, 'VALIDATION', 'pageSize')
    assertError(await api.request('GET', '/v2?pageSize=1001'), 400, 'VALIDATION', 'pageSize')
    assertError(await api.request('GET', '/v2?pageSize=abc'), 400, 'VALIDATION', 'pageSize')
    assertError(await api.request('GET', '/v2?cursor=not-a-cursor'), 400, 'VALIDATION', 'cursor')
  } finally {
    await api.close()
  }
})

test('PUT /v2/{ledger}/metadata and DELETE /v2/{ledger}/metadata/{key}', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'main')
    assertStatus(await api.request('PUT', '/v2/main/metadata', { a: '1', b: '2' }), 204)
    assertStatus(await api.request('PUT', '/v2/main/metadata', { b: 'two', c: '3' }), 204)
    assert.deepEqual(at((await api.request('GET', '/v2/main')).body, 'data', 'metadata'), { a: '1', b: 'two', c: '3' })
    assertStatus(await api.request('DELETE', '/v2/main/metadata/b'), 204)
    assertStatus(await api.request('DELETE', '/v2/main/metadata/never-set'), 204)
    assert.deepEqual(at((await api.request('GET', '/v2/main')).body, 'data', 'metadata'), { a: '1', c: '3' })
    assertError(await api.request('PUT', '/v2/main/metadata', { a: 1 }), 400, 'VALIDATION', 'body["a"]')
    assertError(await api.request('PUT', '/v2/main/metadata', ['a']), 400, 'VALIDATION', 'body')
    assertError(await api.request('PUT', '/v2/main/metadata', '{"a":'), 400, 'VALIDATION', 'malformed JSON')
    assert.deepEqual(at((await api.request('GET', '/v2/main')).body, 'data', 'metadata'), { a: '1', c: '3' })
    assertError(await api.request('PUT', '/v2/nope/metadata', { a: '1' }), 404, 'LEDGER_NOT_FOUND')
    assertError(await api.request('DELETE', '/v2/nope/metadata/a'), 404, 'LEDGER_NOT_FOUND')
  } finally {
    await api.close()
  }
})

test('unknown routes are 404 NOT_FOUND, a wrong method on a known one 405; the /api/ledger prefix serves the same routes', async () => {
  const api = await openTestApi()
  try {
    assertError(await api.request('GET', '/nowhere'), 404, 'NOT_FOUND')
    assertError(await api.request('GET', '/v3/main'), 404, 'NOT_FOUND')
    assertError(await api.request('PATCH' as 'GET', '/v2/main'), 405, 'VALIDATION') // a known route, another method
    assertStatus(await api.request('GET', '/api/ledger/_/info'), 200)
    assertStatus(await api.request('POST', '/api/ledger/v2/gw'), 204)
    assertError(await api.request('POST', '/api/ledger/v2/gw'), 400, 'LEDGER_ALREADY_EXISTS')
    const direct = await api.request('GET', '/v2/gw')
    const prefixed = await api.request('GET', '/api/ledger/v2/gw')
    assertStatus(prefixed, 200)
    assert.equal(prefixed.text, direct.text)
    const posted = await api.request('POST', '/api/ledger/v2/gw/transactions', {
      postings: [{ source: 'world', destination: 'users:1', amount: 5, asset: 'USD' }],
    })
    assertStatus(posted, 200)
    const list = await api.request('GET', '/api/ledger/v2/gw/transactions')
    assertStatus(list, 200)
    assert.equal(asArray(at(list.body, 'cursor', 'data')).length, 1)
    const account = await api.request('GET', '/api/ledger/v2/gw/accounts/users:1?expand=volumes')
    assert.equal(at(account.body, 'data', 'volumes', 'USD', 'balance'), 5n)
    assertError(await api.request('GET', '/api/ledger/v2/nope/logs'), 404, 'LEDGER_NOT_FOUND')
    const bulk = await api.request('POST', '/api/ledger/v2/gw/_bulk', [
      { action: 'ADD_METADATA', data: { targetType: 'ACCOUNT', targetId: 'users:1', metadata: { k: 'v' } } },
    ])
    assertStatus(bulk, 200)
    assertError(await api.request('GET', '/api/ledger/v3/gw'), 404, 'NOT_FOUND')
  } finally {
    await api.close()
  }
})
