import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/index.ts'
import { MetaKey, STORAGE_SCHEMA_VERSION, SchemaVersionMismatch, Store, Zone, metaKey } from '../../src/store/index.ts'
import { decodeRowValue, encodeAttribute } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { FIXED_STEPS, clock, runWorkload } from './workload.ts'

const TALLY = fileURLToPath(new URL('../../bin/tally.mjs', import.meta.url))

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs the real CLI in a child process: a separate process, as an operator's would be (RocksDB locks are per process). */
function tally(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [TALLY, ...args], { env: { ...process.env, TALLY_TARGET: '', TALLY_DATA: '' }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 99
      resolve({ code, stdout, stderr })
    })
    if (input !== undefined) child.stdin?.end(input)
  })
}

async function populated(directory: string): Promise<void> {
  const node = await LedgerNode.open({ dataDirectory: directory, cacheRotationThreshold: 3, clusterId: 'cli-cluster', sync: false, now: clock() })
  await runWorkload(node, FIXED_STEPS)
  await node.close()
}

test('schema guard: a store written by another schema version is refused, by Store.open and by check, export and import', async () => {
  const temp = tempDirectory('tally-schema-')
  try {
    await populated(temp.directory)
    const store = await Store.open(path.join(temp.directory, 'store'))
    await store.write([{ key: metaKey(MetaKey.schemaVersion), value: Buffer.from(String(STORAGE_SCHEMA_VERSION + 1)) }], { sync: true })
    await store.close()
    await assert.rejects(Store.open(path.join(temp.directory, 'store')), (error: unknown) => {
      assert.ok(error instanceof SchemaVersionMismatch)
      assert.match(error.message, new RegExp(`schema version ${STORAGE_SCHEMA_VERSION + 1}.*reads version ${STORAGE_SCHEMA_VERSION}; refusing to open`))
      assert.match(error.message, /tally export/)
      return true
    })
    for (const args of [['check', '--data', temp.directory], ['export', '--data', temp.directory, '--ledger', 'main'], ['import', '--data', temp.directory, '--ledger', 'fresh']]) {
      const run = await tally(args, '')
      assert.equal(run.code, 2, `${args[0]}: ${run.stderr}`)
      assert.match(run.stderr, /refusing to open/, args[0])
      assert.equal(run.stdout, '')
    }
  } finally {
    temp.remove()
  }
})

test('tally check --data: OK (exit 0) on a clean store, FINDING naming kind and key (exit 1) after tampering; no store is created where there is none', async () => {
  const temp = tempDirectory('tally-cli-check-')
  try {
    await populated(temp.directory)
    const clean = await tally(['check', '--data', temp.directory])
    assert.equal(clean.code, 0, clean.stderr + clean.stdout)
    assert.match(clean.stdout, /^check: OK — \d+ audit entries, \d+ orders replayed, applied index \d+/m)
    assert.match(clean.stderr, /check (scan|replay|compare): /, 'plain progress lines off a terminal')

    const store = await Store.open(path.join(temp.directory, 'store'))
    let volumes: [Buffer, Buffer] | undefined
    for await (const row of store.range({ gte: Buffer.of(Zone.attributes, 'v'.charCodeAt(0)) })) {
      volumes = row
      break
    }
    assert.ok(volumes !== undefined)
    const moved = decodeRowValue('v', volumes[1])
    await store.write([{ key: volumes[0], value: encodeAttribute({ kind: 'v', value: { input: moved.input + 1n, output: moved.output } }).bytes }], { sync: true })
    await store.close()
    const tampered = await tally(['check', '--data', temp.directory, '--json'])
    assert.equal(tampered.code, 1, tampered.stderr)
    const [finding, summary] = tampered.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
    assert.equal(finding?.type, 'finding')
    assert.equal(finding?.kind, 'volumes')
    assert.match(String(finding?.key), /^ledger=\w+ account=\S+ asset=\S+$/)
    assert.equal(summary?.ok, false)

    const missing = await tally(['check', '--data', path.join(temp.directory, 'nope')])
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /no Tally data directory/)
  } finally {
    temp.remove()
  }
})

test('tally check on a directory a server holds: refused with the way out; --target checks through the server', async () => {
  const temp = tempDirectory('tally-cli-live-')
  const node = await LedgerNode.open({ dataDirectory: temp.directory, cacheRotationThreshold: 3, clusterId: 'cli-cluster', sync: false, now: clock() })
  const app = await buildApi(node)
  try {
    await runWorkload(node, FIXED_STEPS)
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    assert.ok(address !== null && typeof address === 'object')
    const locked = await tally(['check', '--data', temp.directory])
    assert.equal(locked.code, 2, locked.stderr)
    assert.match(locked.stderr, /in use by another process/)
    assert.match(locked.stderr, /POST \/_\/check/)
    assert.match(locked.stderr, /tally check --target/)
    const remote = await tally(['check', '--target', `http://127.0.0.1:${address.port}`])
    assert.equal(remote.code, 0, remote.stderr + remote.stdout)
    assert.match(remote.stdout, /check: OK/)

    const exportLocked = await tally(['export', '--data', temp.directory, '--ledger', 'main'])
    assert.equal(exportLocked.code, 2)
    assert.match(exportLocked.stderr, /--target/)
    const exported = await tally(['export', '--target', `http://127.0.0.1:${address.port}`, '--ledger', 'main'])
    assert.equal(exported.code, 0, exported.stderr)
    const imported = await tally(['import', '--target', `http://127.0.0.1:${address.port}`, '--ledger', 'copy'], exported.stdout)
    assert.equal(imported.code, 0, imported.stderr)
    const again = await tally(['export', '--target', `http://127.0.0.1:${address.port}`, '--ledger', 'copy'])
    assert.equal(again.stdout, exported.stdout)
    const forged = await tally(['import', '--target', `http://127.0.0.1:${address.port}`, '--ledger', 'forged'], exported.stdout.replace(/"hash":"[^"]{4}/, '"hash":"AAAA'))
    assert.equal(forged.code, 1)
    assert.match(forged.stderr, /IMPORT.*log 0: invalid hash/)
  } finally {
    await app.close()
    await node.close()
    temp.remove()
  }
})

test('tally export --data → tally import --data into a new directory → tally check passes there', async () => {
  const source = tempDirectory('tally-cli-src-')
  const target = tempDirectory('tally-cli-dst-')
  try {
    await populated(source.directory)
    const file = path.join(source.directory, 'main.jsonl')
    const exported = await tally(['export', '--data', source.directory, '--ledger', 'main', '--out', file])
    assert.equal(exported.code, 0, exported.stderr)
    const imported = await tally(['import', '--data', target.directory, '--ledger', 'main', '--in', file])
    assert.equal(imported.code, 0, imported.stderr)
    assert.match(imported.stderr, /import: \d+ logs into ledger main/)
    const check = await tally(['check', '--data', target.directory])
    assert.equal(check.code, 0, check.stdout + check.stderr)
    const back = path.join(target.directory, 'back.jsonl')
    assert.equal((await tally(['export', '--data', target.directory, '--ledger', 'main', '--out', back])).code, 0)
    assert.equal(readFileSync(back, 'utf8'), readFileSync(file, 'utf8'))
    const unknown = await tally(['export', '--data', target.directory, '--ledger', 'nope'])
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /ledger nope not found/)
    writeFileSync(path.join(target.directory, 'empty.jsonl'), '')
  } finally {
    source.remove()
    target.remove()
  }
})
