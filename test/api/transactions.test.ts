import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  asArray,
  asBigint,
  asObject,
  assertError,
  assertStatus,
  at,
  balanceOf,
  createLedger,
  ledgerSnapshot,
  openTestApi,
  postTransaction,
  show,
  transactionBody,
  walkForward,
} from '../support/api.ts'
import type { JsonObject, Reply, TestApi } from '../support/api.ts'
import { stringifyJson } from '../../src/domain/index.ts'

const beyond53 = 2n ** 53n + 12_345n
const huge = 2n ** 200n + 7n

async function fresh(options: { bodyBytesMax?: number } = {}): Promise<TestApi> {
  const api = await openTestApi(options)
  await createLedger(api, 'main')
  return api
}

test('POST transactions: 200 with pre/post commit volumes; amounts beyond 2^53 exact in and out', async () => {
  const api = await fresh()
  try {
    const reply = await api.request('POST', '/v2/main/transactions', transactionBody([{ source: 'world', destination: 'users:1', amount: beyond53, asset: 'USD/2' }], { metadata: { note: 'first' }, reference: 'ref-1' }))
    assertStatus(reply, 200)
    // The raw text carries the exact digits as JSON numbers, not strings and not rounded.
    assert.ok(reply.text.includes(`"amount":${beyond53}`), reply.text)
    assert.ok(reply.text.includes(`"balance":-${beyond53}`), reply.text)
    // Compact, and only the answer: the generic printer's bytes for the same value, as JSON with its content type.
    assert.equal(reply.text, stringifyJson(reply.body))
    assert.equal(reply.headers['content-type'], 'application/json; charset=utf-8')
    const data = asObject(at(reply.body, 'data'))
    assert.equal(data.id, 0n)
    assert.equal(data.reference, 'ref-1')
    assert.equal(data.reverted, false)
    assert.deepEqual(data.metadata, { note: 'first' })
    assert.deepEqual(data.postings, [{ source: 'world', destination: 'users:1', amount: beyond53, asset: 'USD/2' }])
    assert.deepEqual(data.preCommitVolumes, {
      world: { 'USD/2': { input: 0n, output: 0n, balance: 0n } },
      'users:1': { 'USD/2': { input: 0n, output: 0n, balance: 0n } },
    })
    assert.deepEqual(data.postCommitVolumes, {
      world: { 'USD/2': { input: 0n, output: beyond53, balance: -beyond53 } },
      'users:1': { 'USD/2': { input: beyond53, output: 0n, balance: beyond53 } },
    })
    for (const field of ['timestamp', 'insertedAt', 'updatedAt']) assert.ok(!Number.isNaN(Date.parse(data[field] as string)), field)

    // A 2^200 amount sent as a JSON number comes back exact; v2 amounts are JSON integers, so a decimal string is refused.
    const big = await postTransaction(api, 'main', [{ source: 'world', destination: 'users:2', amount: huge, asset: 'EUR' }])
    assert.equal(at(big, 'postings', 0, 'amount'), huge)
    const asString = await api.request('POST', '/v2/main/transactions', { postings: [{ source: 'world', destination: 'users:2', amount: huge.toString(), asset: 'EUR' }] })
    assertError(asString, 400, 'VALIDATION', 'not strings')
    const again = await postTransaction(api, 'main', [{ source: 'world', destination: 'users:2', amount: huge, asset: 'EUR' }])
    assert.ok(show(again).includes(`"balance":"${2n * huge}n"`) || show(again).includes(String(2n * huge)), show(again))

    const read = await api.request('GET', '/v2/main/transactions/0')
    assertStatus(read, 200)
    assert.ok(read.text.includes(`"amount":${beyond53}`), read.text)
    assert.equal(at(read.body, 'data', 'id'), 0n)
    const account = await api.request('GET', '/v2/main/accounts/users:2?expand=volumes')
    assert.ok(account.text.includes(`"balance":${2n * huge}`), account.text)
    assert.equal(await balanceOf(api, 'main', 'users:1', 'USD/2'), beyond53)

    // Multi-posting: each posting is checked against what the ones before left.
    const chained = await postTransaction(api, 'main', [
      { source: 'world', destination: 'a', amount: 10, asset: 'USD' },
      { source: 'a', destination: 'b', amount: 10, asset: 'USD' },
    ])
    assert.deepEqual(at(chained, 'postCommitVolumes', 'a', 'USD'), { input: 10n, output: 10n, balance: 0n })
  } finally {
    await api.close()
  }
})

