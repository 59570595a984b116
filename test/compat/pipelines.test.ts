import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { parseJson } from '../../src/domain/index.ts'
import { TestHttpSink, assertOrderedAtLeastOnce } from '../support/http-sink.ts'
import { posting, present, rejectsWithV2Error, withServer } from './server.ts'
import type { LedgerV2 } from './server.ts'

/** Exporters and pipelines, called as an application calls them through Formance's SDK (docs/pipelines.md). */

async function transfer(v2: LedgerV2, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await v2.createTransaction({ ledger: 'main', v2PostTransaction: { postings: [posting('world', `users:${i}`, 100n)], metadata: {} } })
}

async function newestLogId(v2: LedgerV2): Promise<bigint> {
  const page = present((await v2.listLogs({ ledger: 'main', pageSize: 1 })).v2LogsCursorResponse, 'logs').cursor
  return BigInt(present(page.data[0], 'newest log').id)
}

async function stateOf(url: string, pipelineID: string): Promise<{ enabled: boolean; lastLogID?: bigint; lag: bigint; lastError?: string }> {
  const response = await fetch(`${url}/v2/main/pipelines/${pipelineID}`)
  assert.equal(response.status, 200)
  return (parseJson(await response.text()) as { data: { enabled: boolean; lastLogID?: bigint; lag: bigint; lastError?: string } }).data
}

test('SDK exporters: create, list, get, update, delete; unknown drivers and settings are VALIDATION; in use is refused', async () => {
  const sink = await TestHttpSink.start()
  try {
    await withServer(async ({ v2 }) => {
      await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
      const created = await v2.createExporter({ driver: 'http', config: { url: sink.url, batchSize: 2 } })
      assert.equal(created.statusCode, 201)
      const exporter = present(created.v2CreateExporterResponse, 'created').data
      assert.equal(exporter.driver, 'http')
      assert.ok(exporter.createdAt instanceof Date)
      assert.deepEqual(exporter.config, { url: sink.url, batchSize: 2, timeoutMs: 10_000, backoffMinMs: 100, backoffMaxMs: 30_000 })
      const stdout = present((await v2.createExporter({ driver: 'stdout', config: {} })).v2CreateExporterResponse, 'stdout').data
      const listed = present((await v2.listExporters()).v2ExportersCursorResponse, 'list').cursor
      assert.deepEqual(listed.data.map((item) => item.id), [exporter.id, stdout.id])
      assert.equal(listed.hasMore, false)
      const got = present((await v2.getExporterState({ exporterID: exporter.id })).v2GetExporterStateResponse, 'get').data
      assert.equal(got.config.url, sink.url)

      const updated = await v2.updateExporter({ exporterID: exporter.id, v2ExporterConfiguration: { driver: 'http', config: { url: sink.url, batchSize: 7 } } })
      assert.equal(updated.statusCode, 204)
      assert.equal(present((await v2.getExporterState({ exporterID: exporter.id })).v2GetExporterStateResponse, 'get').data.config.batchSize, 7)

      await rejectsWithV2Error(v2.createExporter({ driver: 'nats', config: {} }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'nats://' })
      await rejectsWithV2Error(v2.createExporter({ driver: 'clickhouse', config: {} }), { status: 400, errorCode: 'VALIDATION' })
      await rejectsWithV2Error(v2.createExporter({ driver: 'http', config: { url: 'ftp://example.org' } }), { status: 400, errorCode: 'VALIDATION' })
      await rejectsWithV2Error(v2.createExporter({ driver: 'http', config: { url: sink.url, retries: 3 } }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'retries' })
      await rejectsWithV2Error(v2.createExporter({ driver: 'http', config: { url: sink.url, batchSize: 0 } }), { status: 400, errorCode: 'VALIDATION' })
      await rejectsWithV2Error(v2.getExporterState({ exporterID: 'absent' }), { status: 404, errorCode: 'NOT_FOUND' })

      const pipeline = present((await v2.createPipeline({ ledger: 'main', v2CreatePipelineRequest: { exporterID: exporter.id } })).v2CreatePipelineResponse, 'pipeline').data
      await rejectsWithV2Error(v2.deleteExporter({ exporterID: exporter.id }), { status: 400, errorCode: 'VALIDATION', messageIncludes: pipeline.id })
      await v2.deletePipeline({ ledger: 'main', pipelineID: pipeline.id })
      assert.equal((await v2.deleteExporter({ exporterID: exporter.id })).statusCode, 204)
      await rejectsWithV2Error(v2.getExporterState({ exporterID: exporter.id }), { status: 404, errorCode: 'NOT_FOUND' })
    })
  } finally {
    await sink.close()
  }
})

