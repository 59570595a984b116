import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { Json, LedgerName } from '../../src/domain/index.ts'
import { decodeAttribute, encodeAttribute, idempotencyKey, isJsonObject, packValue, stringifyJson } from '../../src/domain/index.ts'
import type { ExportReader } from '../../src/check/logs-export.ts'
import { exportLogChunks } from '../../src/check/index.ts'
import { RowLayout, decodeLogRow, encodeLogRow, logRowKey } from '../../src/store/index.ts'
import { transactionRecords } from '../support/arbitraries.ts'
import type { AggregatedVolumes } from '../../src/domain/index.ts'

/**
 * The export prints each log from its packed row (`writePackedJson`); the
 * line must be what the generic printer gives for the decoded log in v2's
 * field order — for the logs the FSM writes and for rows of any other shape.
 */

const ledger = 'main' as LedgerName

/**
 * The idempotency records the reader holds: a keyed log's record, with a
 * request hash or without one (a record written with none prints no
 * `idempotencyHash`), keyed by the log's idempotency key.
 */
function requestHashFor(key: string): string | undefined {
  // As the record's row key holds it: UTF-8 (a lone surrogate is stored as U+FFFD).
  const code = [...Buffer.from(key, 'utf8').toString('utf8')].reduce((sum, unit) => sum + (unit.codePointAt(0) ?? 0), 0)
  return code % 3 === 0 ? undefined : code % 3 === 1 ? '' : `h"${key}é`
}

/** What an export line is, by definition: the decoded log, its fields in v2's order, the keyed log's request hash from its record. */
function reference(row: Buffer): string {
  const log = decodeLogRow(row)
  assert.ok(isJsonObject(log))
  const key = typeof log.idempotencyKey === 'string' ? log.idempotencyKey : ''
  const hash = key === '' ? undefined : requestHashFor(key)
  const line: { [key: string]: Json } = {
    type: log.type ?? null,
    data: log.data ?? null,
    date: log.date ?? null,
    idempotencyKey: key,
    ...(hash === undefined || hash === '' ? {} : { idempotencyHash: hash }),
    id: log.id ?? null,
    hash: log.hash ?? null,
  }
  if (typeof log.schemaVersion === 'string') line.schemaVersion = log.schemaVersion
  return `${stringifyJson(line)}\n`
}

/** The idempotency record row of a key, as the FSM stores it; none for some keys. */
function recordRow(attributeKey: Buffer): Buffer | undefined {
  const canonical = attributeKey.toString('utf8', 1)
  const key = canonical.slice(canonical.indexOf(idempotencyKey(ledger, '')) + idempotencyKey(ledger, '').length)
  const requestHash = requestHashFor(key)
  if (requestHash === undefined) return undefined
  const row = Buffer.from(encodeAttribute({ kind: 'i', value: { requestHash, result: null } }).bytes)
  assert.equal(decodeAttribute('i', row).value.kind, 'i')
  return row
}

function reader(rows: readonly Buffer[], batchRows: number): ExportReader {
  return {
    get: async () => Buffer.of(1),
    getMany: async (keys) => keys.map(recordRow),
    async *rangeBatches() {
      for (let at = 0; at < rows.length; at += batchRows) yield rows.slice(at, at + batchRows).map((row, i) => [logRowKey(ledger, BigInt(at + i)), row] as [Buffer, Buffer])
    },
  }
}

async function exported(rows: readonly Buffer[], batchRows = rows.length): Promise<string> {
  let text = ''
  for await (const chunk of exportLogChunks(reader(rows, batchRows), ledger)) text += chunk.bytes.toString('utf8')
  return text
}

const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('', 'k"1', 'é', '\ud800', 'NEW_TRANSACTION', 'v1.0.0'))
const scalar = fc.oneof(text, fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }), fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }))
const metadata = fc.dictionary(fc.oneof(text, fc.constantFrom('0', '10', '2', '__proto__')), fc.string({ maxLength: 8 }), { maxKeys: 4 })

const amount = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 52n + 3n }), fc.bigInt({ min: 0n, max: 2n ** 128n }))
const volumes = fc
  .dictionary(text, fc.dictionary(text, fc.record({ input: amount, output: amount }), { maxKeys: 2 }), { maxKeys: 2 })
  .map((value) => value as unknown as AggregatedVolumes)
const transactionRecord = transactionRecords({ text, date: fc.constantFrom('2026-01-01T00:00:00Z', '2026-01-01T00:00:00.123456Z'), amount, metadata, volumes })

/** A log as the FSM writes it (NEW_TRANSACTION, REVERTED_TRANSACTION, SET_METADATA), in the FSM's field order. */
const fsmLog = fc
  .record({
    transaction: transactionRecord,
    kind: fc.constantFrom('NEW_TRANSACTION', 'REVERTED_TRANSACTION', 'SET_METADATA'),
    accountMetadata: fc.dictionary(text, metadata, { maxKeys: 2 }),
    idempotencyKey: fc.oneof(fc.constant(''), text),
    id: fc.bigInt({ min: 0n, max: 2n ** 63n }),
    hash: text,
    schemaVersion: fc.option(text, { nil: undefined }),
  })
  .map(({ transaction, kind, accountMetadata, idempotencyKey, id, hash, schemaVersion }) => {
    const printed = { ...transaction, postings: transaction.postings, metadata: transaction.metadata }
    const data =
      kind === 'NEW_TRANSACTION'
        ? { transaction: printed, accountMetadata }
        : kind === 'REVERTED_TRANSACTION'
          ? { revertedTransactionID: transaction.id, transaction: printed, revertedTransaction: printed }
          : { targetType: 'ACCOUNT', targetId: 'users:1', metadata: transaction.metadata }
    return { type: kind, data, date: '2026-01-01T00:00:00.000000Z', idempotencyKey, id, hash, ...(schemaVersion === undefined ? {} : { schemaVersion }) }
  })

