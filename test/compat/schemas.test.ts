import { test } from 'node:test'
import assert from 'node:assert/strict'
import { posting, present, rejectsWithV2Error, withServer } from './server.ts'

/** Ledger schemas, transaction templates and query runs, called as an application calls them through Formance's SDK. */
test('SDK insertSchema / getSchema / listSchemas; SCHEMA_ALREADY_EXISTS, NOT_FOUND', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    const chart = { world: {}, users: { additionalProperties: { $userID: { dotPattern: '^[0-9]+$' } } } }
    const inserted = await v2.insertSchema({ ledger: 'main', version: 'v1.0.0', v2SchemaData: { chart } })
    assert.equal(inserted.statusCode, 204)
    await v2.insertSchema({ ledger: 'main', version: 'v2.0.0', v2SchemaData: { chart: { world: {} } } })
    const schema = present((await v2.getSchema({ ledger: 'main', version: 'v1.0.0' })).v2SchemaResponse, 'v2SchemaResponse').data
    assert.equal(schema.version, 'v1.0.0')
    assert.ok(schema.createdAt instanceof Date)
    assert.equal(schema.chart.users?.additionalProperties?.$userID?.dotPattern, '^[0-9]+$')
    const listed = present((await v2.listSchemas({ ledger: 'main' })).v2SchemasCursorResponse, 'v2SchemasCursorResponse').cursor
    assert.deepEqual(listed.data.map((item) => item.version), ['v2.0.0', 'v1.0.0'])
    const oldest = present((await v2.listSchemas({ ledger: 'main', order: 'asc', pageSize: 1 })).v2SchemasCursorResponse, 'page').cursor
    assert.deepEqual(oldest.data.map((item) => item.version), ['v1.0.0'])
    assert.equal(oldest.hasMore, true)
    await rejectsWithV2Error(v2.insertSchema({ ledger: 'main', version: 'v1.0.0', v2SchemaData: { chart } }), { status: 400, errorCode: 'SCHEMA_ALREADY_EXISTS' })
    await rejectsWithV2Error(v2.getSchema({ ledger: 'main', version: 'v9' }), { status: 404, errorCode: 'NOT_FOUND' })
  })
})

test('SDK createTransaction with schemaVersion and script.template; SCHEMA_NOT_SPECIFIED; a posting outside the chart is a VALIDATION', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    await v2.insertSchema({
      ledger: 'main',
      version: 'v1',
      v2SchemaData: {
        chart: { world: {}, users: { additionalProperties: { $userID: { dotPattern: '^[0-9]+$' } } } },
        transactions: { DEPOSIT: { script: 'vars {\n  account $user\n}\nsend [USD/2 100] (\n  source = @world\n  destination = $user\n)\n' } },
      },
    })
    const created = await v2.createTransaction({ ledger: 'main', schemaVersion: 'v1', v2PostTransaction: { metadata: {}, script: { template: 'DEPOSIT', vars: { user: 'users:7' } } } })
    const transaction = present(created.v2CreateTransactionResponse, 'v2CreateTransactionResponse').data
    assert.equal(transaction.template, 'DEPOSIT')
    assert.deepEqual(transaction.postings.map((p) => [p.source, p.destination, p.amount]), [['world', 'users:7', 100n]])
    await rejectsWithV2Error(v2.createTransaction({ ledger: 'main', v2PostTransaction: { metadata: {}, postings: [posting('world', 'users:1', 1n)] } }), { status: 400, errorCode: 'SCHEMA_NOT_SPECIFIED' })
    await rejectsWithV2Error(v2.createTransaction({ ledger: 'main', schemaVersion: 'v1', v2PostTransaction: { metadata: {}, postings: [posting('world', 'users:abc', 1n)] } }), {
      status: 400,
      errorCode: 'VALIDATION',
      messageIncludes: 'users:abc',
    })
    const bulk = await v2.createBulk({ ledger: 'main', schemaVersion: 'v1', requestBody: [{ action: 'CREATE_TRANSACTION', data: { metadata: {}, postings: [posting('world', 'users:2', 1n)] } }] })
    assert.equal(bulk.statusCode, 200)
    await v2.addMetadataToAccount({ ledger: 'main', address: 'users:7', schemaVersion: 'v1', requestBody: { tier: 'gold' } })
    await rejectsWithV2Error(v2.addMetadataToAccount({ ledger: 'main', address: 'shops:1', schemaVersion: 'v1', requestBody: { a: 'b' } }), { status: 400, errorCode: 'VALIDATION' })
  })
})

test('SDK runQuery: a query template with variables, paged', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    await v2.insertSchema({
      ledger: 'main',
      version: 'v1',
      v2SchemaData: {
        chart: { world: {}, users: { additionalProperties: { $userID: {} } } },
        queries: {
          TO_USER: { resource: 'transactions', vars: { user: { type: 'string' } }, body: { $match: { destination: 'users:${user}' } } },
          USERS: { params: { resource: 'accounts', pageSize: 1 }, body: { $match: { address: 'users:' } } },
          FROM_ID: { resource: 'transactions', vars: { from: { type: 'int' } }, body: { $gte: { id: '${from}' } } },
        },
      },
    })
    for (const user of ['1', '2', '1']) {
      await v2.createTransaction({ ledger: 'main', schemaVersion: 'v1', v2PostTransaction: { metadata: {}, postings: [posting('world', `users:${user}`, 1n)] } })
    }
    const run = await v2.runQuery({ ledger: 'main', id: 'TO_USER', schemaVersion: 'v1', requestBody: { vars: { user: '1' } } })
    assert.equal(run.statusCode, 200)
    const page = present(run.oneOf, 'oneOf') as { cursor: { data: { id?: bigint }[] } }
    assert.deepEqual(page.cursor.data.map((tx) => tx.id), [2n, 0n])
    const accounts = present((await v2.runQuery({ ledger: 'main', id: 'USERS', schemaVersion: 'v1', requestBody: {} })).oneOf, 'accounts') as { cursor: { data: { address?: string }[]; hasMore: boolean; next?: string } }
    assert.deepEqual(accounts.cursor.data.map((account) => account.address), ['users:1'])
    assert.equal(accounts.cursor.hasMore, true)
    const next = present((await v2.runQuery({ ledger: 'main', id: 'USERS', schemaVersion: 'v1', cursor: accounts.cursor.next, requestBody: {} })).oneOf, 'next') as { cursor: { data: { address?: string }[] } }
    assert.deepEqual(next.cursor.data.map((account) => account.address), ['users:2'])
    // The SDK sends variables as strings: an int variable takes the string that spells it.
    const from = present((await v2.runQuery({ ledger: 'main', id: 'FROM_ID', schemaVersion: 'v1', requestBody: { vars: { from: '1' } } })).oneOf, 'from') as { cursor: { data: { id?: bigint }[] } }
    assert.deepEqual(from.cursor.data.map((tx) => tx.id), [2n, 1n])
    await rejectsWithV2Error(v2.runQuery({ ledger: 'main', id: 'FROM_ID', schemaVersion: 'v1', requestBody: { vars: { from: 'one' } } }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'not an int' })
    await rejectsWithV2Error(v2.runQuery({ ledger: 'main', id: 'NOPE', schemaVersion: 'v1', requestBody: {} }), { status: 404, errorCode: 'NOT_FOUND' })
  })
})
