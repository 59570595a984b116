import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/index.ts'
import { parseJson } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'

type Volumes = Record<string, Record<string, { input: bigint; output: bigint; balance: bigint }>>
const v = (input: bigint, output: bigint) => ({ input, output, balance: input - output })

test('backdated transactions: commit volumes follow insertion, effective volumes follow timestamps; pit on accounts; stats', async () => {
  const tmp = tempDirectory()
  // Insertion dates come from the admission clock: 10:00:01, 10:00:02, …
  let clock = Date.UTC(2026, 5, 1, 10, 0, 0)
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, sync: false, now: () => (clock += 1000) })
  const app = await buildApi(node)
  const get = async (url: string) => {
    const response = await app.inject({ method: 'GET', url })
    assert.equal(response.statusCode, 200, response.body)
    return (parseJson(response.body) as { data: Record<string, unknown> }).data
  }
  const post = (url: string, body: unknown) => app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
  try {
    await post('/v2/main', {})
    const send = (source: string, destination: string, amount: number, timestamp: string) =>
      post('/v2/main/transactions', { postings: [{ source, destination, amount, asset: 'USD' }], timestamp })
    assert.equal((await send('world', 'a', 100, '2026-01-02T00:00:00Z')).statusCode, 200) // tx 0, inserted 10:00:02
    assert.equal((await send('world', 'a', 10, '2026-01-01T00:00:00Z')).statusCode, 200) // tx 1, backdated, inserted 10:00:03
    assert.equal((await send('a', 'b', 50, '2026-01-03T00:00:00Z')).statusCode, 200) // tx 2, inserted 10:00:04

    const tx1 = await get('/v2/main/transactions/1?expand=volumes,effectiveVolumes')
    assert.deepEqual((tx1.preCommitVolumes as Volumes).a, { USD: v(100n, 0n) }, 'inserted after tx 0')
    assert.deepEqual((tx1.postCommitVolumes as Volumes).a, { USD: v(110n, 0n) })
    assert.deepEqual((tx1.preCommitEffectiveVolumes as Volumes).a, { USD: v(0n, 0n) }, 'effective: nothing is dated before it')
    assert.deepEqual((tx1.postCommitEffectiveVolumes as Volumes).a, { USD: v(10n, 0n) })

    const tx0 = await get('/v2/main/transactions/0?expand=effectiveVolumes')
    assert.equal(tx0.preCommitVolumes, undefined, 'commit volumes only when expanded')
    assert.deepEqual((tx0.preCommitEffectiveVolumes as Volumes).a, { USD: v(10n, 0n) }, 'the backdated tx 1 precedes it')
    assert.deepEqual((tx0.postCommitEffectiveVolumes as Volumes).a, { USD: v(110n, 0n) })
    assert.deepEqual((tx0.postCommitEffectiveVolumes as Volumes).world, { USD: v(0n, 110n) })

    const tx2 = await get('/v2/main/transactions/2?expand=effectiveVolumes')
    assert.deepEqual((tx2.preCommitEffectiveVolumes as Volumes).a, { USD: v(110n, 0n) })
    assert.deepEqual((tx2.postCommitEffectiveVolumes as Volumes).b, { USD: v(50n, 0n) })

    const effectiveAt = await get('/v2/main/accounts/a?expand=effectiveVolumes&pit=2026-01-01T12:00:00Z')
    assert.deepEqual(effectiveAt.effectiveVolumes, { USD: v(10n, 0n) })
    const insertedAt = await get('/v2/main/accounts/a?expand=volumes&pit=2026-06-01T10:00:02.500Z')
    assert.deepEqual(insertedAt.volumes, { USD: v(100n, 0n) }, 'only tx 0 was inserted by then')
    const now = await get('/v2/main/accounts/a?expand=volumes,effectiveVolumes')
    assert.deepEqual(now.volumes, { USD: v(110n, 50n) })
    assert.deepEqual(now.effectiveVolumes, now.volumes)

    const bad = await app.inject({ method: 'GET', url: '/v2/main/accounts/a?pit=yesterday' })
    assert.equal(bad.statusCode, 400)
    const unknownExpand = await app.inject({ method: 'GET', url: '/v2/main/accounts/a?expand=everything' })
    assert.equal(unknownExpand.statusCode, 400)

    assert.deepEqual(await get('/v2/main/stats'), { accounts: 3n, transactions: 3n })

    // pit on the transaction list: dated at or before it; a revert after it is not yet seen.
    assert.equal((await post('/v2/main/transactions/0/revert?force=true', {})).statusCode, 201)
    const listAt = async (pit: string) => {
      const reply = await app.inject({ method: 'GET', url: `/v2/main/transactions?pit=${pit}` })
      return (parseJson(reply.body) as { cursor: { data: { id: bigint; reverted: boolean }[] } }).cursor.data
    }
    assert.deepEqual((await listAt('2026-01-02T12:00:00Z')).map((tx) => [tx.id, tx.reverted]), [[1n, false], [0n, false]])
    const later = await listAt('2030-01-01T00:00:00Z')
    assert.equal(later.find((tx) => tx.id === 0n)?.reverted, true)
    const count = await app.inject({ method: 'HEAD', url: '/v2/main/transactions?pit=2026-01-02T12:00:00Z' })
    assert.equal(count.headers.count, '2')
  } finally {
    await app.close()
    await node.close()
    tmp.remove()
  }
})
