import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { asArray, asObject, assertError, assertStatus, at, createLedger, openTestApi } from '../support/api.ts'
import type { TestApi } from '../support/api.ts'

const CHART = {
  world: {},
  bank: { $bankID: { '.pattern': '^[0-9]{3}$' } },
  users: { $userID: { '.pattern': '^[0-9]+$', '.self': {}, wallet: {}, '.metadata': { tier: { default: 'basic' } } } },
}

const SCHEMA = {
  chart: CHART,
  transactions: {
    DEPOSIT: { description: 'money in', script: 'vars {\n  account $user\n  monetary $amount\n}\nsend $amount (\n  source = @world\n  destination = $user\n)\n' },
  },
  queries: {
    BY_USER: { resource: 'transactions', vars: { user: { type: 'string' } }, body: { $match: { destination: 'users:${user}' } } },
    USERS: { resource: 'accounts', params: { pageSize: 1 }, body: { $match: { address: 'users:' } } },
    VOLUMES: { params: { resource: 'volumes', insertionDate: true }, body: { $match: { address: 'users:$user' } }, vars: { user: { type: 'string', default: '1' } } },
    LOGS: { resource: 'logs', params: { sort: 'id:asc' } },
  },
}

async function withSchema(api: TestApi, version = 'v1.0.0'): Promise<void> {
  await createLedger(api, 'main')
  assertStatus(await api.request('POST', `/v2/main/schemas/${version}`, SCHEMA), 204)
}

test('schemas: insert, get, list by creation; immutable; precise 400s', async () => {
  const api = await openTestApi()
  try {
    await withSchema(api)
    const got = await api.request('GET', '/v2/main/schemas/v1.0.0')
    assertStatus(got, 200)
    assert.equal(at(got.body, 'data', 'version'), 'v1.0.0')
    assert.equal(typeof at(got.body, 'data', 'createdAt'), 'string')
    assert.deepEqual(at(got.body, 'data', 'chart'), CHART)
    assertError(await api.request('POST', '/v2/main/schemas/v1.0.0', { chart: { world: {} } }), 400, 'SCHEMA_ALREADY_EXISTS', 'v1.0.0')
    assertStatus(await api.request('POST', '/v2/main/schemas/v2', { chart: { world: {}, users: { $id: {} } } }), 204)
    const listed = await api.request('GET', '/v2/main/schemas')
    assertStatus(listed, 200)
    assert.deepEqual(asArray(at(listed.body, 'cursor', 'data')).map((schema) => asObject(schema).version), ['v2', 'v1.0.0'])
    const ascending = await api.request('GET', '/v2/main/schemas?order=asc&pageSize=1')
    assert.deepEqual(asArray(at(ascending.body, 'cursor', 'data')).map((schema) => asObject(schema).version), ['v1.0.0'])
    const next = await api.request('GET', `/v2/main/schemas?cursor=${String(at(ascending.body, 'cursor', 'next'))}`)
    assert.deepEqual(asArray(at(next.body, 'cursor', 'data')).map((schema) => asObject(schema).version), ['v2'])
    assertError(await api.request('GET', '/v2/main/schemas/v9'), 404, 'NOT_FOUND', 'latest: v2')
    assertError(await api.request('GET', '/v2/nope/schemas/v1'), 404, 'LEDGER_NOT_FOUND')
    assertError(await api.request('POST', '/v2/main/schemas/v3', {}), 400, 'VALIDATION', 'chart: required')
    assertError(await api.request('POST', '/v2/main/schemas/v3', { chart: { $x: {} } }), 400, 'VALIDATION', 'root')
    assertError(await api.request('POST', '/v2/main/schemas/v3', { chart: { a: { $x: {}, $y: {} } } }), 400, 'VALIDATION', 'one per level')
    assertError(await api.request('POST', '/v2/main/schemas/v3', { chart: { a: { b: { '.pattern': 'x' } } } }), 400, 'VALIDATION', 'variable segments')
    assertError(await api.request('POST', '/v2/main/schemas/v3', { chart: { a: { $b: { '.pattern': '(a+)+$' } } } }), 400, 'VALIDATION', 'backtracking')
    assertError(await api.request('POST', '/v2/main/schemas/v3', { chart: { a: { $b: { '.pattern': '[' } } } }), 400, 'VALIDATION', 'invalid pattern')
    assertError(await api.request('POST', '/v2/main/schemas/v3', { chart: { a: { '.rules': { maxBalance: 1 } } } }), 400, 'VALIDATION', 'unknown account rule')
    assertError(await api.request('POST', '/v2/main/schemas/v3', { chart: { a: { b: {}, '.metadata': {} } } }), 400, 'VALIDATION', 'only an account segment')
    assertError(await api.request('POST', '/v2/main/schemas/v3', { chart: { world: {} }, transactions: { T: { script: 'send' } } }), 400, 'INTERPRETER_PARSE', 'transactions["T"].script')
    assertError(await api.request('POST', '/v2/main/schemas/v3', { chart: { world: {} }, queries: { Q: { resource: 'nope' } } }), 400, 'VALIDATION', 'resource')
    assertError(await api.request('POST', '/v2/main/schemas/bad version', { chart: {} }), 400, 'VALIDATION', 'version')
    // As v2 writes a chart back: an empty .rules is no rule, a leaf's .self is implied.
    assertStatus(await api.request('POST', '/v2/main/schemas/v3', { chart: { world: { '.rules': {}, '.self': {} }, users: { '.self': {}, '.rules': {}, $id: {} } } }), 204)
    assert.deepEqual(at((await api.request('GET', '/v2/main/schemas/v3')).body, 'data', 'chart'), { world: {}, users: { '.self': {}, $id: {} } })
  } finally {
    await api.close()
  }
})

