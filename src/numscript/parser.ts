/**
 * Hand-written recursive-descent parser for Numscript (including the
 * experimental syntax: `oneof`, account interpolation, asset colors,
 * `with scaling through`, pragmas and function calls in expressions).
 *
 *   program     := pragma* ('vars' '{' varDecl* '}')? statement* EOF
 *   pragma      := '#!' '[' ident '(' (string (',' string)*)? ')' ']'
 *   varDecl     := ident $name ('=' expr)?
 *   statement   := 'send' sent '(' 'source' '=' source 'destination' '=' destination ')'
 *                | 'save' sent 'from' expr
 *                | call
 *   sent        := '[' unary '*' ']' | expr
 *   expr        := term (('+' | '-') term)*
 *   term        := unary ('/' unary)*
 *   unary       := '-' unary | primary
 *   primary     := number | percent | string | ASSET | @account | $var
 *                | '(' expr ')' | '[' unary expr ']' | call
 *   call        := ident '(' (expr (',' expr)*)? ')'
 *   source      := '{' (source* | allotSrc+) '}' | 'oneof' '{' source+ '}'
 *                | 'max' expr 'from' source
 *                | expr ('\' unary)? ('allowing' 'unbounded' 'overdraft'
 *                                   | 'allowing' 'overdraft' 'up' 'to' expr
 *                                   | 'with' 'scaling' 'through' expr)?
 *   allotSrc    := (expr | 'remaining') 'from' source
 *   destination := '{' (allotDest+ | capped* 'remaining' keptOrTo) '}'
 *                | 'oneof' '{' capped* 'remaining' keptOrTo '}' | expr
 *   allotDest   := (expr | 'remaining') keptOrTo
 *   capped      := 'max' expr keptOrTo
 *   keptOrTo    := 'kept' | 'to' destination
 */
import type {
  AllotmentPortion,
  CallExpr,
  Destination,
  DestinationAllotmentItem,
  DestinationCappedClause,
  Expr,
  KeptOrDestination,
  Position,
  Pragma,
  Program,
  Range,
  SentValue,
  Source,
  SourceAllotmentItem,
  Statement,
  VarDeclaration,
} from './ast.ts'
import { ParseError } from './errors.ts'
import { tokenize, type Token } from './lexer.ts'

/** Deepest nesting of expressions/blocks we accept; bounds recursion. */
export const nestingDepthMax = 200

function span(start: Range, end: Range): Range {
  return { start: start.start, end: end.end }
}

function describeToken(token: Token): string {
  switch (token.kind) {
    case 'eof':
      return 'end of input'
    case 'ident':
      return `'${token.text}'`
    case 'punct':
      return `'${token.text}'`
    case 'number':
    case 'percent':
      return `number ${token.text}`
    case 'string':
      return `string ${token.text}`
    case 'asset':
      return `asset ${token.text}`
    case 'account':
      return `account ${token.text}`
    case 'variable':
      return `variable ${token.text}`
    default: {
      const never: never = token
      return String(never)
    }
  }
}

class Parser {
  private readonly tokens: Token[]
  private index = 0
  private depth = 0

  constructor(tokens: Token[]) {
    this.tokens = tokens
  }

  private peek(ahead = 0): Token {
    const token = this.tokens[Math.min(this.index + ahead, this.tokens.length - 1)]
    if (token === undefined) throw new Error('parser: empty token stream')
    return token
  }

  private advance(): Token {
    const token = this.peek()
    if (token.kind !== 'eof') this.index += 1
    return token
  }

  private isPunct(text: string, ahead = 0): boolean {
    const token = this.peek(ahead)
    return token.kind === 'punct' && token.text === text
  }

  private isIdent(text: string, ahead = 0): boolean {
    const token = this.peek(ahead)
    return token.kind === 'ident' && token.text === text
  }

  private fail(expected: string, token: Token = this.peek()): never {
    throw new ParseError(`expected ${expected}, found ${describeToken(token)}`, token.range)
  }

  private expectPunct(text: string): Token {
    if (!this.isPunct(text)) this.fail(`'${text}'`)
    return this.advance()
  }

  private expectIdent(text: string): Token {
    if (!this.isIdent(text)) this.fail(`'${text}'`)
    return this.advance()
  }

  private enter(token: Token): void {
    this.depth += 1
    if (this.depth > nestingDepthMax) {
      throw new ParseError(`nesting deeper than ${nestingDepthMax} levels`, token.range)
    }
  }

  private leave(): void {
    this.depth -= 1
  }

  expectEnd(): void {
    if (this.peek().kind !== 'eof') this.fail('end of input')
  }

