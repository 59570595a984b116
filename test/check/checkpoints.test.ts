import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { AuditHistoryRewritten, AuditKeyError, LedgerNode, loadAuditCheckpointSettings } from '../../src/server/index.ts'
import type { AuditCheckpointSettings } from '../../src/server/index.ts'
import { MetaKey, Store, Zone, auditCheckpointRowKey, auditRowKey, metaKey } from '../../src/store/index.ts'
import { runCheck } from '../../src/check/index.ts'
import type { CheckOptions, CheckResult } from '../../src/check/index.ts'
import { chainEntry, checkpointOrigin, decodeAuditEntry, formatSignerKey, openCheckpoint, parseSignerKey, seedOf, signCheckpoint, splitCheckpointNotes } from '../../src/audit/index.ts'
import type { AuditEntry, NoteSigner } from '../../src/audit/index.ts'
import { stringifyJson } from '../../src/domain/index.ts'
import { buildApi } from '../../src/api/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { FIXED_STEPS, clock, runWorkload } from './workload.ts'

/**
 * Point 7 of issue #9: the audit chain's hash is keyed by the cluster id,
 * which the store holds, so whoever can write the store can rewrite an
 * entry and recompute every later hash: `tally check` then says OK. Signed
 * checkpoints (Ed25519, key outside the data directory) catch it.
 */

const CLUSTER = 'checkpoint-cluster'

function newSigner(name = 'tally-audit'): NoteSigner {
  return parseSignerKey(formatSignerKey(name, seedOf(generateKeyPairSync('ed25519').privateKey)))
}

interface Ledger {
  readonly directory: string
  readonly storeDirectory: string
  readonly signer: NoteSigner
  readonly checkpointFile: string
  remove(): void
}

/** A data directory built by the fixed workload with signed checkpoints every 3 entries, copies appended to a file outside it. */
async function signedLedger(steps = FIXED_STEPS): Promise<Ledger> {
  const temp = tempDirectory('tally-checkpoints-')
  const signer = newSigner()
  const directory = path.join(temp.directory, 'data')
  const checkpointFile = path.join(temp.directory, 'checkpoints.txt')
  const settings: AuditCheckpointSettings = { signer, entriesMax: 3, appendFile: checkpointFile }
  const node = await LedgerNode.open({ dataDirectory: directory, cacheRotationThreshold: 4, clusterId: CLUSTER, sync: false, now: clock(), auditCheckpoints: settings })
  await runWorkload(node, steps)
  await node.close()
  return { directory, storeDirectory: path.join(directory, 'store'), signer, checkpointFile, remove: temp.remove }
}

async function check(storeDirectory: string, options: CheckOptions = {}): Promise<CheckResult> {
  const store = await Store.open(storeDirectory)
  try {
    return await runCheck(store, options)
  } finally {
    await store.close()
  }
}

function describe(result: CheckResult): string {
  return JSON.stringify(result.findingsList, null, 1).slice(0, 4000)
}

async function rows(storeDirectory: string, zone: number): Promise<[Buffer, Buffer][]> {
  const store = await Store.open(storeDirectory)
  try {
    const found: [Buffer, Buffer][] = []
    for await (const row of store.range({ gte: Buffer.of(zone), lt: Buffer.of(zone + 1) })) found.push(row)
    return found
  } finally {
    await store.close()
  }
}

/**
 * What a holder of the store can do with the cluster id it holds: rewrite
 * entry `seq` (here its proposal id, which no projection shows, so every
 * projection still matches), re-hash it and every later entry, and store
 * the new head. The chain verifies and the replay agrees.
 */
