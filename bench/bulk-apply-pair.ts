/**
 * Two builds' bulk apply in one process, alternated burst by burst:
 *   node --expose-gc --import tsx bench/bulk-apply-pair.ts --base ROOT [--rounds R] [--burst B] [--orders N] [--warmup W]
 *
 * `ROOT` is another checkout of Tally (`git archive <commit> | tar -x -C ROOT`
 * and a `node_modules` link). Each build opens its own node (a data
 * directory of its own, sync off) from its own sources; both take the same
 * bulks of N deposits (`bench/deposits.ts`), B proposals at a time, 4 in
 * flight as `bench/bulk-apply.ts` submits them, the two builds' bursts
 * alternating (which goes first alternates too). Each burst's cost is the
 * JavaScript thread's time on the CPU (`/proc/self/task/<tid>/schedstat`,
 * nanoseconds, not the 10 ms ticks of `stat`) from its start until the node
 * is quiet again (its store writes done), per order.
 *
 * Why: on a machine shared by other benchmarks (load 5–30), two processes
 * run one after the other see different neighbours, and their µs per order
 * differ by ±10 % from run to run; bursts of a fraction of a second,
 * alternated within one process, see the same ones. The price: one V8 heap
 * for both, so a build's garbage is partly collected during the other's
 * bursts unless `--expose-gc` lets each burst start from a full collection
 * (then a build's old-generation garbage is collected outside the measure),
 * and both share the CPU's caches. Prints per-round figures, each build's
 * median, and the median of the per-round ratios (base ÷ this checkout).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import type { LedgerName } from '../src/domain/index.ts'
import { depositBulks } from './deposits.ts'
import { median } from './support/stats.ts'

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    rounds: { type: 'string', default: '20' },
    burst: { type: 'string', default: '20' },
    orders: { type: 'string', default: '100' },
    warmup: { type: 'string', default: '3' },
  },
})
if (values.base === undefined) throw new Error('--base ROOT: another checkout of Tally')
const rounds = Number(values.rounds)
const burst = Number(values.burst)
const ordersPerProposal = Number(values.orders)
const warmup = Number(values.warmup)
const ledger = 'bench' as LedgerName

/** The part of a node the bench drives (both builds' `LedgerNode` have it). */
interface DrivenNode {
  readonly admission: { submit(orders: unknown[], options: { atomic: boolean; continueOnFailure: boolean }): Promise<unknown> }
  close(): Promise<void>
}
interface NodeModule {
  readonly LedgerNode: { open(options: { dataDirectory: string; sync: boolean }): Promise<DrivenNode> }
}

interface Side {
  readonly name: string
  readonly node: DrivenNode
  readonly directory: string
  readonly orders: () => unknown[]
  readonly perOrderMicros: number[]
}

async function openSide(name: string, root: string): Promise<Side> {
  const module = (await import(pathToFileURL(path.join(root, 'src/server/index.ts')).href)) as NodeModule
  const directory = mkdtempSync(path.join(os.tmpdir(), `tally-pair-${name}-`))
  const node = await module.LedgerNode.open({ dataDirectory: directory, sync: false })
  await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: {}, features: {} } }], { atomic: true, continueOnFailure: false })
  return { name, node, directory, orders: depositBulks(ledger, ordersPerProposal, 10_000), perOrderMicros: [] }
}

const threadId = process.pid
/** The JavaScript thread's time on the CPU so far, nanoseconds (first field of schedstat). */
function threadCpuNanos(): number {
  return Number(readFileSync(`/proc/self/task/${threadId}/schedstat`, 'utf8').split(' ')[0])
}

/** Until the node's pending work (store writes after the answers) is done: a few turns of the loop, and a timer. */
async function quiet(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve))
  await new Promise((resolve) => setTimeout(resolve, 2))
}

/**
 * Run with `--expose-gc`, a full collection before each burst (outside its
 * measure): neither build's burst pays for the other's garbage, and each
 * pays the young-generation collections of its own allocations.
 */
const collect = (globalThis as { gc?: () => void }).gc

async function runBurst(side: Side): Promise<number> {
  await quiet()
  collect?.()
  const before = threadCpuNanos()
  let submitted = 0
  const client = async (): Promise<void> => {
    while (submitted < burst) {
      submitted++
      await side.node.admission.submit(side.orders(), { atomic: false, continueOnFailure: true })
    }
  }
  await Promise.all([client(), client(), client(), client()])
  await quiet()
  return (threadCpuNanos() - before) / 1000 / (burst * ordersPerProposal)
}

const base = await openSide('base', path.resolve(values.base))
const head = await openSide('head', path.resolve(path.dirname(new URL(import.meta.url).pathname), '..'))
for (let i = 0; i < warmup; i++) {
  await runBurst(base)
  await runBurst(head)
}
const ratios: number[] = []
for (let round = 0; round < rounds; round++) {
  const [first, second] = round % 2 === 0 ? [base, head] : [head, base]
  const a = await runBurst(first)
  const b = await runBurst(second)
  first.perOrderMicros.push(a)
  second.perOrderMicros.push(b)
  const baseMicros = base.perOrderMicros[round] as number
  const headMicros = head.perOrderMicros[round] as number
  ratios.push(baseMicros / headMicros)
  console.log(`round ${round + 1}: base ${baseMicros.toFixed(1)} µs/order, head ${headMicros.toFixed(1)}, ratio ${(baseMicros / headMicros).toFixed(3)}; load ${os.loadavg()[0]?.toFixed(2)}`)
}
console.log(
  `${rounds} rounds × ${burst} proposals × ${ordersPerProposal} orders per build: JavaScript thread base ${median(base.perOrderMicros).toFixed(2)} µs/order, head ${median(head.perOrderMicros).toFixed(2)} (medians); ratio base ÷ head ${median(ratios).toFixed(3)} (median of rounds)`,
)
for (const side of [base, head]) {
  await side.node.close()
  rmSync(side.directory, { recursive: true, force: true })
}
