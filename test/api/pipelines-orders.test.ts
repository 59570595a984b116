import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs/promises'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { LedgerNode } from '../../src/server/index.ts'
import type { LedgerNodeOptions } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/index.ts'
import type { ApiOptions } from '../../src/api/index.ts'
import { Store, Zone, attributeRowKey, metaKey, MetaKey, outputRowKey, prefixEnd } from '../../src/store/index.ts'
import { runCheck } from '../../src/check/index.ts'
import { decodeRowValue, encodeAttribute, outputsKey, parseJson, stringifyJson } from '../../src/domain/index.ts'
import type { Json } from '../../src/domain/index.ts'
import { decodeAuditEntry } from '../../src/audit/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { PowerLossDisk } from '../support/power-loss.ts'
import { mulberry32 } from '../crash/power-loss-harness.ts'

/**
 * Exporters and pipelines are configured by orders (docs/adr/0008-outputs-are-node-state.md):
 * audited, replayed by `tally check`, rebuilt from the WAL after a power loss,
 * identical on every node that applies the same log; configuration kept as
 * node rows by older releases is converted once.
 */

async function request(url: string, method: string, route: string, body?: string): Promise<{ status: number; body: unknown; text: string }> {
  const response = await fetch(`${url}${route}`, { method, ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }) })
  const text = await response.text()
  return { status: response.status, body: text === '' ? undefined : parseJson(text), text }
}

async function expectStatus(url: string, method: string, route: string, status: number, body?: string): Promise<{ data: { id: string } }> {
  const reply = await request(url, method, route, body)
  assert.equal(reply.status, status, `${method} ${route}: ${reply.text}`)
  return reply.body as { data: { id: string } }
}

interface Served {
  readonly url: string
  readonly node: LedgerNode
  close(): Promise<void>
}

/** A node and its API on a free port; the stdout driver writes into a sink nobody reads. */
async function serve(options: LedgerNodeOptions, api: ApiOptions = {}): Promise<Served> {
  const node = await LedgerNode.open(options)
  try {
    const app = await buildApi(node, { ...api, outputs: { stdout: new PassThrough().resume(), ...api.outputs } })
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    return { url, node, close: async () => (await app.close(), await node.close()) }
  } catch (error) {
    await node.close()
    throw error
  }
}

/** Every configuring operation once: two exporters (one updated), two pipelines (one stopped and reset, one deleted). */
async function configure(url: string): Promise<{ exporters: string[]; pipelines: string[] }> {
  await expectStatus(url, 'POST', '/v2/main', 204)
  await expectStatus(url, 'POST', '/v2/other', 204)
  const first = (await expectStatus(url, 'POST', '/v2/_/exporters', 201, '{"driver":"stdout","config":{"batchSize":7}}')).data.id
  const second = (await expectStatus(url, 'POST', '/v2/_/exporters', 201, '{"driver":"http","config":{"url":"http://127.0.0.1:9/logs"}}')).data.id
  await expectStatus(url, 'PUT', `/v2/_/exporters/${second}`, 204, '{"driver":"http","config":{"url":"http://127.0.0.1:9/other","batchSize":3}}')
  const kept = (await expectStatus(url, 'POST', '/v2/main/pipelines', 201, `{"exporterID":"${second}"}`)).data.id
  const dropped = (await expectStatus(url, 'POST', '/v2/other/pipelines', 201, `{"exporterID":"${first}"}`)).data.id
  await expectStatus(url, 'POST', `/v2/main/pipelines/${kept}/stop`, 202)
  await expectStatus(url, 'POST', `/v2/main/pipelines/${kept}/reset`, 202)
  await expectStatus(url, 'DELETE', `/v2/other/pipelines/${dropped}`, 204)
  await expectStatus(url, 'DELETE', `/v2/_/exporters/${first}`, 204)
  // Refusals are orders too (audited as failed), and change nothing.
  assert.equal((await request(url, 'DELETE', `/v2/_/exporters/${second}`)).status, 400, 'in use')
  assert.equal((await request(url, 'POST', '/v2/main/pipelines', `{"exporterID":"${second}"}`)).status, 409, 'one pipeline per ledger and exporter')
  assert.equal((await request(url, 'POST', '/v2/nowhere/pipelines', `{"exporterID":"${second}"}`)).status, 404, 'no such ledger')
  return { exporters: [second], pipelines: [kept] }
}

