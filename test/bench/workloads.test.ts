import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { stringifyJson } from '../../src/domain/index.ts'
import {
  Random,
  bulkResponseSampleEvery,
  bulkWorkload,
  classifyBulk,
  countBulk,
  createBulkCounter,
  drawTransaction,
  encodeTransaction,
  nextTransactionData,
  transactionDataOf,
  transactionsWorkload,
  type HttpResponse,
  type WorkloadSettings,
} from '../../src/bench/index.ts'

const settingsArbitrary = fc.record({
  ledger: fc.constant('bench'),
  accounts: fc.integer({ min: 1, max: 1_000_000 }),
  bulkSize: fc.integer({ min: 1, max: 50 }),
  forceRatio: fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
})

test('the pre-encoded wire text is exactly the lossless codec\'s text of the same transaction', () => {
  fc.assert(
    fc.property(settingsArbitrary, fc.integer({ min: 0, max: 0xffff_ffff }), (settings: WorkloadSettings, seed) => {
      const random = new Random(seed)
      for (let index = 0; index < 20; index++) {
        const draw = drawTransaction(settings, random)
        assert.equal(encodeTransaction(draw), stringifyJson(transactionDataOf(draw)))
      }
    }),
  )
})

test('workload bodies are the same requests the object path produced, draw for draw', () => {
  fc.assert(
    fc.property(settingsArbitrary, fc.integer({ min: 0, max: 0xffff_ffff }), (settings: WorkloadSettings, seed) => {
      const expectedRandom = new Random(seed)
      const bulk = bulkWorkload.createGenerator(settings, new Random(seed)).next()
      const elements = Array.from({ length: settings.bulkSize }, () => ({ action: 'CREATE_TRANSACTION', data: nextTransactionData(settings, expectedRandom) }))
      assert.equal(bulk.body, stringifyJson(elements))
      assert.equal(bulk.operations, settings.bulkSize)

      const single = transactionsWorkload.createGenerator(settings, new Random(seed)).next()
      const data = nextTransactionData(settings, new Random(seed))
      assert.equal(single.body, stringifyJson(data))
      assert.equal(single.path, data.force === true ? '/v2/bench/transactions?force=true' : '/v2/bench/transactions')
    }),
  )
})

function bulkAnswer(status: number, results: readonly object[]): HttpResponse {
  return { status, body: JSON.stringify({ data: results }) }
}
const created = { responseType: 'CREATE_TRANSACTION', data: { id: 1 } }
const refused = { responseType: 'ERROR', errorCode: 'INSUFFICIENT_FUND' }

test('a 200 bulk answer is counted without reading its body; any other answer is read element by element', () => {
  assert.deepEqual(countBulk({ status: 200, body: 'not even JSON' }, 7), { ok: true, transactions: 7, operationsSucceeded: 7, failures: [] })
  const partial = bulkAnswer(400, [created, refused, created])
  assert.deepEqual(countBulk(partial, 3), classifyBulk(partial, 3))
  assert.deepEqual(countBulk(partial, 3).failures, [{ key: 'element INSUFFICIENT_FUND', operations: 1 }])
  const unavailable = { status: 503, body: '{"errorCode":"UNAVAILABLE","errorMessage":"later"}' }
  assert.deepEqual(countBulk(unavailable, 4), classifyBulk(unavailable, 4))
})

test('sampling parses the first answer and every Nth in full, and fails a 200 whose results do not match the count', () => {
  const short = bulkAnswer(200, [created, created]) // a server breaking the rule: 200 with 2 results for 3 elements
  const counter = createBulkCounter(4)
  const outcomes = Array.from({ length: 9 }, () => counter(short, 3))
  const disagreed = outcomes.map((outcome) => outcome.failures[0]?.key ?? 'counted')
  assert.deepEqual(disagreed, [
    'HTTP 200 BULK_COUNT_DISAGREES', 'counted', 'counted', 'counted',
    'HTTP 200 BULK_COUNT_DISAGREES', 'counted', 'counted', 'counted',
    'HTTP 200 BULK_COUNT_DISAGREES',
  ])
  assert.equal(outcomes[0]?.transactions, 0)
  assert.equal(outcomes[0]?.failures[0]?.operations, 3)

  const honest = createBulkCounter()
  const good = bulkAnswer(200, [created, created, created])
  for (let index = 0; index < 2 * bulkResponseSampleEvery + 1; index++) {
    assert.deepEqual(honest(good, 3), { ok: true, transactions: 3, operationsSucceeded: 3, failures: [] })
  }
  assert.throws(() => createBulkCounter(0), RangeError)
})

test('the bulk workload samples its own answers', () => {
  const settings = { ledger: 'bench', accounts: 10, bulkSize: 3, forceRatio: 0 }
  const generator = bulkWorkload.createGenerator(settings, new Random(1))
  const request = generator.next()
  assert.equal(generator.classify(request, bulkAnswer(200, [created])).failures[0]?.key, 'HTTP 200 BULK_COUNT_DISAGREES', 'first answer sampled')
  assert.equal(generator.classify(request, bulkAnswer(200, [created])).transactions, 3, 'second counted')
})
