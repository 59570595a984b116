/**
 * Property tests: the module against a second, deliberately naive reading of
 * the v2 filter language written here from its description — raw JSON walked
 * directly, truth as 0 / ½ / 1 (SQL's unknown is ½: AND is min, OR is max,
 * NOT is 1 − x), addresses and LIKE through regular expressions, dates
 * through `Date.parse`.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { TallyError } from '../../src/domain/index.ts'
import { evaluate, parseFilter } from '../../src/query/index.ts'
import type {
  AccountFilterRecord,
  LogFilterRecord,
  RecordOf,
  Resource,
  TransactionFilterRecord,
  Truth,
  VolumeFilterRecord,
} from '../../src/query/index.ts'

type Raw = { [key: string]: unknown }
type AnyRecord = AccountFilterRecord | TransactionFilterRecord | LogFilterRecord | VolumeFilterRecord

// ---------------------------------------------------------------------------
// The naive evaluator

function naive(resource: Resource, filter: Raw, record: AnyRecord): number {
  const entries = Object.entries(filter)
  if (entries.length === 0) return 1
  const [operator, operand] = entries[0] as [string, unknown]
  if (operator === '$and') return Math.min(1, ...(operand as Raw[]).map((item) => naive(resource, item, record)))
  if (operator === '$or') {
    const items = operand as Raw[]
    return items.length === 0 ? 1 : Math.max(...items.map((item) => naive(resource, item, record)))
  }
  if (operator === '$not') return 1 - naive(resource, operand as Raw, record)
  const [field, value] = Object.entries(operand as Raw)[0] as [string, unknown]
  return naiveLeaf(resource, operator, field, value, record)
}

const bit = (condition: boolean): number => (condition ? 1 : 0)

function naiveLeaf(resource: Resource, operator: string, field: string, value: unknown, record: AnyRecord): number {
  const match = /^([a-z_]+)(?:\[(.*)\])?$/.exec(field)
  assert.ok(match)
  const name = match[1] as string
  const index = match[2]
  const get = (key: string): unknown => (record as unknown as Raw)[key]
  if (name === 'address' || (name === 'account' && resource === 'volumes')) {
    return bit(addressRegex(value as string).test(get('address') as string))
  }
  if (name === 'account' || name === 'source' || name === 'destination') {
    const postings = (record as TransactionFilterRecord).postings
    const addresses = postings.flatMap((posting) =>
      name === 'source' ? [posting.source] : name === 'destination' ? [posting.destination] : [posting.source, posting.destination],
    )
    return bit(addresses.some((address) => addressRegex(value as string).test(address)))
  }
  if (name === 'balance') {
    const target = BigInt(value as bigint | string)
    if (resource === 'volumes') {
      const row = record as VolumeFilterRecord
      return bit((index === undefined || row.asset === index) && order(operator, row.balance, target))
    }
    const balances = (record as AccountFilterRecord).balances
    const candidates = index === undefined ? [...balances.values()] : balances.has(index) ? [balances.get(index) as bigint] : []
    if (candidates.length === 0) return 0.5
    return bit(candidates.some((balance) => order(operator, balance, target)))
  }
  if (name === 'metadata') {
    const metadata = get('metadata') as Record<string, string>
    if (operator === '$exists') return bit(Object.keys(metadata).includes(value as string))
    if (!Object.keys(metadata).includes(index as string)) return 0
    return bit(text(operator, metadata[index as string] as string, value))
  }
  if (name === 'reference') {
    const reference = (record as TransactionFilterRecord).reference
    return reference === undefined ? 0.5 : bit(text(operator, reference, value))
  }
  if (name === 'type') return bit(text(operator, (record as LogFilterRecord).type, value))
  if (name === 'reverted') return bit((record as TransactionFilterRecord).reverted === value)
  if (name === 'id') return bit(order(operator, get('id') as bigint, BigInt(value as bigint | string)))
  const property = DATE_PROPERTIES[name]
  assert.ok(property !== undefined, `naive: unknown field ${name}`)
  return bit(order(operator, Date.parse(get(property) as string), Date.parse(value as string)))
}

const DATE_PROPERTIES: Readonly<Record<string, string>> = {
  first_usage: 'firstUsage',
  insertion_date: 'insertionDate',
  updated_at: 'updatedAt',
  timestamp: 'timestamp',
  inserted_at: 'insertedAt',
  date: 'date',
}

function order<T extends number | bigint>(operator: string, left: T, right: T): boolean {
  if (operator === '$match') return left === right
  if (operator === '$lt') return left < right
  if (operator === '$gt') return left > right
  if (operator === '$lte') return left <= right
  if (operator === '$gte') return left >= right
  throw new Error(`naive: ${operator} is not a comparison`)
}

function text(operator: string, actual: string, value: unknown): boolean {
  if (operator === '$match') return actual === value
  if (operator === '$in') return (value as string[]).includes(actual)
  if (operator === '$like') return likeRegex(value as string).test(actual)
  throw new Error(`naive: ${operator} is not a string test`)
}

const escape = (source: string): string => source.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

function addressRegex(pattern: string): RegExp {
  const segments = pattern.split(':')
  const openEnded = segments[segments.length - 1] === '...'
  if (openEnded) segments.pop()
  const body = segments.map((segment) => (segment === '' ? '[^:]+' : escape(segment))).join(':')
  if (!openEnded) return new RegExp(`^${body}$`)
  return new RegExp(segments.length === 0 ? '^[^:]+(:[^:]+)*$' : `^${body}(:[^:]+)+$`)
}

function likeRegex(pattern: string): RegExp {
  let source = ''
  for (let i = 0; i < pattern.length; i++) {
    const character = pattern[i] as string
    if (character === '\\') source += escape(pattern[++i] as string)
    else if (character === '%') source += '.*'
    else if (character === '_') source += '.'
    else source += escape(character)
  }
  return new RegExp(`^${source}$`, 's')
}

const fromNaive = (value: number): Truth => (value === 0.5 ? undefined : value === 1)

// ---------------------------------------------------------------------------
// Generators: small pools so that filters and records meet often.

const SEGMENTS = ['users', 'orders', 'a', 'b', '1', 'wallet'] as const
const ASSETS = ['USD', 'EUR', 'USD/2'] as const
const KEYS = ['role', 'tier', 'k'] as const
const VALUES = ['admin', 'ab', 'a_b', 'x%'] as const
const REFERENCES = ['r1', 'r2', 'ref-1'] as const
const LOG_TYPES = ['NEW_TRANSACTION', 'SET_METADATA', 'REVERTED_TRANSACTION', 'DELETE_METADATA'] as const
const BASE_MS = Date.UTC(2024, 0, 1)
const INSTANTS_MS = [BASE_MS, BASE_MS + 1, BASE_MS + 999, BASE_MS + 1000, BASE_MS + 3_600_000, BASE_MS + 86_400_000]
const OFFSETS_MINUTES = [0, 60, -330, 120]

const address = fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 3 }).map((parts) => parts.join(':'))
const addressPattern = fc
  .tuple(fc.array(fc.constantFrom('', ...SEGMENTS), { minLength: 1, maxLength: 3 }), fc.boolean())
  .map(([parts, openEnded]) => (openEnded ? [...parts, '...'] : parts).join(':'))
const asset = fc.constantFrom(...ASSETS)
const amount = fc.bigInt(-3n, 3n)
const amountValue = fc.oneof(amount, amount.map((value) => value.toString()))
const id = fc.bigInt(0n, 5n)
const idValue = fc.oneof(id, id.map((value) => value.toString()))
const comparison = fc.constantFrom('$match', '$lt', '$gt', '$lte', '$gte')

/** An RFC 3339 rendering of one of a few instants, at a random offset. */
const dateText = fc
  .tuple(fc.constantFrom(...INSTANTS_MS), fc.constantFrom(...OFFSETS_MINUTES), fc.boolean(), fc.boolean())
  .map(([ms, offset, zulu, dropMillis]) => {
    const local = new Date(ms + offset * 60_000).toISOString().slice(0, -1)
    const shown = dropMillis && local.endsWith('.000') ? local.slice(0, -4) : local
    if (offset === 0 && zulu) return `${shown}Z`
    const sign = offset < 0 ? '-' : '+'
    const magnitude = Math.abs(offset)
    return `${shown}${sign}${String(Math.floor(magnitude / 60)).padStart(2, '0')}:${String(magnitude % 60).padStart(2, '0')}`
  })

