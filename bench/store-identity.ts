/**
 * Byte identity across two checkouts: a WAL written by one build, replayed
 * by another, gives the same store, row for row (invariant #2 across a
 * change of the engine that must not change a byte).
 *
 *   node --import tsx bench/store-identity.ts --base ROOT [--cache-rotation K] [--keep DIR]
 *
 * `ROOT` is another checkout of Tally (`git archive <commit> | tar -x -C ROOT`
 * and a `node_modules` link), this file's checkout the other. The base build
 * runs a mixed workload into a fresh data directory — the checker's random
 * steps (transfers with references, metadata, idempotency keys and schemas,
 * reverts, metadata orders, bulks; `test/check/workload.ts`, seeded) then
 * bulks of 100 transfers with keys, references, backdated timestamps and
 * metadata on some, atomic or not — with a fixed clock. This checkout then
 * replays the base's WAL into a data directory of its own (a node applies a
 * WAL it finds beyond its store at start), and every row of the two stores is
 * compared, and `tally check` runs over the base's store with this checkout's
 * replay. Exits non-zero on any difference.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import fc from 'fast-check'
import { LedgerNode } from '../src/server/index.ts'
import { Store } from '../src/store/index.ts'
import { runCheck } from '../src/check/index.ts'
import { storeRows } from '../test/support/ledger.ts'

const { values } = parseArgs({ options: { base: { type: 'string' }, 'cache-rotation': { type: 'string' }, keep: { type: 'string' }, seed: { type: 'string' } } })
if (values.base === undefined) throw new Error('usage: bench/store-identity.ts --base ROOT [--cache-rotation K] [--keep DIR] [--seed S]')
const baseRoot = path.resolve(values.base)
const rotation = Number(values['cache-rotation'] ?? 3)
const seed = Number(values.seed ?? 12)
const directory = values.keep ?? mkdtempSync(path.join(os.tmpdir(), 'tally-store-identity-'))
const written = path.join(directory, 'base')
const replayed = path.join(directory, 'replayed')
const clusterId = 'store-identity'

/** The base checkout's own modules: its node, its workload. */
const fromBase = (file: string): Promise<Record<string, unknown>> => import(pathToFileURL(path.join(baseRoot, file)).href) as Promise<Record<string, unknown>>

interface Workload {
  clock(): () => number
  runWorkload(node: unknown, steps: readonly unknown[]): Promise<void>
  submit(node: unknown, orders: readonly unknown[], options: { atomic: boolean; continueOnFailure: boolean }): Promise<void>
  stepArbitrary: fc.Arbitrary<unknown>
}

async function writeWithBase(): Promise<number> {
  const { LedgerNode: BaseNode } = (await fromBase('src/server/index.ts')) as { LedgerNode: typeof LedgerNode }
  const workload = (await fromBase('test/check/workload.ts')) as unknown as Workload
  const node = await BaseNode.open({ dataDirectory: written, cacheRotationThreshold: rotation, clusterId, sync: false, now: workload.clock() })
  try {
    const [steps] = fc.sample(fc.array(workload.stepArbitrary, { minLength: 300, maxLength: 300 }), { seed, numRuns: 1 })
    await workload.runWorkload(node, steps as unknown[])
    await workload.submit(node, [{ order: { type: 'CREATE_LEDGER', ledger: 'bulk', bucket: '_default', metadata: {}, features: {} } }], { atomic: true, continueOnFailure: false })
    for (let bulk = 0; bulk < 20; bulk++) {
      const orders: unknown[] = []
      for (let i = 0; i < 100; i++) {
        const n = bulk * 100 + i
        const order = {
          type: 'CREATE_TRANSACTION',
          ledger: 'bulk',
          postings: [{ source: n % 3 === 0 ? 'world' : `users:${n % 7}`, destination: `users:${(n * 5) % 11}`, amount: BigInt(n % 9), asset: n % 2 === 0 ? 'EUR' : 'USD/2' }],
          ...(n % 13 === 0 ? { reference: `bulk-${n}` } : {}),
          ...(n % 17 === 0 ? { timestamp: '2025-06-01T00:00:00.5Z' } : {}),
          metadata: n % 5 === 0 ? { n: String(n) } : {},
          accountMetadata: {},
          force: n % 4 === 0,
        }
        orders.push({ order, ...(n % 10 === 0 ? { idempotencyKey: `ik-${n}`, requestHash: `h${n}` } : {}) })
      }
      await workload.submit(node, orders, { atomic: bulk % 3 === 0, continueOnFailure: true })
    }
    return node.fsm.appliedIndex
  } finally {
    await node.close()
  }
}

async function replayHere(): Promise<number> {
  cpSync(path.join(written, 'wal'), path.join(replayed, 'wal'), { recursive: true })
  const node = await LedgerNode.open({ dataDirectory: replayed, cacheRotationThreshold: rotation, clusterId, sync: false })
  try {
    return node.fsm.appliedIndex
  } finally {
    await node.close()
  }
}

try {
  const writtenIndex = await writeWithBase()
  const replayedIndex = await replayHere()
  const [base, here] = [await storeRows(written), await storeRows(replayed)]
  let differing = 0
  for (const [key, value] of base) if (here.get(key) !== value) differing++
  for (const key of here.keys()) if (!base.has(key)) differing++
  const store = await Store.open(path.join(written, 'store'))
  let clean: boolean
  try {
    clean = (await runCheck(store)).ok
  } finally {
    await store.close()
  }
  console.log(`base ${baseRoot} wrote index ${writtenIndex} (${base.size} rows); replayed here to index ${replayedIndex} (${here.size} rows); rows differing: ${differing}; check of the base's store here: ${clean ? 'clean' : 'FINDINGS'}`)
  if (differing !== 0 || !clean || writtenIndex !== replayedIndex) process.exitCode = 1
} finally {
  if (values.keep === undefined) rmSync(directory, { recursive: true, force: true })
}
