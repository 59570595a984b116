import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { InvariantViolation, TRANSACTION_LOG_LAYOUT, packValue, stringifyJson, unpackValue } from '../../src/domain/index.ts'
import { RowLayout, decodeLogRow, encodeLogRow } from '../../src/store/index.ts'

/**
 * The fixed NEW_TRANSACTION log layout (docs/adr/0012): a log it holds
 * decodes to exactly what the generic row of the same log decodes to, field
 * order included at every depth; a log it does not hold is packed
 * generically, byte for byte as before; a reader refuses what it did not write.
 */

const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 10 }), fc.constantFrom('', 'users:1', 'world', 'USD/2', '\ud800', 'é"\n', '10', '__proto__'))
const date = fc.constantFrom('2026-12-07T10:00:00Z', '2026-12-07T10:00:00.123456Z', '2026-12-07T10:00:00.5Z', '2026-01-01T00:00:00.000000Z', 'not a date')
const amount = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 52n + 3n }), fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }))
const metadata = fc.dictionary(fc.oneof(text, fc.constantFrom('0', '10', '2', '__proto__')), fc.string({ maxLength: 6 }), { maxKeys: 3 })
const hash = fc.oneof(
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString('base64')),
  fc.string({ maxLength: 48 }),
  fc.constantFrom('q0J5Yg8GZ1oQcf1mB2b0b5y6oH3b9b0oLk2m0p2n8wB=', ''),
)

/** A NEW_TRANSACTION log as the FSM writes it: `{id, hash, type, data, date, idempotencyKey?, schemaVersion?}`, the transaction in its view's order. */
const transactionLog = fc
  .record({
    id: fc.bigInt({ min: 0n, max: 2n ** 63n }),
    hash,
    date,
    idempotencyKey: fc.option(text, { nil: undefined }),
    schemaVersion: fc.option(text, { nil: undefined }),
    transactionId: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    postings: fc.array(fc.record({ source: text, destination: text, amount, asset: text }), { maxLength: 3 }),
    timestamp: date,
    insertedAt: fc.option(date, { nil: undefined }),
    updatedAt: fc.option(date, { nil: undefined }),
    metadata,
    reverted: fc.boolean(),
    reference: fc.option(text, { nil: undefined }),
    revertedAt: fc.option(date, { nil: undefined }),
    template: fc.option(text, { nil: undefined }),
    accountMetadata: fc.dictionary(text, metadata, { maxKeys: 2 }),
  })
  .map((drawn) => {
    const insertedAt = drawn.insertedAt ?? drawn.timestamp
    const updatedAt = drawn.updatedAt ?? insertedAt
    const transaction: Record<string, unknown> = { id: drawn.transactionId, postings: drawn.postings, timestamp: drawn.timestamp, insertedAt, updatedAt, metadata: drawn.metadata, reverted: drawn.reverted }
    if (drawn.reference !== undefined) transaction.reference = drawn.reference
    if (drawn.revertedAt !== undefined) transaction.revertedAt = drawn.revertedAt
    if (drawn.template !== undefined) transaction.template = drawn.template
    const log: Record<string, unknown> = { id: drawn.id, hash: drawn.hash, type: 'NEW_TRANSACTION', data: { transaction, accountMetadata: drawn.accountMetadata }, date: drawn.date }
    if (drawn.idempotencyKey !== undefined) log.idempotencyKey = drawn.idempotencyKey
    if (drawn.schemaVersion !== undefined) log.schemaVersion = drawn.schemaVersion
    return log
  })

/** The generic row's reading of a log: what every reader was written against. */
function generic(log: unknown): unknown {
  return unpackValue(packValue(log, RowLayout.log, false), RowLayout.log)
}

/** Same values and the same key order at every depth. */
function assertSameLog(actual: unknown, expected: unknown): void {
  assert.deepStrictEqual(actual, expected)
  assert.equal(stringifyJson(actual as never), stringifyJson(expected as never))
  assert.equal(JSON.stringify(actual, (_, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value)), JSON.stringify(expected, (_, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value)))
}

test('a NEW_TRANSACTION log in the fixed layout decodes to what its generic row decodes to, in the same order', () => {
  fc.assert(
    fc.property(transactionLog, (log) => {
      const row = encodeLogRow(log)
      assert.equal(row[0], TRANSACTION_LOG_LAYOUT)
      assertSameLog(decodeLogRow(row), generic(log))
      assert.ok(encodeLogRow(decodeLogRow(row)).equals(row), 'one canonical form: the decoded log encodes to the same row')
    }),
    { numRuns: 1000 },
  )
})

test('a log of another shape is packed generically, byte for byte as before', () => {
  const reshaped = transactionLog.chain((log) =>
    fc.constantFrom<(log: Record<string, unknown>) => unknown>(
      (l) => ({ ...l, type: 'SET_METADATA' }),
      (l) => ({ ...l, extra: 1n }),
      (l) => ({ hash: l.hash, ...l }),
      (l) => ({ ...l, data: { ...(l.data as object), more: 1 } }),
      (l) => ({ ...l, data: { accountMetadata: {}, transaction: (l.data as { transaction: unknown }).transaction } }),
      (l) => {
        const { transaction, accountMetadata } = l.data as { transaction: Record<string, unknown>; accountMetadata: unknown }
        return { ...l, data: { transaction: { ...transaction, postings: [{ destination: 'a', source: 'b', amount: 1n, asset: 'X' }] }, accountMetadata } }
      },
      (l) => {
        const { transaction, accountMetadata } = l.data as { transaction: Record<string, unknown>; accountMetadata: unknown }
        const { reverted, ...rest } = transaction
        return { ...l, data: { transaction: { ...rest, reverted, reference: undefined }, accountMetadata } }
      },
      (l) => ({ ...l, idempotencyKey: 7n }),
    ).map((change) => change(log)),
  )
  fc.assert(
    fc.property(reshaped, (log) => {
      const row = encodeLogRow(log)
      assert.equal(row[0], RowLayout.log)
      assert.ok(row.equals(packValue(log, RowLayout.log, false)))
    }),
    { numRuns: 300 },
  )
})

