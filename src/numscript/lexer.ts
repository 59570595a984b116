/**
 * Numscript lexer: source text → tokens with exact ranges.
 * Whitespace, `// line` and (nestable) `/* block *\/` comments are skipped.
 */
import type { AccountSegment, Position, Range } from './ast.ts'
import { ParseError } from './errors.ts'

export type Punctuation = '(' | ')' | '[' | ']' | '{' | '}' | ',' | '=' | '*' | '+' | '-' | '/' | '\\' | '#!'

export type Token =
  | { readonly kind: 'number'; readonly value: bigint; readonly text: string; readonly range: Range }
  | {
      readonly kind: 'percent'
      readonly numerator: bigint
      readonly denominator: bigint
      readonly text: string
      readonly range: Range
    }
  | { readonly kind: 'string'; readonly value: string; readonly text: string; readonly range: Range }
  | { readonly kind: 'asset'; readonly text: string; readonly range: Range }
  | { readonly kind: 'account'; readonly segments: readonly AccountSegment[]; readonly text: string; readonly range: Range }
  | { readonly kind: 'variable'; readonly name: string; readonly text: string; readonly range: Range }
  | { readonly kind: 'ident'; readonly text: string; readonly range: Range }
  | { readonly kind: 'punct'; readonly text: Punctuation; readonly range: Range }
  | { readonly kind: 'eof'; readonly text: ''; readonly range: Range }

/** Longest source we lex; bounds memory and time per script. */
export const sourceCharsMax = 1_000_000

const PUNCTUATION = new Set<string>(['(', ')', '[', ']', '{', '}', ',', '=', '*', '+', '-', '/', '\\'])

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9'
}
function isLower(c: string | undefined): boolean {
  return c !== undefined && c >= 'a' && c <= 'z'
}
function isUpper(c: string | undefined): boolean {
  return c !== undefined && c >= 'A' && c <= 'Z'
}
function isAccountChar(c: string | undefined): boolean {
  return c !== undefined && (isLower(c) || isUpper(c) || isDigit(c) || c === '_' || c === '-')
}
function isVariableChar(c: string | undefined): boolean {
  return c !== undefined && (isLower(c) || isDigit(c) || c === '_')
}

export class Lexer {
  private readonly source: string
  private offset = 0
  private line = 1
  private column = 1

  constructor(source: string) {
    this.source = source
  }

  private position(): Position {
    return { line: this.line, column: this.column, offset: this.offset }
  }

  private peek(ahead = 0): string | undefined {
    return this.source[this.offset + ahead]
  }

  private advance(): string {
    const c = this.source[this.offset]
    if (c === undefined) throw new ParseError('unexpected end of input', this.rangeFrom(this.position()))
    this.offset += 1
    if (c === '\n') {
      this.line += 1
      this.column = 1
    } else {
      this.column += 1
    }
    return c
  }

  private rangeFrom(start: Position): Range {
    return { start, end: this.position() }
  }

