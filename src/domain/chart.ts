import type { Json } from './json.ts'
import { isJsonObject } from './json.ts'
import type { Keyed } from './keyed.ts'
import { emptyKeyed, ownEntries } from './keyed.ts'
import { describe } from './names.ts'
import { InvariantViolation, invariant, validationError } from './errors.ts'

/**
 * A ledger schema's chart of accounts (v2 `V2ChartOfAccounts`): a tree of
 * address segments. A key is a fixed segment (`users`), a variable segment
 * (`$userID`, at most one per level, optionally constrained by `.pattern`),
 * or a property (`.self`, `.pattern`, `.rules`, `.metadata`). A segment
 * without sub-segments is an account; `.self: {}` makes a segment with
 * sub-segments an account too. An address is in the chart when its segments
 * walk the tree — fixed segments first, then the variable one whose pattern
 * the segment matches (a search, as Go's `regexp.Match`) — and end on an
 * account. The root holds fixed segments only, so `world` must be listed
 * like any other account.
 */
export interface Chart {
  readonly fixed: ReadonlyMap<string, Chart>
  readonly variable: ChartVariable | undefined
  readonly account: ChartAccount | undefined
}

export interface ChartVariable {
  readonly label: string
  readonly pattern: RegExp | undefined
  readonly node: Chart
}

export interface ChartAccount {
  /** `.metadata`: default values by key, given to an account when a write following the schema creates it. */
  readonly metadataDefaults: ReadonlyMap<string, string>
}

/** Bounds a chart: its depth, its segments, a pattern's length. */
export const chartDepthMax = 32
export const chartSegmentsMax = 10_000
export const chartPatternLengthMax = 256

const SEGMENT = /^[a-zA-Z0-9_-]+$/
const PROPERTIES = new Set(['.self', '.pattern', '.rules', '.metadata'])

/**
 * Validates a chart as sent and returns it in the one canonical form that is
 * stored, hashed and served (maps without prototype: segment names are user
 * input). Every refusal names the path of the offending segment.
 */
export function parseChart(value: unknown, field = 'chart'): Keyed<Json> {
  if (!isJsonObject(value)) throw validationError(`${field}: expected an object of segments, got ${describe(value)}`)
  const counter = { segments: 0 }
  const canonical = emptyKeyed<Json>()
  for (const [key, child] of ownEntries(value)) {
    const path = `${field}.${key}`
    if (key.startsWith('$')) throw validationError(`${path}: the root of a chart holds fixed segments only, not a variable segment`)
    if (key.startsWith('.')) throw validationError(`${path}: the root of a chart cannot be an account (no properties at the root)`)
    if (!SEGMENT.test(key)) throw validationError(`${path}: invalid segment name, expected ${SEGMENT.source}`)
    if (isJsonObject(child) && Object.hasOwn(child, '.pattern')) throw validationError(`${path}: .pattern is allowed on variable segments ($name) only`)
    canonical[key] = parseSegment(child, path, 1, counter)
  }
  return canonical
}

