import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseJson } from '../../src/domain/index.ts'
import type { Json } from '../../src/domain/index.ts'
import type { TestApi } from '../support/api.ts'
import { asArray, asObject, asString, assertError, assertStatus, at, balanceOf, createLedger, openTestApi, postTransaction, show, walkForward } from '../support/api.ts'

const FIXTURE = fileURLToPath(new URL('../check/fixtures/v2-hand-built.jsonl', import.meta.url))

function lines(text: string): Json[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => parseJson(line))
}

/** A ledger with every log type, backdating, references, idempotency keys and a bulk (one date, many logs). */
async function populate(api: TestApi, ledger: string): Promise<void> {
  await createLedger(api, ledger)
  await postTransaction(api, ledger, [{ source: 'world', destination: 'users:1', amount: 10n ** 30n, asset: 'USD/2' }], { reference: 'r1', metadata: { b: '2', a: '<&>' }, accountMetadata: { 'users:1': { role: 'payer' } } })
  await postTransaction(api, ledger, [{ source: 'users:1', destination: 'users:2', amount: 40, asset: 'USD/2' }, { source: 'world', destination: 'users:2', amount: 3, asset: 'EUR' }], { timestamp: '2020-01-01T00:00:00Z' })
  assertStatus(await api.request('POST', `/v2/${ledger}/transactions`, '{"postings":[{"source":"world","destination":"bank","amount":5,"asset":"COIN"}]}', { 'Idempotency-Key': 'ik-1' }), 200)
  assertStatus(await api.request('POST', `/v2/${ledger}/transactions/1/revert`), 201)
  assertStatus(await api.request('POST', `/v2/${ledger}/transactions/0/revert?atEffectiveDate=true&force=true`, '{"metadata":{"why":"test"}}'), 201)
  assertStatus(await api.request('POST', `/v2/${ledger}/transactions/2/metadata`, { note: 'é' }), 204)
  assertStatus(await api.request('DELETE', `/v2/${ledger}/transactions/2/metadata/note`), 204)
  assertStatus(await api.request('POST', `/v2/${ledger}/accounts/users:2/metadata`, { tier: 'gold' }, { 'Idempotency-Key': 'ik-2' }), 204)
  assertStatus(await api.request('DELETE', `/v2/${ledger}/accounts/users:1/metadata/role`), 204)
  const bulk = Array.from({ length: 5 }, (_, i) => ({ action: 'CREATE_TRANSACTION', ik: `bulk-${i}`, data: { postings: [{ source: 'world', destination: `users:${i}`, amount: i + 1, asset: 'USD/2' }] } }))
  bulk.push({ action: 'ADD_METADATA', ik: 'bulk-meta', data: { targetType: 'TRANSACTION', targetId: 3, metadata: { k: 'v' } } } as never)
  assertStatus(await api.request('POST', `/v2/${ledger}/_bulk?atomic=true`, bulk), 200)
}

/** Everything observable of a ledger but its name and creation date. */
async function observable(api: TestApi, ledger: string): Promise<{ transactions: Json[]; accounts: Json[]; logs: Json[] }> {
  const transactions = (await walkForward(api, `/v2/${ledger}/transactions?pageSize=1000`)).items
  const accounts = (await walkForward(api, `/v2/${ledger}/accounts?pageSize=1000&expand=volumes`)).items
  const logs = (await walkForward(api, `/v2/${ledger}/logs?pageSize=1000`)).items
  return { transactions, accounts, logs }
}

/** NDJSON answers are read raw (the support helper parses one JSON document). */
async function raw(api: TestApi, url: string): Promise<{ status: number; text: string }> {
  const response = await api.app.inject({ method: 'POST', url })
  return { status: response.statusCode, text: response.body }
}

async function exportText(api: TestApi, ledger: string): Promise<string> {
  const reply = await raw(api, `/v2/${ledger}/logs/export`)
  assert.equal(reply.status, 200, reply.text)
  return reply.text
}

test('export → import into a fresh ledger and into a fresh node: same balances, transactions, metadata, logs and v2 hashes', async () => {
  const source = await openTestApi()
  const target = await openTestApi()
  try {
    await populate(source, 'src')
    const exported = await exportText(source, 'src')
    const logs = lines(exported)
    assert.equal(logs.length, 15)
    assert.deepEqual(logs.map((log) => at(log, 'id')), logs.map((_log, i) => BigInt(i)), 'oldest first')
    assert.equal(at(logs[2], 'idempotencyKey'), 'ik-1')
    assert.equal(typeof at(logs[2], 'idempotencyHash'), 'string')
    assert.equal(at(logs[3], 'data', 'revertedTransaction', 'id'), 1n, 'a revert log carries the reverted transaction, as in v2')

    for (const [api, ledger] of [[source, 'copy'], [target, 'src']] as const) {
      const reply = await api.request('POST', `/v2/${ledger}/logs/import`, exported)
      assertStatus(reply, 204)
      assert.equal(reply.headers['tally-imported-logs'], '15')
      assert.deepEqual(show(await observable(api, ledger)), show(await observable(source, 'src')))
      assert.equal(await exportText(api, ledger), exported, 'the export of the copy is byte-identical, hashes included')
    }
    assert.equal(await balanceOf(target, 'src', 'users:1', 'USD/2'), 2n, '10^30 in, 40 out, 40 back, 10^30 reverted, 2 from the bulk')
    // Imported idempotency records replay: same key and same request → the original result.
    const replay = await target.request('POST', '/v2/src/transactions', '{"postings":[{"source":"world","destination":"bank","amount":5,"asset":"COIN"}]}', { 'Idempotency-Key': 'ik-1' })
    assertStatus(replay, 200)
    assert.equal(replay.headers['idempotency-hit'], 'true')

    const checked = await raw(target, '/_/check')
    assert.equal(checked.status, 200)
    const summary = asObject(lines(checked.text).at(-1))
    assert.equal(summary.type, 'summary', checked.text)
    assert.equal(summary.ok, true, checked.text)
  } finally {
    await source.close()
    await target.close()
  }
})

