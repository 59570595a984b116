import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { assertV2Error, connect, exchange, openListeningApi } from './raw-http.ts'
import type { ListeningApi } from './raw-http.ts'
import { operations, routeUrlOf } from '../../src/api/openapi/index.ts'
import { pathParameterLengthMax } from '../../src/api/app.ts'

/**
 * Every error a client can provoke at the transport level — including the
 * ones fastify and node's HTTP parser produce before any route runs —
 * answers v2's `{errorCode, errorMessage}` shape. Raw sockets, because a
 * client library would never send most of these.
 */
describe('transport errors answer the v2 error shape', () => {
  let api: ListeningApi
  before(async () => {
    api = await openListeningApi({ bodyBytesMax: 64 * 1024 })
    const created = await exchange(api.port, 'POST /v2/main HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')
    assert.equal(created.status, 204, created.body)
  })
  after(async () => api.close())

  const get = (path: string, headers = ''): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n${headers}\r\n`
  const post = (path: string, body: string, headers = 'Content-Type: application/json\r\n'): string =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`

  test('unknown route: 404 NOT_FOUND', async () => {
    assertV2Error(await exchange(api.port, get('/v3/nothing')), 404, 'NOT_FOUND')
  })

  test('known route, wrong method: 405 with Allow, not 404', async () => {
    const response = await exchange(api.port, `PATCH /v2/main/transactions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`)
    assertV2Error(response, 405, 'VALIDATION', /PATCH/)
    const allowed = (response.headers.get('allow') ?? '').split(',').map((method) => method.trim())
    assert.ok(allowed.includes('GET') && allowed.includes('POST'), `Allow: ${response.headers.get('allow')}`)
    const prefixed = await exchange(api.port, `PUT /api/ledger/v2/main/accounts/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`)
    assertV2Error(prefixed, 405, 'VALIDATION')
  })

  test('sweep: every v2 operation path, called with a method it does not take, is 405 with Allow naming the ones it does', async () => {
    const methodsByPath = new Map<string, Set<string>>()
    for (const operation of operations) {
      const url = routeUrlOf(operation.path).replace(/:[A-Za-z]+/g, 'x')
      const methods = methodsByPath.get(url) ?? new Set<string>()
      methods.add(operation.method.toUpperCase())
      methodsByPath.set(url, methods)
    }
    assert.ok(methodsByPath.size > 20, 'the catalogue is there')
    for (const [url, methods] of methodsByPath) {
      const wrong = ['PATCH', 'PUT', 'DELETE', 'POST', 'GET'].find((method) => !methods.has(method)) as string
      for (const prefix of ['', '/api/ledger']) {
        const response = await exchange(api.port, `${wrong} ${prefix}${url} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`)
        assertV2Error(response, 405, 'VALIDATION')
        const allowed = new Set((response.headers.get('allow') ?? '').split(',').map((method) => method.trim()))
        for (const method of methods) assert.ok(allowed.has(method), `${wrong} ${prefix}${url}: Allow ${response.headers.get('allow')} lacks ${method}`)
      }
    }
  })

  test('path parameter far over every length limit: 414 saying it is a length limit', async () => {
    assertV2Error(await exchange(api.port, get(`/v2/main/accounts/${'a'.repeat(pathParameterLengthMax + 1)}`)), 414, 'VALIDATION', /long/)
  })

  test('bad percent-encoding in the path: 400 VALIDATION', async () => {
    assertV2Error(await exchange(api.port, get('/v2/main/accounts/%E0%A4%A')), 400, 'VALIDATION')
  })

  test('bad chunked encoding: 400 VALIDATION', async () => {
    const request = 'POST /v2/main/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n'
    assertV2Error(await exchange(api.port, request), 400, 'VALIDATION')
  })

  test('malformed Content-Length: 400 VALIDATION', async () => {
    const request = 'POST /v2/main/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}'
    assertV2Error(await exchange(api.port, request), 400, 'VALIDATION')
  })

  test('garbage request line: 400 VALIDATION', async () => {
    assertV2Error(await exchange(api.port, 'HELLO THERE\r\n\r\n'), 400, 'VALIDATION')
  })

  test('headers over the size limit: 431 VALIDATION', async () => {
    assertV2Error(await exchange(api.port, get('/_/healthz', `X-Big: ${'b'.repeat(64 * 1024)}\r\n`)), 431, 'VALIDATION')
  })

  test('body over the limit: 413 VALIDATION, whether announced or streamed', async () => {
    assertV2Error(await exchange(api.port, post('/v2/main/transactions', 'x'.repeat(70 * 1024))), 413, 'VALIDATION', /limit/)
    const chunk = 'x'.repeat(32 * 1024)
    const chunked = `POST /v2/main/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${[chunk, chunk, chunk].map((part) => `${part.length.toString(16)}\r\n${part}\r\n`).join('')}0\r\n\r\n`
    assertV2Error(await exchange(api.port, chunked), 413, 'VALIDATION', /limit/)
  })

  test('Idempotency-Key sent twice: 400 VALIDATION (two keys never pass as one joined key); sent once, a replay is a hit', async () => {
    const body = '{"postings":[{"source":"world","destination":"idem","amount":1,"asset":"USD"}]}'
    const twice = 'Content-Type: application/json\r\nIdempotency-Key: k1\r\nIdempotency-Key: k2\r\n'
    assertV2Error(await exchange(api.port, post('/v2/main/transactions', body, twice)), 400, 'VALIDATION', /more than once/)
    const once = 'Content-Type: application/json\r\nidempotency-key: k1\r\n'
    const first = await exchange(api.port, post('/v2/main/transactions', body, once))
    assert.equal(first.status, 200, first.body)
    assert.equal(first.headers.get('idempotency-hit'), undefined)
    const replay = await exchange(api.port, post('/v2/main/transactions', body, once))
    assert.equal(replay.headers.get('idempotency-hit'), 'true')
    assert.equal(replay.body, first.body)
  })

  test('malformed JSON: 400 VALIDATION', async () => {
    assertV2Error(await exchange(api.port, post('/v2/main/transactions', '{"postings": [')), 400, 'VALIDATION', /JSON/)
  })

  test('a non-JSON content type on a write: 415 VALIDATION (a text/plain POST is a cross-site simple request)', async () => {
    const body = '{"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD"}]}'
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain;charset=UTF-8']) {
      assertV2Error(await exchange(api.port, post('/v2/main/transactions', body, `Content-Type: ${type}\r\n`)), 415, 'VALIDATION', /application\/json/)
    }
    assertV2Error(await exchange(api.port, post('/v2/main/transactions', body, '')), 415, 'VALIDATION', /application\/json/)
    const empty = await exchange(api.port, `POST /v2/other HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n`)
    assertV2Error(empty, 415, 'VALIDATION')
    const accounts = await exchange(api.port, get('/v2/main/accounts/a'))
    assert.equal(accounts.status, 404, 'nothing was written through a refused content type')
    const importing = post('/v2/imported/logs/import', '', 'Content-Type: text/plain\r\n')
    assertV2Error(await exchange(api.port, importing), 415, 'VALIDATION', /x-ndjson/)
    for (const type of ['application/json', 'application/json; charset=utf-8', 'application/vnd.formance+json']) {
      assert.equal((await exchange(api.port, post('/v2/main/transactions', body, `Content-Type: ${type}\r\n`))).status, 200, type)
    }
  })

  test('duplicated Idempotency-Key headers: 400 VALIDATION, nothing applied', async () => {
    const body = '{"postings":[{"source":"world","destination":"dup","amount":1,"asset":"USD"}]}'
    const response = await exchange(api.port, post('/v2/main/transactions', body, 'Content-Type: application/json\r\nIdempotency-Key: k1\r\nIdempotency-Key: k2\r\n'))
    assertV2Error(response, 400, 'VALIDATION', /Idempotency-Key/)
    assert.equal((await exchange(api.port, get('/v2/main/accounts/dup'))).status, 404)
  })

  test('an error response on a kept-alive connection leaves the connection usable', async () => {
    const connection = await connect(api.port)
    try {
      connection.write(get('/v3/nothing'))
      assertV2Error(await connection.response(), 404, 'NOT_FOUND')
    } finally {
      connection.socket.destroy()
    }
  })
})
