import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseJson } from '../../src/domain/index.ts'
import type { Json } from '../../src/domain/index.ts'
import { goDate, goString, importedDate, v2LogHash, v2LogHashText, v2Memento } from '../../src/audit/v2-log-hash.ts'
import * as stringForm from './v2-log-hash-string-form.ts'

export const HAND_BUILT_FIXTURE = fileURLToPath(new URL('./fixtures/v2-hand-built.jsonl', import.meta.url))

/**
 * The texts v2 hashes for the fixture's logs, written by hand from the rule in
 * formance.md §3 (memento field order, Go map key order, Go date format, Go's
 * HTML-safe string escapes, "id":0 and "hash":null): the oracle, independent of
 * `v2LogHash`. The fixture's hashes were computed from these texts outside
 * this code base.
 */
const HAND_TEXTS = [
  '{"type":"NEW_TRANSACTION","data":{"transaction":{"postings":[{"source":"world","destination":"users:1","amount":100,"asset":"USD/2"}],"metadata":{"a":"\\u003c1\\u003e","b":"2"},"timestamp":"2024-03-01T10:00:00.123456Z","reference":"ref-0","id":0,"reverted":false},"accountMetadata":{"users:1":{"role":"payer"}}},"date":"2024-03-01T10:00:00.123456Z","idempotencyKey":"ik-0","id":0,"hash":null}\n',
  '{"type":"NEW_TRANSACTION","data":{"transaction":{"postings":[{"source":"users:1","destination":"users:2","amount":40,"asset":"USD/2"}],"metadata":{},"timestamp":"2024-03-01T09:00:00Z","id":1,"reverted":false},"accountMetadata":{}},"date":"2024-03-01T10:00:01.5Z","idempotencyKey":"","id":0,"hash":null}\n',
  '{"type":"SET_METADATA","data":{"targetType":"ACCOUNT","targetId":"users:2","metadata":{"tier":"gold"}},"date":"2024-03-01T10:00:02Z","idempotencyKey":"","id":0,"hash":null}\n',
  '{"type":"SET_METADATA","data":{"targetType":"TRANSACTION","targetId":1,"metadata":{"note":"é \\u0026 more"}},"date":"2024-03-01T10:00:03.000001Z","idempotencyKey":"","id":0,"hash":null}\n',
  '{"type":"DELETE_METADATA","data":{"targetType":"ACCOUNT","targetId":"users:1","key":"role"},"date":"2024-03-01T10:00:04Z","idempotencyKey":"","id":0,"hash":null}\n',
  '{"type":"REVERTED_TRANSACTION","data":{"revertedTransactionID":1,"transaction":{"postings":[{"source":"users:2","destination":"users:1","amount":40,"asset":"USD/2"}],"metadata":{"com.formance.spec/state/reverts":"1"},"timestamp":"2024-03-01T10:00:05.25Z","id":2,"reverted":false}},"date":"2024-03-01T10:00:05.25Z","idempotencyKey":"","id":0,"hash":null}\n',
  '{"type":"DELETE_METADATA","data":{"targetType":"TRANSACTION","targetId":1,"key":"note"},"date":"2024-03-01T10:00:06Z","idempotencyKey":"","id":0,"hash":null}\n',
]

interface FixtureLog {
  readonly type: string
  readonly data: Json
  readonly date: string
  readonly idempotencyKey: string
  readonly hash: string
}

export function readFixture(): FixtureLog[] {
  return readFileSync(HAND_BUILT_FIXTURE, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => parseJson(line) as unknown as FixtureLog)
}

test('v2 hash: the hand-written texts chain to the fixture hashes (plain SHA-256, no Tally code)', () => {
  const logs = readFixture()
  assert.equal(logs.length, HAND_TEXTS.length)
  let previous = ''
  HAND_TEXTS.forEach((text, i) => {
    const digest = createHash('sha256')
    if (previous !== '') digest.update(`"${previous}"\n`)
    previous = digest.update(text, 'utf8').digest('base64')
    assert.equal(previous, logs[i]?.hash, `log ${i}`)
  })
})

