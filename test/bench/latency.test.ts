import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  LatencyHistogram,
  bucketHighMicros,
  bucketIndexOf,
  nearestRank,
  relativeErrorMax,
} from '../../src/bench/index.ts'

const valueMax = 0xffff_ffff
const latencyMicros = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 50_000 }), fc.integer({ min: 0, max: valueMax }))
const percentile = fc.oneof(fc.constantFrom(0, 1, 50, 90, 99, 99.9, 100), fc.double({ min: 0, max: 100, noNaN: true }))

function bruteForcePercentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((left, right) => left - right)
  return sorted[nearestRank(p, sorted.length) - 1]!
}

test('nearestRank picks the ceil(p·n/100)-th sample, clamped to [1, n]', () => {
  assert.equal(nearestRank(99, 100), 99)
  assert.equal(nearestRank(50, 1), 1)
  assert.equal(nearestRank(0, 10), 1)
  assert.equal(nearestRank(100, 10), 10)
  assert.equal(nearestRank(90, 10), 9)
  assert.equal(nearestRank(99.9, 1000), 999)
  assert.equal(nearestRank(50, 3), 2)
})

test('percentiles match a brute-force sort within the relative error bound, never below', () => {
  fc.assert(
    fc.property(fc.array(latencyMicros, { minLength: 1, maxLength: 400 }), percentile, (values, p) => {
      const histogram = new LatencyHistogram()
      for (const value of values) histogram.record(value)
      const exact = bruteForcePercentile(values, p)
      const reported = histogram.percentileMicros(p)
      assert.ok(reported >= exact, `p${p}: ${reported} below exact ${exact}`)
      assert.ok(reported - exact <= exact * relativeErrorMax, `p${p}: ${reported} too far above ${exact}`)
      if (exact < 256) assert.equal(reported, exact, 'values below 256 µs are exact')
      assert.equal(histogram.count, values.length)
      assert.equal(histogram.maxMicros, Math.max(...values))
      assert.equal(histogram.minMicros, Math.min(...values))
    }),
    { numRuns: 500 },
  )
})

test('percentiles are monotonic in p', () => {
  fc.assert(
    fc.property(fc.array(latencyMicros, { minLength: 1, maxLength: 200 }), (values) => {
      const histogram = new LatencyHistogram()
      for (const value of values) histogram.record(value)
      const reported = [0, 10, 50, 90, 99, 99.9, 100].map((p) => histogram.percentileMicros(p))
      for (let index = 1; index < reported.length; index++) assert.ok(reported[index]! >= reported[index - 1]!)
      assert.equal(histogram.percentileMicros(100), histogram.maxMicros)
    }),
  )
})

test('merging histograms equals recording everything into one', () => {
  fc.assert(
    fc.property(fc.array(latencyMicros), fc.array(latencyMicros), percentile, (left, right, p) => {
      const merged = new LatencyHistogram()
      const leftHistogram = new LatencyHistogram()
      const rightHistogram = new LatencyHistogram()
      const together = new LatencyHistogram()
      for (const value of left) leftHistogram.record(value)
      for (const value of right) rightHistogram.record(value)
      for (const value of [...left, ...right]) together.record(value)
      merged.merge(leftHistogram)
      merged.merge(rightHistogram)
      assert.equal(merged.count, together.count)
      assert.equal(merged.percentileMicros(p), together.percentileMicros(p))
      assert.deepEqual(merged.summaryMs(), together.summaryMs())
    }),
  )
})

test('bucket bounds tile the value range without gaps or overlaps', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: valueMax }), (value) => {
      const index = bucketIndexOf(value)
      assert.ok(bucketHighMicros(index) >= value)
      if (index > 0) assert.ok(bucketHighMicros(index - 1) < value)
      assert.equal(bucketIndexOf(bucketHighMicros(index)), index)
    }),
  )
  assert.equal(bucketHighMicros(bucketIndexOf(valueMax)), valueMax)
  for (let index = 0; index < 2000; index++) assert.equal(bucketIndexOf(bucketHighMicros(index) + 1), index + 1)
})

test('an empty histogram reports zeros; recordMs rounds to the microsecond', () => {
  const histogram = new LatencyHistogram()
  assert.deepEqual(histogram.summaryMs(), { count: 0, minMs: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 })
  histogram.recordMs(1.2344)
  histogram.recordMs(0.0004)
  assert.equal(histogram.maxMicros, 1234)
  assert.equal(histogram.minMicros, 0)
  assert.throws(() => histogram.record(-1), /must not be negative/)
  assert.throws(() => histogram.record(1.5), /integer/)
})
