/**
 * `tally numscript test DIR`: runs every `*.num` script that has a sibling
 * `*.num.specs.json` under DIR (recursively) and prints PASS/FAIL per case,
 * then totals. Exit code: 0 when every case passed (and none was skipped or
 * focused), 1 otherwise, 2 on a usage error.
 */
import { statSync } from 'node:fs'
import { runSpecsDirectory } from '../numscript/specs-runner.ts'

export const numscriptUsage = `Usage: tally numscript test DIR

Runs Numscript specs: every DIR/**/NAME.num with a NAME.num.specs.json next
to it (format: Formance's specs.schema.json). Prints PASS/FAIL for each test
case with the reason of each failure, then the totals.

Options:
  --failures-only   print only failing cases (and the totals)
  -h, --help        show this help

Exit status: 0 if every case passed, 1 if any failed or was skipped
(skip/focus), 2 on a usage error.`

interface Output {
  out(line: string): void
  err(line: string): void
}

const consoleOutput: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

export async function numscriptCommand(argv: string[], output: Output = consoleOutput): Promise<number> {
  await Promise.resolve()
  if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
    if (argv.length === 0) {
      output.err(numscriptUsage)
      return 2
    }
    output.out(numscriptUsage)
    return 0
  }
  const [subcommand, ...rest] = argv
  if (subcommand !== 'test') {
    output.err(`unknown numscript subcommand ${JSON.stringify(subcommand)}\n`)
    output.err(numscriptUsage)
    return 2
  }
  const failuresOnly = rest.includes('--failures-only')
  const positional = rest.filter((arg) => arg !== '--failures-only')
  const unknownOption = positional.find((arg) => arg.startsWith('-'))
  if (unknownOption !== undefined || positional.length !== 1) {
    output.err(unknownOption !== undefined ? `unknown option ${unknownOption}\n` : 'expected exactly one directory\n')
    output.err(numscriptUsage)
    return 2
  }
  const directory = positional[0] ?? ''
  if (!isDirectory(directory)) {
    output.err(`not a directory: ${directory}`)
    return 2
  }
  const report = runSpecsDirectory(directory)
  for (const file of report.files) {
    if (file.specsError !== undefined) {
      output.out(`FAIL ${file.file}: malformed specs file: ${file.specsError}`)
      continue
    }
    for (const outcome of file.cases) {
      if (outcome.status === 'pass' && !failuresOnly) output.out(`PASS ${file.file} › ${outcome.it}`)
      if (outcome.status === 'skip' && !failuresOnly) output.out(`SKIP ${file.file} › ${outcome.it}`)
      if (outcome.status === 'fail') {
        output.out(`FAIL ${file.file} › ${outcome.it}`)
        for (const reason of outcome.reasons) output.out(`     ${reason}`)
      }
    }
  }
  const total = report.passed + report.failed + report.skipped
  output.out('')
  output.out(
    `${report.files.length} files, ${total} cases: ${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`,
  )
  if (report.focused) output.out('note: some cases have "focus": only those ran (this run counts as a failure)')
  return report.ok ? 0 : 1
}
