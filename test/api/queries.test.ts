import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { Json } from '../../src/domain/index.ts'
import { parseJson } from '../../src/domain/index.ts'
import { parseFilter, matches } from '../../src/query/index.ts'
import type { TestApi, JsonObject } from '../support/api.ts'
import { openTestApi, asArray, asObject, at, createLedger, postTransaction, walkForward, assertError, withCursor } from '../support/api.ts'

/** A small ledger: users with tiers and balances in two assets, merchants, reverts, references. */
async function seed(api: TestApi): Promise<void> {
  await createLedger(api, 'q')
  for (let i = 0; i < 12; i++) {
    await postTransaction(api, 'q', [{ source: 'world', destination: `users:${i}`, amount: 10 * i, asset: 'USD' }], { metadata: { n: String(i) }, reference: `fund-${i}` })
    if (i % 3 === 0) await postTransaction(api, 'q', [{ source: 'world', destination: `users:${i}`, amount: i + 1, asset: 'EUR' }])
    await api.request('POST', `/v2/q/accounts/users:${i}/metadata`, { tier: i % 2 === 0 ? 'gold' : 'silver' })
  }
  for (let i = 0; i < 4; i++) await postTransaction(api, 'q', [{ source: `users:${i + 4}`, destination: `merchants:${i}:main`, amount: 5 + i, asset: 'USD' }])
  await api.request('POST', '/v2/q/transactions/3/revert', {})
}

const accountFilters: fc.Arbitrary<Json> = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.constantFrom('users:', 'merchants:', 'users:3', 'users:...', 'merchants::main', 'world', 'nobody').map((address) => ({ $match: { address } })),
    fc.tuple(fc.constantFrom('$gt', '$lt', '$gte', '$lte'), fc.constantFrom('balance[USD]', 'balance[EUR]', 'balance'), fc.integer({ min: -100, max: 120 })).map(([op, field, value]) => ({ [op]: { [field]: value } })),
    fc.constantFrom('gold', 'silver', 'none').map((tier) => ({ $match: { 'metadata[tier]': tier } })),
    fc.constant({ $exists: { metadata: 'tier' } }),
  ),
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf'),
    fc.array(tie('node'), { minLength: 1, maxLength: 3 }).map((items) => ({ $and: items })),
    fc.array(tie('node'), { minLength: 1, maxLength: 3 }).map((items) => ({ $or: items })),
    tie('node').map((item) => ({ $not: item })),
  ),
})).node as fc.Arbitrary<Json>

const transactionFilters: fc.Arbitrary<Json> = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.tuple(fc.constantFrom('account', 'source', 'destination'), fc.constantFrom('users:4', 'world', 'users:', 'merchants:...', 'merchants:1:main')).map(([field, value]) => ({ $match: { [field]: value } })),
    fc.tuple(fc.constantFrom('$gt', '$lt', '$gte', '$lte'), fc.integer({ min: -1, max: 25 })).map(([op, id]) => ({ [op]: { id } })),
    fc.constantFrom('3', '7', '11').map((n) => ({ $match: { 'metadata[n]': n } })),
    fc.boolean().map((reverted) => ({ $match: { reverted } })),
    fc.constantFrom('fund-1', 'fund-9').map((reference) => ({ $match: { reference } })),
  ),
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf'),
    fc.array(tie('node'), { minLength: 1, maxLength: 3 }).map((items) => ({ $and: items })),
    fc.array(tie('node'), { minLength: 1, maxLength: 3 }).map((items) => ({ $or: items })),
  ),
})).node as fc.Arbitrary<Json>

function addresses(items: Json[]): string[] {
  return items.map((item) => at(item, 'address') as string)
}

