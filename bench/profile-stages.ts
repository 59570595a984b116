/**
 * A single write's JavaScript-thread time split by pipeline stage, from a
 * profile `bench/profile.ts --keep FILE` kept:
 *
 *   node --import tsx bench/profile.ts --workload transactions --concurrency 64 --duration 10 --warmup 3 \
 *     --sampling-interval-us 100 --keep /tmp/p64.cpuprofile
 *   node --import tsx bench/profile-stages.ts --profile /tmp/p64.cpuprofile --js-micros 138.5 [--window 10] [--functions STAGE]
 *
 * `--js-micros` is the JavaScript thread's CPU per transaction that
 * `bench/profile.ts` printed (from /proc): each stage's share of the
 * profile's non-idle samples in the last `--window` seconds (the load
 * window) is scaled by it. A sample goes to the innermost frame on its stack
 * that marks a stage (the rules below, first match wins on each frame), so
 * the FSM's own calls into the cache stay the FSM's and the route's call
 * into admission is admission's. Where `bench/profile.ts` sums self time by
 * module, this says which step of a request's life pays it: the HTTP edge,
 * admission, the WAL hand-off, the apply, the store write, the answer.
 * `--functions STAGE` (a stage's name, or the start of it) also lists the
 * heaviest functions (self time) of the samples that stage took.
 */
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import type { CpuProfile, CpuProfileCallFrame } from '../src/bench/profile-summary.ts'

const { values } = parseArgs({ options: { profile: { type: 'string' }, 'js-micros': { type: 'string' }, window: { type: 'string', default: '10' }, functions: { type: 'string' } } })
if (values.profile === undefined || values['js-micros'] === undefined) throw new Error('--profile FILE --js-micros N: a kept profile and the JavaScript thread\'s µs per transaction')
const jsMicros = Number(values['js-micros'])
const profile = JSON.parse(await readFile(values.profile, 'utf8')) as CpuProfile

type Rule = readonly [stage: string, matches: (frame: CpuProfileCallFrame) => boolean]
const rules: readonly Rule[] = [
  ['GC', (f) => f.functionName === '(garbage collector)'],
  ['V8 (program)', (f) => f.functionName === '(program)'],
  ['route: body JSON and order parse', (f) => /src\/orders\/.*parse|src\/domain\/(json|lossless)/.test(f.url) && /parse/i.test(f.functionName) && !/src\/orders\/handlers/.test(f.url)],
  ['answer: transaction printed', (f) => /src\//.test(f.url) && /transactionData|writeTransaction|printableTransaction/.test(f.functionName)],
  ['answer: fastify send', (f) => f.functionName === 'sendPrinted' || (/fastify\/lib\/reply\.js/.test(f.url) && /send|onSend|writePayload/.test(f.functionName))],
  ['admission: proposal encoded', (f) => /encodeProposal|packProposalOrders/.test(f.functionName)],
  ['admission: needs planned', (f) => /src\/admission\/speculation/.test(f.url) || f.functionName === 'resolveNeeds'],
  ['admission: cache checked, seeds read', (f) => /src\/admission/.test(f.url) && /checkAll|loadSeeds|readRows/.test(f.functionName)],
  ['admission: other (gathering, stamping)', (f) => /src\/admission/.test(f.url)],
  ['WAL hand-off (append, group write, fdatasync call)', (f) => /src\/wal\//.test(f.url) || (f.functionName === 'append' && /ledger-node/.test(f.url))],
  ['apply: store write (RocksDB batch)', (f) => f.functionName === 'write' && /src\/store\/store\.ts/.test(f.url)],
  ['apply: audit', (f) => /src\/audit\//.test(f.url) || f.functionName === 'audit'],
  ['apply: FSM and the order', (f) => f.functionName === 'applyOne' && /ledger-node/.test(f.url)],
  ['apply loop: batch, metrics, results delivered', (f) => /ledger-node/.test(f.url) && /applyDurable|deliver|handToApply|scheduleApply/.test(f.functionName)],
  ['route handler: other', (f) => /src\/api\/(routes|writes|requests)/.test(f.url)],
  ['app hooks, metrics', (f) => /src\/api\/(app|transport|applied-index|metrics|histogram)/.test(f.url)],
  ['fastify: routing, body, hooks, reply', (f) => /node_modules\/(fastify|find-my-way|avvio|@fastify|pino)/.test(f.url)],
  ['Node HTTP in: parser, socket read', (f) => /_http_server|_http_common|_http_incoming/.test(f.url) || f.functionName === 'onStreamRead'],
  ['Node HTTP out: headers, socket writev', (f) => /_http_outgoing|stream_base_commons|streams\/writable|node:net/.test(f.url)],
  ['microtasks, timers', (f) => /task_queues|timers/.test(f.url) || f.functionName === 'runMicrotasks'],
]

const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
const parents = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id)
const stageOf = new Map<number, string>()
function stage(id: number): string {
  const known = stageOf.get(id)
  if (known !== undefined) return known
  const node = nodes.get(id)
  let found = 'other'
  if (node !== undefined) {
    const rule = rules.find(([, matches]) => matches(node.callFrame))
    const parent = parents.get(id)
    found = rule !== undefined ? rule[0] : parent === undefined ? 'other' : stage(parent)
  }
  stageOf.set(id, found)
  return found
}

const windowStart = profile.endTime - Number(values.window) * 1e6
const counts = new Map<string, number>()
/** `--functions`: samples per self function within the stage. */
const selfOf = new Map<string, number>()
let total = 0
let at = profile.startTime
profile.samples.forEach((id, i) => {
  at += profile.timeDeltas[i] ?? 0
  if (at < windowStart || nodes.get(id)?.callFrame.functionName === '(idle)') return
  total++
  const name = stage(id)
  counts.set(name, (counts.get(name) ?? 0) + 1)
  if (values.functions !== undefined && name.startsWith(values.functions)) {
    const frame = nodes.get(id)?.callFrame
    const label = frame === undefined ? '?' : `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${frame.lineNumber + 1}`
    selfOf.set(label, (selfOf.get(label) ?? 0) + 1)
  }
})
console.log(`| stage (JavaScript thread) | share | µs/tx |\n| --- | --- | --- |`)
for (const [name, count] of [...counts].sort((a, b) => b[1] - a[1])) {
  console.log(`| ${name} | ${((100 * count) / total).toFixed(1)} % | ${((jsMicros * count) / total).toFixed(1)} |`)
}
console.log(`| **total** (${total} samples) | 100 % | ${jsMicros.toFixed(1)} |`)
if (values.functions !== undefined) {
  console.log(`\n| heaviest functions in "${values.functions}…" (self) | µs/tx |\n| --- | --- |`)
  for (const [label, count] of [...selfOf].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`| \`${label}\` | ${((jsMicros * count) / total).toFixed(2)} |`)
}