test('v2 hash: v2LogHash reproduces every fixture hash from the exported logs (extra fields ignored)', () => {
  let previous = ''
  readFixture().forEach((log, i) => {
    assert.equal(v2LogHashText(log), HAND_TEXTS[i], `text of log ${i}`)
    const hash = v2LogHash(previous, log)
    assert.equal(hash, log.hash, `hash of log ${i}`)
    previous = hash
  })
})

test('v2 hash: chained and sensitive to type, data, date and idempotency key; key order of metadata is not', () => {
  const [first] = readFixture()
  assert.ok(first !== undefined)
  const base = v2LogHash('', first)
  assert.notEqual(v2LogHash(base, first), base)
  assert.notEqual(v2LogHash('', { ...first, idempotencyKey: 'other' }), base)
  assert.notEqual(v2LogHash('', { ...first, date: '2024-03-01T10:00:00.123457Z' }), base)
  assert.notEqual(v2LogHash('', { ...first, type: 'SET_METADATA' }), base)
  const data = first.data as { transaction: { metadata: Record<string, string> } }
  const reordered = { ...data, transaction: { ...data.transaction, metadata: { b: '2', a: '<1>' } } }
  assert.equal(v2LogHash('', { ...first, data: reordered as unknown as Json }), base)
  const changed = { ...data, transaction: { ...data.transaction, metadata: { a: '<1>', b: '3' } } }
  assert.notEqual(v2LogHash('', { ...first, data: changed as unknown as Json }), base)
})

test('v2 dates: Go RFC3339Nano for hashing, microsecond-exact import form', () => {
  assert.equal(goDate('2026-01-01T00:00:01.000Z'), '2026-01-01T00:00:01Z')
  assert.equal(goDate('2026-01-01T00:00:01.120Z'), '2026-01-01T00:00:01.12Z')
  assert.equal(goDate('2026-01-01T02:00:01.5+02:00'), '2026-01-01T00:00:01.5Z')
  assert.equal(importedDate('2026-01-01T00:00:01Z', 'date'), '2026-01-01T00:00:01.000Z')
  assert.equal(importedDate('2026-01-01T00:00:01.25Z', 'date'), '2026-01-01T00:00:01.250Z')
  assert.equal(importedDate('2026-01-01T00:00:01.000001Z', 'date'), '2026-01-01T00:00:01.000001Z')
  assert.throws(() => importedDate('2026-01-01T00:00:01.0000001Z', 'date'), /microsecond/)
  assert.throws(() => importedDate('yesterday', 'date'), /RFC 3339/)
  for (const date of ['2026-01-01T00:00:01.000Z', '2024-03-01T10:00:00.123456Z']) assert.equal(goDate(importedDate(goDate(date), 'd')), goDate(date))
})

test('v2 dates: a fixed-width UTC date prints as the same instant spelled with an offset does (property)', () => {
  // `+00:00` is never fixed-width, so the right side takes the general parser: the oracle for the character path.
  const stored = fc.tuple(fc.bigInt({ min: 0n, max: 253_402_300_799_999_999n }), fc.constantFrom(6, 3)).map(([micros, digits]) => {
    const iso = new Date(Number(micros / 1_000_000n) * 1000).toISOString().slice(0, 19)
    return `${iso}.${String(micros % 1_000_000n).padStart(6, '0').slice(0, digits)}Z`
  })
  fc.assert(
    fc.property(stored, (text) => {
      assert.equal(goDate(text), goDate(`${text.slice(0, -1)}+00:00`), text)
    }),
    { numRuns: 2_000 },
  )
})

