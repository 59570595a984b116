import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough, Readable } from 'node:stream'
import fc from 'fast-check'
import type { Json, LedgerName } from '../../src/domain/index.ts'
import { TallyError, parseJson, stringifyJson } from '../../src/domain/index.ts'
import { v2LogHash } from '../../src/audit/v2-log-hash.ts'
import { exportLogLines, importLogStream, importWorkerBytesMin } from '../../src/check/index.ts'
import type { ImportPlanner } from '../../src/check/index.ts'
import type { PlannedLog } from '../../src/check/import-plan.ts'
import { LogPlanner, RefusedLog, mapsAlone } from '../../src/check/import-plan.ts'
import type { WireValue } from '../../src/check/import-wire.ts'
import { readWire, writePlannedLog } from '../../src/check/import-wire.ts'
import type { TestApi } from '../support/api.ts'
import { asObject, openTestApi } from '../support/api.ts'
import { writeRichLedger } from '../support/rich-ledger.ts'

/**
 * `importLogStream` plans a large stream on a worker thread
 * (`src/check/import-planner-thread.ts`): the logs it hands over must be the
 * orders the planner builds beside the pipeline, and an import through it
 * must end exactly as one beside the pipeline does — the same ledger, and
 * for a refused stream the same error at the same log with the same prefix
 * applied.
 */

const SOURCE = 'main' as LedgerName

/** Everything an order carries, prototypes and key order included (what `deepStrictEqual` alone does not compare). */
function shape(value: unknown): unknown {
  if (typeof value === 'bigint') return `${value}n`
  if (Array.isArray(value)) return value.map(shape)
  if (value !== null && typeof value === 'object') {
    return { prototype: Object.getPrototypeOf(value) === null ? 'none' : 'Object', frozen: Object.isFrozen(value), entries: Object.keys(value).map((key) => [key, shape((value as Record<string, unknown>)[key])]) }
  }
  return value
}

function roundTrip(planned: PlannedLog): PlannedLog | undefined {
  const wire: WireValue[] = []
  if (!writePlannedLog(planned, wire)) return undefined
  const read = [...readWire(SOURCE, wire)]
  assert.equal(read.length, 1)
  return read[0] as PlannedLog
}

/** A ledger with every log kind (`writeRichLedger`), then `bulks` atomic bulks of one date; its export. */
async function richLedger(api: TestApi, bulks = 3): Promise<string> {
  await writeRichLedger(api, bulks)
  return await exportText(api, SOURCE)
}

async function exportText(api: TestApi, ledger: LedgerName): Promise<string> {
  let text = ''
  for await (const line of exportLogLines(api.node.store, ledger)) text += line
  return text
}

/** The text in chunks cut at the given byte offsets (a log may span several). */
function chunked(bytes: Buffer, cuts: readonly number[]): Readable {
  const ends = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let from = 0
  for (const end of [...ends, bytes.length]) {
    if (end > from) chunks.push(bytes.subarray(from, end))
    from = Math.max(from, end)
  }
  return Readable.from(chunks)
}

/** The line with its hash recomputed by v2's rule after `previous` (a log that verifies, whatever its fields). */
function rehashed(line: string, previous: string): string {
  const log = asObject(parseJson(line))
  const previousHash = asObject(parseJson(previous)).hash as string
  const schemaVersion = typeof log.schemaVersion === 'string' ? { schemaVersion: log.schemaVersion } : {}
  const hash = v2LogHash(previousHash, { type: log.type as string, data: log.data as Json, date: log.date as string, idempotencyKey: log.idempotencyKey as string, ...schemaVersion })
  return line.replace(/"hash":"[^"]+"/, `"hash":"${hash}"`)
}

type Outcome = { ok: true; logs: number } | { ok: false; code: string; message: string }

async function importInto(api: TestApi, ledger: LedgerName, bytes: Buffer, planner: ImportPlanner, cuts: readonly number[] = []): Promise<Outcome> {
  try {
    const summary = await importLogStream(api.node, ledger, chunked(bytes, cuts), { planner, groupOrdersMax: 3 })
    return { ok: true, logs: summary.logs }
  } catch (error) {
    if (!(error instanceof TallyError)) throw error
    return { ok: false, code: error.code, message: error.message }
  }
}

