import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GENESIS, chainEntry, decodeAuditEntry, verifyEntry, v2LogHash } from '../../src/audit/index.ts'
import type { AuditHead } from '../../src/audit/index.ts'

function body(n: number) {
  return { index: n, date: '2026-01-01T00:00:00.000Z', proposalId: `p${n}`, orders: [{ type: 'X', amount: 10n ** 30n }], outcome: [{ status: 'applied' }], idempotencyKeys: [], atomic: false, continueOnFailure: false }
}

test('audit chain: entries link, verify after a store round trip, and any change breaks them', () => {
  let head: AuditHead = GENESIS
  const stored: string[] = []
  for (let n = 1; n <= 5; n++) {
    const entry = chainEntry('cluster-a', head, body(n))
    assert.equal(entry.seq, BigInt(n))
    assert.equal(entry.previousHash, head.hash)
    stored.push(entry.text)
    head = { seq: entry.seq, hash: entry.hash }
  }
  let previous: AuditHead = GENESIS
  for (const text of stored) {
    const entry = decodeAuditEntry(text)
    assert.ok(verifyEntry('cluster-a', previous, entry))
    assert.ok(!verifyEntry('cluster-b', previous, entry), 'keyed by the cluster id')
    assert.ok(!verifyEntry('cluster-a', previous, { ...entry, proposalId: 'forged' }))
    assert.ok(!verifyEntry('cluster-a', previous, { ...entry, outcome: [{ status: 'failed' }] }))
    previous = { seq: entry.seq, hash: entry.hash }
  }
  const second = decodeAuditEntry(stored[1] as string)
  assert.ok(!verifyEntry('cluster-a', GENESIS, second), 'a gap or reorder does not verify')
})

test('v2 log hash: chained, and sensitive to every field', () => {
  const log = { type: 'NEW_TRANSACTION', data: { a: 1n }, date: '2026-01-01T00:00:00.000Z' }
  const first = v2LogHash('', log)
  assert.match(first, /^[A-Za-z0-9+/]{43}=$/)
  assert.notEqual(v2LogHash(first, log), first)
  assert.notEqual(v2LogHash('', { ...log, data: { a: 2n } }), first)
  assert.notEqual(v2LogHash('', { ...log, idempotencyKey: 'k' }), first)
  assert.equal(v2LogHash('', log), first)
})
