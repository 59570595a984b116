/**
 * Static checks run before any input is read: variable declarations and
 * uses, the type of every expression, function names and arities, allotment
 * shapes, and experimental syntax behind its feature flag. The first problem
 * found is thrown as a `CompileError` (v2 `COMPILATION_FAILED`).
 */
import {
  VARIABLE_TYPES,
  type AllotmentPortion,
  type CallExpr,
  type Destination,
  type Expr,
  type KeptOrDestination,
  type Program,
  type Range,
  type Source,
  type Statement,
  type VariableType,
} from './ast.ts'
import { CompileError } from './errors.ts'
import { addRational, compareRational, ONE, rational, ZERO, type Rational } from './values.ts'

export const FEATURE_FLAGS = {
  overdraftFunction: 'experimental-overdraft-function',
  getAssetFunction: 'experimental-get-asset-function',
  getAmountFunction: 'experimental-get-amount-function',
  oneof: 'experimental-oneof',
  accountInterpolation: 'experimental-account-interpolation',
  midScriptFunctionCall: 'experimental-mid-script-function-call',
  assetColors: 'experimental-asset-colors',
  assetScaling: 'experimental-asset-scaling',
} as const

export const KNOWN_FEATURE_FLAGS: ReadonlySet<string> = new Set(Object.values(FEATURE_FLAGS))

type StaticType = VariableType | 'unknown'

/** Expression functions: argument types and result type. */
const FUNCTIONS: Readonly<Record<string, { args: readonly VariableType[]; result: StaticType; flag?: string }>> = {
  meta: { args: ['account', 'string'], result: 'unknown' },
  balance: { args: ['account', 'asset'], result: 'monetary' },
  overdraft: { args: ['account', 'asset'], result: 'monetary', flag: FEATURE_FLAGS.overdraftFunction },
  get_asset: { args: ['monetary'], result: 'asset', flag: FEATURE_FLAGS.getAssetFunction },
  get_amount: { args: ['monetary'], result: 'number', flag: FEATURE_FLAGS.getAmountFunction },
}

/** Statement functions. `unknown` accepts a value of any type. */
const STATEMENT_FUNCTIONS: Readonly<Record<string, readonly StaticType[]>> = {
  set_tx_meta: ['string', 'unknown'],
  set_account_meta: ['account', 'string', 'unknown'],
}

export interface CheckedProgram {
  readonly program: Program
  /** Declared type of every variable. */
  readonly variableTypes: ReadonlyMap<string, VariableType>
  /** Flags given by the caller plus the script's own `#![feature(…)]` pragmas. */
  readonly featureFlags: ReadonlySet<string>
}

export function isVariableType(name: string): name is VariableType {
  return (VARIABLE_TYPES as readonly string[]).includes(name)
}

class Checker {
  private readonly types = new Map<string, VariableType>()
  private readonly flags: ReadonlySet<string>

  constructor(flags: ReadonlySet<string>) {
    this.flags = flags
  }

  private requireFlag(flag: string, what: string, range: Range): void {
    if (!this.flags.has(flag)) {
      throw new CompileError('EXPERIMENTAL_FEATURE', `${what} is experimental: enable the feature flag "${flag}"`, range)
    }
  }

  checkProgram(program: Program): void {
    for (const declaration of program.vars) {
      if (!isVariableType(declaration.type)) {
        throw new CompileError(
          'UNKNOWN_TYPE',
          `unknown type "${declaration.type}" (expected one of ${VARIABLE_TYPES.join(', ')})`,
          declaration.typeRange,
        )
      }
      if (this.types.has(declaration.name)) {
        throw new CompileError('DUPLICATE_VARIABLE', `variable $${declaration.name} is declared twice`, declaration.nameRange)
      }
      if (declaration.origin !== undefined) this.checkOrigin(declaration.type, declaration.origin)
      this.types.set(declaration.name, declaration.type)
    }
    for (const statement of program.statements) this.checkStatement(statement)
  }