test('import: a forged hash stops at that log with IMPORT naming it; the ledger holds exactly the logs before it', async () => {
  const api = await openTestApi()
  try {
    await populate(api, 'src')
    const logs = lines(await exportText(api, 'src'))
    const forged = logs.map((log, i) => (i === 6 ? { ...asObject(log), hash: asString(at(logs[5], 'hash')) } : log))
    const body = forged.map((log) => show(log).replace(/"(-?\d+)n"/g, '$1')).join('\n')
    assertError(await api.request('POST', '/v2/copy/logs/import', body), 400, 'IMPORT', 'log 6: invalid hash')
    const imported = (await walkForward(api, '/v2/copy/logs?pageSize=1000')).items
    assert.equal(imported.length, 6)
    assert.deepEqual(imported.map((log) => at(log, 'hash')).reverse(), logs.slice(0, 6).map((log) => at(log, 'hash')))
    // The ledger is no longer empty: a second import is refused.
    assertError(await api.request('POST', '/v2/copy/logs/import', body), 400, 'IMPORT', 'must be empty')
  } finally {
    await api.close()
  }
})

test('import: a forged payload (hash kept) stops at that log too', async () => {
  const api = await openTestApi()
  try {
    await populate(api, 'src')
    const text = await exportText(api, 'src')
    const tampered = text.replace('"amount":40', '"amount":41')
    assert.notEqual(tampered, text)
    assertError(await api.request('POST', '/v2/copy/logs/import', tampered), 400, 'IMPORT', 'log 1: invalid hash')
    assert.equal((await walkForward(api, '/v2/copy/logs?pageSize=1000')).items.length, 1)
  } finally {
    await api.close()
  }
})

test('import: the hand-built v2 fixture imports, verifies, and the ledger logs it with the same hashes', async () => {
  const api = await openTestApi()
  try {
    const text = readFileSync(FIXTURE, 'utf8')
    const fixture = lines(text)
    assertStatus(await api.request('POST', '/v2/fromv2/logs/import', text), 204)
    const logs = (await walkForward(api, '/v2/fromv2/logs?pageSize=1000')).items.reverse()
    assert.deepEqual(logs.map((log) => at(log, 'hash')), fixture.map((log) => at(log, 'hash')))
    assert.deepEqual(logs.map((log) => at(log, 'date')), fixture.map((log) => at(log, 'date')), 'dates as v2 prints them')
    assert.equal(await balanceOf(api, 'fromv2', 'users:1', 'USD/2'), 100n)
    assert.equal(await balanceOf(api, 'fromv2', 'users:2', 'USD/2'), 0n)
    const reverted = await api.request('GET', '/v2/fromv2/transactions/1')
    assert.equal(at(reverted.body, 'data', 'reverted'), true)
    assert.deepEqual(at(reverted.body, 'data', 'metadata'), {})
    const first = await api.request('GET', '/v2/fromv2/transactions/0')
    assert.equal(at(first.body, 'data', 'timestamp'), '2024-03-01T10:00:00.123456Z', 'microseconds kept')
    const account = await api.request('GET', '/v2/fromv2/accounts/users:2')
    assert.deepEqual(at(account.body, 'data', 'metadata'), { tier: 'gold' })
    // A JSON array body is accepted too.
    const array = `[${fixture.map((log) => show(log).replace(/"(-?\d+)n"/g, '$1')).join(',\n')}]`
    assertStatus(await api.request('POST', '/v2/fromarray/logs/import', array), 204)
    assert.equal(await exportText(api, 'fromarray'), await exportText(api, 'fromv2'))
  } finally {
    await api.close()
  }
})

test('export and import errors: unknown ledger, malformed stream, unsupported type', async () => {
  const api = await openTestApi()
  try {
    assertError(await api.request('POST', '/v2/nope/logs/export'), 404, 'LEDGER_NOT_FOUND')
    assertError(await api.request('POST', '/v2/a/logs/import', '{"id":0,"type":"NEW_TRANSACTION"'), 400, 'IMPORT', 'ends inside')
    assertError(await api.request('POST', '/v2/b/logs/import', '{"id":0,"type":"INSERTED_SCHEMA","data":{},"date":"2024-01-01T00:00:00Z","hash":"x"}'), 400, 'IMPORT', 'log 0')
    assertError(await api.request('POST', '/v2/c/logs/import', '42'), 400, 'IMPORT', 'expected a log object')
    assertStatus(await api.request('POST', '/v2/d/logs/import', ''), 204)
    assert.deepEqual(asArray(at((await api.request('GET', '/v2/d/logs')).body, 'cursor', 'data')), [])
  } finally {
    await api.close()
  }
})