const likePattern = fc
  .array(fc.constantFrom('a', 'b', 'd', 'm', 'i', 'n', 'r', '1', '-', '_', '%', '\\%', '\\_', 'E', 'T'), { maxLength: 5 })
  .map((parts) => parts.join(''))
const stringValue = (pool: readonly string[]): fc.Arbitrary<string> => fc.constantFrom(...pool)

function stringLeaf(field: string, pool: readonly string[]): fc.Arbitrary<Raw> {
  return fc.oneof(
    stringValue(pool).map((value) => ({ $match: { [field]: value } })),
    likePattern.map((pattern) => ({ $like: { [field]: pattern } })),
    fc.array(stringValue(pool), { maxLength: 3 }).map((values) => ({ $in: { [field]: values } })),
  )
}

const metadataLeaf: fc.Arbitrary<Raw> = fc.oneof(
  fc.constantFrom(...KEYS).chain((key) => stringLeaf(`metadata[${key}]`, VALUES)),
  fc.constantFrom(...KEYS).map((key) => ({ $exists: { metadata: key } })),
)

const dateLeaf = (fields: readonly string[]): fc.Arbitrary<Raw> =>
  fc.tuple(comparison, fc.constantFrom(...fields), dateText).map(([operator, field, value]) => ({ [operator]: { [field]: value } }))