  parseProgram(): Program {
    const pragmas: Pragma[] = []
    while (this.isPunct('#!')) pragmas.push(this.parsePragma())
    const vars: VarDeclaration[] = []
    if (this.isIdent('vars') && this.isPunct('{', 1)) {
      this.advance()
      this.advance()
      while (!this.isPunct('}')) vars.push(this.parseVarDeclaration())
      this.advance()
    }
    const statements: Statement[] = []
    while (this.peek().kind !== 'eof') statements.push(this.parseStatement())
    const start: Position = { line: 1, column: 1, offset: 0 }
    return { pragmas, vars, statements, range: { start, end: this.peek().range.end } }
  }

  private parsePragma(): Pragma {
    const start = this.advance().range
    this.expectPunct('[')
    const nameToken = this.peek()
    if (nameToken.kind !== 'ident') this.fail('a pragma name (e.g. feature)')
    this.advance()
    const args: string[] = []
    this.expectPunct('(')
    if (!this.isPunct(')')) {
      for (;;) {
        const arg = this.peek()
        if (arg.kind !== 'string') this.fail('a string')
        this.advance()
        args.push(arg.value)
        if (!this.isPunct(',')) break
        this.advance()
      }
    }
    this.expectPunct(')')
    const end = this.expectPunct(']').range
    return { name: nameToken.text, args, range: span(start, end) }
  }

  private parseVarDeclaration(): VarDeclaration {
    const typeToken = this.peek()
    if (typeToken.kind !== 'ident') this.fail("a variable type (monetary, account, portion, asset, number, string) or '}'")
    this.advance()
    const nameToken = this.peek()
    if (nameToken.kind !== 'variable') this.fail('a variable name ($name)')
    this.advance()
    let origin: Expr | undefined
    if (this.isPunct('=')) {
      this.advance()
      origin = this.parseExpr()
    }
    return {
      type: typeToken.text,
      typeRange: typeToken.range,
      name: nameToken.name,
      nameRange: nameToken.range,
      origin,
      range: span(typeToken.range, origin?.range ?? nameToken.range),
    }
  }

  private parseStatement(): Statement {
    const token = this.peek()
    if (token.kind === 'ident' && token.text === 'send' && !this.isPunct('(', 1)) {
      this.advance()
      const sent = this.parseSentValue()
      this.expectPunct('(')
      this.expectIdent('source')
      this.expectPunct('=')
      const source = this.parseSource()
      this.expectIdent('destination')
      this.expectPunct('=')
      const destination = this.parseDestination()
      const end = this.expectPunct(')').range
      return { kind: 'send', sent, source, destination, range: span(token.range, end) }
    }
    if (token.kind === 'ident' && token.text === 'save' && !this.isPunct('(', 1)) {
      this.advance()
      const sent = this.parseSentValue()
      this.expectIdent('from')
      const account = this.parseExpr()
      return { kind: 'save', sent, account, range: span(token.range, account.range) }
    }
    if (token.kind === 'ident' && this.isPunct('(', 1)) {
      const call = this.parseCall()
      return { kind: 'call', call, range: call.range }
    }
    if (token.kind === 'ident' && token.text === 'vars') {
      throw new ParseError('the vars block must come before every statement', token.range)
    }
    this.fail("a statement ('send', 'save' or a function call)")
  }

  private parseSentValue(): SentValue {
    if (this.isPunct('[')) {
      const saved = this.index
      const open = this.advance()
      const asset = this.parseUnary()
      if (this.isPunct('*')) {
        this.advance()
        const close = this.expectPunct(']')
        return { kind: 'all', asset, range: span(open.range, close.range) }
      }
      this.index = saved
    }
    const monetary = this.parseExpr()
    return { kind: 'amount', monetary, range: monetary.range }
  }

  // ---- expressions

  parseExpr(): Expr {
    this.enter(this.peek())
    let left = this.parseTerm()
    while (this.isPunct('+') || this.isPunct('-')) {
      const op = this.advance().text as '+' | '-'
      const right = this.parseTerm()
      left = { kind: 'binary', op, left, right, range: span(left.range, right.range) }
    }
    this.leave()
    return left
  }

  private parseTerm(): Expr {
    let left = this.parseUnary()
    while (this.isPunct('/')) {
      this.advance()
      const right = this.parseUnary()
      left = { kind: 'binary', op: '/', left, right, range: span(left.range, right.range) }
    }
    return left
  }

  private parseUnary(): Expr {
    if (this.isPunct('-')) {
      const minus = this.advance()
      this.enter(minus)
      const operand = this.parseUnary()
      this.leave()
      return { kind: 'negate', operand, range: span(minus.range, operand.range) }
    }
    return this.parsePrimary()
  }

