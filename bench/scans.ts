/**
 * Whole-range store scans, against checkouts alternately (docs/performance.md,
 * "Store scans in batches"): the boot's cache restore, a server's restart to
 * `listening`, a filtered transaction count, and aggregate balances (now, and
 * at a point in time, which reads every account's history).
 *
 *   node --import tsx bench/scans.ts [--root DIR]... [--fill 200000] [--accounts 1000]
 *                                    [--rounds 2] [--data DIR]
 *
 * Builds a data directory once: a `tally serve` from this checkout, filled
 * with `--fill` transactions by `tally bench --fill`, then stopped (or takes
 * `--data DIR`, a stopped server's data directory). Then, round after round,
 * each root gets a fresh copy of it and is timed: `tally serve` from start to
 * its `listening` line (the WAL scan and the cache restore included), then, in
 * process with its own `Store` and `Views`, each scan. Prints CPU ms
 * (process.cpuUsage: every thread, the binding's pool included) and wall ms per
 * scan, and the ratio of medians to the first root. Every root must read the
 * same storage schema.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { filledData, serveTally } from './support/serve.ts'
import { median } from './support/stats.ts'

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    root: { type: 'string', multiple: true },
    fill: { type: 'string', default: '200000' },
    accounts: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '2' },
    data: { type: 'string' },
  },
})
const roots = (values.root ?? [here]).map((root) => path.resolve(root))
const accounts = Number(values.accounts)
const ledger = 'scans'

async function filledDataDirectory(directory: string): Promise<string> {
  const data = path.join(directory, 'data')
  await filledData(here, data, { ledger, accounts, transactions: values.fill as string })
  return data
}

interface Checkout {
  readonly root: string
  readonly store: {
    Store: { open(directory: string): Promise<{ get(key: Buffer): Promise<Buffer | undefined>; close(): Promise<void> }> }
    metaKey(kind: unknown): Buffer
    MetaKey: { appliedIndex: unknown; cacheState: unknown }
  }
  readonly Views: new (store: unknown) => { countTransactions(ledger: string, filter: unknown): Promise<bigint> }
  readonly aggregateBalances: (views: unknown, ledger: string, filter: unknown, options: { pit?: string; useInsertionDate: boolean }) => Promise<unknown>
  readonly restoreCache: (store: unknown, state: unknown, appliedIndex: number) => Promise<unknown>
  readonly decodeCacheState: (row: Buffer) => unknown
  readonly parseFilter: (resource: 'transactions', input: unknown) => unknown
}

async function load(root: string): Promise<Checkout> {
  const store = await import(path.join(root, 'src/store/index.ts'))
  const views = await import(path.join(root, 'src/api/views.ts'))
  const aggregates = await import(path.join(root, 'src/api/aggregates.ts'))
  const restore = await import(path.join(root, 'src/server/cache-restore.ts'))
  const fsm = await import(path.join(root, 'src/fsm/index.ts'))
  const query = await import(path.join(root, 'src/query/index.ts'))
  return {
    root,
    store,
    Views: views.Views,
    aggregateBalances: aggregates.aggregateBalances,
    restoreCache: restore.restoreCache,
    decodeCacheState: fsm.decodeCacheState,
    parseFilter: query.parseFilter,
  }
}

interface Cost {
  cpuMs: number
  wallMs: number
}

async function timed(times: number, scan: () => Promise<unknown>): Promise<Cost> {
  await scan()
  const before = process.cpuUsage()
  const started = performance.now()
  for (let at = 0; at < times; at++) await scan()
  const used = process.cpuUsage(before)
  return { cpuMs: (used.user + used.system) / 1000 / times, wallMs: (performance.now() - started) / times }
}

const scans = ['restart to listening (wall)', 'cache restore', 'count, $match account', 'aggregate balances', 'aggregate balances at pit'] as const
type Scan = (typeof scans)[number]

const work = await mkdtemp(path.join(os.tmpdir(), 'tally-scans-'))
try {
  const source = values.data ?? (await filledDataDirectory(work))
  const checkouts = await Promise.all(roots.map(load))
  const results = new Map<string, Map<Scan, Cost[]>>(roots.map((root) => [root, new Map(scans.map((scan) => [scan, []]))]))
  const record = (root: string, scan: Scan, cost: Cost) => results.get(root)?.get(scan)?.push(cost)
  process.stdout.write(`data: ${values.data ?? `fill of ${values.fill} transactions over ${accounts} accounts`}\n\n`)
  process.stdout.write(`| round | root | load average | ${scans.map((scan) => `${scan} (CPU / wall ms)`).join(' | ')} |\n| --- | --- | --- |${scans.map(() => ' --- |').join('')}\n`)
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const checkout of checkouts) {
      const load = os.loadavg()[0]?.toFixed(1)
      // A copy per run: each opens the data as a restarted server would.
      const copy = path.join(work, `copy-${round}-${roots.indexOf(checkout.root)}`)
      await cp(source, copy, { recursive: true })
      try {
        const server = await serveTally(checkout.root, copy)
        await server.stop()
        record(checkout.root, 'restart to listening (wall)', { cpuMs: Number.NaN, wallMs: server.startMs })
        const store = await checkout.store.Store.open(path.join(copy, 'store'))
        try {
          const applied = Number((await store.get(checkout.store.metaKey(checkout.store.MetaKey.appliedIndex)))?.toString('utf8') ?? '0')
          const state = checkout.decodeCacheState((await store.get(checkout.store.metaKey(checkout.store.MetaKey.cacheState))) as Buffer)
          record(checkout.root, 'cache restore', await timed(3, () => checkout.restoreCache(store, state, applied)))
          const views = new checkout.Views(store)
          let k = 0
          record(checkout.root, 'count, $match account', await timed(3, () => views.countTransactions(ledger, checkout.parseFilter('transactions', { $match: { account: `users:${k++ % accounts}` } }))))
          record(checkout.root, 'aggregate balances', await timed(5, () => checkout.aggregateBalances(views, ledger, undefined, { useInsertionDate: false })))
          record(checkout.root, 'aggregate balances at pit', await timed(2, () => checkout.aggregateBalances(views, ledger, undefined, { pit: '2999-01-01T00:00:00Z', useInsertionDate: false })))
        } finally {
          await store.close()
        }
      } finally {
        await rm(copy, { recursive: true, force: true })
      }
      const mine = results.get(checkout.root) as Map<Scan, Cost[]>
      const cells = scans.map((scan) => {
        const cost = mine.get(scan)?.at(-1) as Cost
        return Number.isNaN(cost.cpuMs) ? `${cost.wallMs.toFixed(0)}` : `${cost.cpuMs.toFixed(1)} / ${cost.wallMs.toFixed(1)}`
      })
      process.stdout.write(`| ${round} | ${path.basename(checkout.root)} | ${load} | ${cells.join(' | ')} |\n`)
    }
  }
  process.stdout.write(`\n| root | ${scans.map((scan) => `${scan}, median CPU / wall ms`).join(' | ')} |\n| --- |${scans.map(() => ' --- |').join('')}\n`)
  const first = results.get(roots[0] as string) as Map<Scan, Cost[]>
  for (const root of roots) {
    const mine = results.get(root) as Map<Scan, Cost[]>
    const cells = scans.map((scan) => {
      const costs = mine.get(scan) as Cost[]
      const base = first.get(scan) as Cost[]
      const cpu = median(costs.map((cost) => cost.cpuMs))
      const wall = median(costs.map((cost) => cost.wallMs))
      const ratio = root === roots[0] ? '' : ` (CPU ÷ ${(median(base.map((cost) => cost.cpuMs)) / cpu).toFixed(2)}, wall ÷ ${(median(base.map((cost) => cost.wallMs)) / wall).toFixed(2)})`
      return Number.isNaN(cpu) ? `${wall.toFixed(0)}${root === roots[0] ? '' : ` (÷ ${(median(base.map((cost) => cost.wallMs)) / wall).toFixed(2)})`}` : `${cpu.toFixed(1)} / ${wall.toFixed(1)}${ratio}`
    })
    process.stdout.write(`| ${path.basename(root)} | ${cells.join(' | ')} |\n`)
  }
} finally {
  await rm(work, { recursive: true, force: true })
}