test('schemas: writes name their version; postings outside the chart are refused with nothing applied', async () => {
  const api = await openTestApi()
  try {
    // Before any schema, writes need no version.
    await createLedger(api, 'main')
    assertStatus(await api.request('POST', '/v2/main/transactions', { postings: [{ source: 'world', destination: 'anything', amount: 1, asset: 'USD' }] }), 200)
    assertStatus(await api.request('POST', '/v2/main/schemas/v1', SCHEMA), 204)
    const posting = (destination: string) => ({ postings: [{ source: 'world', destination, amount: 5, asset: 'USD' }] })
    assertError(await api.request('POST', '/v2/main/transactions', posting('users:1')), 400, 'SCHEMA_NOT_SPECIFIED', 'v1')
    assertError(await api.request('POST', '/v2/main/transactions?schemaVersion=v7', posting('users:1')), 404, 'NOT_FOUND', 'schema v7')
    assertError(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', posting('users:abc')), 400, 'VALIDATION', 'does not match the pattern ^[0-9]+$ of $userID')
    assertError(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', posting('shops:1')), 400, 'VALIDATION', 'no segment "shops" at the root')
    assertError(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', posting('bank')), 400, 'VALIDATION', 'not an account')
    assertError(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', posting('users:1:wallet:x')), 400, 'VALIDATION', 'under users:1:wallet')
    const stats = await api.request('GET', '/v2/main/stats')
    assert.equal(at(stats.body, 'data', 'transactions'), 1n, 'nothing applied by the refusals')
    const created = await api.request('POST', '/v2/main/transactions?schemaVersion=v1', posting('users:1:wallet'))
    assertStatus(created, 200)
    assertStatus(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', posting('users:12')), 200)
    // Metadata writes and reverts follow the schema too.
    assertError(await api.request('POST', '/v2/main/accounts/users:x/metadata?schemaVersion=v1', { a: 'b' }), 400, 'VALIDATION', 'users:x')
    assertError(await api.request('POST', '/v2/main/accounts/users:1/metadata', { a: 'b' }), 400, 'SCHEMA_NOT_SPECIFIED')
    assertStatus(await api.request('POST', '/v2/main/accounts/users:1/metadata?schemaVersion=v1', { a: 'b' }), 204)
    assertError(await api.request('POST', '/v2/main/transactions/1/metadata', { a: 'b' }), 400, 'SCHEMA_NOT_SPECIFIED')
    assertStatus(await api.request('POST', '/v2/main/transactions/1/metadata?schemaVersion=v1', { a: 'b' }), 204)
    // The transaction made before the schema moved `anything`, outside the chart: its revert is refused.
    assertError(await api.request('POST', '/v2/main/transactions/0/revert?schemaVersion=v1'), 400, 'VALIDATION', 'anything')
    assertStatus(await api.request('POST', '/v2/main/transactions/1/revert?schemaVersion=v1'), 201)
    // A bulk names the version for its elements.
    const element = (destination: string) => ({ action: 'CREATE_TRANSACTION', data: posting(destination) })
    assertError(await api.request('POST', '/v2/main/_bulk', [element('users:3')]), 400, 'SCHEMA_NOT_SPECIFIED')
    assertError(await api.request('POST', '/v2/main/_bulk?schemaVersion=v1&atomic=true', [element('users:3'), element('users:y')]), 400, 'VALIDATION', 'users:y')
    assert.equal(at((await api.request('GET', '/v2/main/stats')).body, 'data', 'transactions'), 4n, 'an atomic bulk with one refused element applies nothing')
    assertStatus(await api.request('POST', '/v2/main/_bulk?schemaVersion=v1', [element('users:3')]), 200)
    // Logs written under a schema carry its version.
    const logs = await api.request('GET', '/v2/main/logs')
    const types = asArray(at(logs.body, 'cursor', 'data')).map((log) => `${String(asObject(log).type)}:${String(asObject(log).schemaVersion ?? '-')}`)
    assert.deepEqual(types.reverse(), ['NEW_TRANSACTION:-', 'INSERTED_SCHEMA:-', 'NEW_TRANSACTION:v1', 'NEW_TRANSACTION:v1', 'SET_METADATA:v1', 'SET_METADATA:v1', 'REVERTED_TRANSACTION:v1', 'NEW_TRANSACTION:v1'])
  } finally {
    await api.close()
  }
})

test('schemas: script.template creates a transaction from a named template with its variables', async () => {
  const api = await openTestApi()
  try {
    await withSchema(api, 'v1')
    const posting = (destination: string) => ({ postings: [{ source: 'world', destination, amount: 5, asset: 'USD' }] })
    const body = { script: { template: 'DEPOSIT', vars: { user: 'users:42', amount: 'USD 100' } } }
    const created = await api.request('POST', '/v2/main/transactions?schemaVersion=v1', body)
    assertStatus(created, 200)
    assert.equal(at(created.body, 'data', 'template'), 'DEPOSIT')
    assert.deepEqual(at(created.body, 'data', 'postings'), [{ source: 'world', destination: 'users:42', amount: 100n, asset: 'USD' }])
    assertError(await api.request('POST', '/v2/main/transactions', body), 400, 'SCHEMA_NOT_SPECIFIED', 'template')
    assertError(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { script: { template: 'NOPE' } }), 404, 'NOT_FOUND', 'NOPE')
    assertError(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { script: { template: 'x'.repeat(129) } }), 400, 'VALIDATION', 'longer than the limit of 128')
    assertError(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { script: { template: 'DEPOSIT', plain: 'send [USD 1] (source = @world destination = @a)' } }), 400, 'VALIDATION', 'not both')
    assertError(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { script: { template: 'DEPOSIT', vars: { user: 'users:x', amount: 'USD 1' } } }), 400, 'VALIDATION', 'users:x')
    const got = await api.request('GET', '/v2/main/transactions/0')
    assert.equal(at(got.body, 'data', 'template'), 'DEPOSIT')
    // In _bulk, each element's template is planned like a single transaction's, from the bulk's schemaVersion.
    const element = (vars: Record<string, string>, template = 'DEPOSIT') => ({ action: 'CREATE_TRANSACTION', data: { script: { template, vars } } })
    const bulk = await api.request('POST', '/v2/main/_bulk?schemaVersion=v1', [element({ user: 'users:43', amount: 'USD 7' }), { action: 'CREATE_TRANSACTION', data: posting('users:44') }])
    assertStatus(bulk, 200)
    const results = asArray(at(bulk.body, 'data')).map((result) => asObject(result))
    assert.equal(at(results[0], 'data', 'template'), 'DEPOSIT')
    assert.deepEqual(at(results[0], 'data', 'postings'), [{ source: 'world', destination: 'users:43', amount: 7n, asset: 'USD' }])
    assert.equal(Object.hasOwn(asObject(at(results[1], 'data')), 'template'), false)
    assertError(await api.request('POST', '/v2/main/_bulk', [element({ user: 'users:43', amount: 'USD 7' })]), 400, 'SCHEMA_NOT_SPECIFIED', 'template')
    assertError(await api.request('POST', '/v2/main/_bulk?schemaVersion=v1', [element({}, 'NOPE')]), 404, 'NOT_FOUND', '[0].data: transaction template "NOPE"')
    assertError(await api.request('POST', '/v2/main/_bulk?schemaVersion=v9', [element({})]), 404, 'NOT_FOUND', 'schema v9')
    assertError(await api.request('POST', '/v2/main/_bulk?schemaVersion=v1&atomic=true', [element({ user: 'users:45', amount: 'USD 1' }), element({ user: 'users:x', amount: 'USD 1' })]), 400, 'VALIDATION', 'users:x')
    // An atomic bulk with one refused element applies nothing.
    assertError(await api.request('GET', '/v2/main/accounts/users:45'), 404, 'NOT_FOUND')
  } finally {
    await api.close()
  }
})

test('schemas: queries/{id}/run runs a query template with its variables, paged like any list', async () => {
  const api = await openTestApi()
  try {
    await withSchema(api, 'v1')
    for (const user of ['1', '2', '1']) {
      assertStatus(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { postings: [{ source: 'world', destination: `users:${user}`, amount: 1, asset: 'USD' }] }), 200)
    }
    const run = await api.request('POST', '/v2/main/queries/BY_USER/run?schemaVersion=v1', { vars: { user: '1' } })
    assertStatus(run, 200)
    assert.deepEqual(asArray(at(run.body, 'cursor', 'data')).map((tx) => asObject(tx).id), [2n, 0n])
    const accounts = await api.request('POST', '/v2/main/queries/USERS/run?schemaVersion=v1', {})
    assertStatus(accounts, 200)
    assert.deepEqual(asArray(at(accounts.body, 'cursor', 'data')).map((account) => asObject(account).address), ['users:1'])
    assert.equal(at(accounts.body, 'cursor', 'hasMore'), true)
    const next = await api.request('POST', `/v2/main/queries/USERS/run?schemaVersion=v1&cursor=${String(at(accounts.body, 'cursor', 'next'))}`, {})
    assert.deepEqual(asArray(at(next.body, 'cursor', 'data')).map((account) => asObject(account).address), ['users:2'])
    const volumes = await api.request('POST', '/v2/main/queries/VOLUMES/run?schemaVersion=v1', {})
    assertStatus(volumes, 200)
    assert.deepEqual(asArray(at(volumes.body, 'cursor', 'data')).map((row) => [asObject(row).account, asObject(row).balance]), [['users:1', 2n]], 'the default of the variable')
    const logs = await api.request('POST', '/v2/main/queries/LOGS/run?schemaVersion=v1&pageSize=2', {})
    assert.deepEqual(asArray(at(logs.body, 'cursor', 'data')).map((log) => asObject(log).type), ['INSERTED_SCHEMA', 'NEW_TRANSACTION'])
    assertError(await api.request('POST', '/v2/main/queries/BY_USER/run?schemaVersion=v1', {}), 400, 'VALIDATION', 'vars["user"]')
    assertError(await api.request('POST', '/v2/main/queries/BY_USER/run?schemaVersion=v1', { vars: { other: 'x' } }), 400, 'VALIDATION', 'no such variable')
    assertError(await api.request('POST', '/v2/main/queries/NOPE/run?schemaVersion=v1', {}), 404, 'NOT_FOUND', 'NOPE')
    assertError(await api.request('POST', '/v2/main/queries/USERS/run', {}), 400, 'VALIDATION', 'schemaVersion')
  } finally {
    await api.close()
  }
})