test('filters: list endpoints (scans, account prefixes, the account index, paging) agree with brute-force evaluation (property)', async () => {
  const api = await openTestApi()
  try {
    await seed(api)
    const allAccounts = (await walkForward(api, '/v2/q/accounts?pageSize=100&expand=volumes')).items
    const accountRecords = allAccounts.map((item) => {
      const account = asObject(item)
      const balances = new Map<string, bigint>()
      for (const [asset, volumes] of Object.entries(asObject(account.volumes))) balances.set(asset, at(volumes, 'balance') as bigint)
      return { address: account.address as string, metadata: account.metadata as Record<string, string>, balances, firstUsage: account.firstUsage as string, insertionDate: account.insertionDate as string, updatedAt: account.updatedAt as string }
    })
    const allTransactions = (await walkForward(api, '/v2/q/transactions?pageSize=100')).items.map((item) => asObject(item))
    await fc.assert(
      fc.asyncProperty(accountFilters, fc.integer({ min: 1, max: 5 }), async (filterJson, pageSize) => {
        const filter = parseFilter('accounts', parseJson(JSON.stringify(filterJson)))
        const expected = accountRecords.filter((record) => matches(filter, record)).map((record) => record.address)
        const viaBody = (await walkForward(api, `/v2/q/accounts?pageSize=${pageSize}`, filterJson)).items
        assert.deepEqual(addresses(viaBody), expected, `via body: ${JSON.stringify(filterJson)}`)
        const viaQuery = await api.request('GET', `/v2/q/accounts?pageSize=100&query=${encodeURIComponent(JSON.stringify(filterJson))}`)
        assert.deepEqual(addresses(asArray(at(viaQuery.body, 'cursor', 'data'))), expected)
        const head = await api.app.inject({ method: 'HEAD', url: '/v2/q/accounts', payload: JSON.stringify(filterJson), headers: { 'content-type': 'application/json' } })
        assert.equal(head.statusCode, 204)
        assert.equal(head.headers.count, String(expected.length))
      }),
      { numRuns: 60 },
    )
    await fc.assert(
      fc.asyncProperty(transactionFilters, fc.integer({ min: 1, max: 6 }), async (filterJson, pageSize) => {
        const filter = parseFilter('transactions', parseJson(JSON.stringify(filterJson)))
        const expected = allTransactions
          .filter((tx) => matches(filter, { ...(tx as never as { id: bigint }), postings: tx.postings, metadata: tx.metadata, reverted: tx.reverted, timestamp: tx.timestamp, insertedAt: tx.insertedAt, reference: tx.reference } as never))
          .map((tx) => tx.id)
        const walked = await walkForward(api, `/v2/q/transactions?pageSize=${pageSize}`, filterJson)
        const got = walked.items.map((tx) => at(tx, 'id'))
        assert.deepEqual(got, expected)
        // Every page but the last is full (a page that leaves rows out reads on until it has its size), and no page follows the last item.
        for (const page of walked.pages.slice(0, -1)) assert.equal(asArray(page.data).length, pageSize)
        assert.equal(walked.pages.length, Math.max(1, Math.ceil(expected.length / pageSize)))
      }),
      { numRuns: 60 },
    )
  } finally {
    await api.close()
  }
})