test('the wire gives back every planned transfer exactly as the planner built it: fields, key order, prototype-less maps', () => {
  const metadataKeys = fc.constantFrom('a', 'z', '10', '9', '__proto__', 'constructor', 'é', 'k"q')
  const metadata = fc.dictionary(metadataKeys, fc.string({ maxLength: 4 }), { maxKeys: 4 })
  const address = fc.constantFrom('world', 'users:1', 'users:__proto__', 'bank:a:b')
  const posting = fc.record({ source: address, destination: address, amount: fc.bigInt({ min: 0n, max: 2n ** 90n }), asset: fc.constantFrom('USD/2', 'EUR', 'COIN') })
  const log = fc.record({
    postings: fc.array(posting, { minLength: 1, maxLength: 3 }),
    metadata,
    timestamp: fc.constantFrom('2026-01-01T00:00:00Z', '2020-02-29T12:00:00.123456Z', '2026-01-01T00:00:00.5Z'),
    reference: fc.option(fc.constantFrom('ref-1', 'r "2"'), { nil: undefined }),
    template: fc.option(fc.constantFrom('DEPOSIT', ''), { nil: undefined }),
    accountMetadata: fc.option(fc.dictionary(address, metadata, { maxKeys: 2 }), { nil: undefined }),
    idempotencyKey: fc.option(fc.constantFrom('ik-1', 'é'), { nil: undefined }),
    idempotencyHash: fc.option(fc.constantFrom('hash-1', ''), { nil: undefined }),
    schemaVersion: fc.option(fc.constantFrom('v1', 'v2'), { nil: undefined }),
    date: fc.constantFrom('2026-01-01T00:00:00Z', '2026-01-01T00:00:00.000001Z'),
  })
  let transfers = 0
  fc.assert(
    fc.property(log, (fields) => {
      const transaction: { [key: string]: Json } = { postings: fields.postings, metadata: fields.metadata, timestamp: fields.timestamp, id: 0n, reverted: false }
      if (fields.reference !== undefined) transaction.reference = fields.reference
      if (fields.template !== undefined) transaction.template = fields.template
      const data: { [key: string]: Json } = { transaction, ...(fields.accountMetadata === undefined ? {} : { accountMetadata: fields.accountMetadata }) }
      const key = fields.idempotencyKey ?? ''
      const hash = v2LogHash('', { type: 'NEW_TRANSACTION', data, date: fields.date, idempotencyKey: key, ...(fields.schemaVersion === undefined ? {} : { schemaVersion: fields.schemaVersion }) })
      const raw: Json = {
        type: 'NEW_TRANSACTION',
        data,
        date: fields.date,
        idempotencyKey: key,
        ...(fields.idempotencyHash === undefined ? {} : { idempotencyHash: fields.idempotencyHash }),
        id: 0n,
        hash,
        ...(fields.schemaVersion === undefined ? {} : { schemaVersion: fields.schemaVersion }),
      }
      const planner = new LogPlanner(SOURCE)
      let planned: PlannedLog
      try {
        planned = planner.map(planner.check(raw))
      } catch (error) {
        if (error instanceof RefusedLog) return // a log Tally refuses never reaches the wire
        throw error
      }
      const read = roundTrip(planned)
      assert.ok(read !== undefined, 'every planned transfer has the wire shape')
      transfers++
      assert.deepStrictEqual(shape(read), shape(planned))
      assert.deepStrictEqual(read, planned)
    }),
    { numRuns: 300 },
  )
  assert.ok(transfers > 100, `${transfers} transfers went through the wire`)
})

test('the wire carries the transfers of an export as planned, and leaves every other log to the checked form', async () => {
  const api = await openTestApi()
  try {
    const exported = await richLedger(api)
    const planner = new LogPlanner(SOURCE)
    const kinds = new Set<string>()
    for (const line of exported.split('\n').filter((text) => text !== '')) {
      const checked = planner.check(parseJson(line))
      if (!mapsAlone(checked)) {
        kinds.add(`checked ${String(checked.type)}`)
        continue
      }
      const planned = planner.map(checked)
      const read = roundTrip(planned)
      kinds.add(`${read === undefined ? 'checked' : 'wire'} ${String(checked.type)}`)
      if (read === undefined) assert.notEqual(checked.type, 'NEW_TRANSACTION')
      else assert.deepStrictEqual(shape(read), shape(planned))
    }
    assert.deepEqual([...kinds].sort(), ['checked DELETE_METADATA', 'checked INSERTED_SCHEMA', 'checked REVERTED_TRANSACTION', 'checked SET_METADATA', 'wire NEW_TRANSACTION'])
  } finally {
    await api.close()
  }
})