test('schemas: query template variables are typed (string, int, boolean, date) and placeholders are v2\'s $name / ${name}', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'main')
    const typed = {
      chart: { world: {}, users: { $id: {} } },
      queries: {
        RECENT: {
          resource: 'transactions',
          vars: { since: 'date', min: { type: 'int', default: 0 }, undone: { type: 'boolean', default: false }, user: 'string' },
          body: { $and: [{ $gte: { timestamp: '${since}' } }, { $gte: { id: '$min' } }, { $match: { reverted: '${undone}' } }, { $match: { destination: 'users:${user}' } }] },
        },
      },
    }
    assertStatus(await api.request('POST', '/v2/main/schemas/v1', typed), 204)
    const got = await api.request('GET', '/v2/main/schemas/v1')
    assert.deepEqual(at(got.body, 'data', 'queries', 'RECENT', 'vars'), { min: { default: 0n, type: 'int' }, since: { type: 'date' }, undone: { default: false, type: 'boolean' }, user: { type: 'string' } }, 'a bare type is stored as {type}')
    for (const [user, timestamp] of [['1', '2024-01-01T00:00:00Z'], ['1', '2024-03-01T00:00:00Z'], ['2', '2024-03-02T00:00:00Z'], ['1', '2024-04-01T00:00:00Z']] as const) {
      assertStatus(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { timestamp, postings: [{ source: 'world', destination: `users:${user}`, amount: 1, asset: 'USD' }] }), 200)
    }
    assertStatus(await api.request('POST', '/v2/main/transactions/3/revert?schemaVersion=v1'), 201)
    const ids = async (vars: unknown) => {
      const run = await api.request('POST', '/v2/main/queries/RECENT/run?schemaVersion=v1', { vars })
      assertStatus(run, 200)
      assert.equal(at(run.body, 'resource'), 'transactions')
      return asArray(at(run.body, 'cursor', 'data')).map((tx) => asObject(tx).id)
    }
    // As the SDK sends them (strings), and as JSON values of the type.
    assert.deepEqual(await ids({ since: '2024-02-01T00:00:00Z', user: '1' }), [1n])
    assert.deepEqual(await ids({ since: '2024-02-01T00:00:00Z', user: '1', undone: 'true' }), [3n])
    assert.deepEqual(await ids({ since: '2023-01-01T00:00:00Z', user: '1', min: '1' }), [1n])
    assert.deepEqual(await ids({ since: '2023-01-01T00:00:00Z', user: '1', min: 1, undone: false }), [1n])
    // A later page follows the cursor, which carries the filled-in typed filter.
    const firstPage = await api.request('POST', '/v2/main/queries/RECENT/run?schemaVersion=v1&pageSize=1', { vars: { since: '2023-01-01T00:00:00Z', user: '1' } })
    assert.deepEqual(asArray(at(firstPage.body, 'cursor', 'data')).map((tx) => asObject(tx).id), [1n])
    const secondPage = await api.request('POST', `/v2/main/queries/RECENT/run?schemaVersion=v1&cursor=${String(at(firstPage.body, 'cursor', 'next'))}`, {})
    assertStatus(secondPage, 200)
    assert.deepEqual(asArray(at(secondPage.body, 'cursor', 'data')).map((tx) => asObject(tx).id), [0n])
    // Run-time refusals name the variable.
    assertError(await api.request('POST', '/v2/main/queries/RECENT/run?schemaVersion=v1', { vars: { user: '1' } }), 400, 'VALIDATION', 'vars["since"]')
    assertError(await api.request('POST', '/v2/main/queries/RECENT/run?schemaVersion=v1', { vars: { since: 'yesterday', user: '1' } }), 400, 'VALIDATION', 'vars["since"]')
    assertError(await api.request('POST', '/v2/main/queries/RECENT/run?schemaVersion=v1', { vars: { since: '2024-01-01T00:00:00Z', user: '1', min: '1.5' } }), 400, 'VALIDATION', 'not an int')
    assertError(await api.request('POST', '/v2/main/queries/RECENT/run?schemaVersion=v1', { vars: { since: '2024-01-01T00:00:00Z', user: '1', undone: 'yes' } }), 400, 'VALIDATION', 'not a boolean')
    assertError(await api.request('POST', '/v2/main/queries/RECENT/run?schemaVersion=v1', { vars: { since: '2024-01-01T00:00:00Z', user: 1 } }), 400, 'VALIDATION', 'not a value of type string')
    // Insertion refusals name the template, the variable and the place.
    const insert = (queries: unknown) => api.request('POST', '/v2/main/schemas/bad', { chart: { world: {} }, queries })
    assertError(await insert({ Q: { resource: 'transactions', body: { $match: { reference: 'r-${nope}' } } } }), 400, 'VALIDATION', 'variable nope is not declared')
    assertError(await insert({ Q: { resource: 'transactions', vars: { n: 'string' }, body: { $gte: { id: '${n}' } } } }), 400, 'VALIDATION', 'variable n is a string, this field needs a int')
    assertError(await insert({ Q: { resource: 'transactions', vars: { n: 'integer' } } }), 400, 'VALIDATION', 'queries["Q"].vars["n"].type')
    assertError(await insert({ Q: { resource: 'transactions', vars: { n: { type: 'int', default: '5' } } } }), 400, 'VALIDATION', 'queries["Q"].vars["n"].default')
    assertError(await insert({ Q: { resource: 'transactions', vars: { Big: 'string' } } }), 400, 'VALIDATION', 'invalid variable name')
    assertError(await insert({ Q: { resource: 'transactions', body: { $match: { reference: 'costs 5$' } } } }), 400, 'VALIDATION', 'a $ starts a variable')
    assertError(await insert({ Q: { resource: 'transactions', vars: { a: 'string' }, body: { $match: { reference: '${a' } } } }), 400, 'VALIDATION', 'is not closed')
    assertError(await insert({ Q: { resource: 'transactions', vars: { a: 'int' }, body: { $gte: { id: '${a} ' } } } }), 400, 'VALIDATION', 'one whole placeholder')
    assertError(await insert({ Q: { resource: 'transactions', body: { $match: { nope: 'x' } } } }), 400, 'VALIDATION', 'queries["Q"].body')
    assertError(await insert({ Q: { resource: 'accounts', params: { resource: 'logs' } } }), 400, 'VALIDATION', 'params.resource')
  } finally {
    await api.close()
  }
})

