import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ParseError, parseExpression, parseProgram, type Destination, type Source } from '../../src/numscript/index.ts'

function parseError(source: string): ParseError {
  try {
    parseProgram(source)
  } catch (error) {
    assert.ok(error instanceof ParseError, `expected a ParseError, got ${String(error)}`)
    return error
  }
  assert.fail('expected the script not to parse')
}

function sourceOf(text: string): Source {
  const program = parseProgram(`send [COIN 1] ( source = ${text} destination = @d )`)
  const statement = program.statements[0]
  assert.ok(statement?.kind === 'send')
  return statement.source
}

function destinationOf(text: string): Destination {
  const program = parseProgram(`send [COIN 1] ( source = @world destination = ${text} )`)
  const statement = program.statements[0]
  assert.ok(statement?.kind === 'send')
  return statement.destination
}

test('parse errors carry line and column ranges and v2 code INTERPRETER_PARSE', () => {
  const error = parseError('send [COIN 10] (\n  source = @a\n  destinaton = @b\n)')
  assert.equal(error.code, 'INTERPRETER_PARSE')
  assert.equal(error.reason, 'PARSE_ERROR')
  assert.deepEqual(
    { line: error.range?.start.line, column: error.range?.start.column, endColumn: error.range?.end.column },
    { line: 3, column: 3, endColumn: 13 },
  )
  assert.match(error.message, /expected 'destination', found 'destinaton' \(line 3, column 3\)/)
})

test('parse errors: unexpected character, unterminated string, missing parenthesis, end of input', () => {
  const unexpected = parseError('send [COIN 1] (\n source = @a ?')
  assert.equal(unexpected.range?.start.line, 2)
  assert.equal(unexpected.range?.start.column, 14)
  assert.match(unexpected.message, /unexpected character "\?"/)

  const unterminated = parseError('set_tx_meta("k, 1)')
  assert.match(unterminated.message, /unterminated string/)
  assert.equal(unterminated.range?.start.column, 13)

  const eof = parseError('send [COIN 1] ( source = @a destination = @b')
  assert.match(eof.message, /expected '\)', found end of input/)

  const comment = parseError('/* never closed')
  assert.match(comment.message, /unterminated block comment/)
})

test('parse errors: mixing allotment and in-order items, misplaced remaining, vars after statements', () => {
  assert.match(parseError('send [C 1] ( source = { 50% from @a @b } destination = @d )').message, /cannot mix/)
  assert.match(
    parseError('send [C 1] ( source = @a destination = { remaining to @x max [C 1] to @y } )').message,
    /remaining' clause must be the last/,
  )
  assert.match(parseError('send [C 1] ( source = @a destination = { max [C 1] to @y } )').message, /must end with a 'remaining'/)
  assert.match(parseError('set_tx_meta("a", 1)\nvars { number $x }').message, /vars block must come before/)
  assert.match(parseError('set_tx_meta("a", [COIN *])').message, /only allowed as the amount of a send or save/)
})

test('comments, digit separators, percentages and pragmas', () => {
  const program = parseProgram(`#![feature("experimental-oneof", "experimental-asset-colors")]
// a comment
/* a /* nested */ block comment */
send [EUR 10_000] ( source = @world destination = { 0.19% to @a remaining kept } )`)
  assert.deepEqual(program.pragmas[0]?.args, ['experimental-oneof', 'experimental-asset-colors'])
  const statement = program.statements[0]
  assert.ok(statement?.kind === 'send' && statement.sent.kind === 'amount')
  const monetary = statement.sent.monetary
  assert.ok(monetary.kind === 'monetary' && monetary.amount.kind === 'number')
  assert.equal(monetary.amount.value, 10_000n)
  assert.ok(statement.destination.kind === 'allotment')
  const first = statement.destination.items[0]?.portion
  assert.ok(first?.kind === 'portion' && first.expr.kind === 'percent')
  assert.deepEqual([first.expr.numerator, first.expr.denominator], [19n, 10_000n])
})

