/**
 * Lone writes in process: one client submitting single transactions one
 * after another (each waits for the previous answer), WAL fdatasync on, no
 * HTTP. What a proposal's fixed path costs and how long it takes when
 * nothing else is in flight: the admission, the WAL hand-off, the apply
 * overlapping the fdatasync, the store write.
 *
 *   node --import tsx bench/lone-writes.ts [--root DIR] [--submits 500] [--warmup 500] [--no-sync] [--heap-sample FILE]
 *   node --import tsx bench/lone-writes.ts --base DIR [--head DIR] [--rounds 6] [--submits 500] [--warmup 500]
 *
 * With `--root`, the pipeline is imported from that checkout (default: this
 * one). With `--base`, runs this script on `--head` (default this checkout)
 * and `--base` alternately, each in a fresh process and data directory, the
 * first tree alternating round by round, and prints one row per run and the
 * medians: latency p50/p90 of a submit, and the process's CPU per submit on
 * all threads and on the JavaScript thread (/proc). On a shared machine the
 * fdatasync's latency moves with the other processes' I/O: read the p50 of
 * many rounds. `--heap-sample FILE` (one run) samples allocations over the
 * measured submits (`bench/allocation-sampling.ts`) and prints the bytes
 * allocated per submit and the heaviest allocating functions.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { readServerCpu } from '../src/bench/cpu.ts'
import { startAllocationSampling } from './allocation-sampling.ts'
import { median } from './support/stats.ts'

const { values } = parseArgs({
  options: {
    root: { type: 'string' },
    base: { type: 'string' },
    head: { type: 'string' },
    rounds: { type: 'string', default: '6' },
    submits: { type: 'string', default: '500' },
    warmup: { type: 'string', default: '500' },
    'no-sync': { type: 'boolean', default: false },
    'heap-sample': { type: 'string' },
  },
})
const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

interface Run {
  readonly p50Micros: number
  readonly p90Micros: number
  readonly cpuMicros: number
  readonly jsMicros: number
}


async function measure(root: string): Promise<Run> {
  const { LedgerNode } = (await import(pathToFileURL(path.join(root, 'src/server/index.ts')).href)) as typeof import('../src/server/index.ts')
  const directory = mkdtempSync(path.join(os.tmpdir(), 'tally-lone-writes-'))
  const node = await LedgerNode.open({ dataDirectory: directory, sync: !values['no-sync'] })
  try {
    const ledger = 'bench'
    const once = { atomic: false, continueOnFailure: true }
    await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: {}, features: {} } }] as never, { atomic: true, continueOnFailure: false })
    let next = 0
    const submit = async (): Promise<void> => {
      const i = next++
      const order = { type: 'CREATE_TRANSACTION', ledger, postings: [{ source: 'world', destination: `users:${i % 1000}`, amount: BigInt(1 + (i % 997)), asset: 'USD/2' }], metadata: {}, accountMetadata: {}, force: false }
      const [result] = await node.admission.submit([{ order }] as never, once)
      if (result?.status !== 'applied') throw new Error(`submit ${i}: ${JSON.stringify(result)}`)
    }
    for (let i = 0; i < Number(values.warmup); i++) await submit()
    const submits = Number(values.submits)
    const latencies: number[] = []
    const sampling = values['heap-sample'] === undefined ? undefined : await startAllocationSampling()
    const before = readServerCpu(process.pid)
    for (let i = 0; i < submits; i++) {
      const started = performance.now()
      await submit()
      latencies.push((performance.now() - started) * 1000)
    }
    const after = readServerCpu(process.pid)
    if (sampling !== undefined) await sampling.stop(values['heap-sample'] as string, submits, 'submit')
    if (before === undefined || after === undefined) throw new Error('no /proc: Linux only')
    latencies.sort((a, b) => a - b)
    return {
      p50Micros: latencies[Math.floor(submits / 2)] as number,
      p90Micros: latencies[Math.floor(submits * 0.9)] as number,
      cpuMicros: (after.micros - before.micros) / submits,
      jsMicros: (after.mainThreadMicros - before.mainThreadMicros) / submits,
    }
  } finally {
    await node.close()
    rmSync(directory, { recursive: true, force: true })
  }
}

if (values.base === undefined) {
  console.log(JSON.stringify(await measure(path.resolve(values.root ?? here))))
} else {
  const roots = { base: path.resolve(values.base), head: path.resolve(values.head ?? here) }
  const runs: Record<'base' | 'head', Run[]> = { base: [], head: [] }
  const self = fileURLToPath(import.meta.url)
  console.log('| round | tree | p50 µs | p90 µs | CPU µs/submit | JS thread µs/submit | load |')
  console.log('| --- | --- | --- | --- | --- | --- | --- |')
  for (let round = 1; round <= Number(values.rounds); round++) {
    const order: ('base' | 'head')[] = round % 2 === 1 ? ['base', 'head'] : ['head', 'base']
    for (const tree of order) {
      const args = ['--import', 'tsx', self, '--root', roots[tree], '--submits', values.submits, '--warmup', values.warmup, ...(values['no-sync'] ? ['--no-sync'] : [])]
      const child = spawnSync(process.execPath, args, { encoding: 'utf8', cwd: here })
      if (child.status !== 0) throw new Error(`${tree} run failed: ${child.stderr}`)
      const run = JSON.parse(child.stdout.trim().split('\n').at(-1) as string) as Run
      runs[tree].push(run)
      const load = os.loadavg().map((x) => x.toFixed(1)).join(' ')
      console.log(`| ${round} | ${tree} | ${run.p50Micros.toFixed(0)} | ${run.p90Micros.toFixed(0)} | ${run.cpuMicros.toFixed(0)} | ${run.jsMicros.toFixed(0)} | ${load} |`)
    }
  }
  const m = (tree: 'base' | 'head', pick: (r: Run) => number): number => median(runs[tree].map(pick))
  console.log('\n| medians | p50 µs | p90 µs | CPU µs/submit | JS thread µs/submit |')
  console.log('| --- | --- | --- | --- | --- |')
  for (const tree of ['base', 'head'] as const) {
    console.log(`| ${tree} | ${m(tree, (r) => r.p50Micros).toFixed(0)} | ${m(tree, (r) => r.p90Micros).toFixed(0)} | ${m(tree, (r) => r.cpuMicros).toFixed(0)} | ${m(tree, (r) => r.jsMicros).toFixed(0)} |`)
  }
  console.log(`| head ÷ base | ${(m('head', (r) => r.p50Micros) / m('base', (r) => r.p50Micros)).toFixed(2)} | ${(m('head', (r) => r.p90Micros) / m('base', (r) => r.p90Micros)).toFixed(2)} | ${(m('head', (r) => r.cpuMicros) / m('base', (r) => r.cpuMicros)).toFixed(2)} | ${(m('head', (r) => r.jsMicros) / m('base', (r) => r.jsMicros)).toFixed(2)} |`)
}
