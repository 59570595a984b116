/**
 * Numscript errors. Each carries a stable `reason` (never renamed) and the
 * Formance v2 error code it maps to (`code`, inherited from TallyError):
 *
 *   parse errors                     → INTERPRETER_PARSE
 *   static (type / check) errors     → COMPILATION_FAILED
 *   errors raised while running      → INTERPRETER_RUNTIME
 *   missing funds                    → INSUFFICIENT_FUND
 *
 * `InputNotLoaded` is not a script error: an inputs provider throws it to tell
 * the caller which input to load before running the script again.
 */
import { TallyError, type ErrorCode, type ErrorKind } from '../domain/index.ts'
import type { Range } from './ast.ts'

export type NumscriptReason =
  // parse
  | 'PARSE_ERROR'
  // static checks
  | 'TYPE_MISMATCH'
  | 'UNBOUND_VARIABLE'
  | 'DUPLICATE_VARIABLE'
  | 'UNKNOWN_TYPE'
  | 'UNKNOWN_FUNCTION'
  | 'WRONG_ARITY'
  | 'EXPERIMENTAL_FEATURE'
  | 'INVALID_ALLOTMENT'
  | 'INVALID_NESTED_META'
  // runtime
  | 'MISSING_VARIABLE'
  | 'INVALID_VARIABLE_VALUE'
  | 'METADATA_NOT_FOUND'
  | 'NEGATIVE_AMOUNT'
  | 'NEGATIVE_BALANCE'
  | 'MISMATCHED_ASSETS'
  | 'DIVISION_BY_ZERO'
  | 'INVALID_ALLOTMENT_SUM'
  | 'INVALID_ACCOUNT_NAME'
  | 'INVALID_COLOR'
  | 'UNBOUNDED_SEND_ALL'
  | 'SCALING_UNSUPPORTED'
  | 'RUNTIME_TYPE_MISMATCH'
  | 'INVALID_POSTING'
  // funds
  | 'MISSING_FUNDS'

export type NumscriptStage = 'parse' | 'compile' | 'runtime' | 'funds'

function codeOf(stage: NumscriptStage): ErrorCode {
  switch (stage) {
    case 'parse':
      return 'INTERPRETER_PARSE'
    case 'compile':
      return 'COMPILATION_FAILED'
    case 'runtime':
      return 'INTERPRETER_RUNTIME'
    case 'funds':
      return 'INSUFFICIENT_FUND'
    default: {
      const never: never = stage
      throw new Error(`unknown stage ${String(never)}`)
    }
  }
}

function kindOf(stage: NumscriptStage): ErrorKind {
  return stage === 'parse' || stage === 'compile' ? 'validation' : 'business'
}

function where(range: Range | undefined): string {
  return range === undefined ? '' : ` (line ${range.start.line}, column ${range.start.column})`
}

export class NumscriptError extends TallyError {
  readonly reason: NumscriptReason
  readonly stage: NumscriptStage
  readonly range: Range | undefined
  /** The message without the position suffix. */
  readonly detail: string

  constructor(options: { reason: NumscriptReason; stage: NumscriptStage; message: string; range?: Range | undefined }) {
    const details: Record<string, string> = { reason: options.reason }
    if (options.range !== undefined) {
      details['line'] = String(options.range.start.line)
      details['column'] = String(options.range.start.column)
      details['endLine'] = String(options.range.end.line)
      details['endColumn'] = String(options.range.end.column)
    }
    super({
      code: codeOf(options.stage),
      kind: kindOf(options.stage),
      message: `${options.message}${where(options.range)}`,
      details,
    })
    this.name = 'NumscriptError'
    this.reason = options.reason
    this.stage = options.stage
    this.range = options.range
    this.detail = options.message
  }
}

export class ParseError extends NumscriptError {
  constructor(message: string, range: Range) {
    super({ reason: 'PARSE_ERROR', stage: 'parse', message, range })
    this.name = 'ParseError'
  }
}

export class CompileError extends NumscriptError {
  constructor(reason: NumscriptReason, message: string, range: Range | undefined) {
    super({ reason, stage: 'compile', message, range })
    this.name = 'CompileError'
  }
}

export class RuntimeError extends NumscriptError {
  constructor(reason: NumscriptReason, message: string, range?: Range | undefined) {
    super({ reason, stage: 'runtime', message, range })
    this.name = 'RuntimeError'
  }
}

export class MissingFunds extends NumscriptError {
  /** The first account of the source that could not provide the funds. */
  readonly account: string | undefined
  /** Every account of that source, in order. */
  readonly accounts: readonly string[]
  readonly asset: string
  readonly needed: bigint
  readonly available: bigint

  constructor(options: {
    accounts: readonly string[]
    asset: string
    needed: bigint
    available: bigint
    range: Range | undefined
  }) {
    const who = options.accounts.length === 0 ? 'source' : options.accounts.join(', ')
    super({
      reason: 'MISSING_FUNDS',
      stage: 'funds',
      message: `not enough funds in ${who}: needed [${options.asset} ${options.needed}], available [${options.asset} ${options.available}]`,
      range: options.range,
    })
    this.name = 'MissingFunds'
    this.accounts = options.accounts
    this.account = options.accounts[0]
    this.asset = options.asset
    this.needed = options.needed
    this.available = options.available
  }
}

export class NegativeAmount extends NumscriptError {
  readonly amount: bigint
  constructor(amount: bigint, range: Range | undefined) {
    super({ reason: 'NEGATIVE_AMOUNT', stage: 'runtime', message: `amount must not be negative, got ${amount}`, range })
    this.name = 'NegativeAmount'
    this.amount = amount
  }
}

/** Which input the provider could not serve. */
export type InputKey =
  | { readonly kind: 'balance'; readonly account: string; readonly asset: string }
  | { readonly kind: 'metadata'; readonly account: string; readonly key: string }
  | { readonly kind: 'scaledBalances'; readonly account: string; readonly baseAsset: string }

/**
 * Thrown by an inputs provider (and propagated untouched by the interpreter)
 * when an input is not in memory: the caller loads it and runs again.
 */
export class InputNotLoaded extends Error {
  readonly input: InputKey
  constructor(input: InputKey) {
    super(`numscript input not loaded: ${JSON.stringify(input)}`)
    this.name = 'InputNotLoaded'
    this.input = input
  }
}
