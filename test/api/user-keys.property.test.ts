import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/app.ts'
import { Store } from '../../src/store/index.ts'
import { runCheck } from '../../src/check/index.ts'
import { parseJson } from '../../src/domain/index.ts'
import type { Json } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { asArray, asObject, assertError, assertStatus, at, createLedger, openTestApi, show } from '../support/api.ts'

/**
 * Issue #9 point 4: every map keyed by user input, swept with the keys a
 * plain object gets wrong. Account names and metadata keys are drawn from
 * Object.prototype's own names (plus `__proto__`) and ordinary names, sent
 * in any order through every write route, and read back through every read
 * route, before and after a restart, then `tally check` must be clean and
 * Object.prototype untouched.
 */
const PROTOTYPE_NAMES = [...new Set([...Object.getOwnPropertyNames(Object.prototype), '__proto__'])]
const ACCOUNT_PATTERN = /^[a-zA-Z0-9_-]+(:[a-zA-Z0-9_-]+)*$/
const NAMES = [...PROTOTYPE_NAMES.filter((name) => ACCOUNT_PATTERN.test(name)), 'plain', 'users:1']
const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort().join(',')

const nameArbitrary = fc.constantFrom(...NAMES)
// Unique keys: a JSON object with a duplicated key is refused (400) by the parser.
const metadataArbitrary = fc.uniqueArray(fc.tuple(fc.constantFrom(...PROTOTYPE_NAMES, 'a', 'b', 'z'), fc.string({ maxLength: 3 })), { maxLength: 4, selector: ([key]) => key })

type Step =
  | { kind: 'send'; source: string; destination: string; amount: number; metadata: [string, string][]; accountMetadata: [string, [string, string][]][] }
  | { kind: 'accountMeta'; account: string; metadata: [string, string][]; bulk: boolean }
  | { kind: 'txMeta'; metadata: [string, string][]; bulk: boolean }
  | { kind: 'ledgerMeta'; metadata: [string, string][] }
  | { kind: 'deleteAccountMeta'; account: string; key: string }

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('send' as const),
      source: fc.oneof(fc.constant('world'), nameArbitrary),
      destination: nameArbitrary,
      amount: fc.integer({ min: 1, max: 50 }),
      metadata: metadataArbitrary,
      accountMetadata: fc.uniqueArray(fc.tuple(nameArbitrary, metadataArbitrary), { maxLength: 2, selector: ([account]) => account }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('accountMeta' as const), account: nameArbitrary, metadata: metadataArbitrary, bulk: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('txMeta' as const), metadata: metadataArbitrary, bulk: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ledgerMeta' as const), metadata: metadataArbitrary }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteAccountMeta' as const), account: nameArbitrary, key: fc.constantFrom(...PROTOTYPE_NAMES, 'a') }) },
)

/** A JSON object text with `entries` in the order given (JSON.stringify of an object would drop `__proto__` ordering control). */
function objectText(entries: readonly (readonly [string, string])[]): string {
  return `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`
}
const stringsText = (entries: readonly (readonly [string, string])[]) => objectText(entries.map(([key, value]) => [key, JSON.stringify(value)]))

/** What the ledger must hold, kept in Maps. */
class Model {
  readonly balances = new Map<string, bigint>()
  readonly accountMetadata = new Map<string, Map<string, string>>()
  readonly accounts = new Set<string>()
  readonly transactionMetadata: Map<string, string>[] = []
  /** Per transaction: account → balance before and after, for the touched accounts. */
  readonly commitVolumes: { pre: Map<string, bigint>; post: Map<string, bigint> }[] = []
  readonly ledgerMetadata = new Map<string, string>()

  balance(account: string): bigint {
    return this.balances.get(account) ?? 0n
  }

  metadataOf(account: string): Map<string, string> {
    let metadata = this.accountMetadata.get(account)
    if (metadata === undefined) this.accountMetadata.set(account, (metadata = new Map()))
    return metadata
  }
}

function merge(target: Map<string, string>, entries: readonly (readonly [string, string])[]): void {
  for (const [key, value] of entries) target.set(key, value)
}

