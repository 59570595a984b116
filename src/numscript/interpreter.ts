/**
 * The Numscript interpreter: a pure, synchronous function of the checked
 * program, the variables, and the inputs it reads through the provider.
 *
 * Model. A `send` first draws funds from its source tree, pushing *senders*
 * (account, color, amount) onto a FIFO queue and debiting their balances;
 * then its destination tree pulls receivers' shares from the queue head, each
 * pull becoming one posting (or, for `kept`, a refund to the sender). So every
 * send conserves value by construction: Σ pulled = Σ pushed = sent amount.
 * Balances are `initial (read once through the provider) + delta (this run)`.
 */
import { invariant } from '../domain/index.ts'
import type {
  AllotmentPortion,
  CallExpr,
  Destination,
  Expr,
  KeptOrDestination,
  Range,
  Source,
  Statement,
  VarDeclaration,
} from './ast.ts'
import type { CheckedProgram } from './checker.ts'
import { MissingFunds, NegativeAmount, NumscriptError, RuntimeError } from './errors.ts'
import { RecordingInputs, type InputsProvider, type InputsRead } from './inputs.ts'
import {
  addRational,
  assetScale,
  COLOR_PATTERN,
  coloredAsset,
  compareRational,
  describeValue,
  floorMultiply,
  isValidAccount,
  isValidAsset,
  maxBigint,
  minBigint,
  ONE,
  parseVariableValue,
  rational,
  scaledAsset,
  subRational,
  valueToString,
  ZERO,
  type Rational,
  type Value,
} from './values.ts'

export interface Posting {
  readonly source: string
  readonly destination: string
  readonly amount: bigint
  /** Ledger asset; a colored balance is `BASE_COLOR[/scale]`. */
  readonly asset: string
}

export interface RunOptions {
  /** Variable values in their string form (as in the v2 API and specs files). */
  readonly variables?: Readonly<Record<string, string>>
  readonly inputs: InputsProvider
  /** v2 `force`: every source may overdraw without bound. */
  readonly unboundedOverdraftEverywhere?: boolean
}

export interface RunSuccess {
  readonly ok: true
  readonly postings: readonly Posting[]
  readonly txMetadata: ReadonlyMap<string, string>
  /** Account metadata the script sets: account → key → value. */
  readonly accountMetadata: ReadonlyMap<string, ReadonlyMap<string, string>>
  readonly inputsRead: InputsRead
}

export interface RunFailure {
  readonly ok: false
  readonly error: NumscriptError
  readonly inputsRead: InputsRead
}

export type RunResult = RunSuccess | RunFailure

/** Longest run of postings one script may emit. */
export const postingsMax = 10_000

interface Sender {
  readonly account: string
  readonly color: string
  amount: bigint
}

const KEPT = Symbol('kept')
type Receiver = string | typeof KEPT

function balanceKey(account: string, asset: string): string {
  return `${account}\u0000${asset}`
}

class Run {
  private readonly inputs: RecordingInputs
  private readonly force: boolean
  private readonly variables: Readonly<Record<string, string>>
  private readonly values = new Map<string, Value>()
  private deltas = new Map<string, bigint>()
  readonly postings: Posting[] = []
  readonly txMetadata = new Map<string, string>()
  readonly accountMetadata = new Map<string, Map<string, string>>()
  private queue: Sender[] = []
  private queueHead = 0
  private currentAsset = ''
  /** Accounts visited by the current source evaluation (for MissingFunds). */
  private visitedAccounts: string[] = []

  constructor(options: RunOptions) {
    this.inputs = new RecordingInputs(options.inputs)
    this.force = options.unboundedOverdraftEverywhere === true
    this.variables = options.variables ?? {}
  }

  inputsRead(): InputsRead {
    return this.inputs.snapshot()
  }

  // ---- balances

  private balance(account: string, asset: string): bigint {
    return this.inputs.balance(account, asset) + (this.deltas.get(balanceKey(account, asset)) ?? 0n)
  }

