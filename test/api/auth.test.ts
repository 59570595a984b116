import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { SDK } from '@formance/formance-sdk'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import type { JWK } from 'jose'
import type { FastifyInstance } from 'fastify'
import { LedgerNode } from '../../src/server/index.ts'
import { SigningKey, buildApi, hashClientSecret, issueToken, parseApiClients, requirementOf } from '../../src/api/index.ts'
import { operations } from '../../src/api/openapi/index.ts'
import type { AuthOptions, TokenSettings } from '../../src/api/index.ts'
import { parseJson } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { rejectsWithV2Error } from '../compat/server.ts'

const secrets = new Map([
  ['reader', 'reader-secret-6f1e'],
  ['writer', 'writer-secret-93ab'],
  ['admin', 'admin-secret-c0de'],
  ['main-only', 'main-only-secret-77aa'],
])

const settings: TokenSettings = { issuer: 'tally', audience: 'tally', tokenSeconds: 300 }

async function authOptions(overrides: Partial<TokenSettings> = {}): Promise<AuthOptions> {
  const clients = parseApiClients(
    {
      clients: [
        { id: 'reader', secretHash: await hashClientSecret(secrets.get('reader') as string), scopes: ['ledger:read'] },
        { id: 'writer', secretHash: await hashClientSecret(secrets.get('writer') as string), scopes: ['ledger:read', 'ledger:write'] },
        { id: 'admin', secretHash: await hashClientSecret(secrets.get('admin') as string), scopes: ['ledger:read', 'ledger:write', 'ledger:admin'] },
        { id: 'main-only', secretHash: await hashClientSecret(secrets.get('main-only') as string), scopes: ['ledger:read', 'ledger:write', 'ledger:admin'], ledgers: ['main'] },
      ],
    },
    'test clients',
  )
  return { clients, key: await SigningKey.generate(), settings: { ...settings, ...overrides } }
}

interface Harness {
  readonly app: FastifyInstance
  readonly node: LedgerNode
  readonly auth: AuthOptions
  readonly logText: () => string
  token(client: string): Promise<string>
  close(): Promise<void>
}

async function harness(overrides: Partial<TokenSettings> = {}): Promise<Harness> {
  const tmp = tempDirectory()
  let logs = ''
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs += chunk.toString()
      done()
    },
  })
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, sync: false })
  const auth = await authOptions(overrides)
  const app = await buildApi(node, { auth, logger: { level: 'trace', stream } })
  return {
    app,
    node,
    auth,
    logText: () => logs,
    async token(client) {
      const reply = await app.inject({
        method: 'POST',
        url: '/api/auth/oauth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ grant_type: 'client_credentials', client_id: client, client_secret: secrets.get(client) as string }).toString(),
      })
      assert.equal(reply.statusCode, 200, reply.body)
      return (JSON.parse(reply.body) as { access_token: string }).access_token
    },
    async close() {
      await app.close()
      await node.close()
      tmp.remove()
    },
  }
}

const json = { 'content-type': 'application/json' }
const transaction = (destination: string) => JSON.stringify({ postings: [{ source: 'world', destination, amount: 100, asset: 'USD' }] })

function errorOf(body: string): { errorCode: string; errorMessage: string } {
  return parseJson(body) as { errorCode: string; errorMessage: string }
}

test('auth: every route of the catalogue but the probes answers 401 without a token, in the v2 error shape, before reading the body', async () => {
  const h = await harness()
  try {
    let checked = 0
    for (const operation of operations) {
      if (operation.status.kind === 'planned') continue
      for (const prefix of ['', '/api/ledger']) {
        const url = prefix + operation.path.replace(/\{(\w+)\}/g, (_whole, name: string) => (name === 'ledger' ? 'main' : name === 'id' ? '1' : 'x'))
        const reply = await h.app.inject({ method: operation.method.toUpperCase() as 'GET', url, headers: json, payload: '{"not": "read"' })
        // Stated here, not asked of requirementOf: the sweep must catch a route it wrongly makes public.
        if (operation.path === '/_/healthz' || operation.path === '/_/readyz') {
          assert.notEqual(reply.statusCode, 401, url)
          continue
        }
        assert.equal(reply.statusCode, 401, `${operation.method} ${url}: ${reply.body}`)
        assert.match(String(reply.headers['www-authenticate']), /^Bearer /)
        checked++
        if (operation.method === 'head') continue
        const body = errorOf(reply.body)
        assert.equal(body.errorCode, 'INTERNAL')
        assert.match(body.errorMessage, /^UNAUTHORIZED: /)
      }
    }
    assert.ok(checked > 40, `${checked} routes checked`)
    assert.equal((await h.app.inject({ method: 'GET', url: '/no/such/route' })).statusCode, 401, 'unknown routes say nothing without a token')
  } finally {
    await h.close()
  }
})

