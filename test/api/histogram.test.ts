import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Histogram, Registry } from 'prom-client'
import { CountingHistogram } from '../../src/api/histogram.ts'

const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1, 1, 10]
const methods = ['GET', 'POST']
const routes = ['/v2/:ledger/transactions', '/v2/:ledger/accounts/:address', 'unmatched']
const statuses = ['200', '400', '503']

// A value on a bucket's bound, either side of it, or anywhere.
const value = fc.oneof(
  fc.constantFrom(...buckets),
  fc.constantFrom(...buckets).map((bound) => bound * (1 + Number.EPSILON)),
  fc.double({ min: 0, max: 20, noNaN: true }),
)

test('CountingHistogram prints what prom-client prints for the same observations, labelled and not', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.constantFrom(...methods), fc.constantFrom(...routes), fc.constantFrom(...statuses), value), { maxLength: 60 }),
      fc.array(value, { maxLength: 30 }),
      async (labelled, plain) => {
        const model = new Registry()
        const modelLabelled = new Histogram({ name: 'a_seconds', help: 'labelled', labelNames: ['method', 'route', 'status'], buckets, registers: [model] })
        const modelPlain = new Histogram({ name: 'b_orders', help: 'plain', buckets: [1, 2, 5, 10], registers: [model] })
        const counted = new Registry()
        const countedLabelled = new CountingHistogram('a_seconds', 'labelled', buckets, ['method', 'route', 'status'])
        const countedPlain = new CountingHistogram('b_orders', 'plain', [1, 2, 5, 10])
        counted.registerMetric(countedLabelled as unknown as Parameters<Registry['registerMetric']>[0])
        counted.registerMetric(countedPlain as unknown as Parameters<Registry['registerMetric']>[0])
        for (const [method, route, status, observed] of labelled) {
          modelLabelled.observe({ method, route, status }, observed)
          countedLabelled.seriesFor(`${method} ${status} ${route}`, () => [method, route, status]).observe(observed)
        }
        for (const observed of plain) {
          modelPlain.observe(observed * 3)
          countedPlain.observe(observed * 3)
        }
        assert.equal(await counted.metrics(), await model.metrics())
      },
    ),
    { numRuns: 200 },
  )
})

test('CountingHistogram: a histogram without labels prints its zero series before any observation; reset forgets', async () => {
  const model = new Registry()
  new Histogram({ name: 'c', help: 'c', buckets: [1, 2], registers: [model] })
  const counted = new Registry()
  const histogram = new CountingHistogram('c', 'c', [1, 2])
  counted.registerMetric(histogram as unknown as Parameters<Registry['registerMetric']>[0])
  assert.equal(await counted.metrics(), await model.metrics())
  histogram.observe(1.5)
  assert.match(await counted.metrics(), /^c_count 1$/m)
  histogram.reset()
  assert.equal(await counted.metrics(), await model.metrics())
  assert.throws(() => histogram.observe(Number.NaN), TypeError)
})