test('the wire refuses an order of another shape rather than carry it wrong', () => {
  const planner = new LogPlanner(SOURCE)
  const data = { transaction: { postings: [{ source: 'world', destination: 'users:1', amount: 5n, asset: 'USD' }], metadata: {}, timestamp: '2026-01-01T00:00:00Z', id: 0n }, accountMetadata: {} }
  const planned = planner.map(planner.check({ type: 'NEW_TRANSACTION', data, date: '2026-01-01T00:00:00Z', idempotencyKey: '', id: 0n, hash: v2LogHash('', { type: 'NEW_TRANSACTION', data, date: '2026-01-01T00:00:00Z', idempotencyKey: '' }) }))
  assert.ok(roundTrip(planned) !== undefined)
  const order = planned.proposed.order as unknown as Record<string, unknown>
  const variants: Record<string, unknown>[] = [
    { ...order, script: { plain: 'send' } },
    { ...order, force: false },
    { ...order, metadata: { a: 'b' } }, // a map with a prototype
    { ...order, postings: [{ ...(order.postings as Record<string, unknown>[])[0], extra: 1 }] },
    { ...order, timestamp: 5 },
    { ...order, accountMetadata: Object.create(null) }, // a fresh empty map, not the shared one
  ]
  for (const variant of variants) {
    const wire: WireValue[] = []
    assert.equal(writePlannedLog({ ...planned, proposed: { order: variant as never } }, wire), false, JSON.stringify(Object.keys(variant)))
    assert.deepEqual(wire, [])
  }
})

test('an import planned on the worker gives the ledger an import beside the pipeline gives, and the source had: byte-identical exports, check clean', async () => {
  const api = await openTestApi()
  try {
    const exported = await richLedger(api, 20)
    const bytes = Buffer.from(exported)
    const cuts = [1, 17, 400, 401, 1000, bytes.length - 3]
    for (const planner of ['worker', 'thread'] as const) {
      const ledger = `copy-${planner}` as LedgerName
      const outcome = await importInto(api, ledger, bytes, planner, cuts)
      assert.deepEqual(outcome, { ok: true, logs: exported.split('\n').length - 1 })
      assert.equal(await exportText(api, ledger), exported, `${planner}: the same logs, ids, hashes and idempotency records`)
    }
    const checked = await api.app.inject({ method: 'POST', url: '/_/check' })
    const summary = asObject(parseJson(checked.body.trim().split('\n').at(-1) as string))
    assert.equal(summary.ok, true, checked.body)
  } finally {
    await api.close()
  }
})

