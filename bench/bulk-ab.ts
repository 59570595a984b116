/**
 * Durable `_bulk` requests against two checkouts, alternated in one run (a
 * comparison on a shared machine, where separate runs differ by more than
 * the change):
 *
 *   node --import tsx bench/bulk-ab.ts --base /tmp/base-tree [--head DIR] [--bulk-size 100] [--concurrency 4]
 *                                      [--duration 12] [--warmup 3] [--rounds 2]
 *                                      [--base-node-options='--max-semi-space-size=16'] [--head-node-options='…']
 *
 * `--head` defaults to this checkout (an archive of a commit keeps edits
 * out of a long run). Each round runs both checkouts, the first of them
 * alternating round by round: a fresh `tally serve` from that checkout on a
 * new data directory (WAL fsync before every reply, as by default), a
 * warm-up, then `tally bench --workload bulk` (this checkout's load
 * generator for both) with the server's CPU per transaction from /proc.
 * Prints one line per run (tx/s, server µs/tx on all threads and on the
 * JavaScript thread, client µs/tx, load average) and the head ÷ base
 * ratios of the medians; CPU per transaction resolves a change better than
 * throughput does when the machine is shared.
 *
 * `--base-node-options` and `--head-node-options` give node flags (split on
 * spaces; written with `=`, as they start with a dash) to that side's server: with `--base` and `--head` the same
 * checkout, a V8 setting is compared against the default.
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
    'bulk-size': { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '4' },
    duration: { type: 'string', default: '12' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
    'base-node-options': { type: 'string', default: '' },
    'head-node-options': { type: 'string', default: '' },
  },
})
const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { roots, nodeOptions } = abTrees(values, here)
const workload = 'bulk'

interface Run {
  readonly txPerSecond: number
  readonly serverMicros: number
  readonly jsMicros: number
  readonly clientMicros: number
  readonly load: string
}

function bench(url: string, pid: number, seconds: string, json: boolean): Promise<string> {
  const args = ['--target', url, '--workload', workload, '--bulk-size', values['bulk-size'], '--concurrency', values.concurrency, '--duration', seconds, '--server-pid', String(pid)]
  if (json) args.push('--json')
  return tallyBench(here, args)
}

async function runOnce(tree: 'base' | 'head'): Promise<Run> {
  const data = await mkdtemp(path.join(os.tmpdir(), 'tally-bulk-ab-'))
  const server = await serveTally(roots[tree], path.join(data, 'd'), [], nodeOptions[tree])
  try {
    await bench(server.url, server.pid, values.warmup, false)
    const report = JSON.parse(await bench(server.url, server.pid, values.duration, true)) as {
      workloads: { transactionsPerSecond: number }[]
      cpu: { client: { microsPerTransaction: number }; server: { microsPerTransaction: number; mainThreadMicrosPerTransaction: number } }
    }
    const [measured] = report.workloads
    if (measured === undefined) throw new Error('no workload in the report')
    return {
      txPerSecond: measured.transactionsPerSecond,
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


const runs: Record<'base' | 'head', Run[]> = { base: [], head: [] }
console.log(`${workload} of ${values['bulk-size']}, ${values.concurrency} clients, ${values.duration} s per run; node options: base [${nodeOptions.base.join(' ')}], head [${nodeOptions.head.join(' ')}]`)
console.log('| round | tree | tx/s | server µs/tx | JS thread µs/tx | other threads µs/tx | client µs/tx | load |')
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |')
for (let round = 1; round <= Number(values.rounds); round++) {
  const order: ('base' | 'head')[] = round % 2 === 1 ? ['base', 'head'] : ['head', 'base']
  for (const tree of order) {
    const run = await runOnce(tree)
    runs[tree].push(run)
    console.log(
      `| ${round} | ${tree} | ${run.txPerSecond.toFixed(0)} | ${run.serverMicros.toFixed(1)} | ${run.jsMicros.toFixed(1)} | ${(run.serverMicros - run.jsMicros).toFixed(1)} | ${run.clientMicros.toFixed(1)} | ${run.load} |`,
    )
  }
}
const m = (tree: 'base' | 'head', pick: (run: Run) => number): number => median(runs[tree].map(pick))
console.log('\n| median | base | head | head ÷ base |')
console.log('| --- | --- | --- | --- |')
for (const [name, pick] of [
  ['tx/s', (run: Run) => run.txPerSecond],
  ['server µs/tx', (run: Run) => run.serverMicros],
  ['JS thread µs/tx', (run: Run) => run.jsMicros],
  ['client µs/tx', (run: Run) => run.clientMicros],
] as const) {
  console.log(`| ${name} | ${m('base', pick).toFixed(1)} | ${m('head', pick).toFixed(1)} | ${(m('head', pick) / m('base', pick)).toFixed(3)} |`)
}