/** The same logs in the order the FSM stores them (`{id, hash, ...}`; no idempotencyKey field when there is none), which the export prints in one pass. */
const fsmOrderedLog = fsmLog.map(({ type, data, date, idempotencyKey: key, id, hash, ...rest }) => ({ id, hash, type, data, date, ...(key === '' ? {} : { idempotencyKey: key }), ...rest }))

/**
 * NEW_TRANSACTION logs exactly as the FSM writes them (the transaction in its
 * view's order, the hash base64 of 32 bytes): stored in the fixed layout
 * (docs/adr/0012), which the export prints in its own one pass.
 */
const fixedLog = fc
  .record({
    transaction: transactionRecord,
    accountMetadata: fc.dictionary(text, metadata, { maxKeys: 2 }),
    idempotencyKey: fc.option(text, { nil: undefined }),
    id: fc.bigInt({ min: 0n, max: 2n ** 63n }),
    hash: fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString('base64')), text),
    schemaVersion: fc.option(text, { nil: undefined }),
    date: fc.constantFrom('2026-01-01T00:00:00Z', '2026-01-01T00:00:00.5Z', '2026-01-01T00:00:00.123456Z'),
  })
  .map(({ transaction: t, accountMetadata, idempotencyKey, id, hash, schemaVersion, date }) => {
    const view: { [key: string]: unknown } = { id: t.id, postings: t.postings.map((p) => ({ source: p.source, destination: p.destination, amount: p.amount, asset: p.asset })), timestamp: t.timestamp, insertedAt: t.insertedAt, updatedAt: t.updatedAt, metadata: t.metadata, reverted: t.reverted }
    if (t.reference !== undefined) view.reference = t.reference
    if (t.revertedAt !== undefined) view.revertedAt = t.revertedAt
    if (t.template !== undefined) view.template = t.template
    return { id, hash, type: 'NEW_TRANSACTION', data: { transaction: view, accountMetadata }, date, ...(idempotencyKey === undefined ? {} : { idempotencyKey }), ...(schemaVersion === undefined ? {} : { schemaVersion }) }
  })

/** A row of any shape: fields missing, of other types, in any order. */
const oddLog = fc.record(
  { hash: scalar, schemaVersion: scalar, id: scalar, type: scalar, date: scalar, idempotencyKey: scalar, data: fc.oneof(scalar, metadata, fc.array(scalar, { maxLength: 3 })), extra: scalar },
  { requiredKeys: [] },
)

/** Rows in the FSM's field order whose fields are missing or of other types: the one-pass printer must leave them to the general one. */
const fsmOrderedOddLog = fc.record(
  { id: scalar, hash: scalar, type: scalar, data: fc.oneof(scalar, metadata), date: scalar, idempotencyKey: scalar, schemaVersion: scalar, extra: scalar },
  { requiredKeys: ['id', 'hash', 'type', 'data', 'date'] },
)

test('exported lines printed from the packed rows are the generic printing of each decoded log, byte for byte', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.oneof(fixedLog, fsmOrderedLog, fsmLog, fsmOrderedOddLog, oddLog), { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 8 }), async (logs, batchRows) => {
      const rows = logs.map((log) => encodeLogRow(log))
      assert.equal(await exported(rows, batchRows), rows.map(reference).join(''))
    }),
    { numRuns: 500 },
  )
})

test('the NEW_TRANSACTION logs the FSM writes are stored in the fixed layout, and every one prints as its generic row would', async () => {
  await fc.assert(
    fc.asyncProperty(fixedLog, async (log) => {
      const row = encodeLogRow(log)
      assert.equal(row[0], RowLayout.transactionLog)
      assert.equal(await exported([row]), reference(packValue(log, RowLayout.log, false)))
    }),
    { numRuns: 500 },
  )
})

test('a fixed log row with bytes after its value, or cut short, fails the export instead of printing', async () => {
  const log = fc.sample(fixedLog, { numRuns: 1, seed: 3 })[0]
  const row = encodeLogRow(log)
  assert.equal(row[0], RowLayout.transactionLog)
  await assert.rejects(exported([Buffer.concat([row, Buffer.of(0)])]), /extra bytes/)
  await assert.rejects(exported([row.subarray(0, row.length - 1)]), /cut short/)
})

test('a log row with bytes after its value, or cut short, fails the export instead of printing', async () => {
  const log = { id: 3n, hash: 'h', type: 'SET_METADATA', data: { targetType: 'ACCOUNT', targetId: 'a', metadata: {} }, date: '2026-01-01T00:00:00.000000Z', idempotencyKey: 'k' }
  const row = encodeLogRow(log)
  assert.equal(await exported([row]), reference(row))
  await assert.rejects(exported([Buffer.concat([row, Buffer.of(0)])]), /extra bytes/)
  await assert.rejects(exported([row.subarray(0, row.length - 1)]), /cut short/)
})
