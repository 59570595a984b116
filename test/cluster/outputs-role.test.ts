import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { decodeRowValue, outputsKey, parseJson } from '../../src/domain/index.ts'
import type { Json, PipelineEntry } from '../../src/domain/index.ts'
import type { Order } from '../../src/orders/index.ts'
import { Outputs } from '../../src/outputs/index.ts'
import type { OutputsOptions, SubmitOrders } from '../../src/outputs/index.ts'
import type { LedgerNode } from '../../src/server/index.ts'
import { Store, Zone, attributeRowKey, outputRowKey } from '../../src/store/index.ts'
import { runCheck } from '../../src/check/index.ts'
import { decodeAuditEntry } from '../../src/audit/index.ts'
import { stringifyJson } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'
import type { FastifyInstance } from 'fastify'
import { buildApi } from '../../src/api/index.ts'
import type { ApiOptions } from '../../src/api/index.ts'
import { Loopback } from './node-loopback.ts'
import { LEDGER, createLedger, openNode, randomOrders, runWorkload, submit } from './node-support.ts'

/**
 * Pipelines in a cluster (docs/cluster.md, "Pipelines in a cluster"): only
 * the primary delivers; it checkpoints its confirmed cursors through the
 * write pipeline (SET_PIPELINE_CURSOR), and a node taking over resumes after
 * the checkpoint instead of its own (empty) cursor.
 */

const exporter: Order = { type: 'PUT_EXPORTER', id: 'e1', driver: 'stdout', config: { batchSize: 2n }, update: false }
const pipeline: Order = { type: 'PUT_PIPELINE', ledger: LEDGER, id: 'p1', exporterID: 'e1' }

function cursorOrder(lastLogID: bigint, resets = 0n, id = 'p1'): Order {
  return { type: 'SET_PIPELINE_CURSOR', ledger: LEDGER, id, resets, lastLogID }
}

/** A stdout sink that keeps the log ids it was given, in order. */
class Collected {
  readonly stream = new PassThrough()
  readonly ids: bigint[] = []
  private rest = ''
  constructor() {
    this.stream.on('data', (chunk: Buffer) => {
      const lines = (this.rest + chunk.toString('utf8')).split('\n')
      this.rest = lines.pop() ?? ''
      for (const line of lines) {
        const log = (parseJson(line) as { log: { id: Json } }).log
        this.ids.push(BigInt(log.id as bigint))
      }
    })
  }
}

function submitVia(node: LedgerNode): SubmitOrders {
  return async (orders) => {
    const results = await node.admission.submit(
      orders.map((order) => ({ order })),
      { atomic: false, continueOnFailure: true, dryRun: false },
    )
    return results.map((result) => (result.status === 'failed' ? `${result.error.code}: ${result.error.message}` : result.status === 'skipped' ? 'skipped' : undefined))
  }
}

async function appliedPipeline(node: LedgerNode): Promise<PipelineEntry | undefined> {
  const row = await node.store.get(attributeRowKey(outputsKey()))
  return row === undefined ? undefined : decodeRowValue('o', row).pipelines.find((entry) => entry.id === 'p1')
}

async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

function range(from: bigint, to: bigint): bigint[] {
  const ids: bigint[] = []
  for (let id = from; id <= to; id++) ids.push(id)
  return ids
}

