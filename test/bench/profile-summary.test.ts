import { test } from 'node:test'
import assert from 'node:assert/strict'
import { summariseProfile, type CpuProfile, type CpuProfileNode } from '../../src/bench/profile-summary.ts'

function node(id: number, functionName: string, url: string, children: number[] = []): CpuProfileNode {
  return { id, callFrame: { functionName, url, lineNumber: 0 }, children }
}

// root ─┬ (garbage collector)
//       ├ (idle)
//       ├ handler (fastify) ── applyOrders (src/fsm) ─┬ writeSync (rocksdb binding) ── batchDo (native)
//       │                                            ├ stringify (native JSON)
//       │                                            └ digest (native, under node:internal/crypto)
//       └ (program)
const profile: CpuProfile = {
  nodes: [
    node(1, '(root)', '', [2, 3, 4, 10]),
    node(2, '(garbage collector)', ''),
    node(3, '(idle)', ''),
    node(4, 'handler', 'file:///app/node_modules/fastify/lib/route.js', [5]),
    node(5, 'applyOrders', 'file:///app/src/fsm/state-machine.ts', [6, 8, 9]),
    node(6, 'writeSync', 'file:///app/node_modules/@nxtedition/rocksdb/chained-batch.js', [7]),
    node(7, 'batchDo', ''),
    node(8, 'stringify', ''),
    node(9, 'digest', 'node:internal/crypto/hash', [11]),
    node(10, '(program)', ''),
    node(11, 'nativeDigest', ''),
  ],
  startTime: 1_000,
  endTime: 1_000 + 11 * 100,
  // Each sample stands for the 100 µs until the next one.
  samples: [2, 3, 5, 7, 7, 8, 11, 4, 10, 2, 3],
  timeDeltas: [100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100],
}

test('self time by category: native frames charged to their JavaScript caller, idle kept apart', () => {
  const summary = summariseProfile(profile)
  assert.equal(summary.samples, 11)
  assert.equal(summary.idleMicros, 100, 'the last idle sample has no following delta')
  assert.equal(summary.busyMicros, 900)
  assert.deepEqual(Object.fromEntries(summary.byCategory), { GC: 200, FSM: 100, RocksDB: 200, JSON: 100, hashing: 100, HTTP: 100, 'V8 (program)': 100 })
  assert.equal(summary.topFunctions[0]?.micros, 200)
})

test('a window keeps only the samples taken inside it', () => {
  // Sample i is taken at 1000 + 100 (i + 1): the window holds samples 3..5 (batchDo, batchDo, stringify).
  const summary = summariseProfile(profile, { fromMicros: 1_400, toMicros: 1_600 })
  assert.equal(summary.samples, 3)
  assert.deepEqual(Object.fromEntries(summary.byCategory), { RocksDB: 200, JSON: 100 })
})
