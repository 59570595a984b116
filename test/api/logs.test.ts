import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/index.ts'
import { nodeLogLines, prettyLine } from '../../src/cli/log-lines.ts'
import { tempDirectory } from '../support/temp.ts'
import { until } from '../support/local.ts'

function lineSink(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  let text = ''
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString()
      done()
    },
  })
  return { stream, lines: () => text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>) }
}

test('request logs: JSON lines with a request id (an incoming X-Request-Id is kept and echoed), no amounts, metadata or query at debug', async () => {
  const tmp = tempDirectory()
  const sink = lineSink()
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, sync: false })
  const app = await buildApi(node, { logger: { level: 'debug', stream: sink.stream } })
  try {
    const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
      app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } })
    assert.equal((await post('/v2/main', {})).statusCode, 204)
    const written = await post(
      '/v2/main/transactions',
      { postings: [{ source: 'world', destination: 'users:1', amount: 987654321, asset: 'USD' }], metadata: { note: 'meta-value-private' } },
      { 'x-request-id': 'client-chosen-42', authorization: 'Bearer token-never-logged' },
    )
    assert.equal(written.statusCode, 200)
    assert.equal(written.headers['x-request-id'], 'client-chosen-42')
    const listed = await app.inject({ method: 'GET', url: '/v2/main/transactions?query=%7B%22%24match%22%3A%7B%22metadata%5Bnote%5D%22%3A%22filter-value-private%22%7D%7D' })
    assert.equal(listed.statusCode, 200)
    const generated = String(listed.headers['x-request-id'])
    assert.match(generated, /^[0-9a-f-]{36}$/, 'a new id when none was sent')
    const unsafe = await app.inject({ method: 'GET', url: '/_/info', headers: { 'x-request-id': 'has spaces\tand tabs' } })
    assert.notEqual(unsafe.headers['x-request-id'], 'has spaces\tand tabs', 'an id that would garble a log line is replaced')

    const lines = sink.lines()
    const mine = lines.filter((line) => line.reqId === 'client-chosen-42')
    assert.ok(mine.some((line) => line.msg === 'incoming request'))
    assert.ok(mine.some((line) => line.msg === 'request completed' && typeof line.responseTime === 'number'))
    assert.ok(lines.some((line) => line.reqId === generated))
    const text = lines.map((line) => JSON.stringify(line)).join('\n')
    for (const secret of ['987654321', 'meta-value-private', 'filter-value-private', 'token-never-logged', 'Bearer']) assert.ok(!text.includes(secret), `${secret} was logged`)
  } finally {
    await app.close()
    await node.close()
    tmp.remove()
  }
})

test('at info, requests log no line of their own (they are debug lines)', async () => {
  const tmp = tempDirectory()
  const sink = lineSink()
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, sync: false })
  const app = await buildApi(node, { logger: { level: 'info', stream: sink.stream } })
  try {
    const reply = await app.inject({ method: 'POST', url: '/v2/main', payload: '{}', headers: { 'content-type': 'application/json', 'x-request-id': 'quiet-1' } })
    assert.equal(reply.statusCode, 204)
    assert.equal(reply.headers['x-request-id'], 'quiet-1')
    assert.deepEqual(sink.lines().filter((line) => line.reqId === 'quiet-1'), [])
  } finally {
    await app.close()
    await node.close()
    tmp.remove()
  }
})

test('a slow request logs one warning with its figures; a slow checkpoint logs one warning with its figures', async () => {
  const tmp = tempDirectory()
  const sink = lineSink()
  const log = nodeLogLines({ level: 'info', stream: sink.stream })
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, sync: false, checkpointEntries: 1, slowCheckpointMs: 0, log })
  const app = await buildApi(node, { logger: { level: 'warn', stream: sink.stream }, slowRequestMs: 0 })
  try {
    const reply = await app.inject({ method: 'POST', url: '/v2/main', payload: '{}', headers: { 'content-type': 'application/json', 'x-request-id': 'slow-1' } })
    assert.equal(reply.statusCode, 204)
    const lines = sink.lines()
    const slow = lines.filter((line) => line.msg === 'slow request')
    assert.equal(slow.length, 1)
    assert.equal(slow[0]?.level, 40)
    assert.equal(slow[0]?.reqId, 'slow-1')
    assert.equal(slow[0]?.route, '/v2/:ledger')
    assert.equal(slow[0]?.statusCode, 204)
    assert.equal(typeof slow[0]?.durationMs, 'number')
    assert.ok(!lines.some((line) => line.msg === 'incoming request'), 'info lines are below --log-level warn')
    // The checkpoint runs after the write is answered: its line is awaited, not assumed.
    const checkpoints = await until('the slow checkpoint line', () => {
      const found = sink.lines().filter((line) => typeof line.msg === 'string' && line.msg.startsWith('slow checkpoint'))
      return found.length > 0 ? found : undefined
    })
    assert.equal(checkpoints.length, 1)
    assert.equal(checkpoints[0]?.level, 40)
    assert.equal(checkpoints[0]?.index, 1)
    assert.equal(typeof checkpoints[0]?.durationMs, 'number')
  } finally {
    await app.close()
    await node.close()
    tmp.remove()
  }
})

test('pretty lines for a terminal: time, level, message, figures', () => {
  assert.equal(prettyLine('{"level":40,"time":0,"pid":1,"hostname":"h","msg":"slow request","durationMs":12}'), '00:00:00.000 WARN  slow request durationMs=12')
  assert.equal(prettyLine('not json'), 'not json')
})
