/**
 * The file side of the specs runner: finds every `*.num` with a sibling
 * `*.num.specs.json` under a directory (recursively, in sorted order), and
 * checks each. The interpreter never imports this file.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { checkSpecs, parseSpecs, SpecsFormatError, type CaseOutcome, type SpecsFile } from './specs.ts'

/** Most script files one run visits; bounds a mistaken run over a huge tree. */
export const specFilesMax = 100_000

export interface FileOutcome {
  /** Path of the `.num` file relative to the run's root, with `/` separators. */
  readonly file: string
  /** Directory of the file relative to the root (`.` for the root itself). */
  readonly folder: string
  readonly featureFlags: readonly string[]
  readonly cases: readonly CaseOutcome[]
  /** Set when the specs file itself is malformed (its cases are not run). */
  readonly specsError: string | undefined
}

export interface SpecsRunReport {
  readonly files: readonly FileOutcome[]
  readonly passed: number
  readonly failed: number
  readonly skipped: number
  /** True when some case had `focus` (only focused cases ran). */
  readonly focused: boolean
  /** Every case passed and none was skipped or focused. */
  readonly ok: boolean
}

function findScripts(root: string): string[] {
  const found: string[] = []
  const walk = (directory: string): void => {
    const entries = readdirSync(directory, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const entry of entries) {
      const path = join(directory, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.isFile() && entry.name.endsWith('.num')) {
        found.push(path)
        if (found.length > specFilesMax) throw new Error(`more than ${specFilesMax} .num files under ${root}`)
      }
    }
  }
  walk(root)
  return found
}

function exists(path: string): boolean {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}

function toSlashes(path: string): string {
  return path.split(sep).join('/')
}

/** Runs every script/specs pair under `root`. */
export function runSpecsDirectory(root: string): SpecsRunReport {
  const pairs: { script: string; file: string; folder: string; specs: SpecsFile | undefined; specsError: string | undefined; source: string }[] = []
  for (const script of findScripts(root)) {
    const specsPath = `${script}.specs.json`
    if (!exists(specsPath)) continue
    const file = toSlashes(relative(root, script))
    const slash = file.lastIndexOf('/')
    const folder = slash < 0 ? '.' : file.slice(0, slash)
    const source = readFileSync(script, 'utf8')
    try {
      pairs.push({ script, file, folder, specs: parseSpecs(readFileSync(specsPath, 'utf8')), specsError: undefined, source })
    } catch (error) {
      if (!(error instanceof SpecsFormatError)) throw error
      pairs.push({ script, file, folder, specs: undefined, specsError: error.message, source })
    }
  }
  const focused = pairs.some((pair) => pair.specs?.testCases.some((testCase) => testCase.focus) === true)
  const files: FileOutcome[] = pairs.map((pair) => ({
    file: pair.file,
    folder: pair.folder,
    featureFlags: pair.specs?.featureFlags ?? [],
    cases: pair.specs === undefined ? [] : checkSpecs(pair.source, pair.specs, { focusMode: focused }),
    specsError: pair.specsError,
  }))
  let passed = 0
  let failed = 0
  let skipped = 0
  for (const file of files) {
    if (file.specsError !== undefined) failed += 1
    for (const outcome of file.cases) {
      if (outcome.status === 'pass') passed += 1
      else if (outcome.status === 'fail') failed += 1
      else skipped += 1
    }
  }
  return { files, passed, failed, skipped, focused, ok: failed === 0 && skipped === 0 && !focused }
}
