import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { WriteBatch } from '../../src/fsm/index.ts'
import { InvariantViolation } from '../../src/domain/index.ts'
import type { RowWrite } from '../../src/store/layout.ts'
import { Zone, attributeRowKey, auditRowKey, logRowKey, metaKey, MetaKey, transactionByTimestampKey } from '../../src/store/layout.ts'

/**
 * The batch's new rows (`putNew`: a log, its index rows, an audit entry)
 * kept in a list beside the coalesced rows, against the batch it replaced,
 * where every row went through the map: the same final rows.
 */

/** The replaced batch: every row coalesced by its bytes, last write wins. */
function modelRows(operations: readonly Operation[]): RowWrite[] {
  const rows = new Map<string, RowWrite>()
  for (const operation of operations) {
    const value = operation.kind === 'del' ? null : operation.value
    rows.set(operation.key.toString('latin1'), { key: operation.key, value })
  }
  return sorted([...rows.values()])
}

type Operation = { kind: 'put' | 'putNew' | 'putLater'; key: Buffer; value: Buffer } | { kind: 'del'; key: Buffer }

function sorted(rows: readonly RowWrite[]): RowWrite[] {
  return [...rows].sort((a, b) => Buffer.compare(a.key, b.key))
}

test('new rows beside coalesced ones: the final rows of a batch that coalesced every row', () => {
  const coalesced = fc.oneof(
    fc.constantFrom('a', 'b', 'c').map((name) => attributeRowKey(`vmain\u0000users:${name}\u0000USD`)),
    fc.constantFrom(MetaKey.appliedIndex, MetaKey.auditHead).map((name) => metaKey(name)),
  )
  const value = fc.uint8Array({ maxLength: 4 }).map((bytes) => Buffer.from(bytes))
  const operation = fc.oneof(
    fc.record({ kind: fc.constantFrom('put' as const, 'putLater' as const), key: coalesced, value }),
    fc.record({ kind: fc.constant('del' as const), key: coalesced }),
    fc.record({ kind: fc.constant('putNew' as const), key: fc.constant(Buffer.alloc(0)), value }),
  )
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 40 }), (drawn) => {
      // New rows take ids never used before in the batch, in three zones.
      let id = 0n
      const operations: Operation[] = drawn.map((op) => {
        if (op.kind !== 'putNew') return op
        id++
        const key = id % 3n === 0n ? logRowKey('main', id) : id % 3n === 1n ? auditRowKey(id) : transactionByTimestampKey('main', '2026-12-07T00:00:00.000Z', id)
        return { ...op, key }
      })
      const batch = new WriteBatch()
      for (const op of operations) {
        if (op.kind === 'del') batch.del(op.key)
        else if (op.kind === 'putNew') batch.putNew(op.key, op.value)
        else if (op.kind === 'putLater') {
          const later = op.value
          batch.putLater(op.key, () => later)
        } else batch.put(op.key, op.value)
      }
      const rows = batch.rows()
      assert.equal(batch.size, rows.length)
      assert.deepEqual(sorted(rows), modelRows(operations))
    }),
    { numRuns: 300 },
  )
})

test('putNew refuses a zone whose rows are coalesced (attributes, meta, the cache mirror)', () => {
  const batch = new WriteBatch()
  for (const key of [attributeRowKey('lmain'), metaKey(MetaKey.appliedIndex), Buffer.of(Zone.cacheMirror, 0)]) {
    assert.throws(() => batch.putNew(key, Buffer.alloc(0)), InvariantViolation)
  }
  assert.equal(batch.size, 0)
})
