import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeProposal, encodeProposal } from '../../src/fsm/index.ts'
import type { Proposal } from '../../src/fsm/index.ts'
import type { AccountAddress, Asset, CanonicalKey, LedgerName } from '../../src/domain/index.ts'
import { encodeAttribute, stringifyJson, volumesKey } from '../../src/domain/index.ts'

/** The WAL's proposal record (docs/adr/0009): packed, and a JSON-text record of an older WAL decodes to the same proposal. */

const L = 'main' as LedgerName
const seedRow = encodeAttribute({ kind: 'v', value: { input: 10n, output: 3n } }).bytes
const proposal: Proposal = {
  id: 'p-1',
  date: '2026-12-06T22:00:00.000Z',
  predictedIndex: 42,
  cacheEpoch: 1,
  cacheGeneration: 3,
  storeIndexAtLoad: 40,
  coverage: [{ key: volumesKey(L, 'users:1' as AccountAddress, 'USD/2' as Asset) as CanonicalKey, seed: seedRow }, { key: 'lmain' as CanonicalKey }, { key: 'amain\u0000users:2' as CanonicalKey, seed: null }],
  orders: [
    {
      order: {
        type: 'CREATE_TRANSACTION',
        ledger: L,
        postings: [{ source: 'users:1' as AccountAddress, destination: 'users:2' as AccountAddress, amount: 2n ** 70n, asset: 'USD/2' as Asset }],
        metadata: { note: 'é\ud800' },
        accountMetadata: {},
        force: false,
      },
      idempotencyKey: 'ik',
      requestHash: 'h',
      coverageIndexes: [0, 1, 2],
    },
  ],
  atomic: true,
  continueOnFailure: false,
  cacheSettings: { rotationThreshold: 64, generationBytesMax: null },
}

test('a proposal record is packed (no JSON text in the WAL) and decodes to the proposal', () => {
  const record = encodeProposal(proposal)
  assert.equal(record[0], 0x04, 'the proposal layout byte')
  assert.deepStrictEqual(decodeProposal(record), proposal)
})

test('a JSON-text proposal record (a WAL written before packing, seeds in base64) decodes to the same proposal', () => {
  const inText = { ...proposal, coverage: proposal.coverage.map((entry) => (entry.seed instanceof Uint8Array ? { ...entry, seed: Buffer.from(entry.seed).toString('base64') } : entry)) }
  const text = Buffer.from(stringifyJson(inText), 'utf8')
  assert.deepStrictEqual(decodeProposal(text), decodeProposal(encodeProposal(proposal)))
})

test('a seed travels as the stored row itself: its bytes in the record, not base64, and a copy when decoded', () => {
  const record = encodeProposal(proposal)
  assert.ok(record.includes(seedRow), 'the row bytes appear verbatim in the record')
  assert.ok(!record.includes(Buffer.from(seedRow.toString('base64'))), 'no base64 text of the row')
  const decoded = decodeProposal(record).coverage[0]?.seed
  assert.ok(Buffer.isBuffer(decoded))
  record.fill(0) // the record's buffer reused: the decoded seed must not change with it
  assert.deepStrictEqual(decoded, seedRow)
})
