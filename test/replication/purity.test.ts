// The engine and the simulator are deterministic: no clock, no randomness, no
// I/O, no timers. This scans their sources and fails on any such reference.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

const roots = ['src/replication', 'src/sim']
const forbidden: Array<[RegExp, string]> = [
  [/\bDate\b/, 'Date'],
  [/Math\.random/, 'Math.random'],
  [/performance\.now/, 'performance.now'],
  [/process\.hrtime/, 'process.hrtime'],
  [/\bsetTimeout\b/, 'setTimeout'],
  [/\bsetInterval\b/, 'setInterval'],
  [/\bsetImmediate\b/, 'setImmediate'],
  [/queueMicrotask/, 'queueMicrotask'],
  [/crypto\.getRandomValues|randomUUID|randomBytes/, 'crypto randomness'],
  [/['"]node:(fs|net|http|https|dgram|child_process|worker_threads|os|crypto|timers)(\/promises)?['"]/, 'node I/O module'],
  [/['"](fs|net|http|https|dgram|child_process|os|crypto)['"]/, 'node I/O module'],
  [/\bprocess\.(env|stdout|stderr|argv)\b/, 'process I/O'],
  [/\bfetch\(/, 'fetch'],
]

function sources(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name)
    if (statSync(path).isDirectory()) return sources(path)
    return path.endsWith('.ts') ? [path] : []
  })
}

function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1')
}

test('replication engine and simulator sources reference no clock, randomness, timers or I/O', () => {
  const files = roots.flatMap((root) => sources(root))
  assert.ok(files.length > 5, 'expected sources to scan')
  // The protocol core a server shares with the simulator is among them.
  for (const name of ['commit.ts', 'replica.ts', 'promotion.ts', 'driver.ts', 'types.ts']) {
    assert.ok(files.includes(join('src/replication', name)), `${name} is scanned`)
  }
  const findings: string[] = []
  for (const file of files) {
    const text = withoutComments(readFileSync(file, 'utf8'))
    for (const [pattern, name] of forbidden) {
      if (pattern.test(text)) findings.push(`${file}: ${name}`)
    }
  }
  assert.deepEqual(findings, [])
})

test('the purity scan itself catches a forbidden reference', () => {
  const sample = withoutComments("const now = Date.now() // fine in a comment: Math.random\nimport x from 'node:fs'")
  const hits = forbidden.filter(([pattern]) => pattern.test(sample)).map(([, name]) => name)
  assert.deepEqual(hits, ['Date', 'node I/O module'])
})