test('POST transactions: INSUFFICIENT_FUND, force in body and ?force=true, reference reuse is CONFLICT', async () => {
  const api = await fresh()
  try {
    await postTransaction(api, 'main', [{ source: 'world', destination: 'users:1', amount: 100, asset: 'USD' }])
    const before = await ledgerSnapshot(api, 'main')
    const refused = await api.request('POST', '/v2/main/transactions', transactionBody([{ source: 'users:1', destination: 'users:2', amount: 101, asset: 'USD' }]))
    assertError(refused, 400, 'INSUFFICIENT_FUND', 'users:1')
    assert.equal(await ledgerSnapshot(api, 'main'), before)

    const forcedInBody = await postTransaction(api, 'main', [{ source: 'users:1', destination: 'users:2', amount: 150, asset: 'USD' }], { force: true })
    assert.equal(at(forcedInBody, 'postCommitVolumes', 'users:1', 'USD', 'balance'), -50n)
    const forcedInQuery = await api.request('POST', '/v2/main/transactions?force=true', transactionBody([{ source: 'users:3', destination: 'users:2', amount: 7, asset: 'USD' }]))
    assertStatus(forcedInQuery, 200)
    assert.equal(await balanceOf(api, 'main', 'users:3', 'USD'), -7n)
    assertError(await api.request('POST', '/v2/main/transactions?force=maybe', transactionBody([{ source: 'users:3', destination: 'users:2', amount: 7, asset: 'USD' }])), 400, 'VALIDATION', 'force')
    assertError(await api.request('POST', '/v2/main/transactions', transactionBody([{ source: 'users:3', destination: 'users:2', amount: 7, asset: 'USD' }], { force: 'yes' })), 400, 'VALIDATION', 'force')

    await postTransaction(api, 'main', [{ source: 'world', destination: 'users:9', amount: 1, asset: 'USD' }], { reference: 'invoice-1' })
    const snapshot = await ledgerSnapshot(api, 'main')
    assertError(
      await api.request('POST', '/v2/main/transactions', transactionBody([{ source: 'world', destination: 'users:9', amount: 1, asset: 'USD' }], { reference: 'invoice-1' })),
      409,
      'CONFLICT',
      'invoice-1',
    )
    assert.equal(await ledgerSnapshot(api, 'main'), snapshot)
    assert.equal(await balanceOf(api, 'main', 'users:9', 'USD'), 1n)
  } finally {
    await api.close()
  }
})

