/**
 * The read views alone, in process, against checkouts alternately
 * (docs/performance.md, "Reads"): no HTTP, no client, so what a read costs
 * the server's store and views stands out even on a machine shared with
 * other work.
 *
 *   node --import tsx bench/read-views.ts [--root DIR]... [--fill 100000] [--accounts 1000]
 *                                         [--reads 4000] [--rounds 3] [--store DIR [--ledger NAME]] [--spread] [--warm N]
 *
 * Builds a store once: a `tally serve` from this checkout, filled with
 * `--fill` transactions by `tally bench --fill` (every `users:k` funded),
 * then stopped (or takes `--store DIR`, a store directory, whose ledger
 * `--ledger` names, default `views`: `bench/growth-memory.ts --keep` grows
 * one of ledger `growth`). Then, round
 * after round, each root opens a copy of it with its own `Store` and `Views`
 * and times `--reads` of each read: `account(users:k, expand=volumes)` and
 * the first page (15) of `listTransactions` filtered on `$match account
 * users:k`, k drawn in turn. Prints CPU µs per read (process.cpuUsage: every
 * thread, the binding's pool included) and the ratio to the first root.
 * Every root must read the same storage schema.
 *
 * With `--spread` the k of each read is drawn across the accounts
 * (k = i·7919 mod accounts) rather than in turn: neighbouring reads then
 * share no data block, as reads of random accounts do, so what the block
 * cache holds decides. `--warm N` reads N accounts (spread alike, the first
 * of those timed) before each timing instead of 500: a warm-up of every account fills the block cache
 * as a long-running server's would be.
 *
 * Where a root's views answer as the routes do (`accountAnswer`,
 * `transactionListAnswer`: the printed answer), those are timed, with no
 * answer kept (`answerCacheBytes: 0`): what a read that misses costs.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { filledData } from './support/serve.ts'
import { median } from './support/stats.ts'

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    root: { type: 'string', multiple: true },
    fill: { type: 'string', default: '100000' },
    accounts: { type: 'string', default: '1000' },
    reads: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '3' },
    store: { type: 'string' },
    spread: { type: 'boolean', default: false },
    warm: { type: 'string' },
    ledger: { type: 'string', default: 'views' },
  },
})
const roots = (values.root ?? [here]).map((root) => path.resolve(root))
const accounts = Number(values.accounts)
const reads = Number(values.reads)
const warm = values.warm === undefined ? undefined : Number(values.warm)
/** The account the at-th read asks for (see --spread). */
const accountAt = (at: number): string => `users:${values.spread ? (at * 7919) % accounts : at % accounts}`
const ledger = values.ledger

async function filledStore(directory: string): Promise<string> {
  const data = path.join(directory, 'data')
  await filledData(here, data, { ledger, accounts, transactions: values.fill })
  return path.join(data, 'store')
}

interface Checkout {
  readonly root: string
  readonly Store: { open(directory: string): Promise<{ close(): Promise<void> }> }
  readonly Views: new (store: unknown, options?: { answerCacheBytes: number }) => {
    account(ledger: string, address: string, expand: object): Promise<unknown>
    listTransactions(ledger: string, request: unknown, filter: unknown): Promise<unknown>
    accountAnswer?(ledger: string, address: string, expand: object): string | Promise<string>
    transactionListAnswer?(ledger: string, request: unknown, filter: unknown, expand: object): string | Promise<string>
  }
  readonly parsePageRequest: (query: Record<string, string>, key: Buffer) => unknown
  readonly cursorKeyOf: (clusterId: string) => Buffer
  readonly parseFilter: (resource: 'transactions', input: unknown) => unknown
}

async function load(root: string): Promise<Checkout> {
  const store = await import(path.join(root, 'src/store/index.ts'))
  const views = await import(path.join(root, 'src/api/views.ts'))
  const paging = await import(path.join(root, 'src/api/paging.ts'))
  const query = await import(path.join(root, 'src/query/index.ts'))
  return { root, Store: store.Store, Views: views.Views, parsePageRequest: paging.parsePageRequest, cursorKeyOf: paging.cursorKeyOf, parseFilter: query.parseFilter }
}

async function timed(count: number, read: (at: number) => Promise<unknown>): Promise<number> {
  for (let at = 0; at < (warm ?? Math.min(500, count)); at++) await read(at)
  const before = process.cpuUsage()
  for (let at = 0; at < count; at++) await read(at)
  const used = process.cpuUsage(before)
  return (used.user + used.system) / count
}

const work = await mkdtemp(path.join(os.tmpdir(), 'tally-read-views-'))
try {
  const source = values.store ?? (await filledStore(work))
  const checkouts = await Promise.all(roots.map(load))
  const results = new Map<string, { account: number[]; list: number[] }>(roots.map((root) => [root, { account: [], list: [] }]))
  process.stdout.write(`store: ${values.store ?? `fill of ${values.fill} transactions over ${accounts} accounts`}; ${reads} reads of each kind per root and round\n\n`)
  process.stdout.write('| round | root | account, expand=volumes (CPU µs/read) | first page of 15, $match account (CPU µs/read) |\n| --- | --- | --- | --- |\n')
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const checkout of checkouts) {
      // A copy per run: each opens the store as a restarted server would.
      const copy = path.join(work, `copy-${round}-${roots.indexOf(checkout.root)}`)
      await cp(source, copy, { recursive: true })
      const store = await checkout.Store.open(copy)
      try {
        const views = new checkout.Views(store, { answerCacheBytes: 0 })
        const key = checkout.cursorKeyOf('read-views')
        const expand = { volumes: true, effectiveVolumes: false }
        const account = await timed(reads, async (at) =>
          views.accountAnswer === undefined ? views.account(ledger, accountAt(at), expand) : views.accountAnswer(ledger, accountAt(at), expand),
        )
        const list = await timed(reads, async (at) => {
          const request = checkout.parsePageRequest({ pageSize: '15' }, key)
          const filter = checkout.parseFilter('transactions', { $match: { account: accountAt(at) } })
          return views.transactionListAnswer === undefined
            ? views.listTransactions(ledger, request, filter)
            : views.transactionListAnswer(ledger, request, filter, { volumes: false, effectiveVolumes: false })
        })
        results.get(checkout.root)?.account.push(account)
        results.get(checkout.root)?.list.push(list)
        process.stdout.write(`| ${round} | ${path.basename(checkout.root)} | ${account.toFixed(1)} | ${list.toFixed(1)} |\n`)
      } finally {
        await store.close()
        await rm(copy, { recursive: true, force: true })
      }
    }
  }
  const first = results.get(roots[0] as string) as { account: number[]; list: number[] }
  process.stdout.write('\n| root | account µs/read (median) | list page µs/read (median) |\n| --- | --- | --- |\n')
  for (const root of roots) {
    const mine = results.get(root) as { account: number[]; list: number[] }
    const ratio = (values: number[], base: number[]): string => (root === roots[0] ? '' : ` (÷ ${(median(base) / median(values)).toFixed(2)})`)
    process.stdout.write(`| ${path.basename(root)} | ${median(mine.account).toFixed(1)}${ratio(mine.account, first.account)} | ${median(mine.list).toFixed(1)}${ratio(mine.list, first.list)} |\n`)
  }
} finally {
  await rm(work, { recursive: true, force: true })
}