async function rewriteHistory(storeDirectory: string, seq: bigint): Promise<void> {
  const store = await Store.open(storeDirectory)
  try {
    const entries: AuditEntry[] = []
    for await (const [, value] of store.range({ gte: auditRowKey(seq), lt: Buffer.of(Zone.audit + 1) })) entries.push(decodeAuditEntry(value))
    let previousHash = (entries[0] as AuditEntry).previousHash
    const writes: { key: Buffer; value: Buffer }[] = []
    for (const entry of entries) {
      const { seq: entrySeq, previousHash: _previous, hash: _hash, ...body } = entry
      const encoded = chainEntry(CLUSTER, { seq: entrySeq - 1n, hash: previousHash }, entrySeq === seq ? { ...body, proposalId: 'rewritten' } : body)
      writes.push({ key: auditRowKey(entrySeq), value: encoded.row })
      previousHash = encoded.hash
    }
    writes.push({ key: metaKey(MetaKey.auditHead), value: Buffer.from(stringifyJson({ seq: (entries.at(-1) as AuditEntry).seq, hash: previousHash })) })
    await store.write(writes, { sync: true })
  } finally {
    await store.close()
  }
}

test('checkpoints: the node signs the chain head at a bounded interval and at shutdown; check verifies them all', async () => {
  const ledger = await signedLedger()
  try {
    const stored = await rows(ledger.storeDirectory, Zone.auditCheckpoints)
    assert.ok(stored.length >= 4, `${stored.length} checkpoints`)
    let previousSize = 0n
    for (const [key, value] of stored) {
      const checkpoint = openCheckpoint(value.toString('utf8'), [ledger.signer.verifier])
      assert.equal(checkpoint.origin, checkpointOrigin(CLUSTER))
      assert.equal(key.readBigUInt64BE(1), checkpoint.size)
      assert.ok(checkpoint.size > previousSize)
      previousSize = checkpoint.size
    }
    const result = await check(ledger.storeDirectory, { verifierKeys: [ledger.signer.verifier] })
    assert.equal(result.ok, true, describe(result))
    assert.equal(result.checkpointsVerified, stored.length)
    assert.equal(result.latestCheckpoint, result.auditEntries, 'the shutdown checkpoint covers the whole chain')
    const external = splitCheckpointNotes(readFileSync(ledger.checkpointFile, 'utf8'))
    assert.deepEqual(external, stored.map(([, value]) => value.toString('utf8')), 'the file outside holds the same notes')
    const withExternal = await check(ledger.storeDirectory, { verifierKeys: [ledger.signer.verifier], externalCheckpoints: external })
    assert.equal(withExternal.ok, true, describe(withExternal))
    assert.equal(withExternal.checkpointsVerified, 2 * stored.length)
  } finally {
    ledger.remove()
  }
})

test('checkpoints: a holder of the store who rewrites an entry and recomputes every later hash and the head passes the chain, and is caught by a checkpoint', async () => {
  const ledger = await signedLedger()
  try {
    await rewriteHistory(ledger.storeDirectory, 4n)
    const chainOnly = await check(ledger.storeDirectory)
    assert.equal(chainOnly.findingsList.filter((finding) => finding.kind !== 'checkpoint').length, 0, 'the chain and the replay alone do not see it')
    const result = await check(ledger.storeDirectory, { verifierKeys: [ledger.signer.verifier] })
    assert.equal(result.ok, false)
    const rewritten = result.findingsList.filter((finding) => finding.kind === 'checkpoint' && /the chain was rewritten/.test(finding.message))
    assert.ok(rewritten.length >= 1, describe(result))
    assert.ok(rewritten.every((finding) => /^size=\d+$/.test(finding.key) && Number(finding.key.slice(5)) >= 4), describe(result))
  } finally {
    ledger.remove()
  }
})