/** One transfer's log as the FSM writes it. */
function transferLog(): Record<string, unknown> {
  return {
    id: 12n,
    hash: createHash('sha256').update('x').digest('base64'),
    type: 'NEW_TRANSACTION',
    data: {
      transaction: { id: 11n, postings: [{ source: 'users:12', destination: 'users:907', amount: 100n, asset: 'USD/2' }], timestamp: '2026-12-07T10:00:00.123456Z', insertedAt: '2026-12-07T10:00:00.123456Z', updatedAt: '2026-12-07T10:00:00.123456Z', metadata: {}, reverted: false },
      accountMetadata: {},
    },
    date: '2026-12-07T10:00:00.123456Z',
  }
}

test('the fixed row of a transfer is shorter: the hash as 32 bytes, no field names, one date for four', () => {
  const log = transferLog()
  const row = encodeLogRow(log)
  assert.equal(row[0], TRANSACTION_LOG_LAYOUT)
  assert.equal(row[1], 0, 'no flags: the three dates written once, the hash as bytes')
  assert.ok(row.length < packValue(log, RowLayout.log, false).length - 60, `${row.length} bytes`)
  assertSameLog(decodeLogRow(row), generic(log))
})

test('a reader refuses a fixed log row it did not write: unknown flags, cut short, bytes left over, another layout byte', () => {
  const row = encodeLogRow(transferLog())
  assert.equal(row[1], 0)
  assert.throws(() => decodeLogRow(Buffer.concat([Buffer.of(TRANSACTION_LOG_LAYOUT, 0x80, 0x40), row.subarray(2)])), /unknown flags/)
  assert.throws(() => decodeLogRow(row.subarray(0, row.length - 1)), InvariantViolation)
  assert.throws(() => decodeLogRow(Buffer.concat([row, Buffer.of(0)])), InvariantViolation)
  assert.throws(() => decodeLogRow(Buffer.concat([Buffer.of(0x0b), row.subarray(1)])), InvariantViolation)
})

test('a hash is kept as 32 bytes only in its one canonical base64 text: any other text near it reads back as written', () => {
  // Canonical texts with one character changed: an alphabet character (the 43rd then often sets bits past
  // the 256th), a URL-safe one, padding, a space or a non-ASCII character, anywhere.
  const nearHash = fc
    .tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat({ max: 43 }), fc.constantFrom('A', 'B', 'C', 'D', 'E', 'Q', 'g', 'w', '+', '/', '-', '_', '=', ' ', 'é', '0', '9'))
    .map(([bytes, at, unit]) => {
      const canonical = Buffer.from(bytes).toString('base64')
      return canonical.slice(0, at) + unit + canonical.slice(at + 1)
    })
  fc.assert(
    fc.property(nearHash, (hash) => {
      const log = { ...transferLog(), hash }
      const row = encodeLogRow(log)
      assert.equal(row[0], TRANSACTION_LOG_LAYOUT)
      const canonical = Buffer.from(hash, 'base64').length === 32 && Buffer.from(hash, 'base64').toString('base64') === hash
      assert.equal((row[1] as number) & 4, canonical ? 0 : 4, 'the hash as bytes exactly when its text is canonical')
      assertSameLog(decodeLogRow(row), generic(log))
    }),
    { numRuns: 2000 },
  )
})

test('a transfer log with a field missing, an optional field present but undefined, or optional fields out of order, is packed generically', () => {
  const base = transferLog()
  const { transaction, accountMetadata } = base.data as { transaction: Record<string, unknown>; accountMetadata: unknown }
  const withTransaction = (fields: Record<string, unknown>) => ({ ...base, data: { transaction: { ...transaction, ...fields }, accountMetadata } })
  const reshaped: unknown[] = [
    withTransaction({ reference: undefined }),
    withTransaction({ revertedAt: undefined }),
    withTransaction({ reference: 'r', template: undefined }),
    withTransaction({ template: 't', reference: 'r' }),
    withTransaction({ revertedAt: '2026-12-07T10:00:00Z', reference: 'r' }),
    { ...base, idempotencyKey: undefined },
    { ...base, schemaVersion: undefined },
    { ...base, schemaVersion: 'v1', idempotencyKey: 'k' },
    { ...base, data: { transaction, accountMetadata: undefined } },
    withTransaction({ postings: [{ source: 'a', destination: 'b', amount: 1n, asset: undefined }] }),
    withTransaction({ postings: [{ source: 'a', destination: 'b', amount: 1n }] }),
    { ...base, data: { transaction: Object.fromEntries(Object.entries(transaction).filter(([key]) => key !== 'reverted')), accountMetadata } },
    Object.fromEntries(Object.entries(base).filter(([key]) => key !== 'date')),
    { ...base, data: { transaction } },
  ]
  for (const log of reshaped) {
    const row = encodeLogRow(log)
    assert.equal(row[0], RowLayout.log, JSON.stringify(log, (_, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value)))
    assert.ok(row.equals(packValue(log, RowLayout.log, false)))
  }
  // And in order, each one present: the fixed layout.
  assert.equal(encodeLogRow(withTransaction({ reference: 'r', revertedAt: '2026-12-07T10:00:00Z', template: 't' }))[0], TRANSACTION_LOG_LAYOUT)
  assert.equal(encodeLogRow({ ...base, idempotencyKey: 'k', schemaVersion: 'v1' })[0], TRANSACTION_LOG_LAYOUT)
})
