import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'nats'
import { parseJson } from '../../src/domain/index.ts'
import { NatsBroker, natsServerExecutable } from '../support/nats-server.ts'
import { posting, present, rejectsWithV2Error, withServer } from './server.ts'
import type { LedgerV2 } from './server.ts'

/**
 * The NATS JetStream driver against a real `nats-server -js` the test starts
 * on a free loopback port with its own store (docs/pipelines.md). Without
 * nats-server on the machine these tests skip; CI installs it (.ci/run).
 */
const executable = natsServerExecutable()
const skip = executable === undefined ? 'nats-server is not installed (apt-get install nats-server)' : false

const deadlineMs = 60_000
const pollMs = 20

async function transfer(v2: LedgerV2, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) await v2.createTransaction({ ledger: 'main', v2PostTransaction: { postings: [posting('world', `users:${i}`, 100n)], metadata: {} } })
}

async function newestLogId(v2: LedgerV2): Promise<bigint> {
  const page = present((await v2.listLogs({ ledger: 'main', pageSize: 1 })).v2LogsCursorResponse, 'logs').cursor
  return BigInt(present(page.data[0], 'newest log').id)
}

interface State {
  readonly enabled: boolean
  readonly lastLogID?: bigint
  readonly lag: bigint
  readonly lastError?: string
}

async function stateOf(url: string, pipelineID: string): Promise<State> {
  const response = await fetch(`${url}/v2/main/pipelines/${pipelineID}`)
  assert.equal(response.status, 200)
  return (parseJson(await response.text()) as unknown as { data: State }).data
}

/** Polls the pipeline's state until `predicate` holds; fails with the last state after the deadline. */
async function untilState(url: string, pipelineID: string, predicate: (state: State) => boolean, what: string): Promise<State> {
  const deadline = Date.now() + deadlineMs
  for (;;) {
    const state = await stateOf(url, pipelineID)
    if (predicate(state)) return state
    if (Date.now() > deadline) assert.fail(`${what} not reached in ${deadlineMs} ms; last state ${JSON.stringify(state, (_, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))}`)
    // A poll interval, not a synchronisation: the deadline above is what bounds the wait.
    await new Promise<void>((resolve) => setTimeout(resolve, pollMs))
  }
}

interface StreamMessage {
  readonly msgID: string | undefined
  readonly ledger: string
  readonly pipelineID: string
  readonly id: bigint
}

/** Every message the stream holds, in stream order. */
async function readStream(url: string, stream: string): Promise<StreamMessage[]> {
  const nats = await connect({ servers: url.slice('nats://'.length) })
  try {
    const manager = await nats.jetstreamManager()
    const info = await manager.streams.info(stream)
    const messages: StreamMessage[] = []
    if (info.state.messages === 0) return messages
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const stored = await manager.streams.getMessage(stream, { seq })
      const body = parseJson(new TextDecoder().decode(stored.data)) as { ledger: string; pipelineID: string; log: { id: bigint } }
      messages.push({ msgID: stored.header.get('Nats-Msg-Id'), ledger: body.ledger, pipelineID: body.pipelineID, id: BigInt(body.log.id) })
    }
    return messages
  } finally {
    await nats.close()
  }
}

/** The stream holds each log of 0..newest exactly once, in id order, with its dedupe id. */
function assertEveryLogOnceInOrder(messages: readonly StreamMessage[], newest: bigint, pipelineID: string): void {
  assert.deepEqual(
    messages.map((message) => message.id),
    Array.from({ length: Number(newest) + 1 }, (_, i) => BigInt(i)),
  )
  for (const message of messages) {
    assert.equal(message.msgID, `main/${message.id}`)
    assert.equal(message.ledger, 'main')
    assert.equal(message.pipelineID, pipelineID)
  }
}