test('schemas: export → import carries INSERTED_SCHEMA and schemaVersion byte for byte, hashes included; check is clean', async () => {
  const api = await openTestApi()
  try {
    await withSchema(api, 'v1')
    const posting = (destination: string) => ({ postings: [{ source: 'world', destination, amount: 5, asset: 'USD' }] })
    assertStatus(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', posting('users:1')), 200)
    assertStatus(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { script: { template: 'DEPOSIT', vars: { user: 'users:2', amount: 'USD 3' } } }), 200)
    assertStatus(await api.request('POST', '/v2/main/accounts/users:2/metadata?schemaVersion=v1', { tier: 'gold' }), 204)
    assertStatus(await api.request('POST', '/v2/main/schemas/v2', { chart: { world: {}, users: { $id: {} } } }), 204)
    assertStatus(await api.request('POST', '/v2/main/transactions/0/revert?schemaVersion=v2'), 201)
    const exported = (await api.app.inject({ method: 'POST', url: '/v2/main/logs/export' })).body
    const imported = await api.request('POST', '/v2/copy/logs/import', exported)
    assertStatus(imported, 204)
    assert.equal((await api.app.inject({ method: 'POST', url: '/v2/copy/logs/export' })).body, exported, 'the copy exports the same bytes')
    const schemas = await api.request('GET', '/v2/copy/schemas?order=asc')
    assert.deepEqual(asArray(at(schemas.body, 'cursor', 'data')).map((schema) => asObject(schema).version), ['v1', 'v2'])
    assertError(await api.request('POST', '/v2/copy/transactions', posting('users:1')), 400, 'SCHEMA_NOT_SPECIFIED')
    const checked = (await api.app.inject({ method: 'POST', url: '/_/check' })).body.trim().split('\n').at(-1) ?? ''
    assert.match(checked, /"ok":true/, checked)
  } finally {
    await api.close()
  }
})

