import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { numscriptCommand } from '../../src/cli/numscript-command.ts'
import { checkSpecs, parseSpecs, SpecsFormatError } from '../../src/numscript/index.ts'
import { runSpecsDirectory } from '../../src/numscript/specs-runner.ts'

const script = `vars { number $amt }
send [EUR $amt] ( source = @alice allowing overdraft up to [EUR 10] destination = { 10% to @fees remaining to @bob } )
set_tx_meta("amt", $amt)
set_account_meta(@bob, "paid", "yes")`

function specs(cases: unknown[], top: Record<string, unknown> = {}): string {
  return JSON.stringify({ balances: [{ account: 'alice', asset: 'EUR', amount: 100 }], ...top, testCases: cases })
}

test('every expect.* key is checked', () => {
  const outcomes = checkSpecs(
    script,
    parseSpecs(
      specs(
        [
          {
            it: 'all expectations hold',
            variables: { amt: '50' },
            'expect.postings': [
              { source: 'alice', destination: 'fees', amount: 5, asset: 'EUR' },
              { source: 'alice', destination: 'bob', amount: 45, asset: 'EUR' },
            ],
            'expect.txMetadata': { amt: '50' },
            'expect.metadata': { bob: { paid: 'yes' } },
            'expect.endBalances': [
              { account: 'alice', asset: 'EUR', amount: 50 },
              { account: 'fees', asset: 'EUR', amount: 5 },
              { account: 'bob', asset: 'EUR', amount: 45 },
            ],
            'expect.endBalances.include': [{ account: 'bob', asset: 'EUR', amount: 45 }],
            'expect.movements': [
              { source: 'alice', destination: 'bob', asset: 'EUR', amount: 45 },
              { source: 'alice', destination: 'fees', asset: 'EUR', amount: 5 },
            ],
          },
          { it: 'missing funds', variables: { amt: '111' }, 'expect.error.missingFunds': true },
          { it: 'negative amount', variables: { amt: '-1' }, 'expect.error.negativeAmount': true },
          {
            it: 'wrong expectations',
            variables: { amt: '10' },
            'expect.postings': [],
            'expect.txMetadata': { amt: '11' },
            'expect.endBalances.include': [{ account: 'bob', asset: 'EUR', amount: 1 }],
            'expect.movements': [],
          },
          { it: 'unexpected missing funds', variables: { amt: '1000' }, 'expect.postings': [] },
          { it: 'expected error that does not happen', variables: { amt: '1' }, 'expect.error.missingFunds': true },
        ],
        { variables: { amt: '0' } },
      ),
    ),
  )
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ['pass', 'pass', 'pass', 'fail', 'fail', 'fail'],
  )
  const wrong = outcomes[3]?.reasons ?? []
  assert.equal(wrong.length, 5, wrong.join('\n'))
  assert.match(wrong[0] ?? '', /^postings: expected \(none\); got alice -> fees 1 EUR; alice -> bob 9 EUR$/)
  assert.match(outcomes[4]?.reasons[0] ?? '', /unexpected error MISSING_FUNDS/)
  assert.match(outcomes[5]?.reasons[0] ?? '', /expected a missing funds error/)
})

test('top-level values merge into each case; the case wins', () => {
  const outcomes = checkSpecs(
    'vars { string $s } set_tx_meta("s", $s)\nsend [EUR 5] ( source = @alice destination = @bob )',
    parseSpecs(
      specs(
        [
          { it: 'top-level', 'expect.txMetadata': { s: 'top' } },
          {
            it: 'override',
            variables: { s: 'case' },
            balances: [{ account: 'alice', asset: 'EUR', amount: 4 }],
            'expect.txMetadata': { s: 'case' },
            'expect.error.missingFunds': true,
          },
        ],
        { variables: { s: 'top' } },
      ),
    ),
  )
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ['pass', 'pass'],
  )
})

test('malformed specs are rejected with a path', () => {
  assert.throws(() => parseSpecs('{"testCases": [{"it": "x", "expect.postngs": []}]}'), (error: unknown) => {
    assert.ok(error instanceof SpecsFormatError)
    assert.match(error.message, /specs.testCases\[0\]: unknown key "expect.postngs"/)
    return true
  })
  assert.throws(() => parseSpecs('{"testCases": [{"it": "x", "balances": [{"account": "a", "asset": "A", "amount": 1.5}]}]}'), /expected an integer/)
  assert.throws(() => parseSpecs('not json'), SpecsFormatError)
})