  private skipTrivia(): void {
    for (;;) {
      const c = this.peek()
      if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
        this.advance()
      } else if (c === '/' && this.peek(1) === '/') {
        while (this.peek() !== undefined && this.peek() !== '\n') this.advance()
      } else if (c === '/' && this.peek(1) === '*') {
        this.skipBlockComment()
      } else {
        return
      }
    }
  }

  private skipBlockComment(): void {
    const start = this.position()
    this.advance()
    this.advance()
    let depth = 1
    while (depth > 0) {
      if (this.peek() === undefined) throw new ParseError('unterminated block comment', this.rangeFrom(start))
      if (this.peek() === '/' && this.peek(1) === '*') {
        this.advance()
        this.advance()
        depth += 1
      } else if (this.peek() === '*' && this.peek(1) === '/') {
        this.advance()
        this.advance()
        depth -= 1
      } else {
        this.advance()
      }
    }
  }

  tokenize(): Token[] {
    if (this.source.length > sourceCharsMax) {
      throw new ParseError(`script is longer than ${sourceCharsMax} characters`, this.rangeFrom(this.position()))
    }
    const tokens: Token[] = []
    for (;;) {
      this.skipTrivia()
      const start = this.position()
      const c = this.peek()
      if (c === undefined) {
        tokens.push({ kind: 'eof', text: '', range: this.rangeFrom(start) })
        return tokens
      }
      tokens.push(this.next(c, start))
    }
  }

  private next(c: string, start: Position): Token {
    if (isDigit(c)) return this.number(start)
    if (c === '"') return this.string(start)
    if (c === '@') return this.account(start)
    if (c === '$') return this.variable(start)
    if (isLower(c)) {
      while (isLower(this.peek()) || this.peek() === '_') this.advance()
      return { kind: 'ident', text: this.source.slice(start.offset, this.offset), range: this.rangeFrom(start) }
    }
    if (isUpper(c)) return this.asset(start)
    if (c === '#' && this.peek(1) === '!') {
      this.advance()
      this.advance()
      return { kind: 'punct', text: '#!', range: this.rangeFrom(start) }
    }
    if (PUNCTUATION.has(c)) {
      this.advance()
      return { kind: 'punct', text: c as Punctuation, range: this.rangeFrom(start) }
    }
    this.advance()
    throw new ParseError(`unexpected character ${JSON.stringify(c)}`, this.rangeFrom(start))
  }

  private digits(): string {
    let text = ''
    while (isDigit(this.peek())) text += this.advance()
    return text
  }

  private number(start: Position): Token {
    let digits = this.digits()
    while (this.peek() === '_' && isDigit(this.peek(1))) {
      this.advance()
      digits += this.digits()
    }
    if (this.peek() === '.' && isDigit(this.peek(1))) {
      this.advance()
      const fraction = this.digits()
      if (this.peek() !== '%') {
        throw new ParseError('a decimal number must be a percentage (e.g. 12.5%)', this.rangeFrom(start))
      }
      this.advance()
      const denominator = 100n * 10n ** BigInt(fraction.length)
      return {
        kind: 'percent',
        numerator: BigInt(digits + fraction),
        denominator,
        text: this.source.slice(start.offset, this.offset),
        range: this.rangeFrom(start),
      }
    }
    if (this.peek() === '%') {
      this.advance()
      return {
        kind: 'percent',
        numerator: BigInt(digits),
        denominator: 100n,
        text: this.source.slice(start.offset, this.offset),
        range: this.rangeFrom(start),
      }
    }
    return { kind: 'number', value: BigInt(digits), text: this.source.slice(start.offset, this.offset), range: this.rangeFrom(start) }
  }

  private string(start: Position): Token {
    this.advance()
    let value = ''
    for (;;) {
      const c = this.peek()
      if (c === undefined || c === '\n' || c === '\r') {
        throw new ParseError('unterminated string literal', this.rangeFrom(start))
      }
      if (c === '"') {
        this.advance()
        break
      }
      if (c === '\\' && this.peek(1) === '"') {
        this.advance()
        this.advance()
        value += '"'
        continue
      }
      value += this.advance()
    }
    return { kind: 'string', value, text: this.source.slice(start.offset, this.offset), range: this.rangeFrom(start) }
  }

  private variableName(start: Position): string {
    this.advance() // '$'
    if (!isLower(this.peek()) && this.peek() !== '_') {
      throw new ParseError('expected a variable name after "$" (lowercase letters, digits, "_")', this.rangeFrom(start))
    }
    let name = ''
    while (isVariableChar(this.peek())) name += this.advance()
    return name
  }

  private variable(start: Position): Token {
    const name = this.variableName(start)
    return { kind: 'variable', name, text: this.source.slice(start.offset, this.offset), range: this.rangeFrom(start) }
  }

  private account(start: Position): Token {
    this.advance() // '@'
    const segments: AccountSegment[] = []
    for (;;) {
      const segmentStart = this.position()
      if (this.peek() === '$') {
        const name = this.variableName(segmentStart)
        segments.push({ kind: 'variable', name, range: this.rangeFrom(segmentStart) })
      } else if (isAccountChar(this.peek())) {
        let text = ''
        while (isAccountChar(this.peek())) text += this.advance()
        segments.push({ kind: 'text', text, range: this.rangeFrom(segmentStart) })
      } else {
        throw new ParseError('expected an account name segment ([a-zA-Z0-9_-]+ or $variable)', this.rangeFrom(segmentStart))
      }
      if (this.peek() === ':' && (isAccountChar(this.peek(1)) || this.peek(1) === '$')) {
        this.advance()
        continue
      }
      break
    }
    return { kind: 'account', segments, text: this.source.slice(start.offset, this.offset), range: this.rangeFrom(start) }
  }

  private asset(start: Position): Token {
    while (isUpper(this.peek()) || isDigit(this.peek())) this.advance()
    // the ledger's `_SUFFIX` (e.g. a colored asset written out: USD_RED/2)
    if (this.peek() === '_' && isUpper(this.peek(1))) {
      this.advance()
      while (isUpper(this.peek())) this.advance()
    }
    if (this.peek() === '/' && isDigit(this.peek(1))) {
      this.advance()
      this.digits()
    }
    return { kind: 'asset', text: this.source.slice(start.offset, this.offset), range: this.rangeFrom(start) }
  }
}

export function tokenize(source: string): Token[] {
  return new Lexer(source).tokenize()
}
