import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/index.ts'
import { parseJson } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'

test('too many writes in flight for the cache horizon: 503 CACHE_HORIZON_EXCEEDED with Retry-After: 1, nothing applied', async () => {
  const tmp = tempDirectory()
  // K = 1: every index is its own generation, so two proposals in flight already reach Δ = 2.
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: 1, sync: false })
  const app = await buildApi(node)
  try {
    const post = (url: string, body: unknown) => app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
    assert.equal((await post('/v2/main', {})).statusCode, 204)
    const replies = await Promise.all(
      Array.from({ length: 12 }, (_, i) => post('/v2/main/transactions', { postings: [{ source: 'world', destination: `users:${i}`, amount: 1, asset: 'USD' }] })),
    )
    const refused = replies.filter((reply) => reply.statusCode === 503)
    const accepted = replies.filter((reply) => reply.statusCode === 200)
    assert.ok(refused.length > 0, 'some writes were refused')
    assert.equal(refused.length + accepted.length, replies.length)
    for (const reply of refused) {
      assert.equal(reply.headers['retry-after'], '1')
      const body = parseJson(reply.body) as { errorCode: string; errorMessage: string }
      assert.equal(body.errorCode, 'INTERNAL', 'v2 clients only know v2 codes')
      assert.match(body.errorMessage, /^CACHE_HORIZON_EXCEEDED: /)
    }
    const stats = parseJson((await app.inject({ method: 'GET', url: '/v2/main/stats' })).body) as { data: { transactions: bigint } }
    assert.equal(stats.data.transactions, BigInt(accepted.length), 'a refused write applied nothing')
    // Retrying (as Retry-After says) succeeds once the pipeline drains.
    const retried = await post('/v2/main/transactions', { postings: [{ source: 'world', destination: 'users:0', amount: 1, asset: 'USD' }] })
    assert.equal(retried.statusCode, 200)
  } finally {
    await app.close()
    await node.close()
    tmp.remove()
  }
})