test('schemas: an INSERTED_SCHEMA log as v2 writes it (leaf .self, empty description, createdAt apart from the log date) imports with the hash v2 computed', async () => {
  const api = await openTestApi()
  try {
    const script = 'send [USD 1] (\n  source = @world\n  destination = @users:1\n)\n'
    // The text v2 hashes for this log, written by hand from its Schema struct (docs/schemas.md, "The INSERTED_SCHEMA log").
    const text = `{"type":"INSERTED_SCHEMA","data":{"schema":{"chart":{"users":{"$id":{}},"world":{}},"transactions":{"T":{"description":"","script":${JSON.stringify(script)}}},"version":"v1","createdAt":"2024-03-01T09:59:59.987654Z"}},"date":"2024-03-01T10:00:00Z","idempotencyKey":"","id":0,"hash":null}\n`
    const hash = createHash('sha256').update(text, 'utf8').digest('base64')
    const log = { id: 0, type: 'INSERTED_SCHEMA', date: '2024-03-01T10:00:00Z', idempotencyKey: '', hash, data: { schema: { version: 'v1', createdAt: '2024-03-01T09:59:59.987654Z', chart: { world: { '.self': {} }, users: { $id: {} } }, transactions: { T: { description: '', script } } } } }
    assertStatus(await api.request('POST', '/v2/copy/logs/import', `${JSON.stringify(log)}\n`), 204)
    assert.deepEqual(at((await api.request('GET', '/v2/copy/schemas/v1')).body, 'data', 'chart'), { world: {}, users: { $id: {} } })
    const created = await api.request('POST', '/v2/copy/transactions?schemaVersion=v1', { script: { template: 'T' } })
    assertStatus(created, 200)
    const logs = asArray(at((await api.request('GET', '/v2/copy/logs?sort=id:asc')).body, 'cursor', 'data'))
    assert.equal(at(logs[0], 'hash'), hash, 'the ledger logged it with v2\'s hash')
    assert.equal(at((await api.request('GET', '/v2/copy/schemas/v1')).body, 'data', 'createdAt'), '2024-03-01T09:59:59.987654Z')
    const checked = (await api.app.inject({ method: 'POST', url: '/_/check' })).body.trim().split('\n').at(-1) ?? ''
    assert.match(checked, /"ok":true/, checked)
  } finally {
    await api.close()
  }
})