const balanceLeaf: fc.Arbitrary<Raw> = fc
  .tuple(comparison, fc.option(asset, { nil: undefined }), amountValue)
  .map(([operator, which, value]) => ({ [operator]: { [which === undefined ? 'balance' : `balance[${which}]`]: value } }))

const LEAVES: Readonly<Record<Resource, fc.Arbitrary<Raw>>> = {
  accounts: fc.oneof(
    addressPattern.map((pattern) => ({ $match: { address: pattern } })),
    balanceLeaf,
    metadataLeaf,
    dateLeaf(['first_usage', 'insertion_date', 'updated_at']),
  ),
  transactions: fc.oneof(
    fc.tuple(comparison, idValue).map(([operator, value]) => ({ [operator]: { id: value } })),
    stringLeaf('reference', REFERENCES),
    dateLeaf(['timestamp', 'inserted_at']),
    fc.boolean().map((value) => ({ $match: { reverted: value } })),
    fc.tuple(fc.constantFrom('account', 'source', 'destination'), addressPattern).map(([field, pattern]) => ({ $match: { [field]: pattern } })),
    metadataLeaf,
  ),
  logs: fc.oneof(
    fc.tuple(comparison, idValue).map(([operator, value]) => ({ [operator]: { id: value } })),
    dateLeaf(['date']),
    stringLeaf('type', LOG_TYPES),
  ),
  volumes: fc.oneof(
    fc.tuple(fc.constantFrom('address', 'account'), addressPattern).map(([field, pattern]) => ({ $match: { [field]: pattern } })),
    balanceLeaf,
    metadataLeaf,
    dateLeaf(['first_usage']),
  ),
}

function filterOf(leaf: fc.Arbitrary<Raw>): fc.Arbitrary<Raw> {
  const { node } = fc.letrec<{ node: Raw }>((tie) => ({
    node: fc.oneof(
      { maxDepth: 4, depthIdentifier: 'filter' },
      leaf,
      fc.array(tie('node'), { maxLength: 3 }).map((items) => ({ $and: items })),
      fc.array(tie('node'), { maxLength: 3 }).map((items) => ({ $or: items })),
      tie('node').map((item) => ({ $not: item })),
    ),
  }))
  return node
}

const metadata = fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), { maxKeys: 3 })

const RECORDS: { readonly [R in Resource]: fc.Arbitrary<RecordOf<R>> } = {
  accounts: fc.record({
    address,
    metadata,
    balances: fc.array(fc.tuple(asset, amount), { maxLength: 3 }).map((entries) => new Map<string, bigint>(entries)),
    firstUsage: dateText,
    insertionDate: dateText,
    updatedAt: dateText,
  }),
  transactions: fc.record({
    id,
    reference: fc.option(fc.constantFrom(...REFERENCES), { nil: undefined }),
    timestamp: dateText,
    insertedAt: dateText,
    reverted: fc.boolean(),
    postings: fc.array(fc.record({ source: address, destination: address }), { minLength: 1, maxLength: 3 }),
    metadata,
  }),
  logs: fc.record({ id, type: fc.constantFrom(...LOG_TYPES), date: dateText }),
  volumes: fc.record({ address, asset, balance: amount, metadata, firstUsage: dateText }),
}