  private credit(account: string, asset: string, amount: bigint): void {
    const key = balanceKey(account, asset)
    this.deltas.set(key, (this.deltas.get(key) ?? 0n) + amount)
  }

  // ---- program

  run(checked: CheckedProgram): void {
    for (const declaration of checked.program.vars) this.declare(declaration)
    for (const statement of checked.program.statements) this.statement(statement)
    for (const posting of this.postings) {
      invariant(posting.amount > 0n, 'a posting with a non-positive amount was emitted')
      if (!isValidAsset(posting.asset)) {
        throw new RuntimeError('INVALID_POSTING', `invalid asset ${JSON.stringify(posting.asset)} in a posting`)
      }
    }
  }

  private declare(declaration: VarDeclaration): void {
    const type = declaration.type
    if (type !== 'monetary' && type !== 'account' && type !== 'portion' && type !== 'asset' && type !== 'number' && type !== 'string') {
      throw new RuntimeError('RUNTIME_TYPE_MISMATCH', `unknown type ${type}`, declaration.typeRange)
    }
    let value: Value
    const origin = declaration.origin
    if (origin === undefined) {
      const raw = Object.hasOwn(this.variables, declaration.name) ? this.variables[declaration.name] : undefined
      if (raw === undefined) {
        throw new RuntimeError('MISSING_VARIABLE', `no value given for variable $${declaration.name}`, declaration.nameRange)
      }
      const parsed = parseVariableValue(type, raw)
      if (typeof parsed === 'string') {
        throw new RuntimeError('INVALID_VARIABLE_VALUE', `variable $${declaration.name}: ${parsed}`, declaration.nameRange)
      }
      value = parsed
    } else if (origin.kind === 'call' && origin.name === 'meta') {
      const account = this.account(this.argument(origin, 0))
      const key = this.string(this.argument(origin, 1))
      const raw = this.inputs.metadataValue(account, key)
      if (raw === undefined) {
        throw new RuntimeError('METADATA_NOT_FOUND', `account @${account} has no metadata ${JSON.stringify(key)}`, origin.range)
      }
      const parsed = parseVariableValue(type, raw)
      if (typeof parsed === 'string') {
        throw new RuntimeError(
          'INVALID_VARIABLE_VALUE',
          `metadata ${JSON.stringify(key)} of @${account} is not a valid ${type}: ${parsed}`,
          origin.range,
        )
      }
      value = parsed
    } else {
      value = this.evaluate(origin)
    }
    if (value.type !== type) {
      throw new RuntimeError('RUNTIME_TYPE_MISMATCH', `variable $${declaration.name} is a ${type}, got ${value.type}`, declaration.range)
    }
    this.values.set(declaration.name, value)
  }

  private statement(statement: Statement): void {
    switch (statement.kind) {
      case 'send':
        this.send(statement)
        return
      case 'save':
        this.save(statement)
        return
      case 'call':
        this.callStatement(statement.call)
        return
      default: {
        const never: never = statement
        throw new Error(`unknown statement ${String(never)}`)
      }
    }
  }

  private callStatement(call: CallExpr): void {
    if (call.name === 'set_tx_meta') {
      const key = this.string(this.argument(call, 0))
      const value = this.evaluate(this.argument(call, 1))
      this.txMetadata.set(key, valueToString(value))
      return
    }
    if (call.name === 'set_account_meta') {
      const account = this.account(this.argument(call, 0))
      const key = this.string(this.argument(call, 1))
      const value = this.evaluate(this.argument(call, 2))
      let byKey = this.accountMetadata.get(account)
      if (byKey === undefined) {
        byKey = new Map()
        this.accountMetadata.set(account, byKey)
      }
      byKey.set(key, valueToString(value))
      return
    }
    throw new RuntimeError('RUNTIME_TYPE_MISMATCH', `unknown statement function ${call.name}`, call.nameRange)
  }

