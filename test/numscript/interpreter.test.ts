import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  InputNotLoaded,
  MissingFunds,
  NegativeAmount,
  compile,
  execute,
  inputsDigest,
  replayInputs,
  runProgram,
  scriptNeeds,
  type InputsProvider,
  type NumscriptReason,
  type RunResult,
} from '../../src/numscript/index.ts'
import { flat, postings, provider, run } from './helpers.ts'

function failure(result: RunResult): Extract<RunResult, { ok: false }>['error'] {
  assert.ok(!result.ok, 'expected the script to fail')
  return result.error
}

function expectRuntime(source: string, reason: NumscriptReason, inputs: Parameters<typeof run>[1] = {}): void {
  const error = failure(run(source, inputs))
  assert.equal(error.reason, reason, error.message)
  assert.equal(error.code, 'INTERPRETER_RUNTIME')
}

const send = (amount: string, source: string, destination: string): string =>
  `send ${amount} ( source = ${source} destination = ${destination} )`

test('source: a single account draws from its balance, never below zero', () => {
  assert.deepEqual(postings(send('[USD 30]', '@a', '@b'), { balances: { a: { USD: 30n } } }), [['a', 'b', 30n, 'USD']])
  const error = failure(run(send('[USD 31]', '@a', '@b'), { balances: { a: { USD: 30n } } }))
  assert.ok(error instanceof MissingFunds)
  assert.deepEqual(
    { account: error.account, asset: error.asset, needed: error.needed, available: error.available, code: error.code },
    { account: 'a', asset: 'USD', needed: 31n, available: 30n, code: 'INSUFFICIENT_FUND' },
  )
})

test('source: @world is unbounded; unbounded and bounded overdrafts', () => {
  assert.deepEqual(postings(send('[USD 5]', '@world', '@b')), [['world', 'b', 5n, 'USD']])
  assert.deepEqual(postings(send('[USD 5]', '@a allowing unbounded overdraft', '@b')), [['a', 'b', 5n, 'USD']])
  assert.deepEqual(
    postings(send('[USD 5]', '@a allowing overdraft up to [USD 3]', '@b'), { balances: { a: { USD: 2n } } }),
    [['a', 'b', 5n, 'USD']],
  )
  const error = failure(run(send('[USD 6]', '@a allowing overdraft up to [USD 3]', '@b'), { balances: { a: { USD: 2n } } }))
  assert.ok(error instanceof MissingFunds && error.available === 5n)
})

test('source: in-order blocks, capped sources, allotments and oneof', () => {
  assert.deepEqual(
    postings(send('[USD 10]', '{ @a @b @world }', '@d'), { balances: { a: { USD: 3n }, b: { USD: 4n } } }),
    [
      ['a', 'd', 3n, 'USD'],
      ['b', 'd', 4n, 'USD'],
      ['world', 'd', 3n, 'USD'],
    ],
  )
  assert.deepEqual(
    postings(send('[USD 10]', '{ max [USD 2] from @a @b }', '@d'), { balances: { a: { USD: 9n }, b: { USD: 9n } } }),
    [
      ['a', 'd', 2n, 'USD'],
      ['b', 'd', 8n, 'USD'],
    ],
  )
  assert.deepEqual(postings(send('[USD 10]', '{ 1/3 from @world remaining from @x allowing unbounded overdraft }', '@d')), [
    ['world', 'd', 4n, 'USD'],
    ['x', 'd', 6n, 'USD'],
  ])
  assert.deepEqual(
    postings(send('[USD 10]', 'oneof { @a @b }', '@d'), {
      balances: { a: { USD: 9n }, b: { USD: 10n } },
      featureFlags: ['experimental-oneof'],
    }),
    [['b', 'd', 10n, 'USD']],
  )
})

test('send all: balances plus bounded overdraft, in order', () => {
  assert.deepEqual(
    postings(send('[USD *]', '{ @a @b allowing overdraft up to [USD 5] }', '@d'), { balances: { a: { USD: 3n }, b: { USD: -2n } } }),
    [
      ['a', 'd', 3n, 'USD'],
      ['b', 'd', 3n, 'USD'],
    ],
  )
  expectRuntime(send('[USD *]', '@world', '@d'), 'UNBOUNDED_SEND_ALL')
})

test('destinations: account, allotment with kept, in-order max with remaining, oneof', () => {
  assert.deepEqual(postings(send('[USD 100]', '@world', '{ 10% to @fees 5% kept remaining to @m }')), [
    ['world', 'fees', 10n, 'USD'],
    ['world', 'm', 85n, 'USD'],
  ])
  assert.deepEqual(postings(send('[USD 100]', '@world', '{ max [USD 30] to @a max [USD 30] kept remaining to @b }')), [
    ['world', 'a', 30n, 'USD'],
    ['world', 'b', 40n, 'USD'],
  ])
  assert.deepEqual(
    postings(send('[USD 10]', '@world', 'oneof { max [USD 5] to @a max [USD 10] to @b remaining kept }'), {
      featureFlags: ['experimental-oneof'],
    }),
    [['world', 'b', 10n, 'USD']],
  )
})

