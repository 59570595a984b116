import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'

const root = path.resolve(import.meta.dirname, '..', '..')

function sources(folder: string): string[] {
  const directory = path.join(root, 'src', folder)
  return readdirSync(directory).flatMap((name) => {
    const full = path.join(directory, name)
    if (statSync(full).isDirectory()) return sources(path.join(folder, name))
    return name.endsWith('.ts') ? [full] : []
  })
}

/** Strips comments so that prose about clocks does not trip the checks. */
function code(file: string): string {
  return readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:])\/\/.*$/gm, '$1')
}

const FORBIDDEN: [RegExp, string][] = [
  [/\bDate\.now\b/, 'a clock'],
  [/\bnew Date\b/, 'a clock'],
  [/\bperformance\./, 'a clock'],
  [/\bprocess\.(hrtime|env|argv)\b/, 'the environment'],
  [/\bMath\.random\b/, 'randomness'],
  [/\brandom(UUID|Bytes|Int)\b/, 'randomness'],
  [/\bset(Timeout|Interval|Immediate)\b/, 'timers'],
  [/from 'node:(fs|fs\/promises|net|http|child_process|os|worker_threads)'/, 'I/O'],
  [/from '(fastify|@nxtedition\/rocksdb)'/, 'I/O'],
  // Metrics reach the core through the node's PipelineObserver, never by import.
  [/from 'prom-client'/, 'metrics'],
]

/**
 * Invariants #2 and #3, made structural: the deterministic core (domain,
 * cache, orders, fsm, audit, numscript) reads no clock, no randomness, no environment,
 * does no I/O, and reaches the store only through its pure row layout.
 * Dates are parsed by calendar arithmetic (domain/dates.ts), never `Date`.
 */
test('the deterministic core has no clock, randomness, environment or I/O', () => {
  const exemptions = new Map([
    // The specs runner reads spec files for `tally numscript test`; the interpreter never imports it.
    [path.join(root, 'src/numscript/specs-runner.ts'), [/from 'node:(fs|fs\/promises|net|http|child_process|os|worker_threads)'/]],
  ])
  const violations: string[] = []
  for (const folder of ['domain', 'cache', 'orders', 'fsm', 'audit', 'numscript']) {
    for (const file of sources(folder)) {
      const text = code(file)
      for (const [pattern, what] of FORBIDDEN) {
        if (exemptions.get(file)?.some((exempt) => exempt.source === pattern.source)) continue
        if (pattern.test(text)) violations.push(`${path.relative(root, file)} uses ${what} (${pattern.source})`)
      }
    }
  }
  assert.deepEqual(violations, [])
})

test('the FSM reaches the store only through its row layout, and never the admission or server layers', () => {
  const violations: string[] = []
  for (const folder of ['fsm', 'cache', 'orders', 'audit', 'domain']) {
    for (const file of sources(folder)) {
      for (const match of code(file).matchAll(/from '([^']+)'/g)) {
        const target = match[1] as string
        if (!target.startsWith('.')) continue
        const resolved = path.relative(path.join(root, 'src'), path.resolve(path.dirname(file), target))
        const layer = resolved.split(path.sep)[0]
        if (layer === 'store' && resolved !== path.join('store', 'layout.ts')) violations.push(`${path.relative(root, file)} imports ${resolved}`)
        if (['admission', 'server', 'api', 'cli', 'wal'].includes(layer as string)) violations.push(`${path.relative(root, file)} imports ${resolved}`)
      }
    }
  }
  assert.deepEqual(violations, [])
})

test('the purity check itself catches a clock and a metrics import (so it cannot pass vacuously)', () => {
  for (const sample of ['const t = Date.now()', "import { Counter } from 'prom-client'"]) assert.ok(FORBIDDEN.some(([pattern]) => pattern.test(sample)), sample)
})