function sortedObject(map: ReadonlyMap<string, unknown>): string {
  return show([...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

function entriesOf(value: Json | undefined): Map<string, Json> {
  const object = asObject(value)
  return new Map(Object.keys(object).map((key) => [key, object[key] as Json]))
}

interface Harness {
  readonly app: FastifyInstance
  readonly node: LedgerNode
}

async function open(directory: string): Promise<Harness> {
  const node = await LedgerNode.open({ dataDirectory: directory, cacheRotationThreshold: 3, clusterId: 'user-keys', sync: false })
  return { node, app: await buildApi(node) }
}

async function request(harness: Harness, method: 'GET' | 'POST' | 'DELETE' | 'PUT', url: string, payload?: string): Promise<{ status: number; body: Json; text: string }> {
  const response = await harness.app.inject({ method, url, ...(payload === undefined ? {} : { payload, headers: { 'content-type': 'application/json' } }) })
  return { status: response.statusCode, text: response.body, body: response.body === '' ? null : parseJson(response.body) }
}

async function expectOk(harness: Harness, method: 'GET' | 'POST' | 'DELETE' | 'PUT', url: string, payload?: string): Promise<Json> {
  const reply = await request(harness, method, url, payload)
  assert.ok(reply.status >= 200 && reply.status < 300, `${method} ${url} ${payload ?? ''} → ${reply.status} ${reply.text}`)
  return reply.body
}

async function apply(harness: Harness, model: Model, step: Step): Promise<void> {
  const url = (rest: string) => `/v2/main${rest}`
  switch (step.kind) {
    case 'send': {
      const amount = BigInt(step.amount)
      if (step.source !== 'world' && model.balance(step.source) < amount) return
      const accountMetadata = objectText(step.accountMetadata.map(([account, metadata]) => [account, stringsText(metadata)]))
      const body = `{"postings":[{"source":${JSON.stringify(step.source)},"destination":${JSON.stringify(step.destination)},"amount":${amount},"asset":"USD"}],"metadata":${stringsText(step.metadata)},"accountMetadata":${accountMetadata}}`
      const touched = [...new Set([step.source, step.destination])]
      const pre = new Map(touched.map((account) => [account, model.balance(account)]))
      const data = await expectOk(harness, 'POST', url('/transactions'), body)
      model.balances.set(step.source, model.balance(step.source) - amount)
      model.balances.set(step.destination, model.balance(step.destination) + amount)
      const post = new Map(touched.map((account) => [account, model.balance(account)]))
      model.commitVolumes.push({ pre, post })
      const metadata = new Map<string, string>()
      merge(metadata, step.metadata)
      model.transactionMetadata.push(metadata)
      for (const account of touched) model.accounts.add(account)
      // Later duplicates of an address win, as in a JSON object.
      const byAccount = new Map<string, [string, string][]>()
      for (const [account, entries] of step.accountMetadata) byAccount.set(account, entries)
      for (const [account, entries] of byAccount) {
        model.accounts.add(account)
        merge(model.metadataOf(account), entries)
      }
      assertCommitVolumes(at(data, 'data'), pre, post, 'write reply')
      return
    }
    case 'accountMeta':
      if (step.bulk) {
        await expectOk(harness, 'POST', url('/_bulk'), `[{"action":"ADD_METADATA","data":{"targetType":"ACCOUNT","targetId":${JSON.stringify(step.account)},"metadata":${stringsText(step.metadata)}}}]`)
      } else {
        await expectOk(harness, 'POST', url(`/accounts/${step.account}/metadata`), stringsText(step.metadata))
      }
      model.accounts.add(step.account)
      merge(model.metadataOf(step.account), step.metadata)
      return
    case 'txMeta': {
      const id = model.transactionMetadata.length - 1
      if (id < 0) return
      if (step.bulk) {
        await expectOk(harness, 'POST', url('/_bulk'), `[{"action":"ADD_METADATA","data":{"targetType":"TRANSACTION","targetId":${id},"metadata":${stringsText(step.metadata)}}}]`)
      } else {
        await expectOk(harness, 'POST', url(`/transactions/${id}/metadata`), stringsText(step.metadata))
      }
      merge(model.transactionMetadata[id] as Map<string, string>, step.metadata)
      return
    }
    case 'ledgerMeta':
      await expectOk(harness, 'PUT', url('/metadata'), stringsText(step.metadata))
      merge(model.ledgerMetadata, step.metadata)
      return
    case 'deleteAccountMeta': {
      if (!model.accounts.has(step.account)) return
      await expectOk(harness, 'DELETE', url(`/accounts/${step.account}/metadata/${encodeURIComponent(step.key)}`))
      model.metadataOf(step.account).delete(step.key)
      return
    }
  }
}

function assertCommitVolumes(transaction: Json, pre: ReadonlyMap<string, bigint>, post: ReadonlyMap<string, bigint>, what: string): void {
  for (const [field, expected] of [['preCommitVolumes', pre], ['postCommitVolumes', post]] as const) {
    const byAccount = entriesOf(at(transaction, field))
    assert.deepEqual([...byAccount.keys()].sort(), [...expected.keys()].sort(), `${what}: ${field} accounts in ${show(transaction)}`)
    for (const [account, balance] of expected) {
      assert.equal(at(byAccount.get(account), 'USD', 'balance'), balance, `${what}: ${field}[${account}]`)
    }
  }
}

/** Every read route against the model. */
async function verify(harness: Harness, model: Model, when: string): Promise<void> {
  for (const account of model.accounts) {
    const data = at(await expectOk(harness, 'GET', `/v2/main/accounts/${account}?expand=volumes`), 'data')
    const metadata = entriesOf(at(data, 'metadata'))
    assert.equal(sortedObject(metadata), sortedObject(model.accountMetadata.get(account) ?? new Map()), `${when}: metadata of ${account}`)
    const volumes = entriesOf(at(data, 'volumes'))
    if (model.balance(account) !== 0n) assert.equal(at(volumes.get('USD'), 'balance'), model.balance(account), `${when}: balance of ${account}`)
  }
  const listed = asArray(at(await expectOk(harness, 'GET', '/v2/main/accounts?pageSize=100&expand=volumes'), 'cursor', 'data'))
  assert.deepEqual(listed.map((account) => at(account, 'address')).sort(), [...model.accounts].sort(), `${when}: account list`)
  for (let id = 0; id < model.transactionMetadata.length; id++) {
    const data = at(await expectOk(harness, 'GET', `/v2/main/transactions/${id}?expand=volumes`), 'data')
    assert.equal(sortedObject(entriesOf(at(data, 'metadata'))), sortedObject(model.transactionMetadata[id] as Map<string, string>), `${when}: metadata of transaction ${id}`)
    const volumes = model.commitVolumes[id] as { pre: Map<string, bigint>; post: Map<string, bigint> }
    assertCommitVolumes(data, volumes.pre, volumes.post, `${when}: transaction ${id}`)
  }
  const ledger = at(await expectOk(harness, 'GET', '/v2/main'), 'data')
  assert.equal(sortedObject(entriesOf(at(ledger, 'metadata'))), sortedObject(model.ledgerMetadata), `${when}: ledger metadata`)
  await expectOk(harness, 'GET', '/v2/main/logs?pageSize=100')
  await expectOk(harness, 'GET', '/v2/main/aggregate/balances')
  assertPrototypeUntouched(when)
}

function assertPrototypeUntouched(when: string): void {
  assert.equal(Object.getOwnPropertyNames(Object.prototype).sort().join(','), prototypeBefore, `${when}: Object.prototype gained properties`)
  for (const name of NAMES) assert.equal(Object.hasOwn(Object.prototype, name) && !PROTOTYPE_NAMES.includes(name), false, `${when}: Object.prototype.${name}`)
}

test('user-keyed maps: account names and metadata keys named after Object.prototype survive every route, a restart and tally check', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(stepArbitrary, { minLength: 1, maxLength: 14 }), async (steps) => {
      const temp = tempDirectory('tally-user-keys-')
      try {
        let harness = await open(temp.directory)
        const model = new Model()
        try {
          await expectOk(harness, 'POST', '/v2/main', '{"metadata":{"constructor":"c","__proto__":"p","b":"1","a":"2"}}')
          merge(model.ledgerMetadata, [['constructor', 'c'], ['__proto__', 'p'], ['b', '1'], ['a', '2']])
          for (const step of steps) await apply(harness, model, step)
          await verify(harness, model, 'before restart')
        } finally {
          await harness.app.close()
          await harness.node.close()
        }
        harness = await open(temp.directory)
        try {
          await verify(harness, model, 'after restart')
        } finally {
          await harness.app.close()
          await harness.node.close()
        }
        const store = await Store.open(path.join(temp.directory, 'store'))
        try {
          const result = await runCheck(store)
          assert.equal(result.ok, true, JSON.stringify(result.findingsList).slice(0, 3000))
        } finally {
          await store.close()
        }
        assertPrototypeUntouched('after check')
      } finally {
        temp.remove()
      }
    }),
    { numRuns: 15 },
  )
})