test('schemas: a Numscript meta() sees a chart default once the account exists, not in the write that creates it (as v2 applies defaults when it stores the account)', async () => {
  const api = await openTestApi()
  try {
    await withSchema(api, 'v1')
    const script = 'vars {\n  account $user\n  string $tier = meta($user, "tier")\n}\nsend [USD 1] (\n  source = @world\n  destination = $user\n)\nset_tx_meta("tier", $tier)\n'
    // First use: the account does not exist while the script runs, so its default is not there to read (v2 stores
    // the default when it inserts the account, after the script ran).
    const first = await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { script: { plain: script, vars: { user: 'users:21' } } })
    assertError(first, 400, 'INTERPRETER_RUNTIME', 'tier')
    assertError(await api.request('GET', '/v2/main/accounts/users:21'), 404, 'NOT_FOUND')
    // Once the account exists (created with its default), meta() reads the default like any metadata.
    assertStatus(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { postings: [{ source: 'world', destination: 'users:21', amount: 1, asset: 'USD' }] }), 200)
    const read = await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { script: { plain: script, vars: { user: 'users:21' } } })
    assertStatus(read, 200)
    assert.deepEqual(at(read.body, 'data', 'metadata'), { tier: 'basic' })
    // A value the account was given over the default is what meta() reads.
    assertStatus(await api.request('POST', '/v2/main/accounts/users:21/metadata?schemaVersion=v1', { tier: 'gold' }), 204)
    const gold = await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { script: { plain: script, vars: { user: 'users:21' } } })
    assert.deepEqual(at(gold.body, 'data', 'metadata'), { tier: 'gold' })
  } finally {
    await api.close()
  }
})

