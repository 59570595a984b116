/**
 * Static needs: which inputs a script will read and which accounts it may
 * write, computed from the program and its variables before any balance is
 * loaded. Admission uses it to preload; when a read depends on a value only
 * known at run time (a `meta()` result used as an account, say) the result
 * is marked incomplete and the caller falls back to running the script
 * against a provider that throws `InputNotLoaded`.
 *
 * The listed reads are a superset of what a run consults (every branch of a
 * `oneof`, every source of an in-order block, even when earlier ones suffice).
 */
import type { CallExpr, Destination, Expr, KeptOrDestination, Source, Statement } from './ast.ts'
import type { CheckedProgram } from './checker.ts'
import { assetScale, coloredAsset, isValidAccount, parseVariableValue, rational, valueToString, type Value } from './values.ts'

export interface BalanceNeed {
  readonly account: string
  readonly asset: string
}

export interface MetadataNeed {
  readonly account: string
  readonly key: string
}

export interface ScaledBalanceNeed {
  readonly account: string
  readonly baseAsset: string
}

export interface ScriptNeeds {
  /** True when every read the script can make is listed below. */
  readonly complete: boolean
  /** Why the needs are incomplete (empty when complete). */
  readonly unknowns: readonly string[]
  readonly balances: readonly BalanceNeed[]
  readonly metadata: readonly MetadataNeed[]
  readonly scaledBalances: readonly ScaledBalanceNeed[]
  /** Accounts that may receive or send funds, or get metadata. */
  readonly accountsWritten: readonly string[]
}

export interface NeedsOptions {
  readonly variables?: Readonly<Record<string, string>>
  readonly unboundedOverdraftEverywhere?: boolean
}

/** A statically known value, or what is known of it (a monetary's asset). */
interface Known {
  readonly value?: Value
  readonly asset?: string
}

const UNKNOWN: Known = {}

class NeedsWalker {
  private readonly values = new Map<string, Known>()
  private readonly balances = new Map<string, BalanceNeed>()
  private readonly metadata = new Map<string, MetadataNeed>()
  private readonly scaled = new Map<string, ScaledBalanceNeed>()
  private readonly written = new Set<string>()
  private readonly unknowns: string[] = []
  private readonly force: boolean

  constructor(private readonly options: NeedsOptions) {
    this.force = options.unboundedOverdraftEverywhere === true
  }

  private unknown(reason: string): void {
    if (this.unknowns.length < 16 && !this.unknowns.includes(reason)) this.unknowns.push(reason)
  }

  walk(checked: CheckedProgram): ScriptNeeds {
    for (const declaration of checked.program.vars) {
      const type = checked.variableTypes.get(declaration.name)
      if (declaration.origin === undefined) {
        const variables = this.options.variables
        const raw = variables !== undefined && Object.hasOwn(variables, declaration.name) ? variables[declaration.name] : undefined
        const parsed = raw === undefined || type === undefined ? undefined : parseVariableValue(type, raw)
        this.values.set(declaration.name, parsed === undefined || typeof parsed === 'string' ? UNKNOWN : this.known(parsed))
      } else if (declaration.origin.kind === 'call' && declaration.origin.name === 'meta') {
        const account = this.account(declaration.origin.args[0])
        const key = this.evaluate(declaration.origin.args[1]).value
        if (account === undefined || key?.type !== 'string') this.unknown(`meta() of $${declaration.name} reads an unknown key`)
        else this.metadata.set(`${account}\u0000${key.value}`, { account, key: key.value })
        this.values.set(declaration.name, UNKNOWN)
      } else {
        this.values.set(declaration.name, this.evaluate(declaration.origin))
      }
    }
    for (const statement of checked.program.statements) this.statement(statement)
    const byKey = <T>(map: Map<string, T>): T[] => [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v)
    return {
      complete: this.unknowns.length === 0,
      unknowns: this.unknowns,
      balances: byKey(this.balances),
      metadata: byKey(this.metadata),
      scaledBalances: byKey(this.scaled),
      accountsWritten: [...this.written].sort(),
    }
  }

