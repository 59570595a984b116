import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LatencyTrace, readLatencyTraceFile } from '../../src/server/index.ts'
import { attribute, coveredMs, sendLagCause } from '../../bench/support/latency-attribution.ts'

test('the latency trace keeps events up to its bound, counts the rest, and reads back what it wrote', () => {
  const trace = new LatencyTrace(3)
  trace.record('wal-fsync', 10, 12.5, 4)
  trace.record('gc', 11, 11.25, 1)
  trace.record('loop-late', 9, 15, 2, 3.5)
  trace.record('apply', 20, 21)
  assert.equal(trace.size, 3)
  assert.equal(trace.dropped, 1)
  const file = JSON.parse(JSON.stringify(trace.toFile()))
  assert.deepEqual(readLatencyTraceFile(file), trace.events())
  assert.deepEqual(trace.events()[2], { kind: 'loop-late', startMs: 9, endMs: 15, value: 2, extra: 3.5 })
})

test('covered time counts only the part of each interval inside the window', () => {
  const intervals = [
    { startMs: 0, endMs: 2 },
    { startMs: 5, endMs: 8 },
    { startMs: 10, endMs: 20 },
  ]
  assert.equal(coveredMs(intervals, 1, 12), 1 + 3 + 2)
  assert.equal(coveredMs(intervals, 8.5, 9.5), 0)
  assert.equal(coveredMs(intervals, 25, 30), 0)
})

test('slow requests are attributed to the event that covered most of them, beside the share among all requests', () => {
  // Ten fast requests, two slow ones: one behind a 20 ms fdatasync, one sent late by the client.
  const requests = [
    ...Array.from({ length: 10 }, (_, i) => ({ fromMs: 100 * i, sentMs: 100 * i, answeredMs: 100 * i + 1 })),
    { fromMs: 1000, sentMs: 1000, answeredMs: 1025 },
    { fromMs: 2000, sentMs: 2015, answeredMs: 2020 },
  ]
  const events = [
    { kind: 'wal-fsync' as const, startMs: 1002, endMs: 1022, value: 1, extra: 0 },
    { kind: 'wal-fsync' as const, startMs: 0.2, endMs: 0.4, value: 1, extra: 0 },
    { kind: 'gc' as const, startMs: 1003, endMs: 1004, value: 1, extra: 0 },
  ]
  const attribution = attribute(requests, events, 10)
  assert.equal(attribution.slow, 2)
  const share = (cause: string) => attribution.shares.find((entry) => entry.cause === cause)
  assert.equal(share('WAL fdatasync ≥ 5 ms')?.slowShare, 0.5)
  assert.equal(share('WAL fdatasync ≥ 5 ms')?.allShare, 1 / 12)
  assert.equal(share('WAL fdatasync ≥ 5 ms')?.primaryShare, 0.5)
  assert.equal(share('GC pause, minor')?.primaryShare, 0)
  assert.equal(share(sendLagCause)?.primaryShare, 0.5)
  assert.equal(attribution.unexplainedShare, 0)
  // The run's own 99th percentile: the slowest request only.
  assert.equal(attribute(requests, events, 'p99').slow, 1)
})
