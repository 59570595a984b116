import { test } from 'node:test'
import assert from 'node:assert/strict'
import { assertError, assertStatus, balanceOf, createLedger, openTestApi, postTransaction } from '../support/api.ts'
import type { TestApi } from '../support/api.ts'
import type { FastifyInstance } from 'fastify'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/index.ts'
import { parseJson } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'

/** Edges of what a request may say: amounts, balances at the 2^256 bound, dates, lengths, cursors. */

async function fresh(): Promise<TestApi> {
  const api = await openTestApi()
  await createLedger(api, 'main')
  return api
}

function bodyWithAmount(amountText: string): string {
  return `{"postings":[{"source":"world","destination":"users:1","amount":${amountText},"asset":"USD"}]}`
}

test('amounts are JSON integers: strings, decimals and exponents are 400 with a message saying why; nothing applied', async () => {
  const api = await fresh()
  try {
    for (const text of ['"100"', '"007"', '"0"', '"1"']) {
      assertError(await api.request('POST', '/v2/main/transactions', bodyWithAmount(text)), 400, 'VALIDATION', /postings\[0\]\.amount: .*a string.*JSON integer/)
    }
    for (const text of ['1e3', '100.0', '1E2', '1.0e2']) {
      assertError(await api.request('POST', '/v2/main/transactions', bodyWithAmount(text)), 400, 'VALIDATION', /postings\[0\]\.amount: .*decimal point or an exponent/)
    }
    assertError(await api.request('POST', '/v2/main/transactions', bodyWithAmount('1.5')), 400, 'VALIDATION', /postings\[0\]\.amount: 1\.5 is not a whole number/)
    assertError(await api.request('POST', '/v2/main/transactions', bodyWithAmount('-1')), 400, 'VALIDATION', /postings\[0\]\.amount: .*negative/)
    assertError(await api.request('POST', '/v2/main/transactions', bodyWithAmount(String(1n << 256n))), 400, 'VALIDATION', /2\^256 - 1/)
    assertStatus(await api.request('POST', '/v2/main/transactions', bodyWithAmount(String((1n << 256n) - 1n))), 200)
    assert.equal(await balanceOf(api, 'main', 'users:1', 'USD'), (1n << 256n) - 1n)
  } finally {
    await api.close()
  }
})

test('volumes never pass 2^256 - 1: the posting that would is refused (business 400), nothing of its transaction applied', async () => {
  const api = await fresh()
  const top = (1n << 256n) - 1n
  try {
    // world's output reaches the bound exactly, then one more unit is refused.
    await postTransaction(api, 'main', [{ source: 'world', destination: 'a', amount: top, asset: 'USD' }])
    const refused = await api.request(
      'POST',
      '/v2/main/transactions',
      `{"postings":[{"source":"world","destination":"c","amount":0,"asset":"USD"},{"source":"world","destination":"b","amount":1,"asset":"USD"}]}`,
    )
    assertError(refused, 400, 'VALIDATION', /world.*output.*2\^256 - 1/)
    assert.equal(await balanceOf(api, 'main', 'b', 'USD'), 0n)
    // `a` holds the whole bound as input: sending it away and back would push its input past it.
    await postTransaction(api, 'main', [{ source: 'a', destination: 'e', amount: 1n, asset: 'USD' }])
    const back = await api.request('POST', '/v2/main/transactions', `{"postings":[{"source":"e","destination":"a","amount":1,"asset":"USD"}]}`)
    assertError(back, 400, 'VALIDATION', /a.*input.*2\^256 - 1/)
    assert.equal(await balanceOf(api, 'main', 'e', 'USD'), 1n, 'the refused posting moved nothing')
  } finally {
    await api.close()
  }
})

const impossibleDates = [
  '2021-02-29T00:00:00Z',
  '2020-02-30T00:00:00Z',
  '2021-04-31T00:00:00Z',
  '2021-01-01T24:00:00Z',
  '2021-01-01T25:00:00Z',
  '2021-01-01T00:60:00Z',
  '2021-01-01T00:00:60Z',
  '2021-01-01T00:00:00+24:00',
  '2021-01-01T00:00:00+01:60',
  '2021-13-01T00:00:00Z',
  '2021-00-10T00:00:00Z',
]