test('SDK pipelines: create streams the logs in order; stop, start, reset; list, get, delete; a failing sink is retried and its error shown', async () => {
  const sink = await TestHttpSink.start()
  try {
    await withServer(async ({ v2, url }) => {
      await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
      await transfer(v2, 5)
      sink.fail(2)
      const exporter = present((await v2.createExporter({ driver: 'http', config: { url: sink.url, batchSize: 2, backoffMinMs: 1, backoffMaxMs: 10 } })).v2CreateExporterResponse, 'exporter').data
      const created = await v2.createPipeline({ ledger: 'main', v2CreatePipelineRequest: { exporterID: exporter.id } })
      assert.equal(created.statusCode, 201)
      const pipeline = present(created.v2CreatePipelineResponse, 'pipeline').data
      assert.equal(pipeline.ledger, 'main')
      assert.equal(pipeline.exporterID, exporter.id)
      await rejectsWithV2Error(v2.createPipeline({ ledger: 'main', v2CreatePipelineRequest: { exporterID: exporter.id } }), { status: 409, errorCode: 'CONFLICT' })
      await rejectsWithV2Error(v2.createPipeline({ ledger: 'main', v2CreatePipelineRequest: { exporterID: 'absent' } }), { status: 404, errorCode: 'NOT_FOUND' })
      await rejectsWithV2Error(v2.createPipeline({ ledger: 'absent', v2CreatePipelineRequest: { exporterID: exporter.id } }), { status: 404, errorCode: 'LEDGER_NOT_FOUND' })

      let newest = await newestLogId(v2)
      await sink.until(() => sink.ids().includes(newest), 'first logs')
      assert.equal(sink.failures, 2, 'the two failed POSTs were retried')
      assert.ok(sink.accepted.every((batch) => batch.ids.length <= 2 && batch.pipelineID === pipeline.id && batch.ledger === 'main'))
      assertOrderedAtLeastOnce(sink.accepted, 0n, newest)
      const state = present((await v2.getPipelineState({ ledger: 'main', pipelineID: pipeline.id })).v2GetPipelineStateResponse, 'state').data
      assert.equal(state.enabled, true)
      assert.equal(BigInt(present(state.lastLogID, 'lastLogID')), newest)
      assert.equal((await stateOf(url, pipeline.id)).lag, 0n)

      assert.equal((await v2.stopPipeline({ ledger: 'main', pipelineID: pipeline.id })).statusCode, 202)
      const requestsWhenStopped = sink.requests
      await transfer(v2, 3)
      const stopped = await stateOf(url, pipeline.id)
      assert.equal(stopped.enabled, false)
      assert.equal(stopped.lag, 3n, 'lag shows the logs written while stopped')
      assert.equal(sink.requests, requestsWhenStopped, 'a stopped pipeline sends nothing')

      assert.equal((await v2.startPipeline({ ledger: 'main', pipelineID: pipeline.id })).statusCode, 202)
      newest = await newestLogId(v2)
      await sink.until(() => sink.ids().includes(newest), 'logs after start')
      assertOrderedAtLeastOnce(sink.accepted, 0n, newest)

      const before = sink.accepted.length
      assert.equal((await v2.resetPipeline({ ledger: 'main', pipelineID: pipeline.id })).statusCode, 202)
      await sink.until(() => sink.accepted.slice(before).flatMap((batch) => batch.ids).includes(newest), 'logs after reset')
      assert.equal(sink.accepted[before]?.ids[0], 0n, 'reset delivers again from the first log')

      const listed = present((await v2.listPipelines({ ledger: 'main' })).v2PipelinesCursorResponse, 'list').cursor
      assert.deepEqual(listed.data.map((item) => item.id), [pipeline.id])
      assert.equal((await v2.deletePipeline({ ledger: 'main', pipelineID: pipeline.id })).statusCode, 204)
      await rejectsWithV2Error(v2.getPipelineState({ ledger: 'main', pipelineID: pipeline.id }), { status: 404, errorCode: 'NOT_FOUND' })
      await rejectsWithV2Error(v2.startPipeline({ ledger: 'main', pipelineID: pipeline.id }), { status: 404, errorCode: 'NOT_FOUND' })
    })
  } finally {
    await sink.close()
  }
})

test('stdout driver: one JSON line per log, {ledger, pipelineID, log}, in id order, amounts exact', async () => {
  const stdout = new PassThrough()
  let text = ''
  let marker = ''
  let seen: () => void = () => {}
  stdout.setEncoding('utf8')
  stdout.on('data', (chunk: string) => {
    text += chunk
    if (marker !== '' && text.includes(marker)) seen()
  })
  /** Resolves once stdout carries `wanted`; rejects after a deadline (a hang would say nothing). */
  const printed = (wanted: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stdout never printed ${wanted}:\n${text}`)), 60_000)
      seen = () => {
        clearTimeout(timer)
        resolve()
      }
      marker = wanted
      if (text.includes(wanted)) seen()
    })
  await withServer(
    async ({ v2, url }) => {
      await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
      // Raw HTTP: the amount past 2^64 must reach the ledger exact, whatever a client library does with it.
      const big = await fetch(`${url}/v2/main/transactions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"postings":[{"source":"world","destination":"users:1","amount":18446744073709551617,"asset":"USD/2"}]}',
      })
      assert.equal(big.status, 200)
      await transfer(v2, 2)
      const exporter = present((await v2.createExporter({ driver: 'stdout', config: { batchSize: 2 } })).v2CreateExporterResponse, 'exporter').data
      const pipeline = present((await v2.createPipeline({ ledger: 'main', v2CreatePipelineRequest: { exporterID: exporter.id } })).v2CreatePipelineResponse, 'pipeline').data
      const newest = await newestLogId(v2)
      await printed(`"id":${newest},`)
      const lines = text.trim().split('\n').map((line) => parseJson(line) as { ledger: string; pipelineID: string; log: { id: bigint; data: { transaction: { postings: { amount: bigint }[] } } } })
      assert.deepEqual(
        lines.map((line) => line.log.id),
        Array.from({ length: Number(newest) + 1 }, (_, i) => BigInt(i)),
      )
      assert.ok(lines.every((line) => line.ledger === 'main' && line.pipelineID === pipeline.id))
      assert.equal(lines[0]?.log.data.transaction.postings[0]?.amount, 2n ** 64n + 1n)
    },
    { outputs: { stdout } },
  )
})
