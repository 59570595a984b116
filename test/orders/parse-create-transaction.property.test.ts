import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { LedgerName } from '../../src/domain/index.ts'
import { TallyError, parseJson, stringifyJson } from '../../src/domain/index.ts'
import type { CreateTransactionOptions } from '../../src/orders/index.ts'
import { parseCreateTransaction } from '../../src/orders/index.ts'
import { oracleParseCreateTransaction } from '../support/create-transaction-oracle.ts'

/**
 * `parseCreateTransaction` (one literal for a postings-only order, field
 * names spelled out only for a refusal, a valid asset checked before its
 * shape) against the code it replaced, kept in test/support as the oracle:
 * on any body, valid or not, the same order — the same keys in the same
 * order, since the packed log record follows it — or the same refusal.
 * The one difference allowed: an absent `accountMetadata` is now the frozen
 * empty map `{}` already gave.
 */

type Outcome = { readonly order: unknown } | { readonly refused: { code: string; kind: string; message: string } }

/** A value with its key order and prototypes made visible (deepStrictEqual ignores key order). */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return { array: value.map(shape) }
  if (value !== null && typeof value === 'object') {
    return {
      prototype: Object.getPrototypeOf(value) === null ? 'null' : 'object',
      object: Object.keys(value).map((key) => [key, shape((value as Record<string, unknown>)[key])]),
    }
  }
  return { [typeof value]: value }
}

function outcome(parse: () => unknown): Outcome {
  try {
    return { order: shape(parse()) }
  } catch (error) {
    assert.ok(error instanceof TallyError, `a refusal is a TallyError, not ${String(error)}`)
    return { refused: { code: error.code, kind: error.kind, message: error.message } }
  }
}

const ledger = 'main' as LedgerName
const templates: Readonly<Record<string, string>> = {
  PAY: 'vars {\n  account $to\n}\nsend [USD/2 10] (\n  source = @world\n  destination = $to\n)',
}
const plainScript = 'send [USD/2 100] (\n  source = @world\n  destination = @users:1\n)'

/** Mostly `valid`, sometimes `invalid`: each body is refused for at most a field or two, so every check is reached. */
function mostly<T>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: invalid })
}

const account = mostly(
  fc.oneof(fc.constantFrom('world', 'users:1', 'users:001', 'a:b:c', 'A_b-c', 'x'.repeat(1024)), fc.stringMatching(/^[a-z0-9_-]{1,6}(:[a-z0-9_-]{1,6}){0,2}$/)),
  fc.constantFrom<unknown>('', 'bad name', 'users::1', ':x', 'é', 'x'.repeat(1025), 1n, null, true, {}, []),
)
const asset = mostly(
  fc.constantFrom('USD', 'USD/2', 'EUR_CENT/2', 'A'.repeat(17), 'B9/123456'),
  fc.oneof(fc.constantFrom<unknown>('usd', 'A'.repeat(18), 'USD/1234567', `USD_${'A'.repeat(17)}`, 'USD/', '/2', 'USD_/2', '', 1n, null, { code: 'USD' }), fc.stringMatching(/^[A-Z0-9_/]{1,8}$/)),
)
const amount = mostly(fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }), fc.constantFrom<unknown>(-1n, 1n << 256n, 1.5, 1e3, '100', null, true, [1n]))
// A field of a posting is now and then missing (undefined is not printed) or an extra one is there.
const posting = fc.record({
  source: mostly(account, fc.constant(undefined)),
  destination: mostly(account, fc.constant(undefined)),
  amount: mostly(amount, fc.constant(undefined)),
  asset: mostly(asset, fc.constant(undefined)),
  extra: mostly(fc.constant(undefined), fc.constant('x')),
})
const postings = mostly(fc.array(posting, { minLength: 1, maxLength: 3 }), fc.constantFrom<unknown>([], null, {}, 'p', 1n))
const metadata = mostly(fc.constantFrom<unknown>({}, { k: 'v' }, { b: '2', a: '1' }), fc.constantFrom<unknown>({ k: 1n }, { '': 'v' }, null, 'm', []))
const accountMetadata = mostly(fc.constantFrom<unknown>({}, { 'users:1': { a: 'b' } }, { 'users:2': {}, 'users:1': { x: 'y' } }), fc.constantFrom<unknown>({ 'bad addr': {} }, { 'users:1': 'v' }, null, 'm'))
const body = fc.record(
  {
    postings,
    metadata,
    accountMetadata,
    reference: mostly(fc.constantFrom<unknown>('ref-1', 'r'.repeat(100)), fc.constantFrom<unknown>('', 'r'.repeat(5000), 1n, null)),
    timestamp: mostly(fc.constantFrom<unknown>('2026-01-01T00:00:00Z', '2026-01-01T00:00:00.123456+02:00'), fc.constantFrom<unknown>('2026-02-30T00:00:00Z', 'yesterday', 1n, null)),
    force: mostly(fc.boolean(), fc.constantFrom<unknown>('yes', null)),
    script: fc.oneof(
      { weight: 10, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>({ plain: plainScript }, { template: 'PAY', vars: { to: 'users:9' } }, { plain: '' }, { template: 'NONE' }, 'script', null) },
    ),
  },
  { requiredKeys: ['postings'] },
)
const options = fc.record(
  {
    force: fc.boolean(),
    schemaVersion: fc.constantFrom('v1', 'v2'),
  },
  { requiredKeys: [] },
)

function withTemplates(chosen: { force?: boolean; schemaVersion?: string }): CreateTransactionOptions {
  return chosen.schemaVersion === undefined
    ? chosen
    : {
        ...chosen,
        templateScript: (name: string) => {
          const script = templates[name]
          if (script === undefined) throw new TallyError({ code: 'VALIDATION', kind: 'validation', message: `no template ${name}` })
          return script
        },
      }
}

test('parseCreateTransaction: the same order, keys in the same order, or the same refusal as the code it replaced', () => {
  fc.assert(
    fc.property(body, options, (value, chosen) => {
      // Through the lossless parser, as a request body arrives: integers are bigints, objects plain.
      const parsed = parseJson(stringifyJson(value as never))
      const parsing = withTemplates(chosen)
      const fast = outcome(() => parseCreateTransaction(ledger, parsed, parsing))
      const old = outcome(() => oracleParseCreateTransaction(ledger, parsed, parsing))
      assert.deepStrictEqual(fast, old)
    }),
    { numRuns: 3000 },
  )
})

test('parseCreateTransaction: a postings-only order is the literal of the general form; absent accountMetadata is the frozen empty map', () => {
  const order = parseCreateTransaction(ledger, parseJson('{"postings":[{"source":"world","destination":"users:1","amount":5,"asset":"USD/2"}]}'))
  assert.deepStrictEqual(Object.keys(order), ['type', 'ledger', 'postings', 'metadata', 'accountMetadata', 'force'])
  assert.ok(Object.isFrozen(order.accountMetadata))
  assert.equal(order.accountMetadata, parseCreateTransaction(ledger, parseJson('{"postings":[],"accountMetadata":{}}')).accountMetadata)
  const dated = parseCreateTransaction(ledger, parseJson('{"postings":[],"reference":"r","timestamp":"2026-01-01T00:00:00Z"}'), { schemaVersion: 'v1' })
  assert.deepStrictEqual(Object.keys(dated), ['type', 'ledger', 'postings', 'schemaVersion', 'timestamp', 'reference', 'metadata', 'accountMetadata', 'force'])
})
