import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { printTransactionRow } from '../../src/api/transaction-row-json.ts'
import type { TransactionRecord } from '../../src/domain/index.ts'
import { ATTRIBUTE_ROW_LAYOUT, TRANSACTION_ROW_LAYOUT, canonicalMetadata, decodeTransactionRowWithoutVolumes, encodeAttribute, packValue, printTransaction } from '../../src/domain/index.ts'

const text = fc.oneof(fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 4 }), fc.constantFrom('', '\ud800', 'a"b\\c', 'x\ny', '\u2028', 'é'))
/** Keys a JavaScript object orders apart (array indexes first) and keys JSON escapes. */
const metadataKey = fc.oneof(fc.string({ minLength: 1, maxLength: 6 }), fc.constantFrom('0', '9', '10', '4294967294', '4294967295', '01', '__proto__', 'a"b', '\u0001'))
const amount = fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 1n << 90n }))
const instant = fc.constantFrom('2026-12-07T03:45:00.123Z', '2026-12-07T03:45:00.123456Z', '1970-01-01T00:00:00Z', 'not a date')
const posting = fc.record({ source: fc.constantFrom('world', 'users:1', 'é:ü'), destination: text, amount, asset: fc.constantFrom('USD', 'USD/2', 'COIN') })
const volumes = fc.constant({ 'users:1': { USD: { input: 3n, output: 1n, balance: 2n } } })

const transaction = fc.record(
  {
    id: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    postings: fc.array(posting, { maxLength: 4 }),
    timestamp: instant,
    insertedAt: instant,
    updatedAt: instant,
    reference: text,
    metadata: fc.array(fc.tuple(metadataKey, text), { maxLength: 5 }).map((entries) => canonicalMetadata(entries)),
    reverted: fc.boolean(),
    revertedAt: instant,
    template: text,
    preCommitVolumes: volumes,
    postCommitVolumes: volumes,
  },
  { requiredKeys: ['id', 'postings', 'timestamp', 'insertedAt', 'updatedAt', 'metadata', 'reverted'] },
)

test('a transaction printed from its stored row is byte for byte printTransaction of the decoded row, in the fixed layout and packed generically (property)', () => {
  let fixedRows = 0
  fc.assert(
    fc.property(transaction, (drawn) => {
      const record = drawn as unknown as TransactionRecord
      const row = encodeAttribute({ kind: 't', value: record }).bytes
      if (row[0] === TRANSACTION_ROW_LAYOUT) fixedRows++
      const expected = printTransaction(decodeTransactionRowWithoutVolumes(row), { volumes: false })
      const printed = printTransactionRow(row)
      assert.equal(printed, expected)
      JSON.parse(printed as string)
      // A row written before the fixed layout (schema 4's generic packing) prints the same.
      assert.equal(printTransactionRow(packValue(record, ATTRIBUTE_ROW_LAYOUT, true)), expected)
    }),
    { numRuns: 500 },
  )
  assert.ok(fixedRows > 250, `the fixed layout was drawn ${fixedRows} times in 500`)
})

test('a row of another shape is left to the decoding printer: a missing field, a posting with other fields', () => {
  const base = { id: 1n, postings: [{ source: 'world', destination: 'a', amount: 1n, asset: 'USD' }], timestamp: 't', insertedAt: 'i', updatedAt: 'u', metadata: {}, reverted: false }
  assert.equal(typeof printTransactionRow(packValue(base, ATTRIBUTE_ROW_LAYOUT, true)), 'string')
  const { updatedAt: _updatedAt, ...withoutUpdate } = base
  assert.equal(printTransactionRow(packValue(withoutUpdate, ATTRIBUTE_ROW_LAYOUT, true)), undefined)
  assert.equal(printTransactionRow(packValue({ ...base, postings: [{ source: 'world', destination: 'a', amount: 1n, asset: 'USD', extra: 'x' }] }, ATTRIBUTE_ROW_LAYOUT, true)), undefined)
  assert.equal(printTransactionRow(packValue({ ...base, postings: [{ source: 'world', destination: 'a', amount: 1n, currency: 'USD' }] }, ATTRIBUTE_ROW_LAYOUT, true)), undefined)
})

test('ids and amounts at the fixed layout digit bounds print exactly (2^49, 2^53 + 1, 2^56 − 1, 2^64 − 1)', () => {
  for (const value of [0n, (1n << 49n) - 1n, 1n << 49n, (1n << 53n) + 1n, (1n << 56n) - 1n, (1n << 64n) - 1n]) {
    const record = { id: value, postings: [{ source: 'world', destination: 'a', amount: value, asset: 'USD' }], timestamp: 't', insertedAt: 't', updatedAt: 't', metadata: {}, reverted: false } as unknown as TransactionRecord
    const row = encodeAttribute({ kind: 't', value: record }).bytes
    assert.equal(row[0], TRANSACTION_ROW_LAYOUT)
    const printed = printTransactionRow(row) as string
    assert.equal(printed, printTransaction(decodeTransactionRowWithoutVolumes(row), { volumes: false }))
    assert.ok(printed.includes(`"id":${value},`) && printed.includes(`"amount":${value},`), printed)
  }
})
