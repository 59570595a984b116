import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseJson } from '../../src/domain/index.ts'
import { compileLikePattern, evaluate, matches, matchesLike, parseFilter, parseInstant } from '../../src/query/index.ts'
import type {
  AccountFilterRecord,
  LogFilterRecord,
  RecordOf,
  Resource,
  TransactionFilterRecord,
  Truth,
  VolumeFilterRecord,
} from '../../src/query/index.ts'

function truth<R extends Resource>(resource: R, body: string, record: RecordOf<R>): Truth {
  return evaluate(parseFilter(resource, parseJson(body)), record)
}

function check<R extends Resource>(resource: R, record: RecordOf<R>, cases: readonly (readonly [string, Truth])[]): void {
  for (const [body, expected] of cases) {
    assert.equal(truth(resource, body, record), expected, body)
    assert.equal(matches(parseFilter(resource, parseJson(body)), record), expected === true, body)
  }
}

const alice: AccountFilterRecord = {
  address: 'users:alice:wallet',
  metadata: { role: 'admin', tier: 'gold' },
  balances: new Map([
    ['USD/2', 500n],
    ['EUR', -20n],
  ]),
  firstUsage: '2024-01-10T10:00:00.000001Z',
  insertionDate: '2024-01-10T10:00:01Z',
  updatedAt: '2024-02-01T00:00:00+01:00',
}

const empty: AccountFilterRecord = {
  address: 'bank',
  metadata: {},
  balances: new Map(),
  firstUsage: '2024-01-01T00:00:00Z',
  insertionDate: '2024-01-01T00:00:00Z',
  updatedAt: '2024-01-01T00:00:00Z',
}

test('accounts: address', () => {
  check('accounts', alice, [
    ['{"$match": {"address": "users:alice:wallet"}}', true],
    ['{"$match": {"address": "users:alice"}}', false],
    ['{"$match": {"address": "users::wallet"}}', true],
    ['{"$match": {"address": "users::main"}}', false],
    ['{"$match": {"address": "users:"}}', false],
    ['{"$match": {"address": "users:..."}}', true],
    ['{"$match": {"address": "orders:..."}}', false],
  ])
})

test('accounts: balance[ASSET] compares that asset; a missing asset is unknown', () => {
  check('accounts', alice, [
    ['{"$match": {"balance[USD/2]": 500}}', true],
    ['{"$match": {"balance[USD/2]": 499}}', false],
    ['{"$lt": {"balance[EUR]": 0}}', true],
    ['{"$lt": {"balance[USD/2]": 0}}', false],
    ['{"$gt": {"balance[USD/2]": 499}}', true],
    ['{"$gt": {"balance[USD/2]": 500}}', false],
    ['{"$lte": {"balance[USD/2]": "500"}}', true],
    ['{"$lte": {"balance[EUR]": -21}}', false],
    ['{"$gte": {"balance[EUR]": -20}}', true],
    ['{"$gte": {"balance[EUR]": -19}}', false],
    ['{"$gte": {"balance[GBP]": 0}}', undefined],
    ['{"$not": {"$gte": {"balance[GBP]": 0}}}', undefined],
  ])
})

test('accounts: plain balance matches when any asset does; no volumes is unknown', () => {
  check('accounts', alice, [
    ['{"$lt": {"balance": 0}}', true], // EUR
    ['{"$gt": {"balance": 100}}', true], // USD/2
    ['{"$gt": {"balance": 500}}', false],
    ['{"$match": {"balance": -20}}', true],
    ['{"$match": {"balance": 0}}', false],
    ['{"$not": {"$match": {"balance": 0}}}', true],
  ])
  check('accounts', empty, [
    ['{"$match": {"balance": 0}}', undefined],
    ['{"$not": {"$match": {"balance": 0}}}', undefined],
  ])
})

