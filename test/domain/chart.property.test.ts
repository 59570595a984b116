import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { Json } from '../../src/domain/index.ts'
import { TallyError, canonicalJson, checkPattern, compileChart, findChartAccount, parseChart } from '../../src/domain/index.ts'

/**
 * The chart lookup (a walk down a tree, fixed segments before the variable
 * one) against a flat reference: the list of every account path, each a row
 * of per-segment predicates, an address being in the chart when some path of
 * its length accepts every segment. A variable segment accepts a name no
 * fixed sibling has and its pattern finds.
 */

type Predicate = { fixed: string } | { variable: string | undefined; siblings: readonly string[] }

interface Node {
  readonly fixed: Record<string, Node>
  readonly variable: { pattern: string | undefined; node: Node } | undefined
  readonly self: boolean
}

const NAMES = ['a', 'b', '1', 'ab'] as const
const PATTERNS = [undefined, '^[0-9]+$', 'a', '^b$', '^[a-z]{2}$'] as const

/** Nodes at most `depth` levels deep below them (charts stay small enough to enumerate). */
function nodeArbitrary(depth: number): fc.Arbitrary<Node> {
  if (depth === 0) return fc.constant({ fixed: {}, variable: undefined, self: false })
  const child = nodeArbitrary(depth - 1)
  return fc.record({
    fixed: fc.dictionary(fc.constantFrom(...NAMES), child, { maxKeys: 2 }),
    variable: fc.option(fc.record({ pattern: fc.constantFrom(...PATTERNS), node: child }), { nil: undefined }),
    self: fc.boolean(),
  })
}

const chartArbitrary = fc.dictionary(fc.constantFrom(...NAMES), nodeArbitrary(3), { minKeys: 1, maxKeys: 3 })

function toJson(node: Node): { [key: string]: Json } {
  const json: { [key: string]: Json } = {}
  for (const [name, child] of Object.entries(node.fixed)) json[name] = toJson(child)
  if (node.variable !== undefined) {
    const child = toJson(node.variable.node)
    if (node.variable.pattern !== undefined) child['.pattern'] = node.variable.pattern
    json.$v = child
  }
  if (node.self && Object.keys(json).length > 0) json['.self'] = {}
  return json
}

function accountPaths(node: Node, prefix: Predicate[], out: Predicate[][]): void {
  const fixedNames = Object.keys(node.fixed)
  const isAccount = (fixedNames.length === 0 && node.variable === undefined) || node.self
  if (prefix.length > 0 && isAccount) out.push(prefix)
  for (const [name, child] of Object.entries(node.fixed)) accountPaths(child, [...prefix, { fixed: name }], out)
  if (node.variable !== undefined) accountPaths(node.variable.node, [...prefix, { variable: node.variable.pattern, siblings: fixedNames }], out)
}

function referenceAccepts(chart: Record<string, Node>, address: string): boolean {
  const paths: Predicate[][] = []
  accountPaths({ fixed: chart, variable: undefined, self: false }, [], paths)
  const segments = address.split(':')
  return paths.some(
    (path) =>
      path.length === segments.length &&
      path.every((predicate, i) => {
        const segment = segments[i] as string
        if ('fixed' in predicate) return predicate.fixed === segment
        return !predicate.siblings.includes(segment) && (predicate.variable === undefined || new RegExp(predicate.variable, 'u').test(segment))
      }),
  )
}

const addressArbitrary = fc.array(fc.constantFrom(...NAMES, '7', 'zz', 'bb'), { minLength: 1, maxLength: 4 }).map((segments) => segments.join(':'))

test('property: an address is in the chart exactly when the flat reference accepts it', () => {
  fc.assert(
    fc.property(chartArbitrary, fc.array(addressArbitrary, { minLength: 1, maxLength: 20 }), (chart, addresses) => {
      const json: { [key: string]: Json } = {}
      for (const [name, node] of Object.entries(chart)) json[name] = toJson(node)
      const compiled = compileChart(parseChart(json))
      for (const address of addresses) {
        const found = findChartAccount(compiled, address)
        assert.equal('account' in found, referenceAccepts(chart, address), `${address} in ${JSON.stringify(json)}: ${JSON.stringify(found)}`)
        if ('refusal' in found) assert.match(found.refusal, new RegExp(`^account ${address} is outside the chart of accounts: `))
      }
    }),
    { numRuns: 400 },
  )
})

test('property: the canonical chart is a fixed point, independent of key order', () => {
  fc.assert(
    fc.property(chartArbitrary, (chart) => {
      const json: { [key: string]: Json } = {}
      for (const [name, node] of Object.entries(chart)) json[name] = toJson(node)
      const canonical = parseChart(json)
      assert.equal(canonicalJson(parseChart(canonical)), canonicalJson(canonical))
      const reversed = Object.fromEntries(Object.entries(json).reverse()) as { [key: string]: Json }
      assert.equal(canonicalJson(parseChart(reversed)), canonicalJson(canonical))
    }),
    { numRuns: 200 },
  )
})

test('chart: segment names that are Object.prototype members are data, not prototype lookups', () => {
  const chart = parseChart(JSON.parse('{"__proto__":{"constructor":{}},"toString":{}}') as Json)
  const compiled = compileChart(chart)
  assert.ok('account' in findChartAccount(compiled, '__proto__:constructor'))
  assert.ok('account' in findChartAccount(compiled, 'toString'))
  assert.ok('refusal' in findChartAccount(compiled, 'hasOwnProperty'))
  assert.ok('refusal' in findChartAccount(compiled, '__proto__'))
})

test('chart patterns: the backtracking shapes are refused, ordinary patterns pass', () => {
  for (const pattern of ['^[0-9]{16}$', '^(usd|eur)$', '^[a-z]+-[0-9]+$', '(ab)?c', '^x{2,3}$', '\\d+']) checkPattern(pattern, 'p')
  for (const [pattern, reason] of [
    ['(a+)+', /repeated group/],
    ['(a|aa)*', /repeated group/],
    ['((ab)*)+', /repeated group/],
    ['(\\d{1,3})*', /repeated group/],
    ['(a)\\1', /backreferences/],
    ['(?=a)a', /lookarounds/],
    ['(?<!a)b', /lookarounds/],
    ['x'.repeat(257), /at most 256/],
    ['(', /invalid pattern/],
  ] as const) {
    assert.throws(() => checkPattern(pattern, 'p'), (error: unknown) => error instanceof TallyError && reason.test(error.message), pattern.slice(0, 20))
  }
})
