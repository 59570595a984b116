// The event-loop stall watch names what held the loop (issue 12, target 3):
// the arithmetic of a stalled window, the watch's report of one, and its
// report of RocksDB write stalls.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeStall, watchLoopStalls } from '../../src/server/index.ts'
import type { LoopStall, NodeLogFields } from '../../src/server/index.ts'

test('describeStall: the delay past the interval, each counter as its growth, blocked as the window less CPU and run-queue time', () => {
  const stall = describeStall(
    { at: 1000, onCpu: 500, waitingForCpu: 200, gc: 30, storeWrites: 40, apply: 7 },
    { at: 1320, onCpu: 600, waitingForCpu: 400, gc: 80, storeWrites: 45, apply: 19 },
    20,
  )
  assert.deepEqual(stall, { delayMs: 300, windowMs: 320, onCpuMs: 100, gcMs: 50, storeWritesMs: 5, applyMs: 12, waitingForCpuMs: 200, blockedMs: 20 })
  // A tick on time is no delay; without the scheduler's figures, neither CPU nor blocked time is claimed.
  assert.deepEqual(describeStall({ at: 0, onCpu: undefined, waitingForCpu: undefined, gc: 0, storeWrites: 0, apply: 0 }, { at: 15, onCpu: undefined, waitingForCpu: undefined, gc: 0, storeWrites: 0, apply: 0 }, 20), {
    delayMs: 0,
    windowMs: 15,
    onCpuMs: undefined,
    gcMs: 0,
    storeWritesMs: 0,
    applyMs: 0,
    waitingForCpuMs: undefined,
    blockedMs: undefined,
  })
  // Counted CPU and run-queue time over the window (sampling skew) never makes blocked time negative.
  assert.equal(describeStall({ at: 0, onCpu: 0, waitingForCpu: 0, gc: 0, storeWrites: 0, apply: 0 }, { at: 100, onCpu: 70, waitingForCpu: 40, gc: 0, storeWrites: 0, apply: 0 }, 20).blockedMs, 0)
})

/** Resolves with the first log line `accept` takes, or fails past the deadline. */
function nextLine(lines: { message: string; fields: NodeLogFields | undefined }[], accept: (message: string) => boolean, deadlineMs = 20_000): Promise<{ message: string; fields: NodeLogFields | undefined }> {
  const until = Date.now() + deadlineMs
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      const found = lines.find((line) => accept(line.message))
      if (found !== undefined) resolve(found)
      else if (Date.now() > until) reject(new Error(`no such log line; got: ${JSON.stringify(lines)}`))
      else setTimeout(poll, 5)
    }
    poll()
  })
}

test('watchLoopStalls: a loop held past the threshold is logged at warn and observed once, with the store writes that held it', async () => {
  const store = { writeTime: { milliseconds: 0 }, writeStallSeconds: () => 0, numericProperty: () => 0 }
  const apply = { milliseconds: 0 }
  const lines: { message: string; fields: NodeLogFields | undefined }[] = []
  const stalls: LoopStall[] = []
  const watch = watchLoopStalls({
    store,
    apply,
    thresholdMs: 100,
    intervalMs: 10,
    log: (message, fields) => lines.push({ message, fields }),
    observer: { loopStalled: (stall) => stalls.push(stall), storeWriteStalled: () => assert.fail('no RocksDB stall here') },
  })
  try {
    // Hold the thread 250 ms on the CPU, 120 ms of it "in a store write": the
    // window starts at the watch's first sample, before the hold.
    const until = performance.now() + 250
    store.writeTime.milliseconds += 120
    apply.milliseconds += 90
    while (performance.now() < until);
    const line = await nextLine(lines, (message) => message.startsWith('event loop stalled'))
    assert.equal(line.fields?.level, 'warn')
    assert.ok(Number(line.fields?.delayMs) >= 230, `delay ${line.fields?.delayMs}`)
    assert.equal(line.fields?.storeWritesMs, 120)
    assert.equal(line.fields?.applyMs, 90)
    // Observed once (a loaded machine may add stalls of its own, without store writes).
    const held = stalls.filter((stall) => stall.storeWritesMs > 0)
    assert.equal(held.length, 1)
    assert.equal(held[0]?.storeWritesMs, 120)
    if (process.platform === 'linux') {
      // The thread ran the hold: its CPU time is there, and every millisecond of the window is on a CPU, waiting for one, or blocked.
      const { onCpuMs, waitingForCpuMs, blockedMs, windowMs } = held[0] as LoopStall
      assert.ok(onCpuMs !== undefined && waitingForCpuMs !== undefined && blockedMs !== undefined)
      assert.ok(onCpuMs > 0)
      if (blockedMs > 0) assert.ok(Math.abs(onCpuMs + waitingForCpuMs + blockedMs - windowMs) < 0.001)
    }
  } finally {
    watch.stop()
  }
})

test('watchLoopStalls: RocksDB write-stall time that grew is logged at warn with the store figures, and observed', async () => {
  let stallSeconds = 2
  let reads = 0
  const store = { writeTime: { milliseconds: 0 }, writeStallSeconds: () => (reads++, stallSeconds), numericProperty: (name: string) => (name === 'rocksdb.num-files-at-level0' ? 21 : 0) }
  const lines: { message: string; fields: NodeLogFields | undefined }[] = []
  const observed: number[] = []
  const watch = watchLoopStalls({
    store,
    thresholdMs: 60_000,
    intervalMs: 5,
    storeStallCheckMs: 0,
    log: (message, fields) => lines.push({ message, fields }),
    observer: { loopStalled: () => {}, storeWriteStalled: (seconds) => observed.push(seconds) },
  })
  try {
    // What RocksDB had stalled before the watch started is not reported.
    const until = Date.now() + 20_000
    while (reads < 4 && Date.now() < until) await new Promise((resolve) => setImmediate(resolve))
    assert.ok(reads >= 4)
    assert.deepEqual(lines, [])
    stallSeconds = 2.25
    const line = await nextLine(lines, (message) => message.startsWith('RocksDB delayed or stopped writes'))
    assert.equal(line.message, 'RocksDB delayed or stopped writes for 250 ms')
    assert.equal(line.fields?.level, 'warn')
    assert.equal(line.fields?.level0Files, 21)
    assert.deepEqual(observed, [0.25])
  } finally {
    watch.stop()
  }
})
