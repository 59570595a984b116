import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Zone, accountTransactionKey, auditRowKey, decodeIndexRow, decodeLogRow, encodeIndexRow, encodeLogRow, fixedWidthInstant, logRowKey, prefixEnd, transactionByTimestampKey, u64be } from '../../src/store/index.ts'
import { segmentRowKey } from '../../src/cache/index.ts'
import { stringifyJson } from '../../src/domain/index.ts'

test('fixed-width instants order as bytes like the instants they name, whatever their precision (property)', () => {
  const instant = fc.record({ seconds: fc.integer({ min: 0, max: 253402300799 }), nanos: fc.integer({ min: 0, max: 999_999_999 }), digits: fc.integer({ min: 0, max: 9 }) })
  const text = ({ seconds, nanos, digits }: { seconds: number; nanos: number; digits: number }) => {
    const base = new Date(seconds * 1000).toISOString().slice(0, 19)
    const fraction = String(nanos).padStart(9, '0').slice(0, digits)
    return { text: `${base}${digits === 0 ? '' : `.${fraction}`}Z`, value: BigInt(seconds) * 1_000_000_000n + BigInt(fraction.padEnd(9, '0')) }
  }
  fc.assert(
    fc.property(instant, instant, (a, b) => {
      const x = text(a)
      const y = text(b)
      const byBytes = Math.sign(Buffer.compare(transactionByTimestampKey('l', x.text, 1n), transactionByTimestampKey('l', y.text, 1n)))
      const byValue = x.value < y.value ? -1 : x.value > y.value ? 1 : 0
      assert.equal(byBytes, byValue, `${x.text} vs ${y.text}`)
    }),
  )
  assert.equal(fixedWidthInstant('2026-01-01T00:00:00.123Z'), '2026-01-01T00:00:00.123000000Z')
  assert.throws(() => fixedWidthInstant('2026-01-01'), /RFC 3339/)
})

test('prefixEnd: the first key after a prefix, none after 0xff…', () => {
  assert.deepEqual(prefixEnd(Buffer.of(1, 2, 0xff)), Buffer.of(1, 3))
  assert.equal(prefixEnd(Buffer.of(0xff, 0xff)), undefined)
})

test('a v2 log row keeps the log in its own field order: its JSON text is the one v2 prints (export, views, sinks)', () => {
  const log = {
    id: 7n,
    type: 'NEW_TRANSACTION',
    data: {
      transaction: { postings: [{ source: 'world', destination: 'users:1', amount: 10n ** 20n, asset: 'USD/2' }], metadata: { z: '1', a: '2' }, timestamp: '2026-12-06T22:00:00.000000Z', id: 3n, reverted: false },
      accountMetadata: {},
    },
    date: '2026-12-06T22:00:00.000000Z',
    idempotencyKey: 'k',
    hash: 'q0J5Yg8GZ1oQcf1mB2b0b5y6oH3b9b0oLk2m0p2n8wA=',
  }
  const row = encodeLogRow(log)
  assert.equal(row[0], 0x02, 'the log layout byte')
  assert.equal(stringifyJson(decodeLogRow(row)), stringifyJson(log))
})

test('an index row decodes to the value it was written from; another layout is refused', () => {
  const moved = { input: 5n, output: 10n ** 30n }
  assert.deepStrictEqual(decodeIndexRow(encodeIndexRow(moved)), moved)
  assert.throws(() => decodeLogRow(encodeIndexRow(moved)))
})

test('row keys spell their texts as UTF-8 and end in the id as writeBigUInt64BE writes it, past 2^32 and 2^53 too, and refuse what it refuses (property)', () => {
  const id = fc.oneof(
    fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    fc.bigInt({ min: 0n, max: 2n ** 33n }),
    fc.constantFrom(0n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 1n),
  )
  // Any text (the 'binary' unit draws astral characters mostly), and the one- to four-byte UTF-8 forms mixed.
  const name = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 6 }),
    fc.array(fc.constantFrom('a', 'users:', '\u007f', '\u0080', 'é', 'ÿ', 'Ω', '\u07ff', '\u0800', '€', '\uffff', '\u{1F600}', '\ud800'), { maxLength: 5 }).map((parts) => parts.join('')),
  )
  const u64 = (value: bigint): Buffer => {
    const bytes = Buffer.alloc(8)
    bytes.writeBigUInt64BE(value)
    return bytes
  }
  fc.assert(
    fc.property(name, name, id, (ledger, account, value) => {
      assert.deepEqual(logRowKey(ledger, value), Buffer.concat([Buffer.of(Zone.logs), Buffer.from(ledger, 'utf8'), Buffer.of(0), u64(value)]))
      assert.deepEqual(accountTransactionKey(ledger, account, value), Buffer.concat([Buffer.of(Zone.indexes, 0x41), Buffer.from(`${ledger}\u0000${account}\u0000`, 'utf8'), u64(value)]))
      assert.deepEqual(transactionByTimestampKey(ledger, '2026-12-07T10:00:00.123Z', value).subarray(-8), u64(value))
      assert.deepEqual(auditRowKey(value), Buffer.concat([Buffer.of(Zone.audit), u64(value)]))
      assert.deepEqual(u64be(value), u64(value))
      if (value <= BigInt(Number.MAX_SAFE_INTEGER)) {
        assert.deepEqual(u64be(Number(value)), u64(value))
        assert.deepEqual(segmentRowKey(3, Number(value)).subarray(2), u64(value))
      }
    }),
    { numRuns: 1000 },
  )
  for (const refused of [-1n, 2n ** 64n]) {
    assert.throws(() => logRowKey('l', refused), RangeError)
    assert.throws(() => accountTransactionKey('l', 'a', refused), RangeError)
  }
})