test('a refused stream stops on the worker at the same log, with the same error and the same ledger, as beside the pipeline', async () => {
  const api = await openTestApi()
  try {
    const exported = await richLedger(api, 6)
    const lines = exported.split('\n').filter((line) => line !== '')
    const at = (i: number, edit: (line: string) => string): string => `${lines.map((line, k) => (k === i ? edit(line) : line)).join('\n')}\n`
    const lastBulk = lines.length - 4
    const corruptions: [string, Buffer, RegExp][] = [
      ['a forged hash in a bulk', Buffer.from(at(lastBulk, (line) => line.replace(/"hash":"[^"]+"/, `"hash":"${/"hash":"([^"]+)"/.exec(lines[0] as string)?.[1]}"`))), /^log \d+: invalid hash/],
      ['a tampered amount', Buffer.from(at(lastBulk, (line) => line.replace(/"amount":(\d+)/, '"amount":99$1'))), /^log \d+: invalid hash/],
      ['a tampered revert', Buffer.from(at(6, (line) => line.replace('"why":"test"', '"why":"tost"'))), /^log 6: invalid hash/],
      ['a line that is not JSON', Buffer.from(at(lastBulk - 2, (line) => line.replace('"type":', '"type"::'))), /not valid JSON/],
      ['a line whose object is not closed', Buffer.from(at(lastBulk - 2, (line) => line.slice(0, -1))), /ends inside a log object/],
      ['ids that do not increase', Buffer.from(at(lastBulk, (line) => line.replace(/"id":(\d+),"hash"/, '"id":0,"hash"'))), /^log 0: ids must increase/],
      ['an unknown log type', Buffer.from(at(lastBulk - 5, (line) => line.replace('"type":"NEW_TRANSACTION"', '"type":"NEW_THING"'))), /^log \d+: schemaVersion on a "NEW_THING" log is not supported/],
      ['an unknown log type, hashed', Buffer.from(at(2, (line) => rehashed(line.replace('"type":"SET_METADATA"', '"type":"NEW_THING"'), lines[1] as string))), /^log 2: type "NEW_THING" is not imported/],
      ['a null account metadata (Tally would log {})', Buffer.from(at(lastBulk, (line) => rehashed(line.replace(/"accountMetadata":\{\}/, '"accountMetadata":null'), lines[lastBulk - 1] as string))), /^log \d+: Tally would replay it to another log/],
      ['a stream cut inside a log', Buffer.from(exported.slice(0, exported.length - 40)), /ends inside a log object/],
      ['bytes that are not UTF-8', Buffer.concat([Buffer.from(at(lastBulk, (line) => line)), Buffer.from([0xff, 0xfe])]), /not valid UTF-8/],
      ['data after a JSON array', Buffer.from(`[${lines.join(',')}] {}`), /after the end of the JSON array/],
    ]
    for (const [i, [what, bytes, message]] of corruptions.entries()) {
      const outcomes: Outcome[] = []
      const held: string[] = []
      for (const planner of ['worker', 'thread'] as const) {
        const ledger = `c${i}-${planner}` as LedgerName
        outcomes.push(await importInto(api, ledger, bytes, planner, [64, 333, 2000]))
        held.push(await exportText(api, ledger))
      }
      const [worker, thread] = outcomes as [Outcome, Outcome]
      assert.equal(worker.ok, false, `${what}: refused`)
      assert.match(worker.ok ? '' : worker.message, message, what)
      assert.deepEqual(worker, thread, `${what}: the same error`)
      assert.equal(held[0], held[1], `${what}: the same logs applied`)
      assert.ok(exported.startsWith(held[0] as string), `${what}: a prefix of the stream`)
      // A wrong hash, or a log Tally would write differently: every log before it is applied.
      const verifiedBefore = /^log (\d+): (invalid hash|Tally would replay)/.exec(worker.ok ? '' : worker.message)
      if (verifiedBefore !== null) assert.equal(held[0], lines.slice(0, Number(verifiedBefore[1])).map((line) => `${line}\n`).join(''), `${what}: the logs before it`)
    }
  } finally {
    await api.close()
  }
})

test('a forged hash through the worker: the logs before it are applied, none after, and the error names it', async () => {
  const api = await openTestApi()
  try {
    const lines = (await richLedger(api, 4)).split('\n').filter((line) => line !== '')
    const forged = lines.length - 9
    const hashOf = (line: string): string => /"hash":"([^"]+)"/.exec(line)?.[1] as string
    const text = `${lines.map((line, k) => (k === forged ? line.replace(hashOf(line), hashOf(lines[0] as string)) : line)).join('\n')}\n`
    const outcome = await importInto(api, 'copy' as LedgerName, Buffer.from(text), 'worker')
    assert.deepEqual(outcome, { ok: false, code: 'IMPORT', message: `log ${forged}: invalid hash: expected ${hashOf(lines[forged] as string)}, got ${hashOf(lines[0] as string)}` })
    assert.equal(await exportText(api, 'copy' as LedgerName), lines.slice(0, forged).map((line) => `${line}\n`).join(''))
  } finally {
    await api.close()
  }
})

test('the worker path: a source that fails throws its own error after a verified prefix; one left open after a refusal is destroyed', async () => {
  const api = await openTestApi()
  try {
    const exported = await richLedger(api, 6)
    const failure = new Error('the upload broke')
    const breaking = Readable.from(
      (async function* () {
        yield Buffer.from(exported.slice(0, Math.floor(exported.length / 2)))
        throw failure
      })(),
    )
    await assert.rejects(importLogStream(api.node, 'broken' as LedgerName, breaking, { planner: 'worker', groupOrdersMax: 3 }), (error: unknown) => error === failure)
    assert.ok(exported.startsWith(await exportText(api, 'broken' as LedgerName)))

    // A forged first log, then a stream that never ends (a client that keeps its upload open).
    const open = new PassThrough()
    const first = exported.split('\n')[0] as string
    open.write(`${first.replace(/"hash":"[^"]+"/, '"hash":"AAAA"')}\n`)
    await assert.rejects(importLogStream(api.node, 'open' as LedgerName, open, { planner: 'worker' }), /log 0: invalid hash/)
    assert.equal(open.destroyed, true)
  } finally {
    await api.close()
  }
})

test('POST /v2/{ledger}/logs/import of a stream over the worker threshold imports through the worker: the same logs as the source', async () => {
  const api = await openTestApi()
  try {
    await richLedger(api, 0)
    for (let bulk = 0; bulk < 4; bulk++) {
      const elements = Array.from({ length: 800 }, (_, i) => ({ action: 'CREATE_TRANSACTION', data: { postings: [{ source: 'world', destination: `users:b${bulk}x${i}`, amount: 1 + i, asset: 'USD/2' }], metadata: { order: `${bulk}-${i}` } } }))
      const reply = await api.request('POST', '/v2/main/_bulk?atomic=true&schemaVersion=v1', stringifyJson(elements as unknown as Json))
      assert.equal(reply.status, 200, reply.text)
    }
    const exported = await exportText(api, SOURCE)
    assert.ok(Buffer.byteLength(exported) >= importWorkerBytesMin, `${Buffer.byteLength(exported)} bytes: past the threshold`)
    const reply = await api.request('POST', '/v2/copy/logs/import', exported)
    assert.equal(reply.status, 204, reply.text)
    assert.equal(await exportText(api, 'copy' as LedgerName), exported)
  } finally {
    await api.close()
  }
})