test('allotment rounding: floors, then one unit at a time from the first item', () => {
  assert.deepEqual(postings(send('[USD 10]', '@world', '{ 1/3 to @a 1/3 to @b 1/3 to @c }')), [
    ['world', 'a', 4n, 'USD'],
    ['world', 'b', 3n, 'USD'],
    ['world', 'c', 3n, 'USD'],
  ])
})

test('kept funds stay with the source and remain spendable', () => {
  assert.deepEqual(
    postings(`${send('[USD 10]', '@a', '{ max [USD 4] to @b remaining kept }')}\n${send('[USD 6]', '@a', '@c')}`, {
      balances: { a: { USD: 10n } },
    }),
    [
      ['a', 'b', 4n, 'USD'],
      ['a', 'c', 6n, 'USD'],
    ],
  )
})

test('metadata: tx and account metadata, stringified like Formance', () => {
  const result = run(
    `vars { string $s = meta(@acc, "label") }
set_tx_meta("label", $s)
set_tx_meta("m", [USD/2 10] - [USD/2 3])
set_tx_meta("p", 1/4)
set_account_meta(@acc, "n", 1 + 2)`,
    { metadata: { acc: { label: 'hello' } } },
  )
  assert.ok(result.ok)
  assert.deepEqual(Object.fromEntries(result.txMetadata), { label: 'hello', m: 'USD/2 7', p: '1/4' })
  assert.deepEqual(Object.fromEntries(result.accountMetadata.get('acc') ?? []), { n: '3' })
})

test('runtime errors: negative amount, missing variable, bad values, metadata, mismatched assets, division by zero', () => {
  const negative = failure(run(send('[USD -1]', '@world', '@d')))
  assert.ok(negative instanceof NegativeAmount && negative.amount === -1n)
  expectRuntime('vars { number $n } set_tx_meta("n", $n)', 'MISSING_VARIABLE')
  expectRuntime('vars { number $n } set_tx_meta("n", $n)', 'INVALID_VARIABLE_VALUE', { variables: { n: '1.5' } })
  expectRuntime('vars { account $a } set_tx_meta("n", $a)', 'INVALID_VARIABLE_VALUE', { variables: { a: 'bad name' } })
  expectRuntime('vars { string $s = meta(@a, "missing") }', 'METADATA_NOT_FOUND')
  expectRuntime('set_tx_meta("k", [USD 1] + [EUR 1])', 'MISMATCHED_ASSETS')
  expectRuntime(send('[USD 10]', '{ max [EUR 1] from @a @world }', '@d'), 'MISMATCHED_ASSETS')
  expectRuntime('vars { number $z } set_tx_meta("k", 1/$z)', 'DIVISION_BY_ZERO', { variables: { z: '0' } })
  expectRuntime('vars { monetary $b = balance(@a, USD) }', 'NEGATIVE_BALANCE', { balances: { a: { USD: -1n } } })
  expectRuntime('vars { portion $p } send [USD 10] ( source = @world destination = { $p to @a 1/2 to @b } )', 'INVALID_ALLOTMENT_SUM', {
    variables: { p: '1/3' },
  })
})

test('force (unboundedOverdraftEverywhere) lets every source overdraw', () => {
  assert.deepEqual(postings(send('[USD 10]', '{ @a @b }', '@d'), { force: true }), [['a', 'd', 10n, 'USD']])
  assert.deepEqual(postings(send('[USD *]', '@a', '@d'), { force: true, balances: { a: { USD: 4n } } }), [['a', 'd', 4n, 'USD']])
})

test('save: saved funds cannot be spent by later sources', () => {
  assert.deepEqual(postings(`save [USD 10] from @a\n${send('[USD 15]', '{ @a @world }', '@d')}`, { balances: { a: { USD: 20n } } }), [
    ['a', 'd', 10n, 'USD'],
    ['world', 'd', 5n, 'USD'],
  ])
})

test('asset colors: postings carry the colored ledger asset', () => {
  assert.deepEqual(
    postings(send('[USD/2 5]', '@a \\ "RED"', '@d'), {
      balances: { a: { 'USD_RED/2': 7n } },
      featureFlags: ['experimental-asset-colors'],
    }),
    [['a', 'd', 5n, 'USD_RED/2']],
  )
})

test('assets with the ledger _SUFFIX are valid literals', () => {
  assert.deepEqual(postings(send('[USD_RED/2 5]', '@world', '@d')), [['world', 'd', 5n, 'USD_RED/2']])
})

