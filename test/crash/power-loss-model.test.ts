import { test } from 'node:test'
import assert from 'node:assert/strict'
import nodeFs, { existsSync, readFileSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import fc from 'fast-check'
import { Store } from '../../src/store/index.ts'
import type { RowWrite } from '../../src/store/index.ts'
import { Wal, resetWal } from '../../src/wal/index.ts'
import { LedgerNode } from '../../src/server/index.ts'
import type { Order } from '../../src/orders/index.ts'
import { MAIN, transfer } from '../support/ledger.ts'
import { PowerLossDisk, PowerLost } from '../support/power-loss.ts'
import { tempDirectory } from '../support/temp.ts'
import { mulberry32 } from './power-loss-harness.ts'

/** The power-loss model itself: reads are RocksDB's, and a loss keeps exactly what it may. */

type Operation =
  | { kind: 'write'; rows: { key: number; value: number | null }[]; sync: boolean }
  | { kind: 'range'; from: number; to: number | null; reverse: boolean; limit: number | undefined }
  | { kind: 'getMany'; keys: number[] }

const keyOf = (n: number): Buffer => Buffer.from([0x10, n])
const valueOf = (n: number): Buffer => Buffer.from(`v${n}`)

const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), rows: fc.array(fc.record({ key: fc.nat({ max: 12 }), value: fc.option(fc.nat({ max: 99 }), { nil: null }) }), { minLength: 1, maxLength: 4 }), sync: fc.boolean() }),
  fc.record({ kind: fc.constant('range' as const), from: fc.nat({ max: 13 }), to: fc.option(fc.nat({ max: 14 }), { nil: null }), reverse: fc.boolean(), limit: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }) }),
  fc.record({ kind: fc.constant('getMany' as const), keys: fc.array(fc.nat({ max: 13 }), { maxLength: 4 }) }),
)

function apply(state: Map<number, number>, rows: readonly { key: number; value: number | null }[]): void {
  for (const row of rows) {
    if (row.value === null) state.delete(row.key)
    else state.set(row.key, row.value)
  }
}

test('power-loss store: reads merge unsynced batches over RocksDB exactly; a loss keeps the synced state plus a prefix of later batches', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(operation, { maxLength: 30 }), fc.nat(), async (operations, seed) => {
      const temp = tempDirectory('tally-power-model-')
      try {
        const disk = new PowerLossDisk({ random: mulberry32(seed) })
        const store = await disk.openStore(temp.directory)
        const model = new Map<number, number>()
        let synced = new Map<number, number>()
        let unsynced: { key: number; value: number | null }[][] = []
        for (const op of operations) {
          if (op.kind === 'write') {
            await store.write(op.rows.map((row): RowWrite => ({ key: keyOf(row.key), value: row.value === null ? null : valueOf(row.value) })), { sync: op.sync })
            apply(model, op.rows)
            if (op.sync) {
              synced = new Map(model)
              unsynced = []
            } else unsynced.push(op.rows)
          } else if (op.kind === 'getMany') {
            const got = await store.getMany(op.keys.map(keyOf))
            assert.deepEqual(got.map((value) => value?.toString()), op.keys.map((key) => (model.has(key) ? `v${model.get(key)}` : undefined)))
            assert.deepEqual(store.getManySync(op.keys.map(keyOf)), got)
          } else {
            const rows: string[] = []
            for await (const [key, value] of store.range({ gte: keyOf(op.from), ...(op.to === null ? {} : { lt: keyOf(op.to) }), reverse: op.reverse, ...(op.limit === undefined ? {} : { limit: op.limit }) })) rows.push(`${key[1]}=${value.toString()}`)
            let expected = [...model].filter(([key]) => key >= op.from && (op.to === null || key < op.to)).sort(([a], [b]) => a - b)
            if (op.reverse) expected.reverse()
            if (op.limit !== undefined) expected = expected.slice(0, op.limit)
            assert.deepEqual(rows, expected.map(([key, value]) => `${key}=v${value}`))
          }
        }
        const outcome = await disk.restorePower()
        const reopened = await Store.open(temp.directory)
        try {
          const survived = new Map<number, string>()
          for await (const [key, value] of reopened.range({ gte: Buffer.of(0x10), lt: Buffer.of(0x11) })) survived.set(key[1] as number, value.toString())
          const kept = new Map(synced)
          for (const batch of unsynced.slice(0, outcome.storeBatchesKept)) apply(kept, batch)
          assert.equal(outcome.storeBatchesKept + outcome.storeBatchesDropped, unsynced.length)
          assert.deepEqual(survived, new Map([...kept].map(([key, value]) => [key, `v${value}`])))
        } finally {
          await reopened.close()
        }
      } finally {
        temp.remove()
      }
    }),
    { numRuns: 20 },
  )
})

