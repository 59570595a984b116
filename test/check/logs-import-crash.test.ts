import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readdirSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { LedgerNode } from '../../src/server/index.ts'
import { exportLogLines } from '../../src/check/index.ts'
import type { AccountAddress, Asset, Metadata } from '../../src/domain/index.ts'
import type { ProposedOrder } from '../../src/orders/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { MAIN, assertCheckClean } from '../support/ledger.ts'

/**
 * `tally import --data` SIGKILLed while several groups are in flight: the
 * ledger recovered from its WAL must hold a prefix of the stream — whole
 * groups, in order, with their hashes — and check clean (the sequence
 * appends a group only after the one before it was applied, so no later
 * group can be durable without the earlier ones).
 */

const TALLY = fileURLToPath(new URL('../../bin/tally.mjs', import.meta.url))
const bulks = 40
const bulkOrders = 100

async function exportText(node: LedgerNode): Promise<string> {
  let text = ''
  for await (const line of exportLogLines(node.store, MAIN)) text += line
  return text
}

function directoryBytes(directory: string): number {
  let total = 0
  try {
    for (const name of readdirSync(directory)) total += statSync(path.join(directory, name)).size
  } catch {
    return 0
  }
  return total
}

test('a SIGKILLed import leaves a verified prefix of the stream that checks clean', async () => {
  const source = tempDirectory('tally-import-crash-source-')
  const target = tempDirectory('tally-import-crash-target-')
  try {
    let t = Date.UTC(2026, 0, 1)
    const node = await LedgerNode.open({ dataDirectory: source.directory, clusterId: 'import-crash', sync: false, now: () => (t += 1) })
    await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger: MAIN, bucket: '_default', metadata: {}, features: {} } }], { atomic: true, continueOnFailure: false })
    for (let bulk = 0; bulk < bulks; bulk++) {
      const orders: ProposedOrder[] = Array.from({ length: bulkOrders }, (_, i) => ({
        order: {
          type: 'CREATE_TRANSACTION',
          ledger: MAIN,
          postings: [{ source: 'world' as AccountAddress, destination: `users:${(bulk * 31 + i) % 50}` as AccountAddress, amount: BigInt(1 + i), asset: 'USD/2' as Asset }],
          metadata: (i % 7 === 0 ? { bulk: String(bulk) } : {}) as Metadata,
          accountMetadata: {},
          force: true,
        },
      }))
      await node.admission.submit(orders, { atomic: true, continueOnFailure: false })
    }
    const exported = await exportText(node)
    await node.close()
    const lines = exported.split('\n').filter((line) => line !== '')
    assert.equal(lines.length, bulks * bulkOrders)
    const file = path.join(source.directory, 'logs.jsonl')
    writeFileSync(file, exported)

    const child = spawn(process.execPath, [TALLY, 'import', '--data', target.directory, '--ledger', MAIN, '--in', file], { env: { ...process.env, TALLY_TARGET: '', TALLY_DATA: '' }, stdio: 'ignore' })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    let exitCode: number | null | undefined
    void exited.then((code) => (exitCode = code))
    // Killed once its WAL holds some groups (polling with a deadline; it may also finish first).
    const deadline = Date.now() + 60_000
    const wal = path.join(target.directory, 'wal')
    while (exitCode === undefined && directoryBytes(wal) < 64 * 1024 && Date.now() < deadline) await new Promise<void>((resolve) => setImmediate(resolve))
    const killedMidway = exitCode === undefined
    child.kill('SIGKILL')
    await exited
    assert.ok(killedMidway, 'the import was killed before it finished')

    const recovered = await LedgerNode.open({ dataDirectory: target.directory })
    const held = (await exportText(recovered).catch(() => '')).split('\n').filter((line) => line !== '')
    await recovered.close()
    assert.deepEqual(held, lines.slice(0, held.length), 'a prefix of the stream, hashes included')
    assert.equal(held.length % bulkOrders, 0, `whole groups: ${held.length} logs`)
    await assertCheckClean(target.directory)
  } finally {
    source.remove()
    target.remove()
  }
})