test('a script that does not compile fails every case with its error', () => {
  const outcomes = checkSpecs('send (', parseSpecs(specs([{ it: 'a' }, { it: 'b' }])))
  assert.deepEqual(
    outcomes.map((o) => [o.status, o.reasons[0]?.startsWith('PARSE_ERROR')]),
    [
      ['fail', true],
      ['fail', true],
    ],
  )
})

function withDirectory(files: Record<string, string>, body: (root: string) => Promise<void> | void): Promise<void> | void {
  const root = mkdtempSync(join(tmpdir(), 'tally-numscript-'))
  for (const [name, content] of Object.entries(files)) {
    const path = join(root, name)
    mkdirSync(join(path, '..'), { recursive: true })
    writeFileSync(path, content)
  }
  const cleanup = (): void => rmSync(root, { recursive: true, force: true })
  try {
    const result = body(root)
    if (result instanceof Promise) return result.finally(cleanup)
    cleanup()
    return undefined
  } catch (error) {
    cleanup()
    throw error
  }
}

test('directory runs: recursion, skip and focus semantics', () =>
  withDirectory(
    {
      'a.num': 'send [EUR 1] ( source = @world destination = @x )',
      'a.num.specs.json': specs([
        { it: 'one', 'expect.postings': [{ source: 'world', destination: 'x', amount: 1, asset: 'EUR' }] },
        { it: 'two', skip: true },
      ]),
      'nested/deeper/b.num': 'send [EUR 1] ( source = @world destination = @y )',
      'nested/deeper/b.num.specs.json': specs([{ it: 'three', 'expect.postings': [] }]),
      'nested/no-specs.num': 'send (',
    },
    (root) => {
      const report = runSpecsDirectory(root)
      assert.deepEqual(
        report.files.map((f) => [f.file, f.folder]),
        [
          ['a.num', '.'],
          ['nested/deeper/b.num', 'nested/deeper'],
        ],
      )
      assert.deepEqual([report.passed, report.failed, report.skipped, report.ok], [1, 1, 1, false])

      writeFileSync(
        join(root, 'a.num.specs.json'),
        specs([{ it: 'one', focus: true, 'expect.postings': [{ source: 'world', destination: 'x', amount: 1, asset: 'EUR' }] }, { it: 'two' }]),
      )
      const focused = runSpecsDirectory(root)
      assert.deepEqual([focused.passed, focused.failed, focused.skipped, focused.focused, focused.ok], [1, 0, 2, true, false])
    },
  ))

test('tally numscript test: output, totals and exit codes', () =>
  withDirectory(
    {
      'ok.num': 'send [EUR 1] ( source = @world destination = @x )',
      'ok.num.specs.json': specs([{ it: 'sends', 'expect.postings': [{ source: 'world', destination: 'x', amount: 1, asset: 'EUR' }] }]),
    },
    async (root) => {
      const lines: string[] = []
      const errors: string[] = []
      const output = { out: (line: string) => lines.push(line), err: (line: string) => errors.push(line) }
      assert.equal(await numscriptCommand(['test', root], output), 0)
      assert.deepEqual(lines, ['PASS ok.num › sends', '', '1 files, 1 cases: 1 passed, 0 failed, 0 skipped'])

      writeFileSync(join(root, 'ok.num.specs.json'), specs([{ it: 'sends', 'expect.postings': [] }]))
      lines.length = 0
      assert.equal(await numscriptCommand(['test', root], output), 1)
      assert.equal(lines[0], 'FAIL ok.num › sends')
      assert.match(lines[1] ?? '', /postings: expected \(none\); got world -> x 1 EUR/)
      assert.equal(lines.at(-1), '1 files, 1 cases: 0 passed, 1 failed, 0 skipped')

      assert.equal(await numscriptCommand(['--help'], output), 0)
      assert.match(lines.at(-1) ?? '', /Exit status/)
      assert.equal(await numscriptCommand(['frobnicate'], output), 2)
      assert.match(errors.join('\n'), /unknown numscript subcommand "frobnicate"[\s\S]*Usage: tally numscript test DIR/)
      assert.equal(await numscriptCommand(['test'], output), 2)
      assert.equal(await numscriptCommand(['test', join(root, 'missing')], output), 2)
    },
  ))