test('v2 dates: offsets convert to UTC across day, month and leap-year boundaries', () => {
  assert.equal(goDate('2024-03-01T01:30:00-02:00'), '2024-03-01T03:30:00Z')
  assert.equal(goDate('2024-03-01T01:30:00+02:00'), '2024-02-29T23:30:00Z')
  assert.equal(goDate('2023-03-01T01:30:00.25+02:00'), '2023-02-28T23:30:00.25Z')
  assert.equal(goDate('2000-01-01T00:00:00+00:01'), '1999-12-31T23:59:00Z')
  assert.equal(goDate('1969-12-31T23:00:00-02:00'), '1970-01-01T01:00:00Z')
})

test('v2 hash: an INSERTED_SCHEMA log hashes v2\'s Schema struct (field order, omitted parts, chart re-encoded, raw params and body)', () => {
  // The payload as a log may carry it: a leaf .self, .rules, a template without description, params keys not sorted.
  const data = parseJson(
    JSON.stringify({
      schema: {
        chart: {
          world: {},
          users: { $id: { '.pattern': '^[0-9]+$', '.self': {}, wallet: { '.self': {} }, '.metadata': { tier: { default: 'basic' }, note: {} }, '.rules': {} } },
          bank: { '.self': {}, main: {} },
        },
        queries: {
          Q: {
            resource: 'transactions',
            params: { sort: 'id:asc', pageSize: 10 },
            vars: { since: { type: 'date' }, min: { default: 0, type: 'int' } },
            body: { $and: [{ $gte: { timestamp: '${since}' } }, { $match: { reference: 'a<b' } }] },
          },
        },
        transactions: { T: { script: 'send [USD 1] (\n source = @world\n destination = @bank:main\n)\n' }, R: { description: 'd', script: 'x', runtime: 'machine' } },
        version: 'v1.0.0',
        createdAt: '2024-03-01T10:00:00.500Z',
      },
    }),
  )
  // Written by hand from v2's structs (internal/schema.go, chart.go, transaction_templates.go, query_templates.go).
  const chart = '{"bank":{".self":{},"main":{}},"users":{"$id":{".metadata":{"note":{},"tier":{"default":"basic"}},".pattern":"^[0-9]+$",".self":{},"wallet":{}}},"world":{}}'
  const transactions = '{"R":{"description":"d","script":"x","runtime":"machine"},"T":{"description":"","script":"send [USD 1] (\\n source = @world\\n destination = @bank:main\\n)\\n"}}'
  const queries =
    '{"Q":{"resource":"transactions","params":{"sort":"id:asc","pageSize":10},"vars":{"min":{"type":"int","default":0},"since":{"type":"date"}},"body":{"$and":[{"$gte":{"timestamp":"${since}"}},{"$match":{"reference":"a\\u003cb"}}]}}}'
  const expected = `{"type":"INSERTED_SCHEMA","data":{"schema":{"chart":${chart},"transactions":${transactions},"queries":${queries},"version":"v1.0.0","createdAt":"2024-03-01T10:00:00.5Z"}},"date":"2024-03-01T10:00:00.5Z","idempotencyKey":"","id":0,"hash":null}\n`
  assert.equal(v2LogHashText({ type: 'INSERTED_SCHEMA', data, date: '2024-03-01T10:00:00.500Z' }), expected)
  // Empty template maps are omitted, as Go's omitempty omits them.
  const bare = parseJson('{"schema":{"chart":{"world":{}},"transactions":{},"queries":{},"version":"v2","createdAt":"2024-03-01T10:00:00Z"}}')
  assert.equal(
    v2LogHashText({ type: 'INSERTED_SCHEMA', data: bare, date: '2024-03-01T10:00:00Z' }),
    '{"type":"INSERTED_SCHEMA","data":{"schema":{"chart":{"world":{}},"version":"v2","createdAt":"2024-03-01T10:00:00Z"}},"date":"2024-03-01T10:00:00Z","idempotencyKey":"","id":0,"hash":null}\n',
  )
})