test('user-keyed maps in scripts: variables, tx metadata and account metadata named after Object.prototype', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'main')
    const post = (body: string) => api.request('POST', '/v2/main/transactions', body)
    // A variable `$__proto__` given in `vars` is a value, not a prototype.
    const proto = await post('{"script":{"plain":"vars { account $__proto__ }\\nsend [USD 1] ( source = @world destination = $__proto__ )","vars":{"__proto__":"users:2"}}}')
    assertStatus(proto, 200)
    assert.equal(at(proto.body, 'data', 'postings', 0, 'destination'), 'users:2')
    // A variable `$constructor` NOT given is missing, not Object's constructor.
    assertError(await post('{"script":{"plain":"vars { account $constructor }\\nsend [USD 1] ( source = @world destination = $constructor )","vars":{}}}'), 400, 'INTERPRETER_RUNTIME', 'no value given for variable $constructor')
    // Script metadata keys `constructor` / `__proto__` are data, and clash with nothing the request did not set.
    const meta = await post('{"script":{"plain":"send [USD 1] ( source = @world destination = @constructor )\\nset_account_meta(@__proto__, \\"__proto__\\", \\"x\\")\\nset_tx_meta(\\"constructor\\", \\"y\\")","vars":{}}}')
    assertStatus(meta, 200)
    assert.equal(at(meta.body, 'data', 'metadata', 'constructor'), 'y')
    const account = await api.request('GET', '/v2/main/accounts/__proto__')
    assertStatus(account, 200)
    assert.deepEqual(Object.entries(asObject(at(account.body, 'data', 'metadata'))), [['__proto__', 'x']])
    assertPrototypeUntouched('after scripts')
  } finally {
    await api.close()
  }
})