test('POST transactions: every malformed request is a precise 400 and applies nothing', async () => {
  const api = await fresh()
  try {
    await postTransaction(api, 'main', [{ source: 'world', destination: 'users:1', amount: 100, asset: 'USD' }])
    const before = await ledgerSnapshot(api, 'main')
    const posting = (overrides: Record<string, string>): string =>
      `{"postings":[{"source":${overrides.source ?? '"world"'},"destination":${overrides.destination ?? '"users:1"'},"amount":${overrides.amount ?? '1'},"asset":${overrides.asset ?? '"USD"'}}]}`
    const cases: { body: string; code: string; message: string | RegExp }[] = [
      { body: '{"postings":[]}', code: 'NO_POSTINGS', message: 'posting' },
      { body: '{}', code: 'NO_POSTINGS', message: 'postings' },
      { body: '{"postings":', code: 'VALIDATION', message: 'malformed JSON' },
      { body: 'not json', code: 'VALIDATION', message: 'malformed JSON' },
      { body: '[1]', code: 'VALIDATION', message: 'body' },
      { body: 'null', code: 'VALIDATION', message: 'body' },
      { body: '{"postings":"x"}', code: 'VALIDATION', message: 'postings' },
      { body: posting({ amount: '-1' }), code: 'VALIDATION', message: 'postings[0].amount' },
      { body: posting({ amount: '1.5' }), code: 'VALIDATION', message: 'postings[0].amount' },
      { body: posting({ amount: '1e3' }), code: 'VALIDATION', message: 'postings[0].amount' },
      { body: posting({ amount: '"12abc"' }), code: 'VALIDATION', message: 'postings[0].amount' },
      { body: posting({ amount: '"-5"' }), code: 'VALIDATION', message: 'postings[0].amount' },
      { body: posting({ amount: 'null' }), code: 'VALIDATION', message: 'postings[0].amount' },
      { body: posting({ amount: 'true' }), code: 'VALIDATION', message: 'postings[0].amount' },
      { body: posting({ amount: (2n ** 256n).toString() }), code: 'VALIDATION', message: 'postings[0].amount' },
      { body: posting({ source: '"wo rld"' }), code: 'VALIDATION', message: 'postings[0].source' },
      { body: posting({ destination: '"users::1"' }), code: 'VALIDATION', message: 'postings[0].destination' },
      { body: posting({ destination: '7' }), code: 'VALIDATION', message: 'postings[0].destination' },
      { body: posting({ asset: '"usd"' }), code: 'VALIDATION', message: 'postings[0].asset' },
      { body: posting({ asset: '"USD/x"' }), code: 'VALIDATION', message: 'postings[0].asset' },
      { body: '{"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD","extra":1}]}', code: 'VALIDATION', message: 'extra' },
      { body: transactionBody([{ source: 'world', destination: 'a', amount: 1, asset: 'USD' }], { metadata: { a: 1 } }), code: 'VALIDATION', message: 'metadata["a"]' },
      { body: transactionBody([{ source: 'world', destination: 'a', amount: 1, asset: 'USD' }], { metadata: 'x' }), code: 'VALIDATION', message: 'metadata' },
      { body: transactionBody([{ source: 'world', destination: 'a', amount: 1, asset: 'USD' }], { accountMetadata: { a: { k: 2 } } }), code: 'VALIDATION', message: 'accountMetadata' },
      { body: transactionBody([{ source: 'world', destination: 'a', amount: 1, asset: 'USD' }], { accountMetadata: { 'bad addr': {} } }), code: 'VALIDATION', message: 'accountMetadata' },
      { body: transactionBody([{ source: 'world', destination: 'a', amount: 1, asset: 'USD' }], { reference: 5 }), code: 'VALIDATION', message: 'reference' },
      { body: transactionBody([{ source: 'world', destination: 'a', amount: 1, asset: 'USD' }], { timestamp: 'yesterday' }), code: 'VALIDATION', message: 'timestamp' },
      // The second posting is bad: the first must not be applied either.
      { body: '{"postings":[{"source":"world","destination":"users:1","amount":1,"asset":"USD"},{"source":"world","destination":"users:1","amount":-1,"asset":"USD"}]}', code: 'VALIDATION', message: 'postings[1].amount' },
    ]
    for (const { body, code, message } of cases) {
      const reply = await api.request('POST', '/v2/main/transactions', body)
      try {
        assertError(reply, 400, code, message)
      } catch (error) {
        assert.fail(`${body}: ${(error as Error).message}`)
      }
    }
    // Insufficient funds on the second posting: nothing of the first is applied.
    assertError(
      await api.request('POST', '/v2/main/transactions', transactionBody([
        { source: 'world', destination: 'users:1', amount: 5, asset: 'USD' },
        { source: 'users:1', destination: 'users:2', amount: 106, asset: 'USD' },
      ])),
      400,
      'INSUFFICIENT_FUND',
    )
    assert.equal(await ledgerSnapshot(api, 'main'), before)
    assert.equal(await balanceOf(api, 'main', 'users:1', 'USD'), 100n)
    assertError(await api.request('POST', '/v2/nope/transactions', transactionBody([{ source: 'world', destination: 'a', amount: 1, asset: 'USD' }])), 404, 'LEDGER_NOT_FOUND')
    assertError(await api.request('POST', '/v2/bad.name/transactions', transactionBody([{ source: 'world', destination: 'a', amount: 1, asset: 'USD' }])), 400, 'VALIDATION', 'ledger')
  } finally {
    await api.close()
  }
})

test('POST transactions: a body over bodyBytesMax is 413 and applies nothing', async () => {
  const api = await fresh({ bodyBytesMax: 1024 })
  try {
    const before = await ledgerSnapshot(api, 'main')
    const body = transactionBody([{ source: 'world', destination: 'a', amount: 1, asset: 'USD' }], { metadata: { pad: 'x'.repeat(2048) } })
    const reply = await api.request('POST', '/v2/main/transactions', body)
    assertError(reply, 413, 'VALIDATION', 'limit')
    assert.equal(await ledgerSnapshot(api, 'main'), before)
    assertStatus(await api.request('POST', '/v2/main/transactions', transactionBody([{ source: 'world', destination: 'a', amount: 1, asset: 'USD' }])), 200)
  } finally {
    await api.close()
  }
})