test('expression precedence: unary minus > "/" > "+"/"-", left associative', () => {
  const expr = parseExpression('1 - 2 + $a/3 - -4')
  assert.ok(expr.kind === 'binary' && expr.op === '-')
  assert.ok(expr.right.kind === 'negate')
  const left = expr.left
  assert.ok(left.kind === 'binary' && left.op === '+')
  assert.ok(left.left.kind === 'binary' && left.left.op === '-')
  assert.ok(left.right.kind === 'binary' && left.right.op === '/')
  const grouped = parseExpression('(1 + 2)/3')
  assert.ok(grouped.kind === 'binary' && grouped.op === '/' && grouped.left.kind === 'binary')
})

test('account literals: segments, interpolation', () => {
  const expr = parseExpression('@users:$id:wallet-1')
  assert.ok(expr.kind === 'account')
  assert.deepEqual(
    expr.segments.map((segment) => (segment.kind === 'text' ? segment.text : `$${segment.name}`)),
    ['users', '$id', 'wallet-1'],
  )
})

test('every source form parses', () => {
  assert.equal(sourceOf('@a').kind, 'account')
  const unbounded = sourceOf('@a allowing unbounded overdraft')
  assert.ok(unbounded.kind === 'overdraft' && unbounded.bound === undefined)
  const bounded = sourceOf('@a allowing overdraft up to [COIN 10]')
  assert.ok(bounded.kind === 'overdraft' && bounded.bound !== undefined)
  const colored = sourceOf('@a \\ "RED" allowing unbounded overdraft')
  assert.ok(colored.kind === 'overdraft' && colored.color?.kind === 'string')
  assert.equal(sourceOf('@a with scaling through @swap').kind, 'scaling')
  const inorder = sourceOf('{ @a @b allowing unbounded overdraft { @c } }')
  assert.ok(inorder.kind === 'inorder' && inorder.sources.length === 3)
  const allotment = sourceOf('{ 1/3 from @a 50% from { @b @c } $p from @x remaining from @world }')
  assert.ok(allotment.kind === 'allotment' && allotment.items.length === 4)
  assert.equal(allotment.items[3]?.portion.kind, 'remaining')
  const capped = sourceOf('max [COIN 5] from { @a @b }')
  assert.ok(capped.kind === 'capped' && capped.from.kind === 'inorder')
  const oneof = sourceOf('oneof { @a { @b @c } }')
  assert.ok(oneof.kind === 'oneof' && oneof.sources.length === 2)
})

test('every destination form parses', () => {
  assert.equal(destinationOf('@a').kind, 'account')
  const allotment = destinationOf('{ 80% to @a 8% kept remaining to { 1/2 to @b 1/2 to @c } }')
  assert.ok(allotment.kind === 'allotment' && allotment.items.length === 3)
  const inorder = destinationOf('{ max [COIN 1] to @a max [COIN 2] kept remaining to @b }')
  assert.ok(inorder.kind === 'inorder' && inorder.clauses.length === 2 && inorder.remaining.kind === 'to')
  const keptOnly = destinationOf('{ remaining kept }')
  assert.ok(keptOnly.kind === 'inorder' && keptOnly.clauses.length === 0 && keptOnly.remaining.kind === 'kept')
  const oneof = destinationOf('oneof { max [COIN 1] to @a remaining kept }')
  assert.ok(oneof.kind === 'oneof' && oneof.clauses.length === 1)
})

test('statements: send all, save, function calls, var origins', () => {
  const program = parseProgram(`vars {
  monetary $m = balance(@a, USD/2)
  string $s = meta(@a, "k")
  number $n
}
send [USD/2 *] ( source = @a destination = @b )
save [USD/2 10] from @a
save [USD/2 *] from @a
set_account_meta(@a, "k", $n)`)
  assert.equal(program.vars.length, 3)
  assert.equal(program.vars[0]?.origin?.kind, 'call')
  assert.deepEqual(
    program.statements.map((statement) => statement.kind),
    ['send', 'save', 'save', 'call'],
  )
  const send = program.statements[0]
  assert.ok(send?.kind === 'send' && send.sent.kind === 'all')
})

test('the nesting depth is bounded', () => {
  const deep = `set_tx_meta("k", ${'('.repeat(500)}1${')'.repeat(500)})`
  assert.match(parseError(deep).message, /nesting deeper than/)
})
