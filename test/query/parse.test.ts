import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TallyError, parseJson } from '../../src/domain/index.ts'
import { filterDepthMax, filterInValuesMax, filterNodesMax, parseFilter } from '../../src/query/index.ts'
import type { Resource } from '../../src/query/index.ts'

function refuse(resource: Resource, body: string, path: string, reason: RegExp): TallyError {
  let caught: unknown
  try {
    parseFilter(resource, parseJson(body))
  } catch (error) {
    caught = error
  }
  assert.ok(caught instanceof TallyError, `${body} is refused on ${resource}`)
  assert.equal(caught.code, 'VALIDATION')
  assert.equal(caught.kind, 'validation')
  assert.equal(caught.details?.path, path, `path of ${body}`)
  assert.ok(caught.message.startsWith(`invalid filter at ${path}: `), caught.message)
  assert.match(caught.message, reason)
  return caught
}

function accept(resource: Resource, body: string): void {
  assert.doesNotThrow(() => parseFilter(resource, parseJson(body)), `${body} on ${resource}`)
}

test('no filter: undefined, null and {} select everything', () => {
  for (const input of [undefined, null, {}]) {
    assert.equal(parseFilter('accounts', input).root, undefined)
  }
})

test('every v2 field accepts its operators', () => {
  const valid: Readonly<Record<Resource, readonly string[]>> = {
    accounts: [
      '{"$match": {"address": "users:"}}',
      '{"$match": {"address": "users::wallet"}}',
      '{"$match": {"address": "users:..."}}',
      '{"$match": {"address": "world"}}',
      ...['$match', '$lt', '$gt', '$lte', '$gte'].flatMap((op) => [
        `{"${op}": {"balance": 0}}`,
        `{"${op}": {"balance[USD/2]": -100}}`,
        `{"${op}": {"balance[EUR]": "340282366920938463463374607431768211456"}}`,
        `{"${op}": {"first_usage": "2024-01-01T00:00:00Z"}}`,
        `{"${op}": {"insertion_date": "2024-01-01T00:00:00.123456+02:00"}}`,
        `{"${op}": {"updated_at": "2024-01-01T00:00:00.1Z"}}`,
      ]),
      '{"$match": {"metadata[role]": "admin"}}',
      '{"$like": {"metadata[role]": "ad%"}}',
      '{"$in": {"metadata[role]": ["admin", "user"]}}',
      '{"$exists": {"metadata": "role"}}',
    ],
    transactions: [
      ...['$match', '$lt', '$gt', '$lte', '$gte'].flatMap((op) => [
        `{"${op}": {"id": 3}}`,
        `{"${op}": {"timestamp": "2024-01-01T00:00:00Z"}}`,
        `{"${op}": {"inserted_at": "2024-01-01T00:00:00Z"}}`,
      ]),
      '{"$match": {"reference": "ref-1"}}',
      '{"$like": {"reference": "ref-%"}}',
      '{"$in": {"reference": ["a", "b"]}}',
      '{"$match": {"reverted": true}}',
      '{"$match": {"account": "users:"}}',
      '{"$match": {"source": "world"}}',
      '{"$match": {"destination": "users:..."}}',
      '{"$match": {"metadata[k]": "v"}}',
      '{"$exists": {"metadata": "k"}}',
    ],
    logs: [
      ...['$match', '$lt', '$gt', '$lte', '$gte'].flatMap((op) => [`{"${op}": {"id": 3}}`, `{"${op}": {"date": "2024-01-01T00:00:00Z"}}`]),
      '{"$match": {"type": "NEW_TRANSACTION"}}',
      '{"$in": {"type": ["NEW_TRANSACTION", "SET_METADATA"]}}',
      '{"$like": {"type": "%METADATA"}}',
    ],
    volumes: [
      '{"$match": {"address": "users:"}}',
      '{"$match": {"account": "users:"}}',
      '{"$lt": {"balance": 0}}',
      '{"$gte": {"balance[USD]": 10}}',
      '{"$lte": {"first_usage": "2024-01-01T00:00:00Z"}}',
      '{"$match": {"metadata[k]": "v"}}',
      '{"$exists": {"metadata": "k"}}',
    ],
  }
  for (const [resource, bodies] of Object.entries(valid) as [Resource, readonly string[]][]) {
    for (const body of bodies) accept(resource, body)
  }
})

test('combinators nest', () => {
  accept('transactions', '{"$and": [{"$or": [{"$match": {"source": "world"}}, {"$not": {"$match": {"reverted": true}}}]}, {"$gt": {"id": 1}}]}')
  accept('accounts', '{"$and": []}')
  accept('accounts', '{"$or": []}')
})

