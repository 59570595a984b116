import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import {
  CompileError,
  MissingFunds,
  compile,
  inputsDigest,
  replayInputs,
  runProgram,
  staticInputs,
} from '../../src/numscript/index.ts'

// ---- a small generator of valid programs (as an AST we can reason about)

type GSource =
  | { k: 'account'; account: string }
  | { k: 'overdraft'; account: string; bound: bigint | undefined }
  | { k: 'inorder'; sources: GSource[] }
  | { k: 'capped'; cap: bigint; source: GSource }
  | { k: 'allotment'; percents: number[]; sources: GSource[] }
  | { k: 'oneof'; sources: GSource[] }

type GTarget = GDestination | 'kept'
type GDestination =
  | { k: 'account'; account: string }
  | { k: 'allotment'; percents: number[]; targets: GTarget[] }
  | { k: 'inorder'; caps: bigint[]; targets: GTarget[]; remaining: GTarget }
  | { k: 'oneof'; caps: bigint[]; targets: GTarget[]; remaining: GTarget }

interface GSend {
  amount: bigint | 'all'
  source: GSource
  destination: GDestination
}

const ASSET = 'USD/2'
const sourceAccounts = ['a', 'b', 'c', 'world']
const destinationAccounts = ['a', 'd', 'e']

const sourceArb: fc.Memo<GSource> = fc.memo((depth) => {
  const leaf = fc.oneof(
    fc.constantFrom(...sourceAccounts).map((account): GSource => ({ k: 'account', account })),
    fc
      .record({ account: fc.constantFrom('a', 'b', 'c'), bound: fc.option(fc.bigInt(0n, 50n), { nil: undefined }) })
      .map((r): GSource => ({ k: 'overdraft', ...r })),
  )
  if (depth <= 1) return leaf
  return fc.oneof(
    { weight: 3, arbitrary: leaf },
    { weight: 1, arbitrary: fc.array(sourceArb(depth - 1), { minLength: 1, maxLength: 3 }).map((sources): GSource => ({ k: 'inorder', sources })) },
    { weight: 1, arbitrary: fc.record({ cap: fc.bigInt(0n, 150n), source: sourceArb(depth - 1) }).map((r): GSource => ({ k: 'capped', ...r })) },
    {
      weight: 1,
      arbitrary: fc
        .array(fc.tuple(fc.integer({ min: 0, max: 33 }), sourceArb(depth - 1)), { minLength: 1, maxLength: 3 })
        .chain((items) => sourceArb(depth - 1).map((rest) => ({ items, rest })))
        .map(({ items, rest }): GSource => ({ k: 'allotment', percents: items.map(([p]) => p), sources: [...items.map(([, s]) => s), rest] })),
    },
    { weight: 1, arbitrary: fc.array(sourceArb(depth - 1), { minLength: 1, maxLength: 3 }).map((sources): GSource => ({ k: 'oneof', sources })) },
  )
})

const targetArb = (depth: number): fc.Arbitrary<GTarget> =>
  fc.oneof({ weight: 1, arbitrary: fc.constant<GTarget>('kept') }, { weight: 3, arbitrary: destinationArb(depth) })