test('impossible dates are 400 wherever a date enters: timestamp, pit, startTime/endTime, filters, import', async () => {
  const api = await fresh()
  try {
    await postTransaction(api, 'main', [{ source: 'world', destination: 'a', amount: 1n, asset: 'USD' }])
    for (const date of impossibleDates) {
      const created = await api.request('POST', '/v2/main/transactions', { postings: [{ source: 'world', destination: 'b', amount: 1, asset: 'USD' }], timestamp: date })
      assertError(created, 400, 'VALIDATION', /^timestamp: .* is not a date: /)
      const encoded = encodeURIComponent(date)
      assertError(await api.request('GET', `/v2/main/transactions?pit=${encoded}`), 400, 'VALIDATION', 'pit')
      assertError(await api.request('GET', `/v2/main/accounts/a?pit=${encoded}`), 400, 'VALIDATION', 'pit')
      assertError(await api.request('GET', `/v2/main/aggregate/balances?pit=${encoded}`), 400, 'VALIDATION', 'pit')
      assertError(await api.request('GET', `/v2/main/logs?pit=${encoded}`), 400, 'VALIDATION', 'pit')
      assertError(await api.request('GET', `/v2/main/volumes?startTime=${encoded}`), 400, 'VALIDATION', 'startTime')
      assertError(await api.request('GET', `/v2/main/volumes?endTime=${encoded}`), 400, 'VALIDATION', 'endTime')
      assertError(await api.request('GET', '/v2/main/transactions', { $lt: { timestamp: date } }), 400, 'VALIDATION', 'timestamp')
    }
    assert.equal(await balanceOf(api, 'main', 'b', 'USD'), 0n, 'no impossible date was rolled over into a transaction')
    // Import: a v2 log dated on an impossible day is refused before anything is applied.
    const log = `{"type":"NEW_TRANSACTION","data":{"transaction":{"postings":[],"metadata":{},"timestamp":"2021-02-29T00:00:00Z","id":0},"accountMetadata":{}},"date":"2021-02-29T00:00:00Z","idempotencyKey":"","id":0,"hash":"AAAA"}`
    assertError(await api.request('POST', '/v2/copy/logs/import', log), 400, 'IMPORT', /log 0: .*not a date/)
  } finally {
    await api.close()
  }
})

test('timestamps keep v2 microseconds (finer digits round half up), and dates of any precision order as instants', async () => {
  const api = await fresh()
  try {
    const at = async (timestamp: string, destination = 'users:1'): Promise<string> => {
      const created = await postTransaction(api, 'main', [{ source: 'world', destination, amount: 1n, asset: 'USD' }], { timestamp })
      return created.timestamp as string
    }
    assert.equal(await at('2024-01-01T00:00:00.123456Z'), '2024-01-01T00:00:00.123456Z')
    assert.equal(await at('2024-01-01T00:00:00.1234565Z'), '2024-01-01T00:00:00.123457Z')
    assert.equal(await at('2024-01-01T00:00:00.123456499Z'), '2024-01-01T00:00:00.123456Z')
    assert.equal(await at('2024-01-01T00:00:00.123000Z'), '2024-01-01T00:00:00.123Z')
    assert.equal(await at('2024-01-01T01:00:00.1234567+01:00'), '2024-01-01T00:00:00.123457Z')
    assert.equal(await at('2024-12-31T23:59:59.9999996Z'), '2025-01-01T00:00:00.000Z', 'rounding carries into the next year')
    assertError(
      await api.request('POST', '/v2/main/transactions', { postings: [{ source: 'world', destination: 'x', amount: 1, asset: 'USD' }], timestamp: '9999-12-31T23:59:59.9999999Z' }),
      400,
      'VALIDATION',
      '0000–9999',
    )
    // Read back as stored, microseconds kept.
    const read = await api.request('GET', '/v2/main/transactions/0')
    assert.equal((read.body as { data: { timestamp: string } }).data.timestamp, '2024-01-01T00:00:00.123456Z')
    // A later use dated a millisecond-exact instant before the microsecond one moves firstUsage back.
    await at('2024-01-01T00:00:00.200Z', 'users:2')
    await at('2024-01-01T00:00:00.123Z', 'users:2')
    await at('2024-01-01T00:00:00.123456Z', 'users:2')
    const account = await api.request('GET', '/v2/main/accounts/users:2')
    assert.equal((account.body as { data: { firstUsage: string } }).data.firstUsage, '2024-01-01T00:00:00.123Z')
    // sort=timestamp orders .123Z before .123456Z before .123457Z.
    const listed = await api.request('GET', '/v2/main/transactions?sort=timestamp:asc&pageSize=100')
    const stamps = ((listed.body as { cursor: { data: { timestamp: string }[] } }).cursor.data).map((transaction) => transaction.timestamp)
    const byInstant = [...stamps].sort((left, right) => (instantOf(left) < instantOf(right) ? -1 : instantOf(left) > instantOf(right) ? 1 : 0))
    assert.deepEqual(stamps, byInstant)
  } finally {
    await api.close()
  }
})

function instantOf(text: string): bigint {
  const match = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z$/.exec(text)
  assert.ok(match !== null, text)
  return BigInt(Date.parse(`${match[1]}Z`)) * 1_000_000n + BigInt((match[2] ?? '').padEnd(9, '0'))
}

