/**
 * `tally sim`: seeded randomized runs of the cluster simulator (the real
 * recovery engine against simulated crashes, partitions, delays and epoch
 * changes). Prints runs, steps and violations; prints the replayable trace
 * of the first failing seed; exits non-zero on any violation.
 */
import { parseArgs } from 'node:util'
import { runRandom, runSeeds } from '../sim/index.ts'
import type { DurabilityMode, EventOrder, NetworkModel, RunResult } from '../sim/index.ts'

export const simExit = { ok: 0, violations: 1, usage: 2 } as const

export const simSeedsMax = 10_000_000
export const simStepsMax = 1_000_000

const help = `Usage: tally sim --seeds N [--seed S] [--steps M] [options]

Runs N seeded randomized simulations (seeds S, S+1, …, S+N-1), each M steps:
writes, crashes, restarts (some at a new address), link failures, checkpoints,
WAL recycling and epoch bumps, with every invariant checked after each step.
A failing seed is replayed with tracing on and its trace printed; rerun it
alone with --seeds 1 --seed <seed> --trace.

Options (each also read from the environment variable shown):
  --seeds N          number of seeds to run (TALLY_SIM_SEEDS, default 100)
  --seed S           first seed (TALLY_SIM_SEED, default 1)
  --steps M          steps per run (TALLY_SIM_STEPS, default 300)
  --durability MODE  fix the mode: sync_all | sync_quorum | best_effort (default: drawn per seed)
  --nodes K          fix the node count, 1–9 (default: 3–5 drawn per seed)
  --order ORDER      fix same-tick event order: ordered | shuffled (default: drawn per seed)
  --delay D          network model: each message delayed 0–D extra ticks, so reordered (default 0)
  --loss P           network model: each message lost with probability P% (default 0)
  --duplicate P      network model: each message delivered twice with probability P% (default 0)
  --ledger           run the ledger in the simulator: every node applies its committed
                     entries through the real FSM, and the ledger invariants (balances,
                     audit chain, identical replica state) are checked every step
                     (TALLY_SIM_LEDGER=1; about 100× slower per step)
  --membership       membership changes: the assignment names voters and learners, an
                     operator adds a spare node as a learner and removes members at
                     random, the coordinator makes caught-up learners voters, and the
                     commit audit counts the voters of the committing epoch only
                     (TALLY_SIM_MEMBERSHIP=1)
  --trace            print the full trace of every run (use with --seeds 1)
  -h, --help         show this help

Exit codes: 0 no violation, 1 at least one violation, 2 bad usage.
`

export interface SimIo {
  readonly out: (text: string) => void
  readonly err: (text: string) => void
  readonly env: Readonly<Record<string, string | undefined>>
}

