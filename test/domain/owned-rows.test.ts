import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvariantViolation, encodeAttribute, packValue } from '../../src/domain/index.ts'
import type { AccountAddress, Asset, AttributeValue, TransactionId } from '../../src/domain/index.ts'

/** Whether `row` owns its memory exactly (the cache keeps such a row as it is, without a copy). */
function ownsItsMemory(row: Buffer): boolean {
  return row.byteOffset === 0 && row.buffer.byteLength === row.length
}

const LAYOUT = 0x01
const values: AttributeValue[] = [
  { kind: 'v', value: { input: 7n, output: 2n } },
  {
    kind: 't',
    value: {
      id: 3n as TransactionId,
      postings: [{ source: 'world' as AccountAddress, destination: 'users:1' as AccountAddress, amount: 5n, asset: 'USD/2' as Asset }],
      timestamp: '2026-01-01T00:00:00.000Z',
      insertedAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
      metadata: {},
      reverted: false,
    },
  },
  { kind: 'r', value: { transactionId: 3n as TransactionId } },
]

test('attribute rows own their memory (the cache keeps them without a copy); every other pack is a slice of the pool again, also after an encoding that threw', () => {
  for (const value of values) {
    const row = encodeAttribute(value).bytes
    assert.ok(ownsItsMemory(row), `a ${value.kind} row owns its memory`)
    // Another pack after it is pooled: the flag was turned off.
    assert.ok(!ownsItsMemory(packValue({ a: 1 }, LAYOUT, true)), `a pack after a ${value.kind} row is pooled`)
  }
  const tooLarge: AttributeValue = { kind: 'v', value: { input: 2n ** 300n, output: 0n } }
  assert.throws(() => encodeAttribute(tooLarge), InvariantViolation)
  assert.ok(!ownsItsMemory(packValue({ a: 1 }, LAYOUT, true)), 'a pack after a refused row is pooled')
})