test('schemas: template and query names that are Object.prototype members are data (never prototype lookups)', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'main')
    const schema = '{"chart":{"world":{},"__proto__":{}},"transactions":{"__proto__":{"script":"send [USD 1] (\\n  source = @world\\n  destination = @__proto__\\n)\\n"}},"queries":{"constructor":{"resource":"accounts"}}}'
    assertStatus(await api.request('POST', '/v2/main/schemas/v1', schema), 204)
    const got = await api.request('GET', '/v2/main/schemas/v1')
    assert.deepEqual(Object.keys(asObject(at(got.body, 'data', 'transactions'))), ['__proto__'])
    const created = await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { script: { template: '__proto__' } })
    assertStatus(created, 200)
    assert.equal(at(created.body, 'data', 'postings', 0, 'destination'), '__proto__')
    assertError(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { script: { template: 'toString' } }), 404, 'NOT_FOUND', 'toString')
    assertStatus(await api.request('POST', '/v2/main/queries/constructor/run?schemaVersion=v1', {}), 200)
    assertError(await api.request('POST', '/v2/main/queries/hasOwnProperty/run?schemaVersion=v1', {}), 404, 'NOT_FOUND')
    assertError(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { postings: [{ source: 'world', destination: 'constructor', amount: 1, asset: 'USD' }] }), 400, 'VALIDATION', 'constructor')
  } finally {
    await api.close()
  }
})