  private send(statement: Extract<Statement, { kind: 'send' }>): void {
    invariant(this.queueHead === this.queue.length, 'funds queue not empty at the start of a send')
    this.queue = []
    this.queueHead = 0
    const postingsBefore = this.postings.length
    if (statement.sent.kind === 'all') {
      this.currentAsset = this.asset(statement.sent.asset)
      const sent = this.sendAll(statement.source)
      invariant(sent >= 0n, 'send all drew a negative amount')
      this.receive(statement.destination, sent)
    } else {
      const monetary = this.monetary(statement.sent.monetary)
      this.currentAsset = monetary.asset
      if (monetary.amount < 0n) throw new NegativeAmount(monetary.amount, statement.sent.range)
      this.sendExact(statement.source, monetary.amount)
      this.receive(statement.destination, monetary.amount)
    }
    invariant(this.queueHead === this.queue.length, 'funds drawn by a send were not all distributed')
    invariant(this.postings.length >= postingsBefore, 'postings shrank during a send')
    if (this.postings.length > postingsMax) {
      throw new RuntimeError('INVALID_POSTING', `a script may emit at most ${postingsMax} postings`, statement.range)
    }
  }

  private save(statement: Extract<Statement, { kind: 'save' }>): void {
    let asset: string
    let amount: bigint | undefined
    if (statement.sent.kind === 'all') {
      asset = this.asset(statement.sent.asset)
    } else {
      const monetary = this.monetary(statement.sent.monetary)
      asset = monetary.asset
      amount = monetary.amount
      if (amount < 0n) throw new NegativeAmount(amount, statement.sent.range)
    }
    const account = this.account(statement.account)
    const available = maxBigint(this.balance(account, asset), 0n)
    // Saved funds are no longer available to later sources; a negative balance has nothing to save.
    const saved = amount === undefined ? available : minBigint(amount, available)
    invariant(saved >= 0n, 'save of a negative amount')
    this.credit(account, asset, -saved)
  }

  // ---- sources

  private pushSender(account: string, color: string, amount: bigint): void {
    invariant(amount >= 0n, 'pushSender: negative amount')
    if (amount === 0n) return
    this.credit(account, coloredAsset(this.currentAsset, color), -amount)
    const last = this.queue[this.queue.length - 1]
    if (this.queue.length > this.queueHead && last !== undefined && last.account === account && last.color === color) {
      last.amount += amount
    } else {
      this.queue.push({ account, color, amount })
    }
  }

  private color(expr: Expr | undefined): string {
    if (expr === undefined) return ''
    const color = this.string(expr)
    if (!COLOR_PATTERN.test(color)) {
      throw new RuntimeError('INVALID_COLOR', `invalid color ${JSON.stringify(color)} (expected uppercase letters)`, expr.range)
    }
    return color
  }

  /** Sends up to `amount` from one account; `overdraft` undefined means unbounded. */
  private drawFromAccount(address: Expr, colorExpr: Expr | undefined, amount: bigint, overdraft: bigint | undefined): bigint {
    invariant(amount >= 0n, 'drawFromAccount: negative amount')
    const account = this.account(address)
    const color = this.color(colorExpr)
    this.visitedAccounts.push(account)
    let sent: bigint
    if (account === 'world' || this.force || overdraft === undefined) {
      sent = amount
    } else {
      invariant(overdraft >= 0n, 'drawFromAccount: negative overdraft')
      const balance = this.balance(account, coloredAsset(this.currentAsset, color))
      sent = minBigint(maxBigint(balance + overdraft, 0n), amount)
    }
    invariant(sent >= 0n && sent <= amount, 'drawFromAccount: drew outside [0, amount]')
    this.pushSender(account, color, sent)
    return sent
  }

  private drawAllFromAccount(address: Expr, colorExpr: Expr | undefined, overdraft: bigint, range: Range): bigint {
    const account = this.account(address)
    if (account === 'world') {
      throw new RuntimeError('UNBOUNDED_SEND_ALL', 'cannot send all from @world: its balance is unbounded', range)
    }
    const color = this.color(colorExpr)
    this.visitedAccounts.push(account)
    const balance = this.balance(account, coloredAsset(this.currentAsset, color))
    const sent = maxBigint(balance + overdraft, 0n)
    this.pushSender(account, color, sent)
    return sent
  }

