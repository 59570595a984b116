// RocksDB's compaction threads given a niceness of their own (src/store/background-nice.ts):
// read back from /proc on Linux, flushes left alone, and harmless where it cannot apply.
import { test, mock } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { Store, keepStoreThreadsNiced, niceStoreThreads } from '../../src/store/index.ts'
import type { ThreadPriorityIo } from '../../src/store/index.ts'
import { tempDirectory } from '../support/temp.ts'

/** Each thread of this process: its name and its niceness, read from /proc (not through the code under test). */
function threadsFromProc(): { thread: number; name: string; nice: number }[] {
  const threads: { thread: number; name: string; nice: number }[] = []
  for (const entry of readdirSync('/proc/self/task')) {
    try {
      const name = readFileSync(`/proc/self/task/${entry}/comm`, 'latin1').trimEnd()
      const stat = readFileSync(`/proc/self/task/${entry}/stat`, 'latin1')
      // Fields after the parenthesised name: state is the 3rd field, niceness the 19th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      threads.push({ thread: Number(entry), name, nice: Number(fields[16]) })
    } catch {
      continue // ended meanwhile
    }
  }
  return threads
}

/** A process of fake threads: names, niceness, and an optional refusal. */
function fakeThreads(initial: Record<number, string>, refuse?: (thread: number) => boolean): ThreadPriorityIo & { nice: Map<number, number>; names: Map<number, string> } {
  const names = new Map(Object.entries(initial).map(([thread, name]) => [Number(thread), name]))
  const nice = new Map<number, number>()
  return {
    names,
    nice,
    threads: () => [...names.keys()],
    name: (thread) => names.get(thread),
    getPriority: (thread) => nice.get(thread) ?? 0,
    setPriority(thread, value) {
      if (refuse?.(thread) === true) throw new Error(`EACCES: permission denied, uv_os_setpriority`)
      nice.set(thread, value)
    },
  }
}

test('after a store opens, every RocksDB compaction thread has the niceness given and no other thread changed, flushes included (read from /proc)', { skip: process.platform === 'linux' ? false : 'per-thread niceness is Linux' }, async () => {
  const tmp = tempDirectory()
  const store = await Store.open(path.join(tmp.directory, 'store'))
  try {
    const before = threadsFromProc()
    const compactions = before.filter((thread) => thread.name.startsWith('rocksdb:low'))
    assert.ok(compactions.length >= 1, `RocksDB's compaction thread exists once a store is open: ${JSON.stringify(before)}`)
    assert.ok(before.some((thread) => thread.name.startsWith('rocksdb:high')), `and its flush thread: ${JSON.stringify(before)}`)
    const sweep = niceStoreThreads(7)
    assert.ok(sweep !== undefined)
    assert.equal(sweep.found, compactions.length)
    assert.equal(sweep.failed, 0, sweep.failure)
    const after = threadsFromProc()
    for (const thread of after) {
      if (thread.name.startsWith('rocksdb:low')) assert.ok(thread.nice >= 7, `${thread.name} (${thread.thread}) at niceness ${thread.nice}`)
      else assert.equal(thread.nice, before.find((earlier) => earlier.thread === thread.thread)?.nice ?? thread.nice, `${thread.name} (${thread.thread}) kept its niceness`)
    }
    assert.equal(after.find((thread) => thread.thread === process.pid)?.nice, before.find((thread) => thread.thread === process.pid)?.nice, 'the JavaScript thread keeps its niceness')
    // A second sweep finds them done: nothing to change.
    assert.equal(niceStoreThreads(7)?.changed, 0)
  } finally {
    await store.close()
    tmp.remove()
  }
})

test('a thread already nicer is left alone; only compaction threads (rocksdb:low, rocksdb:bottom) are touched by default', () => {
  const io = fakeThreads({ 1: 'node', 2: 'rocksdb:low', 3: 'rocksdb:bottom', 4: 'libuv-worker', 5: 'rocksdb:high' })
  io.nice.set(3, 12)
  const sweep = niceStoreThreads(5, io)
  assert.deepEqual(sweep, { found: 2, changed: 1, failed: 0 })
  assert.deepEqual([...io.nice.entries()].sort(), [
    [2, 5],
    [3, 12],
  ])
  // Names given: flushes too (what bench/store-stalls.ts --background-nice-threads rocksdb: does).
  assert.deepEqual(niceStoreThreads(5, io, ['rocksdb:']), { found: 3, changed: 1, failed: 0 })
  assert.equal(io.nice.get(5), 5)
})

test('a RocksDB thread started after the first sweep is niced by a later one', () => {
  mock.timers.enable({ apis: ['setInterval'] })
  try {
    const io = fakeThreads({ 1: 'node', 2: 'rocksdb:low', 3: 'rocksdb:high' })
    const lines: string[] = []
    const keeper = keepStoreThreadsNiced({ nice: 5, io, sweepMs: 1000, log: (message) => lines.push(message) })
    assert.equal(io.nice.get(2), 5)
    io.names.set(9, 'rocksdb:bottom')
    assert.equal(io.nice.get(9), undefined)
    mock.timers.tick(1000)
    assert.equal(io.nice.get(9), 5)
    keeper.stop()
    io.names.set(10, 'rocksdb:low')
    mock.timers.tick(5000)
    assert.equal(io.nice.get(10), undefined, 'stopped: no more sweeps')
    assert.equal(io.nice.get(3), undefined, 'the flush thread keeps its niceness')
    assert.deepEqual(lines, ['store threads: 1 RocksDB compaction threads at niceness 5'])
  } finally {
    mock.timers.reset()
  }
})

test('where it cannot apply, a warning and no failure: another platform, no RocksDB thread, a refusal', () => {
  assert.equal(niceStoreThreads(5, null), undefined)
  const warnings: string[] = []
  const log = (message: string, fields: { level: string }): void => {
    if (fields.level === 'warn') warnings.push(message)
  }
  keepStoreThreadsNiced({ nice: 5, io: null, log }).stop()
  assert.match(warnings.at(-1) ?? '', /cannot apply on .* \(no per-thread niceness\)/)
  const none = keepStoreThreadsNiced({ nice: 5, io: fakeThreads({ 1: 'node', 2: 'rocksdb:high' }), log })
  none.stop()
  assert.match(warnings.at(-1) ?? '', /no RocksDB compaction thread found/)
  const refusing = fakeThreads({ 1: 'node', 2: 'rocksdb:low', 3: 'rocksdb:bottom' }, (thread) => thread === 2)
  assert.deepEqual(niceStoreThreads(5, refusing), { found: 2, changed: 1, failed: 1, failure: 'EACCES: permission denied, uv_os_setpriority' })
  const keeper = keepStoreThreadsNiced({ nice: 5, io: refusing, log })
  keeper.stop()
  assert.match(warnings.at(-1) ?? '', /1 of RocksDB's compaction threads refused a niceness of 5: EACCES/)
  assert.throws(() => niceStoreThreads(20, refusing), RangeError)
  assert.throws(() => niceStoreThreads(-1, refusing), RangeError)
})
