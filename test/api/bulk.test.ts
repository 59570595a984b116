import { test } from 'node:test'
import assert from 'node:assert/strict'
import { asArray, asObject, assertError, assertStatus, at, balanceOf, createLedger, ledgerSnapshot, openTestApi, postTransaction, walkForward } from '../support/api.ts'
import type { JsonObject, TestApi } from '../support/api.ts'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi, bodyBytesMaxDefault } from '../../src/api/index.ts'
import { parseJson, stringifyJson } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'

function create(source: string, destination: string, amount: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { action: 'CREATE_TRANSACTION', data: { postings: [{ source, destination, amount, asset: 'USD' }], ...extra } }
}

async function fresh(bulkElementsMax?: number): Promise<TestApi> {
  const api = await openTestApi(bulkElementsMax === undefined ? {} : { bulkElementsMax })
  await createLedger(api, 'main')
  return api
}

function elements(body: unknown): JsonObject[] {
  return asArray(at(body as never, 'data')).map((element, i) => asObject(element, `data[${i}]`))
}

test('_bulk: all four actions succeed with the v2 response shape and log ids', async () => {
  const api = await fresh()
  try {
    await postTransaction(api, 'main', [{ source: 'world', destination: 'users:1', amount: 50, asset: 'USD' }])
    const reply = await api.request('POST', '/v2/main/_bulk', [
      create('world', 'users:2', 10, { metadata: { n: '1' } }),
      { action: 'ADD_METADATA', data: { targetType: 'ACCOUNT', targetId: 'users:2', metadata: { tier: 'gold' } } },
      { action: 'ADD_METADATA', data: { targetType: 'TRANSACTION', targetId: 0, metadata: { a: 'b', c: 'd' } } },
      { action: 'DELETE_METADATA', data: { targetType: 'TRANSACTION', targetId: 0, key: 'a' } },
      { action: 'DELETE_METADATA', data: { targetType: 'ACCOUNT', targetId: 'users:2', key: 'tier' } },
      { action: 'REVERT_TRANSACTION', data: { id: 0, metadata: { why: 'test' } } },
    ])
    assertStatus(reply, 200)
    // The answer's bytes are the generic printer's for its own value: compact, no stray text around what is checked below.
    assert.equal(reply.text, stringifyJson(reply.body))
    const data = elements(reply.body)
    assert.deepEqual(data.map((e) => e.responseType), ['CREATE_TRANSACTION', 'ADD_METADATA', 'ADD_METADATA', 'DELETE_METADATA', 'DELETE_METADATA', 'REVERT_TRANSACTION'])
    assert.deepEqual(data.map((e) => e.logID), [1n, 2n, 3n, 4n, 5n, 6n])
    assert.equal(at(data[0], 'data', 'id'), 1n)
    assert.deepEqual(at(data[0], 'data', 'postCommitVolumes', 'users:2', 'USD'), { input: 10n, output: 0n, balance: 10n })
    for (const i of [1, 2, 3, 4]) assert.equal(data[i]?.data, undefined)
    assert.equal(at(data[5], 'data', 'id'), 2n)
    assert.deepEqual(at(data[5], 'data', 'metadata'), { why: 'test', 'com.formance.spec/state/reverts': '0' })
    assert.equal(await balanceOf(api, 'main', 'users:1', 'USD'), 0n)
    assert.equal(await balanceOf(api, 'main', 'users:2', 'USD'), 10n)
    const original = asObject(at((await api.request('GET', '/v2/main/transactions/0')).body, 'data'))
    assert.deepEqual(original.metadata, { c: 'd' })
    assert.equal(original.reverted, true)
    assert.deepEqual(at((await api.request('GET', '/v2/main/accounts/users:2')).body, 'data', 'metadata'), {})
    const logs = await walkForward(api, '/v2/main/logs')
    assert.deepEqual(logs.items.map((log) => at(log, 'id')), [6n, 5n, 4n, 3n, 2n, 1n, 0n])
    // Empty bulk.
    const empty = await api.request('POST', '/v2/main/_bulk', [])
    assertStatus(empty, 200)
    assert.deepEqual(empty.body, { data: [] })
    // Bulk element with its own idempotency key: a replay returns the same transaction.
    const keyed = [{ ...create('world', 'users:3', 7), ik: 'bulk-key-1' }]
    const first = await api.request('POST', '/v2/main/_bulk', keyed)
    const second = await api.request('POST', '/v2/main/_bulk', keyed)
    assertStatus(second, 200)
    assert.deepEqual(second.body, first.body)
    assert.equal(await balanceOf(api, 'main', 'users:3', 'USD'), 7n)
  } finally {
    await api.close()
  }
})

