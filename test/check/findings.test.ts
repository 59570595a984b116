import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { LedgerNode } from '../../src/server/index.ts'
import { MetaKey, Store, Zone, auditCheckpointRowKey, auditRowKey, metaKey } from '../../src/store/index.ts'
import { FINDING_KINDS, runCheck } from '../../src/check/index.ts'
import type { CheckResult, Finding, FindingKind } from '../../src/check/index.ts'
import { auditRow, chainEntry, decodeAuditEntry } from '../../src/audit/index.ts'
import type { AuditEntry } from '../../src/audit/index.ts'
import { stringifyJson } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { FIXED_STEPS, FIXED_STEPS_WITH_OUTPUTS, clock, runWorkload } from './workload.ts'
import type { Step } from './workload.ts'

/**
 * Every finding `docs/check.md` lists, produced by tampering with a healthy
 * store the way an attacker or a broken disk would: rows deleted, added,
 * duplicated, reordered, rewritten (with the chain's hashes recomputed, as a
 * holder of the store can). Each test names the finding it expects; the
 * last test proves the sweep covers every kind.
 */

const CLUSTER = 'findings-cluster'
const kindsSeen = new Set<FindingKind>()

type Rows = [Buffer, Buffer][]

async function tampered(mutate: (store: Store, rows: Rows) => Promise<void>, steps: readonly Step[] = FIXED_STEPS): Promise<CheckResult> {
  const temp = tempDirectory('tally-findings-')
  try {
    const node = await LedgerNode.open({ dataDirectory: temp.directory, cacheRotationThreshold: 4, clusterId: CLUSTER, sync: false, now: clock() })
    await runWorkload(node, steps)
    await node.close()
    const directory = path.join(temp.directory, 'store')
    const clean = await check(directory)
    assert.equal(clean.ok, true, describe(clean))
    const store = await Store.open(directory)
    try {
      const rows: Rows = []
      for await (const row of store.range({ gte: Buffer.of(Zone.meta) })) rows.push(row)
      await mutate(store, rows)
    } finally {
      await store.close()
    }
    const result = await check(directory)
    for (const finding of result.findingsList) kindsSeen.add(finding.kind)
    return result
  } finally {
    temp.remove()
  }
}

/**
 * Every check here runs three times: with everything in memory (a ledger
 * this small is compared on the check's own thread), with a memory bound of
 * one byte, so every row spills to disk as soon as it is compared and the
 * comparison walks only spilled rows, and with rows compared on a worker
 * thread. All must find exactly the same (the bound and the thread change
 * where rows are kept, never what is compared).
 */
async function check(directory: string): Promise<CheckResult> {
  const store = await Store.open(directory)
  try {
    const inMemory = await runCheck(store)
    const spilled = await runCheck(store, { memoryBytesMax: 1 })
    const inWorker = await runCheck(store, { comparisonThread: 'worker' })
    assert.equal(inMemory.spills, 0, 'a small ledger fits the default memory bound')
    // A check that stopped before the comparison (the replay could not start) compares no rows, so it spills none.
    assert.ok(spilled.spills > 0 || spilled.stopped !== undefined, 'a one-byte bound spills')
    const { durationMs: _a, spills: _b, ...inMemorySummary } = inMemory
    const { durationMs: _c, spills: _d, ...spilledSummary } = spilled
    const { durationMs: _e, ...inWorkerSummary } = inWorker
    assert.deepEqual(spilledSummary, inMemorySummary, 'the check finds the same with rows spilled to disk')
    assert.deepEqual(inWorkerSummary, { ...inMemorySummary, spills: 0 }, 'the check finds the same comparing on a worker thread')
    return inMemory
  } finally {
    await store.close()
  }
}

function describe(result: CheckResult): string {
  return JSON.stringify(result.findingsList, null, 1).slice(0, 4000)
}

function findingOf(result: CheckResult, kind: FindingKind, key: string, message: RegExp): Finding {
  assert.equal(result.ok, false, 'the tampering is detected')
  const found = result.findingsList.find((finding) => finding.kind === kind && finding.key === key && message.test(finding.message))
  assert.ok(found !== undefined, `expected a ${kind} finding on ${key} matching ${message}: ${describe(result)}`)
  return found
}

const put = (store: Store, key: Buffer, value: Buffer): Promise<void> => store.write([{ key, value }], { sync: true })
const del = (store: Store, key: Buffer): Promise<void> => store.write([{ key, value: null }], { sync: true })

