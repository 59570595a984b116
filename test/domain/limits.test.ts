import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  TallyError,
  accountAddressLengthMax,
  assetCodeLengthMax,
  assetPrecisionDigitsMax,
  assetSuffixLengthMax,
  ledgerNameLengthMax,
  metadataKeyLengthMax,
  metadataValueLengthMax,
  parseAccountAddress,
  parseAsset,
  parseLedgerName,
  parseMetadata,
  parseMetadataKey,
  referenceLengthMax,
} from '../../src/domain/index.ts'
import { parseReference } from '../../src/orders/index.ts'
import { parseScript, scriptLengthMax } from '../../src/orders/parse.ts'

/** Every length-limited field: at its limit accepted, one past it refused as a length limit (not as a malformed value). */
const fields: readonly { name: string; lengthMax: number; parse: (length: number) => unknown }[] = [
  { name: 'account address', lengthMax: accountAddressLengthMax, parse: (length) => parseAccountAddress('a'.repeat(length)) },
  { name: 'account address (segments)', lengthMax: accountAddressLengthMax, parse: (length) => parseAccountAddress(`${'a:'.repeat(Math.floor((length - 1) / 2))}${'b'.repeat(length - 2 * Math.floor((length - 1) / 2))}`) },
  { name: 'ledger name', lengthMax: ledgerNameLengthMax, parse: (length) => parseLedgerName('l'.repeat(length)) },
  { name: 'asset code', lengthMax: assetCodeLengthMax, parse: (length) => parseAsset('A'.repeat(length)) },
  { name: 'asset suffix', lengthMax: assetSuffixLengthMax, parse: (length) => parseAsset(`USD_${'A'.repeat(length)}`) },
  { name: 'asset precision', lengthMax: assetPrecisionDigitsMax, parse: (length) => parseAsset(`USD/${'1'.repeat(length)}`) },
  { name: 'reference', lengthMax: referenceLengthMax, parse: (length) => parseReference('r'.repeat(length)) },
  { name: 'metadata key', lengthMax: metadataKeyLengthMax, parse: (length) => parseMetadata({ ['k'.repeat(length)]: 'v' }) },
  { name: 'metadata key (path)', lengthMax: metadataKeyLengthMax, parse: (length) => parseMetadataKey('k'.repeat(length)) },
  { name: 'metadata value', lengthMax: metadataValueLengthMax, parse: (length) => parseMetadata({ k: 'v'.repeat(length) }) },
  { name: 'script', lengthMax: scriptLengthMax, parse: (length) => parseScript({ plain: `${' '.repeat(length - 5)}print` }) },
]

for (const field of fields) {
  test(`${field.name}: ${field.lengthMax} characters pass the length check, ${field.lengthMax + 1} are refused as a length limit`, () => {
    try {
      field.parse(field.lengthMax)
    } catch (error) {
      // At the limit, any refusal must be about something else than the length (a script that does not compile).
      assert.ok(!(error instanceof TallyError && /longer than the limit/.test(error.message)), String(error))
    }
    assert.throws(
      () => field.parse(field.lengthMax + 1),
      (error: unknown) =>
        error instanceof TallyError && error.code === 'VALIDATION' && error.message.includes(`${field.lengthMax + 1} characters is longer than the limit of ${field.lengthMax}`),
    )
  })
}
