import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  ATTRIBUTE_ROW_LAYOUT,
  InvariantViolation,
  PackedTag,
  TRANSACTION_ROW_LAYOUT,
  VOLUMES_ROW_LAYOUT,
  decodeAttribute,
  decodeRowValue,
  decodeTransactionRowWithoutVolumes,
  encodeAttribute,
  packValue,
} from '../../src/domain/index.ts'
import type { AttributeValue, TransactionRecord, VolumesMap } from '../../src/domain/index.ts'

/**
 * The fixed layouts of the volumes and transaction rows (storage schema 5,
 * docs/adr/0012) against the generic packing they replace: every record of
 * their shape decodes to the very record its generic row decodes to — the
 * same fields in the same order at every depth, which matters where a
 * decoded record is packed again in its own order (a revert's log row) —
 * and generic rows (seeds in a WAL written before) still decode. One value,
 * one form: equal values give equal bytes, whatever order their maps were
 * built in. A reader refuses a row of another layout, kind or length.
 */

const amount = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 53n + 3n }), fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }), fc.constantFrom(0n, 1n, 127n, 128n, 2n ** 49n, 2n ** 52n, 2n ** 52n + 1n, 2n ** 256n - 1n))
const name = fc.oneof(
  fc.constantFrom('world', 'users:1', 'users:10', '10', '9', '__proto__', 'constructor', 'input', 'USD', 'USD/2', 'EUR', 'é', 'a\u0000b', 'amount', 'id', '2026-12-07T03:45:00.123Z'),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 70 }),
)
const date = fc.oneof(
  fc.integer({ min: 0, max: 253402300799999 }).map((ms) => new Date(ms).toISOString()),
  fc.constantFrom('2026-12-07T03:45:00.123456Z', '2026-12-07T03:45:00Z', '2026-12-07T03:45:00.123456789Z'),
)

/** A map with no prototype holding `entries` in the order given. */
function keyed<V>(entries: readonly (readonly [string, V])[]): Record<string, V> {
  const map = Object.create(null) as Record<string, V>
  for (const [key, value] of entries) map[key] = value
  return map
}

const volumes = fc.tuple(amount, amount).map(([input, output]) => ({ input, output, balance: input - output }))
/** Pre and post commit volumes over the same pairs, each map built in the order drawn (not sorted). */
const commitVolumes = fc
  .uniqueArray(fc.tuple(name, fc.uniqueArray(fc.tuple(name, volumes, volumes), { minLength: 1, maxLength: 4, selector: ([asset]) => asset })), { maxLength: 6, selector: ([account]) => account })
  .map((accounts) => ({
    pre: keyed(accounts.map(([account, assets]) => [account, keyed(assets.map(([asset, before]) => [asset, before] as const))] as const)),
    post: keyed(accounts.map(([account, assets]) => [account, keyed(assets.map(([asset, , after]) => [asset, after] as const))] as const)),
  }))
const metadata = fc.uniqueArray(fc.tuple(name, fc.string({ maxLength: 8 })), { maxLength: 5, selector: ([key]) => key }).map((entries) => keyed(entries))

/** Records of the fixed layout's shape: dates often equal (the common case, written once), optional fields drawn. */
const record: fc.Arbitrary<TransactionRecord> = fc
  .record({
    id: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    postings: fc.array(fc.record({ source: name, destination: name, amount, asset: name }), { maxLength: 5 }),
    timestamp: date,
    insertedAt: fc.option(date),
    updatedAt: fc.option(date),
    metadata,
    reverted: fc.boolean(),
    reference: fc.option(name),
    revertedAt: fc.option(date),
    template: fc.option(name),
    volumes: fc.option(commitVolumes),
  })
  .map((drawn) => {
    const insertedAt = drawn.insertedAt ?? drawn.timestamp
    const value: Record<string, unknown> = { id: drawn.id, postings: drawn.postings, timestamp: drawn.timestamp, insertedAt, updatedAt: drawn.updatedAt ?? insertedAt, metadata: drawn.metadata, reverted: drawn.reverted }
    if (drawn.reference !== null) value.reference = drawn.reference
    if (drawn.revertedAt !== null) value.revertedAt = drawn.revertedAt
    if (drawn.template !== null) value.template = drawn.template
    if (drawn.volumes !== null) {
      value.preCommitVolumes = drawn.volumes.pre
      value.postCommitVolumes = drawn.volumes.post
    }
    return value as unknown as TransactionRecord
  })

