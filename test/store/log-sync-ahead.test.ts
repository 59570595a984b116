// RocksDB's log synced ahead of a checkpoint, in the background: started by
// the bytes written unsynced, never two at once, every log file oldest first,
// a log deleted meanwhile skipped, a failure counted and never thrown. A
// latency measure only (durability stays with the checkpoint's synced write).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LogSyncAhead, Store, rocksDbLogFiles } from '../../src/store/index.ts'
import type { LogSyncIo } from '../../src/store/index.ts'
import { tempDirectory } from '../support/temp.ts'

/** An io whose syncs wait until released, recording what was synced. */
function heldIo(names: string[], fail: (file: string) => NodeJS.ErrnoException | undefined = () => undefined) {
  const synced: string[] = []
  const waiting: (() => void)[] = []
  let lists = 0
  const io: LogSyncIo = {
    list: async () => {
      lists++
      return names
    },
    datasync: (file) =>
      new Promise<void>((resolve, reject) => {
        waiting.push(() => {
          const error = fail(file)
          if (error === undefined) {
            synced.push(file)
            resolve()
          } else reject(error)
        })
      }),
  }
  /** Lets every sync run, as many as become waiting, until none is left. */
  const release = async (): Promise<void> => {
    for (let rounds = 0; rounds < 100; rounds++) {
      await new Promise((resolve) => setImmediate(resolve))
      const next = waiting.shift()
      if (next === undefined && rounds > 2) return
      next?.()
    }
  }
  return { io, synced, release, lists: () => lists, waiting: () => waiting.length }
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code })
}

test("RocksDB's log files in a listing, oldest first, by file number", () => {
  assert.deepEqual(rocksDbLogFiles(['000012.log', 'LOG', 'LOG.old.1', 'CURRENT', '1000000.log', '000009.log', '999999.log', '000010.sst', 'MANIFEST-000005', '000011.log.tmp']), ['000009.log', '000012.log', '999999.log', '1000000.log'])
})

test('a sync ahead starts once the unsynced bytes reach the threshold, one at a time, and a synced write starts the count again', async () => {
  const held = heldIo(['000007.log', '000008.log', 'OPTIONS-000005'])
  const ahead = new LogSyncAhead('/store', 100, held.io)
  ahead.written(60)
  assert.equal(held.lists(), 0, 'below the threshold: nothing')
  ahead.synced()
  ahead.written(60)
  assert.equal(held.lists(), 0, 'a synced write made the earlier bytes durable: the count started again')
  ahead.written(40)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(held.lists(), 1, 'the threshold reached: one sync ahead')
  ahead.written(500)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(held.lists(), 1, 'never two at once')
  await held.release()
  await ahead.settled()
  assert.deepEqual(held.synced, ['/store/000007.log', '/store/000008.log'])
  assert.deepEqual(ahead.figures, { syncs: 1, seconds: ahead.figures.seconds, filesGone: 0, failures: 0 })
  ahead.written(100)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(held.lists(), 2, 'the next one once the first finished')
  await held.release()
  await ahead.settled()
  assert.equal(ahead.figures.syncs, 2)
})

test('a sync now (before a checkpoint) waits for the sync in flight, then runs one more; none in flight: runs one', async () => {
  const held = heldIo(['000007.log'])
  const ahead = new LogSyncAhead('/store', 100, held.io)
  ahead.written(100)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(held.lists(), 1)
  let done = false
  const now = ahead.syncNow().then(() => void (done = true))
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(held.lists(), 1, 'waits for the one in flight first (it may predate the latest writes)')
  await held.release()
  await now
  assert.ok(done)
  assert.equal(held.lists(), 2, 'then one more, begun after the call')
  assert.equal(ahead.figures.syncs, 2)
  const alone = ahead.syncNow()
  await held.release()
  await alone
  assert.equal(ahead.figures.syncs, 3)
  await new LogSyncAhead('/store', 0, held.io).syncNow()
  assert.equal(held.lists(), 3, 'a threshold of 0: off, syncNow included')
})

test('a threshold of 0 never syncs ahead', async () => {
  const held = heldIo(['000007.log'])
  const ahead = new LogSyncAhead('/store', 0, held.io)
  ahead.written(1 << 30)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(held.lists(), 0)
})

test('a log deleted between the listing and the open is skipped, the others still synced', async () => {
  const held = heldIo(['000007.log', '000008.log'], (file) => (file.endsWith('000007.log') ? errno('ENOENT') : undefined))
  const ahead = new LogSyncAhead('/store', 1, held.io)
  ahead.written(1)
  await held.release()
  await ahead.settled()
  assert.deepEqual(held.synced, ['/store/000008.log'])
  assert.deepEqual(ahead.figures, { syncs: 1, seconds: ahead.figures.seconds, filesGone: 1, failures: 0 })
})

test('any other failure is counted, never thrown: the checkpoint still does its own synced write', async () => {
  const held = heldIo(['000007.log', '000008.log'], (file) => (file.endsWith('000007.log') ? errno('EIO') : undefined))
  const ahead = new LogSyncAhead('/store', 1, held.io)
  ahead.written(1)
  await held.release()
  await ahead.settled()
  assert.deepEqual(ahead.figures, { syncs: 0, seconds: ahead.figures.seconds, filesGone: 0, failures: 1 })
  ahead.written(1)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(held.lists(), 2, 'a later sync ahead still starts')
  await held.release()
  await ahead.settled()
})

test("a store syncs RocksDB's real log ahead from its unsynced writes, and closes after the sync in flight", async () => {
  const tmp = tempDirectory()
  const store = await Store.open(tmp.directory, { logSyncAheadBytes: 64 * 1024 })
  let closed = false
  try {
    for (let batch = 0; batch < 64; batch++) {
      await store.write(Array.from({ length: 16 }, (_, i) => ({ key: Buffer.from(`k-${batch}-${i}`), value: Buffer.alloc(1024, batch) })), { sync: false })
    }
    await store.close()
    closed = true
    const figures = store.logSyncAheadFigures
    assert.equal(figures.failures, 0)
    assert.ok(figures.syncs >= 1, `${figures.syncs} syncs ahead for 1 MiB written, one per 64 KiB at most`)
    assert.ok(figures.syncs <= 16)
    const reopened = await Store.open(tmp.directory)
    try {
      assert.deepEqual(await reopened.get(Buffer.from('k-63-15')), Buffer.alloc(1024, 63))
    } finally {
      await reopened.close()
    }
  } finally {
    if (!closed) await store.close()
    tmp.remove()
  }
})
