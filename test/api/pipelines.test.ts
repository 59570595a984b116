import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/index.ts'
import { Store } from '../../src/store/index.ts'
import { runCheck } from '../../src/check/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { operations, routeUrlOf } from '../../src/api/openapi/index.ts'
import { requirementOf } from '../../src/api/auth/requirements.ts'
import { parseJson } from '../../src/domain/index.ts'
import { parseExporterConfiguration } from '../../src/outputs/index.ts'
import { TestHttpSink, assertOrderedAtLeastOnce } from '../support/http-sink.ts'
import { withServer } from '../compat/server.ts'

/** Pipelines beside the write path: a stalled or failing sink never holds writes back (docs/pipelines.md). */

interface State {
  readonly enabled: boolean
  readonly lastLogID?: bigint
  readonly lag: bigint
  readonly lastError?: string
  readonly lastErrorAt?: string
}

async function request(url: string, method: string, path: string, body?: string): Promise<{ status: number; body: unknown; text: string }> {
  const response = await fetch(`${url}${path}`, { method, ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }) })
  const text = await response.text()
  return { status: response.status, body: text === '' ? undefined : parseJson(text), text }
}

async function stateOf(url: string, pipelineID: string): Promise<State> {
  return ((await request(url, 'GET', `/v2/main/pipelines/${pipelineID}`)).body as { data: State }).data
}