function agreement<R extends Resource>(resource: R): void {
  fc.assert(
    fc.property(filterOf(LEAVES[resource]), fc.array(RECORDS[resource], { maxLength: 8 }), (raw, records) => {
      const filter = parseFilter(resource, raw)
      for (const record of records) {
        const expected = fromNaive(naive(resource, raw, record))
        assert.equal(evaluate(filter, record), expected, JSON.stringify(raw, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value)))
      }
    }),
    { numRuns: 400 },
  )
}

for (const resource of ['accounts', 'transactions', 'logs', 'volumes'] as const) {
  test(`random valid ${resource} filters agree with the naive evaluator`, () => agreement(resource))
}

// ---------------------------------------------------------------------------
// Invalid filters: one bad part planted at a random place, and the error
// must name exactly that place.

const CMP = ['$match', '$lt', '$gt', '$lte', '$gte']
const STR = ['$match', '$like', '$in']
/** What each field accepts, stated independently of src/query/fields.ts. */
const ALLOWED: Readonly<Record<Resource, Readonly<Record<string, readonly string[]>>>> = {
  accounts: { address: ['$match'], balance: CMP, 'balance[USD]': CMP, 'metadata[k]': STR, metadata: ['$exists'], first_usage: CMP, insertion_date: CMP, updated_at: CMP },
  transactions: { id: CMP, reference: STR, timestamp: CMP, inserted_at: CMP, reverted: ['$match'], account: ['$match'], source: ['$match'], destination: ['$match'], 'metadata[k]': STR, metadata: ['$exists'] },
  logs: { date: CMP, id: CMP, type: STR },
  volumes: { address: ['$match'], account: ['$match'], balance: CMP, 'balance[USD]': CMP, 'metadata[k]': STR, metadata: ['$exists'], first_usage: CMP },
}
const ALL_OPERATORS = ['$match', '$in', '$exists', '$like', '$lt', '$gt', '$lte', '$gte']

/** A bad leaf, and the path of the error relative to the leaf's own path. */
interface Planted {
  readonly leaf: unknown
  readonly suffix: string
}