test('auth: the scope of every route: reads ledger:read, writes ledger:write, creation and operator routes ledger:admin', () => {
  const expected: [string, string, string][] = [
    ['GET', '/v2/:ledger/transactions', 'ledger:read'],
    ['POST', '/v2/:ledger/transactions', 'ledger:write'],
    ['POST', '/v2/:ledger/_bulk', 'ledger:write'],
    ['POST', '/v2/:ledger', 'ledger:admin'],
    ['POST', '/api/ledger/v2/:ledger', 'ledger:admin'],
    ['POST', '/_/check', 'ledger:admin'],
    ['POST', '/v2/:ledger/logs/import', 'ledger:admin'],
    ['POST', '/v2/:ledger/logs/export', 'ledger:read'],
    ['GET', '/_/metrics', 'ledger:read'],
  ]
  for (const [method, route, scope] of expected) {
    const requirement = requirementOf(method, route)
    assert.ok(requirement.kind === 'token' && requirement.scope === scope, `${method} ${route}`)
  }
  assert.deepEqual(requirementOf('GET', '/_/healthz'), { kind: 'public' })
  assert.deepEqual(requirementOf('GET', '/api/ledger/_/readyz'), { kind: 'public' })
})

test('auth: expired, wrong-signature, wrong-audience, wrong-issuer, alg:none and garbled tokens are refused with 401; nothing is applied', async () => {
  const h = await harness()
  try {
    const admin = await h.token('admin')
    assert.equal((await h.app.inject({ method: 'POST', url: '/v2/main', headers: { ...json, authorization: `Bearer ${admin}` }, payload: '{}' })).statusCode, 204)
    const client = h.auth.clients.get('admin')
    assert.ok(client !== undefined)
    const now = Math.floor(Date.now() / 1000)
    const expired = (await issueToken(h.auth.key, h.auth.settings, client, now - 3600)).token
    const otherKey = (await issueToken(await SigningKey.generate(), h.auth.settings, client, now)).token
    const wrongAudience = (await issueToken(h.auth.key, { ...h.auth.settings, audience: 'someone-else' }, client, now)).token
    const wrongIssuer = (await issueToken(h.auth.key, { ...h.auth.settings, issuer: 'evil' }, client, now)).token
    const [header, payload] = admin.split('.') as [string, string]
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`
    const swappedAlg = `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')}.${payload}.${admin.split('.')[2]}`
    const tamperedPayload = `${header}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: 'someone' })).toString('base64url')}.${admin.split('.')[2]}`
    const cases = new Map([
      ['expired', [expired, /expired/]],
      ['other key', [otherKey, /signature/]],
      ['wrong audience', [wrongAudience, /aud/]],
      ['wrong issuer', [wrongIssuer, /issuer/]],
      ['alg none', [none, /./]],
      ['alg swapped', [swappedAlg, /./]],
      ['tampered', [tamperedPayload, /signature/]],
      ['garbled', ['not-a-token', /malformed/]],
    ] as const)
    for (const [name, [token, reason]] of cases) {
      const reply = await h.app.inject({ method: 'POST', url: '/v2/main/transactions', headers: { ...json, authorization: `Bearer ${token}` }, payload: transaction('users:1') })
      assert.equal(reply.statusCode, 401, `${name}: ${reply.body}`)
      const body = errorOf(reply.body)
      assert.equal(body.errorCode, 'INTERNAL', name)
      assert.match(body.errorMessage, /^UNAUTHORIZED: /, name)
      assert.match(body.errorMessage, reason, name)
    }
    const stats = await h.app.inject({ method: 'GET', url: '/v2/main/stats', headers: { authorization: `Bearer ${admin}` } })
    assert.equal((parseJson(stats.body) as { data: { transactions: bigint } }).data.transactions, 0n, 'no refused write applied')
  } finally {
    await h.close()
  }
})