const destinationArb: fc.Memo<GDestination> = fc.memo((depth) => {
  const leaf = fc.constantFrom(...destinationAccounts).map((account): GDestination => ({ k: 'account', account }))
  if (depth <= 1) return leaf
  const clauses = fc.array(fc.tuple(fc.bigInt(0n, 120n), targetArb(depth - 1)), { minLength: 0, maxLength: 3 })
  return fc.oneof(
    { weight: 3, arbitrary: leaf },
    {
      weight: 1,
      arbitrary: fc
        .array(fc.tuple(fc.integer({ min: 0, max: 33 }), targetArb(depth - 1)), { minLength: 1, maxLength: 3 })
        .chain((items) => targetArb(depth - 1).map((rest) => ({ items, rest })))
        .map(({ items, rest }): GDestination => ({ k: 'allotment', percents: items.map(([p]) => p), targets: [...items.map(([, t]) => t), rest] })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(clauses, targetArb(depth - 1), fc.boolean())
        .map(([cs, remaining, oneof]): GDestination => ({
          k: oneof ? 'oneof' : 'inorder',
          caps: cs.map(([cap]) => cap),
          targets: cs.map(([, t]) => t),
          remaining,
        })),
    },
  )
})

const sendArb: fc.Arbitrary<GSend> = fc.record({
  amount: fc.oneof({ weight: 4, arbitrary: fc.bigInt(0n, 150n) }, { weight: 1, arbitrary: fc.constant<'all'>('all') }),
  source: sourceArb(3),
  destination: destinationArb(3),
})

const balancesArb = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd', 'e'), fc.bigInt(-20n, 400n), { minKeys: 2, maxKeys: 5 })

function renderSource(source: GSource): string {
  switch (source.k) {
    case 'account':
      return `@${source.account}`
    case 'overdraft':
      return source.bound === undefined
        ? `@${source.account} allowing unbounded overdraft`
        : `@${source.account} allowing overdraft up to [${ASSET} ${source.bound}]`
    case 'inorder':
      return `{ ${source.sources.map(renderSource).join(' ')} }`
    case 'capped':
      return `max [${ASSET} ${source.cap}] from ${renderSource(source.source)}`
    case 'allotment':
      return `{ ${source.sources
        .map((s, i) => `${i < source.percents.length ? `${source.percents[i]}%` : 'remaining'} from ${renderSource(s)}`)
        .join(' ')} }`
    case 'oneof':
      return `oneof { ${source.sources.map(renderSource).join(' ')} }`
  }
}

function renderTarget(target: GTarget): string {
  return target === 'kept' ? 'kept' : `to ${renderDestination(target)}`
}

function renderDestination(destination: GDestination): string {
  switch (destination.k) {
    case 'account':
      return `@${destination.account}`
    case 'allotment':
      return `{ ${destination.targets
        .map((t, i) => `${i < destination.percents.length ? `${destination.percents[i]}%` : 'remaining'} ${renderTarget(t)}`)
        .join(' ')} }`
    case 'inorder':
    case 'oneof':
      return `${destination.k === 'oneof' ? 'oneof ' : ''}{ ${destination.caps
        .map((cap, i) => `max [${ASSET} ${cap}] ${renderTarget(destination.targets[i] ?? 'kept')}`)
        .join(' ')} remaining ${renderTarget(destination.remaining)} }`
  }
}

function render(sends: GSend[]): string {
  return sends
    .map((s) => `send [${ASSET} ${s.amount === 'all' ? '*' : s.amount}] (\n  source = ${renderSource(s.source)}\n  destination = ${renderDestination(s.destination)}\n)`)
    .join('\n')
}

function keeps(destination: GTarget): boolean {
  if (destination === 'kept') return true
  switch (destination.k) {
    case 'account':
      return false
    case 'allotment':
      return destination.targets.some(keeps)
    case 'inorder':
    case 'oneof':
      return destination.targets.some(keeps) || keeps(destination.remaining)
  }
}

/** Largest overdraft each account is allowed anywhere in the program (undefined: unbounded). */
function overdraftBounds(source: GSource, bounds: Map<string, bigint | undefined>): void {
  const allow = (account: string, bound: bigint | undefined): void => {
    if (account === 'world') bound = undefined
    const previous = bounds.has(account) ? bounds.get(account) : 0n
    bounds.set(account, previous === undefined || bound === undefined ? undefined : previous > bound ? previous : bound)
  }
  switch (source.k) {
    case 'account':
      allow(source.account, 0n)
      return
    case 'overdraft':
      allow(source.account, source.bound)
      return
    case 'capped':
      overdraftBounds(source.source, bounds)
      return
    default:
      for (const sub of source.sources) overdraftBounds(sub, bounds)
  }
}

const FLAGS = ['experimental-oneof']

test('random programs: postings conserve value, are positive, and never overdraw a bounded source', () => {
  fc.assert(
    fc.property(fc.array(sendArb, { minLength: 1, maxLength: 3 }), balancesArb, (sends, balances) => {
      const script = render(sends)
      let checked
      try {
        checked = compile(script, { featureFlags: FLAGS })
      } catch (error) {
        // send-all from an unbounded source or a source allotment is rejected statically
        if (error instanceof CompileError && sends.some((s) => s.amount === 'all')) return
        throw error
      }
      const initial = new Map(Object.entries(balances).map(([account, amount]) => [account, new Map([[ASSET, amount]])]))
      const result = runProgram(checked, { inputs: staticInputs({ balances: initial }) })
      if (!result.ok) {
        assert.ok(
          result.error instanceof MissingFunds || result.error.reason === 'UNBOUNDED_SEND_ALL',
          `${result.error.message}\n${script}`,
        )
        return
      }
      const end = new Map<string, bigint>()
      let moved = 0n
      for (const posting of result.postings) {
        assert.ok(posting.amount > 0n, 'zero or negative posting')
        assert.equal(posting.asset, ASSET)
        end.set(posting.source, (end.get(posting.source) ?? 0n) - posting.amount)
        end.set(posting.destination, (end.get(posting.destination) ?? 0n) + posting.amount)
        moved += posting.amount
      }
      // Σ in = Σ out: the net change over all accounts is zero
      assert.equal([...end.values()].reduce((a, b) => a + b, 0n), 0n)
      // each literal send moves exactly its amount unless part of it is kept
      if (sends.every((s) => s.amount !== 'all' && !keeps(s.destination))) {
        assert.equal(moved, sends.reduce((sum, s) => sum + (s.amount === 'all' ? 0n : s.amount), 0n), script)
      }
      // bounded sources never end below min(initial, -bound)
      const bounds = new Map<string, bigint | undefined>()
      for (const s of sends) overdraftBounds(s.source, bounds)
      for (const [account, bound] of bounds) {
        if (bound === undefined) continue
        const start = balances[account] ?? 0n
        const final = start + (end.get(account) ?? 0n)
        const floor = start < -bound ? start : -bound
        assert.ok(final >= floor, `${account} ended at ${final} below ${floor}\n${script}`)
      }
    }),
    { numRuns: 400, seed: 20240607 },
  )
})

test('random programs: runs are deterministic and replay from their inputsRead', () => {
  fc.assert(
    fc.property(fc.array(sendArb, { minLength: 1, maxLength: 2 }), balancesArb, (sends, balances) => {
      let checked
      try {
        checked = compile(render(sends), { featureFlags: FLAGS })
      } catch (error) {
        if (error instanceof CompileError) return
        throw error
      }
      const initial = new Map(Object.entries(balances).map(([account, amount]) => [account, new Map([[ASSET, amount]])]))
      const first = runProgram(checked, { inputs: staticInputs({ balances: initial }) })
      const replayed = runProgram(checked, { inputs: replayInputs(first.inputsRead) })
      assert.equal(inputsDigest(replayed.inputsRead), inputsDigest(first.inputsRead))
      assert.equal(first.ok, replayed.ok)
      if (first.ok && replayed.ok) assert.deepEqual(replayed.postings, first.postings)
    }),
    { numRuns: 200, seed: 7 },
  )
})
