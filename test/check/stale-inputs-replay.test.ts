import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { LedgerNode } from '../../src/server/index.ts'
import { Store, Zone } from '../../src/store/index.ts'
import { runCheck } from '../../src/check/index.ts'
import { decodeAuditEntry } from '../../src/audit/index.ts'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'
import type { Order } from '../../src/orders/index.ts'
import { tempDirectory } from '../support/temp.ts'

/**
 * Issue #9 point 14: a revert planned before its transaction was applied is
 * STALE_INPUTS (audited, retried), and the checker replays it alike — its
 * order carries the postings it was planned on (none), so the replay plans
 * it blind and refuses it the same way. Likewise a script whose input moved.
 */
const L = 'main' as LedgerName
const USD = 'USD' as Asset

test('check: reverts and scripts raced into STALE_INPUTS replay alike, and the store checks clean', async () => {
  const temp = tempDirectory('tally-stale-replay-')
  try {
    // One proposal per submit: gathered into one proposal, each order would be planned on the others' effects and never race.
    const node = await LedgerNode.open({ dataDirectory: temp.directory, clusterId: 'stale', sync: false, cacheRotationThreshold: 50, gatherOrdersMax: 1 })
    const submit = (order: Order) => node.admission.submit([{ order }], { atomic: true, continueOnFailure: false })
    await submit({ type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} })
    const pending: Promise<unknown>[] = []
    for (let i = 0; i < 12; i++) {
      // Submitted in the same tick: the revert is planned before the transaction it names is applied.
      pending.push(submit({ type: 'CREATE_TRANSACTION', ledger: L, postings: [{ source: 'world' as AccountAddress, destination: 'users:1' as AccountAddress, amount: 10n, asset: USD }], metadata: {}, accountMetadata: {}, force: false }))
      pending.push(submit({ type: 'REVERT_TRANSACTION', ledger: L, id: BigInt(i), force: true, atEffectiveDate: false, metadata: {} }))
      pending.push(
        submit({
          type: 'CREATE_TRANSACTION',
          ledger: L,
          postings: [],
          script: { plain: 'vars { monetary $all = balance(@users:1, USD) }\nsend $all ( source = @users:1 allowing unbounded overdraft destination = @users:2 )', vars: {} },
          metadata: {},
          accountMetadata: {},
          force: false,
        }),
      )
    }
    const settled = await Promise.allSettled(pending)
    assert.ok(settled.every((outcome) => outcome.status === 'fulfilled'), 'every write was admitted (retried past STALE_INPUTS)')
    await node.close()
    const store = await Store.open(path.join(temp.directory, 'store'))
    try {
      const codes = new Map<string, number>()
      for await (const [, value] of store.range({ gte: Buffer.of(Zone.audit), lt: Buffer.of(Zone.audit + 1) })) {
        for (const outcome of decodeAuditEntry(value).outcome as { status: string; code?: string }[]) {
          const code = outcome.code ?? outcome.status
          codes.set(code, (codes.get(code) ?? 0) + 1)
        }
      }
      assert.ok((codes.get('STALE_INPUTS') ?? 0) > 0, `the race produced no STALE_INPUTS: ${JSON.stringify([...codes])}`)
      assert.equal(codes.get('COVERAGE_MISS'), undefined, JSON.stringify([...codes]))
      const result = await runCheck(store)
      assert.equal(result.ok, true, JSON.stringify(result.findingsList).slice(0, 3000))
    } finally {
      await store.close()
    }
  } finally {
    temp.remove()
  }
})