/** Polls the pipeline's state until `predicate` holds, with a deadline (state changes have no event to wait on from outside). */
async function stateUntil(url: string, pipelineID: string, predicate: (state: State) => boolean, what: string): Promise<State> {
  const deadline = Date.now() + 60_000
  for (;;) {
    const state = await stateOf(url, pipelineID)
    if (predicate(state)) return state
    if (Date.now() > deadline) throw new Error(`pipeline state never reached: ${what} (last: ${JSON.stringify(state, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))})`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

async function setUp(url: string, sinkUrl: string): Promise<string> {
  assert.equal((await request(url, 'POST', '/v2/main')).status, 204)
  const exporter = await request(url, 'POST', '/v2/_/exporters', `{"driver":"http","config":{"url":"${sinkUrl}","batchSize":10,"timeoutMs":600000,"backoffMinMs":1,"backoffMaxMs":5}}`)
  assert.equal(exporter.status, 201, exporter.text)
  const pipeline = await request(url, 'POST', '/v2/main/pipelines', `{"exporterID":"${(exporter.body as { data: { id: string } }).data.id}"}`)
  assert.equal(pipeline.status, 201, pipeline.text)
  return (pipeline.body as { data: { id: string } }).data.id
}

async function transfers(url: string, count: number): Promise<void> {
  const replies = await Promise.all(
    Array.from({ length: count }, (_, i) => request(url, 'POST', '/v2/main/transactions', `{"postings":[{"source":"world","destination":"users:${i}","amount":1,"asset":"USD/2"}]}`)),
  )
  for (const reply of replies) assert.equal(reply.status, 200, reply.text)
}

test('a stalled sink holds no write back: every write is acknowledged while the sink sits on its request, and lag shows them', async () => {
  const sink = await TestHttpSink.start()
  try {
    await withServer(async ({ url }) => {
      sink.stall()
      assert.equal((await request(url, 'POST', '/v2/main')).status, 204)
      await transfers(url, 1)
      const exporter = await request(url, 'POST', '/v2/_/exporters', `{"driver":"http","config":{"url":"${sink.url}","batchSize":10,"timeoutMs":600000,"backoffMinMs":1,"backoffMaxMs":5}}`)
      const pipeline = await request(url, 'POST', '/v2/main/pipelines', `{"exporterID":"${(exporter.body as { data: { id: string } }).data.id}"}`)
      const pipelineID = (pipeline.body as { data: { id: string } }).data.id
      await sink.until(() => sink.requests >= 1, 'the first batch held by the sink')
      // The sink holds its request (a 10-minute timeout): these writes would wait on it if delivery were on the write path.
      await transfers(url, 200)
      assert.equal(sink.accepted.length, 0, 'nothing confirmed while stalled')
      const state = await stateOf(url, pipelineID)
      assert.equal(state.enabled, true)
      assert.equal(state.lastLogID, undefined)
      assert.equal(state.lag, 201n)
      const metrics = await (await fetch(`${url}/_/metrics`)).text()
      assert.match(metrics, new RegExp(`^tally_pipeline_lag_logs\\{ledger="main",pipeline="${pipelineID}"\\} 201$`, 'm'))
      assert.match(metrics, new RegExp(`^tally_pipeline_running\\{ledger="main",pipeline="${pipelineID}"\\} 1$`, 'm'))
      sink.release() // the held request fails (503); the pipeline retries and catches up
      await sink.until(() => sink.ids().includes(200n), 'caught up after release')
      assertOrderedAtLeastOnce(sink.accepted, 0n, 200n)
      await stateUntil(url, pipelineID, (s) => s.lastLogID === 200n && s.lag === 0n, 'caught up')
    })
  } finally {
    await sink.close()
  }
})

test('a failing sink: lastError and lastErrorAt show the failure while it lasts, lastLogID does not move; recovery clears them', async () => {
  const sink = await TestHttpSink.start()
  try {
    await withServer(async ({ url }) => {
      sink.fail(1_000_000)
      const pipelineID = await setUp(url, sink.url)
      await transfers(url, 5)
      const failing = await stateUntil(url, pipelineID, (s) => s.lastError !== undefined, 'lastError set')
      assert.match(failing.lastError ?? '', /HTTP sink answered 500/)
      assert.ok(failing.lastErrorAt !== undefined)
      assert.equal(failing.lastLogID, undefined)
      assert.equal(failing.lag, 5n)
      sink.fail(0)
      const recovered = await stateUntil(url, pipelineID, (s) => s.lastLogID === 4n, 'recovered')
      assert.equal(recovered.lastError, undefined)
      assertOrderedAtLeastOnce(sink.accepted, 0n, 4n)
    })
  } finally {
    await sink.close()
  }
})

test('exporters and pipelines survive a restart of the node: configuration, cursor and running state', async () => {
  // Covered with a real process and SIGKILL in test/crash/pipeline-crash.test.ts; here the clean close and reopen.
  const sink = await TestHttpSink.start()
  try {
    const temp = tempDirectory('tally-outputs-')
    const open = async () => {
      const node = await LedgerNode.open({ dataDirectory: temp.directory, sync: false })
      const app = await buildApi(node)
      const url = await app.listen({ host: '127.0.0.1', port: 0 })
      return { url, close: async () => (await app.close(), await node.close()) }
    }
    try {
      let server = await open()
      const pipelineID = await setUp(server.url, sink.url)
      await transfers(server.url, 3)
      await stateUntil(server.url, pipelineID, (s) => s.lastLogID === 2n, 'delivered')
      assert.equal((await request(server.url, 'POST', `/v2/main/pipelines/${pipelineID}/stop`)).status, 202)
      await server.close()
      server = await open()
      const exporters = (await request(server.url, 'GET', '/v2/_/exporters')).body as { cursor: { data: { config: { url: string } }[] } }
      assert.equal(exporters.cursor.data[0]?.config.url, sink.url)
      const stopped = await stateOf(server.url, pipelineID)
      assert.equal(stopped.enabled, false, 'a stopped pipeline stays stopped')
      assert.equal(stopped.lastLogID, 2n, 'the cursor survived')
      const accepted = sink.accepted.length
      assert.equal((await request(server.url, 'POST', `/v2/main/pipelines/${pipelineID}/start`)).status, 202)
      await transfers(server.url, 2)
      await stateUntil(server.url, pipelineID, (s) => s.lastLogID === 4n, 'delivered after restart')
      assert.equal(sink.accepted[accepted]?.ids[0], 3n, 'resumed after the cursor, nothing resent')
      await server.close()
    } finally {
      temp.remove()
    }
  } finally {
    await sink.close()
  }
})

test('exporter configuration: one parser, defaults filled in, unknown settings and drivers refused', () => {
  assert.deepEqual(parseExporterConfiguration({ driver: 'stdout', config: {} }), { driver: 'stdout', config: { batchSize: 100 } })
  assert.deepEqual(parseExporterConfiguration({ driver: 'http', config: { url: 'https://example.org/in', batchSize: 5n } }).config, {
    url: 'https://example.org/in',
    batchSize: 5,
    timeoutMs: 10_000,
    backoffMinMs: 100,
    backoffMaxMs: 30_000,
  })
  assert.deepEqual(parseExporterConfiguration({ driver: 'nats', config: { url: 'nats://127.0.0.1:4222', subject: 'tally.logs' } }).config, {
    url: 'nats://127.0.0.1:4222',
    subject: 'tally.logs',
    createStream: false,
    batchSize: 100,
    timeoutMs: 5_000,
    backoffMinMs: 100,
    backoffMaxMs: 30_000,
  })
  for (const body of [
    null,
    [],
    { driver: 'nats', config: {} },
    { driver: 'http', config: {} },
    { driver: 'http', config: { url: 'https://user:secret@example.org' } },
    { driver: 'http', config: { url: 'https://example.org', backoffMinMs: 50, backoffMaxMs: 10 } },
    { driver: 'stdout', config: { url: 'https://example.org' } },
    { driver: 'stdout', config: [] },
    { driver: 'stdout', config: {}, extra: 1 },
    { driver: 'http', config: { url: 'https://example.org', constructor: 1 } },
    { driver: 'http', config: { url: 'https://example.org', batchSize: 1001 } },
    { driver: 'nats', config: { url: 'nats://127.0.0.1:4222' } },
    { driver: 'nats', config: { url: 'https://127.0.0.1:4222', subject: 'a' } },
    { driver: 'nats', config: { url: 'nats://u:p@127.0.0.1:4222', subject: 'a' } },
    { driver: 'nats', config: { url: 'nats://127.0.0.1:4222', subject: 'a.*' } },
    { driver: 'nats', config: { url: 'nats://127.0.0.1:4222', subject: 'a..b' } },
    { driver: 'nats', config: { url: 'nats://127.0.0.1:4222', subject: 'a b' } },
    { driver: 'nats', config: { url: 'nats://127.0.0.1:4222', subject: 'a', stream: 'S/1' } },
    { driver: 'nats', config: { url: 'nats://127.0.0.1:4222', subject: 'a', createStream: true } },
    { driver: 'nats', config: { url: 'nats://127.0.0.1:4222', subject: 'a', createStream: 'yes', stream: 'S' } },
    { driver: 'nats', config: { url: 'nats://127.0.0.1:4222', subject: 'a', timeoutMs: 0 } },
  ]) {
    assert.throws(() => parseExporterConfiguration(body), { code: 'VALIDATION' }, JSON.stringify(body))
  }
})

test('tally check on a store with exporters, pipelines and cursors: clean (the outputs zone is node state, not a projection)', async () => {
  const sink = await TestHttpSink.start()
  const temp = tempDirectory('tally-outputs-check-')
  try {
    const node = await LedgerNode.open({ dataDirectory: temp.directory, sync: false })
    const app = await buildApi(node)
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    const pipelineID = await setUp(url, sink.url)
    await transfers(url, 3)
    await stateUntil(url, pipelineID, (s) => s.lastLogID === 2n, 'cursor written')
    await app.close()
    await node.close()
    const store = await Store.open(path.join(temp.directory, 'store'))
    try {
      const result = await runCheck(store)
      assert.deepEqual(result.findingsList, [])
    } finally {
      await store.close()
    }
  } finally {
    temp.remove()
    await sink.close()
  }
})

test('auth: configuring outputs and reading exporters need ledger:admin (an exporter sends a whole history where it points), reading pipelines ledger:read', () => {
  const outputs = operations.filter((operation) => operation.tag === 'outputs')
  assert.equal(outputs.length, 12)
  for (const operation of outputs) {
    const route = routeUrlOf(operation.path)
    const requirement = requirementOf(operation.method.toUpperCase(), route)
    const scope = operation.method === 'get' && !route.startsWith('/v2/_/exporters') ? 'ledger:read' : 'ledger:admin'
    assert.ok(requirement.kind === 'token' && requirement.scope === scope, `${operation.method} ${route}: ${JSON.stringify(requirement)}`)
    if (route.startsWith('/v2/_/')) assert.equal(requirement.reach, 'cluster', `${route} reaches every ledger`)
  }
})