test('pipelines in a cluster: a replica delivers nothing; the primary checkpoints; after a failover the new primary resumes after the checkpoint', async () => {
  const dirs = { p: tempDirectory(), r1: tempDirectory() }
  const p = await openNode(dirs.p.directory, 'p')
  const r1 = await openNode(dirs.r1.directory, 'r1')
  const loop = new Loopback(p, { mode: 'sync_all', memberCount: 2 })
  const sinks = { p: new Collected(), r1: new Collected() }
  const options = (node: LedgerNode, sink: Collected): OutputsOptions => ({
    stdout: sink.stream,
    idlePollMs: 5,
    refreshMs: 20,
    checkpointMs: 20,
    delivering: () => node.clusterStatus().role === 'primary',
  })
  const outputs: Outputs[] = []
  try {
    assert.equal(await p.becomePrimary(1, 0), 'promoted')
    assert.equal(await r1.adoptEpoch(1, 'p'), 'adopted')
    await loop.connect('r1', r1)
    for (const order of [createLedger, exporter, pipeline]) assert.equal((await submit(p, order)).status, 'applied')
    await loop.settle()
    const onP = (await Outputs.open(p.store, submitVia(p), options(p, sinks.p))).outputs
    outputs.push(onP)
    const onR1 = (await Outputs.open(r1.store, submitVia(r1), options(r1, sinks.r1))).outputs
    outputs.push(onR1)

    await runWorkload(p, randomOrders(1, 30))
    await loop.settle()
    await until('the primary delivered every log', async () => (await onP.pipeline(LEDGER, 'p1')).lag === 0n)
    const delivered = (await onP.pipeline(LEDGER, 'p1')).lastLogID
    assert.ok(delivered !== undefined && delivered > 5n, `a few logs (${delivered})`)
    assert.deepEqual(sinks.p.ids, range(0n, delivered), 'ordered, each once')
    await until('the checkpoint reached the replica', async () => {
      await loop.settle()
      return (await appliedPipeline(r1))?.checkpoint === delivered
    })
    await onR1.refresh()
    assert.deepEqual(sinks.r1.ids, [], 'a replica delivers nothing')
    const seenOnReplica = await onR1.pipeline(LEDGER, 'p1')
    assert.equal(seenOnReplica.enabled, true, 'the pipeline is enabled though this node does not run it')
    assert.equal(seenOnReplica.lastLogID, delivered, 'a replica shows the checkpoint')

    // Failover: p is deposed, r1 takes over at epoch 2 and goes on writing.
    const committed = p.clusterStatus().committedLsn
    assert.equal(await r1.becomePrimary(2, committed), 'promoted')
    assert.equal(await p.adoptEpoch(2, 'r1'), 'adopted')
    const sentByP = sinks.p.ids.length
    loop.switchPrimary(r1)
    await loop.connect('p', p)
    await runWorkload(r1, randomOrders(2, 10))
    await loop.settle()
    await until('the new primary delivered every log', async () => (await onR1.pipeline(LEDGER, 'p1')).lag === 0n)
    const newest = (await onR1.pipeline(LEDGER, 'p1')).lastLogID
    assert.ok(newest !== undefined && newest > delivered)
    assert.deepEqual(sinks.r1.ids, range(delivered + 1n, newest), 'the new primary starts after the checkpoint, nothing the sink confirmed is sent again')
    await until('the new primary checkpointed', async () => {
      await loop.settle()
      return (await appliedPipeline(p))?.checkpoint === newest
    })
    await onP.refresh()
    assert.equal(sinks.p.ids.length, sentByP, 'the deposed primary sends nothing more')
    assert.equal(loop.failure, undefined)
  } finally {
    await Promise.all(outputs.map((each) => each.close()))
    loop.close()
    await Promise.all([p.close().catch(() => {}), r1.close().catch(() => {})])
    dirs.p.remove()
    dirs.r1.remove()
  }
})

