import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LedgerNode } from '../../src/server/index.ts'
import type { LedgerNodeOptions } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/app.ts'
import { idempotencyKey } from '../../src/domain/index.ts'
import type { LedgerName } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { transactionBody } from '../support/api.ts'

/**
 * An idempotent replay answers what the first answer said, byte for byte,
 * wherever its record is read from: the cache entry the first answer left,
 * the cache restored from the store after a restart, or a seed read from the
 * store once cache rotations pushed the record out. The commit volumes are
 * the part that can drift: the first answer's maps are built as the postings
 * move accounts (`world` before `users:1` here), the stored row is packed in
 * sorted key order, and a map rebuilt from it has its keys in that order.
 */

interface Sent {
  readonly method: 'POST'
  readonly url: string
  readonly body: string
  /** The Idempotency-Key header (a bulk's elements carry theirs in `ik` instead). */
  readonly header?: string
  /** The key its idempotency record is stored under. */
  readonly key: string
}

const sent: readonly Sent[] = [
  // Moved first: world, then users:1, then 10 and 9 (integer-like names, which a JS object orders by value).
  {
    method: 'POST',
    url: '/v2/main/transactions',
    header: 'create-1',
    key: 'create-1',
    body: transactionBody(
      [
        { source: 'world', destination: 'users:1', amount: 5, asset: 'USD/2' },
        { source: 'world', destination: 'users:1', amount: 7, asset: 'EUR' },
        { source: 'users:1', destination: '10', amount: 2, asset: 'USD/2' },
        { source: 'world', destination: '9', amount: 3, asset: 'COIN' },
        { source: 'world', destination: 'a:z', amount: 1, asset: 'USD/2' },
      ],
      { metadata: { z: '1', a: '2', '10': '3', '9': '4' } },
    ),
  },
  // A script's postings, moved in the script's order.
  {
    method: 'POST',
    url: '/v2/main/transactions',
    header: 'script-1',
    key: 'script-1',
    body: JSON.stringify({
      script: { plain: 'send [USD/2 3] (\n  source = @world\n  destination = @b:b\n)\nsend [USD/2 1] (\n  source = @b:b\n  destination = @a:a\n)', vars: {} },
    }),
  },
  // A revert: its commit volumes moved from the destination back to the source.
  { method: 'POST', url: '/v2/main/transactions/0/revert', header: 'revert-0', key: 'revert-0', body: '' },
  // A bulk: each element's answer carries its own commit volumes.
  {
    method: 'POST',
    url: '/v2/main/_bulk',
    key: 'bulk-element-1',
    body: JSON.stringify([
      {
        action: 'CREATE_TRANSACTION',
        ik: 'bulk-element-1',
        data: { postings: [{ source: 'world', destination: 'c:c', amount: 4, asset: 'USD/2' }, { source: 'c:c', destination: 'b:a', amount: 1, asset: 'USD/2' }] },
      },
    ]),
  },
]

const main = 'main' as LedgerName

test('an idempotent replay answers the first answer byte for byte: from the cache, after a restart, and as a seed after rotations', async () => {
  const temp = tempDirectory('tally-replay-')
  const options: LedgerNodeOptions = { dataDirectory: temp.directory, cacheRotationThreshold: 4, sync: false }
  let node = await LedgerNode.open(options)
  let app = await buildApi(node)
  const request = async (one: Sent): Promise<{ status: number; text: string; hit: unknown }> => {
    const headers: Record<string, string> = one.header === undefined ? {} : { 'Idempotency-Key': one.header }
    const response = await app.inject({
      method: one.method,
      url: one.url,
      ...(one.body === '' ? { headers } : { payload: one.body, headers: { ...headers, 'content-type': 'application/json' } }),
    })
    return { status: response.statusCode, text: response.body, hit: response.headers['idempotency-hit'] }
  }
  try {
    assert.equal((await app.inject({ method: 'POST', url: '/v2/main' })).statusCode, 204)
    const first = new Map<string, string>()
    for (const one of sent) {
      const answer = await request(one)
      assert.ok(answer.status === 200 || answer.status === 201, `${one.key}: ${answer.status} ${answer.text}`)
      assert.equal(answer.hit, undefined, one.key)
      first.set(one.key, answer.text)
    }
    const replayAll = async (when: string): Promise<void> => {
      for (const one of sent) {
        const replay = await request(one)
        if (one.header !== undefined) assert.equal(replay.hit, 'true', `${when}: ${one.key} is a hit`)
        assert.equal(replay.text, first.get(one.key), `${when}: ${one.key} answers the first answer's bytes`)
      }
    }
    await replayAll('from the cache')

    await app.close()
    await node.close()
    node = await LedgerNode.open(options)
    app = await buildApi(node)
    await replayAll('after a restart')

    // Enough proposals to rotate the records out of both generations: each replay reads its record from the store.
    const filler: Sent = { method: 'POST', url: '/v2/main/transactions', key: '', body: transactionBody([{ source: 'world', destination: 'filler', amount: 1, asset: 'USD/2' }]) }
    for (let i = 0; i < 12; i++) assert.equal((await request(filler)).status, 200)
    for (const one of sent) assert.equal(node.cache.get(idempotencyKey(main, one.key)).state, 'absent', `${one.key} left the cache`)
    await replayAll('as a seed after rotations')
  } finally {
    await app.close()
    await node.close()
    temp.remove()
  }
})