  private parsePrimary(): Expr {
    const token = this.peek()
    switch (token.kind) {
      case 'number':
        this.advance()
        return { kind: 'number', value: token.value, range: token.range }
      case 'percent':
        this.advance()
        return { kind: 'percent', numerator: token.numerator, denominator: token.denominator, range: token.range }
      case 'string':
        this.advance()
        return { kind: 'string', value: token.value, range: token.range }
      case 'asset':
        this.advance()
        return { kind: 'asset', value: token.text, range: token.range }
      case 'account':
        this.advance()
        return { kind: 'account', segments: token.segments, range: token.range }
      case 'variable':
        this.advance()
        return { kind: 'variable', name: token.name, range: token.range }
      case 'ident':
        if (this.isPunct('(', 1)) return this.parseCall()
        return this.fail('an expression')
      case 'punct':
        if (token.text === '(') {
          this.advance()
          const inner = this.parseExpr()
          this.expectPunct(')')
          return inner
        }
        if (token.text === '[') {
          this.advance()
          const asset = this.parseUnary()
          if (this.isPunct('*')) {
            throw new ParseError("'[ASSET *]' is only allowed as the amount of a send or save", this.peek().range)
          }
          const amount = this.parseExpr()
          const close = this.expectPunct(']')
          return { kind: 'monetary', asset, amount, range: span(token.range, close.range) }
        }
        return this.fail('an expression')
      case 'eof':
        return this.fail('an expression')
      default: {
        const never: never = token
        return never
      }
    }
  }

  private parseCall(): CallExpr {
    const name = this.advance()
    this.enter(name)
    this.expectPunct('(')
    const args: Expr[] = []
    if (!this.isPunct(')')) {
      for (;;) {
        args.push(this.parseExpr())
        if (!this.isPunct(',')) break
        this.advance()
      }
    }
    const close = this.expectPunct(')')
    this.leave()
    return { kind: 'call', name: name.text, nameRange: name.range, args, range: span(name.range, close.range) }
  }

  // ---- sources

  private parseSource(): Source {
    const token = this.peek()
    this.enter(token)
    try {
      if (this.isPunct('{')) return this.parseSourceBlock()
      if (this.isIdent('oneof') && this.isPunct('{', 1)) {
        this.advance()
        this.advance()
        const sources: Source[] = []
        while (!this.isPunct('}')) sources.push(this.parseSource())
        const close = this.advance()
        if (sources.length === 0) throw new ParseError('oneof needs at least one source', span(token.range, close.range))
        return { kind: 'oneof', sources, range: span(token.range, close.range) }
      }
      if (this.isIdent('max')) {
        this.advance()
        const cap = this.parseExpr()
        this.expectIdent('from')
        const from = this.parseSource()
        return { kind: 'capped', cap, from, range: span(token.range, from.range) }
      }
      return this.parseAccountSource(this.parseExpr())
    } finally {
      this.leave()
    }
  }

  private parseAccountSource(address: Expr): Source {
    let color: Expr | undefined
    if (this.isPunct('\\')) {
      this.advance()
      color = this.parseUnary()
    }
    if (this.isIdent('allowing')) {
      this.advance()
      if (this.isIdent('unbounded')) {
        this.advance()
        const end = this.expectIdent('overdraft').range
        return { kind: 'overdraft', address, color, bound: undefined, range: span(address.range, end) }
      }
      this.expectIdent('overdraft')
      this.expectIdent('up')
      this.expectIdent('to')
      const bound = this.parseExpr()
      return { kind: 'overdraft', address, color, bound, range: span(address.range, bound.range) }
    }
    if (this.isIdent('with')) {
      if (color !== undefined) {
        throw new ParseError('a color restriction cannot be combined with scaling', this.peek().range)
      }
      this.advance()
      this.expectIdent('scaling')
      this.expectIdent('through')
      const through = this.parseExpr()
      return { kind: 'scaling', address, through, range: span(address.range, through.range) }
    }
    return { kind: 'account', address, color, range: span(address.range, color?.range ?? address.range) }
  }