test('auth: wrong scope and wrong ledger answer 403 in the v2 error shape, nothing applied', async () => {
  const h = await harness()
  try {
    const [reader, writer, admin, mainOnly] = (await Promise.all(['reader', 'writer', 'admin', 'main-only'].map((client) => h.token(client)))) as [string, string, string, string]
    const send = (method: 'GET' | 'POST', url: string, token: string, payload?: string) =>
      h.app.inject({ method, url, headers: { ...json, authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload }) })
    assert.equal((await send('POST', '/v2/other', admin, '{}')).statusCode, 204)
    assert.equal((await send('POST', '/v2/main', mainOnly, '{}')).statusCode, 204)
    const refusals: [string, Promise<{ statusCode: number; body: string }>, RegExp][] = [
      ['reader writes', send('POST', '/v2/main/transactions', reader, transaction('users:1')), /ledger:write/],
      ['writer creates a ledger', send('POST', '/v2/third', writer, '{}'), /ledger:admin/],
      ['writer runs a check', send('POST', '/_/check', writer), /ledger:admin/],
      ['main-only writes to other', send('POST', '/v2/other/transactions', mainOnly, transaction('users:1')), /may not use this ledger/],
      ['main-only reads other', send('GET', '/api/ledger/v2/other/transactions', mainOnly), /may not use this ledger/],
      ['main-only lists every ledger', send('GET', '/v2', mainOnly), /restricted/],
    ]
    for (const [name, pending, reason] of refusals) {
      const reply = await pending
      assert.equal(reply.statusCode, 403, `${name}: ${reply.body}`)
      const body = errorOf(reply.body)
      assert.equal(body.errorCode, 'INTERNAL', name)
      assert.match(body.errorMessage, /^FORBIDDEN: /, name)
      assert.match(body.errorMessage, reason, name)
    }
    assert.equal((await send('POST', '/v2/main/transactions', mainOnly, transaction('users:1'))).statusCode, 200)
    assert.equal((await send('GET', '/v2/main/transactions', reader)).statusCode, 200)
    assert.equal((await send('GET', '/_/info', mainOnly)).statusCode, 200, 'info says nothing about any ledger')
    for (const ledger of ['main', 'other']) {
      const stats = parseJson((await send('GET', `/v2/${ledger}/stats`, admin)).body) as { data: { transactions: bigint } }
      assert.equal(stats.data.transactions, ledger === 'main' ? 1n : 0n, ledger)
    }
    assert.equal((await send('GET', '/v2/third', admin)).statusCode, 404, 'the refused creation created nothing')
  } finally {
    await h.close()
  }
})