test('checkpoints: a server given the key refuses to start on a chain rewritten behind its back, instead of signing the forgery', async () => {
  const ledger = await signedLedger()
  try {
    await rewriteHistory(ledger.storeDirectory, 4n)
    const logged: string[] = []
    await assert.rejects(
      LedgerNode.open({ dataDirectory: ledger.directory, cacheRotationThreshold: 4, sync: false, log: (line) => logged.push(line), auditCheckpoints: { signer: ledger.signer } }),
      (error: unknown) => error instanceof AuditHistoryRewritten && /disagrees with the checkpoint this key signed at size \d+/.test(error.message),
    )
    // Under another key (a rotation) the old checkpoints are not this key's to judge: it starts, and says so.
    const rotated = await LedgerNode.open({ dataDirectory: ledger.directory, cacheRotationThreshold: 4, sync: false, log: (line) => logged.push(line), auditCheckpoints: { signer: newSigner() } })
    await rotated.close()
    assert.ok(logged.some((line) => /not verifiable with this key/.test(line)), logged.join('\n'))
  } finally {
    ledger.remove()
  }
})

test('checkpoints: a server restarted on its own untouched store signs on', async () => {
  const ledger = await signedLedger(FIXED_STEPS.slice(0, 5))
  try {
    const node = await LedgerNode.open({ dataDirectory: ledger.directory, cacheRotationThreshold: 4, sync: false, now: clock(Date.UTC(2026, 1, 1)), auditCheckpoints: { signer: ledger.signer, entriesMax: 2 } })
    await runWorkload(node, FIXED_STEPS.slice(5))
    await node.close()
    const result = await check(ledger.storeDirectory, { verifierKeys: [ledger.signer.verifier] })
    assert.equal(result.ok, true, describe(result))
    assert.equal(result.latestCheckpoint, result.auditEntries)
  } finally {
    ledger.remove()
  }
})

test('checkpoints: a rewrite that also deletes the stored checkpoints is caught by the checkpoints kept outside, and by the absence of any', async () => {
  const ledger = await signedLedger()
  try {
    await rewriteHistory(ledger.storeDirectory, 2n)
    const store = await Store.open(ledger.storeDirectory)
    const stored: Buffer[] = []
    for await (const [key] of store.range({ gte: Buffer.of(Zone.auditCheckpoints), lt: Buffer.of(Zone.auditCheckpoints + 1) })) stored.push(key)
    await store.write(stored.map((key) => ({ key, value: null })), { sync: true })
    await store.close()
    const keyOnly = await check(ledger.storeDirectory, { verifierKeys: [ledger.signer.verifier] })
    assert.ok(keyOnly.findingsList.some((finding) => finding.kind === 'checkpoint' && finding.key === 'latest' && /no checkpoint signed by the given key/.test(finding.message)), describe(keyOnly))
    const external = splitCheckpointNotes(readFileSync(ledger.checkpointFile, 'utf8'))
    const result = await check(ledger.storeDirectory, { verifierKeys: [ledger.signer.verifier], externalCheckpoints: external })
    assert.ok(result.findingsList.some((finding) => finding.kind === 'checkpoint' && /^external size=\d+$/.test(finding.key) && /the chain was rewritten/.test(finding.message)), describe(result))
  } finally {
    ledger.remove()
  }
})

