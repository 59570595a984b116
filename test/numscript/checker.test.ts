import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CompileError, compile, type NumscriptReason } from '../../src/numscript/index.ts'

function compileError(source: string, featureFlags: readonly string[] = []): CompileError {
  try {
    compile(source, { featureFlags })
  } catch (error) {
    assert.ok(error instanceof CompileError, `expected a CompileError, got ${String(error)}`)
    return error
  }
  assert.fail('expected a compile error')
}

function expectError(source: string, reason: NumscriptReason, line: number, column: number, featureFlags: readonly string[] = []): void {
  const error = compileError(source, featureFlags)
  assert.equal(error.reason, reason, error.message)
  assert.equal(error.code, 'COMPILATION_FAILED')
  assert.deepEqual([error.range?.start.line, error.range?.start.column], [line, column], error.message)
}

test('type errors point at the offending expression', () => {
  expectError('send @a ( source = @a destination = @b )', 'TYPE_MISMATCH', 1, 6)
  expectError('send [COIN 1] (\n  source = "a"\n  destination = @b\n)', 'TYPE_MISMATCH', 2, 12)
  expectError('send [COIN 1] ( source = @a destination = { 50% to @b 1 to @c } )', 'TYPE_MISMATCH', 1, 55)
  expectError('set_tx_meta("k", [COIN 1] + 2)', 'TYPE_MISMATCH', 1, 18)
  expectError('set_tx_meta("k", "a" / 2)', 'TYPE_MISMATCH', 1, 18)
  expectError('set_tx_meta("k", -"a")', 'TYPE_MISMATCH', 1, 18)
  expectError('set_tx_meta(1, 2)', 'TYPE_MISMATCH', 1, 13)
  expectError('vars { account $a }\nsend [COIN 1] ( source = @world destination = @b )\nsave $a from @x', 'TYPE_MISMATCH', 3, 6)
  expectError('vars { account $a = balance(@x, COIN) }', 'TYPE_MISMATCH', 1, 21)
  expectError('send [COIN 1] ( source = max 3 from @a destination = @b )', 'TYPE_MISMATCH', 1, 30)
})

test('variables: unbound, duplicate, unknown type', () => {
  expectError('send [COIN 1] ( source = $nope destination = @b )', 'UNBOUND_VARIABLE', 1, 26)
  expectError('vars {\n  number $x\n  string $x\n}', 'DUPLICATE_VARIABLE', 3, 10)
  expectError('vars { money $x }', 'UNKNOWN_TYPE', 1, 8)
})

test('functions: unknown names, arity, statement vs expression, nested meta', () => {
  expectError('frobnicate(1)', 'UNKNOWN_FUNCTION', 1, 1)
  expectError('vars { monetary $m = balance(@a) }', 'WRONG_ARITY', 1, 22)
  expectError('balance(@a, COIN)', 'UNKNOWN_FUNCTION', 1, 1)
  expectError('vars { number $n = set_tx_meta("a", 1) }', 'UNKNOWN_FUNCTION', 1, 20)
  expectError(
    'vars { number $n = get_amount(meta(@a, "k")) }',
    'INVALID_NESTED_META',
    1,
    31,
    ['experimental-get-amount-function'],
  )
})

test('allotments: sums and remaining', () => {
  expectError('send [C 10] ( source = @world destination = { 50% to @a 40% to @b } )', 'INVALID_ALLOTMENT', 1, 45)
  expectError('send [C 10] ( source = @world destination = { 60% to @a 1/2 to @b remaining kept } )', 'INVALID_ALLOTMENT', 1, 45)
  expectError('send [C 10] ( source = { remaining from @a remaining from @b } destination = @d )', 'INVALID_ALLOTMENT', 1, 44)
  expectError('send [C *] ( source = { 50% from @a remaining from @b } destination = @d )', 'INVALID_ALLOTMENT', 1, 23)
  expectError('send [C *] ( source = @a allowing unbounded overdraft destination = @d )', 'UNBOUNDED_SEND_ALL', 1, 23)
  // portions through variables are checked at run time only
  compile('vars { portion $p } send [C 10] ( source = @world destination = { $p to @a 1/2 to @b } )')
})

test('experimental syntax needs its feature flag (or a pragma)', () => {
  const cases: [string, string][] = [
    ['send [C 1] ( source = oneof { @a @world } destination = @d )', 'experimental-oneof'],
    ['send [C 1] ( source = @world destination = oneof { max [C 1] to @a remaining kept } )', 'experimental-oneof'],
    ['vars { number $id } send [C 1] ( source = @world destination = @a:$id )', 'experimental-account-interpolation'],
    ['send [C 1] ( source = @a \\ "RED" destination = @d )', 'experimental-asset-colors'],
    ['send [C 1] ( source = @a with scaling through @s destination = @d )', 'experimental-asset-scaling'],
    ['vars { monetary $m = overdraft(@a, C) }', 'experimental-overdraft-function'],
    ['vars { asset $a = get_asset([C 1]) }', 'experimental-get-asset-function'],
    ['vars { number $a = get_amount([C 1]) }', 'experimental-get-amount-function'],
    ['send balance(@a, C) ( source = @world destination = @d )', 'experimental-mid-script-function-call'],
    ['vars { number $x = 1 + 2 }', 'experimental-mid-script-function-call'],
  ]
  for (const [source, flag] of cases) {
    const error = compileError(source)
    assert.equal(error.reason, 'EXPERIMENTAL_FEATURE', source)
    assert.match(error.message, new RegExp(flag))
    compile(source, { featureFlags: [flag] })
    compile(`#![feature("${flag}")]\n${source}`)
  }
})