// Without nats-server the whole file skips with one line.
describe('NATS JetStream driver', { skip }, () => {
  test('SDK nats exporter: settings checked and served back; a pipeline publishes every log in order to the stream it creates; a reset is deduplicated by Nats-Msg-Id', async () => {
    const broker = await NatsBroker.start(executable as string)
    try {
      await withServer(async ({ v2, url }) => {
        await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
        await transfer(v2, 0, 5)

        await rejectsWithV2Error(v2.createExporter({ driver: 'nats', config: { url: broker.url } }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'subject' })
        await rejectsWithV2Error(v2.createExporter({ driver: 'nats', config: { url: 'http://127.0.0.1:4222', subject: 'a' } }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'nats://' })
        await rejectsWithV2Error(v2.createExporter({ driver: 'nats', config: { url: 'nats://user:secret@127.0.0.1:4222', subject: 'a' } }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'credentials' })
        await rejectsWithV2Error(v2.createExporter({ driver: 'nats', config: { url: broker.url, subject: 'ledger.>' } }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'wildcards' })
        await rejectsWithV2Error(v2.createExporter({ driver: 'nats', config: { url: broker.url, subject: 'a', createStream: true } }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'config.stream' })
        await rejectsWithV2Error(v2.createExporter({ driver: 'nats', config: { url: broker.url, subject: 'a', stream: 'A.B' } }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'config.stream' })
        await rejectsWithV2Error(v2.createExporter({ driver: 'nats', config: { url: broker.url, subject: 'a', queue: 'q' } }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'queue' })

        const created = await v2.createExporter({ driver: 'nats', config: { url: broker.url, subject: 'tally.main.logs', stream: 'TALLY', createStream: true, batchSize: 2 } })
        assert.equal(created.statusCode, 201)
        const exporter = present(created.v2CreateExporterResponse, 'exporter').data
        assert.equal(exporter.driver, 'nats')
        assert.deepEqual(exporter.config, { url: broker.url, subject: 'tally.main.logs', stream: 'TALLY', createStream: true, batchSize: 2, timeoutMs: 5_000, backoffMinMs: 100, backoffMaxMs: 30_000 })

        const pipeline = present((await v2.createPipeline({ ledger: 'main', v2CreatePipelineRequest: { exporterID: exporter.id } })).v2CreatePipelineResponse, 'pipeline').data
        let newest = await newestLogId(v2)
        await untilState(url, pipeline.id, (state) => state.lastLogID === newest, 'first logs confirmed')
        await transfer(v2, 5, 3)
        newest = await newestLogId(v2)
        await untilState(url, pipeline.id, (state) => state.lastLogID === newest && state.lag === 0n, 'later logs confirmed')
        assertEveryLogOnceInOrder(await readStream(broker.url, 'TALLY'), newest, pipeline.id)

        // Every log is published again; the stream drops them all as duplicates of their Nats-Msg-Id.
        assert.equal((await v2.resetPipeline({ ledger: 'main', pipelineID: pipeline.id })).statusCode, 202)
        await untilState(url, pipeline.id, (state) => state.lastLogID === newest, 'logs confirmed again after reset')
        assertEveryLogOnceInOrder(await readStream(broker.url, 'TALLY'), newest, pipeline.id)

        assert.equal((await v2.deletePipeline({ ledger: 'main', pipelineID: pipeline.id })).statusCode, 204)
      })
    } finally {
      await broker.close()
    }
  })

  test('nats broker restart mid-stream: writes go on while it is down, the error shows in the state, and every log reaches the stream once, in order', async () => {
    const broker = await NatsBroker.start(executable as string)
    try {
      await withServer(async ({ v2, url }) => {
        await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
        const config = { url: broker.url, subject: 'tally.logs', stream: 'LOGS', createStream: true, batchSize: 3, timeoutMs: 500, backoffMinMs: 10, backoffMaxMs: 200 }
        const exporter = present((await v2.createExporter({ driver: 'nats', config })).v2CreateExporterResponse, 'exporter').data
        const pipeline = present((await v2.createPipeline({ ledger: 'main', v2CreatePipelineRequest: { exporterID: exporter.id } })).v2CreatePipelineResponse, 'pipeline').data
        await transfer(v2, 0, 10)
        let newest = await newestLogId(v2)
        await untilState(url, pipeline.id, (state) => state.lastLogID === newest, 'logs before the restart confirmed')

        await broker.stop()
        // The broker is down: every write is still acknowledged; the pipeline falls behind and says why.
        await transfer(v2, 10, 10)
        newest = await newestLogId(v2)
        const behind = await untilState(url, pipeline.id, (state) => state.lastError !== undefined, 'an error shown while the broker is down')
        assert.ok(behind.lag > 0n, 'the logs written while the broker is down are lag')
        assert.ok(behind.enabled)
        // A stop while an ack is awaited closes the connection; the start after it must open a new one once the broker is back.
        assert.equal((await v2.stopPipeline({ ledger: 'main', pipelineID: pipeline.id })).statusCode, 202)
        assert.equal((await stateOf(url, pipeline.id)).enabled, false)
        assert.equal((await v2.startPipeline({ ledger: 'main', pipelineID: pipeline.id })).statusCode, 202)

        await broker.start()
        await untilState(url, pipeline.id, (state) => state.lastLogID === newest && state.lastError === undefined, 'every log confirmed after the restart')
        assertEveryLogOnceInOrder(await readStream(broker.url, 'LOGS'), newest, pipeline.id)
      })
    } finally {
      await broker.close()
    }
  })
})