test('checkpoints: forged checkpoints (another key, an altered size or hash) are refused', async () => {
  const ledger = await signedLedger()
  try {
    const stored = await rows(ledger.storeDirectory, Zone.auditCheckpoints)
    const [key, value] = stored[1] as [Buffer, Buffer]
    const note = value.toString('utf8')
    const [origin, size, root] = note.split('\n') as [string, string, string]
    const forger = newSigner()
    const forgedHash = signCheckpoint(origin, { seq: BigInt(size), hash: 'ee'.repeat(32) }, forger)
    const alteredSize = note.replace(`\n${size}\n`, `\n${BigInt(size) + 1n}\n`)
    const alteredHash = note.replace(root, Buffer.alloc(32, 7).toString('base64'))
    for (const forged of [forgedHash, alteredSize, alteredHash]) {
      const store = await Store.open(ledger.storeDirectory)
      await store.write([{ key, value: Buffer.from(forged) }], { sync: true })
      await store.close()
      const result = await check(ledger.storeDirectory, { verifierKeys: [ledger.signer.verifier] })
      assert.equal(result.ok, false)
      const finding = result.findingsList.find((candidate) => candidate.kind === 'checkpoint')
      assert.ok(finding !== undefined && finding.key === `size=${size}` && /does not verify with the given verifier key/.test(finding.message), describe(result))
    }
    // A forger's checkpoint given as external is refused the same way.
    const result = await check(ledger.storeDirectory, { verifierKeys: [ledger.signer.verifier], externalCheckpoints: [forgedHash] })
    assert.ok(result.findingsList.some((finding) => finding.key === 'external #1' && /does not verify/.test(finding.message)), describe(result))
    // Signed by the right key for another cluster: refused by its origin.
    const otherLog = signCheckpoint(checkpointOrigin('another-cluster'), { seq: 1n, hash: 'ab'.repeat(32) }, ledger.signer)
    const other = await check(ledger.storeDirectory, { verifierKeys: [ledger.signer.verifier], externalCheckpoints: [otherLog] })
    assert.ok(other.findingsList.some((finding) => finding.kind === 'checkpoint' && /another log/.test(finding.message)), describe(other))
  } finally {
    ledger.remove()
  }
})

test('checkpoints: a store rolled back (an older copy of the data directory) is behind a checkpoint kept outside', async () => {
  const ledger = await signedLedger(FIXED_STEPS.slice(0, 6))
  const temp = tempDirectory('tally-rollback-')
  try {
    const older = path.join(temp.directory, 'older')
    cpSync(ledger.directory, older, { recursive: true })
    const node = await LedgerNode.open({
      dataDirectory: ledger.directory,
      cacheRotationThreshold: 4,
      sync: false,
      now: clock(Date.UTC(2026, 1, 1)),
      auditCheckpoints: { signer: ledger.signer, entriesMax: 3, appendFile: ledger.checkpointFile },
    })
    await runWorkload(node, FIXED_STEPS.slice(6))
    await node.close()
    const external = splitCheckpointNotes(readFileSync(ledger.checkpointFile, 'utf8'))
    const current = await check(ledger.storeDirectory, { verifierKeys: [ledger.signer.verifier], externalCheckpoints: external })
    assert.equal(current.ok, true, describe(current))
    const rolledBack = await check(path.join(older, 'store'), { verifierKeys: [ledger.signer.verifier], externalCheckpoints: external })
    assert.equal(rolledBack.ok, false)
    assert.ok(
      rolledBack.findingsList.some((finding) => finding.kind === 'checkpoint' && /^external size=\d+$/.test(finding.key) && /ahead of the chain.*rolled back/.test(finding.message)),
      describe(rolledBack),
    )
    // Truncation in place: the last entries deleted and the head moved back.
    const store = await Store.open(ledger.storeDirectory)
    const audit: [Buffer, Buffer][] = []
    for await (const row of store.range({ gte: Buffer.of(Zone.audit), lt: Buffer.of(Zone.audit + 1) })) audit.push(row)
    const keep = decodeAuditEntry((audit.at(-3) as [Buffer, Buffer])[1])
    await store.write(
      [...audit.slice(-2).map(([key]) => ({ key, value: null })), { key: metaKey(MetaKey.auditHead), value: Buffer.from(stringifyJson({ seq: keep.seq, hash: keep.hash })) }],
      { sync: true },
    )
    await store.close()
    const truncated = await check(ledger.storeDirectory, { verifierKeys: [ledger.signer.verifier] })
    assert.ok(truncated.findingsList.some((finding) => finding.kind === 'checkpoint' && /^size=\d+$/.test(finding.key) && /ahead of the chain/.test(finding.message)), describe(truncated))
  } finally {
    temp.remove()
    ledger.remove()
  }
})

