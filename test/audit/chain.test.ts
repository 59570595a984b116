import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AUDIT_BODY_LAYOUT, GENESIS, auditRow, chainEntry, decodeAuditEntry, entryHash, verifyEntry, v2LogHash } from '../../src/audit/index.ts'
import { packValue } from '../../src/domain/index.ts'
import type { AuditHead } from '../../src/audit/index.ts'

function body(n: number) {
  return { index: n, date: '2026-01-01T00:00:00.000Z', proposalId: `p${n}`, orders: [{ type: 'X', amount: 10n ** 30n }], outcome: [{ status: 'applied' }], idempotencyKeys: [], atomic: false, continueOnFailure: false }
}

test('audit chain: entries link, verify after a store round trip, and any change breaks them', () => {
  let head: AuditHead = GENESIS
  const stored: Buffer[] = []
  for (let n = 1; n <= 5; n++) {
    const entry = chainEntry('cluster-a', head, body(n))
    assert.equal(entry.seq, BigInt(n))
    assert.equal(entry.previousHash, head.hash)
    stored.push(entry.row)
    head = { seq: entry.seq, hash: entry.hash }
  }
  let previous: AuditHead = GENESIS
  for (const row of stored) {
    const entry = decodeAuditEntry(row)
    assert.equal(verifyEntry('cluster-a', previous, entry), 'ok')
    assert.equal(verifyEntry('cluster-b', previous, entry), 'hash', 'keyed by the cluster id')
    assert.equal(verifyEntry('cluster-a', previous, { ...entry, proposalId: 'forged' }), 'hash')
    assert.equal(verifyEntry('cluster-a', previous, { ...entry, outcome: [{ status: 'failed' }] }), 'hash')
    previous = { seq: entry.seq, hash: entry.hash }
  }
  const second = decodeAuditEntry(stored[1] as Buffer)
  assert.equal(verifyEntry('cluster-a', GENESIS, second), 'sequence', 'a gap or reorder does not verify')
})

test('audit chain: the sequence and the link are each checked on their own (neither hides behind the HMAC)', () => {
  const first = chainEntry('cluster-a', GENESIS, body(1))
  const second = chainEntry('cluster-a', { seq: first.seq, hash: first.hash }, body(2))
  // Right predecessor hash, wrong sequence number: only the sequence check refuses it.
  assert.equal(verifyEntry('cluster-a', { seq: 5n, hash: first.hash }, second), 'sequence')
  // The previousHash field alone altered: the HMAC covers the predecessor's hash, not this field, so only the link check refuses it.
  assert.equal(verifyEntry('cluster-a', { seq: first.seq, hash: first.hash }, { ...second, previousHash: 'f'.repeat(64) }), 'link')
  assert.equal(verifyEntry('cluster-a', { seq: first.seq, hash: first.hash }, second), 'ok')
})

test('audit chain: one hash function serves the writer and the verifier', () => {
  const entry = chainEntry('cluster-a', GENESIS, body(1))
  const { previousHash: _previous, hash, row: _row, ...full } = entry
  assert.equal(entryHash('cluster-a', '', full), hash)
  assert.equal(decodeAuditEntry(entry.row).hash, hash)
  // The hash is over the packed canonical body: the row's tail, as stored.
  assert.ok(entry.row.subarray(entry.row.length - packValue(full, AUDIT_BODY_LAYOUT, true).length).equals(packValue(full, AUDIT_BODY_LAYOUT, true)))
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

test('audit chain: a stored entry with a field the writer never writes does not decode (the hash covers only known fields)', () => {
  const entry = chainEntry('cluster-a', GENESIS, body(1))
  assert.equal(decodeAuditEntry(entry.row).hash, entry.hash)
  const { previousHash: _previous, hash: _hash, row: _row, ...full } = entry
  assert.throws(() => decodeAuditEntry(auditRow('', entry.hash, packValue({ ...full, extra: 1 }, AUDIT_BODY_LAYOUT, true))), /not an audit entry/)
  assert.throws(() => decodeAuditEntry(auditRow('', entry.hash, packValue([full], AUDIT_BODY_LAYOUT, true))), /not an audit entry/)
  assert.throws(() => decodeAuditEntry(Buffer.concat([entry.row, Buffer.of(0)])), /not an audit entry/)
  assert.throws(() => decodeAuditEntry(Buffer.from('{"body":{}}')), /not an audit entry/)
})