test('GET transactions: cursor paging forward via next and back via previous, each item once', async () => {
  const api = await fresh()
  try {
    const count = 23
    for (let i = 0; i < count; i++) await postTransaction(api, 'main', [{ source: 'world', destination: `users:${i}`, amount: i + 1, asset: 'USD' }])
    const pageSize = 5
    const forward: JsonObject[] = []
    let reply: Reply = await api.request('GET', `/v2/main/transactions?pageSize=${pageSize}`)
    for (let guard = 0; ; guard++) {
      assert.ok(guard < 100, 'paging does not end')
      assertStatus(reply, 200)
      const cursor = asObject(at(reply.body, 'cursor'))
      forward.push(cursor)
      assert.equal(cursor.pageSize, BigInt(pageSize))
      if (typeof cursor.next !== 'string') break
      assert.equal(cursor.hasMore, true)
      reply = await api.request('GET', `/v2/main/transactions?cursor=${cursor.next}`)
    }
    assert.equal(forward.length, Math.ceil(count / pageSize))
    const first = forward[0] as JsonObject
    assert.equal(first.previous, undefined, 'the first page has no previous')
    const last = forward[forward.length - 1] as JsonObject
    assert.equal(last.hasMore, false)
    const ids = forward.flatMap((page) => asArray(page.data).map((tx) => asBigint(at(tx, 'id'))))
    // Descending ids, each exactly once.
    assert.deepEqual(ids, Array.from({ length: count }, (_, i) => BigInt(count - 1 - i)))

    // Walk back from the last page through `previous`: each page equals the forward one.
    const backward: JsonObject[] = [last]
    let current = last
    for (let guard = 0; typeof current.previous === 'string'; guard++) {
      assert.ok(guard < 100, 'backward paging does not end')
      const back = await api.request('GET', `/v2/main/transactions?cursor=${current.previous}`)
      assertStatus(back, 200)
      current = asObject(at(back.body, 'cursor'))
      backward.unshift(current)
    }
    assert.equal(backward.length, forward.length)
    for (let i = 0; i < forward.length; i++) assert.deepEqual(backward[i]?.data, forward[i]?.data, `page ${i}`)
    const backIds = backward.flatMap((page) => asArray(page.data).map((tx) => asBigint(at(tx, 'id'))))
    assert.deepEqual(backIds, ids)
    // A page reached backward still links forward.
    assert.equal(typeof (backward[0] as JsonObject).next, 'string')

    const all = await walkForward(api, '/v2/main/transactions?pageSize=1000')
    assert.equal(all.items.length, count)
    const defaults = await api.request('GET', '/v2/main/transactions')
    assert.equal(asArray(at(defaults.body, 'cursor', 'data')).length, 15)

    assertError(await api.request('GET', '/v2/main/transactions?pageSize=0'), 400, 'VALIDATION', 'pageSize')
    assertError(await api.request('GET', '/v2/main/transactions?pageSize=-1'), 400, 'VALIDATION', 'pageSize')
    assertError(await api.request('GET', '/v2/main/transactions?pageSize=1001'), 400, 'VALIDATION', 'pageSize')
    assertError(await api.request('GET', '/v2/main/transactions?pageSize=2.5'), 400, 'VALIDATION', 'pageSize')
    assertError(await api.request('GET', '/v2/main/transactions?cursor=zzz'), 400, 'VALIDATION', 'cursor')
    const wrongShape = Buffer.from(JSON.stringify({ pageSize: 5, boundary: 'zz', direction: 'next' })).toString('base64url')
    assertError(await api.request('GET', `/v2/main/transactions?cursor=${wrongShape}`), 400, 'VALIDATION', 'cursor')
    assertError(await api.request('GET', '/v2/nope/transactions'), 404, 'LEDGER_NOT_FOUND')
  } finally {
    await api.close()
  }
})

