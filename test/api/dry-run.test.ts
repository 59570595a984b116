import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/index.ts'
import { parseJson } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'

test('dryRun runs the whole pipeline, answers as a real write would, and applies and audits nothing', async () => {
  const tmp = tempDirectory()
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, sync: false })
  const app = await buildApi(node)
  try {
    const post = (url: string, body: unknown) => app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
    assert.equal((await post('/v2/main', {})).statusCode, 204)
    const funding = { postings: [{ source: 'world', destination: 'users:1', amount: 100, asset: 'USD' }] }
    assert.equal((await post('/v2/main/transactions', funding)).statusCode, 200)
    const before = await app.inject({ method: 'GET', url: '/v2/main/logs' })
    const auditBefore = node.fsm.auditHead

    const dry = await post('/v2/main/transactions?dryRun=true', { postings: [{ source: 'users:1', destination: 'users:2', amount: 60, asset: 'USD' }] })
    assert.equal(dry.statusCode, 200)
    const data = (parseJson(dry.body) as { data: { id: bigint; postCommitVolumes: Record<string, Record<string, { balance: bigint }>> } }).data
    assert.equal(data.id, 1n)
    assert.equal(data.postCommitVolumes['users:2']?.USD?.balance, 60n)
    const refused = await post('/v2/main/transactions?dryRun=true', { postings: [{ source: 'users:1', destination: 'users:2', amount: 600, asset: 'USD' }] })
    assert.equal(refused.statusCode, 400)
    assert.equal((parseJson(refused.body) as { errorCode: string }).errorCode, 'INSUFFICIENT_FUND')
    assert.equal((await post('/v2/main/transactions/0/revert?dryRun=true', {})).statusCode, 201)
    assert.equal((await post('/v2/main/accounts/users:9/metadata?dryRun=true', { a: 'b' })).statusCode, 204)

    assert.equal((await app.inject({ method: 'GET', url: '/v2/main/logs' })).body, before.body, 'no log')
    assert.deepEqual(node.fsm.auditHead, auditBefore, 'no audit entry')
    assert.equal((await app.inject({ method: 'GET', url: '/v2/main/accounts/users:9' })).statusCode, 404, 'no account created')
    const original = parseJson((await app.inject({ method: 'GET', url: '/v2/main/transactions/0' })).body) as { data: { reverted: boolean } }
    assert.equal(original.data.reverted, false)
    // The next real write still gets id 1: the dry run consumed nothing.
    const real = parseJson((await post('/v2/main/transactions', funding)).body) as { data: { id: bigint } }
    assert.equal(real.data.id, 1n)
  } finally {
    await app.close()
    await node.close()
    tmp.remove()
  }
})