async function outputsRow(store: Store): Promise<Buffer | undefined> {
  return store.get(attributeRowKey(outputsKey()))
}

async function withStore<T>(directory: string, body: (store: Store) => Promise<T>): Promise<T> {
  const store = await Store.open(path.join(directory, 'store'))
  try {
    return await body(store)
  } finally {
    await store.close()
  }
}

test('configuration changes are audited orders: tally check replays them clean, and finds a tampered outputs row', async () => {
  const temp = tempDirectory('tally-outputs-orders-')
  try {
    const server = await serve({ dataDirectory: temp.directory, sync: false })
    let configured: { exporters: string[]; pipelines: string[] }
    try {
      configured = await configure(server.url)
    } finally {
      await server.close()
    }
    await withStore(temp.directory, async (store) => {
      const audited: string[] = []
      for await (const [, value] of store.range({ gte: Buffer.of(Zone.audit), lt: Buffer.of(Zone.audit + 1) })) {
        // The body's canonical JSON print: the row itself is packed (ADR 0009).
        const text = stringifyJson(decodeAuditEntry(value) as unknown as Json)
        for (const type of ['PUT_EXPORTER', 'DELETE_EXPORTER', 'PUT_PIPELINE', 'DELETE_PIPELINE', 'SET_PIPELINE_ENABLED', 'RESET_PIPELINE']) if (text.includes(`"${type}"`)) audited.push(type)
      }
      for (const type of ['PUT_EXPORTER', 'DELETE_EXPORTER', 'PUT_PIPELINE', 'DELETE_PIPELINE', 'SET_PIPELINE_ENABLED', 'RESET_PIPELINE']) assert.ok(audited.includes(type), `${type} is in the audit chain`)
      const clean = await runCheck(store)
      assert.deepEqual(clean.findingsList, [])

      const row = await outputsRow(store)
      assert.ok(row !== undefined)
      const applied = decodeRowValue('o', row)
      assert.deepEqual(applied.exporters.map((exporter) => exporter.id), configured.exporters)
      assert.deepEqual(
        applied.pipelines.map(({ id, enabled, resets }) => ({ id, enabled, resets })),
        configured.pipelines.map((id) => ({ id, enabled: false, resets: 1n })),
      )
      // A writer of the data directory turns the stopped pipeline back on: the replay disagrees.
      const tampered = encodeAttribute({ kind: 'o', value: { ...applied, pipelines: applied.pipelines.map((pipeline) => ({ ...pipeline, enabled: true })) } })
      await store.write([{ key: attributeRowKey(outputsKey()), value: tampered.bytes }], { sync: true })
      const found = await runCheck(store)
      assert.deepEqual(
        found.findingsList.map((finding) => finding.kind),
        ['outputs'],
        stringifyJson(found.findingsList.map((finding) => ({ ...finding }))),
      )
    })
  } finally {
    temp.remove()
  }
})