test('GET lists: a cursor the server did not issue (crafted, or an issued one edited or moved to another list) is exactly a 400', async () => {
  const api = await fresh()
  try {
    await createLedger(api, 'other')
    for (const ledger of ['main', 'other']) for (let i = 0; i < 3; i++) await postTransaction(api, ledger, [{ source: 'world', destination: `u${i}`, amount: 1, asset: 'USD' }])
    const encode = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url')
    const issued = asObject(at((await api.request('GET', '/v2/main/transactions?pageSize=1')).body, 'cursor')).next as string
    assert.equal(typeof issued, 'string')
    assertStatus(await api.request('GET', `/v2/main/transactions?cursor=${issued}`), 200)
    // What an issued cursor says, edited: every field a client could change.
    const [payloadText = '', tag = ''] = issued.split('.')
    const payload = JSON.parse(Buffer.from(payloadText, 'base64url').toString('utf8')) as { pageSize: number; boundary: string; direction: string; options: Record<string, string> }
    const edited = (change: Partial<typeof payload>): string => `${encode({ ...payload, ...change })}.${tag}`
    const crafted = [
      `/v2/main/transactions?cursor=${encode({ pageSize: 10, boundary: 'ff', direction: 'next' })}`,
      `/v2/other/transactions?cursor=${encode({ pageSize: 10, boundary: '00', direction: 'previous' })}`,
      `/v2/main/accounts?cursor=${encode({ pageSize: 10, boundary: '00', direction: 'next' })}`,
      `/v2?cursor=${encode({ pageSize: 10, boundary: '00', direction: 'next' })}`,
      `/v2/main/logs?cursor=${encode({ pageSize: 10, boundary: 'ff', direction: 'next' })}`,
      `/v2/main/transactions?cursor=${encode({ pageSize: 0, boundary: '', direction: 'next' })}`,
      `/v2/main/transactions?cursor=${encode({ pageSize: 100_000_000, boundary: '', direction: 'next' })}`,
      // Well-formed, inside this list's own key range, but not issued: the server cannot tell it from one it issued but by its tag.
      `/v2/main/transactions?cursor=${encode(payload)}`,
      `/v2/main/transactions?cursor=${edited({ pageSize: 1000 })}`,
      `/v2/main/transactions?cursor=${edited({ boundary: `${payload.boundary.slice(0, -2)}00` })}`,
      `/v2/main/transactions?cursor=${edited({ direction: 'previous' })}`,
      `/v2/main/transactions?cursor=${edited({ options: { expand: 'volumes' } })}`,
      `/v2/main/transactions?cursor=${issued.slice(0, -2)}${issued.endsWith('AA') ? 'BB' : 'AA'}`,
      `/v2/main/transactions?cursor=${issued}.${tag}`,
      // An issued cursor of one list is not a cursor of another.
      `/v2/other/transactions?cursor=${issued}`,
      `/v2/main/accounts?cursor=${issued}`,
      `/v2/main/logs?cursor=${issued}`,
      `/v2?cursor=${issued}`,
    ]
    for (const url of crafted) assertError(await api.request('GET', url), 400, 'VALIDATION', 'cursor')
  } finally {
    await api.close()
  }
})

test('GET transactions/{id}: 200, 404, bad id 400', async () => {
  const api = await fresh()
  try {
    await postTransaction(api, 'main', [{ source: 'world', destination: 'a', amount: 3, asset: 'USD' }], { metadata: { k: 'v' } })
    const reply = await api.request('GET', '/v2/main/transactions/0')
    assertStatus(reply, 200)
    const data = asObject(at(reply.body, 'data'))
    assert.equal(data.id, 0n)
    assert.deepEqual(data.metadata, { k: 'v' })
    assert.deepEqual(data.postings, [{ source: 'world', destination: 'a', amount: 3n, asset: 'USD' }])
    assertError(await api.request('GET', '/v2/main/transactions/1'), 404, 'NOT_FOUND', '1')
    assertError(await api.request('GET', '/v2/main/transactions/abc'), 400, 'VALIDATION', 'id')
    assertError(await api.request('GET', '/v2/main/transactions/-1'), 400, 'VALIDATION', 'id')
    assertError(await api.request('GET', `/v2/main/transactions/${2n ** 63n}`), 400, 'VALIDATION', 'id')
    assertError(await api.request('GET', '/v2/nope/transactions/0'), 404, 'LEDGER_NOT_FOUND')
  } finally {
    await api.close()
  }
})

