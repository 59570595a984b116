/**
 * Two builds' attribute caches, each on the calls its own engine makes under a `_bulk` load:
 *   node --expose-gc --import tsx bench/cache-trace.ts --base ROOT [--proposals P] [--orders N] [--accounts A] [--chunk C] [--rounds R] [--passes S]
 *
 * `ROOT` is another checkout of Tally (`git archive <commit> | tar -x -C ROOT`
 * and a `node_modules` link), this file's checkout the other. A node of each
 * build in this process, side by side, applies P bulks of N deposits to A
 * accounts (`bench/deposits.ts`, 4 in flight each as `bench/bulk-apply.ts`
 * submits them), sync off, while every call its engine
 * makes on its cache (`enter`, `checkAll`, `get`, `put`, `tombstone`,
 * `preload`) is recorded with the very key strings and attributes passed
 * (so which calls share a string object is the engine's, as it is). Then
 * each build's trace is replayed into an empty cache of that build, of the
 * node's settings; a mirror sink encodes each index's segment when the next
 * index is entered (as the store write would). The traces are cut into
 * chunks of C indexes; the two builds take each chunk in turn (which goes
 * first alternates), a full GC before each, the JavaScript thread's
 * schedstat time measured per chunk. A round is the chunks of S passes over
 * the traces ÷ R (a fresh cache at the start of each pass); prints each
 * round's µs per order of cache calls, each build's median and the median of
 * the per-round ratios (base ÷ this checkout).
 *
 * Why: the cache is ~8 µs of the ~65 µs the JavaScript thread spends per
 * order; a change of 1 µs in it is 1.5 % of `bench/bulk-apply-pair.ts`, whose
 * rounds scatter ±20 % at load 10–15 (an A/A run of the base against itself:
 * per-round ratios 0.80–1.26). Alone, the cache's own cost is compared —
 * but at that load its rounds scatter as much: two A/A runs gave 0.946 and
 * 0.947 (rounds 0.62–1.37, `bench/results/2026-12-07-cache-cache.md`). Run an
 * A/A beside an A/B. What it leaves out: the engine's other work between the
 * calls (the CPU's caches and the heap shared with it), and the cost of a
 * change outside the cache (the calls are replayed, not the engine).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import type { Attribute, CanonicalKey, LedgerName } from '../src/domain/index.ts'
import { depositBulks } from './deposits.ts'
import { median } from './support/stats.ts'

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    proposals: { type: 'string', default: '1500' },
    orders: { type: 'string', default: '100' },
    accounts: { type: 'string', default: '10000' },
    chunk: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '20' },
    passes: { type: 'string', default: '3' },
  },
})
if (values.base === undefined) throw new Error('--base ROOT: another checkout of Tally')
const proposals = Number(values.proposals)
const ordersPerProposal = Number(values.orders)
const chunkIndexes = Number(values.chunk)
const passes = Number(values.passes)
const ledger = 'bench' as LedgerName

type Op =
  | { readonly op: 'enter'; readonly index: number }
  | { readonly op: 'checkAll'; readonly keys: readonly CanonicalKey[]; readonly index: number; readonly adopt: boolean }
  | { readonly op: 'get'; readonly key: CanonicalKey }
  | { readonly op: 'put'; readonly key: CanonicalKey; readonly attribute: Attribute }
  | { readonly op: 'tombstone'; readonly key: CanonicalKey }
  | { readonly op: 'preload'; readonly key: CanonicalKey; readonly attribute: Attribute | null }

/** The part of a build's cache the engine calls (both builds' `AttributeCache` have it; `adopt` only where it exists). */
interface CacheLike {
  enter(index: number, mirror: MirrorLike): boolean
  checkAll(keys: readonly CanonicalKey[], index: number, adopt?: CanonicalKey[]): boolean[] | 'unreachable'
  get(key: CanonicalKey): unknown
  put(key: CanonicalKey, attribute: Attribute, mirror: MirrorLike): void
  tombstone(key: CanonicalKey, mirror: MirrorLike): void
  preload(key: CanonicalKey, attribute: Attribute | null, mirror: MirrorLike): boolean
}
interface MirrorLike {
  putLater(key: Buffer, value: () => Buffer): void
  del(key: Buffer): void
}
interface Settings {
  readonly rotationThreshold: number
  readonly generationBytesMax: number | null
}
interface Driven {
  readonly cache: { readonly settings: Settings }
  readonly admission: { submit(orders: unknown[], options: { atomic: boolean; continueOnFailure: boolean }): Promise<unknown> }
  close(): Promise<void>
}
interface ServerModule {
  readonly LedgerNode: { open(options: { dataDirectory: string; sync: boolean }): Promise<Driven> }
}
interface CacheModule {
  readonly AttributeCache: (new (settings: Settings) => CacheLike) & { prototype: CacheLike }
}