  private checkOrigin(type: VariableType, origin: Expr): void {
    if (origin.kind === 'call' && origin.name === 'meta') {
      this.checkCallArguments(origin, FUNCTIONS['meta']?.args ?? [], true)
      return
    }
    if (origin.kind !== 'call') this.requireFlag(FEATURE_FLAGS.midScriptFunctionCall, 'an expression as a variable origin', origin.range)
    this.expect(origin, type, true)
  }

  private checkStatement(statement: Statement): void {
    switch (statement.kind) {
      case 'send': {
        if (statement.sent.kind === 'all') {
          this.expect(statement.sent.asset, 'asset', false)
          this.checkSource(statement.source, true)
        } else {
          this.expect(statement.sent.monetary, 'monetary', false)
          this.checkSource(statement.source, false)
        }
        this.checkDestination(statement.destination)
        return
      }
      case 'save':
        if (statement.sent.kind === 'all') this.expect(statement.sent.asset, 'asset', false)
        else this.expect(statement.sent.monetary, 'monetary', false)
        this.expect(statement.account, 'account', false)
        return
      case 'call': {
        const call = statement.call
        const parameters = STATEMENT_FUNCTIONS[call.name]
        if (parameters === undefined) {
          const hint = FUNCTIONS[call.name] !== undefined ? ' (it returns a value and cannot be used as a statement)' : ''
          throw new CompileError('UNKNOWN_FUNCTION', `unknown statement function ${call.name}${hint}`, call.nameRange)
        }
        this.checkCallArguments(call, parameters, false)
        return
      }
      default: {
        const never: never = statement
        throw new Error(`unknown statement ${String(never)}`)
      }
    }
  }

  private checkCallArguments(call: CallExpr, parameters: readonly StaticType[], inOrigin: boolean): void {
    if (call.args.length !== parameters.length) {
      throw new CompileError(
        'WRONG_ARITY',
        `${call.name} expects ${parameters.length} argument(s), got ${call.args.length}`,
        call.range,
      )
    }
    call.args.forEach((arg, index) => {
      const parameter = parameters[index] ?? 'unknown'
      if (parameter === 'unknown') this.infer(arg, inOrigin)
      else this.expect(arg, parameter, inOrigin)
    })
  }

  private expect(expr: Expr, type: VariableType, inOrigin: boolean): void {
    const actual = this.infer(expr, inOrigin)
    if (actual !== 'unknown' && actual !== type) {
      throw new CompileError('TYPE_MISMATCH', `expected a value of type ${type}, got ${actual}`, expr.range)
    }
  }

  private infer(expr: Expr, inOrigin: boolean): StaticType {
    switch (expr.kind) {
      case 'number':
        return 'number'
      case 'string':
        return 'string'
      case 'asset':
        return 'asset'
      case 'percent':
        return 'portion'
      case 'account':
        for (const segment of expr.segments) {
          if (segment.kind !== 'variable') continue
          this.requireFlag(FEATURE_FLAGS.accountInterpolation, 'account interpolation', segment.range)
          const type = this.variableType(segment.name, segment.range)
          if (type !== 'account' && type !== 'number' && type !== 'string') {
            throw new CompileError(
              'TYPE_MISMATCH',
              `cannot interpolate a ${type} into an account name (expected account, number or string)`,
              segment.range,
            )
          }
        }
        return 'account'
      case 'variable':
        return this.variableType(expr.name, expr.range)
      case 'monetary':
        this.expect(expr.asset, 'asset', inOrigin)
        this.expect(expr.amount, 'number', inOrigin)
        return 'monetary'
      case 'negate': {
        const type = this.infer(expr.operand, inOrigin)
        if (type !== 'unknown' && type !== 'number' && type !== 'monetary') {
          throw new CompileError('TYPE_MISMATCH', `cannot negate a ${type}`, expr.range)
        }
        return type
      }
      case 'binary':
        return this.inferBinary(expr, inOrigin)
      case 'call':
        return this.inferCall(expr, inOrigin)
      default: {
        const never: never = expr
        throw new Error(`unknown expression ${String(never)}`)
      }
    }
  }

