import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { ATTRIBUTE_ROW_LAYOUT, InvariantViolation, PackedShape, packedKey, decodeRowValue, decodeTransactionRowWithoutVolumes, encodeAttribute, packValue } from '../../src/domain/index.ts'
import type { AttributeValue, TransactionRecord } from '../../src/domain/index.ts'
import { INSTANT_KEY_BYTES, IndexKind, RowLayout, Zone, accountTransactionKey, attributeRowKey, decodeIndexRow, encodeAccountMovesRow, encodeIndexRow, fixedWidthInstant, readInstantKey, transactionByTimestampKey, u64be } from '../../src/store/index.ts'
import { WriteBatch } from '../../src/fsm/index.ts'
import { writeTransactionIndexes } from '../../src/fsm/indexes.ts'
import type { LedgerLog } from '../../src/orders/index.ts'
import { transactionRecords } from '../support/arbitraries.ts'

/**
 * The hot rows packed by their known shape (`PackedShape`) against the
 * generic packer they stand in for: the same bytes for every value, so
 * stores stay byte-identical whichever path wrote a row (and with stores
 * written before the shapes existed). Keys built in one buffer against the
 * concatenations they replace.
 */

const amount = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 53n + 3n }), fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }), fc.constantFrom(0n, 1n, 2n ** 52n, 2n ** 52n + 1n))
const name = fc.oneof(
  fc.constantFrom('world', 'users:1', '__proto__', 'constructor', 'input', 'USD', 'USD/2', 'EUR', 'é', 'a\u0000b', 'amount', 'id'),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 70 }),
)
const date = fc.oneof(
  fc.integer({ min: 0, max: 253402300799999 }).map((ms) => new Date(ms).toISOString()),
  fc.constantFrom('2026-12-07T03:45:00.123456Z', '2026-12-07T03:45:00Z', '2026-12-07T03:45:00.123456789Z'),
)
/** A map with no prototype whose keys are `names` (any string, `__proto__` included). */
function keyed<V>(entries: readonly (readonly [string, V])[]): Record<string, V> {
  const map = Object.create(null) as Record<string, V>
  for (const [key, value] of entries) map[key] = value
  return map
}
const commitVolumes = fc
  .uniqueArray(
    fc.tuple(name, fc.uniqueArray(fc.tuple(name, amount, amount), { minLength: 1, maxLength: 20, selector: ([asset]) => asset })),
    { maxLength: 20, selector: ([account]) => account },
  )
  .map((accounts) => keyed(accounts.map(([account, assets]) => [account, keyed(assets.map(([asset, input, output]) => [asset, { input, output, balance: input - output }] as const))] as const)))
const metadata = fc.uniqueArray(fc.tuple(name, fc.string({ maxLength: 8 })), { maxLength: 5, selector: ([key]) => key }).map((entries) => keyed(entries))
const transaction = transactionRecords({ text: name, date, amount, metadata, volumes: commitVolumes })

const generic = (value: AttributeValue) => packValue(value.value, ATTRIBUTE_ROW_LAYOUT, true)

test('a transaction row the fixed layout does not hold is packed by its shape: the generic packing, byte for byte (property)', () => {
  // Most of these records have pre and post commit volumes over different pairs: not the fixed layout's (docs/adr/0012).
  let generics = 0
  fc.assert(
    fc.property(transaction, (record) => {
      const value: AttributeValue = { kind: 't', value: record }
      const bytes = encodeAttribute(value).bytes
      if (bytes[0] !== ATTRIBUTE_ROW_LAYOUT) return
      generics++
      assert.deepEqual(bytes, generic(value))
    }),
    { numRuns: 1000 },
  )
  assert.ok(generics > 100, `${generics} of 1000 records packed generically`)
})

test('a transaction row decoded without its commit volumes is the whole decode less those two fields (property)', () => {
  fc.assert(
    fc.property(transaction, (record) => {
      const row = encodeAttribute({ kind: 't', value: record }).bytes
      const { preCommitVolumes: _pre, postCommitVolumes: _post, ...rest } = decodeRowValue('t', row)
      assert.deepStrictEqual(decodeTransactionRowWithoutVolumes(row), rest)
    }),
    { numRuns: 1000 },
  )
})