  private overdraftBound(bound: Expr): bigint {
    return maxBigint(this.monetaryOfCurrentAsset(bound), 0n)
  }

  private sendExact(source: Source, amount: bigint): void {
    const visitedBefore = this.visitedAccounts.length
    const sent = this.sendUpTo(source, amount)
    const accounts = [...new Set(this.visitedAccounts.slice(visitedBefore))]
    this.visitedAccounts.length = visitedBefore
    if (sent !== amount) {
      throw new MissingFunds({ accounts, asset: this.currentAsset, needed: amount, available: sent, range: source.range })
    }
  }

  /** Draws at most `amount` from `source`; returns what it drew. Never fails for lack of funds. */
  private sendUpTo(source: Source, amount: bigint): bigint {
    invariant(amount >= 0n, 'sendUpTo: negative amount')
    switch (source.kind) {
      case 'account':
        return this.drawFromAccount(source.address, source.color, amount, 0n)
      case 'overdraft':
        return this.drawFromAccount(
          source.address,
          source.color,
          amount,
          source.bound === undefined ? undefined : this.overdraftBound(source.bound),
        )
      case 'scaling':
        return this.sendWithScaling(source, amount)
      case 'inorder': {
        let left = amount
        for (const sub of source.sources) left -= this.sendUpTo(sub, left)
        invariant(left >= 0n, 'in-order source drew more than asked')
        return amount - left
      }
      case 'oneof': {
        const last = source.sources.length - 1
        for (let index = 0; index < last; index++) {
          const sub = source.sources[index]
          if (sub === undefined) continue
          const restore = this.checkpoint()
          if (this.sendUpTo(sub, amount) === amount) return amount
          restore()
        }
        const final = source.sources[last]
        invariant(final !== undefined, 'empty oneof')
        return this.sendUpTo(final, amount)
      }
      case 'allotment': {
        const parts = this.allot(
          amount,
          source.items.map((item) => item.portion),
          source.range,
        )
        source.items.forEach((item, index) => this.sendExact(item.from, parts[index] ?? 0n))
        return amount
      }
      case 'capped': {
        const cap = this.monetaryOfCurrentAsset(source.cap)
        return this.sendUpTo(source.from, maxBigint(minBigint(amount, cap), 0n))
      }
      default: {
        const never: never = source
        throw new Error(`unknown source ${String(never)}`)
      }
    }
  }

  /** Draws everything `source` can give (send `[ASSET *]`). */
  private sendAll(source: Source): bigint {
    switch (source.kind) {
      case 'account':
        return this.drawAllFromAccount(source.address, source.color, 0n, source.range)
      case 'overdraft':
        if (source.bound === undefined) {
          throw new RuntimeError('UNBOUNDED_SEND_ALL', 'cannot send all from a source allowing unbounded overdraft', source.range)
        }
        return this.drawAllFromAccount(source.address, source.color, this.overdraftBound(source.bound), source.range)
      case 'scaling':
        return this.sendAllWithScaling(source)
      case 'inorder': {
        let total = 0n
        for (const sub of source.sources) total += this.sendAll(sub)
        return total
      }
      case 'oneof': {
        const first = source.sources[0]
        invariant(first !== undefined, 'empty oneof')
        return this.sendAll(first)
      }
      case 'capped':
        return this.sendUpTo(source.from, maxBigint(this.monetaryOfCurrentAsset(source.cap), 0n))
      case 'allotment':
        throw new RuntimeError('INVALID_ALLOTMENT_SUM', 'cannot send all ([ASSET *]) from a source allotment', source.range)
      default: {
        const never: never = source
        throw new Error(`unknown source ${String(never)}`)
      }
    }
  }

