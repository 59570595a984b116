import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'
import { accountKey, ledgerKey, transactionKey, volumesKey } from '../../src/domain/index.ts'

/**
 * The ledger, account and volumes keys are built from the last ledger's kept
 * prefixes: whatever the sequence of ledgers, each key's text is the one
 * built from its parts (kind letter, ledger, NUL, account, NUL, asset; a
 * transaction's id in 16 hex digits).
 */
test('keys built from kept ledger prefixes: the text built from their parts, ledgers alternating (property)', () => {
  const ledger = fc.oneof(
    fc.constantFrom('main', 'bank', 'b', 'payments-prod-eu', 'main2', 'ma'),
    fc.stringMatching(/^[a-c]{1,3}$/),
  ) as fc.Arbitrary<LedgerName>
  const account = fc.constantFrom('world', 'users:1', 'a', 'bank:main') as fc.Arbitrary<AccountAddress>
  const asset = fc.constantFrom('USD/2', 'EUR', 'COIN') as fc.Arbitrary<Asset>
  fc.assert(
    fc.property(fc.array(fc.tuple(ledger, account, asset), { minLength: 1, maxLength: 20 }), (steps) => {
      for (const [name, address, unit] of steps) {
        // A copy of the name, not the literal itself: the kept prefixes compare names by text.
        const copied = [...name].join('') as LedgerName
        assert.equal(volumesKey(copied, address, unit), 'v' + name + '\u0000' + address + '\u0000' + unit)
        assert.equal(accountKey(copied, address), 'a' + name + '\u0000' + address)
        assert.equal(ledgerKey(copied), 'l' + name)
        assert.equal(transactionKey(copied, 0x1a2bn), 't' + name + '\u0000' + '0000000000001a2b')
      }
    }),
    { numRuns: 300 },
  )
})