test('power-loss WAL: synced entries always survive; unsynced ones are dropped, kept or torn, never reordered', async () => {
  const fates = new Set<string>()
  for (let seed = 1; seed <= 24; seed++) {
    const temp = tempDirectory('tally-power-model-')
    try {
      const disk = new PowerLossDisk({ random: mulberry32(seed) })
      const directory = path.join(temp.directory, 'wal')
      const synced = await Wal.open({ directory, io: disk.walIo })
      for (let i = 0; i < 5; i++) synced.wal.append({ epoch: 0, type: 1, payload: Buffer.from(`entry ${i}`) })
      await synced.wal.flush()
      await synced.wal.close()
      // The same log, now without fdatasync: its next entries reach the page cache only.
      const unsynced = await Wal.open({ directory, io: disk.walIo, sync: false })
      for (let i = 5; i < 10; i++) unsynced.wal.append({ epoch: 0, type: 1, payload: Buffer.from(`entry ${i}`) })
      await unsynced.wal.flush()
      await unsynced.wal.close()
      const outcome = await disk.restorePower()
      const { wal, recovery } = await Wal.open({ directory })
      try {
        assert.ok(wal.head >= 5 && wal.head <= 10, `head ${wal.head}`)
        let index = 0
        for await (const record of wal.read(1)) assert.equal(Buffer.from(record.payload).toString(), `entry ${index++}`)
        assert.equal(index, wal.head)
        fates.add(wal.head === 5 ? 'dropped' : wal.head === 10 ? 'kept' : 'partly kept')
        if (recovery.truncatedTornBytes > 0) fates.add('torn')
        assert.ok(outcome.walBytesDropped >= 0)
      } finally {
        await wal.close()
      }
    } finally {
      temp.remove()
    }
  }
  assert.deepEqual([...fates].sort(), ['dropped', 'kept', 'partly kept', 'torn'])
})

test('power-loss WAL with zeros written ahead: a lost overwrite brings the zeros back; what survives is a prefix of the writes, in order', async () => {
  const fates = new Set<string>()
  for (let seed = 1; seed <= 32; seed++) {
    const temp = tempDirectory('tally-power-model-')
    try {
      const disk = new PowerLossDisk({ random: mulberry32(seed) })
      const directory = path.join(temp.directory, 'd')
      await mkdir(directory)
      const file = path.join(directory, 'f')
      const handle = await disk.walIo.open(file, 'wx')
      await disk.walIo.syncDirectory(directory)
      await disk.walIo.write(handle, [Buffer.from('durable|')], 0)
      await disk.walIo.preallocate(handle, 8, 24) // zeros, then a sync of the whole file
      // Unsynced: two overwrites of the zeros, then an append past them.
      await disk.walIo.write(handle, [Buffer.from('first|')], 8)
      await disk.walIo.write(handle, [Buffer.from('second|')], 14)
      await disk.walIo.write(handle, [Buffer.from('appended')], 32)
      await handle.close()
      const outcome = await disk.restorePower()
      const image = readFileSync(file)
      const survived = (text: string, at: number): boolean => image.subarray(at, at + text.length).toString() === text
      assert.ok(survived('durable|', 0), 'the synced bytes stay')
      assert.ok(image.byteLength >= 32, `size ${image.byteLength}: the preallocated size stays`)
      // Writes reach the disk as a prefix, in order: a later one never without the earlier ones
      // (garbage may only replace bytes from the loss point on).
      if (survived('appended', 32)) assert.ok(survived('first|second|', 8))
      if (survived('second|', 14)) assert.ok(survived('first|', 8))
      // Bytes no write touched keep their zeros, unless garbage landed at the loss point just before them.
      if (survived('second|', 14)) assert.ok(image.subarray(21, 32).every((byte) => byte === 0))
      if (image.byteLength === 32 && image.subarray(8).every((byte) => byte === 0)) fates.add('none kept')
      else if (survived('appended', 32)) fates.add('all kept')
      else fates.add('prefix kept')
      if (outcome.walTornFiles > 0 && !survived('appended', 32)) fates.add('torn')
    } finally {
      temp.remove()
    }
  }
  assert.deepEqual([...fates].sort(), ['all kept', 'none kept', 'prefix kept', 'torn'])
})