test('checkpoints: a checkpoint row moved to another size, and key rotation (old and new verifier keys together)', async () => {
  const ledger = await signedLedger(FIXED_STEPS.slice(0, 6))
  try {
    const rotated = newSigner('tally-audit-2')
    const node = await LedgerNode.open({ dataDirectory: ledger.directory, cacheRotationThreshold: 4, sync: false, now: clock(Date.UTC(2026, 1, 1)), auditCheckpoints: { signer: rotated, entriesMax: 3 } })
    await runWorkload(node, FIXED_STEPS.slice(6))
    await node.close()
    const both = await check(ledger.storeDirectory, { verifierKeys: [ledger.signer.verifier, rotated.verifier] })
    assert.equal(both.ok, true, describe(both))
    const newOnly = await check(ledger.storeDirectory, { verifierKeys: [rotated.verifier] })
    assert.ok(newOnly.findingsList.length > 0 && newOnly.findingsList.every((finding) => finding.kind === 'checkpoint' && /signed by a key not given/.test(finding.message)), describe(newOnly))
    const stored = await rows(ledger.storeDirectory, Zone.auditCheckpoints)
    const [key, value] = stored[0] as [Buffer, Buffer]
    const store = await Store.open(ledger.storeDirectory)
    await store.write([{ key, value: null }, { key: auditCheckpointRowKey(key.readBigUInt64BE(1) + 100n), value }], { sync: true })
    await store.close()
    const moved = await check(ledger.storeDirectory, { verifierKeys: [ledger.signer.verifier, rotated.verifier] })
    assert.ok(moved.findingsList.some((finding) => finding.kind === 'checkpoint' && /the row is keyed by size/.test(finding.message)), describe(moved))
  } finally {
    ledger.remove()
  }
})

test('checkpoints: a quiet server still signs within its time bound (no entry count reached)', async () => {
  const temp = tempDirectory('tally-checkpoint-time-')
  const signer = newSigner()
  const node = await LedgerNode.open({ dataDirectory: temp.directory, cacheRotationThreshold: 4, clusterId: CLUSTER, sync: false, now: clock(), auditCheckpoints: { signer, entriesMax: 1_000_000, intervalMs: 10 } })
  try {
    await runWorkload(node, FIXED_STEPS.slice(0, 2))
    const head = node.fsm.auditHead.seq
    const deadline = Date.now() + 10_000
    let latest: string | undefined
    while (Date.now() < deadline) {
      latest = node.auditCheckpoints?.latest()
      if (latest !== undefined && openCheckpoint(latest, [signer.verifier]).size === head) break
      await new Promise((resolve) => setImmediate(resolve))
    }
    assert.ok(latest !== undefined)
    assert.equal(openCheckpoint(latest, [signer.verifier]).size, head)
  } finally {
    await node.close()
    temp.remove()
  }
})

