import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import { stringifyJson } from '../../src/domain/index.ts'
import type { Json } from '../../src/domain/index.ts'
import { elementsPerTurn, sendPrintedData } from '../../src/api/sliced-json.ts'
import { asArray, asObject, at, createLedger, openTestApi } from '../support/api.ts'

/** Elements shaped like a bulk's answer: bigints, nested objects, strings that need escaping. */
function answerData(count: number): Json[] {
  return Array.from({ length: count }, (_, i): Json =>
    i % 7 === 3
      ? { responseType: 'ERROR', logID: 0n, errorCode: 'VALIDATION', errorDescription: `element "${i}" \u2028 failed\n` }
      : { responseType: 'CREATE_TRANSACTION', logID: BigInt(i + 1), data: { id: BigInt(i), postings: [{ source: 'world', destination: `users:${i}`, amount: 10n ** 30n + BigInt(i), asset: 'USD/2' }], metadata: {}, reverted: false } },
  )
}

test('a data array of printed elements (in slices when long) is byte for byte what the reply serializer prints, with the same content type', async () => {
  const app = Fastify()
  app.setReplySerializer((payload) => stringifyJson(payload))
  let data: Json[] = []
  let rest: Record<string, Json> = {}
  app.get('/whole', async (_request, reply) => reply.code(400).send({ data, ...rest }))
  app.get('/sliced', async (_request, reply) => sendPrintedData(reply, 400, data.length, (out, i) => out.utf8(stringifyJson(data[i] as Json)), rest))
  try {
    for (const count of [0, 1, elementsPerTurn, elementsPerTurn + 1, 3 * elementsPerTurn + 17]) {
      for (const extra of [{}, { errorCode: 'VALIDATION', errorMessage: 'the "first" error' }] as Record<string, Json>[]) {
        data = answerData(count)
        rest = extra
        const [whole, sliced] = [await app.inject({ url: '/whole' }), await app.inject({ url: '/sliced' })]
        assert.equal(sliced.statusCode, 400)
        assert.equal(sliced.body, whole.body, `${count} elements`)
        assert.equal(sliced.headers['content-type'], whole.headers['content-type'])
        assert.equal(sliced.headers['content-length'], whole.headers['content-length'])
      }
    }
  } finally {
    await app.close()
  }
})

test('_bulk: a bulk of several slices of elements (parsed, planned and answered in slices) answers every element in order', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'main')
    const count = 2 * elementsPerTurn + 5
    const failing = elementsPerTurn + 3
    const bulk = Array.from({ length: count }, (_, i) => ({
      action: 'CREATE_TRANSACTION',
      data: { postings: [{ source: i === failing ? 'users:empty' : 'world', destination: `users:${i}`, amount: i + 1, asset: 'USD' }] },
    }))
    const reply = await api.request('POST', '/v2/main/_bulk?continueOnFailure=true', bulk)
    assert.equal(reply.status, 400, reply.text)
    assert.match(String(reply.headers['content-type']), /^application\/json; charset=utf-8$/)
    const data = asArray(at(reply.body, 'data'))
    assert.equal(data.length, count)
    data.forEach((element, i) => {
      const object = asObject(element, `data[${i}]`)
      if (i === failing) assert.equal(object.responseType, 'ERROR')
      else assert.equal(at(object, 'data', 'postings', 0, 'destination'), `users:${i}`)
    })
    assert.equal(at(reply.body, 'errorCode'), 'INSUFFICIENT_FUND')
    // The one canonical print of the whole body: nothing added, dropped or reordered by the slices.
    assert.equal(reply.text, stringifyJson(reply.body))
  } finally {
    await api.close()
  }
})