test('a transaction of a shape the fixed layout does not hold falls back to the generic packing: same bytes still', () => {
  const base = {
    id: 7n,
    postings: [{ source: 'world', destination: 'users:1', amount: 10n, asset: 'USD' }],
    timestamp: '2026-12-07T03:45:00.000Z',
    insertedAt: '2026-12-07T03:45:00.000Z',
    updatedAt: '2026-12-07T03:45:00.000Z',
    metadata: keyed([]),
    reverted: false,
  } as unknown as TransactionRecord
  const shapes: unknown[] = [
    { ...base, extra: 'a field the shape does not know' },
    { ...base, postings: [{ ...base.postings[0], note: 'extra' }] },
    { ...base, postings: [{ ...base.postings[0], amount: 10 }] },
    { ...base, preCommitVolumes: keyed([['users:1', keyed([['USD', { input: 1n, output: 0n }]])]]) },
    { ...base, postCommitVolumes: keyed([['users:1', keyed([['USD', { input: 1n, output: 0n, balance: 1n, more: 1n }]])]]) },
    // Both commit volumes, but not over the same pairs, or with a balance that is not input − output, or a negative amount.
    { ...base, preCommitVolumes: keyed([['users:1', keyed([['USD', { input: 1n, output: 0n, balance: 1n }]])]]), postCommitVolumes: keyed([['users:2', keyed([['USD', { input: 1n, output: 0n, balance: 1n }]])]]) },
    { ...base, preCommitVolumes: keyed([['users:1', keyed([['USD', { input: 1n, output: 0n, balance: 1n }]])]]), postCommitVolumes: keyed([['users:1', keyed([['EUR', { input: 1n, output: 0n, balance: 1n }]])]]) },
    { ...base, preCommitVolumes: keyed([['users:1', keyed([['USD', { input: 1n, output: 0n, balance: 2n }]])]]), postCommitVolumes: keyed([['users:1', keyed([['USD', { input: 1n, output: 0n, balance: 1n }]])]]) },
    { ...base, preCommitVolumes: keyed([['users:1', keyed([['USD', { input: -1n, output: 0n, balance: -1n }]])]]), postCommitVolumes: keyed([['users:1', keyed([['USD', { input: 1n, output: 0n, balance: 1n }]])]]) },
    { ...base, postings: [{ ...base.postings[0], amount: -10n }] },
    { ...base, id: 2n ** 64n },
    { ...base, reverted: 'no' },
    { ...base, reference: 7 },
  ]
  for (const shape of shapes) {
    const value = { kind: 't', value: shape } as AttributeValue
    assert.deepEqual(encodeAttribute(value).bytes, generic(value))
  }
})

test('a by-account index row in its fixed layout decodes to what encodeIndexRow of the object decodes to, and refuses another layout or length (property)', () => {
  const moves = fc.uniqueArray(fc.tuple(name, amount, amount), { minLength: 1, maxLength: 20, selector: ([asset]) => asset })
  fc.assert(
    fc.property(date, date, moves, (insertedAt, timestamp, entries) => {
      const volumes: Record<string, unknown> = {}
      for (const [asset, input, output] of entries) Object.defineProperty(volumes, asset, { value: { input, output }, enumerable: true, writable: true, configurable: true })
      const generic = encodeIndexRow({ insertedAt, timestamp, volumes })
      const shaped = encodeAccountMovesRow(insertedAt, timestamp, entries.map(([asset, input, output]) => ({ asset, input, output })))
      assert.equal(shaped[0], RowLayout.accountMoves)
      const decoded = decodeIndexRow(shaped)
      assert.deepStrictEqual(decoded, decodeIndexRow(generic))
      // Field order too, at every depth (sorted assets, as the generic row's).
      assert.equal(JSON.stringify(decoded, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)), JSON.stringify(decodeIndexRow(generic), (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)))
      assert.ok(shaped.length < generic.length)
      assert.throws(() => decodeIndexRow(Buffer.concat([shaped, Buffer.of(0)])), InvariantViolation)
      assert.throws(() => decodeIndexRow(shaped.subarray(0, shaped.length - 1)), InvariantViolation)
      assert.throws(() => decodeIndexRow(Buffer.concat([Buffer.of(0x0a), shaped.subarray(1)])), InvariantViolation)
    }),
    { numRuns: 1000 },
  )
})

