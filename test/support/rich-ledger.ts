import assert from 'node:assert/strict'
import type { Json } from '../../src/domain/index.ts'
import { parseJson, stringifyJson } from '../../src/domain/index.ts'
import type { TestApi } from './api.ts'
import { createLedger } from './api.ts'

/**
 * Writes ledger `main` with every kind of log through the v2 API: odd metadata
 * keys (`__proto__`, integer-like, quotes, U+2028, an emoji), a 10^30 amount,
 * a reference, a backdated transaction with account metadata (one key
 * `__proto__`, parsed, since a literal's `__proto__` sets the prototype), metadata set and
 * deleted on a transaction and an account, reverts (one inside a bulk), a
 * schema and a template, keyed writes, then `atomicBulks` atomic bulks of seven
 * transfers of one date each. Shared by the export and import tests, which
 * need the same ledger to print and to read back.
 */
export async function writeRichLedger(api: TestApi, atomicBulks = 0): Promise<void> {
  await createLedger(api, 'main')
  const odd = parseJson('{"é \\"q\\"\\\\": "\\u2028\\u0001", "10": "ten", "9": "nine", "__proto__": "p", "z": "😀"}')
  const schema = {
    chart: { world: {}, users: { $id: {} } },
    transactions: { DEPOSIT: { description: 'money in', script: 'vars {\n  account $user\n  monetary $amount\n}\nsend $amount (\n  source = @world\n  destination = $user\n)\n' } },
  }
  const requests: ['POST' | 'DELETE', string, unknown][] = [
    ['POST', '/v2/main/transactions', { postings: [{ source: 'world', destination: 'users:1', amount: 10n ** 30n, asset: 'USD/2' }], metadata: odd, reference: 'ref "1"' }],
    ['POST', '/v2/main/transactions', { postings: [{ source: 'world', destination: 'users:2', amount: 3, asset: 'EUR' }], accountMetadata: { 'users:2': { tier: 'gold', '7': 'x' }, 'users:1': parseJson('{"__proto__": "q"}') }, timestamp: '2020-01-01T00:00:00.5Z' }],
    ['POST', '/v2/main/transactions/0/metadata', { a: 'b' }],
    ['DELETE', '/v2/main/transactions/0/metadata/a', undefined],
    ['POST', '/v2/main/accounts/users:1/metadata', { k: 'v' }],
    ['DELETE', '/v2/main/accounts/users:1/metadata/k', undefined],
    ['POST', '/v2/main/transactions/1/revert', { metadata: { why: 'test' } }],
    ['POST', '/v2/main/schemas/v1', schema],
    ['POST', '/v2/main/transactions?schemaVersion=v1', { script: { template: 'DEPOSIT', vars: { user: 'users:42', amount: 'USD 100' } } }],
    ['POST', '/v2/main/_bulk?schemaVersion=v1', [{ action: 'CREATE_TRANSACTION', ik: 'bulk-1', data: { postings: [{ source: 'world', destination: 'users:3', amount: 1, asset: 'USD' }] } }, { action: 'REVERT_TRANSACTION', data: { id: 0, atEffectiveDate: true } }]],
  ]
  for (let bulk = 0; bulk < atomicBulks; bulk++) {
    const elements = Array.from({ length: 7 }, (_, i) => ({
      action: 'CREATE_TRANSACTION',
      ...(i % 3 === 0 ? { ik: `b${bulk}-${i}` } : {}),
      data: { postings: [{ source: 'world', destination: `users:${bulk}${i}`, amount: 1 + i, asset: 'USD/2' }], metadata: i % 2 === 0 ? { n: String(i) } : {} },
    }))
    requests.push(['POST', '/v2/main/_bulk?atomic=true&schemaVersion=v1', elements])
  }
  for (const [method, url, body] of requests) {
    const reply = await api.request(method, url, typeof body === 'object' && body !== null ? stringifyJson(body as Json) : undefined, { 'idempotency-key': url.includes('metadata') ? `ik-${url}` : '' })
    assert.ok(reply.status < 300, `${method} ${url}: ${reply.status} ${reply.text}`)
  }
}