test('POST revert: 201, revert link metadata, reverted flag, ALREADY_REVERT, overdraft and force, atEffectiveDate, 404', async () => {
  const api = await fresh()
  try {
    const original = await postTransaction(api, 'main', [{ source: 'world', destination: 'users:1', amount: 100, asset: 'USD' }], { timestamp: '2020-01-02T03:04:05Z' })
    assert.equal(original.timestamp, '2020-01-02T03:04:05.000Z')
    const spend = await postTransaction(api, 'main', [
      { source: 'users:1', destination: 'users:2', amount: 60, asset: 'USD' },
      { source: 'users:1', destination: 'users:3', amount: 40, asset: 'USD' },
    ])

    // Reverting the spend: inverse postings, last first, and the link metadata.
    const revert = await api.request('POST', `/v2/main/transactions/${spend.id}/revert`, { metadata: { why: 'mistake' } })
    assert.equal(revert.text, stringifyJson(revert.body))
    assertStatus(revert, 201)
    const revertData = asObject(at(revert.body, 'data'))
    assert.equal(revertData.id, 2n)
    assert.deepEqual(revertData.postings, [
      { source: 'users:3', destination: 'users:1', amount: 40n, asset: 'USD' },
      { source: 'users:2', destination: 'users:1', amount: 60n, asset: 'USD' },
    ])
    assert.deepEqual(revertData.metadata, { why: 'mistake', 'com.formance.spec/state/reverts': '1' })
    assert.equal(revertData.reverted, false)
    assert.deepEqual(at(revertData, 'postCommitVolumes', 'users:1', 'USD'), { input: 200n, output: 100n, balance: 100n })
    assert.ok(Date.parse(revertData.timestamp as string) > Date.parse('2021-01-01T00:00:00Z'))
    const reread = asObject(at((await api.request('GET', `/v2/main/transactions/${spend.id}`)).body, 'data'))
    assert.equal(reread.reverted, true)
    assert.equal(typeof reread.revertedAt, 'string')
    assert.equal(await balanceOf(api, 'main', 'users:2', 'USD'), 0n)

    let before = await ledgerSnapshot(api, 'main')
    assertError(await api.request('POST', `/v2/main/transactions/${spend.id}/revert`), 400, 'ALREADY_REVERT')
    assert.equal(await ledgerSnapshot(api, 'main'), before)

    // Reverting the funding would overdraw users:1 once it spent some.
    await postTransaction(api, 'main', [{ source: 'users:1', destination: 'users:4', amount: 30, asset: 'USD' }])
    before = await ledgerSnapshot(api, 'main')
    assertError(await api.request('POST', '/v2/main/transactions/0/revert'), 400, 'INSUFFICIENT_FUND', 'users:1')
    assert.equal(await ledgerSnapshot(api, 'main'), before)
    assert.equal(asObject(at((await api.request('GET', '/v2/main/transactions/0')).body, 'data')).reverted, false)
    const forced = await api.request('POST', '/v2/main/transactions/0/revert?force=true&atEffectiveDate=true')
    assertStatus(forced, 201)
    assert.equal(at(forced.body, 'data', 'timestamp'), '2020-01-02T03:04:05.000Z', 'atEffectiveDate keeps the original timestamp')
    assert.equal(at(forced.body, 'data', 'metadata', 'com.formance.spec/state/reverts'), '0')
    assert.equal(await balanceOf(api, 'main', 'users:1', 'USD'), -30n)

    assertError(await api.request('POST', '/v2/main/transactions/99/revert'), 404, 'NOT_FOUND', '99')
    assertError(await api.request('POST', '/v2/main/transactions/abc/revert'), 400, 'VALIDATION', 'id')
    assertError(await api.request('POST', '/v2/main/transactions/1/revert?force=perhaps'), 400, 'VALIDATION', 'force')
    assertError(await api.request('POST', '/v2/main/transactions/3/revert', '[1]'), 400, 'VALIDATION', 'body')
    assertError(await api.request('POST', '/v2/main/transactions/3/revert', { metadata: { a: 1 } }), 400, 'VALIDATION', 'metadata')
    assertError(await api.request('POST', '/v2/nope/transactions/0/revert'), 404, 'LEDGER_NOT_FOUND')
    assert.equal(asObject(at((await api.request('GET', '/v2/main/transactions/3')).body, 'data')).reverted, false)
  } finally {
    await api.close()
  }
})