test('structural errors name the path', () => {
  refuse('accounts', '[]', 'filter', /expected a JSON object, got an array/)
  refuse('accounts', '"x"', 'filter', /expected a JSON object/)
  refuse('accounts', '{"$eq": {"address": "a"}}', 'filter', /unknown operator "\$eq"/)
  refuse('accounts', '{"address": "a"}', 'filter', /unknown operator "address"/)
  refuse('accounts', '{"$match": {"address": "a"}, "$lt": {"balance": 1}}', 'filter', /expected one operator, got 2/)
  refuse('accounts', '{"$and": {"$match": {"address": "a"}}}', 'filter.$and', /\$and expects an array of filters, got an object/)
  refuse('accounts', '{"$or": "x"}', 'filter.$or', /\$or expects an array/)
  refuse('accounts', '{"$and": [{"$match": {"address": "a"}}, 3]}', 'filter.$and[1]', /expected an object holding one operator, got 3/)
  refuse('accounts', '{"$and": [{}]}', 'filter.$and[0]', /got an empty object/)
  refuse('accounts', '{"$not": []}', 'filter.$not', /expected an object holding one operator, got an array/)
  refuse('accounts', '{"$not": {"$not": {"$foo": 1}}}', 'filter.$not.$not', /unknown operator "\$foo"/)
  refuse('accounts', '{"$match": "users:"}', 'filter.$match', /\$match expects \{"FIELD": VALUE\}, got "users:"/)
  refuse('accounts', '{"$match": {}}', 'filter.$match', /exactly one field, got none/)
  refuse('accounts', '{"$match": {"address": "a", "metadata[x]": "y"}}', 'filter.$match', /exactly one field, got 2/)
})

test('unknown fields are refused per resource', () => {
  refuse('accounts', '{"$match": {"reference": "x"}}', 'filter.$match["reference"]', /unknown field "reference" on accounts/)
  refuse('transactions', '{"$lt": {"balance": 0}}', 'filter.$lt["balance"]', /unknown field "balance" on transactions/)
  refuse('logs', '{"$match": {"address": "a"}}', 'filter.$match["address"]', /unknown field "address" on logs/)
  refuse('volumes', '{"$match": {"insertion_date": "2024-01-01T00:00:00Z"}}', 'filter.$match["insertion_date"]', /unknown field/)
  refuse('accounts', '{"$and": [{"$match": {"Address": "a"}}]}', 'filter.$and[0].$match["Address"]', /unknown field "Address"/)
  refuse('transactions', '{"$match": {"account": "a"}, "x": 1}', 'filter', /expected one operator/)
  refuse('logs', '{"$match": {"id[1]": 1}}', 'filter.$match["id[1]"]', /takes no \[index\]/)
})

test('operators that do not apply to a field are refused, naming operator and field', () => {
  const error = refuse('accounts', '{"$lt": {"address": "users:"}}', 'filter.$lt["address"]', /operator \$lt does not apply to address field "address" \(accepts \$match\)/)
  assert.equal(error.details?.operator, '$lt')
  assert.equal(error.details?.field, 'address')
  assert.equal(error.details?.value, '"users:"')
  refuse('accounts', '{"$like": {"address": "users:%"}}', 'filter.$like["address"]', /\$like does not apply/)
  refuse('accounts', '{"$in": {"address": ["a"]}}', 'filter.$in["address"]', /\$in does not apply/)
  refuse('accounts', '{"$like": {"balance[USD]": 1}}', 'filter.$like["balance[USD]"]', /accepts \$match, \$lt, \$gt, \$lte, \$gte/)
  refuse('accounts', '{"$exists": {"balance": 1}}', 'filter.$exists["balance"]', /\$exists does not apply/)
  refuse('accounts', '{"$in": {"first_usage": ["2024-01-01T00:00:00Z"]}}', 'filter.$in["first_usage"]', /\$in does not apply to date/)
  refuse('transactions', '{"$lt": {"reference": "a"}}', 'filter.$lt["reference"]', /\$lt does not apply to string field "reference" \(accepts \$match, \$like, \$in\)/)
  refuse('transactions', '{"$lt": {"reverted": true}}', 'filter.$lt["reverted"]', /accepts \$match/)
  refuse('transactions', '{"$like": {"id": "1%"}}', 'filter.$like["id"]', /\$like does not apply to integer/)
  refuse('transactions', '{"$gt": {"source": "a"}}', 'filter.$gt["source"]', /\$gt does not apply to address/)
  refuse('logs', '{"$gt": {"type": "A"}}', 'filter.$gt["type"]', /\$gt does not apply/)
  refuse('accounts', '{"$lt": {"metadata[k]": "v"}}', 'filter.$lt["metadata[k]"]', /\$lt does not apply to metadata/)
  refuse('accounts', '{"$match": {"metadata": "k"}}', 'filter.$match["metadata"]', /bare "metadata" accepts only \$exists/)
  refuse('accounts', '{"$exists": {"metadata[k]": true}}', 'filter.$exists["metadata[k]"]', /\{"\$exists": \{"metadata": "k"\}\}/)
})

