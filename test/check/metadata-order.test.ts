import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/app.ts'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'
import type { Order } from '../../src/orders/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { assertCheckClean } from '../support/ledger.ts'

/**
 * Issue #9 point 5: metadata keys sent out of order must not make a healthy
 * store look corrupt. The FSM stores and logs metadata in one canonical form
 * (`canonicalMetadata`), the form the checker's replay rebuilds from the
 * audit chain; each route that carries client metadata is tried alone.
 */
const UNSORTED = '{"b":"1","a":"2","10":"x","9":"y"}'
const ROUTES: readonly { name: string; method: 'POST' | 'PUT'; url: string; body: string }[] = [
  { name: 'account metadata', method: 'POST', url: '/v2/main/accounts/users:1/metadata', body: UNSORTED },
  { name: 'transaction metadata', method: 'POST', url: '/v2/main/transactions/0/metadata', body: UNSORTED },
  {
    name: 'metadata of a new transaction',
    method: 'POST',
    url: '/v2/main/transactions',
    body: `{"postings":[{"source":"world","destination":"users:2","amount":1,"asset":"USD"}],"metadata":${UNSORTED}}`,
  },
  {
    name: 'accountMetadata of a transaction',
    method: 'POST',
    url: '/v2/main/transactions',
    body: `{"postings":[{"source":"world","destination":"users:2","amount":1,"asset":"USD"}],"accountMetadata":{"users:3":${UNSORTED},"users:2":${UNSORTED}}}`,
  },
  {
    name: 'bulk ADD_METADATA',
    method: 'POST',
    url: '/v2/main/_bulk',
    body: `[{"action":"ADD_METADATA","data":{"targetType":"ACCOUNT","targetId":"users:4","metadata":${UNSORTED}}},{"action":"ADD_METADATA","data":{"targetType":"TRANSACTION","targetId":0,"metadata":${UNSORTED}}}]`,
  },
  { name: 'ledger metadata', method: 'PUT', url: '/v2/main/metadata', body: UNSORTED },
]

for (const route of ROUTES) {
  test(`check: a store written through ${route.name} with unsorted keys checks clean`, async () => {
    const temp = tempDirectory('tally-metadata-order-')
    try {
      const node = await LedgerNode.open({ dataDirectory: temp.directory, clusterId: 'order', sync: false })
      const app = await buildApi(node)
      const send = async (method: 'POST' | 'PUT', url: string, payload: string) => {
        const reply = await app.inject({ method, url, payload, headers: { 'content-type': 'application/json' } })
        assert.ok(reply.statusCode < 300, `${url}: ${reply.statusCode} ${reply.body}`)
      }
      await send('POST', '/v2/main', `{"metadata":${UNSORTED}}`)
      await send('POST', '/v2/main/transactions', '{"postings":[{"source":"world","destination":"users:1","amount":5,"asset":"USD"}]}')
      await send(route.method, route.url, route.body)
      const account = await app.inject({ method: 'GET', url: '/v2/main/accounts/users:1' })
      assert.equal(account.statusCode, 200)
      await app.close()
      await node.close()
      await assertCheckClean(temp.directory)
    } finally {
      temp.remove()
    }
  })
}

test('check: orders built outside the HTTP parser (plain objects, any key order) are stored and logged canonically', async () => {
  const temp = tempDirectory('tally-metadata-order-')
  try {
    const node = await LedgerNode.open({ dataDirectory: temp.directory, clusterId: 'order', sync: false })
    const ledger = 'main' as LedgerName
    const unsorted = { b: '1', a: '2', ['__proto__']: 'p' }
    const submit = (order: Order) => node.admission.submit([{ order }], { atomic: true, continueOnFailure: false })
    await submit({ type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: unsorted, features: {} })
    await submit({
      type: 'CREATE_TRANSACTION',
      ledger,
      postings: [{ source: 'world' as AccountAddress, destination: 'users:1' as AccountAddress, amount: 3n, asset: 'USD' as Asset }],
      metadata: unsorted,
      accountMetadata: { 'users:2': unsorted, 'users:1': unsorted },
      force: false,
    })
    await submit({ type: 'SAVE_ACCOUNT_METADATA', ledger, address: 'users:3' as AccountAddress, metadata: unsorted })
    await submit({ type: 'SAVE_TRANSACTION_METADATA', ledger, id: 0n, metadata: unsorted })
    await node.close()
    await assertCheckClean(temp.directory)
  } finally {
    temp.remove()
  }
})