function parseSegment(value: Json, path: string, depth: number, counter: { segments: number }): Keyed<Json> {
  if (!isJsonObject(value)) throw validationError(`${path}: expected a segment object, got ${describe(value)}`)
  if (depth > chartDepthMax) throw validationError(`${path}: a chart is at most ${chartDepthMax} segments deep`)
  counter.segments++
  if (counter.segments > chartSegmentsMax) throw validationError(`${path}: a chart has at most ${chartSegmentsMax} segments`)
  const canonical = emptyKeyed<Json>()
  let variable: string | undefined
  let subsegments = 0
  for (const [key, child] of ownEntries(value)) {
    const childPath = `${path}.${key}`
    if (key.startsWith('.')) {
      if (!PROPERTIES.has(key)) throw validationError(`${childPath}: unknown property, expected one of ${[...PROPERTIES].join(', ')}`)
      continue
    }
    const name = key.startsWith('$') ? key.slice(1) : key
    if (!SEGMENT.test(name)) throw validationError(`${childPath}: invalid segment name, expected ${SEGMENT.source} (with a leading $ for a variable segment)`)
    if (key.startsWith('$')) {
      if (variable !== undefined) throw validationError(`${childPath}: ${path} already has the variable segment ${variable}; one per level`)
      variable = key
      if (isJsonObject(child) && Object.hasOwn(child, '.pattern')) {
        const pattern = child['.pattern']
        if (typeof pattern !== 'string') throw validationError(`${childPath}.pattern: expected a string, got ${describe(pattern as Json)}`)
        checkPattern(pattern, `${childPath}.pattern`)
      }
    } else if (isJsonObject(child) && Object.hasOwn(child, '.pattern')) {
      throw validationError(`${childPath}: .pattern is allowed on variable segments ($name) only`)
    }
    subsegments++
    canonical[key] = parseSegment(child, childPath, depth + 1, counter)
  }
  const isAccount = subsegments === 0 || Object.hasOwn(value, '.self')
  if (Object.hasOwn(value, '.self')) {
    const self = value['.self']
    if (!isJsonObject(self) || Object.keys(self).length !== 0) throw validationError(`${path}..self: must be an empty object`)
    if (subsegments > 0) canonical['.self'] = emptyKeyed<Json>()
  }
  if (Object.hasOwn(value, '.pattern')) canonical['.pattern'] = value['.pattern'] as string
  if (Object.hasOwn(value, '.rules')) {
    if (!isAccount) throw validationError(`${path}..rules: only an account segment has rules (add .self: {})`)
    // Checked, not kept: v2 defines no rule and never writes `.rules` back (an empty one is no rule).
    parseRules(value['.rules'] as Json, `${path}..rules`)
  }
  if (Object.hasOwn(value, '.metadata')) {
    if (!isAccount) throw validationError(`${path}..metadata: only an account segment has metadata (add .self: {})`)
    canonical['.metadata'] = parseMetadataDefaults(value['.metadata'] as Json, `${path}..metadata`)
  }
  return canonical
}

/**
 * v2 defines no account rule yet (`V2ChartAccountRules` is an empty object).
 * A rule Tally does not know is refused rather than silently not enforced.
 */
function parseRules(value: Json, path: string): Keyed<Json> {
  if (!isJsonObject(value)) throw validationError(`${path}: expected an object, got ${describe(value)}`)
  const [unknown] = Object.keys(value)
  if (unknown !== undefined) throw validationError(`${path}.${unknown}: unknown account rule (v2 defines none yet)`)
  return emptyKeyed<Json>()
}

function parseMetadataDefaults(value: Json, path: string): Keyed<Json> {
  if (!isJsonObject(value)) throw validationError(`${path}: expected an object, got ${describe(value)}`)
  const canonical = emptyKeyed<Json>()
  for (const [key, entry] of ownEntries(value)) {
    if (!isJsonObject(entry)) throw validationError(`${path}[${JSON.stringify(key)}]: expected {default?}, got ${describe(entry)}`)
    const spec = emptyKeyed<Json>()
    for (const [property, given] of ownEntries(entry)) {
      if (property !== 'default') throw validationError(`${path}[${JSON.stringify(key)}].${property}: unknown property, expected default`)
      if (typeof given !== 'string') throw validationError(`${path}[${JSON.stringify(key)}].default: expected a string, got ${describe(given)}`)
      spec.default = given
    }
    canonical[key] = spec
  }
  return canonical
}

/**
 * A pattern runs inside the state machine for every posting, so it must not
 * take exponential time: refused are backreferences and lookarounds (Go's RE2,
 * which v2 uses, has neither) and a repeated group that itself repeats or
 * alternates (`(a+)+`, `(a|aa)*`), the shapes of catastrophic backtracking.
 */
export function checkPattern(pattern: string, path: string): void {
  if (pattern.length > chartPatternLengthMax) throw validationError(`${path}: a pattern has at most ${chartPatternLengthMax} characters`)
  try {
    new RegExp(pattern, 'u')
  } catch (error) {
    throw validationError(`${path}: invalid pattern: ${(error as Error).message}`)
  }
  const reason = backtrackingHazard(pattern)
  if (reason !== undefined) throw validationError(`${path}: pattern refused: ${reason}`)
}

interface Group {
  repeats: boolean
  alternates: boolean
}

