/**
 * Where a tool's time goes (`tally check`, import, export), from a V8
 * `.cpuprofile` of `bench/check-import.ts --only …` (`node --cpu-prof`):
 *
 *   node --import tsx bench/tool-profile.ts FILE.cpuprofile [--top 20]
 *
 * Each busy sample is charged by its stack: to the **replay** when any frame
 * of it is the state machine or an order handler (`src/fsm/`, `src/orders/`,
 * `src/cache/`: the write path the check and the import run again, owned by
 * the engine), to **admission** (`src/admission/`: the import's planning)
 * when not under the replay, to the **tool's own** code when a frame is in
 * `src/check/` (scan, compare, spill, parse, print) and neither of those,
 * and to GC, V8 and the rest otherwise. GC samples carry no stack: they are
 * shown apart (whoever allocated). Prints shares and the heaviest functions by
 * self time in each part.
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import type { CpuProfile, CpuProfileNode } from '../src/bench/profile-summary.ts'

const { values, positionals } = parseArgs({ options: { top: { type: 'string' } }, allowPositionals: true })
const file = positionals[0]
if (file === undefined) throw new Error('usage: bench/tool-profile.ts FILE.cpuprofile [--top N]')
const top = Number(values.top ?? 12)
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile

type Part = 'replay' | 'admission' | "tool's own" | 'RocksDB and store (not under the above)' | 'GC' | 'V8 (program)' | 'other'

const byId = new Map<number, CpuProfileNode>()
const parentOf = new Map<number, number>()
for (const node of profile.nodes) {
  byId.set(node.id, node)
  for (const child of node.children ?? []) parentOf.set(child, node.id)
}

const partCache = new Map<number, Part>()
function partOf(id: number): Part {
  const cached = partCache.get(id)
  if (cached !== undefined) return cached
  const node = byId.get(id) as CpuProfileNode
  const name = node.callFrame.functionName
  if (name === '(garbage collector)') return 'GC'
  if (name === '(program)') return 'V8 (program)'
  let replay = false
  let admission = false
  let tool = false
  let store = false
  for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
    const url = (byId.get(at) as CpuProfileNode).callFrame.url
    if (/\/src\/(fsm|orders|cache)\//.test(url)) replay = true
    else if (/\/src\/admission\//.test(url)) admission = true
    else if (/\/src\/check\//.test(url)) tool = true
    else if (/\/src\/store\/|rocksdb|abstract-level/.test(url)) store = true
  }
  const part: Part = replay ? 'replay' : admission ? 'admission' : tool ? "tool's own" : store ? 'RocksDB and store (not under the above)' : 'other'
  partCache.set(id, part)
  return part
}

const byPart = new Map<Part, number>()
const selfByPart = new Map<Part, Map<string, number>>()
let busy = 0
for (let index = 0; index < profile.samples.length; index++) {
  const micros = Math.max(0, profile.timeDeltas[index + 1] ?? 0)
  const id = profile.samples[index] as number
  const node = byId.get(id) as CpuProfileNode
  if (node.callFrame.functionName === '(idle)') continue
  busy += micros
  const part = partOf(id)
  byPart.set(part, (byPart.get(part) ?? 0) + micros)
  const script = node.callFrame.url === '' ? '(native)' : node.callFrame.url.replace(/^.*\/(src|node_modules)\//, '$1/')
  const name = `${node.callFrame.functionName || '(anonymous)'} ${script}`
  const functions = selfByPart.get(part) ?? new Map<string, number>()
  functions.set(name, (functions.get(name) ?? 0) + micros)
  selfByPart.set(part, functions)
}

const lines = [`${file}: ${(busy / 1e6).toFixed(1)} s busy on the JavaScript thread`, '', '| part | seconds | share |', '| --- | --- | --- |']
for (const [part, micros] of [...byPart].sort((a, b) => b[1] - a[1])) lines.push(`| ${part} | ${(micros / 1e6).toFixed(2)} | ${((100 * micros) / busy).toFixed(1)} % |`)
for (const [part, functions] of selfByPart) {
  lines.push('', `${part}, heaviest by self time:`)
  for (const [name, micros] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${((100 * micros) / busy).toFixed(1).padStart(5)} %  ${name}`)
}
process.stdout.write(`${lines.join('\n')}\n`)
