import { test } from 'node:test'
import assert from 'node:assert/strict'
import { asArray, asObject, assertError, assertStatus, at, createLedger, ledgerSnapshot, openTestApi, postTransaction, walkForward } from '../support/api.ts'
import type { JsonObject } from '../support/api.ts'

test('GET accounts: list, expand=volumes, paging forward and back', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'main')
    const plain = await api.request('GET', '/v2/main/accounts')
    assertStatus(plain, 200)
    assert.deepEqual(at(plain.body, 'cursor', 'data'), [])
    for (let i = 0; i < 8; i++) await postTransaction(api, 'main', [{ source: 'world', destination: `users:${i}`, amount: 10 + i, asset: 'USD' }])
    await postTransaction(api, 'main', [{ source: 'users:0', destination: 'users:1', amount: 4, asset: 'USD' }, { source: 'world', destination: 'users:1', amount: 1, asset: 'EUR/2' }])

    const all = await walkForward(api, '/v2/main/accounts?pageSize=1000')
    const addresses = all.items.map((account) => at(account, 'address'))
    assert.deepEqual(addresses, ['users:0', 'users:1', 'users:2', 'users:3', 'users:4', 'users:5', 'users:6', 'users:7', 'world'])
    for (const account of all.items) {
      assert.equal(asObject(account).volumes, undefined, 'no volumes without expand')
      for (const field of ['insertionDate', 'updatedAt', 'firstUsage']) assert.equal(typeof at(account, field), 'string')
      assert.deepEqual(at(account, 'metadata'), {})
    }

    const expanded = await walkForward(api, '/v2/main/accounts?pageSize=4&expand=volumes')
    assert.equal(expanded.pages.length, 3)
    const byAddress = new Map(expanded.items.map((account) => [at(account, 'address') as string, asObject(at(account, 'volumes'))]))
    assert.equal(byAddress.size, 9)
    assert.deepEqual(byAddress.get('users:0'), { USD: { input: 10n, output: 4n, balance: 6n } })
    assert.deepEqual(byAddress.get('users:1'), { USD: { input: 15n, output: 0n, balance: 15n }, 'EUR/2': { input: 1n, output: 0n, balance: 1n } })
    assert.deepEqual(byAddress.get('world'), { USD: { input: 0n, output: 108n, balance: -108n }, 'EUR/2': { input: 0n, output: 1n, balance: -1n } })
    let sum = 0n
    for (const volumes of byAddress.values()) sum += (asObject(volumes.USD ?? { balance: 0n }).balance as bigint)
    assert.equal(sum, 0n)

    // Back from the last page through previous.
    let page = expanded.pages[expanded.pages.length - 1] as JsonObject
    const backward: JsonObject[] = [page]
    while (typeof page.previous === 'string') {
      const reply = await api.request('GET', `/v2/main/accounts?cursor=${page.previous}&expand=volumes`)
      assertStatus(reply, 200)
      page = asObject(at(reply.body, 'cursor'))
      backward.unshift(page)
    }
    assert.deepEqual(backward.flatMap((p) => asArray(p.data)), expanded.items)

    assertError(await api.request('GET', '/v2/main/accounts?pageSize=0'), 400, 'VALIDATION', 'pageSize')
    assertError(await api.request('GET', '/v2/main/accounts?cursor=%%%'), 400, 'VALIDATION', 'cursor')
    assertError(await api.request('GET', '/v2/nope/accounts'), 404, 'LEDGER_NOT_FOUND')
  } finally {
    await api.close()
  }
})