  private known(value: Value): Known {
    return value.type === 'monetary' ? { value, asset: value.asset } : { value }
  }

  private readBalance(account: string | undefined, asset: string | undefined, what: string): void {
    if (account === undefined || asset === undefined) {
      this.unknown(`${what}: balance of an account or asset known only at run time`)
      return
    }
    this.balances.set(`${account}\u0000${asset}`, { account, asset })
  }

  private statement(statement: Statement): void {
    switch (statement.kind) {
      case 'send': {
        const asset = statement.sent.kind === 'all' ? this.assetOf(statement.sent.asset) : this.evaluate(statement.sent.monetary).asset
        this.source(statement.source, asset, statement.sent.kind === 'all')
        this.destination(statement.destination)
        return
      }
      case 'save': {
        const asset = statement.sent.kind === 'all' ? this.assetOf(statement.sent.asset) : this.evaluate(statement.sent.monetary).asset
        this.readBalance(this.account(statement.account), asset, 'save')
        return
      }
      case 'call':
        if (statement.call.name === 'set_account_meta') {
          const account = this.account(statement.call.args[0])
          if (account === undefined) this.unknown('set_account_meta on an account known only at run time')
          else this.written.add(account)
          for (const arg of statement.call.args.slice(1)) this.evaluate(arg)
        } else {
          for (const arg of statement.call.args) this.evaluate(arg)
        }
        return
      default: {
        const never: never = statement
        throw new Error(`unknown statement ${String(never)}`)
      }
    }
  }

  private writtenAccount(expr: Expr): string | undefined {
    const account = this.account(expr)
    if (account === undefined) this.unknown('an account known only at run time')
    else this.written.add(account)
    return account
  }

  private color(expr: Expr | undefined): string | undefined {
    if (expr === undefined) return ''
    const value = this.evaluate(expr).value
    return value?.type === 'string' ? value.value : undefined
  }

  private accountSource(address: Expr, color: Expr | undefined, asset: string | undefined, reads: boolean): void {
    const account = this.writtenAccount(address)
    const colorValue = this.color(color)
    if (!reads || account === 'world') return
    this.readBalance(account, asset === undefined || colorValue === undefined ? undefined : coloredAsset(asset, colorValue), 'source')
  }

  private source(source: Source, asset: string | undefined, sendAll: boolean): void {
    switch (source.kind) {
      case 'account':
        this.accountSource(source.address, source.color, asset, sendAll || !this.force)
        return
      case 'overdraft':
        if (source.bound !== undefined) this.evaluate(source.bound)
        this.accountSource(source.address, source.color, asset, sendAll || (!this.force && source.bound !== undefined))
        return
      case 'scaling': {
        const account = this.writtenAccount(source.address)
        this.writtenAccount(source.through)
        if (account === undefined || asset === undefined) {
          this.unknown('scaling: account or asset known only at run time')
        } else {
          const base = assetScale(asset).base
          this.scaled.set(`${account}\u0000${base}`, { account, baseAsset: base })
        }
        return
      }
      case 'inorder':
      case 'oneof':
        for (const sub of source.sources) this.source(sub, asset, sendAll)
        return
      case 'allotment':
        for (const item of source.items) {
          if (item.portion.kind === 'portion') this.evaluate(item.portion.expr)
          this.source(item.from, asset, false)
        }
        return
      case 'capped':
        this.evaluate(source.cap)
        this.source(source.from, asset, false)
        return
      default: {
        const never: never = source
        throw new Error(`unknown source ${String(never)}`)
      }
    }
  }

