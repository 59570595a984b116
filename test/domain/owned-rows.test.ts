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
  {
    kind: 't',
    value: {
      id: 4n as TransactionId,
      postings: [{ source: 'world' as AccountAddress, destination: 'users:2' as AccountAddress, amount: 5n, asset: 'USD/2' as Asset }],
      timestamp: '2026-01-01T00:00:00.000Z',
      insertedAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
      metadata: { note: 'a note long enough to make the row longer than a heap typed array' },
      reverted: false,
    },
  },
]

test('attribute rows longer than 64 bytes own their memory (the cache keeps them without a copy), shorter ones are pool slices; every other pack is a slice of the pool again, also after an encoding that threw', () => {
  const lengths: number[] = []
  for (const value of values) {
    const row = encodeAttribute(value).bytes
    lengths.push(row.length)
    assert.equal(ownsItsMemory(row), row.length > 64, `a ${value.kind} row of ${row.length} bytes`)
    // Another pack after it is pooled: the flag was turned off.
    assert.ok(!ownsItsMemory(packValue({ a: 'x'.repeat(100) }, LAYOUT, true)), `a pack after a ${value.kind} row is pooled`)
  }
  assert.ok(lengths.some((length) => length > 64) && lengths.some((length) => length <= 64), `rows of both sizes (${lengths.join(', ')} bytes)`)
  const tooLarge: AttributeValue = { kind: 'v', value: { input: 2n ** 300n, output: 0n } }
  assert.throws(() => encodeAttribute(tooLarge), InvariantViolation)
  assert.ok(!ownsItsMemory(packValue({ a: 'x'.repeat(100) }, LAYOUT, true)), 'a pack after a refused row is pooled')
})