test('GET accounts/{address}: 200 with volumes and balance, 404, bad address 400', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'main')
    const amount = 2n ** 70n + 1n
    await postTransaction(api, 'main', [{ source: 'world', destination: 'users:alice', amount, asset: 'BTC/8' }], { accountMetadata: { 'users:alice': { tier: 'gold' } } })
    await postTransaction(api, 'main', [{ source: 'users:alice', destination: 'users:bob', amount: 1n, asset: 'BTC/8' }])
    const reply = await api.request('GET', '/v2/main/accounts/users:alice?expand=volumes')
    assertStatus(reply, 200)
    assert.ok(reply.text.includes(`"input":${amount}`), reply.text)
    const data = asObject(at(reply.body, 'data'))
    assert.equal(data.address, 'users:alice')
    assert.deepEqual(data.metadata, { tier: 'gold' })
    assert.deepEqual(data.volumes, { 'BTC/8': { input: amount, output: 1n, balance: amount - 1n } })
    const withoutVolumes = asObject(at((await api.request('GET', '/v2/main/accounts/users:alice')).body, 'data'))
    assert.equal(withoutVolumes.volumes, undefined)
    assertError(await api.request('GET', '/v2/main/accounts/users:nobody'), 404, 'NOT_FOUND', 'users:nobody')
    assertError(await api.request('GET', '/v2/main/accounts/bad%20address'), 400, 'VALIDATION', 'address')
    assertError(await api.request('GET', '/v2/main/accounts/users::x'), 400, 'VALIDATION', 'address')
    assertError(await api.request('GET', '/v2/nope/accounts/users:alice'), 404, 'LEDGER_NOT_FOUND')
    // A ledger found missing is not remembered as missing: once created, its accounts are read.
    assertError(await api.request('GET', '/v2/later/accounts/users:alice?expand=volumes'), 404, 'LEDGER_NOT_FOUND')
    assertError(await api.request('GET', '/v2/later/transactions', { $match: { account: 'users:alice' } }), 404, 'LEDGER_NOT_FOUND')
    await createLedger(api, 'later')
    assertError(await api.request('GET', '/v2/later/accounts/users:alice?expand=volumes'), 404, 'NOT_FOUND', 'users:alice')
    await postTransaction(api, 'later', [{ source: 'world', destination: 'users:alice', amount: 3, asset: 'USD' }])
    const later = asObject(at((await api.request('GET', '/v2/later/accounts/users:alice?expand=volumes')).body, 'data'))
    assert.deepEqual(later.volumes, { USD: { input: 3n, output: 0n, balance: 3n } })
    assert.equal(asArray(at((await api.request('GET', '/v2/later/transactions', { $match: { account: 'users:alice' } })).body, 'cursor', 'data')).length, 1)
  } finally {
    await api.close()
  }
})

test('account metadata: POST and DELETE are 204; unknown account 404 on delete; bad input 400', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'main')
    await postTransaction(api, 'main', [{ source: 'world', destination: 'users:1', amount: 1, asset: 'USD' }])
    assertStatus(await api.request('POST', '/v2/main/accounts/users:1/metadata', { a: '1', b: '2' }), 204)
    assert.deepEqual(at((await api.request('GET', '/v2/main/accounts/users:1')).body, 'data', 'metadata'), { a: '1', b: '2' })
    assertStatus(await api.request('DELETE', '/v2/main/accounts/users:1/metadata/a'), 204)
    assert.deepEqual(at((await api.request('GET', '/v2/main/accounts/users:1')).body, 'data', 'metadata'), { b: '2' })
    // Metadata on an account never used creates it (v2 behaviour), with no volumes.
    assertStatus(await api.request('POST', '/v2/main/accounts/users:new/metadata', { k: 'v' }), 204)
    const created = await api.request('GET', '/v2/main/accounts/users:new?expand=volumes')
    assertStatus(created, 200)
    assert.deepEqual(at(created.body, 'data', 'metadata'), { k: 'v' })
    assert.deepEqual(at(created.body, 'data', 'volumes'), {})

    const before = await ledgerSnapshot(api, 'main')
    assertError(await api.request('DELETE', '/v2/main/accounts/users:ghost/metadata/a'), 404, 'NOT_FOUND', 'users:ghost')
    assertError(await api.request('POST', '/v2/main/accounts/users:1/metadata', { a: 1 }), 400, 'VALIDATION', 'body["a"]')
    assertError(await api.request('POST', '/v2/main/accounts/users:1/metadata', '[]'), 400, 'VALIDATION', 'body')
    assertError(await api.request('POST', '/v2/main/accounts/users:1/metadata', '{"a"'), 400, 'VALIDATION', 'malformed JSON')
    assertError(await api.request('POST', '/v2/main/accounts/bad%20addr/metadata', { a: '1' }), 400, 'VALIDATION', 'address')
    assertError(await api.request('DELETE', '/v2/main/accounts/bad%20addr/metadata/a'), 400, 'VALIDATION', 'address')
    assertError(await api.request('POST', '/v2/nope/accounts/users:1/metadata', { a: '1' }), 404, 'LEDGER_NOT_FOUND')
    assertError(await api.request('DELETE', '/v2/nope/accounts/users:1/metadata/a'), 404, 'LEDGER_NOT_FOUND')
    assert.equal(await ledgerSnapshot(api, 'main'), before)
  } finally {
    await api.close()
  }
})