test('a field name packed ahead is written as the writer writes the name itself (property)', () => {
  fc.assert(
    fc.property(fc.oneof(name, date), (field) => {
      // Packed ahead, as the shape writers do at load: packing is never nested.
      const known = packedKey(field)
      PackedShape.begin(0)
      PackedShape.object(1)
      PackedShape.key(field)
      PackedShape.boolean(true)
      const expected = PackedShape.end()
      PackedShape.begin(0)
      PackedShape.object(1)
      PackedShape.knownKey(known)
      PackedShape.boolean(true)
      assert.deepEqual(PackedShape.end(), expected)
    }),
    { numRuns: 2000 },
  )
})

test('keys built in one buffer are the concatenations they replace (property)', () => {
  fc.assert(
    fc.property(name, name, fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), date, (ledger, account, id, timestamp) => {
      assert.deepEqual(attributeRowKey(account), Buffer.concat([Buffer.of(Zone.attributes), Buffer.from(account, 'utf8')]))
      assert.deepEqual(
        accountTransactionKey(ledger, account, id),
        Buffer.concat([Buffer.of(Zone.indexes, IndexKind.accountTransactions), Buffer.from(`${ledger}\u0000${account}\u0000`, 'utf8'), u64be(id)]),
      )
      const byTimestamp = transactionByTimestampKey(ledger, timestamp, id)
      const prefix = Buffer.concat([Buffer.of(Zone.indexes, IndexKind.transactionsByTimestamp), Buffer.from(`${ledger}\u0000`, 'utf8')])
      assert.deepEqual(byTimestamp.subarray(0, prefix.length), prefix)
      assert.deepEqual(byTimestamp.subarray(prefix.length + INSTANT_KEY_BYTES), u64be(id))
      assert.equal(readInstantKey(byTimestamp, prefix.length), fixedWidthInstant(timestamp))
    }),
    { numRuns: 1000 },
  )
})

test('by-timestamp keys sort as the fixed-width texts they replace, any digits in any field (property)', () => {
  // Any digit string of the text's shape (impossible dates included: the key keeps the text's order, not the calendar's).
  const digits = (count: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: count, maxLength: count }).map((each) => each.join(''))
  const fixedWidth = fc
    .tuple(digits(4), digits(2), digits(2), digits(2), digits(2), digits(2), digits(9))
    .map(([year, month, day, hour, minute, second, fraction]) => `${year}-${month}-${day}T${hour}:${minute}:${second}.${fraction}Z`)
  const text = fc.oneof(fixedWidth, date.map(fixedWidthInstant))
  fc.assert(
    fc.property(text, text, fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (left, right, leftId, rightId) => {
      const leftKey = transactionByTimestampKey('l', left, leftId)
      const rightKey = transactionByTimestampKey('l', right, rightId)
      const textOrder = Buffer.compare(Buffer.concat([Buffer.from(`${left}\u0000`), u64be(leftId)]), Buffer.concat([Buffer.from(`${right}\u0000`), u64be(rightId)]))
      assert.equal(Buffer.compare(leftKey, rightKey), textOrder)
      assert.equal(readInstantKey(leftKey, 4), left) // after [zone]['T'] 'l' \0
    }),
    { numRuns: 3000 },
  )
})