test('auth: the token endpoint: form or Basic credentials; wrong secret, unknown client, other grants refused; secrets and tokens never logged', async () => {
  const h = await harness()
  try {
    const form = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
      h.app.inject({ method: 'POST', url: '/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, payload: new URLSearchParams(fields).toString() })
    const basic = await form({ grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from(`writer:${secrets.get('writer')}`).toString('base64')}` })
    assert.equal(basic.statusCode, 200, basic.body)
    const granted = JSON.parse(basic.body) as { access_token: string; token_type: string; expires_in: number; scope: string }
    assert.equal(granted.token_type, 'Bearer')
    assert.equal(granted.expires_in, 300)
    assert.equal(granted.scope, 'ledger:read ledger:write')
    assert.equal(basic.headers['cache-control'], 'no-store')
    const wrong = await form({ grant_type: 'client_credentials', client_id: 'writer', client_secret: 'guess' })
    assert.equal(wrong.statusCode, 401)
    assert.equal((JSON.parse(wrong.body) as { error: string }).error, 'invalid_client')
    assert.equal((await form({ grant_type: 'client_credentials', client_id: 'nobody', client_secret: 'guess' })).statusCode, 401)
    assert.equal((await form({ grant_type: 'password', client_id: 'writer', client_secret: secrets.get('writer') as string })).statusCode, 400)
    const used = await h.app.inject({ method: 'GET', url: '/v2', headers: { authorization: `Bearer ${granted.access_token}` } })
    assert.equal(used.statusCode, 200)
    const logs = h.logText()
    assert.ok(logs.includes('token issued'), 'the issue itself is logged')
    for (const secret of [...secrets.values(), granted.access_token, 'guess']) assert.ok(!logs.includes(secret), `${secret.slice(0, 12)}… appears in the logs`)
  } finally {
    await h.close()
  }
})

test('auth: Formance SDK authenticates through the token endpoint unchanged (security: {clientID, clientSecret, tokenURL})', async () => {
  const h = await harness()
  try {
    const url = await h.app.listen({ host: '127.0.0.1', port: 0 })
    const sdkOf = (client: string) => new SDK({ serverURL: url, security: { clientID: client, clientSecret: secrets.get(client) as string } })
    const admin = sdkOf('admin').ledger.v2
    assert.equal((await admin.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })).statusCode, 204)
    const created = await sdkOf('writer').ledger.v2.createTransaction({ ledger: 'main', v2PostTransaction: { postings: [{ source: 'world', destination: 'users:1', amount: 5n, asset: 'USD' }], metadata: {} } })
    assert.equal(created.statusCode, 200)
    await rejectsWithV2Error(sdkOf('reader').ledger.v2.createTransaction({ ledger: 'main', v2PostTransaction: { postings: [{ source: 'world', destination: 'users:1', amount: 5n, asset: 'USD' }], metadata: {} } }), {
      status: 403,
      errorCode: 'INTERNAL',
      messageIncludes: 'FORBIDDEN',
    })
    await rejectsWithV2Error(new SDK({ serverURL: url }).ledger.v2.listLedgers({}), { status: 401, errorCode: 'INTERNAL', messageIncludes: 'UNAUTHORIZED' })
  } finally {
    await h.close()
  }
})

test('auth: an external OpenID Connect issuer: discovery, JWKS, key rotation; its tokens need the audience too', async () => {
  let keys: JWK[] = []
  const issuerServer = createServer((request, response) => {
    const base = `http://127.0.0.1:${(issuerServer.address() as AddressInfo).port}`
    response.setHeader('content-type', 'application/json')
    if (request.url === '/.well-known/openid-configuration') response.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/keys` }))
    else if (request.url === '/keys') response.end(JSON.stringify({ keys }))
    else response.writeHead(404).end('{}')
  })
  await new Promise<void>((resolve) => issuerServer.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(issuerServer.address() as AddressInfo).port}`
  const h = await harness({ externalIssuer: issuer, externalKeysCooldownMs: 0 })
  try {
    const mint = async (kid: string, privateKey: Parameters<SignJWT['sign']>[0], audience = 'tally') =>
      new SignJWT({ scope: 'ledger:read' }).setProtectedHeader({ alg: 'ES256', kid }).setIssuer(issuer).setAudience(audience).setSubject('svc').setIssuedAt().setExpirationTime('2m').sign(privateKey)
    const first = await generateKeyPair('ES256')
    keys = [{ ...(await exportJWK(first.publicKey)), kid: 'k1', alg: 'ES256' }]
    const read = (token: string) => h.app.inject({ method: 'GET', url: '/v2', headers: { authorization: `Bearer ${token}` } })
    assert.equal((await read(await mint('k1', first.privateKey))).statusCode, 200)
    assert.equal((await read(await mint('k1', first.privateKey, 'other'))).statusCode, 401)
    // Rotation: the issuer publishes k2 and drops k1; a token naming k2 makes Tally fetch the keys again.
    const second = await generateKeyPair('ES256')
    keys = [{ ...(await exportJWK(second.publicKey)), kid: 'k2', alg: 'ES256' }]
    assert.equal((await read(await mint('k2', second.privateKey))).statusCode, 200)
    const forged = await generateKeyPair('ES256')
    assert.equal((await read(await mint('k2', forged.privateKey))).statusCode, 401)
  } finally {
    await h.close()
    await new Promise<void>((resolve) => issuerServer.close(() => resolve()))
  }
})

test('auth: a clients file holds hashes only; malformed entries stop the start with the entry named', async () => {
  const hash = await hashClientSecret('s3cret-value')
  const refused: [unknown, RegExp][] = [
    [{ clients: [{ id: 'a', secret: 's3cret-value', secretHash: hash, scopes: ['ledger:read'] }] }, /unknown field "secret".*never secrets/],
    [{ clients: [{ id: 'a', secretHash: 's3cret-value', scopes: ['ledger:read'] }] }, /secretHash must be scrypt/],
    [{ clients: [{ id: 'a', secretHash: hash, scopes: ['ledger:everything'] }] }, /scopes must be/],
    [{ clients: [{ id: 'a', secretHash: hash, scopes: [] }] }, /scopes must be/],
    [{ clients: [{ id: 'a', secretHash: hash, scopes: ['ledger:read'] }, { id: 'a', secretHash: hash, scopes: ['ledger:read'] }] }, /appears twice/],
    [{ clients: [{ id: 'has space', secretHash: hash, scopes: ['ledger:read'] }] }, /id must match/],
    [{ clients: [{ id: 'a', secretHash: hash.replace('$16384$', '$1048577$'), scopes: ['ledger:read'] }] }, /out of range/],
    [{ clients: [{ id: 'a', secretHash: hash, scopes: ['ledger:read'], ledgers: ['bad name'] }] }, /ledger/],
    [{ client: [] }, /expected \{"clients"/],
  ]
  for (const [document, reason] of refused) assert.throws(() => parseApiClients(document, 'clients.json'), reason, JSON.stringify(document))
  const clients = parseApiClients({ clients: [{ id: '__proto__', secretHash: hash, scopes: ['ledger:read'] }] }, 'clients.json')
  assert.equal(clients.get('__proto__')?.id, '__proto__', 'ids key a Map, never an object')
  const { secretMatches } = await import('../../src/api/auth/clients.ts')
  assert.equal(await secretMatches('s3cret-value', hash), true)
  assert.equal(await secretMatches('s3cret-valuE', hash), false)
})

test('auth: request lines name the API client; each outputs configuration change is its own line, with no setting in it', async () => {
  const h = await harness()
  try {
    const headers = { authorization: `Bearer ${await h.token('admin')}`, 'content-type': 'application/json' }
    const created = await h.app.inject({ method: 'POST', url: '/v2/_/exporters', headers, payload: JSON.stringify({ driver: 'http', config: { url: 'http://127.0.0.1:9/secret-path' } }) })
    assert.equal(created.statusCode, 201, created.body)
    const id = (JSON.parse(created.body) as { data: { id: string } }).data.id
    assert.equal((await h.app.inject({ method: 'DELETE', url: `/v2/_/exporters/${id}`, headers })).statusCode, 204)
    const lines = h.logText().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
    const changes = lines.filter((line) => line.msg === 'outputs configuration changed')
    assert.deepEqual(changes.map((line) => [line.action, line.exporterID, line.clientId, line.component]), [
      ['create exporter', id, 'admin', 'outputs'],
      ['delete exporter', id, 'admin', 'outputs'],
    ])
    assert.equal(changes[0]?.driver, 'http')
    const completed = lines.filter((line) => line.msg === 'request completed' && line.clientId === 'admin')
    assert.equal(completed.length, 2, 'the two configuring requests complete on lines naming their client')
    assert.ok(!h.logText().includes('secret-path'), 'an exporter setting is never logged')
  } finally {
    await h.close()
  }
})

test('auth: each request line names its own client, a kept token as a new one, and a refused token none; the line is shaped as before', async () => {
  const h = await harness()
  try {
    const reader = `Bearer ${await h.token('reader')}`
    const writer = `Bearer ${await h.token('writer')}`
    const get = (authorization: string | undefined, requestId: string) =>
      h.app.inject({ method: 'GET', url: '/v2', headers: { 'x-request-id': requestId, ...(authorization === undefined ? {} : { authorization }) } })
    // The reader's token twice (verified, then kept), the writer's between them, then a request with no token and a forbidden one.
    assert.equal((await get(reader, 'r-1')).statusCode, 200)
    assert.equal((await get(writer, 'w-1')).statusCode, 200)
    assert.equal((await get(reader, 'r-2')).statusCode, 200)
    assert.equal((await get(undefined, 'none-1')).statusCode, 401)
    const forbidden = await h.app.inject({ method: 'POST', url: '/v2/main', headers: { 'x-request-id': 'r-3', authorization: reader, ...json }, payload: '{}' })
    assert.equal(forbidden.statusCode, 403)
    assert.equal((await get(writer, 'w-2')).statusCode, 200)
    const lines = h.logText().trim().split('\n')
    const completions = lines.map((text) => ({ text, line: JSON.parse(text) as Record<string, unknown> })).filter(({ line }) => line.msg === 'request completed')
    const clientOf = new Map(completions.map(({ line }) => [line.reqId, line.clientId]))
    assert.deepEqual(
      ['r-1', 'w-1', 'r-2', 'none-1', 'r-3', 'w-2'].map((requestId) => [requestId, clientOf.get(requestId)]),
      [
        ['r-1', 'reader'],
        ['w-1', 'writer'],
        ['r-2', 'reader'],
        ['none-1', undefined],
        ['r-3', 'reader'],
        ['w-2', 'writer'],
      ],
    )
    // The client follows the request id among the line's bindings, before the line's own fields, as a child logger's binding does.
    const { text } = completions.find(({ line }) => line.reqId === 'r-2') ?? assert.fail('r-2 completed')
    assert.deepEqual(Object.keys(JSON.parse(text) as object), ['level', 'time', 'pid', 'hostname', 'reqId', 'clientId', 'res', 'responseTime', 'msg'])
    assert.match(text, /,"reqId":"r-2","clientId":"reader","res":\{"statusCode":200\},"responseTime":/)
  } finally {
    await h.close()
  }
})
