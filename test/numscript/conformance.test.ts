import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { runSpecsDirectory } from '../../src/numscript/specs-runner.ts'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
/**
 * Formance's conformance corpus is not part of this repository: the team keeps
 * a copy beside it. Where it is absent (a fresh clone) the suite says so in
 * one line and skips; the interpreter's own tests stand alone.
 */
const corpus = process.env.TALLY_NUMSCRIPT_CORPUS ?? resolve(repoRoot, '..', 'shared', 'conformance', 'numscript')
const corpusMissing = existsSync(corpus) ? false : `Numscript conformance corpus absent (${corpus}; set TALLY_NUMSCRIPT_CORPUS to run it)`

function isExperimental(file: string, featureFlags: readonly string[]): boolean {
  return file.split('/').includes('experimental') || featureFlags.length > 0
}

test('Formance numscript conformance corpus', { skip: corpusMissing }, (t) => {
  const report = runSpecsDirectory(corpus)
  assert.ok(report.files.length > 0, `no specs found under ${corpus}`)
  assert.equal(report.focused, false, 'the corpus must not contain focused cases')

  const perFolder = new Map<string, { passed: number; total: number }>()
  const stableFailures: string[] = []
  const experimentalFailures: string[] = []
  for (const file of report.files) {
    const counts = perFolder.get(file.folder) ?? { passed: 0, total: 0 }
    perFolder.set(file.folder, counts)
    const experimental = isExperimental(file.file, file.featureFlags)
    if (file.specsError !== undefined) {
      counts.total += 1
      ;(experimental ? experimentalFailures : stableFailures).push(`${file.file}: malformed specs: ${file.specsError}`)
      continue
    }
    for (const outcome of file.cases) {
      counts.total += 1
      if (outcome.status === 'pass') counts.passed += 1
      else (experimental ? experimentalFailures : stableFailures).push(`${file.file} › ${outcome.it}: ${outcome.reasons.join('; ')}`)
    }
  }
  for (const [folder, counts] of [...perFolder.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    t.diagnostic(`${folder}: ${counts.passed}/${counts.total} passed`)
  }
  t.diagnostic(`total: ${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`)
  for (const failure of experimentalFailures) t.diagnostic(`experimental failure: ${failure}`)
  assert.deepEqual(stableFailures, [], 'every non-experimental case must pass')
  assert.equal(report.skipped, 0)
})