test('fixed-width instants: the millisecond shortcut gives what the full form gives, and refuses what it refuses (property)', () => {
  const reference = (text: string): string | undefined => {
    const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(text)
    return match === null ? undefined : `${match[1]}.${(match[2] ?? '').padEnd(9, '0')}Z`
  }
  // 24 characters drawn from what a date is made of, so that most are near-dates.
  const nearDate = fc.array(fc.constantFrom('0', '1', '9', '-', ':', 'T', '.', 'Z', 'a', '٣'), { minLength: 24, maxLength: 24 }).map((chars) => chars.join(''))
  const mutated = fc.tuple(date, fc.nat(23), fc.constantFrom('x', '-', '5', 'Z', '.')).map(([text, at, char]) => `${text.slice(0, at)}${char}${text.slice(at + 1)}`)
  fc.assert(
    fc.property(fc.oneof(date, nearDate, mutated), (text) => {
      const expected = reference(text)
      if (expected === undefined) assert.throws(() => fixedWidthInstant(text), /RFC 3339/)
      else assert.equal(fixedWidthInstant(text), expected)
    }),
    { numRuns: 3000 },
  )
})

test('fixed-width instants asked in any sequence, repeats and refusals included, are each the full form\'s answer (property)', () => {
  const reference = (text: string): string | undefined => {
    const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(text)
    return match === null ? undefined : `${match[1]}.${(match[2] ?? '').padEnd(9, '0')}Z`
  }
  // A few texts asked over and over, in any order: the kept last answer must follow the question.
  const pool = fc.uniqueArray(fc.oneof(date, fc.constantFrom('', 'not a date', '2026-12-07T03:45:00.12Z')), { minLength: 1, maxLength: 4 })
  fc.assert(
    fc.property(pool.chain((texts) => fc.array(fc.constantFrom(...texts), { minLength: 1, maxLength: 12 })), (sequence) => {
      for (const text of sequence) {
        const expected = reference(text)
        if (expected === undefined) assert.throws(() => fixedWidthInstant(text), /RFC 3339/)
        else assert.equal(fixedWidthInstant(text), expected)
      }
    }),
    { numRuns: 2000 },
  )
})

test('a transaction\'s index rows are those of the nested-map derivation they replace (property)', () => {
  // The derivation before the shapes: per account (first seen), per asset, summed, with nested maps.
  const reference = (ledger: string, record: { id: bigint; insertedAt: string; timestamp: string; postings: readonly { source: string; destination: string; asset: string; amount: bigint }[] }) => {
    const batch = new WriteBatch()
    const deltas = new Map<string, Map<string, { input: bigint; output: bigint }>>()
    const delta = (account: string, asset: string) => {
      let byAsset = deltas.get(account)
      if (byAsset === undefined) deltas.set(account, (byAsset = new Map()))
      let entry = byAsset.get(asset)
      if (entry === undefined) byAsset.set(asset, (entry = { input: 0n, output: 0n }))
      return entry
    }
    for (const p of record.postings) {
      delta(p.source, p.asset).output += p.amount
      delta(p.destination, p.asset).input += p.amount
    }
    for (const [account, byAsset] of deltas) {
      // The row itself through its one encoder (its layout is held to the generic row's decode above).
      batch.put(accountTransactionKey(ledger, account, record.id), encodeAccountMovesRow(record.insertedAt, record.timestamp, [...byAsset].map(([asset, moved]) => ({ asset, ...moved }))))
    }
    batch.put(transactionByTimestampKey(ledger, record.timestamp, record.id), Buffer.alloc(0))
    return batch.rows()
  }
  const few = fc.constantFrom('a', 'b', '__proto__', 'world')
  const postings = fc.oneof(
    fc.array(fc.record({ source: few, destination: few, asset: fc.constantFrom('USD', 'EUR', 'USD/2'), amount }), { minLength: 1, maxLength: 12 }),
    // Past the short-list bound: the pair map.
    fc.array(fc.record({ source: few, destination: few, asset: fc.constantFrom('USD', 'EUR', 'USD/2', 'JPY', 'GBP'), amount }), { minLength: 17, maxLength: 60 }),
  )
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 2n ** 40n }), date, date, postings, (id, insertedAt, timestamp, moves) => {
      const record = { id, insertedAt, timestamp, postings: moves }
      const log = { type: 'NEW_TRANSACTION', data: { transaction: record } } as unknown as LedgerLog
      const batch = new WriteBatch()
      writeTransactionIndexes('ledger', log, batch)
      assert.deepEqual(batch.rows(), reference('ledger', record))
    }),
    { numRuns: 500 },
  )
})

