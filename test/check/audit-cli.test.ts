import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { LedgerNode, loadAuditCheckpointSettings } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/index.ts'
import { MetaKey, Store, Zone, auditRowKey, metaKey } from '../../src/store/index.ts'
import { chainEntry, decodeAuditEntry, parseSignerKey } from '../../src/audit/index.ts'
import type { AuditEntry } from '../../src/audit/index.ts'
import { stringifyJson } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { FIXED_STEPS, clock, runWorkload } from './workload.ts'

const TALLY = fileURLToPath(new URL('../../bin/tally.mjs', import.meta.url))
const CLUSTER = 'audit-cli-cluster'

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

function tally(args: string[]): Promise<Run> {
  const env = { ...process.env, TALLY_TARGET: '', TALLY_DATA: '', TALLY_AUDIT_KEY: '', TALLY_AUDIT_VERIFIER_KEY: '', TALLY_LISTEN: '127.0.0.1:0' }
  return new Promise((resolve) => {
    execFile(process.execPath, [TALLY, ...args], { env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 99, stdout, stderr })
    })
  })
}

test('tally audit-key writes a 0600 signer key, never overwrites it, and prints the verifier key; --show prints it again', async () => {
  const temp = tempDirectory('tally-audit-key-')
  try {
    const file = path.join(temp.directory, 'audit.key')
    const made = await tally(['audit-key', '--out', file, '--name', 'bank-ledger'])
    assert.equal(made.code, 0, made.stderr)
    const verifierKey = made.stdout.trim()
    assert.match(verifierKey, /^bank-ledger\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/)
    assert.equal(statSync(file).mode & 0o777, 0o600)
    const signer = parseSignerKey(readFileSync(file, 'utf8'))
    assert.equal(signer.verifier.text, verifierKey)
    const again = await tally(['audit-key', '--out', file])
    assert.equal(again.code, 2)
    assert.match(again.stderr, /exists; refusing to overwrite/)
    assert.equal(parseSignerKey(readFileSync(file, 'utf8')).verifier.text, verifierKey, 'the key is untouched')
    const shown = await tally(['audit-key', '--show', file])
    assert.equal(shown.stdout.trim(), verifierKey)
    const badName = await tally(['audit-key', '--out', path.join(temp.directory, 'other.key'), '--name', 'a+b'])
    assert.equal(badName.code, 2)
    assert.match(badName.stderr, /no spaces and no \+/)
  } finally {
    temp.remove()
  }
})

test('tally serve refuses a signing key inside its data directory in one line, before creating anything', async () => {
  const temp = tempDirectory('tally-serve-key-')
  try {
    const data = path.join(temp.directory, 'data')
    mkdirSync(data)
    const key = path.join(data, 'audit.key')
    assert.equal((await tally(['audit-key', '--out', key])).code, 0)
    const refused = await tally(['serve', '--data', data, '--audit-key', key])
    assert.equal(refused.code, 1)
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr)
    assert.match(refused.stderr, /^tally serve: the audit key .* lies inside the data directory/)
    assert.doesNotMatch(refused.stderr, /\bat \w+ \(/, 'no stack trace')
    assert.throws(() => statSync(path.join(data, 'store')), 'no store was created')
    const orphan = await tally(['serve', '--data', data, '--audit-checkpoint-file', path.join(temp.directory, 'c.txt')])
    assert.equal(orphan.code, 1)
    assert.match(orphan.stderr, /need --audit-key/)
  } finally {
    temp.remove()
  }
})

test('tally check --verifier-key --checkpoints: OK on the signed store, exit 1 once history is rewritten; --target sends the keys to the server', async () => {
  const temp = tempDirectory('tally-check-signed-')
  try {
    const data = path.join(temp.directory, 'data')
    const keyFile = path.join(temp.directory, 'audit.key')
    const checkpointFile = path.join(temp.directory, 'checkpoints.txt')
    const made = await tally(['audit-key', '--out', keyFile])
    const verifierFile = path.join(temp.directory, 'audit.pub')
    writeFileSync(verifierFile, made.stdout)
    const settings = loadAuditCheckpointSettings({ dataDirectory: data, keyFile, appendFile: checkpointFile, entriesMax: 4 })
    const node = await LedgerNode.open({ dataDirectory: data, cacheRotationThreshold: 3, clusterId: CLUSTER, sync: false, now: clock(), auditCheckpoints: settings })
    const app = await buildApi(node)
    try {
      await runWorkload(node, FIXED_STEPS)
      await app.listen({ host: '127.0.0.1', port: 0 })
      const address = app.server.address()
      assert.ok(address !== null && typeof address === 'object')
      const remote = await tally(['check', '--target', `http://127.0.0.1:${address.port}`, '--verifier-key', made.stdout.trim(), '--checkpoints', checkpointFile])
      assert.equal(remote.code, 0, remote.stdout + remote.stderr)
      assert.match(remote.stdout, /checkpoints: \d+ signed checkpoint\(s\) verified/)
    } finally {
      await app.close()
      await node.close()
    }
    const clean = await tally(['check', '--data', data, '--verifier-key', verifierFile, '--checkpoints', checkpointFile])
    assert.equal(clean.code, 0, clean.stdout + clean.stderr)
    assert.match(clean.stdout, /^checkpoints: \d+ signed checkpoint\(s\) verified; the latest covers (\d+) of \1 audit entries$/m)

    const unsigned = await tally(['check', '--data', data])
    assert.equal(unsigned.code, 0)
    assert.match(unsigned.stdout, /signatures not checked \(give --verifier-key\)/)
    const noKey = await tally(['check', '--data', data, '--checkpoints', checkpointFile])
    assert.equal(noKey.code, 2)
    assert.match(noKey.stderr, /--checkpoints needs --verifier-key/)

    // A holder of the store rewrites entry 3 and re-hashes everything after it, head included.
    const store = await Store.open(path.join(data, 'store'))
    const entries: AuditEntry[] = []
    for await (const [, value] of store.range({ gte: auditRowKey(3n), lt: Buffer.of(Zone.audit + 1) })) entries.push(decodeAuditEntry(value))
    let previousHash = (entries[0] as AuditEntry).previousHash
    const writes: { key: Buffer; value: Buffer }[] = []
    for (const entry of entries) {
      const { seq, previousHash: _previous, hash: _hash, ...body } = entry
      const encoded = chainEntry(CLUSTER, { seq: seq - 1n, hash: previousHash }, seq === 3n ? { ...body, proposalId: 'rewritten' } : body)
      writes.push({ key: auditRowKey(seq), value: encoded.row })
      previousHash = encoded.hash
    }
    writes.push({ key: metaKey(MetaKey.auditHead), value: Buffer.from(stringifyJson({ seq: (entries.at(-1) as AuditEntry).seq, hash: previousHash })) })
    await store.write(writes, { sync: true })
    await store.close()
    const rewritten = await tally(['check', '--data', data, '--json', '--verifier-key', verifierFile, '--checkpoints', checkpointFile])
    assert.equal(rewritten.code, 1, rewritten.stderr)
    const findings = rewritten.stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string; kind?: string; message?: string })
    assert.ok(findings.some((finding) => finding.type === 'finding' && finding.kind === 'checkpoint' && /the chain was rewritten/.test(finding.message ?? '')))
    assert.ok(findings.every((finding) => finding.type === 'summary' || finding.kind === 'checkpoint'), 'only the checkpoints see it')
  } finally {
    temp.remove()
  }
})