test('accounts: metadata', () => {
  check('accounts', alice, [
    ['{"$match": {"metadata[role]": "admin"}}', true],
    ['{"$match": {"metadata[role]": "Admin"}}', false],
    ['{"$match": {"metadata[nope]": "admin"}}', false],
    ['{"$not": {"$match": {"metadata[nope]": "admin"}}}', true],
    ['{"$like": {"metadata[role]": "ad%"}}', true],
    ['{"$like": {"metadata[role]": "ad_in"}}', true],
    ['{"$like": {"metadata[role]": "AD%"}}', false],
    ['{"$in": {"metadata[tier]": ["silver", "gold"]}}', true],
    ['{"$in": {"metadata[tier]": ["silver"]}}', false],
    ['{"$in": {"metadata[tier]": []}}', false],
    ['{"$exists": {"metadata": "tier"}}', true],
    ['{"$exists": {"metadata": "nope"}}', false],
    ['{"$not": {"$exists": {"metadata": "nope"}}}', true],
  ])
})

test('accounts: dates compare as instants, across offsets and sub-millisecond digits', () => {
  check('accounts', alice, [
    ['{"$match": {"first_usage": "2024-01-10T10:00:00.000001Z"}}', true],
    ['{"$match": {"first_usage": "2024-01-10T11:00:00.000001+01:00"}}', true],
    ['{"$match": {"first_usage": "2024-01-10T10:00:00Z"}}', false],
    ['{"$gt": {"first_usage": "2024-01-10T10:00:00Z"}}', true],
    ['{"$gt": {"first_usage": "2024-01-10T10:00:00.000001Z"}}', false],
    ['{"$lt": {"first_usage": "2024-01-10T10:00:00.000002Z"}}', true],
    ['{"$lt": {"first_usage": "2024-01-10T10:00:00Z"}}', false],
    ['{"$gte": {"insertion_date": "2024-01-10T10:00:01Z"}}', true],
    ['{"$gte": {"insertion_date": "2024-01-10T10:00:01.5Z"}}', false],
    ['{"$lte": {"updated_at": "2024-01-31T23:00:00Z"}}', true],
    ['{"$lte": {"updated_at": "2024-01-31T22:59:59.999999999Z"}}', false],
    ['{"$match": {"updated_at": "2024-01-31t23:00:00z"}}', true],
  ])
})

const payment: TransactionFilterRecord = {
  id: 42n,
  reference: 'order-42',
  timestamp: '2024-03-01T12:00:00Z',
  insertedAt: '2024-03-01T12:00:00.5Z',
  reverted: false,
  postings: [
    { source: 'world', destination: 'users:alice:wallet' },
    { source: 'users:alice:wallet', destination: 'fees' },
  ],
  metadata: { channel: 'web' },
}

const anonymous: TransactionFilterRecord = { ...payment, id: 43n, reference: undefined, reverted: true, metadata: {} }

test('transactions: id, reference, reverted', () => {
  check('transactions', payment, [
    ['{"$match": {"id": 42}}', true],
    ['{"$match": {"id": 41}}', false],
    ['{"$lt": {"id": 43}}', true],
    ['{"$lt": {"id": 42}}', false],
    ['{"$gt": {"id": "41"}}', true],
    ['{"$gt": {"id": 42}}', false],
    ['{"$lte": {"id": 42}}', true],
    ['{"$gte": {"id": 43}}', false],
    ['{"$match": {"reference": "order-42"}}', true],
    ['{"$match": {"reference": "order-4"}}', false],
    ['{"$like": {"reference": "order-%"}}', true],
    ['{"$like": {"reference": "order-_"}}', false],
    ['{"$in": {"reference": ["x", "order-42"]}}', true],
    ['{"$in": {"reference": ["x"]}}', false],
    ['{"$match": {"reverted": false}}', true],
    ['{"$match": {"reverted": true}}', false],
  ])
  // No reference is SQL NULL: unknown, and still unknown under $not.
  check('transactions', anonymous, [
    ['{"$match": {"reference": "order-42"}}', undefined],
    ['{"$not": {"$match": {"reference": "order-42"}}}', undefined],
    ['{"$like": {"reference": "%"}}', undefined],
    ['{"$in": {"reference": []}}', undefined],
    ['{"$match": {"reverted": true}}', true],
  ])
})

