import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseJson } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { killTally, spawnTally } from '../support/server-process.ts'
import type { ServerProcess } from '../support/server-process.ts'
import { TestHttpSink, assertOrderedAtLeastOnce } from '../support/http-sink.ts'

/**
 * A pipeline survives SIGKILL: the real server streams a ledger's logs to an
 * HTTP sink that fails and recovers, is killed while a batch is in flight,
 * restarts on the same data directory, and every log reaches the sink in
 * order at least once — none skipped — including the logs written after
 * the restart (docs/pipelines.md).
 */

async function call(server: ServerProcess, method: string, path: string, body?: string): Promise<{ status: number; body: unknown; text: string }> {
  const response = await fetch(`${server.baseUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
  })
  const text = await response.text()
  return { status: response.status, body: text === '' ? undefined : parseJson(text), text }
}

async function transfers(server: ServerProcess, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    const reply = await call(server, 'POST', '/v2/main/transactions', `{"postings":[{"source":"world","destination":"users:${i}","amount":${i + 1},"asset":"USD/2"}]}`)
    assert.equal(reply.status, 200, reply.text)
  }
}

async function newestLogId(server: ServerProcess): Promise<bigint> {
  const reply = await call(server, 'GET', '/v2/main/logs?pageSize=1')
  return (reply.body as { cursor: { data: { id: bigint }[] } }).cursor.data[0]?.id ?? -1n
}

test('SIGKILL mid-stream: after restart every log reaches the failing-then-recovering HTTP sink in order, at least once', async () => {
  const temp = tempDirectory('tally-pipeline-crash-')
  const sink = await TestHttpSink.start()
  let server: ServerProcess | undefined
  try {
    server = await spawnTally({ dataDirectory: temp.directory })
    assert.equal((await call(server, 'POST', '/v2/main')).status, 204)
    await transfers(server, 0, 40)
    sink.fail(3)
    const exporter = await call(server, 'POST', '/v2/_/exporters', `{"driver":"http","config":{"url":"${sink.url}","batchSize":4,"backoffMinMs":1,"backoffMaxMs":20}}`)
    assert.equal(exporter.status, 201)
    const exporterID = (exporter.body as { data: { id: string } }).data.id
    const pipeline = await call(server, 'POST', '/v2/main/pipelines', `{"exporterID":"${exporterID}"}`)
    assert.equal(pipeline.status, 201)
    const pipelineID = (pipeline.body as { data: { id: string } }).data.id

    // Mid-stream: some batches confirmed, then one held in flight when the process dies.
    await sink.until(() => sink.accepted.length >= 3, 'three batches accepted')
    const requestsBefore = sink.requests
    sink.stall()
    await sink.until(() => sink.requests > requestsBefore, 'a batch in flight')
    await killTally(server)
    const deliveredBeforeKill = sink.ids().at(-1) as bigint
    const acceptedAtKill = sink.accepted.length
    assert.ok(deliveredBeforeKill < 39n, 'killed before the stream caught up')
    sink.release()

    sink.fail(2) // down again when the node comes back
    server = await spawnTally({ dataDirectory: temp.directory })
    await transfers(server, 40, 10)
    const newest = await newestLogId(server)
    await sink.until(() => sink.ids().includes(newest), 'every log after restart')
    assertOrderedAtLeastOnce(sink.accepted, 0n, newest)
    assert.ok(sink.accepted.every((batch) => batch.pipelineID === pipelineID && batch.ledger === 'main'))

    // The cursor was persisted after each confirmed batch: the restarted pipeline resends the batch that was in
    // flight (never confirmed) and nothing confirmed before it.
    assert.equal(sink.accepted[acceptedAtKill]?.ids[0], deliveredBeforeKill + 1n, 'a restart resumes just after the last confirmed log')

    const state = await call(server, 'GET', `/v2/main/pipelines/${pipelineID}`)
    assert.equal((state.body as { data: { enabled: boolean } }).data.enabled, true, 'a running pipeline runs again after restart')
  } finally {
    if (server !== undefined) await killTally(server)
    await sink.close()
    temp.remove()
  }
})