function auditRows(rows: Rows): [Buffer, Buffer][] {
  return rows.filter(([key]) => key[0] === Zone.audit)
}

/** The audit entry's body, re-encoded and re-hashed on `previousHash` as a store holder can (the cluster id is in the store). */
function rechained(entry: AuditEntry, previousHash: string, change: Partial<AuditEntry> = {}): { row: Buffer; hash: string } {
  const { seq, previousHash: _previous, hash: _hash, ...body } = { ...entry, ...change }
  const encoded = chainEntry(CLUSTER, { seq: seq - 1n, hash: previousHash }, body)
  return { row: encoded.row, hash: encoded.hash }
}

/** The packed body of a stored audit row (after its layout byte and the two hashes). */
function packedBodyOf(row: Buffer): Buffer {
  const hashAt = 2 + (row[1] as number)
  return row.subarray(hashAt + 1 + (row[hashAt] as number))
}

// ---- projections: a missing row, an extra row, per kind ---------------------------------------------

const ATTRIBUTE_KINDS: [string, FindingKind][] = [
  ['v', 'volumes'],
  ['a', 'account'],
  ['t', 'transaction'],
  ['r', 'reference'],
  ['l', 'ledger'],
  ['i', 'idempotency'],
  ['s', 'schema'],
  ['o', 'outputs'],
]

for (const [tag, kind] of ATTRIBUTE_KINDS) {
  test(`findings: a deleted ${kind} row is named as missing, and nothing else is reported`, async () => {
    const result = await tampered(async (store, rows) => {
      const row = rows.find(([key]) => key[0] === Zone.attributes && key[1] === tag.charCodeAt(0))
      assert.ok(row !== undefined)
      await del(store, row[0])
    }, kind === 'outputs' ? FIXED_STEPS_WITH_OUTPUTS : FIXED_STEPS)
    assert.equal(result.findings, 1, describe(result))
    assert.equal(result.findingsList[0]?.kind, kind)
    assert.match(result.findingsList[0]?.message ?? '', /missing from the store/)
    assert.ok(result.findingsList[0]?.expected !== undefined && result.findingsList[0]?.actual === undefined)
  })
}

test('findings: a row no audited proposal wrote (an injected account) is reported as extra', async () => {
  const result = await tampered(async (store, rows) => {
    const row = rows.find(([key]) => key[0] === Zone.attributes && key[1] === 'a'.charCodeAt(0))
    assert.ok(row !== undefined)
    await put(store, Buffer.concat([row[0], Buffer.from('-forged')]), row[1])
  })
  assert.equal(result.findings, 1, describe(result))
  assert.equal(result.findingsList[0]?.kind, 'account')
  assert.match(result.findingsList[0]?.message ?? '', /no audited proposal wrote it/)
})

test('findings: a deleted, an altered and an extra secondary-index row, and a row of the retired moves index, are each named (index)', async () => {
  const result = await tampered(async (store, rows) => {
    const indexes = rows.filter(([key]) => key[0] === Zone.indexes)
    const byAccount = indexes.filter(([key]) => key[1] === 0x41)
    const byTimestamp = indexes.find(([key]) => key[1] === 0x54)
    const [dropped, changed] = byAccount
    assert.ok(dropped !== undefined && changed !== undefined && byTimestamp !== undefined)
    assert.ok(!indexes.some(([key]) => key[1] === 0x4d), 'storage schema 3 writes no moves rows')
    await del(store, dropped[0])
    const altered = Buffer.from(changed[1])
    altered[altered.length - 1] = (altered[altered.length - 1] as number) ^ 0x02 // the output's varint: another amount
    await put(store, changed[0], altered)
    const extra = Buffer.from(byTimestamp[0])
    extra[extra.length - 1] = 0xee
    await put(store, extra, byTimestamp[1])
    // A moves row as schema 2 wrote it, left behind: replay writes none, so it is extra.
    const legacy = Buffer.concat([Buffer.of(Zone.indexes, 0x4d), Buffer.from('main\u0000users:1\u0000USD\u00002026-01-01T00:00:00.000000000Z\u0000', 'utf8'), Buffer.alloc(8)])
    await put(store, legacy, changed[1])
  })
  assert.equal(result.findings, 4, describe(result))
  for (const finding of result.findingsList) assert.equal(finding.kind, 'index')
  assert.ok(result.findingsList.some((finding) => /^transactions-by-account ledger=\w+ account=\S+ id=\d+$/.test(finding.key) && /missing/.test(finding.message)))
  assert.ok(result.findingsList.some((finding) => finding.key.startsWith('transactions-by-account ') && /differs/.test(finding.message)))
  assert.ok(result.findingsList.some((finding) => finding.key.startsWith('transactions-by-timestamp ') && /no audited proposal/.test(finding.message)))
  assert.ok(result.findingsList.some((finding) => finding.key.startsWith('moves ') && /no audited proposal/.test(finding.message)))
})