  private inferBinary(expr: Extract<Expr, { kind: 'binary' }>, inOrigin: boolean): StaticType {
    const left = this.infer(expr.left, inOrigin)
    const right = this.infer(expr.right, inOrigin)
    if (expr.op === '/') {
      for (const [side, type] of [
        [expr.left, left],
        [expr.right, right],
      ] as const) {
        if (type !== 'unknown' && type !== 'number') {
          throw new CompileError('TYPE_MISMATCH', `'/' expects numbers, got ${type}`, side.range)
        }
      }
      return 'portion'
    }
    const type = left === 'unknown' ? right : left
    if (left !== 'unknown' && right !== 'unknown' && left !== right) {
      throw new CompileError('TYPE_MISMATCH', `'${expr.op}' expects two values of the same type, got ${left} and ${right}`, expr.range)
    }
    if (type !== 'unknown' && type !== 'number' && type !== 'monetary' && type !== 'portion') {
      throw new CompileError('TYPE_MISMATCH', `'${expr.op}' does not apply to ${type} values`, expr.range)
    }
    return type
  }

  private inferCall(call: CallExpr, inOrigin: boolean): StaticType {
    if (call.name === 'meta') {
      throw new CompileError('INVALID_NESTED_META', 'meta() can only be used as the whole origin of a variable', call.range)
    }
    const signature = FUNCTIONS[call.name]
    if (signature === undefined) {
      const hint = STATEMENT_FUNCTIONS[call.name] !== undefined ? ' (it is a statement and returns no value)' : ''
      throw new CompileError('UNKNOWN_FUNCTION', `unknown function ${call.name}${hint}`, call.nameRange)
    }
    if (signature.flag !== undefined) this.requireFlag(signature.flag, `the ${call.name}() function`, call.nameRange)
    if (!inOrigin) {
      this.requireFlag(FEATURE_FLAGS.midScriptFunctionCall, 'a function call outside the vars block', call.range)
    }
    this.checkCallArguments(call, signature.args, inOrigin)
    return signature.result
  }

  private variableType(name: string, range: Range): VariableType {
    const type = this.types.get(name)
    if (type === undefined) throw new CompileError('UNBOUND_VARIABLE', `variable $${name} is not declared`, range)
    return type
  }

  private checkAddress(expr: Expr): void {
    this.expect(expr, 'account', false)
  }

  private checkColor(color: Expr | undefined): void {
    if (color === undefined) return
    this.requireFlag(FEATURE_FLAGS.assetColors, 'an asset color restriction', color.range)
    this.expect(color, 'string', false)
  }

  private checkSource(source: Source, sendAll: boolean): void {
    switch (source.kind) {
      case 'account':
        this.checkAddress(source.address)
        this.checkColor(source.color)
        return
      case 'overdraft':
        this.checkAddress(source.address)
        this.checkColor(source.color)
        if (source.bound !== undefined) this.expect(source.bound, 'monetary', false)
        else if (sendAll) {
          throw new CompileError('UNBOUNDED_SEND_ALL', 'cannot send all from a source allowing unbounded overdraft', source.range)
        }
        return
      case 'scaling':
        this.requireFlag(FEATURE_FLAGS.assetScaling, 'asset scaling', source.range)
        this.checkAddress(source.address)
        this.checkAddress(source.through)
        return
      case 'inorder':
        for (const sub of source.sources) this.checkSource(sub, sendAll)
        return
      case 'oneof':
        this.requireFlag(FEATURE_FLAGS.oneof, 'oneof', source.range)
        for (const sub of source.sources) this.checkSource(sub, sendAll)
        return
      case 'capped':
        this.expect(source.cap, 'monetary', false)
        this.checkSource(source.from, false)
        return
      case 'allotment':
        if (sendAll) {
          throw new CompileError('INVALID_ALLOTMENT', 'cannot send all ([ASSET *]) from a source allotment', source.range)
        }
        this.checkAllotment(source.items.map((item) => item.portion), source.range)
        for (const item of source.items) this.checkSource(item.from, false)
        return
      default: {
        const never: never = source
        throw new Error(`unknown source ${String(never)}`)
      }
    }
  }