test('power loss: the store rolled back to its last sync rebuilds the configuration from the WAL, byte for byte on two nodes', async () => {
  const temp = tempDirectory('tally-outputs-power-')
  const copies = [tempDirectory('tally-outputs-node-a-'), tempDirectory('tally-outputs-node-b-')]
  try {
    const disk = new PowerLossDisk({ random: mulberry32(14), worstCase: true })
    const options: LedgerNodeOptions = { dataDirectory: temp.directory, sync: true, walIo: disk.walIo, openStore: disk.openStore }
    const node = await LedgerNode.open(options)
    let live: Buffer | undefined
    let appliedBefore: number
    try {
      const app = await buildApi(node, { outputs: { stdout: new PassThrough().resume() } })
      const url = await app.listen({ host: '127.0.0.1', port: 0 })
      try {
        await configure(url)
        live = await outputsRow(node.store)
        appliedBefore = node.fsm.appliedIndex
      } finally {
        // The plug is pulled with the API still up: nothing more reaches the disk, whatever closing tries.
        disk.pullPlug()
        await app.close().catch(() => {})
      }
    } finally {
      await node.wal.close().catch(() => {})
      await node.store.close().catch(() => {})
    }
    assert.ok(live !== undefined)
    await disk.restorePower()
    // The store kept only what was synced: the configuration is not all in it.
    const rolledBack = await withStore(temp.directory, async (store) => Number((await store.get(metaKey(MetaKey.appliedIndex)))?.toString('utf8') ?? '0'))
    assert.ok(rolledBack < appliedBefore, `the store was rolled back (applied ${rolledBack} of ${appliedBefore})`)

    const rebuilt: Buffer[] = []
    for (const copy of copies) {
      await fs.cp(temp.directory, copy.directory, { recursive: true })
      const server = await serve({ dataDirectory: copy.directory, sync: false })
      try {
        const row = await outputsRow(server.node.store)
        assert.ok(row !== undefined, 'rebuilt by the WAL replay')
        rebuilt.push(row)
        const exporters = (await request(server.url, 'GET', '/v2/_/exporters')).body as { cursor: { data: { config: { url: string; batchSize: bigint } }[] } }
        assert.deepEqual(exporters.cursor.data.map((exporter) => [exporter.config.url, exporter.config.batchSize]), [['http://127.0.0.1:9/other', 3n]])
        const pipelines = (await request(server.url, 'GET', '/v2/main/pipelines')).body as { cursor: { data: { enabled: boolean }[] } }
        assert.deepEqual(pipelines.cursor.data.map((pipeline) => pipeline.enabled), [false], 'still stopped')
      } finally {
        await server.close()
      }
      await withStore(copy.directory, async (store) => assert.deepEqual((await runCheck(store)).findingsList, []))
    }
    assert.deepEqual(rebuilt[0], live, 'node a holds the row the crashed node held')
    assert.deepEqual(rebuilt[1], live, 'node b too')
  } finally {
    temp.remove()
    for (const copy of copies) copy.remove()
  }
})

test('migration: configuration an older release kept as node rows becomes orders once; cursors stay', async () => {
  const temp = tempDirectory('tally-outputs-migration-')
  try {
    const node = await LedgerNode.open({ dataDirectory: temp.directory, sync: false })
    try {
      const app = await buildApi(node)
      const url = await app.listen({ host: '127.0.0.1', port: 0 })
      try {
        await expectStatus(url, 'POST', '/v2/main', 204)
        await expectStatus(url, 'POST', '/v2/main/transactions', 200, '{"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD"}]}')
      } finally {
        await app.close()
      }
      // The rows an older release wrote: one exporter, a stopped pipeline that had confirmed log 0.
      await node.store.write(
        [
          { key: outputRowKey('e', 'legacy-exporter'), value: Buffer.from('{"id":"legacy-exporter","createdAt":"2026-01-02T03:04:05.000Z","driver":"stdout","config":{"batchSize":5}}') },
          { key: outputRowKey('p', 'legacy-pipeline'), value: Buffer.from('{"id":"legacy-pipeline","ledger":"main","exporterID":"legacy-exporter","createdAt":"2026-01-02T03:04:06.000Z","enabled":false}') },
          { key: outputRowKey('c', 'legacy-pipeline'), value: Buffer.from('0') },
          // A pipeline of a ledger that does not exist: its order is refused, its row dropped.
          { key: outputRowKey('p', 'orphan'), value: Buffer.from('{"id":"orphan","ledger":"gone","exporterID":"legacy-exporter","createdAt":"2026-01-02T03:04:07.000Z","enabled":true}') },
        ],
        { sync: true },
      )
    } finally {
      await node.close()
    }
    let appliedAfterMigration: number | undefined
    for (let start = 0; start < 2; start++) {
      const server = await serve({ dataDirectory: temp.directory, sync: false })
      try {
        // The second start finds nothing left to convert: it proposes nothing.
        if (appliedAfterMigration !== undefined) assert.equal(server.node.fsm.appliedIndex, appliedAfterMigration)
        appliedAfterMigration = server.node.fsm.appliedIndex
        const exporters = (await request(server.url, 'GET', '/v2/_/exporters')).body as { cursor: { data: { id: string; createdAt: string; config: { batchSize: bigint } }[] } }
        assert.deepEqual(exporters.cursor.data.map(({ id, createdAt, config }) => [id, createdAt, config.batchSize]), [['legacy-exporter', '2026-01-02T03:04:05.000Z', 5n]])
        const pipeline = (await request(server.url, 'GET', '/v2/main/pipelines/legacy-pipeline')).body as { data: { createdAt: string; enabled: boolean; lastLogID?: bigint } }
        assert.deepEqual([pipeline.data.createdAt, pipeline.data.enabled, pipeline.data.lastLogID], ['2026-01-02T03:04:06.000Z', false, 0n], 'same pipeline, still stopped, cursor kept')
        const left: string[] = []
        for await (const [key] of server.node.store.range({ gte: Buffer.of(Zone.outputs), lt: prefixEnd(Buffer.of(Zone.outputs)) })) left.push(key.subarray(1).toString('latin1'))
        assert.deepEqual(left, ['c\u0000legacy-pipeline'], 'configuration rows dropped, the cursor kept')
      } finally {
        await server.close()
      }
    }
    await withStore(temp.directory, async (store) => assert.deepEqual((await runCheck(store)).findingsList, []))
  } finally {
    temp.remove()
  }
})