  private checkpoint(): () => void {
    const deltas = new Map(this.deltas)
    const queue = this.queue.slice(this.queueHead).map((sender) => ({ ...sender }))
    const postings = this.postings.length
    const visited = this.visitedAccounts.length
    return () => {
      this.deltas = deltas
      this.queue = queue
      this.queueHead = 0
      this.postings.length = postings
      this.visitedAccounts.length = visited
    }
  }

  // ---- asset scaling (experimental)

  /** Current balances of `account` in every scale of `base`, finest scale first. */
  private scaledBalances(account: string, base: string, range: Range): { scale: number; amount: bigint }[] {
    const initial = this.inputs.balancesOfBaseAsset(account, base)
    if (initial === undefined) {
      throw new RuntimeError('SCALING_UNSUPPORTED', 'the inputs provider does not serve balances by base asset', range)
    }
    const scales = new Set<number>()
    for (const asset of initial.keys()) {
      const parsed = assetScale(asset)
      if (parsed.base === base && asset === scaledAsset(base, parsed.scale)) scales.add(parsed.scale)
    }
    const prefix = `${account}\u0000`
    for (const key of this.deltas.keys()) {
      if (!key.startsWith(prefix)) continue
      const asset = key.slice(prefix.length)
      const parsed = assetScale(asset)
      if (parsed.base === base && asset === scaledAsset(base, parsed.scale)) scales.add(parsed.scale)
    }
    const out: { scale: number; amount: bigint }[] = []
    for (const scale of [...scales].sort((a, b) => b - a)) {
      const asset = scaledAsset(base, scale)
      const start = initial.get(asset) ?? 0n
      out.push({ scale, amount: start + (this.deltas.get(balanceKey(account, asset)) ?? 0n) })
    }
    return out
  }

  /**
   * Plans conversions into `targetScale` covering `needed` (undefined: as much
   * as possible), taking the finest scales first; a coarser unit is broken
   * whole (the spare stays with the account). Undefined when not enough.
   */
  private planScaling(
    balances: readonly { scale: number; amount: bigint }[],
    targetScale: number,
    needed: bigint | undefined,
  ): { scale: number; taken: bigint; converted: bigint }[] | undefined {
    let left = needed
    const plan: { scale: number; taken: bigint; converted: bigint }[] = []
    for (const { scale, amount } of balances) {
      if (left !== undefined && left <= 0n) break
      if (amount <= 0n) continue
      if (scale === targetScale) {
        if (left !== undefined) left -= minBigint(amount, left)
        continue
      }
      let taken: bigint
      let converted: bigint
      if (scale > targetScale) {
        const factor = 10n ** BigInt(scale - targetScale)
        const convertible = amount / factor
        const used = left === undefined ? convertible : minBigint(convertible, left)
        taken = used * factor
        converted = used
      } else {
        const factor = 10n ** BigInt(targetScale - scale)
        const used = left === undefined ? amount * factor : minBigint(amount * factor, left)
        taken = (used + factor - 1n) / factor
        converted = taken * factor
      }
      if (taken === 0n) continue
      if (left !== undefined) left -= minBigint(converted, left)
      plan.push({ scale, taken, converted })
    }
    if (left !== undefined && left > 0n) return undefined
    return plan
  }

  private applyScaling(account: string, through: string, base: string, plan: readonly { scale: number; taken: bigint; converted: bigint }[]): void {
    let total = 0n
    for (const step of plan) {
      const asset = scaledAsset(base, step.scale)
      this.postings.push({ source: account, destination: through, amount: step.taken, asset })
      this.credit(account, asset, -step.taken)
      this.credit(through, asset, step.taken)
      total += step.converted
    }
    if (total === 0n) return
    this.postings.push({ source: through, destination: account, amount: total, asset: this.currentAsset })
    this.credit(through, this.currentAsset, -total)
    this.credit(account, this.currentAsset, total)
  }

