import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { VolumesMap, Json, TransactionRecord } from '../../src/domain/index.ts'
import { canonicalMetadata, emptyKeyed, keyedChild, printTransaction, stringJson, stringifyJson, unpackValue, packValue } from '../../src/domain/index.ts'
import { transactionView } from '../../src/orders/index.ts'
import { transactionRecords } from '../support/arbitraries.ts'

/**
 * The field-by-field transaction printer against the printer it replaced:
 * the generic `stringifyJson` of the view object `transactionView` builds.
 * Strings reach every escape JSON has (quotes, backslashes, control
 * characters, U+2028, non-ASCII, lone surrogates); metadata keys include
 * integer-like ones (which JavaScript objects order first) and `__proto__`.
 */

const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('', 'world', 'users:1', 'USD/2', '"', '\\', '\n', '\u0000', '\u007f', '\u2028', 'é', '\ud800', 'a\udfffb', '😀', '__proto__', '10', '9', '0', '01'),
)
const amount = fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }))
const date = fc.constantFrom('2026-01-01T00:00:00Z', '2026-01-01T00:00:00.123456Z', '1970-01-01T00:00:00Z')
const metadata = fc.array(fc.tuple(text, text), { maxLength: 5 }).map((entries) => canonicalMetadata(entries))

function volumes(entries: readonly (readonly [string, string, bigint, bigint])[]): VolumesMap {
  const result: VolumesMap = emptyKeyed()
  for (const [account, asset, input, output] of entries) keyedChild(result, account)[asset] = { input, output, balance: input - output }
  return result
}
const volumesArbitrary = fc.array(fc.tuple(text, text, amount, amount), { maxLength: 4 }).map(volumes)

const record = transactionRecords({ text, date, amount, metadata, volumes: volumesArbitrary })

test('printTransaction prints what stringifyJson(transactionView(…)) printed, with and without volumes', () => {
  fc.assert(
    fc.property(record, fc.boolean(), (transaction, withVolumes) => {
      const expected = stringifyJson(transactionView(transaction, { volumes: withVolumes }))
      assert.equal(printTransaction(transaction, { volumes: withVolumes }), expected)
      // An order's output is the view itself: printing it gives the same bytes.
      const view = transactionView(transaction, { volumes: true }) as unknown as TransactionRecord
      assert.equal(printTransaction(view, { volumes: true }), stringifyJson(view as unknown as Json))
    }),
    { numRuns: 500 },
  )
})

test('printTransaction appends effective volumes after the view, as the read printed them', () => {
  fc.assert(
    fc.property(record, volumesArbitrary, volumesArbitrary, (transaction, pre, post) => {
      const view = { ...(transactionView(transaction, { volumes: true }) as Record<string, Json>), preCommitEffectiveVolumes: pre as Json, postCommitEffectiveVolumes: post as Json }
      assert.equal(printTransaction(transaction, { volumes: true, effectiveVolumes: { pre, post } }), stringifyJson(view))
    }),
    { numRuns: 200 },
  )
})

/** The same volumes, each `{input, output, balance}` in that order; accounts and assets in the map's own order. */
function inV2Order(map: VolumesMap | undefined): VolumesMap | undefined {
  if (map === undefined) return undefined
  const result: VolumesMap = emptyKeyed()
  for (const account of Object.keys(map)) {
    for (const [asset, moved] of Object.entries(map[account] ?? {})) keyedChild(result, account)[asset] = { input: moved.input, output: moved.output, balance: moved.balance }
  }
  return result
}

test('printTransaction prints v2 key order whatever the key order of its value (one read back from a row packed in sorted order)', () => {
  fc.assert(
    fc.property(record, (transaction) => {
      const view = transactionView(transaction, { volumes: true })
      const sorted = unpackValue(packValue(view, 0xee, true), 0xee) as unknown as TransactionRecord
      // Maps (metadata, accounts, assets) keep their own order; every field of the transaction, a posting and a volume has v2's.
      const expected = stringifyJson(
        transactionView(
          { ...transaction, metadata: sorted.metadata, preCommitVolumes: inV2Order(sorted.preCommitVolumes as VolumesMap | undefined), postCommitVolumes: inV2Order(sorted.postCommitVolumes as VolumesMap | undefined) } as TransactionRecord,
          { volumes: true },
        ),
      )
      assert.equal(printTransaction(sorted, { volumes: true }), expected)
    }),
    { numRuns: 300 },
  )
})

test('stringJson quotes as JSON.stringify does', () => {
  fc.assert(
    fc.property(fc.oneof(text, fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme-composite' })), (value) => {
      assert.equal(stringJson(value), JSON.stringify(value))
    }),
    { numRuns: 2000 },
  )
})