test('inputsRead records every consulted input; the digest is stable and order-independent', () => {
  const source = `vars { string $s = meta(@a, "k") monetary $b = balance(@z, USD) }\n${send('[USD 5]', '{ @a @b @world }', '@d')}`
  const result = run(source, { balances: { a: { USD: 2n }, z: { USD: 9n } }, metadata: { a: { k: 'v' } } })
  assert.ok(result.ok)
  assert.deepEqual(
    [...result.inputsRead.balances.entries()].map(([account, byAsset]) => [account, Object.fromEntries(byAsset)]),
    [
      ['z', { USD: 9n }],
      ['a', { USD: 2n }],
      ['b', { USD: 0n }],
    ],
  )
  assert.deepEqual(Object.fromEntries(result.inputsRead.metadata.get('a') ?? []), { k: 'v' })
  const again = run(source, { balances: { z: { USD: 9n }, a: { USD: 2n } }, metadata: { a: { k: 'v' } } })
  assert.ok(again.ok)
  assert.equal(inputsDigest(again.inputsRead), inputsDigest(result.inputsRead))
  assert.match(inputsDigest(result.inputsRead), /^[0-9a-f]{64}$/)
  const stale = run(source, { balances: { a: { USD: 3n }, z: { USD: 9n } }, metadata: { a: { k: 'v' } } })
  assert.notEqual(inputsDigest(stale.inputsRead), inputsDigest(result.inputsRead))
})

test('InputNotLoaded propagates; loading the input and re-running converges; replay reproduces the run', () => {
  const source = `vars { account $to = meta(@cfg, "target") }\n${send('[USD 5]', '@a', '$to')}`
  const store = provider({ balances: { a: { USD: 8n } }, metadata: { cfg: { target: 'users:1' } } })
  const loaded = { balances: new Map<string, bigint>(), metadata: new Map<string, string | undefined>() }
  const lazy: InputsProvider = {
    balance(account, asset) {
      const key = `${account}/${asset}`
      if (!loaded.balances.has(key)) throw new InputNotLoaded({ kind: 'balance', account, asset })
      return loaded.balances.get(key) ?? 0n
    },
    metadata(account, key) {
      const id = `${account}/${key}`
      if (!loaded.metadata.has(id)) throw new InputNotLoaded({ kind: 'metadata', account, key })
      return loaded.metadata.get(id)
    },
  }
  const checked = compile(source)
  let result: RunResult | undefined
  let attempts = 0
  while (result === undefined) {
    attempts += 1
    assert.ok(attempts < 10)
    try {
      result = runProgram(checked, { inputs: lazy })
    } catch (error) {
      assert.ok(error instanceof InputNotLoaded)
      const input = error.input
      if (input.kind === 'balance') loaded.balances.set(`${input.account}/${input.asset}`, store.balance(input.account, input.asset))
      else if (input.kind === 'metadata') loaded.metadata.set(`${input.account}/${input.key}`, store.metadata(input.account, input.key))
    }
  }
  assert.equal(attempts, 3)
  assert.ok(result.ok)
  assert.deepEqual(flat(result.postings), [['a', 'users:1', 5n, 'USD']])
  const replayed = runProgram(checked, { inputs: replayInputs(result.inputsRead) })
  assert.ok(replayed.ok)
  assert.deepEqual(flat(replayed.postings), flat(result.postings))
  assert.equal(inputsDigest(replayed.inputsRead), inputsDigest(result.inputsRead))
})

test('scriptNeeds lists the reads and writes statically', () => {
  const checked = compile(
    `vars { account $src  monetary $cap = balance(@limits, USD/2)  string $label = meta(@src_meta, "label") }
send [USD/2 100] ( source = { $src @credit allowing overdraft up to [USD/2 10] @overdrawn allowing unbounded overdraft @world } destination = { max $cap to @a remaining to @b } )
set_account_meta(@c, "k", "v")`,
  )
  const needs = scriptNeeds(checked, { variables: { src: 'users:1' } })
  assert.equal(needs.complete, true)
  assert.deepEqual(needs.balances, [
    { account: 'credit', asset: 'USD/2' },
    { account: 'limits', asset: 'USD/2' },
    { account: 'users:1', asset: 'USD/2' },
  ])
  assert.deepEqual(needs.metadata, [{ account: 'src_meta', key: 'label' }])
  assert.deepEqual(needs.accountsWritten, ['a', 'b', 'c', 'credit', 'overdrawn', 'users:1', 'world'])

  const dynamic = compile(`vars { account $to = meta(@cfg, "t") }\nsend [USD 1] ( source = $to destination = @b )`)
  const partial = scriptNeeds(dynamic)
  assert.equal(partial.complete, false)
  assert.deepEqual(partial.metadata, [{ account: 'cfg', key: 't' }])
})

test('execute turns parse and compile errors into failed results', () => {
  const parse = execute('send (', { inputs: provider({}) })
  assert.ok(!parse.ok && parse.error.code === 'INTERPRETER_PARSE')
  const compileFailure = execute('send $x ( source = @a destination = @b )', { inputs: provider({}) })
  assert.ok(!compileFailure.ok && compileFailure.error.code === 'COMPILATION_FAILED')
})