test('transactions: account, source, destination look at every posting', () => {
  check('transactions', payment, [
    ['{"$match": {"account": "world"}}', true],
    ['{"$match": {"account": "fees"}}', true],
    ['{"$match": {"account": "bank"}}', false],
    ['{"$match": {"account": "users::wallet"}}', true],
    ['{"$match": {"source": "world"}}', true],
    ['{"$match": {"source": "fees"}}', false],
    ['{"$match": {"source": "users:..."}}', true],
    ['{"$match": {"destination": "fees"}}', true],
    ['{"$match": {"destination": "world"}}', false],
    ['{"$match": {"destination": "users:"}}', false],
    ['{"$match": {"destination": "users::"}}', true],
  ])
})

test('transactions: dates and metadata', () => {
  check('transactions', payment, [
    ['{"$match": {"timestamp": "2024-03-01T12:00:00Z"}}', true],
    ['{"$lt": {"timestamp": "2024-03-01T12:00:00Z"}}', false],
    ['{"$gte": {"inserted_at": "2024-03-01T12:00:00.5Z"}}', true],
    ['{"$gt": {"inserted_at": "2024-03-01T12:00:00.5Z"}}', false],
    ['{"$lte": {"inserted_at": "2024-03-01T13:00:00.5+01:00"}}', true],
    ['{"$match": {"metadata[channel]": "web"}}', true],
    ['{"$match": {"metadata[channel]": "api"}}', false],
    ['{"$exists": {"metadata": "channel"}}', true],
    ['{"$exists": {"metadata": "other"}}', false],
  ])
})

test('logs: id, date, type', () => {
  const log: LogFilterRecord = { id: 7n, type: 'SET_METADATA', date: '2024-05-05T05:05:05.050505Z' }
  check('logs', log, [
    ['{"$match": {"id": 7}}', true],
    ['{"$match": {"id": 8}}', false],
    ['{"$lt": {"id": 8}}', true],
    ['{"$gt": {"id": 7}}', false],
    ['{"$lte": {"date": "2024-05-05T05:05:05.050505Z"}}', true],
    ['{"$lt": {"date": "2024-05-05T05:05:05.050505Z"}}', false],
    ['{"$gte": {"date": "2024-05-05T00:00:00-05:00"}}', true],
    ['{"$gt": {"date": "2024-05-05T01:00:00-05:00"}}', false],
    ['{"$match": {"type": "SET_METADATA"}}', true],
    ['{"$match": {"type": "NEW_TRANSACTION"}}', false],
    ['{"$in": {"type": ["NEW_TRANSACTION", "SET_METADATA"]}}', true],
    ['{"$like": {"type": "%\\\\_METADATA"}}', true],
    ['{"$like": {"type": "DELETE%"}}', false],
  ])
})

test('volumes: one row per (account, asset)', () => {
  const row: VolumeFilterRecord = {
    address: 'users:bob',
    asset: 'USD/2',
    balance: -3n,
    metadata: { kyc: 'done' },
    firstUsage: '2024-01-01T00:00:00Z',
  }
  check('volumes', row, [
    ['{"$match": {"address": "users:"}}', true],
    ['{"$match": {"account": "users:bob"}}', true],
    ['{"$match": {"address": "users:alice"}}', false],
    ['{"$lt": {"balance": 0}}', true],
    ['{"$gte": {"balance": 0}}', false],
    ['{"$lt": {"balance[USD/2]": 0}}', true],
    ['{"$lt": {"balance[EUR]": 0}}', false],
    ['{"$not": {"$lt": {"balance[EUR]": 0}}}', true],
    ['{"$match": {"metadata[kyc]": "done"}}', true],
    ['{"$exists": {"metadata": "kyc"}}', true],
    ['{"$exists": {"metadata": "x"}}', false],
    ['{"$lte": {"first_usage": "2024-01-01T00:00:00Z"}}', true],
    ['{"$gt": {"first_usage": "2024-01-01T00:00:00Z"}}', false],
  ])
})