  private destination(destination: Destination): void {
    switch (destination.kind) {
      case 'account':
        this.writtenAccount(destination.address)
        return
      case 'allotment':
        for (const item of destination.items) {
          if (item.portion.kind === 'portion') this.evaluate(item.portion.expr)
          this.target(item.to)
        }
        return
      case 'inorder':
      case 'oneof':
        for (const clause of destination.clauses) {
          this.evaluate(clause.cap)
          this.target(clause.to)
        }
        this.target(destination.remaining)
        return
      default: {
        const never: never = destination
        throw new Error(`unknown destination ${String(never)}`)
      }
    }
  }

  private target(target: KeptOrDestination): void {
    if (target.kind === 'to') this.destination(target.destination)
  }

  private account(expr: Expr | undefined): string | undefined {
    if (expr === undefined) return undefined
    const value = this.evaluate(expr).value
    return value?.type === 'account' ? value.value : undefined
  }

  private assetOf(expr: Expr): string | undefined {
    const value = this.evaluate(expr).value
    return value?.type === 'asset' ? value.value : undefined
  }

  private evaluate(expr: Expr | undefined): Known {
    if (expr === undefined) return UNKNOWN
    switch (expr.kind) {
      case 'number':
        return { value: { type: 'number', value: expr.value } }
      case 'string':
        return { value: { type: 'string', value: expr.value } }
      case 'asset':
        return { value: { type: 'asset', value: expr.value } }
      case 'percent':
        return { value: { type: 'portion', value: rational(expr.numerator, expr.denominator) } }
      case 'account': {
        const parts: string[] = []
        for (const segment of expr.segments) {
          if (segment.kind === 'text') {
            parts.push(segment.text)
            continue
          }
          const value = this.values.get(segment.name)?.value
          if (value === undefined) return UNKNOWN
          parts.push(valueToString(value))
        }
        const address = parts.join(':')
        return isValidAccount(address) ? { value: { type: 'account', value: address } } : UNKNOWN
      }
      case 'variable':
        return this.values.get(expr.name) ?? UNKNOWN
      case 'monetary': {
        const asset = this.assetOf(expr.asset)
        const amount = this.evaluate(expr.amount).value
        if (asset === undefined) return UNKNOWN
        if (amount?.type !== 'number') return { asset }
        return { value: { type: 'monetary', asset, amount: amount.value }, asset }
      }
      case 'negate': {
        const operand = this.evaluate(expr.operand)
        if (operand.value?.type === 'number') return { value: { type: 'number', value: -operand.value.value } }
        if (operand.value?.type === 'monetary') {
          return { value: { type: 'monetary', asset: operand.value.asset, amount: -operand.value.amount }, asset: operand.value.asset }
        }
        return operand.asset === undefined ? UNKNOWN : { asset: operand.asset }
      }
      case 'binary': {
        const left = this.evaluate(expr.left)
        const right = this.evaluate(expr.right)
        const asset = left.asset ?? right.asset
        return asset === undefined ? UNKNOWN : { asset }
      }
      case 'call':
        return this.call(expr)
      default: {
        const never: never = expr
        throw new Error(`unknown expression ${String(never)}`)
      }
    }
  }

  private call(call: CallExpr): Known {
    const args = call.args.map((arg) => this.evaluate(arg))
    switch (call.name) {
      case 'balance':
      case 'overdraft': {
        const account = args[0]?.value?.type === 'account' ? args[0].value.value : undefined
        const asset = args[1]?.value?.type === 'asset' ? args[1].value.value : undefined
        this.readBalance(account, asset, `${call.name}()`)
        return asset === undefined ? UNKNOWN : { asset }
      }
      case 'get_asset': {
        const asset = args[0]?.asset
        return asset === undefined ? UNKNOWN : { value: { type: 'asset', value: asset } }
      }
      case 'get_amount': {
        const value = args[0]?.value
        return value?.type === 'monetary' ? { value: { type: 'number', value: value.amount } } : UNKNOWN
      }
      default:
        return UNKNOWN
    }
  }
}

/** The inputs a checked script will read and the accounts it may write. */
export function scriptNeeds(checked: CheckedProgram, options: NeedsOptions = {}): ScriptNeeds {
  return new NeedsWalker(options).walk(checked)
}
