/**
 * A transfer's commit volumes in isolation, for two checkouts alternated in
 * one process: built (`commitVolumes`), written into the transaction row
 * (`encodeAttribute`), and printed in the answer (`writeTransaction` with
 * volumes, as `_bulk` prints each element).
 *
 *   node --import tsx bench/commit-volumes.ts --base ROOT [--head DIR] [--rounds 10] [--allocations]
 *
 * Each round times 1,000 transfers (two pairs each, between 1,000
 * accounts) 100 times per step and checkout, the first checkout
 * alternating. The rows and answers of both checkouts are compared byte for
 * byte first. Prints the median and best round in ns per transfer per step.
 * `--allocations` then samples what each checkout allocates per transfer
 * for the three steps together (V8's sampling heap profiler).
 */
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { startAllocationSampling } from './allocation-sampling.ts'
import { median } from './support/stats.ts'

const { values } = parseArgs({ options: { base: { type: 'string' }, head: { type: 'string' }, rounds: { type: 'string', default: '10' }, allocations: { type: 'boolean', default: false } } })
if (values.base === undefined) throw new Error('--base ROOT: the checkout to compare against')
const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const roots = { base: path.resolve(values.base), head: path.resolve(values.head ?? here) }
type Domain = typeof import('../src/domain/index.ts')
const domains: Record<'base' | 'head', Domain> = {
  base: (await import(pathToFileURL(path.join(roots.base, 'src/domain/index.ts')).href)) as Domain,
  head: (await import(pathToFileURL(path.join(roots.head, 'src/domain/index.ts')).href)) as Domain,
}

const transfers = 1000
const repeats = 100
const moved = Array.from({ length: transfers }, (_, i) => {
  const source = `users:${String((i * 7) % 1000).padStart(4, '0')}`
  const destination = `users:${String((i * 13 + 1) % 1000).padStart(4, '0')}`
  return [
    { account: destination, asset: 'USD/2', pre: { input: 7_000n + BigInt(i), output: 300n }, post: { input: 7_100n + BigInt(i), output: 300n } },
    { account: source, asset: 'USD/2', pre: { input: 50_000n, output: 20_000n + BigInt(i) }, post: { input: 50_000n, output: 20_100n + BigInt(i) } },
  ]
})

function record(domain: Domain, i: number): import('../src/domain/index.ts').TransactionRecord {
  const pairs = moved[i] as (typeof moved)[number]
  const volumes = domain.commitVolumes(pairs.map((pair) => ({ ...pair })) as never)
  return {
    id: BigInt(1_000_000 + i),
    postings: [{ source: pairs[1]?.account, destination: pairs[0]?.account, amount: 100n, asset: 'USD/2' }],
    timestamp: '2026-12-07T18:00:00.000Z',
    insertedAt: '2026-12-07T18:00:00.000Z',
    updatedAt: '2026-12-07T18:00:00.000Z',
    metadata: domain.emptyKeyed(),
    reverted: false,
    preCommitVolumes: volumes.pre,
    postCommitVolumes: volumes.post,
  } as never
}

// Same bytes first: the row and the answer of every transfer.
for (let i = 0; i < transfers; i++) {
  const rows = (['base', 'head'] as const).map((tree) => domains[tree].encodeAttribute({ kind: 't', value: record(domains[tree], i) }).bytes)
  const answers = (['base', 'head'] as const).map((tree) => domains[tree].printTransaction(record(domains[tree], i), { volumes: true }))
  if (!(rows[0] as Buffer).equals(rows[1] as Buffer) || answers[0] !== answers[1]) throw new Error(`transfer ${i}: the checkouts differ`)
}

let sink = 0
function steps(domain: Domain): { build: number; row: number; answer: number } {
  const records = new Array<ReturnType<typeof record>>(transfers)
  let started = process.hrtime.bigint()
  for (let r = 0; r < repeats; r++) for (let i = 0; i < transfers; i++) records[i] = record(domain, i)
  const build = Number(process.hrtime.bigint() - started) / (repeats * transfers)
  started = process.hrtime.bigint()
  for (let r = 0; r < repeats; r++) for (let i = 0; i < transfers; i++) sink += domain.encodeAttribute({ kind: 't', value: records[i] as never }).bytes.length
  const row = Number(process.hrtime.bigint() - started) / (repeats * transfers)
  const out = new domain.JsonBytes()
  started = process.hrtime.bigint()
  for (let r = 0; r < repeats; r++) {
    for (let i = 0; i < transfers; i++) domain.writeTransaction(out, records[i] as never, { volumes: true })
    sink += out.take().length
  }
  const answer = Number(process.hrtime.bigint() - started) / (repeats * transfers)
  return { build, row, answer }
}

const timed: Record<'base' | 'head', { build: number; row: number; answer: number }[]> = { base: [], head: [] }
steps(domains.base)
steps(domains.head)
for (let round = 0; round < Number(values.rounds); round++) {
  for (const tree of round % 2 === 0 ? (['base', 'head'] as const) : (['head', 'base'] as const)) timed[tree].push(steps(domains[tree]))
}
console.log('| step, ns per transfer (median / best) | base | head | head ÷ base (medians) |')
console.log('| --- | --- | --- | --- |')
for (const step of ['build', 'row', 'answer'] as const) {
  const of = (tree: 'base' | 'head') => timed[tree].map((t) => t[step])
  console.log(`| ${step} | ${median(of('base')).toFixed(0)} / ${Math.min(...of('base')).toFixed(0)} | ${median(of('head')).toFixed(0)} / ${Math.min(...of('head')).toFixed(0)} | ${(median(of('head')) / median(of('base'))).toFixed(2)} |`)
}
if (values.allocations) {
  for (const tree of ['base', 'head'] as const) {
    const domain = domains[tree]
    const out = new domain.JsonBytes()
    const sampling = await startAllocationSampling(512)
    for (let r = 0; r < 20; r++) {
      for (let i = 0; i < transfers; i++) {
        const value = record(domain, i)
        sink += domain.encodeAttribute({ kind: 't', value }).bytes.length
        domain.writeTransaction(out, value, { volumes: true })
      }
      sink += out.take().length
    }
    console.log(`\n${tree} (${roots[tree]}):`)
    await sampling.stop(`/tmp/commit-volumes-${tree}.heapprofile`, 20 * transfers, 'transfer')
  }
}
if (sink === 0) console.log('')