test('findings: a deleted v2 log row is missing (log)', async () => {
  const result = await tampered(async (store, rows) => {
    const row = rows.find(([key]) => key[0] === Zone.logs)
    assert.ok(row !== undefined)
    await del(store, row[0])
  })
  assert.equal(result.findings, 1, describe(result))
  assert.equal(result.findingsList[0]?.kind, 'log')
  assert.match(result.findingsList[0]?.key ?? '', /^ledger=main id=\d+$/)
})

test('findings: a deleted cache-mirror row is missing (cache-mirror)', async () => {
  const result = await tampered(async (store, rows) => {
    const row = rows.find(([key]) => key[0] === Zone.cacheMirror)
    assert.ok(row !== undefined)
    await del(store, row[0])
  })
  assert.equal(result.findings, 1, describe(result))
  assert.equal(result.findingsList[0]?.kind, 'cache-mirror')
  assert.match(result.findingsList[0]?.message ?? '', /missing/)
})

// ---- the audit chain: every way a row can be deleted, duplicated, reordered or rewritten ------------

test('findings: a deleted audit row is a sequence gap naming the first entry after the hole', async () => {
  const result = await tampered(async (store, rows) => {
    const third = auditRows(rows)[2]
    assert.ok(third !== undefined)
    await del(store, third[0])
  })
  findingOf(result, 'audit', 'seq=4', /^sequence gap: expected seq 3 after 2/)
})

test('findings: the last audit row deleted leaves the audit head ahead of the chain (meta audit-head)', async () => {
  const result = await tampered(async (store, rows) => {
    await del(store, auditRows(rows).at(-1)?.[0] as Buffer)
  })
  findingOf(result, 'meta', MetaKey.auditHead, /the audit head says seq \d+, the last stored entry is seq \d+/)
})

test('findings: a duplicated audit row (an entry copied over its successor) is named by its row key', async () => {
  const result = await tampered(async (store, rows) => {
    const [second, third] = auditRows(rows).slice(1, 3)
    assert.ok(second !== undefined && third !== undefined)
    await put(store, third[0], second[1])
  })
  findingOf(result, 'audit', 'seq=3', /the entry says seq 2, its row key says 3/)
})

test('findings: a duplicated audit row appended after the head is named by its row key', async () => {
  const result = await tampered(async (store, rows) => {
    const last = auditRows(rows).at(-1)
    assert.ok(last !== undefined)
    const seq = last[0].readBigUInt64BE(1)
    await put(store, auditRowKey(seq + 1n), last[1])
  })
  const last = result.auditEntries
  findingOf(result, 'audit', `seq=${last}`, new RegExp(`the entry says seq ${last - 1}, its row key says ${last}`))
})

test('findings: two audit rows swapped (reordered) are both named', async () => {
  const result = await tampered(async (store, rows) => {
    const [third, fourth] = auditRows(rows).slice(2, 4)
    assert.ok(third !== undefined && fourth !== undefined)
    await store.write([{ key: third[0], value: fourth[1] }, { key: fourth[0], value: third[1] }], { sync: true })
  })
  findingOf(result, 'audit', 'seq=3', /the entry says seq 4, its row key says 3/)
  findingOf(result, 'audit', 'seq=4', /the entry says seq 3, its row key says 4/)
})

test('findings: reordered and re-sequenced audit rows (re-hashed by a store holder) are caught by the replay', async () => {
  const result = await tampered(async (store, rows) => {
    const entries = auditRows(rows).map(([, value]) => decodeAuditEntry(value))
    const third = entries[2] as AuditEntry
    const fourth = entries[3] as AuditEntry
    // The holder swaps the two entries, renumbers and re-chains them: links and hashes verify again.
    const newThird = rechained({ ...fourth, seq: third.seq }, third.previousHash)
    const newFourth = rechained({ ...third, seq: fourth.seq }, newThird.hash)
    const fifth = entries[4] as AuditEntry
    const newFifth = rechained(fifth, newFourth.hash)
    await store.write(
      [
        { key: auditRowKey(3n), value: newThird.row },
        { key: auditRowKey(4n), value: newFourth.row },
        { key: auditRowKey(5n), value: newFifth.row },
      ],
      { sync: true },
    )
  })
  findingOf(result, 'audit', 'seq=4', /index \d+ is out of order/)
})