function badLeaf(resource: Resource): fc.Arbitrary<Planted> {
  const fields = Object.keys(ALLOWED[resource])
  const misuse = fc
    .tuple(fc.constantFrom(...fields), fc.constantFrom(...ALL_OPERATORS))
    .filter(([field, operator]) => !(ALLOWED[resource][field] as readonly string[]).includes(operator))
    .map(([field, operator]): Planted => ({ leaf: { [operator]: { [field]: 'x' } }, suffix: `.${operator}[${JSON.stringify(field)}]` }))
  const unknownField = fc
    .tuple(fc.constantFrom(...ALL_OPERATORS), fc.constantFrom('nope', 'Address', 'balances', 'metadata.k', 'reference', 'type', 'asset'))
    .filter(([, field]) => !(field in ALLOWED[resource]))
    .map(([operator, field]): Planted => ({ leaf: { [operator]: { [field]: 'x' } }, suffix: `.${operator}[${JSON.stringify(field)}]` }))
  const unknownOperator = fc
    .constantFrom('$eq', '$ne', '$nin', 'match', '$AND', '$regex')
    .map((operator): Planted => ({ leaf: { [operator]: { [fields[0] as string]: 'x' } }, suffix: '' }))
  const twoOperators = fc.constant<Planted>({ leaf: { $match: { [fields[0] as string]: 'x' }, $not: {} }, suffix: '' })
  const notAnArray = fc
    .tuple(fc.constantFrom('$and', '$or'), fc.constantFrom<unknown>({}, 'x', 1n, null))
    .map(([operator, operand]): Planted => ({ leaf: { [operator]: operand }, suffix: `.${operator}` }))
  const notAnObject = fc.constantFrom<unknown>([], 'x', 3n, true, null).map((leaf): Planted => ({ leaf, suffix: '' }))
  const badValue: fc.Arbitrary<Planted> = {
    accounts: fc.constantFrom<Planted>(
      { leaf: { $lt: { 'balance[usd]': 0n } }, suffix: '.$lt["balance[usd]"]' },
      { leaf: { $lt: { balance: 0.5 } }, suffix: '.$lt["balance"]' },
      { leaf: { $match: { address: 'a b' } }, suffix: '.$match["address"]' },
      { leaf: { $match: { address: 'a:...:b' } }, suffix: '.$match["address"]' },
      { leaf: { $gt: { first_usage: '2024-01-01' } }, suffix: '.$gt["first_usage"]' },
      { leaf: { $exists: { metadata: 1n } }, suffix: '.$exists["metadata"]' },
      { leaf: { $like: { 'metadata[k]': 'x\\' } }, suffix: '.$like["metadata[k]"]' },
    ),
    transactions: fc.constantFrom<Planted>(
      { leaf: { $match: { reverted: 'true' } }, suffix: '.$match["reverted"]' },
      { leaf: { $lt: { id: 'one' } }, suffix: '.$lt["id"]' },
      { leaf: { $in: { reference: 'r1' } }, suffix: '.$in["reference"]' },
      { leaf: { $in: { reference: ['r1', 2n] } }, suffix: '.$in["reference"][1]' },
      { leaf: { $match: { source: 7n } }, suffix: '.$match["source"]' },
      { leaf: { $lte: { timestamp: '2024-13-01T00:00:00Z' } }, suffix: '.$lte["timestamp"]' },
    ),
    logs: fc.constantFrom<Planted>(
      { leaf: { $match: { type: 1n } }, suffix: '.$match["type"]' },
      { leaf: { $gt: { date: 'now' } }, suffix: '.$gt["date"]' },
      { leaf: { $match: { 'id[1]': 1n } }, suffix: '.$match["id[1]"]' },
    ),
    volumes: fc.constantFrom<Planted>(
      { leaf: { $lt: { 'balance[]': 0n } }, suffix: '.$lt["balance[]"]' },
      { leaf: { $match: { account: 'x::...:y' } }, suffix: '.$match["account"]' },
      { leaf: { $match: { 'metadata[k]': true } }, suffix: '.$match["metadata[k]"]' },
    ),
  }[resource]
  return fc.oneof(misuse, unknownField, unknownOperator, twoOperators, notAnArray, notAnObject, badValue)
}

/** Wrappers from the root down to the planted leaf: `$not`, or `$and`/`$or` with valid siblings. */
type Wrapper = { readonly kind: '$not' } | { readonly kind: '$and' | '$or'; readonly before: readonly Raw[]; readonly after: readonly Raw[] }

function invalidFilter(resource: Resource): fc.Arbitrary<{ readonly raw: unknown; readonly path: string }> {
  const valid = filterOf(LEAVES[resource])
  const wrapper: fc.Arbitrary<Wrapper> = fc.oneof(
    fc.constant<Wrapper>({ kind: '$not' }),
    fc
      .tuple(fc.constantFrom<'$and' | '$or'>('$and', '$or'), fc.array(valid, { maxLength: 2 }), fc.array(valid, { maxLength: 2 }))
      .map(([kind, before, after]): Wrapper => ({ kind, before, after })),
  )
  return fc
    .tuple(fc.array(wrapper, { minLength: 1, maxLength: 4 }), badLeaf(resource))
    .map(([wrappers, planted]) => {
      let path = 'filter'
      for (const wrap of wrappers) path += wrap.kind === '$not' ? '.$not' : `.${wrap.kind}[${wrap.before.length}]`
      let raw: unknown = planted.leaf
      for (const wrap of [...wrappers].reverse()) {
        raw = wrap.kind === '$not' ? { $not: raw } : { [wrap.kind]: [...wrap.before, raw, ...wrap.after] }
      }
      return { raw, path: path + planted.suffix }
    })
}

for (const resource of ['accounts', 'transactions', 'logs', 'volumes'] as const) {
  test(`random invalid ${resource} filters are refused, naming the bad part`, () => {
    fc.assert(
      fc.property(invalidFilter(resource), ({ raw, path }) => {
        assert.throws(
          () => parseFilter(resource, raw),
          (error: unknown) => {
            assert.ok(error instanceof TallyError, 'a TallyError')
            assert.equal(error.code, 'VALIDATION')
            assert.equal(error.details?.path, path)
            assert.ok(error.message.startsWith(`invalid filter at ${path}: `), error.message)
            return true
          },
        )
      }),
      { numRuns: 400 },
    )
  })
}