/** A node of the build at `root`, its engine's cache calls recorded from here on. */
async function recorded(root: string): Promise<{ trace: Op[]; node: Driven; directory: string; stop: () => void; make: () => CacheLike }> {
  const server = (await import(pathToFileURL(path.join(root, 'src/server/index.ts')).href)) as ServerModule
  const { AttributeCache } = (await import(pathToFileURL(path.join(root, 'src/cache/index.ts')).href)) as CacheModule
  const trace: Op[] = []
  const proto = AttributeCache.prototype
  const original = { enter: proto.enter, checkAll: proto.checkAll, get: proto.get, put: proto.put, tombstone: proto.tombstone, preload: proto.preload }
  proto.enter = function (index, mirror) {
    trace.push({ op: 'enter', index })
    return original.enter.call(this, index, mirror)
  }
  proto.checkAll = function (keys, index, adopt) {
    // The keys as they came (a build whose checkAll adopts replaces some in the caller's array).
    trace.push({ op: 'checkAll', keys: [...keys], index, adopt: adopt !== undefined })
    return adopt === undefined ? original.checkAll.call(this, keys, index) : original.checkAll.call(this, keys, index, adopt)
  }
  proto.get = function (key) {
    trace.push({ op: 'get', key })
    return original.get.call(this, key)
  }
  // `preload` calls `put`: a put inside a preload is not recorded twice.
  let inPreload = false
  proto.put = function (key, attribute, mirror) {
    if (!inPreload) trace.push({ op: 'put', key, attribute })
    return original.put.call(this, key, attribute, mirror)
  }
  proto.tombstone = function (key, mirror) {
    trace.push({ op: 'tombstone', key })
    return original.tombstone.call(this, key, mirror)
  }
  proto.preload = function (key, attribute, mirror) {
    trace.push({ op: 'preload', key, attribute })
    inPreload = true
    try {
      return original.preload.call(this, key, attribute, mirror)
    } finally {
      inPreload = false
    }
  }
  const directory = mkdtempSync(path.join(os.tmpdir(), 'tally-cache-trace-'))
  const node = await server.LedgerNode.open({ dataDirectory: directory, sync: false })
  const settings = node.cache.settings
  return { trace, node, directory, stop: () => Object.assign(proto, original), make: () => new AttributeCache(settings) }
}

/**
 * Both builds' nodes under the same load at once, bulk for bulk (the event loop interleaves their
 * submits): the two traces are recorded side by side, their objects allocated alike in the heap
 * (one build's trace recorded after the other's sat in other places and ran ~5 % slower in an A/A run).
 */
async function recordBoth(roots: readonly [string, string]): Promise<[{ trace: Op[]; make: () => CacheLike }, { trace: Op[]; make: () => CacheLike }]> {
  const sides = [await recorded(roots[0]), await recorded(roots[1])] as const
  const drive = async (node: Driven): Promise<void> => {
    await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: {}, features: {} } }], { atomic: true, continueOnFailure: false })
    const nextBulk = depositBulks(ledger, ordersPerProposal, Number(values.accounts))
    const inFlight: Promise<unknown>[] = []
    for (let p = 0; p < proposals; p++) {
      inFlight.push(node.admission.submit(nextBulk(), { atomic: false, continueOnFailure: true }))
      if (inFlight.length === 4) await inFlight.shift()
    }
    await Promise.all(inFlight)
  }
  await Promise.all(sides.map((side) => drive(side.node)))
  for (const side of sides) {
    await side.node.close()
    rmSync(side.directory, { recursive: true, force: true })
    side.stop()
  }
  return [
    { trace: sides[0].trace, make: sides[0].make },
    { trace: sides[1].trace, make: sides[1].make },
  ]
}

/** Where each chunk of C indexes starts in a trace (the first at its start), and its end. */
function chunkStarts(trace: readonly Op[]): number[] {
  const starts: number[] = [0]
  let entered = 0
  for (let i = 0; i < trace.length; i++) {
    const op = trace[i] as Op
    if (op.op === 'enter' && ++entered % chunkIndexes === 0) starts.push(i)
  }
  starts.push(trace.length)
  return starts
}

