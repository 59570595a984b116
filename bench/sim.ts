// Simulator throughput: simulated steps per second over fixed seed sets.
// Run: node --import tsx bench/sim.ts [--seeds N] [--steps M]
import os from 'node:os'
import { parseArgs } from 'node:util'
import { runSeeds } from '../src/sim/index.ts'

const { values } = parseArgs({ options: { seeds: { type: 'string' }, steps: { type: 'string' }, 'ledger-seeds': { type: 'string' } } })
const seeds = Number(values.seeds ?? 500)
const steps = Number(values.steps ?? 300)
/** Seeds for the pair of sets with and without the ledger in the simulator (the FSM makes a step far dearer). */
const ledgerSeeds = Number(values['ledger-seeds'] ?? 50)

function measure(label: string, run: () => { steps: number; runs: number; failures: number }): void {
  const started = process.hrtime.bigint()
  const result = run()
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const perSecond = Math.round(result.steps / seconds)
  console.log(
    `${label.padEnd(34)} runs ${String(result.runs).padStart(6)}  steps ${String(result.steps).padStart(9)}  ` +
      `${seconds.toFixed(2).padStart(7)} s  ${String(perSecond).padStart(8)} steps/s  failures ${result.failures}`,
  )
}

console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown cpu'}, nproc ${os.availableParallelism()}`)
const summarize = (summary: ReturnType<typeof runSeeds>) => ({ steps: summary.steps, runs: summary.runs, failures: summary.failures.length })
measure('warm-up (50 seeds)', () => summarize(runSeeds({ firstSeed: 900_001, count: 50, steps })))
measure(`mixed shapes (${seeds} seeds x ${steps})`, () => summarize(runSeeds({ firstSeed: 1, count: seeds, steps })))
measure('sync_all 3 nodes ordered', () =>
  summarize(runSeeds({ firstSeed: 100_001, count: Math.ceil(seeds / 5), steps, shape: { durability: 'sync_all', nodeCount: 3, order: 'ordered' } })),
)
measure('sync_quorum 5 nodes shuffled', () =>
  summarize(runSeeds({ firstSeed: 200_001, count: Math.ceil(seeds / 5), steps, shape: { durability: 'sync_quorum', nodeCount: 5, order: 'shuffled' } })),
)
measure('npm test seed sets (170 x 250)', () => {
  const a = runSeeds({ firstSeed: 1, count: 120, steps: 250 })
  const b = runSeeds({ firstSeed: 10_001, count: 25, steps: 250, shape: { durability: 'sync_all', nodeCount: 3 } })
  const c = runSeeds({ firstSeed: 20_001, count: 25, steps: 250, shape: { durability: 'best_effort', order: 'shuffled' } })
  return { steps: a.steps + b.steps + c.steps, runs: a.runs + b.runs + c.runs, failures: a.failures.length + b.failures.length + c.failures.length }
})
measure(`mixed shapes (${ledgerSeeds} seeds x ${steps}), no ledger`, () => summarize(runSeeds({ firstSeed: 1, count: ledgerSeeds, steps })))
measure(`same seeds, ledger in the simulator`, () => summarize(runSeeds({ firstSeed: 1, count: ledgerSeeds, steps, ledger: {} })))
measure('npm test ledger seeds (12 x 250)', () => summarize(runSeeds({ firstSeed: 1, count: 12, steps: 250, ledger: {} })))