test('_bulk: default stops at the first error; continueOnFailure keeps going; ERROR elements', async () => {
  const api = await fresh()
  try {
    const stopped = await api.request('POST', '/v2/main/_bulk', [create('world', 'a', 10), create('a', 'b', 100), create('world', 'c', 5)])
    assertStatus(stopped, 400)
    const stoppedBody = asObject(stopped.body)
    assert.equal(stoppedBody.errorCode, 'INSUFFICIENT_FUND')
    assert.equal(typeof stoppedBody.errorMessage, 'string')
    const stoppedData = elements(stopped.body)
    assert.equal(stoppedData.length, 2, 'nothing reported after the failing element')
    assert.equal(stoppedData[0]?.responseType, 'CREATE_TRANSACTION')
    assert.deepEqual({ ...stoppedData[1], errorDescription: undefined }, { responseType: 'ERROR', logID: 0n, errorCode: 'INSUFFICIENT_FUND', errorDescription: undefined })
    assert.ok(String(stoppedData[1]?.errorDescription).includes('a'))
    assert.equal(await balanceOf(api, 'main', 'a', 'USD'), 10n, 'the element before the failure is applied')
    assertError(await api.request('GET', '/v2/main/accounts/c'), 404, 'NOT_FOUND')

    const continued = await api.request('POST', '/v2/main/_bulk?continueOnFailure=true', [create('world', 'd', 1), create('a', 'b', 100), create('world', 'e', 2), create('e', 'f', 3)])
    assertStatus(continued, 400)
    assert.equal(continued.text, stringifyJson(continued.body))
    const continuedData = elements(continued.body)
    assert.deepEqual(continuedData.map((e) => e.responseType), ['CREATE_TRANSACTION', 'ERROR', 'CREATE_TRANSACTION', 'ERROR'])
    assert.deepEqual(continuedData.map((e) => e.errorCode), [undefined, 'INSUFFICIENT_FUND', undefined, 'INSUFFICIENT_FUND'])
    assert.equal(await balanceOf(api, 'main', 'd', 'USD'), 1n)
    assert.equal(await balanceOf(api, 'main', 'e', 'USD'), 2n)

    const mixed = await api.request('POST', '/v2/main/_bulk?continueOnFailure=true', [
      { action: 'ADD_METADATA', data: { targetType: 'TRANSACTION', targetId: 999, metadata: { a: 'b' } } },
      { action: 'REVERT_TRANSACTION', data: { id: 999 } },
      { action: 'DELETE_METADATA', data: { targetType: 'ACCOUNT', targetId: 'ghost', key: 'x' } },
      create('world', 'g', 1),
    ])
    assertStatus(mixed, 400)
    assert.deepEqual(elements(mixed.body).map((e) => e.errorCode ?? e.responseType), ['NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND', 'CREATE_TRANSACTION'])

    // parallel implies independent elements: all are tried.
    const parallel = await api.request('POST', '/v2/main/_bulk?parallel=true', [create('world', 'h', 1), create('nobody', 'b', 100), create('world', 'i', 1)])
    assertStatus(parallel, 400)
    assert.deepEqual(elements(parallel.body).map((e) => e.responseType), ['CREATE_TRANSACTION', 'ERROR', 'CREATE_TRANSACTION'])
  } finally {
    await api.close()
  }
})

