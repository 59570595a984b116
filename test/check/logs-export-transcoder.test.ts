import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { Json, LedgerName } from '../../src/domain/index.ts'
import { isJsonObject, stringifyJson } from '../../src/domain/index.ts'
import type { ExportReader } from '../../src/check/logs-export.ts'
import { exportLogChunks } from '../../src/check/index.ts'
import { decodeLogRow, encodeLogRow, logRowKey } from '../../src/store/index.ts'
import { transactionRecords } from '../support/arbitraries.ts'
import type { AggregatedVolumes } from '../../src/domain/index.ts'

/**
 * The export prints each log from its packed row (`writePackedJson`); the
 * line must be what the generic printer gives for the decoded log in v2's
 * field order — for the logs the FSM writes and for rows of any other shape.
 */

const ledger = 'main' as LedgerName

/** What an export line is, by definition: the decoded log, its fields in v2's order. */
function reference(row: Buffer): string {
  const log = decodeLogRow(row)
  assert.ok(isJsonObject(log))
  const line: { [key: string]: Json } = {
    type: log.type ?? null,
    data: log.data ?? null,
    date: log.date ?? null,
    idempotencyKey: typeof log.idempotencyKey === 'string' ? log.idempotencyKey : '',
    id: log.id ?? null,
    hash: log.hash ?? null,
  }
  if (typeof log.schemaVersion === 'string') line.schemaVersion = log.schemaVersion
  return `${stringifyJson(line)}\n`
}

function reader(rows: readonly Buffer[]): ExportReader {
  return {
    get: async () => Buffer.of(1),
    // No idempotency record: the line carries no idempotencyHash (a record's hash is covered by logs-export.test.ts).
    getMany: async (keys) => keys.map(() => undefined),
    async *rangeBatches() {
      yield rows.map((row, i) => [logRowKey(ledger, BigInt(i)), row] as [Buffer, Buffer])
    },
  }
}

async function exported(rows: readonly Buffer[]): Promise<string> {
  let text = ''
  for await (const chunk of exportLogChunks(reader(rows), ledger)) text += chunk.bytes.toString('utf8')
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

/** A row of any shape: fields missing, of other types, in any order. */
const oddLog = fc.record(
  { hash: scalar, schemaVersion: scalar, id: scalar, type: scalar, date: scalar, idempotencyKey: scalar, data: fc.oneof(scalar, metadata, fc.array(scalar, { maxLength: 3 })), extra: scalar },
  { requiredKeys: [] },
)

test('exported lines printed from the packed rows are the generic printing of each decoded log, byte for byte', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.oneof(fsmLog, oddLog), { minLength: 1, maxLength: 8 }), async (logs) => {
      const rows = logs.map((log) => encodeLogRow(log))
      assert.equal(await exported(rows), rows.map(reference).join(''))
    }),
    { numRuns: 500 },
  )
})