test('goString: the plain-ASCII shortcut quotes exactly as the escaping form (JSON, then Go\'s HTML-safe escapes) for any string', () => {
  const reference = (text: string) => JSON.stringify(text).replace(/[<>&\u2028\u2029]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`)
  const edges = fc.constantFrom('"', '\\', '<', '>', '&', '\u2028', '\u2029', '\u001f', '\u007f', '\u0080', '\ud800', 'é', ' ', '~', 'a')
  const text = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme-ascii' }), fc.array(edges, { maxLength: 8 }).map((parts) => parts.join('')))
  fc.assert(fc.property(text, (value) => assert.equal(goString(value), reference(value))), { numRuns: 2000 })
  for (const value of ['', 'users:1', 'USD/2', '2026-01-01T00:00:00Z', 'a"b', 'a\\b', 'a<b', 'x&y', 'tab\t', '~']) assert.equal(goString(value), reference(value))
})

test('v2 hash: the byte writer hashes and prints exactly as the string form did, for random logs of every type (property)', () => {
  // Keys that sort differently by UTF-16 and UTF-8, that Go escapes, and that a plain object would take as its prototype.
  const oddKey = fc.constantFrom('__proto__', 'constructor', '', 'a<b', 'é', '\ud83d\ude00', '\uffff', '\u2028', '"', '\\', 'k\u0000', 'Z', 'a')
  const key = fc.oneof(oddKey, fc.string({ unit: 'binary', maxLength: 6 }), fc.string({ unit: 'grapheme-ascii', maxLength: 6 }))
  const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ maxLength: 12 }), oddKey)
  const metadata = fc.array(fc.tuple(key, text), { maxLength: 5 }).map((entries) => Object.fromEntries(entries) as Json)
  const amount = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 256n }), fc.constantFrom(0n, 0x7ffffffen, 0x7fffffffn, 0x80000000n, 10n ** 11n, 2n ** 53n + 1n, 10n ** 30n))
  const address = fc.oneof(fc.constantFrom('world', 'users:1', 'a&b', 'é:1'), fc.string({ unit: 'grapheme-ascii', maxLength: 10 }))
  const posting = fc.record({ source: address, destination: address, amount, asset: fc.constantFrom('USD/2', 'EUR', 'COIN<1>') })
  const fixedWidthDate = fc
    .tuple(fc.bigInt({ min: 0n, max: 253_402_300_799_999_999n }), fc.constantFrom(3, 6))
    .map(([micros, digits]) => {
      const base = new Date(Number(micros / 1000n)).toISOString().slice(0, 19)
      const fraction = String(micros % 1_000_000n).padStart(6, '0').slice(0, digits)
      return `${base}.${fraction}Z`
    })
  // Whole seconds, zero fractions and offsets: the forms that are not Tally's stored form, or that drop the dot.
  const otherDate = fc.constantFrom('2024-03-01T10:00:00Z', '2024-03-01T10:00:00.000Z', '2024-03-01T10:00:00.000000Z', '2024-03-01T10:00:01.5Z', '2024-03-01T12:00:00.120+02:00', '2023-12-31T23:59:59.999999-05:30', '2024-02-29T00:00:00.100000Z')
  const date = fc.oneof(fixedWidthDate, otherDate)
  const transaction = fc.record(
    {
      id: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n }), fc.nat()),
      postings: fc.array(posting, { minLength: 1, maxLength: 4 }),
      metadata,
      timestamp: date,
      reference: fc.oneof(fc.constant(''), text),
      insertedAt: date,
      reverted: fc.boolean(),
    },
    { requiredKeys: ['id', 'postings', 'metadata', 'timestamp'] },
  )
  const accountMetadata = fc.array(fc.tuple(address, metadata), { maxLength: 3 }).map((entries) => Object.fromEntries(entries) as Json)
  const data = fc.oneof(
    fc.record({ type: fc.constant('NEW_TRANSACTION'), data: fc.record({ transaction, accountMetadata }) }),
    fc.record({ type: fc.constant('REVERTED_TRANSACTION'), data: fc.record({ revertedTransactionID: fc.bigInt({ min: 0n, max: 2n ** 64n }), transaction }) }),
    fc.record({ type: fc.constant('SET_METADATA'), data: fc.record({ targetType: fc.constantFrom('ACCOUNT', 'TRANSACTION'), targetId: fc.oneof(address, fc.bigInt({ min: 0n, max: 2n ** 64n })), metadata }) }),
    fc.record({ type: fc.constant('DELETE_METADATA'), data: fc.record({ targetType: fc.constantFrom('ACCOUNT', 'TRANSACTION'), targetId: address, key }) }),
    // Payloads without their type's shape fall back to the generic encoding.
    fc.record({ type: fc.constantFrom('NEW_TRANSACTION', 'OTHER'), data: fc.oneof(metadata, fc.constant(null), text) }),
  )
  const log = fc.record(
    { entry: data, date, idempotencyKey: fc.oneof(fc.constant(''), text), schemaVersion: fc.oneof(fc.constant(''), text) },
    { requiredKeys: ['entry', 'date'] },
  ).map(({ entry, ...rest }) => ({ type: entry.type, data: entry.data as unknown as Json, ...rest }))
  const previous = fc.oneof(fc.constant(''), fc.base64String({ minLength: 44, maxLength: 44 }))
  fc.assert(
    fc.property(previous, log, (previousHash, entry) => {
      assert.equal(v2LogHashText(entry), stringForm.v2LogHashText(entry))
      assert.equal(v2Memento(entry.type, entry.data), stringForm.v2Memento(entry.type, entry.data))
      assert.equal(v2LogHash(previousHash, entry), stringForm.v2LogHash(previousHash, entry))
    }),
    { numRuns: 3000 },
  )
})

test('v2 hash: a log that cannot be hashed leaves the shared writer as it was: the next hash is unchanged', () => {
  const log = { type: 'NEW_TRANSACTION', date: '2024-03-01T10:00:00Z', data: { transaction: { id: 1n, postings: [], metadata: {}, timestamp: '2024-03-01T10:00:00Z' } } as unknown as Json }
  const expected = v2LogHash('', log)
  assert.throws(() => v2LogHash('x', { ...log, data: { transaction: { id: Number.NaN } } as unknown as Json }))
  assert.throws(() => v2LogHashText({ ...log, data: { transaction: { id: Number.POSITIVE_INFINITY } } as unknown as Json }))
  assert.equal(v2LogHash('', log), expected)
  assert.equal(v2LogHashText(log), stringForm.v2LogHashText(log))
})

test('goDate asked in any sequence, repeats and refusals included, answers each as the string form\'s goDate does (property)', () => {
  const expected = (text: string): string | Error => {
    try {
      return stringForm.goDate(text)
    } catch (error) {
      return error as Error
    }
  }
  const date = fc.oneof(
    fc.integer({ min: 0, max: 253402300799999 }).map((ms) => new Date(ms).toISOString()),
    fc.integer({ min: 0, max: 253402300799 }).map((s) => new Date(s * 1000).toISOString().replace('.000Z', 'Z')),
    fc.constantFrom('2026-12-07T03:45:00.12Z', '2026-12-07T03:45:00.123456Z', '2026-12-07T03:45:00.120000Z', '2021-02-29T00:00:00Z', 'not a date', ''),
  )
  const pool = fc.uniqueArray(date, { minLength: 1, maxLength: 4 })
  fc.assert(
    fc.property(pool.chain((texts) => fc.array(fc.constantFrom(...texts), { minLength: 1, maxLength: 12 })), (sequence) => {
      for (const text of sequence) {
        const want = expected(text)
        if (want instanceof Error) assert.throws(() => goDate(text))
        else assert.equal(goDate(text), want)
      }
    }),
    { numRuns: 2000 },
  )
})
