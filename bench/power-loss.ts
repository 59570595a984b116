/**
 * Long run of the power-loss harness (issue 9, point 18; docs/wal.md "Power-loss testing").
 *
 *   node --import tsx bench/power-loss.ts [--seeds N] [--from S] [--cycles C] [--change-threshold] [--verbose]
 *   npm run test:power-long        # 500 seeds from 1
 *
 * Runs seeds S..S+N−1 (each: C power losses at seeded disk operations, then
 * a clean restart, verify and offline check), prints one line per failing
 * seed and a summary; exits 1 when a seed failed. Every third seed runs the
 * worst case (each loss keeps only what was synced), as in `npm test`.
 * Replay one seed in the test suite with TALLY_POWER_SEED=<seed> (or here
 * with --from S --seeds 1 --verbose, which traces each power loss).
 * `--change-threshold` also
 * restarts with another cache rotation threshold (issue 9, point 1).
 */
import { runPowerLossSeed } from '../test/crash/power-loss-harness.ts'

function argument(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? undefined : process.argv[at + 1]
}

const seeds = Number(argument('seeds') ?? '500')
const from = Number(argument('from') ?? '1')
const cycles = Number(argument('cycles') ?? '6')
const changeRotationThreshold = process.argv.includes('--change-threshold')
const verbose = process.argv.includes('--verbose')

const started = performance.now()
const failed: number[] = []
let acknowledged = 0
let powerLosses = 0
let uncertainRetried = 0
let plannerGaveUp = 0
for (let seed = from; seed < from + seeds; seed++) {
  try {
    const report = await runPowerLossSeed({ seed, cycles, changeRotationThreshold, worstCase: seed % 3 === 0, ...(verbose ? { trace: (line: string) => console.log(`  seed ${seed}, ${line}`) } : {}) })
    acknowledged += report.acknowledged
    powerLosses += report.outcomes.length
    uncertainRetried += report.uncertainRetried
    plannerGaveUp += report.plannerGaveUp
    if (verbose) console.log(`seed ${seed}: ok, ${report.acknowledged} acknowledged; ${report.configuration}; ${report.outcomes.map((o) => o.crashedAt).join(' | ')}`)
  } catch (error) {
    failed.push(seed)
    console.log(`seed ${seed}: ${error instanceof Error ? error.message : String(error)}`)
  }
}
const seconds = (performance.now() - started) / 1000
console.log(`${seeds - failed.length}/${seeds} seeds passed (${powerLosses} power losses, ${acknowledged} transactions acknowledged, ${uncertainRetried} keyed writes of unknown outcome retried, ${plannerGaveUp} requests refused as "needs did not resolve") in ${seconds.toFixed(1)} s`)
if (failed.length > 0) {
  console.log(`failing seeds: ${failed.join(' ')}`)
  process.exitCode = 1
}