test('findings: an entry whose previousHash no longer links (re-hashed on the forged link) is a broken link', async () => {
  const result = await tampered(async (store, rows) => {
    const entries = auditRows(rows).map(([, value]) => decodeAuditEntry(value))
    const fifth = entries[4] as AuditEntry
    const forged = rechained(fifth, 'f'.repeat(64))
    await put(store, auditRowKey(fifth.seq), forged.row)
  })
  findingOf(result, 'audit', 'seq=5', /does not link to seq 4/)
})

test('findings: an entry whose previousHash field alone is altered (its hash kept) is a broken link', async () => {
  const result = await tampered(async (store, rows) => {
    const row = auditRows(rows)[4]
    assert.ok(row !== undefined)
    const entry = decodeAuditEntry(row[1])
    assert.equal(entry.previousHash.length, 64)
    await put(store, row[0], auditRow('0'.repeat(64), entry.hash, packedBodyOf(row[1])))
  })
  findingOf(result, 'audit', 'seq=5', /does not link to seq 4/)
})

test('findings: an altered body is a hash mismatch', async () => {
  const result = await tampered(async (store, rows) => {
    const row = auditRows(rows)[5]
    assert.ok(row !== undefined)
    const entry = decodeAuditEntry(row[1])
    // The body altered in place (its proposal id's first character), the stored hash kept.
    const body = Buffer.from(packedBodyOf(row[1]))
    const at = body.indexOf(Buffer.from(entry.proposalId, 'utf8'))
    assert.ok(at > 0)
    body[at] = '#'.charCodeAt(0)
    await put(store, row[0], auditRow(entry.previousHash, entry.hash, body))
  })
  findingOf(result, 'audit', 'seq=6', /^hash mismatch/)
})

test('findings: a rewritten outcome, re-hashed and re-chained by a store holder, is caught by the replay (audit)', async () => {
  const result = await tampered(async (store, rows) => {
    const entries = auditRows(rows).map(([, value]) => decodeAuditEntry(value))
    const writes: { key: Buffer; value: Buffer }[] = []
    let previousHash = (entries[2] as AuditEntry).previousHash
    for (const [i, entry] of entries.entries()) {
      if (i < 2) continue
      const change = i === 2 ? { outcome: (entry.outcome as unknown[]).map(() => ({ status: 'failed', code: 'INSUFFICIENT_FUND' })) as unknown as AuditEntry['outcome'] } : {}
      const encoded = rechained(entry, previousHash, change)
      writes.push({ key: auditRowKey(entry.seq), value: encoded.row })
      previousHash = encoded.hash
    }
    writes.push({ key: metaKey(MetaKey.auditHead), value: Buffer.from(stringifyJson({ seq: (entries.at(-1) as AuditEntry).seq, hash: previousHash })) })
    await store.write(writes, { sync: true })
  })
  const finding = findingOf(result, 'audit', 'seq=3', /the replay through the FSM produced another entry/)
  assert.match(finding.actual ?? '', /INSUFFICIENT_FUND/)
})

test('findings: an entry re-hashed around an order no handler knows makes the replay fail there (audit)', async () => {
  const result = await tampered(async (store, rows) => {
    const entries = auditRows(rows).map(([, value]) => decodeAuditEntry(value))
    const writes: { key: Buffer; value: Buffer }[] = []
    let previousHash = (entries[3] as AuditEntry).previousHash
    for (const [i, entry] of entries.entries()) {
      if (i < 3) continue
      const change = i === 3 ? { orders: [{ order: { type: 'PRINT_MONEY', ledger: 'main' } }] as unknown as AuditEntry['orders'] } : {}
      const encoded = rechained(entry, previousHash, change)
      writes.push({ key: auditRowKey(entry.seq), value: encoded.row })
      previousHash = encoded.hash
    }
    await store.write(writes, { sync: true })
  })
  findingOf(result, 'audit', 'seq=4', /the replay of this entry failed/)
  assert.match(result.stopped ?? '', /the replay of seq=4 failed/)
})

test('findings: an audit row that does not decode stops the replay there', async () => {
  const result = await tampered(async (store, rows) => {
    const row = auditRows(rows)[3]
    assert.ok(row !== undefined)
    await put(store, row[0], Buffer.from(row[1].subarray(0, row[1].length - 3)))
  })
  findingOf(result, 'audit', 'seq=4', /does not decode/)
  assert.match(result.stopped ?? '', /does not decode/)
})

