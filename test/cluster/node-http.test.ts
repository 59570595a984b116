import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildApi } from '../../src/api/index.ts'
import { parseJson } from '../../src/domain/index.ts'
import { assertError, asObject, openTestApi } from '../support/api.ts'
import { tempDirectory } from '../support/temp.ts'
import { Loopback } from './node-loopback.ts'
import { openNode } from './node-support.ts'

const deposit = { postings: [{ source: 'world', destination: 'users:1', amount: 100, asset: 'USD' }] }

test('reads and writes carry Tally-Applied-Index; a read asks for an index with Tally-Min-Applied-Index (single node)', async () => {
  const api = await openTestApi({ readWaitMs: 200 })
  try {
    const created = await api.request('POST', '/v2/main', {})
    assert.equal(created.status, 204)
    const written = await api.request('POST', '/v2/main/transactions', deposit)
    assert.equal(written.status, 200)
    const writeIndex = Number(written.headers['tally-applied-index'])
    assert.equal(written.headers['tally-epoch'], undefined, 'a single node has no epochs')
    assert.ok(writeIndex >= 2, `a write answers with its index or later (${String(written.headers['tally-applied-index'])})`)

    const read = await api.request('GET', '/v2/main/accounts/users:1', undefined, { 'Tally-Min-Applied-Index': String(writeIndex) })
    assert.equal(read.status, 200)
    assert.ok(Number(read.headers['tally-applied-index']) >= writeIndex)

    // An index this node has not reached: wait, then 503 with Retry-After.
    const ahead = await api.request('GET', '/v2/main/accounts/users:1', undefined, { 'Tally-Min-Applied-Index': String(writeIndex + 100) })
    assertError(ahead, 503, 'INTERNAL', /NOT_CAUGHT_UP/)
    assert.equal(ahead.headers['retry-after'], '1')
    assert.equal(ahead.headers['tally-applied-index'], String(writeIndex))

    // A read waiting for the next write is answered once it is applied. It is asked of a second app on
    // the same node that waits up to a minute (this one's 200 ms, which keeps the refusal above short,
    // is less than a loaded machine may take to make the write durable).
    const patient = await buildApi(api.node, { readWaitMs: 60_000 })
    try {
      const waiting = patient.inject({ method: 'GET', url: '/v2/main/transactions/1', headers: { 'Tally-Min-Applied-Index': String(writeIndex + 1) } })
      const next = await api.request('POST', '/v2/main/transactions', deposit)
      assert.equal(next.status, 200)
      const answered = await waiting
      assert.equal(answered.statusCode, 200, answered.body)
      assert.ok(Number(answered.headers['tally-applied-index']) >= writeIndex + 1)
    } finally {
      await patient.close()
    }

    for (const bad of ['-1', 'abc', '1.5', '99999999999999999999']) {
      assertError(await api.request('GET', '/v2/main', undefined, { 'Tally-Min-Applied-Index': bad }), 400, 'VALIDATION', /Tally-Min-Applied-Index/)
    }
    const refused = await api.request('GET', '/v2/main', undefined, { 'Tally-Min-Applied-Index': 'x' })
    assert.equal(refused.headers['tally-applied-index'], undefined, 'refused before its handler: no index to tell')
    const cluster = await api.request('GET', '/_/cluster')
    assert.equal(cluster.status, 200)
    const status = asObject(cluster.body)
    assert.equal(status.mode, 'single')
    assert.equal(status.role, 'single')
    assert.equal(status.caughtUp, true)
    assert.equal((await api.request('GET', '/_/readyz')).status, 200)
  } finally {
    await api.close()
  }
})

test('replicated mode over HTTP: a replica refuses writes naming the primary, is not ready until caught up, and serves read-your-writes', async () => {
  const dirs = { p: tempDirectory(), r: tempDirectory() }
  const p = await openNode(dirs.p.directory, 'p')
  const r = await openNode(dirs.r.directory, 'r')
  const loop = new Loopback(p, { mode: 'sync_all', memberCount: 2 })
  let primaryApi: FastifyInstance | undefined
  let replicaApi: FastifyInstance | undefined
  try {
    primaryApi = await buildApi(p)
    replicaApi = await buildApi(r, { readWaitMs: 10_000 })
    const post = (app: FastifyInstance, url: string, body: unknown) => app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } })

    assert.equal((await replicaApi.inject({ method: 'GET', url: '/_/readyz' })).statusCode, 503, 'a replica that never heard from a primary is not ready')
    await p.becomePrimary(1, 0)
    await r.adoptEpoch(1, 'p')
    const refused = await post(replicaApi, '/v2/main', {})
    assert.equal(refused.statusCode, 503)
    assert.equal(refused.headers['retry-after'], '1')
    const body = asObject(parseJson(refused.body))
    assert.equal(body.errorCode, 'INTERNAL')
    assert.match(String(body.errorMessage), /NOT_PRIMARY: .*send writes to node p/)
    assert.deepEqual(asObject(parseJson(String(body.details))), { reason: 'NOT_PRIMARY', retryable: 'true', primary: 'p' })

    await loop.connect('r', r)
    assert.equal((await replicaApi.inject({ method: 'GET', url: '/_/readyz' })).statusCode, 200, 'caught up once it heard the committed LSN and applied it')
    assert.equal((await post(primaryApi, '/v2/main', {})).statusCode, 204)
    const written = await post(primaryApi, '/v2/main/transactions', deposit)
    assert.equal(written.statusCode, 200)
    const index = String(written.headers['tally-applied-index'])
    assert.equal(written.headers['tally-epoch'], '1', 'a write the primary answered names the epoch it answered in')
    assert.equal(refused.headers['tally-epoch'], undefined, 'a refusal names none')
    const read = await replicaApi.inject({ method: 'GET', url: '/v2/main/accounts/users:1?expand=volumes', headers: { 'Tally-Min-Applied-Index': index } })
    assert.equal(read.statusCode, 200)
    assert.ok(Number(read.headers['tally-applied-index']) >= Number(index))
    assert.match(read.body, /"input":100/)

    const status = asObject(parseJson((await replicaApi.inject({ method: 'GET', url: '/_/cluster' })).body))
    assert.equal(status.mode, 'replicated')
    assert.equal(status.role, 'replica')
    assert.equal(status.primaryId, 'p')
    assert.equal(String(status.epoch), '1')
    const primaryStatus = asObject(parseJson((await primaryApi.inject({ method: 'GET', url: '/_/cluster' })).body))
    assert.deepEqual(status.stateHash, primaryStatus.stateHash)
    assert.equal(String(status.appliedIndex), String(primaryStatus.appliedIndex))
  } finally {
    loop.close()
    await primaryApi?.close()
    await replicaApi?.close()
    await Promise.all([p.close(), r.close()])
    dirs.p.remove()
    dirs.r.remove()
  }
})