test('SET_PIPELINE_CURSOR: moves the checkpoint forward only, for the current reset count, within the ledger; audited and replayed by check', async () => {
  const dir = tempDirectory()
  const node = await openNode(dir.directory, 'single', { replicated: undefined })
  try {
    for (const order of [createLedger, exporter, pipeline, ...randomOrders(3, 30)]) await submit(node, order)
    const refusal = async (order: Order): Promise<string | undefined> => {
      const result = await submit(node, order)
      return result.status === 'failed' ? result.error.code : undefined
    }
    assert.equal(await refusal(cursorOrder(2n)), undefined)
    assert.equal((await appliedPipeline(node))?.checkpoint, 2n)
    assert.equal(await refusal(cursorOrder(1n)), undefined, 'an older checkpoint is not an error (an old primary may be applied late)')
    assert.equal((await appliedPipeline(node))?.checkpoint, 2n, 'and never moves the cursor back')
    assert.equal(await refusal(cursorOrder(2n)), undefined)
    assert.equal((await appliedPipeline(node))?.checkpoint, 2n)
    assert.equal(await refusal(cursorOrder(3n, 1n)), 'CONFLICT', 'a checkpoint of another reset count')
    assert.equal(await refusal(cursorOrder(1000n)), 'VALIDATION', 'a log the ledger does not have')
    assert.equal(await refusal(cursorOrder(-1n)), 'VALIDATION')
    assert.equal(await refusal(cursorOrder(1n, 0n, 'nope')), 'NOT_FOUND')
    assert.equal((await appliedPipeline(node))?.checkpoint, 2n)

    await submit(node, { type: 'RESET_PIPELINE', ledger: LEDGER, id: 'p1' })
    const reset = await appliedPipeline(node)
    assert.equal(reset?.resets, 1n)
    assert.equal(reset?.checkpoint, undefined, 'a reset drops the checkpoint')
    assert.equal(await refusal(cursorOrder(3n, 0n)), 'CONFLICT', 'a checkpoint confirmed before the reset is void')
    assert.equal((await appliedPipeline(node))?.checkpoint, undefined)
    assert.equal(await refusal(cursorOrder(0n, 1n)), undefined)
    assert.equal((await appliedPipeline(node))?.checkpoint, 0n)
  } finally {
    await node.close()
  }
  const store = await Store.open(path.join(dir.directory, 'store'))
  try {
    let audited = 0
    for await (const [, value] of store.range({ gte: Buffer.of(Zone.audit), lt: Buffer.of(Zone.audit + 1) })) {
      if (stringifyJson(decodeAuditEntry(value) as unknown as Json).includes('"SET_PIPELINE_CURSOR"')) audited++
    }
    assert.equal(audited, 9, 'every checkpoint order is an audit entry, refusals too')
    assert.deepEqual((await runCheck(store)).findingsList, [])
  } finally {
    await store.close()
    dir.remove()
  }
})

test('checkpoints: one order per moved cursor per tick, none while nothing moved, a failed proposal retried at the next tick; a node that does not deliver neither sends nor checkpoints', async () => {
  const dir = tempDirectory()
  const node = await openNode(dir.directory, 'single', { replicated: undefined })
  const sink = new Collected()
  const proposals: Order[][] = []
  let failNext = false
  let delivering = true
  const counting: SubmitOrders = async (orders) => {
    proposals.push([...orders])
    if (failNext) {
      failNext = false
      throw new Error('proposal refused by a test')
    }
    return submitVia(node)(orders)
  }
  let outputs: Outputs | undefined
  try {
    for (const order of [createLedger, exporter, pipeline, ...randomOrders(4, 6)]) await submit(node, order)
    // No timer: the test ticks by hand (checkpointMs is what the node sets).
    outputs = (await Outputs.open(node.store, counting, { stdout: sink.stream, idlePollMs: 5, refreshMs: 20, delivering: () => delivering })).outputs
    const caughtUp = async (): Promise<bigint> => {
      let last: bigint | undefined
      await until('delivered', async () => {
        const state = await (outputs as Outputs).pipeline(LEDGER, 'p1')
        last = state.lastLogID
        return state.lag === 0n
      })
      return last as bigint
    }
    const first = await caughtUp()
    await outputs.checkpoint()
    assert.deepEqual(proposals, [[cursorOrder(first)]])
    await outputs.refresh()
    for (let i = 0; i < 5; i++) await outputs.checkpoint()
    assert.equal(proposals.length, 1, 'a cursor that did not move proposes nothing')

    await runWorkload(node, randomOrders(5, 4))
    const second = await caughtUp()
    failNext = true
    await outputs.checkpoint()
    assert.equal(proposals.length, 2)
    assert.equal((await appliedPipeline(node))?.checkpoint, first, 'the failed proposal applied nothing')
    await outputs.checkpoint()
    assert.deepEqual(proposals[2], [cursorOrder(second)], 'retried at the next tick')
    assert.equal((await appliedPipeline(node))?.checkpoint, second)

    // The gate closes: nothing more is sent or checkpointed until it opens again.
    delivering = false
    await outputs.refresh()
    const sent = sink.ids.length
    await runWorkload(node, randomOrders(6, 4))
    await outputs.refresh()
    await outputs.checkpoint()
    assert.equal(proposals.length, 3)
    assert.equal(sink.ids.length, sent)
    delivering = true
    await outputs.refresh()
    const third = await caughtUp()
    assert.deepEqual(sink.ids, range(0n, third), 'resumed where it stopped, each log once')

    // A node whose own cursor is behind the checkpoint (here: gone) starts after the checkpoint.
    await outputs.checkpoint()
    assert.equal((await appliedPipeline(node))?.checkpoint, third)
    await outputs.close()
    await node.store.write([{ key: outputRowKey('c', 'p1'), value: null }], { sync: true })
    const fresh = new Collected()
    outputs = (await Outputs.open(node.store, counting, { stdout: fresh.stream, idlePollMs: 5, refreshMs: 20 })).outputs
    assert.equal((await outputs.pipeline(LEDGER, 'p1')).lastLogID, third)
    await runWorkload(node, randomOrders(7, 4))
    const fourth = await caughtUp()
    assert.deepEqual(fresh.ids, range(third + 1n, fourth), 'nothing up to the checkpoint is sent again')
  } finally {
    await outputs?.close()
    await node.close()
    dir.remove()
  }
})