test('_bulk: atomic=true rolls everything back when one element fails', async () => {
  const api = await fresh()
  try {
    await postTransaction(api, 'main', [{ source: 'world', destination: 'a', amount: 10, asset: 'USD' }])
    const before = await ledgerSnapshot(api, 'main')
    const reply = await api.request('POST', '/v2/main/_bulk?atomic=true', [
      create('world', 'x', 10),
      { action: 'ADD_METADATA', data: { targetType: 'ACCOUNT', targetId: 'a', metadata: { k: 'v' } } },
      create('a', 'b', 100),
      create('world', 'y', 5),
    ])
    assertStatus(reply, 400)
    const data = elements(reply.body)
    assert.equal(data.length, 4)
    for (const element of data) assert.equal(element.responseType, 'ERROR')
    assert.equal(data[2]?.errorCode, 'INSUFFICIENT_FUND')
    assert.equal(await ledgerSnapshot(api, 'main'), before)
    assertError(await api.request('GET', '/v2/main/accounts/x'), 404, 'NOT_FOUND')
    // A successful atomic bulk applies everything.
    const ok = await api.request('POST', '/v2/main/_bulk?atomic=true', [create('world', 'x', 10), create('x', 'y', 4)])
    assertStatus(ok, 200)
    assert.equal(await balanceOf(api, 'main', 'y', 'USD'), 4n)
  } finally {
    await api.close()
  }
})

test(
  '_bulk: a failed atomic bulk reports the failing element\'s code at the top level',
  {},
  async () => {
    const api = await fresh()
    try {
      const reply = await api.request('POST', '/v2/main/_bulk?atomic=true', [create('world', 'x', 10), create('nobody', 'b', 100)])
      assertError(reply, 400, 'INSUFFICIENT_FUND')
    } finally {
      await api.close()
    }
  },
)

test('_bulk: atomic&parallel 412, BULK_SIZE_EXCEEDED, malformed elements 400 naming the index, nothing applied', async () => {
  const api = await fresh(3)
  try {
    await postTransaction(api, 'main', [{ source: 'world', destination: 'a', amount: 10, asset: 'USD' }])
    const before = await ledgerSnapshot(api, 'main')
    const precondition = await api.request('POST', '/v2/main/_bulk?atomic=true&parallel=true', [create('world', 'x', 1)])
    assert.equal(precondition.status, 412, precondition.text)
    assert.ok(String(asObject(precondition.body).errorMessage).includes('parallel'))
    assertError(await api.request('POST', '/v2/main/_bulk', [create('world', 'x', 1), create('world', 'x', 1), create('world', 'x', 1), create('world', 'x', 1)]), 400, 'BULK_SIZE_EXCEEDED', '3')
    const malformed: [unknown, string][] = [
      [[create('world', 'x', 1), { action: 'NOPE', data: {} }], '[1].action'],
      [[create('world', 'x', 1), 5], '[1]'],
      [[create('world', 'x', 1), create('world', 'x', -1)], '[1].data: postings[0].amount'],
      [[create('world', 'x', 1), { action: 'ADD_METADATA', data: { targetType: 'X', targetId: 'a', metadata: {} } }], '[1].data: targetType'],
      [[{ action: 'ADD_METADATA', data: { targetType: 'ACCOUNT', targetId: 'a', metadata: { k: 1 } } }], '[0].data: metadata'],
      [[{ action: 'REVERT_TRANSACTION', data: { id: 'x' } }], '[0].data: id'],
      [[{ action: 'DELETE_METADATA', data: { targetType: 'TRANSACTION', targetId: 0 } }], '[0].data: key'],
      [[create('world', 'x', 1), { action: 'CREATE_TRANSACTION' }], '[1].data'],
      [[{ ...create('world', 'x', 1), ik: 7 }], '[0].ik'],
    ]
    for (const [body, fragment] of malformed) assertError(await api.request('POST', '/v2/main/_bulk?continueOnFailure=true', body), 400, 'VALIDATION', fragment)
    assertError(await api.request('POST', '/v2/main/_bulk', { action: 'CREATE_TRANSACTION' }), 400, 'VALIDATION', 'array')
    assertError(await api.request('POST', '/v2/main/_bulk', '[{"action":'), 400, 'VALIDATION', 'malformed JSON')
    assertError(await api.request('POST', '/v2/main/_bulk?atomic=perhaps', []), 400, 'VALIDATION', 'atomic')
    assert.equal(await ledgerSnapshot(api, 'main'), before)
  } finally {
    await api.close()
  }
})