test('transaction metadata: POST and DELETE are 204; unknown transaction 404; bad body 400', async () => {
  const api = await fresh()
  try {
    await postTransaction(api, 'main', [{ source: 'world', destination: 'a', amount: 1, asset: 'USD' }], { metadata: { keep: 'me' } })
    assertStatus(await api.request('POST', '/v2/main/transactions/0/metadata', { a: '1', b: '2' }), 204)
    assert.deepEqual(at((await api.request('GET', '/v2/main/transactions/0')).body, 'data', 'metadata'), { a: '1', b: '2', keep: 'me' })
    assertStatus(await api.request('DELETE', '/v2/main/transactions/0/metadata/a'), 204)
    assert.deepEqual(at((await api.request('GET', '/v2/main/transactions/0')).body, 'data', 'metadata'), { b: '2', keep: 'me' })
    const before = await ledgerSnapshot(api, 'main')
    assertError(await api.request('POST', '/v2/main/transactions/7/metadata', { a: '1' }), 404, 'NOT_FOUND')
    assertError(await api.request('DELETE', '/v2/main/transactions/7/metadata/a'), 404, 'NOT_FOUND')
    assertError(await api.request('POST', '/v2/main/transactions/0/metadata', { a: 1 }), 400, 'VALIDATION', 'body["a"]')
    assertError(await api.request('POST', '/v2/main/transactions/0/metadata', '"x"'), 400, 'VALIDATION', 'body')
    assertError(await api.request('POST', '/v2/main/transactions/x/metadata', { a: '1' }), 400, 'VALIDATION', 'id')
    assertError(await api.request('DELETE', '/v2/main/transactions/x/metadata/a'), 400, 'VALIDATION', 'id')
    assertError(await api.request('POST', '/v2/nope/transactions/0/metadata', { a: '1' }), 404, 'LEDGER_NOT_FOUND')
    assert.equal(await ledgerSnapshot(api, 'main'), before)
  } finally {
    await api.close()
  }
})

test('POST transactions: concurrent requests reusing one reference, one applies, the others are CONFLICT', async () => {
  const api = await fresh()
  try {
    const replies = await Promise.all(
      [1, 2, 3, 4, 5].map((amount) => api.request('POST', '/v2/main/transactions', transactionBody([{ source: 'world', destination: 'users:1', amount, asset: 'USD' }], { reference: 'once' }))),
    )
    assert.equal(replies.filter((reply) => reply.status === 200).length, 1, replies.map((reply) => reply.text).join('\n'))
    for (const reply of replies) if (reply.status !== 200) assertError(reply, 409, 'CONFLICT')
    const winner = replies.find((reply) => reply.status === 200) as Reply
    assert.equal(await balanceOf(api, 'main', 'users:1', 'USD'), at(winner.body, 'data', 'postings', 0, 'amount'))
  } finally {
    await api.close()
  }
})

test('GET transactions?expand=volumes prints each transaction as GET transactions/{id}?expand=volumes does (one printed form, v2 key order)', async () => {
  const api = await fresh()
  try {
    await postTransaction(api, 'main', [{ source: 'world', destination: 'users:1', amount: 10, asset: 'USD' }])
    await postTransaction(api, 'main', [
      { source: 'users:1', destination: 'users:2', amount: 3, asset: 'USD' },
      { source: 'world', destination: 'users:2', amount: 5, asset: 'EUR/2' },
    ])
    const listed = await api.request('GET', '/v2/main/transactions?expand=volumes')
    assertStatus(listed, 200)
    for (const id of [0, 1]) {
      const single = await api.request('GET', `/v2/main/transactions/${id}?expand=volumes`)
      assertStatus(single, 200)
      const printed = single.text.slice('{"data":'.length, -1)
      assert.ok(printed.includes('"postCommitVolumes":{'), printed)
      assert.ok(listed.text.includes(printed), `${listed.text}\n  does not hold\n${printed}`)
    }
    assert.match(listed.text, /\{"input":\d+,"output":\d+,"balance":-?\d+\}/)
  } finally {
    await api.close()
  }
})