test('power-loss directories: entries created or deleted since the last directory fsync survive as a prefix, in order', async () => {
  const seen = new Set<string>()
  for (let seed = 1; seed <= 16; seed++) {
    const temp = tempDirectory('tally-power-model-')
    try {
      const disk = new PowerLossDisk({ random: mulberry32(seed) })
      const directory = path.join(temp.directory, 'd')
      await mkdir(directory)
      const old = path.join(directory, 'old')
      const handle = await disk.walIo.open(old, 'wx')
      await disk.walIo.write(handle, [Buffer.from('durable')], 0)
      await disk.walIo.sync(handle)
      await handle.close()
      await disk.walIo.syncDirectory(directory)
      const fresh = path.join(directory, 'fresh')
      await (await disk.walIo.open(fresh, 'wx')).close()
      await disk.walIo.unlink(old)
      disk.failAtOperation(1)
      await assert.rejects(disk.walIo.syncDirectory(directory), PowerLost)
      await assert.rejects(disk.walIo.unlink(fresh), PowerLost, 'nothing reaches the disk after the loss')
      await disk.restorePower()
      seen.add(existsSync(fresh) ? 'fresh kept' : 'fresh vanished')
      if (existsSync(old)) {
        assert.equal(readFileSync(old, 'utf8'), 'durable')
        seen.add('old came back')
      } else {
        seen.add('old stayed deleted')
        assert.ok(existsSync(fresh), 'the deletion survived, so the earlier creation did too')
      }
    } finally {
      temp.remove()
    }
  }
  assert.deepEqual([...seen].sort(), ['fresh kept', 'fresh vanished', 'old came back', 'old stayed deleted'])
})

/** Sizes of the files of a directory: what a mutating operation changes. */
async function snapshot(directory: string): Promise<string> {
  const { readdir, stat } = await import('node:fs/promises')
  const names = (await readdir(directory)).sort()
  const sizes = await Promise.all(names.map(async (name) => `${name}:${(await stat(path.join(directory, name))).size}`))
  return sizes.join(' ')
}

test('WalIo sweep: every change the WAL makes to its files goes through its io (the power-loss model sees them all)', async () => {
  const temp = tempDirectory('tally-power-model-')
  try {
    const directory = path.join(temp.directory, 'wal')
    await mkdir(directory)
    let expected = await snapshot(directory)
    const kinds = new Set<string>()
    const real = new PowerLossDisk({ random: mulberry32(1) }).walIo
    // Between two io calls the directory must not change: nothing bypasses the io. The WAL may run
    // calls at once (a zero fill beside a recycle's unlink), so the watch runs them one at a time:
    // otherwise a snapshot could list a file another call is deleting (ENOENT), or see its change.
    let running: Promise<unknown> = Promise.resolve()
    const watched = Object.fromEntries(
      Object.entries(real).map(([kind, operation]) => [
        kind,
        (...args: unknown[]) => {
          const call = running.then(async () => {
            assert.equal(await snapshot(directory), expected, `the WAL changed its files outside io before ${kind}`)
            kinds.add(kind)
            const result: unknown = await (operation as (...a: unknown[]) => Promise<unknown>)(...args)
            expected = await snapshot(directory)
            return result
          })
          running = call.catch(() => undefined)
          return call
        },
      ]),
    ) as unknown as typeof real
    let { wal } = await Wal.open({ directory, io: watched, segmentBytesMax: 256, preallocateBytes: 128 })
    for (let i = 0; i < 40; i++) wal.append({ epoch: 0, type: 1, payload: Buffer.alloc(20, i) })
    await wal.flush()
    await wal.recycle(20)
    await wal.truncateAfter(30)
    await wal.close()
    assert.equal(await snapshot(directory), expected)
    // A torn tail: recovery truncates it through io.
    const { appendFile } = await import('node:fs/promises')
    const last = (await (await import('node:fs/promises')).readdir(directory)).sort().at(-1) as string
    await appendFile(path.join(directory, last), Buffer.alloc(7, 1))
    expected = await snapshot(directory)
    ;({ wal } = await Wal.open({ directory, io: watched, segmentBytesMax: 256, preallocateBytes: 128 }))
    await wal.close()
    await resetWal({ directory, head: 100, io: watched })
    assert.equal(await snapshot(directory), expected)
    assert.deepEqual([...kinds].sort(), ['open', 'preallocate', 'sync', 'syncDirectory', 'truncate', 'unlink', 'write'])
  } finally {
    temp.remove()
  }
})

