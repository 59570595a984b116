import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Views } from '../../src/api/views.ts'
import { Store, attributeRowKey } from '../../src/store/index.ts'
import type { AccountAddress, AccountRecord, Asset, LedgerName } from '../../src/domain/index.ts'
import { accountKey, canonicalMetadata, encodeAttribute, ledgerKey, stringifyJson, volumesKey } from '../../src/domain/index.ts'

const ledger = 'main' as LedgerName

/** Keys a JavaScript object orders apart (array indexes first), keys JSON escapes, and the key an object literal would swallow. */
const metadataKey = fc.oneof(fc.string({ minLength: 1, maxLength: 6 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }), fc.constantFrom('0', '7', '10', '4294967294', '4294967295', '01', '__proto__', 'a"b', 'é', '\u2028'))
const metadataValue = fc.oneof(fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 4 }), fc.constantFrom('', '\ud800', 'x\ny', '</script>'))
const asset = fc.constantFrom('USD', 'USD/2', 'EUR/2', 'BTC/8', 'A', 'Z9_COIN/6', 'COIN')
const amount = fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 1n << 80n }))
const instant = fc.constantFrom('2026-12-07T03:45:00.123Z', '2026-12-07T03:45:00.123456Z', '1970-01-01T00:00:00Z', 'not a date')
const account = fc.record({
  address: fc.constantFrom('users:1', 'world', 'a:b:c', 'é:ü'),
  metadata: fc.array(fc.tuple(metadataKey, metadataValue), { maxLength: 6 }),
  // A field a row lacks is skipped, as printing the view skips an undefined field.
  insertionDate: instant,
  updatedAt: fc.option(instant, { nil: undefined, freq: 8 }),
  firstUsage: fc.option(instant, { nil: undefined, freq: 8 }),
  volumes: fc.uniqueArray(fc.tuple(asset, amount, amount), { selector: ([name]) => name, maxLength: 5 }),
})

test('an account answer printed from its rows is byte for byte the view printed from the decoded record, with and without volumes (property)', async () => {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'tally-account-json-'))
  const store = await Store.open(path.join(directory, 'store'))
  try {
    let written = 0
    await fc.assert(
      fc.asyncProperty(account, async (drawn) => {
        // A fresh address each run: the volume rows of an earlier run do not mix in.
        const address = `${drawn.address}:${written++}` as AccountAddress
        const record = { address, metadata: canonicalMetadata(drawn.metadata), insertionDate: drawn.insertionDate, updatedAt: drawn.updatedAt, firstUsage: drawn.firstUsage } as AccountRecord
        await store.write(
          [
            // The ledger's row is only looked for, never decoded, on this path.
            { key: attributeRowKey(ledgerKey(ledger)), value: Buffer.of(1) },
            { key: attributeRowKey(accountKey(ledger, address)), value: encodeAttribute({ kind: 'a', value: record }).bytes },
            ...drawn.volumes.map(([name, input, output]) => ({
              key: attributeRowKey(volumesKey(ledger, address, name as Asset)),
              value: encodeAttribute({ kind: 'v', value: { input, output } }).bytes,
            })),
          ],
          { sync: false },
        )
        // Fresh views: nothing kept, and the ledger read again.
        const views = new Views(store, { answerCacheBytes: 0 })
        for (const volumes of [false, true]) {
          const expand = { volumes, effectiveVolumes: false }
          const expected = `{"data":${stringifyJson(await views.account(ledger, address, expand))}}`
          assert.equal(await views.accountAnswer(ledger, address, expand), expected)
          JSON.parse(expected)
        }
      }),
      { numRuns: 300 },
    )
  } finally {
    await store.close()
    await rm(directory, { recursive: true, force: true })
  }
})

test('an account answer from its rows: 404 for a missing account, LEDGER_NOT_FOUND for a missing ledger', async () => {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'tally-account-json-'))
  const store = await Store.open(path.join(directory, 'store'))
  try {
    const views = new Views(store, { answerCacheBytes: 0 })
    await assert.rejects(async () => views.accountAnswer(ledger, 'users:1' as AccountAddress), (error: { code?: string }) => error.code === 'LEDGER_NOT_FOUND')
    await store.write([{ key: attributeRowKey(ledgerKey(ledger)), value: Buffer.of(1) }], { sync: false })
    await assert.rejects(async () => views.accountAnswer(ledger, 'users:1' as AccountAddress), (error: { kind?: string }) => error.kind === 'not_found')
  } finally {
    await store.close()
    await rm(directory, { recursive: true, force: true })
  }
})