test('a cursor confirmed after a reset is kept across a restart; the reset is not applied twice', async () => {
  const temp = tempDirectory('tally-outputs-reset-')
  const stateOf = async (url: string, id: string) => ((await request(url, 'GET', `/v2/main/pipelines/${id}`)).body as { data: { lastLogID?: bigint } }).data
  const until = async (url: string, id: string, predicate: (lastLogID: bigint | undefined) => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + 60_000
    while (!predicate((await stateOf(url, id)).lastLogID)) {
      if (Date.now() > deadline) throw new Error(`never reached: ${what}`)
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  try {
    let server = await serve({ dataDirectory: temp.directory, sync: false })
    let pipelineID: string
    try {
      await expectStatus(server.url, 'POST', '/v2/main', 204)
      for (let i = 0; i < 3; i++) await expectStatus(server.url, 'POST', '/v2/main/transactions', 200, '{"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD"}]}')
      const exporterID = (await expectStatus(server.url, 'POST', '/v2/_/exporters', 201, '{"driver":"stdout","config":{"batchSize":1}}')).data.id
      pipelineID = (await expectStatus(server.url, 'POST', '/v2/main/pipelines', 201, `{"exporterID":"${exporterID}"}`)).data.id
      await until(server.url, pipelineID, (id) => id === 2n, 'delivered')
      await expectStatus(server.url, 'POST', `/v2/main/pipelines/${pipelineID}/stop`, 202)
      await expectStatus(server.url, 'POST', `/v2/main/pipelines/${pipelineID}/reset`, 202)
      assert.equal((await stateOf(server.url, pipelineID)).lastLogID, undefined, 'the reset dropped the cursor')
      await expectStatus(server.url, 'POST', `/v2/main/pipelines/${pipelineID}/start`, 202)
      await until(server.url, pipelineID, (id) => id === 2n, 'delivered again from the first log')
      await expectStatus(server.url, 'POST', `/v2/main/pipelines/${pipelineID}/stop`, 202)
    } finally {
      await server.close()
    }
    server = await serve({ dataDirectory: temp.directory, sync: false })
    try {
      assert.equal((await stateOf(server.url, pipelineID)).lastLogID, 2n, 'the cursor confirmed under the reset survives the restart')
    } finally {
      await server.close()
    }
  } finally {
    temp.remove()
  }
})
