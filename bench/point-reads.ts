/**
 * `Store.getManySync` alone, in process, against checkouts alternately: CPU
 * per call for one key (a transaction read by id, an admission's few rows)
 * and per key for ten (a turn's missed get-accounts, a page's rows), random
 * keys of a store of `--rows` rows shaped like account rows, flushed to
 * table files (each root opens its own copy, as a restarted server would).
 *
 *   node --import tsx bench/point-reads.ts [--root DIR]... [--rows 50000] [--calls 100000] [--rounds 5]
 *
 * Prints each run's CPU µs (process.cpuUsage: every thread) and, per root,
 * the median and the median of the per-round ratios to the first root.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { median } from './support/stats.ts'

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    root: { type: 'string', multiple: true },
    rows: { type: 'string', default: '50000' },
    calls: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '5' },
  },
})
const roots = (values.root ?? [here]).map((root) => path.resolve(root))
const rows = Number(values.rows)
const calls = Number(values.calls)

interface PointReader {
  getManySync(keys: readonly Buffer[]): (Buffer | undefined)[]
  write(rows: { key: Buffer; value: Buffer | null }[], options: { sync: boolean }): Promise<void>
  close(): Promise<void>
}
type StoreClass = { open(directory: string): Promise<PointReader> }

const keyOf = (at: number): Buffer => Buffer.from(`\u00f1aledger\u0000users:${at}`, 'latin1')
const keys = Array.from({ length: rows }, (_, at) => keyOf(at))

function timed(store: PointReader, perCall: number): number {
  let at = 0
  const run = (count: number): void => {
    for (let call = 0; call < count; call++) {
      const asked: Buffer[] = []
      for (let n = 0; n < perCall; n++) asked.push(keys[(at++ * 7919) % rows] as Buffer)
      store.getManySync(asked)
    }
  }
  run(Math.min(5000, calls))
  const before = process.cpuUsage()
  run(calls / perCall)
  const used = process.cpuUsage(before)
  return (used.user + used.system) / calls
}

const work = await mkdtemp(path.join(os.tmpdir(), 'tally-point-reads-'))
try {
  const Stores = new Map<string, StoreClass>()
  for (const root of roots) Stores.set(root, ((await import(path.join(root, 'src/store/index.ts'))) as { Store: StoreClass }).Store)
  const source = path.join(work, 'source')
  const filling = await (Stores.get(roots[0] as string) as StoreClass).open(source)
  for (let from = 0; from < rows; from += 5000) {
    await filling.write(keys.slice(from, from + 5000).map((key, n) => ({ key, value: Buffer.alloc(150, (from + n) & 0xff) })), { sync: false })
  }
  await filling.close()
  const results = new Map<string, { one: number[]; ten: number[] }>(roots.map((root) => [root, { one: [], ten: [] }]))
  process.stdout.write(`${rows} rows, ${calls} keys read per measure and run\n\n| round | root | 1 key per call (CPU µs/call) | 10 keys per call (CPU µs/key) | load |\n| --- | --- | --- | --- | --- |\n`)
  for (let round = 1; round <= Number(values.rounds); round++) {
    const order = round % 2 === 1 ? roots : [...roots].reverse()
    for (const root of order) {
      const copy = path.join(work, `copy-${round}-${roots.indexOf(root)}`)
      await cp(source, copy, { recursive: true })
      const store = await (Stores.get(root) as StoreClass).open(copy)
      try {
        const one = timed(store, 1)
        const ten = timed(store, 10)
        results.get(root)?.one.push(one)
        results.get(root)?.ten.push(ten)
        process.stdout.write(`| ${round} | ${path.basename(root)} | ${one.toFixed(2)} | ${ten.toFixed(2)} | ${os.loadavg().map((load) => load.toFixed(1)).join(' ')} |\n`)
      } finally {
        await store.close()
        await rm(copy, { recursive: true, force: true })
      }
    }
  }
  const first = results.get(roots[0] as string) as { one: number[]; ten: number[] }
  process.stdout.write('\n| root | 1 key, µs/call (median; paired ratio median) | 10 keys, µs/key (median; paired ratio median) |\n| --- | --- | --- |\n')
  for (const root of roots) {
    const mine = results.get(root) as { one: number[]; ten: number[] }
    const paired = (own: number[], base: number[]): string => (root === roots[0] ? '' : `; × ${median(own.map((value, at) => value / (base[at] as number))).toFixed(2)}`)
    process.stdout.write(`| ${path.basename(root)} | ${median(mine.one).toFixed(2)}${paired(mine.one, first.one)} | ${median(mine.ten).toFixed(2)}${paired(mine.ten, first.ten)} |\n`)
  }
} finally {
  await rm(work, { recursive: true, force: true })
}