test('the real WalIo really syncs: one fdatasync per group and per zero fill, a directory fsync per segment created (what the model takes on trust)', async () => {
  const temp = tempDirectory('tally-power-model-')
  const { open } = await import('node:fs/promises')
  const probe = await open(temp.directory, 'r')
  const prototype = Object.getPrototypeOf(probe) as { datasync: () => Promise<void>; sync: () => Promise<void> }
  await probe.close()
  const { datasync, sync } = prototype
  const { fdatasync } = nodeFs
  // A group's fdatasync goes through fs.fdatasync on the handle's fd (the callback API), a zero fill's through the handle.
  const calls = { datasync: 0, sync: 0, fdatasync: 0 }
  const patched = nodeFs as { fdatasync: (fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => void }
  patched.fdatasync = (fd, callback) => {
    calls.fdatasync += 1
    fdatasync(fd, callback)
  }
  syncBuiltinESMExports()
  prototype.datasync = function (this: unknown) {
    calls.datasync += 1
    return datasync.call(this)
  }
  prototype.sync = function (this: unknown) {
    calls.sync += 1
    return sync.call(this)
  }
  try {
    const { wal } = await Wal.open({ directory: path.join(temp.directory, 'wal'), segmentBytesMax: 256, preallocateBytes: 256 })
    await wal.flush() // lets the first zero fill start
    const before = { ...calls, groups: wal.counters.groupCount, directorySyncs: wal.counters.directorySyncCount, fills: wal.counters.preallocateCount }
    for (let group = 0; group < 6; group++) {
      wal.append({ epoch: 0, type: 1, payload: Buffer.alloc(100, group) })
      await wal.flush()
    }
    assert.ok(wal.segmentCount > 2, 'the groups rolled segments')
    await wal.close()
    assert.ok(wal.counters.preallocateCount - before.fills >= 2, 'zero fills ran')
    assert.equal(calls.fdatasync - before.fdatasync, wal.counters.groupCount - before.groups, 'one real fdatasync per group')
    assert.equal(calls.datasync - before.datasync, wal.counters.preallocateCount - before.fills, 'one real fdatasync per zero fill')
    assert.equal(calls.sync - before.sync, wal.counters.directorySyncCount - before.directorySyncs, 'one real directory fsync per segment created')
    assert.ok(calls.sync - before.sync >= 2)
  } finally {
    prototype.datasync = datasync
    prototype.sync = sync
    nodeFs.fdatasync = fdatasync
    syncBuiltinESMExports()
    temp.remove()
  }
})

test('a node with the real WalIo really syncs each WAL group: its own sync hook (timed for metrics) calls fs.fdatasync', async () => {
  const temp = tempDirectory('tally-power-model-node-')
  const { fdatasync } = nodeFs
  let calls = 0
  const patched = nodeFs as { fdatasync: (fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => void }
  patched.fdatasync = (fd, callback) => {
    calls += 1
    fdatasync(fd, callback)
  }
  syncBuiltinESMExports()
  const once = { atomic: true, continueOnFailure: false }
  try {
    const node = await LedgerNode.open({ dataDirectory: temp.directory })
    try {
      await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger: MAIN, bucket: '_default', metadata: {}, features: {} } as Order }], once)
      const before = { calls, groups: node.wal.counters.groupCount }
      for (let write = 0; write < 5; write++) {
        const [result] = await node.admission.submit([{ order: transfer('world', `users:${write}`, 7n) }], once)
        assert.equal(result?.status, 'applied')
      }
      const groups = node.wal.counters.groupCount - before.groups
      assert.ok(groups >= 5, 'one group per lone write')
      assert.equal(calls - before.calls, groups, 'one real fdatasync per group')
    } finally {
      await node.close()
    }
  } finally {
    patched.fdatasync = fdatasync
    syncBuiltinESMExports()
    temp.remove()
  }
})

/** The real store, with the options of its RocksDB batch writes recorded. */
class RecordedStore extends Store {
  readonly batchOptions: unknown[] = []

  static async openRecorded(directory: string): Promise<RecordedStore> {
    const store = new RecordedStore(await Store.openDatabase(directory), directory)
    type Batch = { write: (options: unknown) => Promise<void> }
    const db = store.db as unknown as { batch: () => Batch }
    const batch = db.batch.bind(db)
    db.batch = () => {
      const made = batch()
      const write = made.write.bind(made)
      made.write = (options) => {
        store.batchOptions.push(options)
        return write(options)
      }
      return made
    }
    return store
  }
}

test('the real Store passes `sync` to RocksDB (what the model takes on trust)', async () => {
  const temp = tempDirectory('tally-power-model-')
  try {
    const store = await RecordedStore.openRecorded(temp.directory)
    await store.write([{ key: keyOf(1), value: valueOf(1) }], { sync: false })
    await store.write([{ key: keyOf(2), value: valueOf(2) }], { sync: true })
    await store.close()
    assert.deepEqual(store.batchOptions, [{ sync: false }, { sync: true }])
  } finally {
    temp.remove()
  }
})