function backtrackingHazard(pattern: string): string | undefined {
  const groups: Group[] = [{ repeats: false, alternates: false }]
  let inClass = false
  for (let i = 0; i < pattern.length; i++) {
    const character = pattern[i]
    const top = groups[groups.length - 1] as Group
    if (character === '\\') {
      const next = pattern[i + 1] ?? ''
      if (!inClass && (/[1-9]/.test(next) || next === 'k')) return 'backreferences are not supported'
      i++
      continue
    }
    if (inClass) {
      if (character === ']') inClass = false
      continue
    }
    if (character === '[') inClass = true
    else if (character === '(') {
      if (pattern.startsWith('(?=', i) || pattern.startsWith('(?!', i) || pattern.startsWith('(?<=', i) || pattern.startsWith('(?<!', i)) {
        return 'lookarounds are not supported'
      }
      groups.push({ repeats: false, alternates: false })
    } else if (character === ')') {
      const closed = groups.pop()
      invariant(closed !== undefined && groups.length > 0, 'a compiled pattern has balanced groups')
      const parent = groups[groups.length - 1] as Group
      if (isRepetition(pattern, i + 1)) {
        if (closed.repeats || closed.alternates) return 'a repeated group may not itself repeat or alternate (catastrophic backtracking)'
        parent.repeats = true
      }
      if (closed.repeats) parent.repeats = true
    } else if (character === '|') top.alternates = true
    else if (isRepetition(pattern, i)) top.repeats = true
  }
  return undefined
}

/** `*`, `+` or `{n,…}` at `at`: a repetition that backtracking can revisit. */
function isRepetition(pattern: string, at: number): boolean {
  const character = pattern[at]
  return character === '*' || character === '+' || (character === '{' && /^\{\d*,?\d*\}/.test(pattern.slice(at)))
}

// ---- lookup ---------------------------------------------------------------------

const compiled = new WeakMap<object, Chart>()

/** The chart as a tree to walk; memoised per stored value (schemas are immutable). */
export function compileChart(canonical: Readonly<Keyed<Json>>): Chart {
  let chart = compiled.get(canonical)
  if (chart === undefined) {
    chart = compileNode(canonical, true)
    compiled.set(canonical, chart)
  }
  return chart
}

function compileNode(node: Readonly<Keyed<Json>>, root: boolean): Chart {
  const fixed = new Map<string, Chart>()
  let variable: ChartVariable | undefined
  let subsegments = 0
  for (const [key, child] of ownEntries(node)) {
    if (key.startsWith('.')) continue
    if (!isJsonObject(child)) throw new InvariantViolation(`stored chart segment ${key} is not an object`)
    subsegments++
    if (key.startsWith('$')) {
      const pattern = child['.pattern']
      variable = { label: key.slice(1), pattern: typeof pattern === 'string' ? new RegExp(pattern, 'u') : undefined, node: compileNode(child, false) }
    } else {
      fixed.set(key, compileNode(child, false))
    }
  }
  const isAccount = !root && (subsegments === 0 || Object.hasOwn(node, '.self'))
  const defaults = new Map<string, string>()
  const metadata = node['.metadata']
  if (isJsonObject(metadata)) {
    for (const [key, spec] of ownEntries(metadata)) {
      if (isJsonObject(spec) && typeof spec.default === 'string') defaults.set(key, spec.default)
    }
  }
  return { fixed, variable, account: isAccount ? { metadataDefaults: defaults } : undefined }
}

/**
 * Where `address` stands in `chart`: its account, or why it is outside the
 * chart, in words a client can act on.
 */
export function findChartAccount(chart: Chart, address: string): { account: ChartAccount } | { refusal: string } {
  const segments = address.split(':')
  let node = chart
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string
    const under = i === 0 ? 'at the root of the chart' : `under ${segments.slice(0, i).join(':')}`
    const fixed = node.fixed.get(segment)
    if (fixed !== undefined) {
      node = fixed
      continue
    }
    const variable = node.variable
    if (variable === undefined) {
      return { refusal: `account ${address} is outside the chart of accounts: no segment ${JSON.stringify(segment)} ${under}` }
    }
    if (variable.pattern !== undefined && !variable.pattern.test(segment)) {
      return {
        refusal: `account ${address} is outside the chart of accounts: segment ${JSON.stringify(segment)} ${under} does not match the pattern ${variable.pattern.source} of $${variable.label}`,
      }
    }
    node = variable.node
  }
  if (node.account === undefined) {
    return { refusal: `account ${address} is outside the chart of accounts: ${address} is a segment with sub-accounts, not an account (add .self: {} to make it one)` }
  }
  return { account: node.account }
}
