import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TallyError, parseJson } from '../../src/domain/index.ts'
import { addressPrefix, fieldsUsed, filterInputOf, parseFilter, parseRequestFilter } from '../../src/query/index.ts'

function prefixOf(body: string): string | undefined {
  return addressPrefix(parseFilter('accounts', parseJson(body)))
}

test('address prefix: conjunctions with a literal leading segment', () => {
  assert.equal(prefixOf('{}'), undefined)
  assert.equal(prefixOf('{"$match": {"address": "users:"}}'), 'users:')
  assert.equal(prefixOf('{"$match": {"address": "users::wallet"}}'), 'users:')
  assert.equal(prefixOf('{"$match": {"address": "users:..."}}'), 'users:')
  assert.equal(prefixOf('{"$match": {"address": "users:1"}}'), 'users:1')
  assert.equal(prefixOf('{"$match": {"address": ":wallet"}}'), undefined)
  assert.equal(prefixOf('{"$and": [{"$lt": {"balance[USD]": 0}}, {"$match": {"address": "users:"}}]}'), 'users:')
  assert.equal(prefixOf('{"$and": [{"$and": [{"$match": {"address": "users:"}}]}, {"$match": {"address": "users:1:"}}]}'), 'users:1:')
  // Not a conjunct: no prefix.
  assert.equal(prefixOf('{"$or": [{"$match": {"address": "users:"}}]}'), undefined)
  assert.equal(prefixOf('{"$not": {"$match": {"address": "users:"}}}'), undefined)
  assert.equal(prefixOf('{"$and": [{"$not": {"$match": {"address": "users:"}}}, {"$lt": {"balance": 0}}]}'), undefined)
  assert.equal(addressPrefix(parseFilter('volumes', parseJson('{"$match": {"account": "users:"}}'))), 'users:')
})

test('fields used, wherever they sit', () => {
  const used = (resource: 'accounts' | 'transactions', body: string): string[] =>
    [...fieldsUsed(parseFilter(resource, parseJson(body)))].sort()
  assert.deepEqual(used('accounts', '{}'), [])
  assert.deepEqual(used('accounts', '{"$match": {"address": "a"}}'), ['address'])
  assert.deepEqual(
    used('accounts', '{"$or": [{"$lt": {"balance[USD]": 0}}, {"$not": {"$exists": {"metadata": "k"}}}, {"$gt": {"updated_at": "2024-01-01T00:00:00Z"}}]}'),
    ['balance', 'metadata', 'updated_at'],
  )
  assert.deepEqual(
    used('transactions', '{"$and": [{"$match": {"source": "a"}}, {"$match": {"reverted": true}}, {"$gt": {"id": 1}}, {"$like": {"reference": "x%"}}, {"$match": {"metadata[a]": "b"}}]}'),
    ['id', 'metadata', 'reference', 'reverted', 'source'],
  )
})

test('transport: JSON body on GET/HEAD', () => {
  const body = parseJson('{"$match": {"address": "users:"}}')
  assert.equal(filterInputOf({ query: {}, body }), body)
  assert.equal(parseRequestFilter('accounts', { query: {}, body: undefined }).root, undefined)
  assert.equal(parseRequestFilter('accounts', { query: {}, body: {} }).root, undefined)
  assert.equal(parseRequestFilter('accounts', { query: { pageSize: '10' }, body }).root?.kind, 'address')
})

test('transport: the SDKs\' query parameter wins over the body, {} means none', () => {
  const text = '{"$lt": {"balance[USD/2]": 340282366920938463463374607431768211456}}'
  const filter = parseRequestFilter('accounts', { query: { query: text }, body: parseJson('{"$match": {"address": "x"}}') })
  assert.equal(filter.root?.kind, 'balance')
  assert.equal(filter.root?.kind === 'balance' ? filter.root.value : undefined, 340282366920938463463374607431768211456n)
  assert.equal(parseRequestFilter('accounts', { query: { query: '{}' }, body: undefined }).root, undefined)
  // An empty parameter falls back to the body, as in v2.
  assert.equal(parseRequestFilter('accounts', { query: { query: '' }, body: parseJson('{"$match": {"address": "x"}}') }).root?.kind, 'address')
  // Repeated: the first counts.
  assert.equal(parseRequestFilter('logs', { query: { query: ['{"$match": {"id": 1}}', 'junk'] }, body: undefined }).root?.kind, 'id')
})

test('transport: malformed input is a VALIDATION error', () => {
  const refuse = (run: () => unknown, path: string, reason: RegExp): void => {
    assert.throws(run, (error: unknown) => {
      assert.ok(error instanceof TallyError)
      assert.equal(error.code, 'VALIDATION')
      assert.equal(error.details?.path, path)
      assert.match(error.message, reason)
      return true
    })
  }
  refuse(() => parseRequestFilter('accounts', { query: { query: '{"$match": ' }, body: undefined }), 'query', /not JSON/)
  refuse(() => parseRequestFilter('accounts', { query: { query: '[1]' }, body: undefined }), 'filter', /expected a JSON object, got an array/)
  refuse(() => parseRequestFilter('accounts', { query: { query: 'x'.repeat(70_000) }, body: undefined }), 'query', /longer than/)
  refuse(() => parseRequestFilter('accounts', { query: {}, body: 'users:' }), 'filter', /expected a JSON object, got "users:"/)
  refuse(
    () => parseRequestFilter('accounts', { query: { query: '{"$match": {"id": 1}}' }, body: undefined }),
    'filter.$match["id"]',
    /unknown field "id" on accounts/,
  )
})
