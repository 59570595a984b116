import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AttributeCache } from '../../src/cache/index.ts'
import { LedgerStateMachine, WriteBatch } from '../../src/fsm/index.ts'
import type { CoverageEntry, Proposal } from '../../src/fsm/index.ts'
import type { Order } from '../../src/orders/index.ts'
import type { AccountAddress, Asset, CanonicalKey, LedgerName } from '../../src/domain/index.ts'
import { accountKey, ledgerKey, volumesKey } from '../../src/domain/index.ts'
import { GENESIS } from '../../src/audit/index.ts'
import { scriptInputFingerprint } from '../../src/orders/index.ts'

const L = 'main' as LedgerName
const at = (index: number, order: Order, coverage: CoverageEntry[]): Proposal => ({
  id: `p${index}`,
  date: '2026-01-01T00:00:00.000Z',
  predictedIndex: index,
  cacheEpoch: 0,
  storeIndexAtLoad: index - 1,
  coverage,
  orders: [{ order, coverageIndexes: coverage.map((_, i) => i) }],
  atomic: true,
  continueOnFailure: false,
})

test('FSM: a script whose inputs differ from admission’s is STALE_INPUTS, applied only when they match', () => {
  const fsm = new LedgerStateMachine({ cache: new AttributeCache(100), clusterId: 'c', appliedIndex: 0, auditHead: GENESIS })
  fsm.apply(1, at(1, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} }, [{ key: ledgerKey(L), seed: null }]), new WriteBatch())
  const plain = 'vars { monetary $b = balance(@a, USD) }\nsend [USD 1] ( source = @a allowing unbounded overdraft destination = @b )'
  const a = 'a' as AccountAddress
  const b = 'b' as AccountAddress
  const usd = 'USD' as Asset
  const keys: CanonicalKey[] = [volumesKey(L, a, usd), volumesKey(L, b, usd), accountKey(L, a), accountKey(L, b)]
  const coverage: CoverageEntry[] = [{ key: ledgerKey(L) }, ...keys.map((key) => ({ key, seed: null }))]
  // The planning run read one input: the balance of @a in USD, 0.
  const rightInputs = [scriptInputFingerprint(['balance', 'a', 'USD'], 0n)]
  const order = (inputs: readonly string[]): Order => ({
    type: 'CREATE_TRANSACTION',
    ledger: L,
    postings: [],
    script: { plain, vars: {} },
    scriptInputs: inputs,
    metadata: {},
    accountMetadata: {},
    force: false,
  })
  const stale = fsm.apply(2, at(2, order([scriptInputFingerprint(['balance', 'a', 'USD'], 5n)]), coverage), new WriteBatch())
  assert.equal(stale.outcome === 'applied' && stale.results[0]?.status === 'failed' && stale.results[0].error.code, 'STALE_INPUTS')
  const applied = fsm.apply(3, at(3, order(rightInputs), coverage), new WriteBatch())
  assert.equal(applied.outcome === 'applied' && applied.results[0]?.status, 'applied')
  // An input the planning run read but the plan did not declare (only the ledger is) is a planning gap: COVERAGE_MISS, never STALE_INPUTS.
  const undeclared = fsm.apply(4, at(4, order(rightInputs), [{ key: ledgerKey(L) }]), new WriteBatch())
  assert.equal(undeclared.outcome === 'applied' && undeclared.results[0]?.status === 'failed' && undeclared.results[0].error.code, 'COVERAGE_MISS')
})