test('schemas: a chart account\'s default metadata is applied when a write following the schema first uses it, never over the write\'s own', async () => {
  const api = await openTestApi()
  try {
    await withSchema(api, 'v1')
    const metadataOf = async (address: string) => at((await api.request('GET', `/v2/main/accounts/${address}`)).body, 'data', 'metadata')
    const posting = (destination: string) => ({ postings: [{ source: 'world', destination, amount: 5, asset: 'USD' }] })
    const created = await api.request('POST', '/v2/main/transactions?schemaVersion=v1', posting('users:7'))
    assertStatus(created, 200)
    assert.deepEqual(await metadataOf('users:7'), { tier: 'basic' })
    assert.deepEqual(await metadataOf('world'), {}, 'world has no defaults in this chart')
    assertError(await api.request('GET', '/v2/main/accounts/users:7:wallet'), 404, 'NOT_FOUND')
    // The write's own value wins over the default.
    assertStatus(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { ...posting('users:8'), accountMetadata: { 'users:8': { tier: 'gold' } } }), 200)
    assert.deepEqual(await metadataOf('users:8'), { tier: 'gold' })
    // A script's set_account_meta wins too; a template's accounts get their defaults.
    assertStatus(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', { script: { template: 'DEPOSIT', vars: { user: 'users:12', amount: 'USD 3' } } }), 200)
    assert.deepEqual(await metadataOf('users:12'), { tier: 'basic' })
    assertStatus(await api.request('POST', '/v2/main/_bulk?schemaVersion=v1', [{ action: 'CREATE_TRANSACTION', data: posting('users:13') }]), 200)
    assert.deepEqual(await metadataOf('users:13'), { tier: 'basic' })
    // Only on first use: a removed default does not come back.
    assertStatus(await api.request('DELETE', '/v2/main/accounts/users:7/metadata/tier'), 204)
    assertStatus(await api.request('POST', '/v2/main/transactions?schemaVersion=v1', posting('users:7')), 200)
    assert.deepEqual(await metadataOf('users:7'), {})
    // Saving metadata on an account never used creates it with its defaults under the saved values.
    assertStatus(await api.request('POST', '/v2/main/accounts/users:9/metadata?schemaVersion=v1', { note: 'x' }), 204)
    assert.deepEqual(await metadataOf('users:9'), { note: 'x', tier: 'basic' })
    assertStatus(await api.request('POST', '/v2/main/accounts/users:10/metadata?schemaVersion=v1', { tier: 'gold' }), 204)
    assert.deepEqual(await metadataOf('users:10'), { tier: 'gold' })
    // As in v2, the logs carry what the writes gave, not the defaults: an import naming the version
    // derives them again, so it rebuilds the same accounts; check is clean.
    const logs = asArray(at((await api.request('GET', '/v2/main/logs?sort=id:asc')).body, 'cursor', 'data')).map((log) => asObject(log))
    assert.deepEqual(at(logs.find((log) => log.type === 'NEW_TRANSACTION'), 'data', 'accountMetadata'), {})
    const saved = logs.find((log) => log.type === 'SET_METADATA' && at(log, 'data', 'targetId') === 'users:9')
    assert.deepEqual(at(saved, 'data', 'metadata'), { note: 'x' })
    const exported = (await api.app.inject({ method: 'POST', url: '/v2/main/logs/export' })).body
    assertStatus(await api.request('POST', '/v2/copy/logs/import', exported), 204)
    assert.equal((await api.app.inject({ method: 'POST', url: '/v2/copy/logs/export' })).body, exported, 'the copy exports the same bytes')
    for (const address of ['users:7', 'users:8', 'users:9', 'users:10', 'users:12', 'users:13']) {
      assert.deepEqual(at((await api.request('GET', `/v2/copy/accounts/${address}`)).body, 'data', 'metadata'), await metadataOf(address), address)
    }
    const checked = (await api.app.inject({ method: 'POST', url: '/_/check' })).body.trim().split('\n').at(-1) ?? ''
    assert.match(checked, /"ok":true/, checked)
  } finally {
    await api.close()
  }
})