test(
  '_bulk: an unknown ledger is 404 LEDGER_NOT_FOUND like every other ledger route',
  {},
  async () => {
    const api = await fresh()
    try {
      assertError(await api.request('POST', '/v2/nope/_bulk', [create('world', 'x', 1)]), 404, 'LEDGER_NOT_FOUND')
    } finally {
      await api.close()
    }
  },
)

test('_bulk: a body over the log record bound is refused with 413 naming the bound, before it is parsed or planned; one under it is served', async () => {
  const temp = tempDirectory('tally-bulk-record-')
  // A small WAL segment makes the record bound (and so the _bulk body limit) 256 KiB, far below the server's body limit.
  const node = await LedgerNode.open({ dataDirectory: temp.directory, sync: false, walSegmentBytesMax: 256 * 1024 })
  const app = await buildApi(node)
  try {
    const recordBytes = node.payloadBytesMax()
    assert.ok(recordBytes < bodyBytesMaxDefault && recordBytes <= 256 * 1024, `record payload bound ${recordBytes}`)
    const post = (url: string, payload: string) => app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json' } })
    assert.equal((await post('/v2/main', '{}')).statusCode, 204)
    let submitted = 0
    const submit = node.admission.submit.bind(node.admission)
    node.admission.submit = (orders, options) => {
      submitted++
      return submit(orders, options)
    }
    const element = (i: number) => ({ action: 'CREATE_TRANSACTION', data: { postings: [{ source: 'world', destination: `users:${i}`, amount: 1, asset: 'USD' }], metadata: { note: 'x'.repeat(200) } } })
    const body = (count: number) => JSON.stringify(Array.from({ length: count }, (_, i) => element(i)))
    const over = body(1500)
    assert.ok(Buffer.byteLength(over) > recordBytes)
    const refused = await post('/v2/main/_bulk', over)
    assert.equal(refused.statusCode, 413, refused.body)
    const error = parseJson(refused.body) as { errorCode: string; errorMessage: string }
    assert.equal(error.errorCode, 'VALIDATION')
    assert.match(error.errorMessage, new RegExp(`limit of ${recordBytes} bytes: the log's record bound: a _bulk is logged as one record of at most ${recordBytes} bytes`))
    assert.equal(submitted, 0, 'nothing was planned')
    // Under the bound: served as before.
    const under = body(500)
    assert.ok(Buffer.byteLength(under) < recordBytes)
    const served = await post('/v2/main/_bulk', under)
    assert.equal(served.statusCode, 200, served.body.slice(0, 300))
    assert.equal(submitted, 1)
    // Other routes keep the server's own limit: a single transaction's body over the record bound is parsed (and refused by its own checks, not 413).
    const single = await post('/v2/main/transactions', JSON.stringify({ postings: [{ source: 'world', destination: 'users:x', amount: 1, asset: 'USD' }], metadata: { note: 'x'.repeat(recordBytes) } }))
    assert.notEqual(single.statusCode, 413, single.body.slice(0, 300))
  } finally {
    await app.close()
    await node.close()
    temp.remove()
  }
})