  private sendWithScaling(source: Extract<Source, { kind: 'scaling' }>, amount: bigint): bigint {
    const account = this.account(source.address)
    const through = this.account(source.through)
    const { base, scale } = assetScale(this.currentAsset)
    const plan = this.planScaling(this.scaledBalances(account, base, source.range), scale, amount)
    if (plan !== undefined) this.applyScaling(account, through, base, plan)
    return this.drawFromAccount(source.address, undefined, amount, 0n)
  }

  private sendAllWithScaling(source: Extract<Source, { kind: 'scaling' }>): bigint {
    const account = this.account(source.address)
    const through = this.account(source.through)
    const { base, scale } = assetScale(this.currentAsset)
    const plan = this.planScaling(this.scaledBalances(account, base, source.range), scale, undefined)
    invariant(plan !== undefined, 'an unbounded scaling plan always exists')
    this.applyScaling(account, through, base, plan)
    return this.drawAllFromAccount(source.address, undefined, 0n, source.range)
  }

  // ---- destinations

  private pull(receiver: Receiver, amount: bigint): void {
    invariant(amount >= 0n, 'pull: negative amount')
    let left = amount
    while (left > 0n) {
      const head = this.queue[this.queueHead]
      invariant(head !== undefined, 'destinations received more than the sources drew')
      const taken = minBigint(head.amount, left)
      const asset = coloredAsset(this.currentAsset, head.color)
      if (receiver === KEPT) {
        this.credit(head.account, asset, taken)
      } else {
        this.credit(receiver, asset, taken)
        this.postings.push({ source: head.account, destination: receiver, amount: taken, asset })
      }
      head.amount -= taken
      left -= taken
      if (head.amount === 0n) this.queueHead += 1
    }
  }

  private receive(destination: Destination, amount: bigint): void {
    switch (destination.kind) {
      case 'account':
        this.pull(this.account(destination.address), amount)
        return
      case 'allotment': {
        const parts = this.allot(
          amount,
          destination.items.map((item) => item.portion),
          destination.range,
        )
        destination.items.forEach((item, index) => this.receiveInto(item.to, parts[index] ?? 0n))
        return
      }
      case 'inorder': {
        let left = amount
        for (const clause of destination.clauses) {
          const cap = this.monetaryOfCurrentAsset(clause.cap)
          if (left === 0n) break
          const share = maxBigint(minBigint(cap, left), 0n)
          if (share === 0n) continue
          this.receiveInto(clause.to, share)
          left -= share
        }
        if (left > 0n) this.receiveInto(destination.remaining, left)
        return
      }
      case 'oneof': {
        for (const clause of destination.clauses) {
          const cap = this.monetaryOfCurrentAsset(clause.cap)
          if (cap >= amount) {
            this.receiveInto(clause.to, amount)
            return
          }
        }
        this.receiveInto(destination.remaining, amount)
        return
      }
      default: {
        const never: never = destination
        throw new Error(`unknown destination ${String(never)}`)
      }
    }
  }

  private receiveInto(target: KeptOrDestination, amount: bigint): void {
    if (target.kind === 'kept') this.pull(KEPT, amount)
    else this.receive(target.destination, amount)
  }

  /** Splits `total` by portions: floors, then +1 to items in order until exact. */
  private allot(total: bigint, portions: readonly AllotmentPortion[], range: Range): bigint[] {
    invariant(total >= 0n, 'allot: negative total')
    const values: (Rational | undefined)[] = []
    let sum = ZERO
    for (const portion of portions) {
      if (portion.kind === 'remaining') {
        values.push(undefined)
        continue
      }
      const value = this.portion(portion.expr)
      if (compareRational(value, ZERO) < 0 || compareRational(value, ONE) > 0) {
        throw new RuntimeError('INVALID_ALLOTMENT_SUM', `portion ${value.numerator}/${value.denominator} is outside [0, 1]`, portion.range)
      }
      sum = addRational(sum, value)
      values.push(value)
    }
    const hasRemaining = values.includes(undefined)
    const rest = subRational(ONE, sum)
    if (hasRemaining ? compareRational(rest, ZERO) < 0 : compareRational(rest, ZERO) !== 0) {
      throw new RuntimeError('INVALID_ALLOTMENT_SUM', `allotment portions sum to ${sum.numerator}/${sum.denominator}`, range)
    }
    const parts = values.map((value) => floorMultiply(value ?? rest, total))
    let allocated = parts.reduce((a, b) => a + b, 0n)
    for (let index = 0; index < parts.length && allocated < total; index++) {
      parts[index] = (parts[index] ?? 0n) + 1n
      allocated += 1n
    }
    invariant(allocated === total, 'allotment did not split the total exactly')
    return parts
  }