test('pipelines in a cluster, as the API wires them: the replica app sends nothing; the primary app checkpoints; the promoted app resumes after the checkpoint', async () => {
  const dirs = { p: tempDirectory(), r1: tempDirectory() }
  const p = await openNode(dirs.p.directory, 'p')
  const r1 = await openNode(dirs.r1.directory, 'r1')
  const loop = new Loopback(p, { mode: 'sync_all', memberCount: 2 })
  const sinks = { p: new Collected(), r1: new Collected() }
  const apps: FastifyInstance[] = []
  // Only what a test must shorten: the gate and the checkpoint period are the app's own (one second).
  const api = (sink: Collected): ApiOptions => ({ outputs: { stdout: sink.stream, idlePollMs: 5, refreshMs: 20 } })
  const state = async (app: FastifyInstance): Promise<{ lastLogID?: number; lag: number; enabled: boolean }> => {
    const reply = await app.inject({ method: 'GET', url: `/v2/${LEDGER}/pipelines/p1` })
    assert.equal(reply.statusCode, 200, reply.body)
    return (JSON.parse(reply.body) as { data: { lastLogID?: number; lag: number; enabled: boolean } }).data
  }
  try {
    assert.equal(await p.becomePrimary(1, 0), 'promoted')
    assert.equal(await r1.adoptEpoch(1, 'p'), 'adopted')
    await loop.connect('r1', r1)
    for (const order of [createLedger, exporter, pipeline]) assert.equal((await submit(p, order)).status, 'applied')
    const onP = await buildApi(p, api(sinks.p))
    apps.push(onP)
    const onR1 = await buildApi(r1, api(sinks.r1))
    apps.push(onR1)
    await runWorkload(p, randomOrders(8, 30))
    await loop.settle()
    await until('the primary delivered every log', async () => (await state(onP)).lag === 0)
    const delivered = BigInt((await state(onP)).lastLogID ?? -1)
    assert.deepEqual(sinks.p.ids, range(0n, delivered))
    await until('the checkpoint reached the replica', async () => {
      await loop.settle()
      return (await appliedPipeline(r1))?.checkpoint === delivered
    })
    assert.deepEqual(sinks.r1.ids, [], 'the replica sends nothing')
    assert.equal((await state(onR1)).enabled, true)

    assert.equal(await r1.becomePrimary(2, p.clusterStatus().committedLsn), 'promoted')
    assert.equal(await p.adoptEpoch(2, 'r1'), 'adopted')
    const sentByP = sinks.p.ids.length
    loop.switchPrimary(r1)
    await loop.connect('p', p)
    await runWorkload(r1, randomOrders(9, 10))
    await loop.settle()
    await until('the new primary delivered every log', async () => (await state(onR1)).lag === 0)
    const newest = BigInt((await state(onR1)).lastLogID ?? -1)
    assert.deepEqual(sinks.r1.ids, range(delivered + 1n, newest))
    assert.equal(sinks.p.ids.length, sentByP, 'the deposed primary sends nothing more')
  } finally {
    await Promise.all(apps.map((app) => app.close()))
    loop.close()
    await Promise.all([p.close().catch(() => {}), r1.close().catch(() => {})])
    dirs.p.remove()
    dirs.r1.remove()
  }
})