function parseCount(text: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback
  if (!/^\d+$/.test(text)) throw new UsageError(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`)
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new UsageError(`${name} must be in [${min}, ${max}]`)
  return value
}

class UsageError extends Error {}

function describeRun(result: RunResult): string {
  const shape = `${result.shape.nodeCount} nodes ${result.shape.durability} ${result.shape.order}, ${result.shape.timers} timers, ${result.shape.storage} disk, ${result.shape.handshake} handshake, ${result.shape.coordinatorLinks} coordinator links, ${result.shape.coordinator} coordinator${result.shape.membership === 'changing' ? ', changing membership' : ''}`
  return `seed ${result.seed} (${shape}) steps ${result.stepsRun} committed ${result.committedLsn}`
}

export async function runSimCommand(argv: string[], io: SimIo): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        seeds: { type: 'string' },
        seed: { type: 'string' },
        steps: { type: 'string' },
        durability: { type: 'string' },
        nodes: { type: 'string' },
        order: { type: 'string' },
        delay: { type: 'string' },
        loss: { type: 'string' },
        duplicate: { type: 'string' },
        trace: { type: 'boolean' },
        ledger: { type: 'boolean' },
        membership: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    })
  } catch (error) {
    io.err(`tally sim: ${error instanceof Error ? error.message : String(error)}\n\n${help}`)
    return simExit.usage
  }
  const values = parsed.values
  if (values.help === true) {
    io.out(help)
    return simExit.ok
  }
  let count: number
  let firstSeed: number
  let steps: number
  let nodeCount: number | undefined
  let network: NetworkModel
  const durability = values.durability as DurabilityMode | undefined
  const order = values.order as EventOrder | undefined
  try {
    count = parseCount(values.seeds ?? io.env.TALLY_SIM_SEEDS, '--seeds', 100, 1, simSeedsMax)
    firstSeed = parseCount(values.seed ?? io.env.TALLY_SIM_SEED, '--seed', 1, 0, Number.MAX_SAFE_INTEGER - simSeedsMax)
    steps = parseCount(values.steps ?? io.env.TALLY_SIM_STEPS, '--steps', 300, 1, simStepsMax)
    nodeCount = values.nodes === undefined ? undefined : parseCount(values.nodes, '--nodes', 3, 1, 9)
    network = {
      delayTicksMax: parseCount(values.delay, '--delay', 0, 0, 50),
      lossPercent: parseCount(values.loss, '--loss', 0, 0, 50),
      duplicatePercent: parseCount(values.duplicate, '--duplicate', 0, 0, 50),
    }
    if (durability !== undefined && !['sync_all', 'sync_quorum', 'best_effort'].includes(durability)) {
      throw new UsageError('--durability must be sync_all, sync_quorum or best_effort')
    }
    if (order !== undefined && order !== 'ordered' && order !== 'shuffled') throw new UsageError('--order must be ordered or shuffled')
    if (durability === 'sync_quorum' && nodeCount !== undefined && nodeCount < 3) {
      throw new UsageError('sync_quorum needs at least 3 nodes (a true majority)')
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    io.err(`tally sim: ${error.message}\n`)
    return simExit.usage
  }
  const ledger = values.ledger === true || io.env.TALLY_SIM_LEDGER === '1' ? {} : undefined
  const shape = {
    ...(durability === undefined ? {} : { durability }),
    ...(nodeCount === undefined ? {} : { nodeCount }),
    ...(order === undefined ? {} : { order }),
    ...(values.membership === true || io.env.TALLY_SIM_MEMBERSHIP === '1' ? { membership: 'changing' as const } : {}),
  }
  if (durability === undefined && nodeCount !== undefined && nodeCount < 3) {
    io.err('tally sim: with fewer than 3 nodes pass --durability sync_all or best_effort\n')
    return simExit.usage
  }

  if (values.trace === true) {
    let failed = false
    for (let index = 0; index < count; index += 1) {
      const result = runRandom({ seed: firstSeed + index, steps, trace: true, shape, network, ledger })
      io.out(`${result.trace.join('\n')}\n${describeRun(result)} violations ${result.violations.length}\n`)
      failed ||= result.violations.length > 0
    }
    return failed ? simExit.violations : simExit.ok
  }

  let settledTicksMax = 0
  let settledRuns = 0
  const ledgerTotals = { applied: 0, stale: 0, ordersApplied: 0, ordersRefused: 0, rebuilt: 0, installed: 0 }
  const progressEvery = Math.max(1, Math.floor(count / 20))
  const showProgress = count * steps >= 200_000
  const summary = runSeeds({
    firstSeed,
    count,
    steps,
    shape,
    network,
    ...(ledger === undefined ? {} : { ledger }),
    onRun: (result, index) => {
      if (result.ledger !== undefined) for (const key of Object.keys(ledgerTotals) as (keyof typeof ledgerTotals)[]) ledgerTotals[key] += result.ledger[key]
      if (result.settledAfterTicks !== undefined) {
        settledRuns += 1
        settledTicksMax = Math.max(settledTicksMax, result.settledAfterTicks)
      }
      if (result.violations.length > 0) {
        io.err(`violation: ${describeRun(result)}: ${result.violations.map((v) => `${v.kind} at t=${v.tick}: ${v.detail}`).join('; ')}\n`)
      }
      if (showProgress && (index + 1) % progressEvery === 0) io.err(`sim: ${index + 1}/${count} runs\n`)
    },
  })
  const violations = summary.failures.reduce((sum, failure) => sum + failure.violations.length, 0)
  const totals = summary.totals
  io.out(
    [
      `runs ${summary.runs}`,
      `steps ${summary.steps}`,
      `violations ${violations}`,
      `failing seeds ${summary.failures.length}`,
      `writes ${totals.writes} promotions ${totals.promotions} crashes ${totals.crashes} restarts ${totals.restarts}`,
      `catch-ups ${totals.catchUpsCompleted} rebuilds ${totals.rebuildsCompleted} failed recoveries ${totals.recoveriesFailed}`,
      `messages delivered ${totals.messagesDelivered} rejected ${totals.messagesRejected}`,
      `paths: budget violations ${totals.budgetViolations} catch-up timeouts ${totals.catchUpTimeouts} reservation timeouts ${totals.reservationTimeouts} pin failures ${totals.pinFailures} rebuild stalls ${totals.rebuildStalls}`,
      `       stale assignments ${totals.staleAssignments} failed fsyncs ${totals.fsyncFailures} interrupted transfers ${totals.transfersInterrupted} connect timeouts ${totals.connectTimeouts}`,
      `       deposed primaries ${totals.primariesDeposed} writes to deposed primaries ${totals.writesToDeposed} commits held back without a lease ${totals.commitsWithoutLease}`,
      `       coordinator restarts ${totals.coordinatorRestarts} assignment writes refused ${totals.assignmentWritesRefused} truncations answered ${totals.truncationsAnswered} truncate timeouts ${totals.truncateTimeouts}`,
      `       reopens on an installed image ${totals.reopens} rebuilds resumed after a reopen ${totals.rebuildsResumedAfterReopen}`,
      ...(shape.membership === undefined
        ? []
        : [`membership: changes ${totals.membershipChanges} refused by the rules ${totals.membershipChangesRefused} learners made voters ${totals.learnersPromoted}`]),
      `liveness: ${settledRuns} of ${summary.runs} runs settled after faults stopped, slowest in ${settledTicksMax} ticks`,
      ...(ledger === undefined
        ? []
        : [
            `ledger: entries applied ${ledgerTotals.applied} (stale ${ledgerTotals.stale}) orders applied ${ledgerTotals.ordersApplied} refused ${ledgerTotals.ordersRefused} states rebuilt ${ledgerTotals.rebuilt} images installed ${ledgerTotals.installed}`,
          ]),
    ].join('\n') + '\n',
  )
  const first = summary.failures[0]
  if (first !== undefined) {
    const replay = runRandom({ seed: first.seed, steps: first.stepsRun, trace: true, shape, network, ledger })
    io.out(`\nreplayable trace of seed ${first.seed} (rerun: tally sim --seeds 1 --seed ${first.seed} --steps ${first.stepsRun}${ledger === undefined ? '' : ' --ledger'}${shape.membership === undefined ? '' : ' --membership'} --trace):\n`)
    io.out(`${replay.trace.join('\n')}\n`)
    io.out(`failing seeds: ${summary.failures.map((failure) => failure.seed).join(' ')}\n`)
    return simExit.violations
  }
  return simExit.ok
}

export async function simCommand(argv: string[]): Promise<number> {
  return runSimCommand(argv, {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    env: process.env,
  })
}