  // ---- expressions

  private argument(call: CallExpr, index: number): Expr {
    const arg = call.args[index]
    if (arg === undefined) throw new RuntimeError('RUNTIME_TYPE_MISMATCH', `${call.name}: missing argument ${index + 1}`, call.range)
    return arg
  }

  private mismatch(expected: string, value: Value, range: Range): never {
    throw new RuntimeError('RUNTIME_TYPE_MISMATCH', `expected a ${expected}, got ${describeValue(value)}`, range)
  }

  private account(expr: Expr): string {
    const value = this.evaluate(expr)
    return value.type === 'account' ? value.value : this.mismatch('account', value, expr.range)
  }

  private asset(expr: Expr): string {
    const value = this.evaluate(expr)
    return value.type === 'asset' ? value.value : this.mismatch('asset', value, expr.range)
  }

  private string(expr: Expr): string {
    const value = this.evaluate(expr)
    return value.type === 'string' ? value.value : this.mismatch('string', value, expr.range)
  }

  private number(expr: Expr): bigint {
    const value = this.evaluate(expr)
    return value.type === 'number' ? value.value : this.mismatch('number', value, expr.range)
  }

  private portion(expr: Expr): Rational {
    const value = this.evaluate(expr)
    return value.type === 'portion' ? value.value : this.mismatch('portion', value, expr.range)
  }

  private monetary(expr: Expr): { asset: string; amount: bigint } {
    const value = this.evaluate(expr)
    return value.type === 'monetary' ? value : this.mismatch('monetary', value, expr.range)
  }

  private monetaryOfCurrentAsset(expr: Expr): bigint {
    const value = this.monetary(expr)
    if (value.asset !== this.currentAsset) {
      throw new RuntimeError(
        'MISMATCHED_ASSETS',
        `expected an amount of ${this.currentAsset}, got [${value.asset} ${value.amount}]`,
        expr.range,
      )
    }
    return value.amount
  }

  evaluate(expr: Expr): Value {
    switch (expr.kind) {
      case 'number':
        return { type: 'number', value: expr.value }
      case 'string':
        return { type: 'string', value: expr.value }
      case 'asset':
        return { type: 'asset', value: expr.value }
      case 'percent':
        return { type: 'portion', value: rational(expr.numerator, expr.denominator) }
      case 'account':
        return { type: 'account', value: this.accountLiteral(expr) }
      case 'variable': {
        const value = this.values.get(expr.name)
        if (value === undefined) throw new RuntimeError('RUNTIME_TYPE_MISMATCH', `variable $${expr.name} is not bound`, expr.range)
        return value
      }
      case 'monetary':
        return { type: 'monetary', asset: this.asset(expr.asset), amount: this.number(expr.amount) }
      case 'negate': {
        const value = this.evaluate(expr.operand)
        if (value.type === 'number') return { type: 'number', value: -value.value }
        if (value.type === 'monetary') return { type: 'monetary', asset: value.asset, amount: -value.amount }
        return this.mismatch('number or monetary', value, expr.operand.range)
      }
      case 'binary':
        return this.binary(expr)
      case 'call':
        return this.call(expr)
      default: {
        const never: never = expr
        throw new Error(`unknown expression ${String(never)}`)
      }
    }
  }