  private parseSourceBlock(): Source {
    const open = this.advance()
    const sources: Source[] = []
    const items: SourceAllotmentItem[] = []
    while (!this.isPunct('}')) {
      const token = this.peek()
      if (token.kind === 'eof') this.fail("a source or '}'")
      let portion: AllotmentPortion | undefined
      let source: Source | undefined
      if (this.isIdent('remaining')) {
        this.advance()
        portion = { kind: 'remaining', range: token.range }
      } else if (this.isPunct('{') || (this.isIdent('oneof') && this.isPunct('{', 1)) || this.isIdent('max')) {
        source = this.parseSource()
      } else {
        const expr = this.parseExpr()
        if (this.isIdent('from')) {
          portion = { kind: 'portion', expr, range: expr.range }
        } else {
          source = this.parseAccountSource(expr)
        }
      }
      if (portion !== undefined) {
        if (sources.length > 0) {
          throw new ParseError('cannot mix allotment items ("… from …") with in-order sources in one block', token.range)
        }
        this.expectIdent('from')
        const from = this.parseSource()
        items.push({ portion, from, range: span(token.range, from.range) })
      } else if (source !== undefined) {
        if (items.length > 0) {
          throw new ParseError('cannot mix in-order sources with allotment items ("… from …") in one block', token.range)
        }
        sources.push(source)
      }
    }
    const close = this.advance()
    const range = span(open.range, close.range)
    if (items.length > 0) return { kind: 'allotment', items, range }
    return { kind: 'inorder', sources, range }
  }

  // ---- destinations

  private parseKeptOrDestination(): KeptOrDestination {
    const token = this.peek()
    if (this.isIdent('kept')) {
      this.advance()
      return { kind: 'kept', range: token.range }
    }
    if (this.isIdent('to')) {
      this.advance()
      const destination = this.parseDestination()
      return { kind: 'to', destination, range: span(token.range, destination.range) }
    }
    return this.fail("'to' or 'kept'")
  }

  private parseDestination(): Destination {
    const token = this.peek()
    this.enter(token)
    try {
      if (this.isPunct('{')) return this.parseDestinationBlock()
      if (this.isIdent('oneof') && this.isPunct('{', 1)) {
        this.advance()
        this.advance()
        const clauses: DestinationCappedClause[] = []
        while (this.isIdent('max')) clauses.push(this.parseCappedClause())
        if (!this.isIdent('remaining')) this.fail("'max' or 'remaining'")
        this.advance()
        const remaining = this.parseKeptOrDestination()
        const close = this.expectPunct('}')
        return { kind: 'oneof', clauses, remaining, range: span(token.range, close.range) }
      }
      const address = this.parseExpr()
      return { kind: 'account', address, range: address.range }
    } finally {
      this.leave()
    }
  }

  private parseCappedClause(): DestinationCappedClause {
    const max = this.advance()
    const cap = this.parseExpr()
    const to = this.parseKeptOrDestination()
    return { cap, to, range: span(max.range, to.range) }
  }

  private parseDestinationBlock(): Destination {
    const open = this.advance()
    const clauses: DestinationCappedClause[] = []
    const items: DestinationAllotmentItem[] = []
    let remaining: { to: KeptOrDestination; range: Range } | undefined
    while (!this.isPunct('}')) {
      const token = this.peek()
      if (token.kind === 'eof') this.fail("a destination clause or '}'")
      if (this.isIdent('max')) {
        if (items.some((item) => item.portion.kind === 'portion')) {
          throw new ParseError("cannot mix 'max' clauses with allotment items in one block", token.range)
        }
        if (remaining !== undefined) throw new ParseError("the 'remaining' clause must be the last one", remaining.range)
        clauses.push(this.parseCappedClause())
        continue
      }
      if (this.isIdent('remaining')) {
        this.advance()
        const to = this.parseKeptOrDestination()
        const range = span(token.range, to.range)
        if (remaining !== undefined) throw new ParseError("only one 'remaining' clause is allowed", range)
        remaining = { to, range }
        items.push({ portion: { kind: 'remaining', range: token.range }, to, range })
        continue
      }
      if (clauses.length > 0) {
        throw new ParseError("cannot mix allotment items with 'max' clauses in one block", token.range)
      }
      const expr = this.parseExpr()
      const to = this.parseKeptOrDestination()
      items.push({ portion: { kind: 'portion', expr, range: expr.range }, to, range: span(token.range, to.range) })
    }
    const close = this.advance()
    const range = span(open.range, close.range)
    const hasPortions = items.some((item) => item.portion.kind === 'portion')
    if (hasPortions) return { kind: 'allotment', items, range }
    if (remaining === undefined) {
      throw new ParseError(
        clauses.length === 0 ? 'empty destination block' : "an in-order destination block must end with a 'remaining' clause",
        range,
      )
    }
    return { kind: 'inorder', clauses, remaining: remaining.to, range }
  }
}

/** Parses a whole script; throws `ParseError` with the line/column range of the mistake. */
export function parseProgram(source: string): Program {
  const tokens = tokenize(source)
  return new Parser(tokens).parseProgram()
}

/** Parses one expression (used by tests and tools). */
export function parseExpression(source: string): Expr {
  const parser = new Parser(tokenize(source))
  const expr = parser.parseExpr()
  parser.expectEnd()
  return expr
}
