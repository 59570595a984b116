/**
 * Single-transaction requests against two checkouts, alternated in one run
 * (a comparison on a shared machine, where separate runs differ by more than
 * the change):
 *
 *   node --import tsx bench/single-ab.ts --base /tmp/base-tree [--head DIR] [--concurrency 1,16,64] [--rate R]
 *                                        [--duration 8] [--warmup 2] [--rounds 2]
 *                                        [--base-node-options='--max-semi-space-size=16'] [--head-node-options='…']
 *
 * `--head` defaults to this checkout (an archive of a commit keeps edits out
 * of a long run). For each round, concurrency and checkout in turn: a fresh `tally serve` from
 * that checkout on a new data directory, a warm-up, then `tally bench
 * --workload transactions` (this checkout's load generator for both) with the
 * server's CPU per transaction from /proc. Prints one line per run (tx/s,
 * p50/p99, server µs/tx on all threads and on the JavaScript thread, client
 * µs/tx, load average) and, per concurrency, the head ÷ base ratios of the
 * medians. With `--rate R` every run is open loop at R requests/s (each
 * `--concurrency` then caps the requests in flight): the server's CPU at a
 * fixed rate, which a closed loop cannot show (it always finds the ceiling).
 *
 * At one connection the JIT settles only after ~4,000 requests (15–20 s):
 * with the default warm-up both trees are measured half-warm (more CPU per
 * request, compile work on V8's workers); `--warmup 20` for warm figures.
 *
 * `--base-node-options` and `--head-node-options` give node flags (split on
 * spaces; written with `=`, as they start with a dash) to that side's
 * server: with `--base` and `--head` the same checkout, a V8 setting is
 * compared against the default.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { abTrees, serveTally, tallyBench } from './support/serve.ts'
import { median } from './support/stats.ts'

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    head: { type: 'string' },
    concurrency: { type: 'string', default: '1,16,64' },
    rate: { type: 'string' },
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    'base-node-options': { type: 'string', default: '' },
    'head-node-options': { type: 'string', default: '' },
  },
})
const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { roots, nodeOptions } = abTrees(values, here)
const concurrencies = values.concurrency.split(',').map(Number)

interface Run {
  readonly txPerSecond: number
  readonly p50: number
  readonly p99: number
  readonly serverMicros: number
  readonly jsMicros: number
  readonly clientMicros: number
  readonly load: string
}

function bench(url: string, pid: number, concurrency: number, seconds: string, json: boolean): Promise<string> {
  const args = ['--target', url, '--workload', 'transactions', '--concurrency', String(concurrency), '--duration', seconds, '--server-pid', String(pid)]
  if (values.rate !== undefined) args.push('--rate', values.rate)
  if (json) args.push('--json')
  return tallyBench(here, args, 'ignore')
}

async function runOnce(tree: 'base' | 'head', concurrency: number): Promise<Run> {
  const data = await mkdtemp(path.join(os.tmpdir(), 'tally-single-ab-'))
  const server = await serveTally(roots[tree], path.join(data, 'd'), [], nodeOptions[tree])
  try {
    const pid = server.pid
    await bench(server.url, pid, concurrency, values.warmup, false)
    const report = JSON.parse(await bench(server.url, pid, concurrency, values.duration, true)) as {
      workloads: { transactionsPerSecond: number; latency: { p50Ms: number; p99Ms: number } }[]
      cpu: { client: { microsPerTransaction: number }; server: { microsPerTransaction: number; mainThreadMicrosPerTransaction: number } }
    }
    const [workload] = report.workloads
    if (workload === undefined) throw new Error('no workload in the report')
    return {
      txPerSecond: workload.transactionsPerSecond,
      p50: workload.latency.p50Ms,
      p99: workload.latency.p99Ms,
      serverMicros: report.cpu.server.microsPerTransaction,
      jsMicros: report.cpu.server.mainThreadMicrosPerTransaction,
      clientMicros: report.cpu.client.microsPerTransaction,
      load: os.loadavg().map((x) => x.toFixed(1)).join(' '),
    }
  } finally {
    await server.stop()
    await rm(data, { recursive: true, force: true })
  }
}


const runs = new Map<string, Run[]>()
console.log(`node options: base [${nodeOptions.base.join(' ')}], head [${nodeOptions.head.join(' ')}]`)
console.log(`| round | clients${values.rate === undefined ? '' : ` (open loop, ${values.rate}/s)`} | tree | tx/s | p50 ms | p99 ms | server µs/tx | JS thread µs/tx | client µs/tx | load |`)
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
for (let round = 1; round <= Number(values.rounds); round++) {
  for (const concurrency of concurrencies) {
    // Alternate which tree goes first, round by round.
    const order: ('base' | 'head')[] = round % 2 === 1 ? ['base', 'head'] : ['head', 'base']
    for (const tree of order) {
      const run = await runOnce(tree, concurrency)
      const key = `${concurrency}/${tree}`
      runs.set(key, [...(runs.get(key) ?? []), run])
      console.log(
        `| ${round} | ${concurrency} | ${tree} | ${run.txPerSecond.toFixed(0)} | ${run.p50.toFixed(2)} | ${run.p99.toFixed(2)} | ${run.serverMicros.toFixed(0)} | ${run.jsMicros.toFixed(0)} | ${run.clientMicros.toFixed(0)} | ${run.load} |`,
      )
    }
  }
}
console.log('\n| clients | tx/s head ÷ base | server µs/tx base → head | JS thread µs/tx base → head |')
console.log('| --- | --- | --- | --- |')
for (const concurrency of concurrencies) {
  const base = runs.get(`${concurrency}/base`) ?? []
  const head = runs.get(`${concurrency}/head`) ?? []
  const m = (rs: Run[], pick: (r: Run) => number): number => median(rs.map(pick))
  console.log(
    `| ${concurrency} | × ${(m(head, (r) => r.txPerSecond) / m(base, (r) => r.txPerSecond)).toFixed(2)} | ${m(base, (r) => r.serverMicros).toFixed(0)} → ${m(head, (r) => r.serverMicros).toFixed(0)} | ${m(base, (r) => r.jsMicros).toFixed(0)} → ${m(head, (r) => r.jsMicros).toFixed(0)} |`,
  )
}
