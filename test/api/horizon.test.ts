import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/index.ts'
import { parseJson } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { overrunCacheHorizon, postJson } from '../support/ledger.ts'
import { SDK } from '@formance/formance-sdk'
import { ErrorsV2ErrorResponse } from '@formance/formance-sdk/sdk/models/ledger/index.js'
import { openCompatServer } from '../compat/server.ts'
import { heldWal } from '../support/held-wal.ts'
import { until } from '../support/local.ts'

test('too many writes in flight for the cache horizon: 503 CACHE_HORIZON_EXCEEDED with Retry-After: 1, nothing applied', async () => {
  const tmp = tempDirectory()
  // K = 1: every index is its own generation, so two proposals in flight already reach Δ = 2
  // (one proposal per write: gathered, the writes behind the first would be one proposal).
  // The first write is kept in flight by holding its fdatasync (`overrunCacheHorizon`).
  const wal = heldWal()
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: 1, sync: true, walIo: wal.walIo, gatherOrdersMax: 1, applyWhenDurable: true })
  const app = await buildApi(node)
  try {
    const replies = await overrunCacheHorizon(app, wal)
    const refused = replies.filter((reply) => reply.statusCode === 503)
    const accepted = replies.filter((reply) => reply.statusCode === 200)
    assert.equal(replies[0]?.statusCode, 200, 'the write in flight lands')
    assert.equal(refused.length, 11, 'every write behind it is refused')
    assert.equal(refused.length + accepted.length, replies.length)
    for (const reply of refused) {
      assert.equal(reply.headers['retry-after'], '1')
      const body = parseJson(reply.body) as { errorCode: string; errorMessage: string; details?: string }
      // v2's own code for its own retryable 503 (too many database clients), so closed-enum SDKs parse it; the reason
      // is machine-readable in `details` and leads the message.
      assert.equal(body.errorCode, 'INTERNAL')
      assert.match(body.errorMessage, /^CACHE_HORIZON_EXCEEDED: /)
      assert.deepEqual(parseJson(body.details ?? 'null'), { reason: 'CACHE_HORIZON_EXCEEDED', retryable: 'true' })
    }
    const stats = parseJson((await app.inject({ method: 'GET', url: '/v2/main/stats' })).body) as { data: { transactions: bigint } }
    assert.equal(stats.data.transactions, BigInt(accepted.length), 'a refused write applied nothing')
    // Retrying (as Retry-After says) succeeds once the pipeline drains.
    const retried = await postJson(app, '/v2/main/transactions', { postings: [{ source: 'world', destination: 'users:0', amount: 1, asset: 'USD' }] })
    assert.equal(retried.statusCode, 200)
  } finally {
    await app.close()
    await node.close()
    tmp.remove()
  }
})

test("Formance's SDK under the horizon: the typed v2 error with status 503, Retry-After and the reason in details; the SDK's retry makes every write land", async () => {
  // One write is kept in flight (its fdatasync held, applied only once durable), so the writes sent
  // behind it are planned two generations ahead and refused, however they are gathered and however
  // fast the machine makes the first one durable (the burst alone overran the horizon only by timing).
  const wal = heldWal()
  const server = await openCompatServer({}, { cacheRotationThreshold: 1, applyWhenDurable: true, sync: true, walIo: wal.walIo })
  try {
    await server.v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    const write = (sdk: SDK, i: number) =>
      sdk.ledger.v2.createTransaction({ ledger: 'main', v2PostTransaction: { postings: [{ source: 'world', destination: `users:${i}`, amount: 1n, asset: 'USD' }], metadata: {} } })
    wal.hold()
    const first = write(server.sdk, 0)
    const held = await Promise.race([wal.waiting().then(() => true), first.then(() => false, () => false)])
    assert.ok(held, 'the first write waits on its held fdatasync')
    // Without retries: the refused calls throw the SDK's typed error, carrying what a client needs to act.
    const refused: unknown[] = []
    const behind = Array.from({ length: 11 }, (_, i) => write(server.sdk, i + 1).then(() => undefined, (reason: unknown) => void refused.push(reason)))
    await until('the writes behind the one in flight are refused', () => (refused.length === behind.length ? true : undefined))
    wal.release()
    await first
    await Promise.all(behind)
    for (const reason of refused) {
      assert.ok(reason instanceof ErrorsV2ErrorResponse, `the SDK parsed the 503: ${String(reason)}`)
      assert.equal(reason.statusCode, 503)
      assert.equal(reason.headers.get('retry-after'), '1')
      assert.equal(reason.errorCode, 'INTERNAL')
      assert.equal((parseJson(reason.details ?? 'null') as { reason?: string }).reason, 'CACHE_HORIZON_EXCEEDED')
    }
    // With the SDK's own retry (status-driven, honouring Retry-After): every write lands.
    const retrying = new SDK({
      serverURL: server.url,
      retryConfig: { strategy: 'backoff', backoff: { initialInterval: 10, maxInterval: 200, exponent: 1.5, maxElapsedTime: 60_000 }, retryConnectionErrors: false },
    })
    const landed = await Promise.all(Array.from({ length: 12 }, (_, i) => write(retrying, 100 + i)))
    assert.equal(landed.length, 12)
    for (const response of landed) assert.ok(response.v2CreateTransactionResponse?.data.id !== undefined)
  } finally {
    wal.release()
    await server.close()
  }
})
