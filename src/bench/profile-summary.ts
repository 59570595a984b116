import { invariant } from '../domain/index.ts'

/**
 * Where the server's JavaScript thread spends its time, from a V8
 * `.cpuprofile` (`node --cpu-prof`): self time by category, over a window
 * of the run, per committed transaction. `docs/performance.md` is built from
 * these summaries, so every later change is compared by the same buckets.
 *
 * A frame's category comes from its script: our own modules by directory
 * (`src/fsm/` is the FSM, `src/store/` row encoding and the store, …),
 * dependencies by package (fastify and node's HTTP are HTTP, RocksDB's
 * binding is RocksDB, lossless-json is JSON). Native frames have no script:
 * the engine's own (`(garbage collector)`, `(program)`, `(idle)`) are
 * categories, `JSON.parse`/`JSON.stringify` are JSON, and any other native
 * frame (a RocksDB write, a hash digest, a Buffer copy) is charged to the
 * nearest JavaScript caller's category — the work was done on its behalf.
 */

export interface CpuProfileCallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}

export interface CpuProfileNode {
  readonly id: number
  readonly callFrame: CpuProfileCallFrame
  readonly children?: readonly number[]
}

export interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[]
  /** Microseconds, V8's monotonic clock (CLOCK_MONOTONIC on Linux, as `process.hrtime`). */
  readonly startTime: number
  readonly endTime: number
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

export const profileCategories = [
  'GC',
  'JSON',
  'packed',
  'RocksDB',
  'hashing',
  'FSM',
  'admission',
  'store rows',
  'WAL',
  'cache',
  'audit',
  'orders',
  'HTTP',
  'API handlers',
  'other Tally',
  'Node internals',
  'V8 (program)',
  'other',
] as const
export type ProfileCategory = (typeof profileCategories)[number]

/** Script-path rules, first match wins. Paths use `/`; URLs are `file://…` or `node:…`. */
const scriptRules: ReadonlyArray<readonly [RegExp, ProfileCategory]> = [
  [/@nxtedition\/rocksdb|abstract-level|rocks-level|classic-level/, 'RocksDB'],
  [/lossless-json|\/src\/domain\/json|\/src\/domain\/transaction-json/, 'JSON'],
  // The binary encoding of rows, WAL records and audit bodies (docs/adr/0009), JSON's replacement inside the engine.
  [/\/src\/domain\/packed/, 'packed'],
  [/node:internal\/crypto|\/src\/audit\/.*(hash|hmac|sign)/, 'hashing'],
  [/\/src\/fsm\//, 'FSM'],
  [/\/src\/admission\//, 'admission'],
  [/\/src\/store\//, 'store rows'],
  [/\/src\/wal\//, 'WAL'],
  [/\/src\/cache\//, 'cache'],
  [/\/src\/audit\//, 'audit'],
  [/\/src\/orders\//, 'orders'],
  [/node_modules\/(fastify|@fastify|find-my-way|light-my-request|avvio|fast-json-stringify|secure-json-parse|pino|ajv)|node:_http|node:http|node:net|node:internal\/http|node:internal\/stream_base|node:stream|node:internal\/streams/, 'HTTP'],
  [/\/src\/api\//, 'API handlers'],
  [/\/src\//, 'other Tally'],
  [/^node:/, 'Node internals'],
]

const nativeJson = new Set(['parse', 'stringify', 'JSONParse', 'JSONStringify'])

function ownCategory(frame: CpuProfileCallFrame): ProfileCategory | undefined {
  if (frame.functionName === '(garbage collector)') return 'GC'
  if (frame.functionName === '(program)') return 'V8 (program)'
  if (frame.url === '') return nativeJson.has(frame.functionName) ? 'JSON' : undefined
  for (const [pattern, category] of scriptRules) if (pattern.test(frame.url)) return category
  return 'other'
}

export interface ProfileWindow {
  /** Inclusive bounds on sample timestamps, in the profile's microseconds. */
  readonly fromMicros: number
  readonly toMicros: number
}

export interface FunctionCost {
  readonly name: string
  readonly category: ProfileCategory
  readonly micros: number
}

export interface ProfileSummary {
  /** Time in samples inside the window, idle excluded. */
  readonly busyMicros: number
  readonly idleMicros: number
  readonly samples: number
  readonly byCategory: ReadonlyMap<ProfileCategory, number>
  /** Heaviest functions by self time, native frames under their own names. */
  readonly topFunctions: readonly FunctionCost[]
}

export function summariseProfile(profile: CpuProfile, window?: ProfileWindow, topCount = 25): ProfileSummary {
  invariant(profile.samples.length === profile.timeDeltas.length, 'a profile has one time delta per sample')
  const byId = new Map<number, CpuProfileNode>()
  const parentOf = new Map<number, number>()
  for (const node of profile.nodes) {
    byId.set(node.id, node)
    for (const child of node.children ?? []) parentOf.set(child, node.id)
  }
  const categoryCache = new Map<number, ProfileCategory>()
  const categoryOf = (id: number): ProfileCategory => {
    const cached = categoryCache.get(id)
    if (cached !== undefined) return cached
    // Walk up to the first frame with a category of its own.
    const path: number[] = []
    let category: ProfileCategory = 'other'
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const known = categoryCache.get(at)
      if (known !== undefined) {
        category = known
        break
      }
      path.push(at)
      const node = byId.get(at)
      invariant(node !== undefined, `profile node ${at} is listed`)
      const own = ownCategory(node.callFrame)
      if (own !== undefined) {
        category = own
        break
      }
    }
    for (const visited of path) categoryCache.set(visited, category)
    return category
  }

  const byCategory = new Map<ProfileCategory, number>()
  const byFunction = new Map<string, FunctionCost>()
  let busyMicros = 0
  let idleMicros = 0
  let samples = 0
  let timestamp = profile.startTime
  for (let index = 0; index < profile.samples.length; index++) {
    timestamp += profile.timeDeltas[index] ?? 0
    // A sample stands for the time until the next one.
    const micros = Math.max(0, (profile.timeDeltas[index + 1] ?? 0))
    if (window !== undefined && (timestamp < window.fromMicros || timestamp > window.toMicros)) continue
    const id = profile.samples[index]
    invariant(id !== undefined, 'a sample names a node')
    const node = byId.get(id)
    invariant(node !== undefined, `sampled node ${id} is listed`)
    samples += 1
    if (node.callFrame.functionName === '(idle)') {
      idleMicros += micros
      continue
    }
    busyMicros += micros
    const category = categoryOf(id)
    byCategory.set(category, (byCategory.get(category) ?? 0) + micros)
    const script = node.callFrame.url === '' ? '(native)' : node.callFrame.url.replace(/^.*\/(src|node_modules)\//, '$1/')
    // Line numbers of transpiled TypeScript point into tsx's output, not the source: left out.
    const line = node.callFrame.lineNumber > 0 && !script.startsWith('src/') ? `:${node.callFrame.lineNumber + 1}` : ''
    const name = `${node.callFrame.functionName || '(anonymous)'} ${script}${line}`
    const previous = byFunction.get(name)
    byFunction.set(name, { name, category, micros: (previous?.micros ?? 0) + micros })
  }
  const topFunctions = [...byFunction.values()].sort((left, right) => right.micros - left.micros).slice(0, topCount)
  return { busyMicros, idleMicros, samples, byCategory, topFunctions }
}