  private accountLiteral(expr: Extract<Expr, { kind: 'account' }>): string {
    const parts: string[] = []
    for (const segment of expr.segments) {
      if (segment.kind === 'text') {
        parts.push(segment.text)
        continue
      }
      const value = this.values.get(segment.name)
      if (value === undefined) throw new RuntimeError('RUNTIME_TYPE_MISMATCH', `variable $${segment.name} is not bound`, segment.range)
      if (value.type !== 'account' && value.type !== 'number' && value.type !== 'string') {
        this.mismatch('account, number or string', value, segment.range)
      }
      parts.push(valueToString(value))
    }
    const address = parts.join(':')
    if (!isValidAccount(address)) {
      throw new RuntimeError('INVALID_ACCOUNT_NAME', `invalid account address ${JSON.stringify(address)}`, expr.range)
    }
    return address
  }

  private binary(expr: Extract<Expr, { kind: 'binary' }>): Value {
    const left = this.evaluate(expr.left)
    const right = this.evaluate(expr.right)
    if (expr.op === '/') {
      if (left.type !== 'number') return this.mismatch('number', left, expr.left.range)
      if (right.type !== 'number') return this.mismatch('number', right, expr.right.range)
      if (right.value === 0n) throw new RuntimeError('DIVISION_BY_ZERO', 'division by zero', expr.range)
      return { type: 'portion', value: rational(left.value, right.value) }
    }
    const sign = expr.op === '+' ? 1n : -1n
    if (left.type === 'number' && right.type === 'number') return { type: 'number', value: left.value + sign * right.value }
    if (left.type === 'monetary' && right.type === 'monetary') {
      if (left.asset !== right.asset) {
        throw new RuntimeError('MISMATCHED_ASSETS', `cannot combine ${left.asset} and ${right.asset}`, expr.range)
      }
      return { type: 'monetary', asset: left.asset, amount: left.amount + sign * right.amount }
    }
    if (left.type === 'portion' && right.type === 'portion') {
      return { type: 'portion', value: sign === 1n ? addRational(left.value, right.value) : subRational(left.value, right.value) }
    }
    throw new RuntimeError('RUNTIME_TYPE_MISMATCH', `'${expr.op}' cannot combine ${left.type} and ${right.type}`, expr.range)
  }

  private call(call: CallExpr): Value {
    switch (call.name) {
      case 'balance': {
        const account = this.account(this.argument(call, 0))
        const asset = this.asset(this.argument(call, 1))
        const balance = this.balance(account, asset)
        if (balance < 0n) {
          throw new RuntimeError('NEGATIVE_BALANCE', `balance() of @${account} is negative: [${asset} ${balance}]`, call.range)
        }
        return { type: 'monetary', asset, amount: balance }
      }
      case 'overdraft': {
        const account = this.account(this.argument(call, 0))
        const asset = this.asset(this.argument(call, 1))
        const balance = this.balance(account, asset)
        return { type: 'monetary', asset, amount: balance > 0n ? 0n : -balance }
      }
      case 'get_asset': {
        const monetary = this.monetary(this.argument(call, 0))
        return { type: 'asset', value: monetary.asset }
      }
      case 'get_amount': {
        const monetary = this.monetary(this.argument(call, 0))
        return { type: 'number', value: monetary.amount }
      }
      default:
        throw new RuntimeError('RUNTIME_TYPE_MISMATCH', `unknown function ${call.name}`, call.nameRange)
    }
  }
}

/**
 * Runs a checked program. Script errors come back as `{ ok: false }`;
 * `InputNotLoaded` (from the provider) and `InvariantViolation` propagate.
 */
export function runProgram(checked: CheckedProgram, options: RunOptions): RunResult {
  const run = new Run(options)
  try {
    run.run(checked)
  } catch (error) {
    if (error instanceof NumscriptError) return { ok: false, error, inputsRead: run.inputsRead() }
    throw error
  }
  return {
    ok: true,
    postings: run.postings,
    txMetadata: run.txMetadata,
    accountMetadata: run.accountMetadata,
    inputsRead: run.inputsRead(),
  }
}