/** Equal values with the same own keys in the same order at every depth. */
function assertSameShape(actual: unknown, expected: unknown, path = '$'): void {
  assert.equal(typeof actual, typeof expected, path)
  if (typeof actual !== 'object' || actual === null) {
    assert.equal(actual, expected, path)
    return
  }
  assert.equal(Array.isArray(actual), Array.isArray(expected), path)
  assert.equal(Object.getPrototypeOf(actual), Object.getPrototypeOf(expected), `${path}: prototype`)
  const keys = Object.keys(actual)
  assert.deepEqual(keys, Object.keys(expected as object), `${path}: keys in order`)
  for (const key of keys) assertSameShape((actual as Record<string, unknown>)[key], (expected as Record<string, unknown>)[key], `${path}.${key}`)
}

const generic = (value: AttributeValue) => packValue(value.value, ATTRIBUTE_ROW_LAYOUT, true)

test('a transaction row in the fixed layout decodes to what its generic row decodes to, field order included, and packs again to the same bytes (property)', () => {
  fc.assert(
    fc.property(record, (transaction) => {
      const value: AttributeValue = { kind: 't', value: transaction }
      const row = encodeAttribute(value).bytes
      assert.equal(row[0], TRANSACTION_ROW_LAYOUT)
      const decoded = decodeRowValue('t', row)
      assertSameShape(decoded, decodeRowValue('t', generic(value)))
      assert.deepEqual(encodeAttribute({ kind: 't', value: decoded }).bytes, row, 'a fixed point')
      const { preCommitVolumes: _pre, postCommitVolumes: _post, ...rest } = decoded
      assertSameShape(decodeTransactionRowWithoutVolumes(row), rest)
      assert.ok(row.length <= generic(value).length, 'never longer than the generic row')
    }),
    { numRuns: 1500 },
  )
})

test('one value, one form: maps built in any order give the same transaction row (property)', () => {
  const reversed = <V>(map: Record<string, V>) => keyed(Object.keys(map).reverse().map((key) => [key, map[key] as V] as const))
  fc.assert(
    fc.property(record, (transaction) => {
      const shuffled = { ...transaction, metadata: reversed(transaction.metadata) } as Record<string, unknown>
      if (transaction.preCommitVolumes !== undefined && transaction.postCommitVolumes !== undefined) {
        const flip = (volumesByAccount: VolumesMap) => keyed(Object.keys(volumesByAccount).reverse().map((account) => [account, reversed(volumesByAccount[account] as Record<string, { input: bigint; output: bigint; balance: bigint }>)] as const))
        shuffled.preCommitVolumes = flip(transaction.preCommitVolumes as VolumesMap)
        shuffled.postCommitVolumes = flip(transaction.postCommitVolumes as VolumesMap)
      }
      assert.deepEqual(encodeAttribute({ kind: 't', value: shuffled as unknown as TransactionRecord }).bytes, encodeAttribute({ kind: 't', value: transaction }).bytes)
    }),
    { numRuns: 500 },
  )
})

test('a volumes row in the fixed layout decodes to what its generic row decodes to; both forms read (property)', () => {
  fc.assert(
    fc.property(amount, amount, (input, output) => {
      const value: AttributeValue = { kind: 'v', value: { input, output } }
      const row = encodeAttribute(value).bytes
      assert.equal(row[0], VOLUMES_ROW_LAYOUT)
      assertSameShape(decodeRowValue('v', row), { input, output })
      assertSameShape(decodeRowValue('v', generic(value)), { input, output })
    }),
    { numRuns: 3000 },
  )
})

test('a generic transaction row (a seed written before schema 5) still decodes, as before (property)', () => {
  fc.assert(
    fc.property(record, (transaction) => {
      const value: AttributeValue = { kind: 't', value: transaction }
      assertSameShape(decodeRowValue('t', generic(value)), decodeRowValue('t', encodeAttribute(value).bytes))
    }),
    { numRuns: 300 },
  )
})