test('checkpoints: GET /_/audit/checkpoint serves the latest note; POST /_/check verifies with the keys in its body', async () => {
  const temp = tempDirectory('tally-checkpoint-api-')
  const signer = newSigner()
  const node = await LedgerNode.open({ dataDirectory: temp.directory, cacheRotationThreshold: 4, clusterId: CLUSTER, sync: false, now: clock(), auditCheckpoints: { signer, entriesMax: 2 } })
  const app = await buildApi(node)
  try {
    await runWorkload(node, FIXED_STEPS)
    const served = await app.inject({ method: 'GET', url: '/_/audit/checkpoint' })
    assert.equal(served.statusCode, 200)
    assert.match(String(served.headers['content-type']), /^text\/plain/)
    const checkpoint = openCheckpoint(served.body, [signer.verifier])
    assert.ok(checkpoint.size >= 2n)
    const checked = await app.inject({ method: 'POST', url: '/_/check', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ verifierKeys: [signer.verifier.text], checkpoints: [served.body] }) })
    const summary = JSON.parse(checked.body.trim().split('\n').at(-1) as string) as { type: string; ok: boolean; checkpointsVerified: number }
    assert.equal(summary.type, 'summary')
    assert.equal(summary.ok, true, checked.body.slice(-3000))
    assert.ok(summary.checkpointsVerified >= 2)
    const wrongKey = await app.inject({ method: 'POST', url: '/_/check', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ verifierKeys: [newSigner().verifier.text] }) })
    assert.match(wrongKey.body, /"kind":"checkpoint"/)
    const bad = await app.inject({ method: 'POST', url: '/_/check', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ verifierKeys: ['not a key'] }) })
    assert.equal(bad.statusCode, 400)
    assert.equal(JSON.parse(bad.body).errorCode, 'VALIDATION')
  } finally {
    await app.close()
    await node.close()
    temp.remove()
  }
  const plain = tempDirectory('tally-checkpoint-api-')
  const unsigned = await LedgerNode.open({ dataDirectory: plain.directory, clusterId: CLUSTER, sync: false })
  const unsignedApp = await buildApi(unsigned)
  try {
    const none = await unsignedApp.inject({ method: 'GET', url: '/_/audit/checkpoint' })
    assert.equal(none.statusCode, 404)
    assert.deepEqual(Object.keys(JSON.parse(none.body)).sort(), ['errorCode', 'errorMessage'])
    assert.match(JSON.parse(none.body).errorMessage, /--audit-key/)
  } finally {
    await unsignedApp.close()
    await unsigned.close()
    plain.remove()
  }
})

test('checkpoints: a signing key or a checkpoint file inside the data directory is refused (also through a symbolic link)', () => {
  const temp = tempDirectory('tally-key-place-')
  try {
    const data = path.join(temp.directory, 'data')
    mkdirSync(data)
    const keyText = `${formatSignerKey('tally-audit', seedOf(generateKeyPairSync('ed25519').privateKey))}\n`
    const inside = path.join(data, 'audit.key')
    writeFileSync(inside, keyText)
    assert.throws(() => loadAuditCheckpointSettings({ dataDirectory: data, keyFile: inside }), (error: unknown) => error instanceof AuditKeyError && /inside the data directory/.test(error.message))
    const link = path.join(temp.directory, 'data-link')
    symlinkSync(data, link)
    assert.throws(() => loadAuditCheckpointSettings({ dataDirectory: data, keyFile: path.join(link, 'audit.key') }), AuditKeyError)
    assert.throws(() => loadAuditCheckpointSettings({ dataDirectory: link, keyFile: inside }), AuditKeyError)
    const notYet = path.join(temp.directory, 'not-created-yet')
    assert.throws(() => loadAuditCheckpointSettings({ dataDirectory: notYet, keyFile: path.join(notYet, 'keys', 'audit.key') }), /inside the data directory/)
    const outside = path.join(temp.directory, 'audit.key')
    writeFileSync(outside, keyText)
    assert.equal(loadAuditCheckpointSettings({ dataDirectory: data, keyFile: outside }).signer.name, 'tally-audit')
    assert.equal(loadAuditCheckpointSettings({ dataDirectory: path.join(temp.directory, 'data2'), keyFile: outside }).signer.name, 'tally-audit', 'a sibling with a common prefix is outside')
    assert.throws(() => loadAuditCheckpointSettings({ dataDirectory: data, keyFile: outside, appendFile: path.join(data, 'checkpoints.txt') }), /checkpoint file .* inside the data directory/)
    writeFileSync(path.join(temp.directory, 'not-a-key'), 'hello\n')
    assert.throws(() => loadAuditCheckpointSettings({ dataDirectory: data, keyFile: path.join(temp.directory, 'not-a-key') }), /is not a signer key/)
    assert.throws(() => loadAuditCheckpointSettings({ dataDirectory: data, keyFile: path.join(temp.directory, 'missing') }), /cannot read the audit key/)
  } finally {
    temp.remove()
  }
})