// ---- checkpoints (signatures and rewrites: test/check/checkpoints.test.ts) ------------------------------

test('findings: a stored checkpoint that does not parse, and one the chain disagrees with (checkpoint)', async () => {
  const result = await tampered(async (store, rows) => {
    const head = decodeAuditEntry((auditRows(rows).at(-1) as [Buffer, Buffer])[1])
    const origin = `tally/${CLUSTER}/audit`
    await put(store, auditCheckpointRowKey(1n), Buffer.from('not a note'))
    await put(store, auditCheckpointRowKey(head.seq), Buffer.from(`${origin}\n${head.seq}\n${Buffer.alloc(32, 9).toString('base64')}\n\n\u2014 k AAAAAAA=\n`))
  })
  findingOf(result, 'checkpoint', 'size=1', /does not parse/)
  findingOf(result, 'checkpoint', `size=${result.auditEntries}`, /the chain was rewritten/)
  assert.equal(result.checkpointsUnverified, 0)
})

// ---- meta rows ---------------------------------------------------------------------------------------

test('findings: an audit head that disagrees with the chain (meta audit-head)', async () => {
  const result = await tampered(async (store) => {
    await put(store, metaKey(MetaKey.auditHead), Buffer.from(stringifyJson({ seq: 2n, hash: 'ab' })))
  })
  findingOf(result, 'meta', MetaKey.auditHead, /the audit head says seq 2/)
})

test('findings: a cache state that does not decode differs from the replay (meta cache-state)', async () => {
  const result = await tampered(async (store) => {
    await put(store, metaKey(MetaKey.cacheState), Buffer.from('{"generation":'))
  })
  findingOf(result, 'meta', MetaKey.cacheState, /differs from the replay/)
})

test('findings: cache genesis settings that do not decode stop the check (meta cache-genesis)', async () => {
  const result = await tampered(async (store) => {
    await put(store, metaKey(MetaKey.cacheGenesis), Buffer.from('{"rotationThreshold":'))
  })
  findingOf(result, 'meta', MetaKey.cacheGenesis, /do not decode/)
  assert.ok(result.stopped !== undefined)
})

test('findings: a store from before the genesis row whose cache was reset (epoch not 0) stops the check (meta cache-state)', async () => {
  const result = await tampered(async (store, rows) => {
    const state = rows.find(([key]) => key.equals(metaKey(MetaKey.cacheState)))
    assert.ok(state !== undefined)
    await del(store, metaKey(MetaKey.cacheGenesis))
    await put(store, state[0], Buffer.from(state[1].toString('utf8').replace(/"epoch":0/, '"epoch":1')))
  })
  findingOf(result, 'meta', MetaKey.cacheState, /the cache was reset \(epoch 1/)
  assert.ok(result.stopped !== undefined)
})

test('findings: an applied index that is not a non-negative integer stops the check (meta applied-index)', async () => {
  const result = await tampered(async (store) => {
    await put(store, metaKey(MetaKey.appliedIndex), Buffer.from('-3'))
  })
  findingOf(result, 'meta', MetaKey.appliedIndex, /not a non-negative integer/)
})

test('findings: a missing cluster id (meta cluster-id)', async () => {
  const result = await tampered(async (store) => {
    await del(store, metaKey(MetaKey.clusterId))
  })
  findingOf(result, 'meta', MetaKey.clusterId, /no cluster id/)
})

test('findings: a row in a zone where no projection lives (meta)', async () => {
  const result = await tampered(async (store) => {
    await put(store, Buffer.from([0x42, 1, 2, 3]), Buffer.from('stray'))
  })
  findingOf(result, 'meta', 'row=42010203', /no projection lives there/)
})

// ---- the sweep ---------------------------------------------------------------------------------------

test('findings: the tests above produce every finding kind the checker has, and docs/check.md lists exactly those kinds', () => {
  const missing = FINDING_KINDS.filter((kind) => !kindsSeen.has(kind))
  assert.deepEqual(missing, [], 'every finding kind is produced by a test of this file')
  const documentation = readFileSync(new URL('../../docs/check.md', import.meta.url), 'utf8')
  const table = documentation.slice(documentation.indexOf('| kind | key |'))
  const documented = [...table.matchAll(/^\| `([a-z-]+)` \|/gm)].map((match) => match[1])
  assert.deepEqual([...documented].sort(), [...FINDING_KINDS].sort())
})