test('a reader refuses a fixed row of an unknown layout byte, of another kind, cut short, with bytes left over, or not in its one form', () => {
  const transaction = {
    id: 7n,
    postings: [{ source: 'world', destination: 'users:1', amount: 10n, asset: 'USD' }],
    timestamp: '2026-12-07T03:45:00.000Z',
    insertedAt: '2026-12-07T03:45:00.000Z',
    updatedAt: '2026-12-07T03:45:00.000Z',
    metadata: keyed([]),
    reverted: false,
    preCommitVolumes: keyed([['users:1', keyed([['USD', { input: 0n, output: 0n, balance: 0n }]])], ['world', keyed([['USD', { input: 0n, output: 0n, balance: 0n }]])]]),
    postCommitVolumes: keyed([['users:1', keyed([['USD', { input: 10n, output: 0n, balance: 10n }]])], ['world', keyed([['USD', { input: 0n, output: 10n, balance: -10n }]])]]),
  } as unknown as TransactionRecord
  const row = encodeAttribute({ kind: 't', value: transaction }).bytes
  const volumesRow = encodeAttribute({ kind: 'v', value: { input: 300n, output: 5n } }).bytes
  const refused = (kind: 't' | 'v', bytes: Buffer, what: string) => assert.throws(() => decodeAttribute(kind, bytes), InvariantViolation, what)
  // The next layout bytes after the fixed ones name nothing yet.
  for (const layout of [0x00, 0x09, 0x0a, 0x7b, 0xff]) {
    refused('t', Buffer.concat([Buffer.of(layout), row.subarray(1)]), `transaction row behind layout ${layout}`)
    refused('v', Buffer.concat([Buffer.of(layout), volumesRow.subarray(1)]), `volumes row behind layout ${layout}`)
  }
  refused('v', row, 'a transaction row read as volumes')
  refused('t', volumesRow, 'a volumes row read as a transaction')
  assert.throws(() => decodeAttribute('a', row), InvariantViolation, 'a transaction row read as an account')
  for (let length = 1; length < row.length; length++) refused('t', row.subarray(0, length), `cut at ${length}`)
  for (let length = 1; length < volumesRow.length; length++) refused('v', volumesRow.subarray(0, length), `cut at ${length}`)
  refused('t', Buffer.concat([row, Buffer.of(0)]), 'a byte left over')
  refused('v', Buffer.concat([volumesRow, Buffer.of(0)]), 'a byte left over')
  // A flag past the seven known ones, beside the row's own (which would otherwise decode): 16 | 128 = 0x90 0x01.
  assert.equal(row[1], 16, 'the row has commit volumes and nothing else flagged')
  refused('t', Buffer.concat([Buffer.of(TRANSACTION_ROW_LAYOUT, 0x90, 0x01), row.subarray(2)]), 'unknown flags')
  // 300 = 0xac 0x02; written as 0xac 0x82 0x00 it is the same number in a longer form.
  assert.deepEqual([...volumesRow.subarray(1, 3)], [0xac, 0x02])
  refused('v', Buffer.concat([Buffer.of(VOLUMES_ROW_LAYOUT, 0xac, 0x82, 0x00), volumesRow.subarray(3)]), 'a number not in its shortest form')
  // A name reference past the next position: the posting's source (right after the empty metadata and the posting count).
  const postingsAt = row.indexOf(Buffer.of(PackedTag.object, 0, 1, 0))
  assert.ok(postingsAt > 0)
  const farName = Buffer.from(row)
  farName[postingsAt + 3] = 5
  refused('t', farName, 'a name position past the next one')
  // The commit volumes' accounts must ascend: swap the two (each: its name, one asset, the asset's name, 4 amounts, all one byte here).
  const accountsAt = row.length - 14
  assert.equal(row[accountsAt - 1], 2, 'two accounts')
  const swapped = Buffer.concat([row.subarray(0, accountsAt), row.subarray(accountsAt + 7), row.subarray(accountsAt, accountsAt + 7)])
  refused('t', swapped, 'accounts out of order')
  assert.deepEqual(decodeRowValue('t', row), decodeRowValue('t', generic({ kind: 't', value: transaction })))
})

test('a bare unsigned integer: 2^259 − 1 is the largest a row holds, read back exactly; past it the writer refuses', () => {
  const largest = 2n ** 259n - 1n
  const row = encodeAttribute({ kind: 'v', value: { input: largest, output: 0n } }).bytes
  assert.equal(row.length, 1 + 37 + 1)
  assert.deepEqual(decodeRowValue('v', row), { input: largest, output: 0n })
  assert.throws(() => encodeAttribute({ kind: 'v', value: { input: largest + 1n, output: 0n } }), InvariantViolation)
  // 38 groups: one more than a reader takes.
  const long = Buffer.concat([Buffer.of(VOLUMES_ROW_LAYOUT), Buffer.alloc(37, 0xff), Buffer.of(0x01, 0x00)])
  assert.throws(() => decodeRowValue('v', long), InvariantViolation)
})