  private checkDestination(destination: Destination): void {
    switch (destination.kind) {
      case 'account':
        this.checkAddress(destination.address)
        return
      case 'allotment':
        this.checkAllotment(destination.items.map((item) => item.portion), destination.range)
        for (const item of destination.items) this.checkKeptOrDestination(item.to)
        return
      case 'oneof':
        this.requireFlag(FEATURE_FLAGS.oneof, 'oneof', destination.range)
        for (const clause of destination.clauses) {
          this.expect(clause.cap, 'monetary', false)
          this.checkKeptOrDestination(clause.to)
        }
        this.checkKeptOrDestination(destination.remaining)
        return
      case 'inorder':
        for (const clause of destination.clauses) {
          this.expect(clause.cap, 'monetary', false)
          this.checkKeptOrDestination(clause.to)
        }
        this.checkKeptOrDestination(destination.remaining)
        return
      default: {
        const never: never = destination
        throw new Error(`unknown destination ${String(never)}`)
      }
    }
  }

  private checkKeptOrDestination(target: KeptOrDestination): void {
    if (target.kind === 'to') this.checkDestination(target.destination)
  }

  private checkAllotment(portions: readonly AllotmentPortion[], range: Range): void {
    const remaining = portions.filter((portion) => portion.kind === 'remaining')
    if (remaining.length > 1) {
      throw new CompileError('INVALID_ALLOTMENT', "an allotment may have only one 'remaining' item", remaining[1]?.range ?? range)
    }
    let sum: Rational | undefined = ZERO
    for (const portion of portions) {
      if (portion.kind === 'remaining') continue
      this.expect(portion.expr, 'portion', false)
      const literal = literalPortion(portion.expr)
      sum = literal === undefined || sum === undefined ? undefined : addRational(sum, literal)
    }
    if (sum === undefined) return
    const order = compareRational(sum, ONE)
    if (remaining.length === 0 && order !== 0) {
      throw new CompileError('INVALID_ALLOTMENT', `allotment portions sum to ${sum.numerator}/${sum.denominator}, not 1`, range)
    }
    if (remaining.length === 1 && order > 0) {
      throw new CompileError('INVALID_ALLOTMENT', `allotment portions sum to ${sum.numerator}/${sum.denominator}, more than 1`, range)
    }
  }
}

/** The value of a portion written with literals only (`12%`, `1/3`), else undefined. */
function literalPortion(expr: Expr): Rational | undefined {
  if (expr.kind === 'percent') return rational(expr.numerator, expr.denominator)
  if (expr.kind === 'binary' && expr.op === '/' && expr.left.kind === 'number' && expr.right.kind === 'number') {
    return expr.right.value === 0n ? undefined : rational(expr.left.value, expr.right.value)
  }
  return undefined
}

/** Checks a parsed program; throws `CompileError` on the first problem. */
export function checkProgram(program: Program, featureFlags: Iterable<string> = []): CheckedProgram {
  const flags = new Set(featureFlags)
  for (const pragma of program.pragmas) {
    if (pragma.name !== 'feature') {
      throw new CompileError('UNKNOWN_FUNCTION', `unknown pragma "${pragma.name}" (expected "feature")`, pragma.range)
    }
    for (const flag of pragma.args) flags.add(flag)
  }
  const checker = new Checker(flags)
  checker.checkProgram(program)
  const variableTypes = new Map<string, VariableType>()
  for (const declaration of program.vars) {
    if (isVariableType(declaration.type)) variableTypes.set(declaration.name, declaration.type)
  }
  return { program, variableTypes, featureFlags: flags }
}
