import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { repoRoot } from './spec.ts'

/**
 * docs/api-compatibility.md lists the open deviations by the title of the
 * `todo` test that reproduces each; a fixed deviation whose test became a
 * regular one must leave the list, and a new `todo` must join it.
 */

function listedDeviations(): string[] {
  const text = readFileSync(path.join(repoRoot, 'docs', 'api-compatibility.md'), 'utf8')
  const start = text.indexOf('## Known deviations')
  assert.ok(start >= 0, 'docs/api-compatibility.md has a "Known deviations" section')
  const end = text.indexOf('\n## ', start + 1)
  const section = text.slice(start, end < 0 ? undefined : end)
  return [...section.matchAll(/^\* \*\*`([^`]+)`\*\*/gm)].map((match) => match[1] as string)
}

export function todoTestTitles(source: string): string[] {
  return [...source.matchAll(/^\s*test\(\s*(['"`])((?:(?!\1).)+)\1\s*,\s*\{[^}]*\btodo\s*:/gm)].map((match) => match[2] as string)
}

test('the todo-test scanner finds todo tests and only them', () => {
  const source = "test('a', { todo: 'x' }, () => {})\ntest(\"b\", () => {})\ntest(`c`, { timeout: 1, todo: true }, async () => {})"
  assert.deepEqual(todoTestTitles(source), ['a', 'c'])
})

test('docs/api-compatibility.md lists exactly the open deviations (the todo tests of test/compat)', () => {
  const directory = path.join(repoRoot, 'test', 'compat')
  const todos = readdirSync(directory)
    .filter((file) => file.endsWith('.test.ts'))
    .flatMap((file) => todoTestTitles(readFileSync(path.join(directory, file), 'utf8')))
  assert.deepEqual([...listedDeviations()].sort(), [...todos].sort())
})