test('filters: each operator and field, positive and negative, and precise 400s', async () => {
  const api = await openTestApi()
  try {
    await seed(api)
    const list = async (resource: string, filter: Json): Promise<Json[]> => {
      const reply = await api.request('GET', `/v2/q/${resource}?pageSize=100`, filter)
      assert.equal(reply.status, 200, reply.text)
      return asArray(at(reply.body, 'cursor', 'data'))
    }
    assert.deepEqual(addresses(await list('accounts', { $match: { address: 'users:1' } })), ['users:1'])
    assert.deepEqual(addresses(await list('accounts', { $match: { address: 'merchants::main' } })), ['merchants:0:main', 'merchants:1:main', 'merchants:2:main', 'merchants:3:main'])
    assert.equal((await list('accounts', { $match: { address: 'users:' } })).length, 12)
    assert.deepEqual(addresses(await list('accounts', { $gt: { 'balance[EUR]': 7 } })), ['users:9'])
    assert.deepEqual(addresses(await list('accounts', { $lt: { balance: 0 } })), ['world'])
    assertError(await api.request('GET', '/v2/q/accounts', { $in: { address: ['users:2'] } }), 400, 'VALIDATION', '$in')
    assert.equal((await list('accounts', { $exists: { metadata: 'tier' } })).length, 12)
    assert.equal((await list('accounts', { $not: { $exists: { metadata: 'tier' } } })).length, 5)
    assert.deepEqual(addresses(await list('accounts', { $and: [{ $match: { 'metadata[tier]': 'gold' } }, { $gte: { 'balance[USD]': 100 } }] })), ['users:10'])
    const byAccount = await list('transactions', { $match: { account: 'users:4' } })
    assert.deepEqual(byAccount.map((tx) => at(tx, 'id')), [16n, 6n])
    assert.deepEqual((await list('transactions', { $match: { source: 'users:4' } })).map((tx) => at(tx, 'id')), [16n])
    assert.deepEqual((await list('transactions', { $match: { destination: 'users:4' } })).map((tx) => at(tx, 'id')), [6n])
    // Pages of one over the account's index: only a lone `$match` on account (no pit) is the index itself; source, destination and pit still filter its rows.
    const walkIds = async (url: string, filter: Json) => {
      const walked = await walkForward(api, url, filter)
      return { ids: walked.items.map((tx) => at(tx, 'id')), sizes: walked.pages.map((page) => asArray(page.data).length) }
    }
    assert.deepEqual(await walkIds('/v2/q/transactions?pageSize=1', { $match: { account: 'users:4' } }), { ids: [16n, 6n], sizes: [1, 1] })
    assert.deepEqual(await walkIds('/v2/q/transactions?pageSize=1', { $match: { source: 'users:4' } }), { ids: [16n], sizes: [1] })
    assert.deepEqual(await walkIds('/v2/q/transactions?pageSize=1', { $match: { destination: 'users:4' } }), { ids: [6n], sizes: [1] })
    const olderTimestamp = at(byAccount[1] as Json, 'timestamp') as string
    assert.ok(olderTimestamp < (at(byAccount[0] as Json, 'timestamp') as string), 'the fixture dates transaction 6 before 16')
    assert.deepEqual(await walkIds(`/v2/q/transactions?pageSize=1&pit=${encodeURIComponent(olderTimestamp)}`, { $match: { account: 'users:4' } }), { ids: [6n], sizes: [1] })
    assert.deepEqual((await list('transactions', { $match: { reverted: true } })).map((tx) => at(tx, 'id')), [3n])
    assert.deepEqual((await list('transactions', { $match: { reference: 'fund-9' } })).map((tx) => at(tx, 'id')), [12n])
    assert.deepEqual((await list('transactions', { $and: [{ $gte: { id: 5 } }, { $lt: { id: 7 } }] })).map((tx) => at(tx, 'id')), [6n, 5n])
    assert.deepEqual((await list('logs', { $match: { type: 'REVERTED_TRANSACTION' } })).length, 1)
    assert.ok((await list('logs', { $lt: { id: 3 } })).every((log) => (at(log, 'id') as bigint) < 3n))

    assertError(await api.request('GET', '/v2/q/accounts', { $gt: { nope: 1 } }), 400, 'VALIDATION', 'nope')
    assertError(await api.request('GET', '/v2/q/accounts', { $match: { address: 'a b' } }), 400, 'VALIDATION', 'address')
    assertError(await api.request('GET', '/v2/q/transactions', { $lt: { id: 'x' } }), 400, 'VALIDATION', 'id')
    assertError(await api.request('GET', '/v2/q/accounts', { $bogus: {} }), 400, 'VALIDATION', '$bogus')
    assertError(await api.request('GET', '/v2/q/accounts?query=%7Bnot-json'), 400, 'VALIDATION', 'query')
  } finally {
    await api.close()
  }
})