test('combinators use SQL three-valued logic; empty $and and $or are true', () => {
  const unknown = '{"$match": {"balance[GBP]": 0}}'
  const yes = '{"$match": {"address": "users:alice:wallet"}}'
  const no = '{"$match": {"address": "bank"}}'
  check('accounts', alice, [
    [`{"$and": [${yes}, ${yes}]}`, true],
    [`{"$and": [${yes}, ${no}]}`, false],
    [`{"$and": [${unknown}, ${no}]}`, false],
    [`{"$and": [${unknown}, ${yes}]}`, undefined],
    [`{"$or": [${no}, ${yes}]}`, true],
    [`{"$or": [${no}, ${no}]}`, false],
    [`{"$or": [${unknown}, ${yes}]}`, true],
    [`{"$or": [${unknown}, ${no}]}`, undefined],
    [`{"$not": ${yes}}`, false],
    [`{"$not": ${no}}`, true],
    [`{"$not": {"$not": ${yes}}}`, true],
    ['{"$and": []}', true],
    ['{"$or": []}', true],
    ['{}', true],
  ])
})

test('the README example: users: with a negative USD/2 balance', () => {
  const filter = parseFilter('accounts', parseJson('{"$and":[{"$match":{"address":"users:"}},{"$lt":{"balance[USD/2]":0}}]}'))
  const account = (address: string, usd: bigint | undefined): AccountFilterRecord => ({
    ...empty,
    address,
    balances: new Map(usd === undefined ? [] : [['USD/2', usd]]),
  })
  assert.equal(matches(filter, account('users:1', -1n)), true)
  assert.equal(matches(filter, account('users:1', 0n)), false)
  assert.equal(matches(filter, account('users:1', undefined)), false)
  assert.equal(matches(filter, account('users:1:x', -1n)), false)
  assert.equal(matches(filter, account('world', -1n)), false)
})

test('LIKE patterns', () => {
  const cases: readonly (readonly [string, string, boolean])[] = [
    ['abc', 'abc', true],
    ['abc', 'abcd', false],
    ['a%', 'a', true],
    ['a%', 'abc', true],
    ['%c', 'abc', true],
    ['%b%', 'abc', true],
    ['%x%', 'abc', false],
    ['a_c', 'abc', true],
    ['a_c', 'ac', false],
    ['___', 'abc', true],
    ['___', 'ab', false],
    ['%%%', '', true],
    ['', '', true],
    ['', 'a', false],
    ['a\\%', 'a%', true],
    ['a\\%', 'ab', false],
    ['a\\_', 'a_', true],
    ['a\\\\b', 'a\\b', true],
    ['a.c', 'abc', false],
    ['(a)+', '(a)+', true],
    ['é_', 'éé', true],
    ['😀_', '😀😀', true],
    ['%a%a%a%a%a%a%a%a%b', 'a'.repeat(5000), false],
  ]
  for (const [source, value, expected] of cases) {
    const pattern = compileLikePattern(source)
    assert.ok(!('error' in pattern), source)
    assert.equal(matchesLike(pattern, value), expected, `${source} LIKE ${value.slice(0, 20)}`)
  }
})

test('RFC 3339 instants', () => {
  const nanos = (text: string): bigint | undefined => parseInstant(text)?.nanos
  assert.equal(nanos('1970-01-01T00:00:00Z'), 0n)
  assert.equal(nanos('1970-01-01T00:00:00.000000001Z'), 1n)
  assert.equal(nanos('1970-01-01T01:00:00+01:00'), 0n)
  assert.equal(nanos('1969-12-31T23:59:59Z'), -1_000_000_000n)
  assert.equal(nanos('2000-02-29T00:00:00Z'), BigInt(Date.parse('2000-02-29T00:00:00Z')) * 1_000_000n)
  assert.equal(nanos('2024-06-15T08:30:00.123-07:30'), BigInt(Date.parse('2024-06-15T08:30:00.123-07:30')) * 1_000_000n)
  for (const bad of ['2023-02-29T00:00:00Z', '2024-13-01T00:00:00Z', '2024-01-01T24:00:00Z', '2024-01-01T00:60:00Z', '2024-01-01T00:00:00', '2024-01-01T00:00:00.Z', '2024-01-01T00:00:00.1234567890Z', '2024-01-01T00:00:00+2400', ' 2024-01-01T00:00:00Z']) {
    assert.equal(parseInstant(bad), undefined, bad)
  }
})