test('a field over its length limit says it is a length limit (addresses, ledger names, assets, references, metadata keys, bulk ik)', async () => {
  const api = await fresh()
  const tooLong = /longer than the limit of \d+/
  const send = (posting: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    api.request('POST', '/v2/main/transactions', { postings: [{ source: 'world', destination: 'a', amount: 1, asset: 'USD', ...posting }], ...extra })
  try {
    assertStatus(await send({ destination: 'a'.repeat(1024) }), 200)
    assertError(await send({ destination: 'a'.repeat(1025) }), 400, 'VALIDATION', /postings\[0\]\.destination: .*1025 characters.*longer than the limit of 1024/)
    assertError(await send({ source: `${'a:'.repeat(600)}b` }), 400, 'VALIDATION', tooLong)
    assertError(await send({}, { accountMetadata: { [`${'x'.repeat(1025)}`]: { k: 'v' } } }), 400, 'VALIDATION', tooLong)
    // Still a pattern error, not a length one, for a short bad address.
    assertError(await send({ destination: 'a b' }), 400, 'VALIDATION', /invalid account address/)
    assertError(await send({ asset: `A${'B'.repeat(17)}` }), 400, 'VALIDATION', tooLong)
    assertError(await send({ asset: 'USD/1234567' }), 400, 'VALIDATION', tooLong)
    assertError(await send({ asset: `USD_${'A'.repeat(17)}` }), 400, 'VALIDATION', tooLong)
    assertStatus(await send({ asset: `A${'B'.repeat(16)}_${'C'.repeat(16)}/123456` }), 200)
    assertError(await send({ asset: 'usd' }), 400, 'VALIDATION', /invalid asset/)
    assertError(await send({}, { reference: 'r'.repeat(513) }), 400, 'VALIDATION', tooLong)
    assertError(await send({}, { metadata: { ['k'.repeat(1025)]: 'v' } }), 400, 'VALIDATION', tooLong)
    assertError(await api.request('POST', `/v2/${'l'.repeat(64)}`, {}), 400, 'VALIDATION', /ledger: .*64 characters.*longer than the limit of 63/)
    assertError(await api.request('POST', '/v2/main/_bulk', [{ action: 'ADD_METADATA', ik: 'i'.repeat(257), data: { targetType: 'ACCOUNT', targetId: 'a', metadata: { k: 'v' } } }]), 400, 'VALIDATION', tooLong)
  } finally {
    await api.close()
  }
})

test('an address in a URL path: any length up to the limit is served, one past it is a length-limit 400', async () => {
  const api = await fresh()
  try {
    for (const length of [101, 500, 1024]) {
      const address = 'p'.repeat(length)
      await postTransaction(api, 'main', [{ source: 'world', destination: address, amount: 1n, asset: 'USD' }])
      assertStatus(await api.request('GET', `/v2/main/accounts/${address}`), 200)
      assertStatus(await api.request('POST', `/v2/main/accounts/${address}/metadata`, { k: 'v' }), 204)
    }
    // A metadata key in a path may be 1024 characters of any script, percent-encoded.
    const key = '€'.repeat(1024)
    assertStatus(await api.request('DELETE', `/v2/main/accounts/${'p'.repeat(101)}/metadata/${encodeURIComponent(key)}`), 204)
    assertError(await api.request('GET', `/v2/main/accounts/${'p'.repeat(1025)}`), 400, 'VALIDATION', /1025 characters is longer than the limit of 1024/)
    assertError(await api.request('DELETE', `/v2/main/accounts/a/metadata/${encodeURIComponent('€'.repeat(1025))}`), 400, 'VALIDATION', /1025 characters is longer than the limit of 1024/)
  } finally {
    await api.close()
  }
})

test('an issued cursor stays good across a restart (its key derives from the cluster id, kept in the store)', async () => {
  const temp = tempDirectory('tally-cursor-')
  const open = async () => {
    const node = await LedgerNode.open({ dataDirectory: temp.directory, sync: false })
    return { node, app: await buildApi(node) }
  }
  const get = async (app: FastifyInstance, url: string) => app.inject({ method: 'GET', url })
  try {
    let { node, app } = await open()
    await app.inject({ method: 'POST', url: '/v2/main', payload: '{}', headers: { 'content-type': 'application/json' } })
    for (let i = 0; i < 3; i++) {
      const body = `{"postings":[{"source":"world","destination":"u${i}","amount":1,"asset":"USD"}]}`
      await app.inject({ method: 'POST', url: '/v2/main/transactions', payload: body, headers: { 'content-type': 'application/json' } })
    }
    const first = await get(app, '/v2/main/transactions?pageSize=1')
    const next = (parseJson(first.body) as { cursor: { next: string } }).cursor.next
    const before = await get(app, `/v2/main/transactions?cursor=${next}`)
    await app.close()
    await node.close()
    ;({ node, app } = await open())
    const after = await get(app, `/v2/main/transactions?cursor=${next}`)
    assert.equal(after.statusCode, 200, after.body)
    assert.equal(after.body, before.body)
    await app.close()
    await node.close()
  } finally {
    temp.remove()
  }
})