test('paging: walking every page forward and back returns each item exactly once while writes continue', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'p')
    for (let i = 0; i < 23; i++) await postTransaction(api, 'p', [{ source: 'world', destination: `a:${i}`, amount: 1, asset: 'USD' }])
    const forward: Json[] = []
    let page = asObject(at((await api.request('GET', '/v2/p/transactions?pageSize=4')).body, 'cursor'))
    const pages: JsonObject[] = [page]
    forward.push(...asArray(page.data))
    let writes = 0
    while (page.hasMore === true) {
      await postTransaction(api, 'p', [{ source: 'world', destination: `late:${writes++}`, amount: 1, asset: 'USD' }])
      page = asObject(at((await api.request('GET', withCursor('/v2/p/transactions', page.next as string))).body, 'cursor'))
      pages.push(page)
      forward.push(...asArray(page.data))
    }
    const ids = forward.map((tx) => at(tx, 'id') as bigint)
    assert.deepEqual(ids, Array.from({ length: 23 }, (_, i) => BigInt(22 - i)), 'every transaction present at the start, once, in order; later ones do not shift pages')
    const backward: Json[] = []
    let back = pages[pages.length - 1] as JsonObject
    backward.unshift(...asArray(back.data))
    while (typeof back.previous === 'string') {
      await postTransaction(api, 'p', [{ source: 'world', destination: `later:${writes++}`, amount: 1, asset: 'USD' }])
      back = asObject(at((await api.request('GET', withCursor('/v2/p/transactions', back.previous))).body, 'cursor'))
      backward.unshift(...asArray(back.data))
    }
    const backIds = backward.map((tx) => at(tx, 'id') as bigint)
    assert.equal(new Set(backIds).size, backIds.length, 'no item twice walking back')
    assert.deepEqual(backIds.slice(backIds.length - 23), ids, 'walking back reaches every item, plus the ones written meanwhile at the top')
  } finally {
    await api.close()
  }
})

test('aggregate balances and volumes: filters, pit, insertion dates, windows, groupBy', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'agg')
    await postTransaction(api, 'agg', [{ source: 'world', destination: 'users:1:main', amount: 100, asset: 'USD' }], { timestamp: '2026-01-01T00:00:00Z' })
    await postTransaction(api, 'agg', [{ source: 'world', destination: 'users:2:main', amount: 50, asset: 'USD' }], { timestamp: '2026-02-01T00:00:00Z' })
    await postTransaction(api, 'agg', [{ source: 'world', destination: 'users:2:savings', amount: 7, asset: 'EUR' }], { timestamp: '2026-03-01T00:00:00Z' })
    await postTransaction(api, 'agg', [{ source: 'users:1:main', destination: 'shop', amount: 30, asset: 'USD' }], { timestamp: '2026-04-01T00:00:00Z' })
    const aggregate = async (url: string, filter?: Json) => asObject(at((await api.request('GET', url, filter)).body, 'data'))
    assert.deepEqual(await aggregate('/v2/agg/aggregate/balances'), { EUR: 0n, USD: 0n }, 'Σ over a whole ledger is 0')
    assert.deepEqual(await aggregate('/v2/agg/aggregate/balances', { $match: { address: 'users:' } }), {}, 'users: matches two-segment addresses only')
    assert.deepEqual(await aggregate('/v2/agg/aggregate/balances', { $match: { address: 'users:...' } }), { EUR: 7n, USD: 120n })
    assert.deepEqual(await aggregate('/v2/agg/aggregate/balances?pit=2026-02-15T00:00:00Z', { $match: { address: 'users:...' } }), { USD: 150n })
    const volumes = async (url: string, filter?: Json) => asArray(at((await api.request('GET', url, filter)).body, 'cursor', 'data')).map((row) => asObject(row))
    const all = await volumes('/v2/agg/volumes?pageSize=100')
    assert.deepEqual(all.find((row) => row.account === 'users:1:main'), { account: 'users:1:main', asset: 'USD', input: 100n, output: 30n, balance: 70n })
    const window = await volumes('/v2/agg/volumes?pageSize=100&startTime=2026-01-15T00:00:00Z&endTime=2026-03-15T00:00:00Z', { $match: { address: 'users:...' } })
    assert.deepEqual(window.map((row) => [row.account, row.asset, row.balance]), [['users:2:main', 'USD', 50n], ['users:2:savings', 'EUR', 7n]])
    const grouped = await volumes('/v2/agg/volumes?pageSize=100&groupBy=1', { $match: { address: 'users:...' } })
    assert.deepEqual(grouped.map((row) => [row.account, row.asset, row.input, row.output]), [['users', 'EUR', 7n, 0n], ['users', 'USD', 150n, 30n]])
    const paged = await walkForward(api, '/v2/agg/volumes?pageSize=2')
    assert.equal(paged.items.length, all.length)
    assertError(await api.request('GET', '/v2/agg/volumes?groupBy=x'), 400, 'VALIDATION', 'groupBy')
    assertError(await api.request('GET', '/v2/agg/aggregate/balances?pit=nope'), 400, 'VALIDATION', 'pit')
  } finally {
    await api.close()
  }
})