test('bad values are refused, naming the value', () => {
  refuse('accounts', '{"$match": {"address": 3}}', 'filter.$match["address"]', /expected an address pattern string, got 3/)
  refuse('accounts', '{"$match": {"address": "users:a b"}}', 'filter.$match["address"]', /invalid address pattern "users:a b": segment "a b"/)
  refuse('transactions', '{"$match": {"destination": "a:...:b"}}', 'filter.$match["destination"]', /only allowed as the last segment/)
  refuse('accounts', '{"$lt": {"balance[usd]": 0}}', 'filter.$lt["balance[usd]"]', /invalid asset "usd"/)
  refuse('accounts', '{"$lt": {"balance[]": 0}}', 'filter.$lt["balance[]"]', /invalid asset ""/)
  refuse('accounts', '{"$lt": {"balance": 1.5}}', 'filter.$lt["balance"]', /expected an integer, got 1.5/)
  refuse('accounts', '{"$lt": {"balance": "ten"}}', 'filter.$lt["balance"]', /expected an integer, got "ten"/)
  refuse('accounts', '{"$lt": {"balance": true}}', 'filter.$lt["balance"]', /expected an integer, got true/)
  refuse('transactions', '{"$match": {"id": null}}', 'filter.$match["id"]', /expected an integer, got null/)
  refuse('accounts', '{"$gt": {"first_usage": "yesterday"}}', 'filter.$gt["first_usage"]', /expected an RFC 3339 date-time.*got "yesterday"/)
  refuse('accounts', '{"$gt": {"first_usage": "2024-02-30T00:00:00Z"}}', 'filter.$gt["first_usage"]', /is not a date: February 2024 has 29 days, not 30/)
  refuse('accounts', '{"$gt": {"first_usage": "2024-01-01"}}', 'filter.$gt["first_usage"]', /RFC 3339/)
  refuse('accounts', '{"$gt": {"first_usage": 1700000000}}', 'filter.$gt["first_usage"]', /got 1700000000/)
  refuse('transactions', '{"$match": {"reverted": "true"}}', 'filter.$match["reverted"]', /expected true or false, got "true"/)
  refuse('transactions', '{"$match": {"reference": 7}}', 'filter.$match["reference"]', /expected a string, got 7/)
  refuse('transactions', '{"$in": {"reference": "a"}}', 'filter.$in["reference"]', /\$in expects an array of strings, got "a"/)
  refuse('transactions', '{"$in": {"reference": ["a", 2]}}', 'filter.$in["reference"][1]', /expected a string, got 2/)
  refuse('transactions', '{"$like": {"reference": "a\\\\"}}', 'filter.$like["reference"]', /ends with the escape character/)
  refuse('accounts', '{"$match": {"metadata[k]": 1}}', 'filter.$match["metadata[k]"]', /expected a string, got 1/)
  refuse('accounts', '{"$match": {"metadata[]": "v"}}', 'filter.$match["metadata[]"]', /metadata key of 1\.\./)
  refuse('accounts', '{"$exists": {"metadata": true}}', 'filter.$exists["metadata"]', /metadata key of 1\.\..*got true/)
  refuse('accounts', '{"$exists": {"metadata": ""}}', 'filter.$exists["metadata"]', /metadata key/)
})

test('filters are bounded', () => {
  let deep = '{"$match": {"address": "a"}}'
  for (let i = 0; i < filterDepthMax; i++) deep = `{"$not": ${deep}}`
  refuse('accounts', deep, `filter${'.$not'.repeat(filterDepthMax)}`, /nested deeper than 32/)
  const wide = `{"$or": [${Array.from({ length: filterNodesMax }, () => '{"$match": {"address": "a"}}').join(',')}]}`
  refuse('accounts', wide, `filter.$or[${filterNodesMax - 1}]`, /more than 1000 nodes/)
  const many = `{"$in": {"reference": [${Array.from({ length: filterInValuesMax + 1 }, (_, i) => `"r${i}"`).join(',')}]}}`
  refuse('transactions', many, 'filter.$in["reference"]', /more than 1000 values/)
})