/** A store batch per index: segments encoded when the next index is entered. */
class Sink implements MirrorLike {
  private later: (() => Buffer)[] = []
  encoded = 0
  putLater(_key: Buffer, value: () => Buffer): void {
    this.later.push(value)
  }
  del(): void {}
  flush(): void {
    for (const value of this.later) this.encoded += value().length
    this.later = []
  }
}

interface Build {
  readonly name: string
  readonly trace: readonly Op[]
  readonly starts: readonly number[]
  readonly make: () => CacheLike
  cache: CacheLike
  sink: Sink
  chunk: number
  readonly perOrderMicros: number[]
}

function build(name: string, { trace, make }: { trace: Op[]; make: () => CacheLike }): Build {
  const starts = chunkStarts(trace)
  console.log(`${name}: ${trace.length} calls for ${proposals * ordersPerProposal} orders (${(trace.length / (proposals * ordersPerProposal)).toFixed(2)} per order), ${starts.length - 1} chunks of ${chunkIndexes} indexes`)
  return { name, trace, starts, make, cache: make(), sink: new Sink(), chunk: 0, perOrderMicros: [] }
}

const [baseTrace, headTrace] = await recordBoth([values.base, path.resolve(import.meta.dirname, '..')])
const builds = [build('base', baseTrace), build('head', headTrace)] as const
const chunks = Math.min(builds[0].starts.length, builds[1].starts.length) - 1
const ordersPerChunk = (proposals * ordersPerProposal) / chunks

/** Replays the build's next chunk into its cache; returns the JavaScript thread's µs per order. */
function replay(build: Build): number {
  if (build.chunk === chunks) {
    build.cache = build.make()
    build.sink = new Sink()
    build.chunk = 0
  }
  const { cache, sink, trace } = build
  const from = build.starts[build.chunk] as number
  const to = build.starts[build.chunk + 1] as number
  build.chunk++
  const before = threadCpuNanos()
  for (let i = from; i < to; i++) {
    const op = trace[i] as Op
    switch (op.op) {
      case 'enter':
        sink.flush()
        cache.enter(op.index, sink)
        break
      case 'checkAll':
        if (op.adopt) {
          // The plan's array, as the engine passed it (a copy: the recorded keys stay as they came).
          const keys = op.keys.slice()
          cache.checkAll(keys, op.index, keys)
        } else cache.checkAll(op.keys, op.index)
        break
      case 'get':
        cache.get(op.key)
        break
      case 'put':
        cache.put(op.key, op.attribute, sink)
        break
      case 'tombstone':
        cache.tombstone(op.key, sink)
        break
      case 'preload':
        cache.preload(op.key, op.attribute, sink)
        break
    }
  }
  sink.flush()
  return (threadCpuNanos() - before) / 1000 / ordersPerChunk
}

const threadId = Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ')[0])
/** The JavaScript thread's time on the CPU so far, nanoseconds (first field of schedstat). */
function threadCpuNanos(): number {
  return Number(readFileSync(`/proc/self/task/${threadId}/schedstat`, 'utf8').split(' ')[0])
}

const gc = (globalThis as { gc?: () => void }).gc
const rounds = Number(values.rounds)
const chunksPerRound = Math.max(1, Math.floor((passes * chunks) / rounds))
const ratios: number[] = []
for (let round = 0; round < rounds; round++) {
  const spent = [0, 0]
  for (let c = 0; c < chunksPerRound; c++) {
    for (const b of (round + c) % 2 === 0 ? [0, 1] : [1, 0]) {
      gc?.()
      spent[b] = (spent[b] as number) + replay(builds[b] as Build)
    }
  }
  const [base, head] = spent.map((s) => (s as number) / chunksPerRound) as [number, number]
  builds[0].perOrderMicros.push(base)
  builds[1].perOrderMicros.push(head)
  ratios.push(base / head)
  console.log(`round ${round + 1}: base ${base.toFixed(3)} µs/order, head ${head.toFixed(3)}, ratio ${(base / head).toFixed(3)}; load ${os.loadavg()[0]?.toFixed(2)}`)
}
console.log(
  `${rounds} rounds × ${chunksPerRound} chunks of ${chunkIndexes} indexes: cache calls per order, JavaScript thread: base ${median(builds[0].perOrderMicros).toFixed(3)} µs, head ${median(builds[1].perOrderMicros).toFixed(3)} (medians); ratio base ÷ head ${median(ratios).toFixed(3)} (median of rounds); segment bytes base ${builds[0].sink.encoded}, head ${builds[1].sink.encoded} (this pass)`,
)