test('ordering: sort and reverse on every list, timestamp order (order=effective) on transactions; other orders are refused precisely', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'o')
    for (let i = 0; i < 5; i++) await postTransaction(api, 'o', [{ source: 'world', destination: `a:${i}`, amount: 1, asset: 'USD' }])
    const ids = async (url: string) => (await walkForward(api, url)).items.map((item) => at(item, 'id'))
    assert.deepEqual(await ids('/v2/o/transactions?pageSize=2'), [4n, 3n, 2n, 1n, 0n])
    assert.deepEqual(await ids('/v2/o/transactions?pageSize=2&reverse=true'), [0n, 1n, 2n, 3n, 4n])
    assert.deepEqual(await ids('/v2/o/transactions?pageSize=2&sort=id:asc'), [0n, 1n, 2n, 3n, 4n])
    assert.deepEqual(await ids('/v2/o/transactions?pageSize=2&sort=id:asc&reverse=true'), [4n, 3n, 2n, 1n, 0n])
    assert.deepEqual(await ids('/v2/o/logs?pageSize=2&sort=id:asc'), [0n, 1n, 2n, 3n, 4n])
    const accounts = (await walkForward(api, '/v2/o/accounts?pageSize=2&sort=address:desc')).items.map((item) => at(item, 'address'))
    assert.deepEqual(accounts, ['world', 'a:4', 'a:3', 'a:2', 'a:1', 'a:0'])
    // Backdate one transaction: timestamp order differs from id order.
    await postTransaction(api, 'o', [{ source: 'world', destination: 'early', amount: 1, asset: 'USD' }], { timestamp: '2020-01-01T00:00:00Z' })
    assert.deepEqual(await ids('/v2/o/transactions?pageSize=2&sort=timestamp:asc'), [5n, 0n, 1n, 2n, 3n, 4n])
    assert.deepEqual(await ids('/v2/o/transactions?pageSize=2&order=effective'), [4n, 3n, 2n, 1n, 0n, 5n])
    assert.deepEqual(await ids('/v2/o/transactions?pageSize=4&sort=timestamp:desc&reverse=true'), [5n, 0n, 1n, 2n, 3n, 4n])
    assertError(await api.request('GET', '/v2/o/transactions?sort=reference:asc'), 400, 'VALIDATION', 'ordered by id or timestamp')
    assertError(await api.request('GET', '/v2/o/accounts?sort=balance:asc'), 400, 'VALIDATION', 'ordered by address')
    assertError(await api.request('GET', '/v2/o/transactions?sort=id:sideways'), 400, 'VALIDATION', 'sort')
    assertError(await api.request('GET', '/v2/o/transactions?order=inserted'), 400, 'VALIDATION', 'order')
    assertError(await api.request('GET', '/v2/o/transactions?reverse=maybe'), 400, 'VALIDATION', 'reverse')
  } finally {
    await api.close()
  }
})
