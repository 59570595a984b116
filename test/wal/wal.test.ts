import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { TallyError, InvariantViolation } from '../../src/domain/index.ts'
import {
  Wal,
  WalError,
  resetWal,
  segmentFileName,
  entryOverheadBytes,
  pendingGroupsMax,
  type WalIo,
  type WalOptions,
  type WalRecord,
} from '../../src/wal/index.ts'
import { payloadOf } from './fixtures/writer.ts'

const here = path.dirname(fileURLToPath(import.meta.url))

function temporaryDirectory(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tally-wal-'))
}

async function withDirectory(body: (directory: string) => Promise<void>): Promise<void> {
  const directory = temporaryDirectory()
  try {
    await body(directory)
  } finally {
    fs.rmSync(directory, { recursive: true, force: true })
  }
}

function payloadFor(index: number, length = index % 50): Uint8Array {
  const payload = new Uint8Array(length)
  for (let i = 0; i < length; i += 1) payload[i] = (index + i * 7) & 0xff
  return payload
}

async function collect(iterable: AsyncIterable<WalRecord>): Promise<WalRecord[]> {
  const records: WalRecord[] = []
  for await (const record of iterable) records.push(record)
  return records
}

function appendMany(wal: Wal, count: number, epoch = 1): number[] {
  const indexes: number[] = []
  for (let i = 0; i < count; i += 1) {
    const index = wal.head + 1
    indexes.push(wal.append({ epoch, type: index % 256, payload: payloadFor(index) }))
  }
  return indexes
}

function assertRecords(records: WalRecord[], from: number, to: number): void {
  assert.equal(records.length, Math.max(0, to - from + 1), `records ${from}..${to}`)
  records.forEach((record, k) => {
    const index = from + k
    assert.equal(record.index, index)
    assert.equal(record.type, index % 256)
    assert.deepEqual(record.payload, payloadFor(index))
  })
}

function segmentFiles(directory: string): string[] {
  return fs.readdirSync(directory).filter((name) => name.endsWith('.wal')).sort()
}

function expectWalError(reason: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof WalError, `a WalError, got ${String(error)}`)
    assert.ok(error instanceof TallyError)
    assert.equal(error.reason, reason)
    return true
  }
}

/** An io whose syncs wait for the test to release them: holds a group in flight without sleeping. */
function gatedIo(): { io: Partial<WalIo>; release: () => void; waiting: () => number } {
  let gates: Array<() => void> = []
  return {
    io: {
      sync: (handle) =>
        new Promise<void>((resolve, reject) => {
          gates.push(() => {
            handle.datasync().then(resolve, reject)
          })
        }),
    },
    release: () => {
      const open = gates
      gates = []
      for (const gate of open) gate()
    },
    waiting: () => gates.length,
  }
}

/** Resolves once `predicate()` holds, checking after each turn of the event loop (no timers). */
async function until(predicate: () => boolean): Promise<void> {
  for (let turns = 0; turns < 100_000; turns += 1) {
    if (predicate()) return
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
  assert.fail('condition never held')
}

test('a new WAL is empty: head, durable and tail are 0 and the first segment is 1', async () => {
  await withDirectory(async (directory) => {
    const { wal, recovery } = await Wal.open({ directory })
    assert.deepEqual(recovery, { head: 0, tail: 0, truncatedTornBytes: 0, zeroTailBytes: 0, segments: 1 })
    assert.equal(wal.head, 0)
    assert.equal(wal.durable, 0)
    assert.equal(wal.tail, 0)
    assert.deepEqual(segmentFiles(directory), ['00000000000000000001.wal'])
    assert.equal(await wal.flush(), 0)
    assert.deepEqual(await collect(wal.read(1)), [])
    await wal.close()
  })
})

test('round trip across segment rolls; segments are named by their first index', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, segmentBytesMax: 1024, sync: false })
    const indexes = appendMany(wal, 500)
    assert.deepEqual(indexes, Array.from({ length: 500 }, (_, k) => k + 1))
    assert.equal(wal.head, 500)
    assert.equal(wal.durable, 0, 'append alone makes nothing durable')
    assert.equal(await wal.flush(), 500)
    assert.ok(wal.segmentCount > 10, `rolled into ${wal.segmentCount} segments`)
    const files = segmentFiles(directory)
    assert.equal(files.length, wal.segmentCount)
    for (const file of files) assert.ok(fs.statSync(path.join(directory, file)).size <= 1024, `${file} within segmentBytesMax`)
    assertRecords(await collect(wal.read(1)), 1, 500)
    // every segment file starts with the entry its name announces
    const records = await collect(wal.read(1))
    for (const file of files) {
      const first = Number(file.slice(0, 20))
      assert.ok(records.some((record) => record.index === first))
    }
    await wal.close()
  })
})

test('indexKeepingBytes: recycling up to it keeps the newest segments whose bytes stay within the bound, plus the one that crosses it goes', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, segmentBytesMax: 1024, sync: false })
    appendMany(wal, 500)
    await wal.flush()
    const sizes = segmentFiles(directory).map((file) => ({ first: Number(file.slice(0, 20)), bytes: fs.statSync(path.join(directory, file)).size }))
    assert.equal(wal.indexKeepingBytes(Number.MAX_SAFE_INTEGER), 0, 'everything fits: nothing may go')
    for (const bound of [0, 1, 1023, 1024, 2500, 5000]) {
      // The reference: from the newest segment, the first whose bytes take the sum over the bound ends what may go.
      let kept = 0
      let expected = 0
      for (let at = sizes.length - 1; at >= 0; at--) {
        kept += (sizes[at] as { bytes: number }).bytes
        if (kept > bound) {
          expected = at + 1 < sizes.length ? (sizes[at + 1] as { first: number }).first - 1 : wal.head
          break
        }
      }
      assert.equal(wal.indexKeepingBytes(bound), expected, `bound ${bound}`)
    }
    const tail = await wal.recycle(wal.indexKeepingBytes(2500))
    const left = segmentFiles(directory).slice(0, -1).reduce((sum, file) => sum + fs.statSync(path.join(directory, file)).size, 0)
    assert.ok(left <= 2500, `${left} bytes kept below the open segment`)
    assert.ok(tail > 0)
    await wal.close()
  })
})

test('reopen after close keeps every record and continues the index sequence', async () => {
  await withDirectory(async (directory) => {
    const first = await Wal.open({ directory, segmentBytesMax: 2048 })
    appendMany(first.wal, 300)
    await first.wal.close()
    assert.throws(() => first.wal.append({ epoch: 1, type: 0, payload: new Uint8Array() }), expectWalError('CLOSED'))

    const second = await Wal.open({ directory, segmentBytesMax: 2048 })
    assert.equal(second.recovery.head, 300)
    assert.equal(second.recovery.tail, 0)
    assert.equal(second.recovery.truncatedTornBytes, 0)
    assert.equal(second.recovery.segments, segmentFiles(directory).length)
    assert.equal(second.wal.durable, 300)
    assert.equal(second.wal.epochHead, 1)
    assert.equal(second.wal.append({ epoch: 2, type: 301 % 256, payload: payloadFor(301) }), 301)
    await second.wal.close()

    const third = await Wal.open({ directory })
    assertRecords(await collect(third.wal.read(1)), 1, 301)
    assert.equal(third.wal.epochHead, 2)
    await third.wal.close()
  })
})

test('property: a tear anywhere inside the last entry is truncated away on open', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 0, max: 10_000 }),
      fc.constantFrom('cut', 'garbage', 'zeros'),
      fc.integer({ min: 0, max: 255 }),
      async (count, cutSeed, damage, garbageByte) => {
        await withDirectory(async (directory) => {
          const { wal } = await Wal.open({ directory, segmentBytesMax: 4096, sync: false })
          appendMany(wal, count)
          await wal.close()
          const last = path.join(directory, segmentFiles(directory).at(-1) ?? '')
          const size = fs.statSync(last).size
          const lastEntryBytes = entryOverheadBytes + payloadFor(count).length
          const entryStart = size - lastEntryBytes
          const cut = entryStart + (cutSeed % lastEntryBytes) // keeps [0, lastEntryBytes) bytes of it
          let tornBytes: number
          if (damage === 'cut') {
            fs.truncateSync(last, cut)
            tornBytes = cut - entryStart
          } else if (damage === 'garbage') {
            // overwrite the entry's bytes from `cut` on: a CRC failure that ends exactly at EOF
            const image = fs.readFileSync(last)
            const flip = image[cut] === garbageByte ? garbageByte ^ 0xff : garbageByte
            image.fill(flip, cut, cut + 1)
            fs.writeFileSync(last, image)
            tornBytes = lastEntryBytes
          } else {
            // a zero-filled extension after the torn entry (file size persisted, data not)
            fs.truncateSync(last, cut)
            fs.appendFileSync(last, Buffer.alloc(1 + (cutSeed % 300)))
            // What is left of the entry may be zeros only (a cut at its first byte, or a prefix of zero bytes):
            // then nothing distinguishes it from a preallocated region, which is kept as the segment's end.
            const zerosOnly = fs.readFileSync(last).subarray(entryStart).every((byte) => byte === 0)
            tornBytes = zerosOnly ? 0 : fs.statSync(last).size - entryStart
          }
          const sizeDamaged = fs.statSync(last).size
          const reopened = await Wal.open({ directory })
          const lost = 1 // the last entry is always gone (a cut at its first byte removes it whole, tearing nothing)
          assert.equal(reopened.recovery.head, count - lost)
          assert.equal(reopened.recovery.truncatedTornBytes, tornBytes)
          assert.equal(reopened.recovery.zeroTailBytes, damage === 'zeros' && tornBytes === 0 ? sizeDamaged - entryStart : 0)
          assertRecords(await collect(reopened.wal.read(1)), 1, count - lost)
          const index = reopened.wal.append({ epoch: 1, type: count % 256, payload: payloadFor(count) })
          assert.equal(index, count - lost + 1)
          await reopened.wal.close()
          const again = await Wal.open({ directory })
          assert.equal(again.recovery.truncatedTornBytes, 0)
          assertRecords(await collect(again.wal.read(1)), 1, count - lost + 1)
          await again.wal.close()
        })
      },
    ),
    { numRuns: 60 },
  )
})

test('a CRC failure in the middle of a segment refuses to open, naming the file and offset', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory })
    appendMany(wal, 20)
    await wal.close()
    const file = path.join(directory, segmentFileName(1))
    const image = fs.readFileSync(file)
    const entry3Offset = [1, 2].reduce((offset, index) => offset + entryOverheadBytes + payloadFor(index).length, 0)
    image[entry3Offset + 18] = (image[entry3Offset + 18] ?? 0) ^ 0x01 // inside entry 3's header
    fs.writeFileSync(file, image)
    await assert.rejects(Wal.open({ directory }), (error: unknown) => {
      expectWalError('CORRUPTION')(error)
      assert.ok(error instanceof WalError)
      assert.equal(error.details?.file, file)
      assert.equal(error.details?.offset, String(entry3Offset))
      assert.match(error.message, new RegExp(`${segmentFileName(1)} at offset ${entry3Offset}`))
      return true
    })
    assert.equal(fs.readFileSync(file).length, image.length, 'nothing was truncated')
  })
})

test('damage in the last entry of a segment that is not the last refuses to open', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, segmentBytesMax: 512, sync: false })
    appendMany(wal, 60)
    await wal.close()
    const files = segmentFiles(directory)
    assert.ok(files.length >= 3)
    const middle = path.join(directory, files[1] ?? '')
    const size = fs.statSync(middle).size
    fs.truncateSync(middle, size - 1)
    await assert.rejects(Wal.open({ directory }), (error: unknown) => {
      expectWalError('CORRUPTION')(error)
      assert.match(String(error), /not the last/)
      return true
    })
  })
})

test('a damaged entry followed by a valid one in the last segment is corruption, not a torn tail', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory })
    appendMany(wal, 10)
    await wal.close()
    const file = path.join(directory, segmentFileName(1))
    const image = fs.readFileSync(file)
    // corrupt entry 9's length field so that it appears to run past EOF
    const entry9Offset = Array.from({ length: 8 }, (_, k) => k + 1).reduce((o, i) => o + entryOverheadBytes + payloadFor(i).length, 0)
    image.writeUInt32LE(0x7fff_ffff, entry9Offset + 17)
    fs.writeFileSync(file, image)
    await assert.rejects(Wal.open({ directory }), (error: unknown) => {
      expectWalError('CORRUPTION')(error)
      assert.match(String(error), /followed by a valid entry/)
      return true
    })
  })
})

test('a missing middle segment (index gap) refuses to open', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, segmentBytesMax: 512, sync: false })
    appendMany(wal, 60)
    await wal.close()
    const files = segmentFiles(directory)
    fs.unlinkSync(path.join(directory, files[1] ?? ''))
    await assert.rejects(Wal.open({ directory }), (error: unknown) => {
      expectWalError('CORRUPTION')(error)
      assert.match(String(error), /previous segment ends/)
      return true
    })
  })
})

test('an entry whose index does not follow its predecessor is corruption', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, segmentBytesMax: 512, sync: false })
    appendMany(wal, 60)
    await wal.close()
    const files = segmentFiles(directory)
    // rename the second segment: its entries no longer match the name
    const second = files[1] ?? ''
    const shifted = segmentFileName(Number(second.slice(0, 20)) + 1)
    fs.renameSync(path.join(directory, second), path.join(directory, shifted))
    await assert.rejects(Wal.open({ directory }), expectWalError('CORRUPTION'))
  })
})

test('group commit: one flush of 10k small records is one write and one fsync; concurrent flushes share it', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory })
    const before = wal.counters
    for (let i = 0; i < 10_000; i += 1) wal.append({ epoch: 1, type: 0, payload: new Uint8Array(100) })
    const results = await Promise.all(Array.from({ length: 50 }, () => wal.flush()))
    assert.deepEqual(new Set(results), new Set([10_000]))
    const after = wal.counters
    assert.equal(after.groupCount - before.groupCount, 1)
    assert.equal(after.writeCount - before.writeCount, 1)
    assert.equal(after.syncCount - before.syncCount, 1)
    assert.equal(after.appendCount, 10_000)
    assert.equal(after.bytesWritten, 10_000 * (entryOverheadBytes + 100))
    await wal.close()
  })
})

test('group commit: appends made while a group is in flight go into the next group', async () => {
  await withDirectory(async (directory) => {
    const gate = gatedIo()
    const { wal } = await Wal.open({ directory, io: gate.io })
    const durableSeen: number[] = []
    wal.append({ epoch: 1, type: 0, payload: new Uint8Array(10) })
    const first = wal.flush().then((durable) => durableSeen.push(durable))
    await until(() => gate.waiting() === 1) // group 1 (index 1) is now waiting for its fsync
    appendMany(wal, 100)
    const concurrent = Array.from({ length: 20 }, () => wal.flush().then((durable) => durableSeen.push(durable)))
    const waits = [wal.waitDurable(50), wal.waitDurable(101)]
    assert.equal(wal.durable, 0)
    gate.release()
    await first
    assert.deepEqual(durableSeen, [1], 'the first flush resolves with group 1 only')
    await until(() => gate.waiting() === 1)
    assert.equal(wal.counters.groupCount, 1)
    gate.release()
    await Promise.all([...concurrent, ...waits])
    assert.deepEqual(new Set(durableSeen.slice(1)), new Set([101]))
    assert.equal(wal.counters.groupCount, 2, '1 + 100 appends and 22 waiters → 2 groups')
    assert.equal(wal.counters.syncCount, 2)
    await wal.close()
  })
})

test('groupBytesMax bounds one write: a large backlog is split into bounded groups', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, groupBytesMax: 4096, sync: false })
    const written: number[] = []
    appendMany(wal, 200) // ~200 × 50 bytes ≈ 10 KiB
    const unsubscribe = wal.onDurable((from, to) => written.push(to - from + 1))
    await wal.flush()
    unsubscribe()
    assert.ok(written.length >= 3, `split into ${written.length} groups`)
    assert.equal(
      written.reduce((a, b) => a + b, 0),
      200,
    )
    await wal.close()
  })
})

test('the pending buffer is bounded: appends beyond 4× groupBytesMax throw RESOURCE_EXHAUSTED', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, groupBytesMax: 1024, sync: false })
    const payload = new Uint8Array(100 - entryOverheadBytes)
    for (let i = 0; i < 40; i += 1) wal.append({ epoch: 1, type: 0, payload }) // exactly 4096 bytes
    assert.throws(
      () => wal.append({ epoch: 1, type: 0, payload }),
      (error: unknown) => {
        expectWalError('RESOURCE_EXHAUSTED')(error)
        assert.ok(error instanceof TallyError)
        assert.equal(error.code, 'RESOURCE_EXHAUSTED')
        assert.equal(error.kind, 'unavailable')
        return true
      },
    )
    assert.equal(wal.head, 40, 'the refused append took no index')
    await wal.flush()
    assert.equal(wal.append({ epoch: 1, type: 0, payload }), 41, 'room again after a flush')
    assert.throws(() => wal.append({ epoch: 1, type: 0, payload: new Uint8Array(1024) }), expectWalError('RECORD_TOO_LARGE'))
    await wal.close()
  })
})

test('a write or fsync failure is fatal: waiters fail, appends and flushes are refused', async () => {
  await withDirectory(async (directory) => {
    let failNext = false
    const io: Partial<WalIo> = {
      sync: async (handle) => {
        if (failNext) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' })
        await handle.datasync()
      },
    }
    const { wal } = await Wal.open({ directory, io })
    appendMany(wal, 5)
    await wal.flush()
    failNext = true
    appendMany(wal, 5)
    const waiting = wal.waitDurable(8)
    await assert.rejects(wal.flush(), expectWalError('FAILED'))
    await assert.rejects(waiting, expectWalError('FAILED'))
    assert.equal(wal.durable, 5, 'never pretends durability')
    assert.throws(() => wal.append({ epoch: 1, type: 0, payload: new Uint8Array() }), expectWalError('FAILED'))
    await assert.rejects(wal.flush(), expectWalError('FAILED'))
    await assert.rejects(wal.close(), expectWalError('FAILED'))
    const reopened = await Wal.open({ directory })
    assert.ok(reopened.recovery.head >= 5, 'the durable prefix survives')
    await reopened.wal.close()
  })
})

test('a failing write is fatal too', async () => {
  await withDirectory(async (directory) => {
    const io: Partial<WalIo> = {
      write: async () => {
        throw new Error('ENOSPC: injected')
      },
    }
    const { wal } = await Wal.open({ directory, io })
    appendMany(wal, 3)
    await assert.rejects(wal.flush(), (error: unknown) => {
      expectWalError('FAILED')(error)
      assert.match(String((error as Error).cause), /ENOSPC/)
      return true
    })
    await assert.rejects(wal.close(), expectWalError('FAILED'))
  })
})

test('short writes are completed', async () => {
  await withDirectory(async (directory) => {
    const io: Partial<WalIo> = {
      write: async (handle, buffers, position) => {
        const first = buffers[0]
        assert.ok(first !== undefined)
        const part = first.subarray(0, Math.max(1, Math.floor(first.byteLength / 3)))
        const { bytesWritten } = await handle.write(part, 0, part.byteLength, position)
        return bytesWritten
      },
    }
    const { wal } = await Wal.open({ directory, io })
    appendMany(wal, 30)
    await wal.flush()
    assert.ok(wal.counters.writeCount > 1)
    await wal.close()
    const reopened = await Wal.open({ directory })
    assertRecords(await collect(reopened.wal.read(1)), 1, 30)
    await reopened.wal.close()
  })
})

// A group written at once (its count returned as a number, as the JavaScript-thread write does) has
// its fdatasync called in the same synchronous run: a microtask queued meanwhile (a single node's
// early apply) runs while the sync does, not before it starts. Short writes of that kind too.
test('a write that returns its count at once is followed by its sync before any microtask queued meanwhile', async () => {
  await withDirectory(async (directory) => {
    let microtaskRan = false
    const seenAtSync: boolean[] = []
    const io: Partial<WalIo> = {
      write: (handle, buffers, position) => {
        const first = buffers[0]
        assert.ok(first !== undefined)
        // Short: a third of the first buffer, so the group takes several such writes.
        return fs.writeSync(handle.fd, first, 0, Math.max(1, Math.floor(first.byteLength / 3)), position)
      },
      async sync(handle) {
        seenAtSync.push(microtaskRan)
        await handle.datasync()
      },
    }
    const { wal } = await Wal.open({ directory, io })
    appendMany(wal, 5)
    const flushed = wal.flush()
    queueMicrotask(() => (microtaskRan = true))
    await flushed
    assert.deepEqual(seenAtSync, [false], 'one group, synced before the microtask ran')
    assert.ok(wal.counters.writeCount > 1, 'short writes completed')
    await wal.close()
    const reopened = await Wal.open({ directory })
    assertRecords(await collect(reopened.wal.read(1)), 1, 5)
    await reopened.wal.close()
  })
})

test('read returns durable ranges only, across segments, and refuses recycled indexes', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, segmentBytesMax: 600, sync: false })
    appendMany(wal, 400)
    await wal.flush()
    appendMany(wal, 10) // not durable
    assertRecords(await collect(wal.read(1, 1)), 1, 1)
    assertRecords(await collect(wal.read(37, 290)), 37, 290)
    assertRecords(await collect(wal.read(399)), 399, 400)
    assertRecords(await collect(wal.read(390, 10_000)), 390, 400)
    assert.deepEqual(await collect(wal.read(401)), [], 'non-durable entries are not served')
    assert.deepEqual(await collect(wal.read(300, 299)), [])
    const range = wal.read(100, 120) // bounds fixed at call time
    await wal.flush()
    assertRecords(await collect(range), 100, 120)
    assertRecords(await collect(wal.read(395)), 395, 410)
    const tail = await wal.recycle(200)
    assert.ok(tail > 0 && tail <= 200)
    assert.throws(() => wal.read(tail), expectWalError('RECYCLED'))
    assert.throws(() => wal.read(1), expectWalError('RECYCLED'))
    assertRecords(await collect(wal.read(tail + 1)), tail + 1, 410)
    await wal.close()
  })
})

test('a large record spanning read chunks is read back intact', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, sync: false })
    const big = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 13) & 0xff)
    wal.append({ epoch: 1, type: 9, payload: new Uint8Array(5) })
    wal.append({ epoch: 1, type: 9, payload: big })
    wal.append({ epoch: 1, type: 9, payload: new Uint8Array(7) })
    await wal.flush()
    const records = await collect(wal.read(1))
    assert.equal(records.length, 3)
    assert.deepEqual(records[1]?.payload, big)
    await wal.close()
  })
})

test('truncateAfter drops everything after the index, within and across segments, durably', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, segmentBytesMax: 700, sync: false })
    appendMany(wal, 100, 1)
    appendMany(wal, 100, 2)
    await wal.flush()
    appendMany(wal, 20, 3) // pending: flushed before truncation
    const segmentsBefore = wal.segmentCount
    await wal.truncateAfter(150)
    assert.equal(wal.head, 150)
    assert.equal(wal.durable, 150)
    assert.equal(wal.epochHead, 2)
    assert.ok(wal.segmentCount < segmentsBefore)
    assertRecords(await collect(wal.read(1)), 1, 150)
    assert.equal(wal.append({ epoch: 4, type: 151 % 256, payload: payloadFor(151) }), 151)
    await wal.truncateAfter(151) // no-op at head
    assert.equal(wal.head, 151)
    await wal.close()
    const reopened = await Wal.open({ directory })
    assert.equal(reopened.recovery.head, 151)
    assert.equal(reopened.recovery.truncatedTornBytes, 0)
    assertRecords(await collect(reopened.wal.read(1)), 1, 151)
    // truncate to exactly a segment boundary and to the tail (empty WAL that keeps its position)
    const files = segmentFiles(directory)
    const boundary = Number((files[2] ?? '').slice(0, 20)) - 1
    await reopened.wal.truncateAfter(boundary)
    assertRecords(await collect(reopened.wal.read(1)), 1, boundary)
    const tail = await reopened.wal.recycle(boundary)
    assert.ok(tail > 0)
    await reopened.wal.truncateAfter(tail)
    assert.equal(reopened.wal.head, tail)
    assert.deepEqual(await collect(reopened.wal.read(tail + 1)), [])
    await assert.rejects(reopened.wal.truncateAfter(tail - 1), expectWalError('RECYCLED'))
    assert.throws(() => reopened.wal.truncateAfter(tail + 5), InvariantViolation)
    await reopened.wal.close()
    const last = await Wal.open({ directory })
    assert.equal(last.recovery.head, tail)
    assert.equal(last.recovery.tail, tail)
    assert.equal(last.wal.append({ epoch: 5, type: 0, payload: new Uint8Array() }), tail + 1)
    await last.wal.close()
  })
})

test('appends are refused while truncateAfter runs; a read racing truncateAfter fails loudly', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, sync: false })
    appendMany(wal, 300)
    await wal.flush()
    const iterator = wal.read(1)[Symbol.asyncIterator]()
    assert.equal((await iterator.next()).value?.index, 1)
    const truncation = wal.truncateAfter(10)
    assert.throws(() => wal.append({ epoch: 1, type: 0, payload: new Uint8Array() }), expectWalError('BUSY'))
    await truncation
    await assert.rejects(
      (async () => {
        for (;;) {
          const step = await iterator.next()
          if (step.done === true) break
        }
      })(),
      expectWalError('CONCURRENT_TRUNCATE'),
    )
    assert.equal(wal.append({ epoch: 1, type: 11, payload: payloadFor(11) }), 11)
    await wal.close()
  })
})

test('recycle deletes whole durable segments only, never the open one, and respects pins', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, segmentBytesMax: 500, sync: false })
    appendMany(wal, 300)
    assert.equal(await wal.recycle(300), 0, 'nothing durable yet: nothing recycled')
    await wal.flush()
    const release = wal.pinRetention(100)
    const pinnedTail = await wal.recycle(250)
    assert.ok(pinnedTail <= 100, `pin holds the tail at ${pinnedTail}`)
    release()
    release() // idempotent
    const tail = await wal.recycle(250)
    assert.ok(tail > pinnedTail && tail <= 250)
    const files = segmentFiles(directory)
    assert.equal(files[0], segmentFileName(tail + 1), 'tail = first retained segment − 1')
    assert.throws(() => wal.pinRetention(tail - 1), expectWalError('RECYCLED'))
    const all = await wal.recycle(10_000)
    assert.equal(wal.segmentCount, 1, 'the segment holding head is kept')
    assert.equal(all, Number((segmentFiles(directory)[0] ?? '').slice(0, 20)) - 1)
    assertRecords(await collect(wal.read(all + 1)), all + 1, 300)
    await wal.close()
    const reopened = await Wal.open({ directory })
    assert.equal(reopened.recovery.tail, all)
    assert.equal(reopened.recovery.head, 300)
    await reopened.wal.close()
  })
})

test('resetWal starts an empty WAL after a snapshot index', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, segmentBytesMax: 500, sync: false })
    appendMany(wal, 100)
    await wal.close()
    await resetWal({ directory, head: 1000 })
    assert.deepEqual(segmentFiles(directory), [segmentFileName(1001)])
    const opened = await Wal.open({ directory })
    assert.deepEqual(opened.recovery, { head: 1000, tail: 1000, truncatedTornBytes: 0, zeroTailBytes: 0, segments: 1 })
    assert.throws(() => opened.wal.read(1000), expectWalError('RECYCLED'))
    assert.deepEqual(await collect(opened.wal.read(1001)), [])
    assert.equal(opened.wal.append({ epoch: 1, type: 1001 % 256, payload: payloadFor(1001) }), 1001)
    await opened.wal.close()
    const again = await Wal.open({ directory })
    assert.equal(again.recovery.head, 1001)
    assertRecords(await collect(again.wal.read(1001)), 1001, 1001)
    await again.wal.close()
    // a fresh directory can be reset too
    await withDirectory(async (fresh) => {
      await resetWal({ directory: path.join(fresh, 'wal'), head: 7 })
      const created = await Wal.open({ directory: path.join(fresh, 'wal') })
      assert.equal(created.wal.append({ epoch: 0, type: 0, payload: new Uint8Array() }), 8)
      await created.wal.close()
    })
  })
})

test('onDurable reports each group once, in order, with contiguous ranges', async () => {
  await withDirectory(async (directory) => {
    const gate = gatedIo()
    const { wal } = await Wal.open({ directory, io: gate.io, segmentBytesMax: 800 })
    const ranges: Array<[number, number]> = []
    const unsubscribe = wal.onDurable((from, to) => {
      assert.ok(to <= wal.durable, 'durable already advanced when listeners run')
      ranges.push([from, to])
    })
    const flushes: Array<Promise<number>> = []
    for (let round = 0; round < 12; round += 1) {
      appendMany(wal, 1 + ((round * 7) % 13))
      flushes.push(wal.flush())
      if (round % 3 === 2) {
        await until(() => gate.waiting() > 0)
        gate.release()
      }
    }
    while (wal.durable < wal.head) {
      await until(() => gate.waiting() > 0 || wal.durable === wal.head)
      gate.release()
    }
    await Promise.all(flushes)
    let expected = 1
    for (const [from, to] of ranges) {
      assert.equal(from, expected)
      assert.ok(to >= from)
      expected = to + 1
    }
    assert.equal(expected - 1, wal.head)
    unsubscribe()
    appendMany(wal, 3)
    const flushed = wal.flush()
    await until(() => gate.waiting() > 0)
    gate.release()
    await flushed
    assert.equal(ranges.at(-1)?.[1], wal.head - 3, 'no call after unsubscribe')
    await wal.close()
  })
})

test('invalid appends are invariant violations and take no index', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, sync: false })
    wal.append({ epoch: 5, type: 0, payload: new Uint8Array() })
    assert.throws(() => wal.append({ epoch: 4, type: 0, payload: new Uint8Array() }), InvariantViolation)
    assert.throws(() => wal.append({ epoch: 5, type: 256, payload: new Uint8Array() }), InvariantViolation)
    assert.throws(() => wal.append({ epoch: -1, type: 0, payload: new Uint8Array() }), InvariantViolation)
    assert.throws(() => wal.waitDurable(2), InvariantViolation)
    assert.equal(wal.head, 1)
    await wal.close()
  })
})

// ------------------------------------------------------------- model-based property

type Operation =
  | { kind: 'append'; count: number; payloadBytes: number }
  | { kind: 'flush' }
  | { kind: 'truncate'; back: number }
  | { kind: 'recycle'; back: number }
  | { kind: 'reopen' }

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), count: fc.integer({ min: 1, max: 30 }), payloadBytes: fc.integer({ min: 0, max: 120 }) }),
  fc.record({ kind: fc.constant('flush' as const) }),
  fc.record({ kind: fc.constant('truncate' as const), back: fc.integer({ min: 0, max: 40 }) }),
  fc.record({ kind: fc.constant('recycle' as const), back: fc.integer({ min: 0, max: 60 }) }),
  fc.record({ kind: fc.constant('reopen' as const) }),
)

test('property: the WAL behaves like an array of records (appends, flushes, truncations, recycling, reopens)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(operationArbitrary, { minLength: 1, maxLength: 25 }), fc.constantFrom(0, 64, 300, 4096), async (operations, preallocateBytes) => {
      await withDirectory(async (directory) => {
        const options: WalOptions = { directory, segmentBytesMax: 700, groupBytesMax: 2048, sync: false, preallocateBytes }
        let { wal } = await Wal.open(options)
        const model = new Map<number, Uint8Array>() // index → payload
        let head = 0
        let tail = 0
        for (const operation of operations) {
          switch (operation.kind) {
            case 'append': {
              for (let i = 0; i < operation.count; i += 1) {
                const payload = payloadFor(head + 1, operation.payloadBytes)
                // A producer honours backpressure: past the pending bound, wait for a flush first.
                if (wal.pendingBytes + payload.length + entryOverheadBytes > pendingGroupsMax * (options.groupBytesMax ?? 0)) await wal.flush()
                assert.equal(wal.append({ epoch: 1, type: 1, payload }), head + 1)
                head += 1
                model.set(head, payload)
              }
              break
            }
            case 'flush':
              assert.equal(await wal.flush(), head)
              break
            case 'truncate': {
              const index = Math.max(tail, head - operation.back)
              await wal.truncateAfter(index)
              for (let i = index + 1; i <= head; i += 1) model.delete(i)
              head = index
              break
            }
            case 'recycle': {
              const newTail = await wal.recycle(Math.max(0, head - operation.back))
              assert.ok(newTail >= tail && newTail <= wal.durable)
              tail = newTail
              break
            }
            case 'reopen': {
              await wal.close()
              const reopened = await Wal.open(options)
              wal = reopened.wal
              assert.equal(reopened.recovery.truncatedTornBytes, 0)
              break
            }
            default: {
              const never: never = operation
              throw new Error(`unknown operation ${String(never)}`)
            }
          }
          assert.equal(wal.head, head)
          assert.equal(wal.tail, tail)
          assert.ok(tail <= wal.durable && wal.durable <= head)
        }
        await wal.flush()
        const records = await collect(wal.read(tail + 1))
        assert.deepEqual(
          records.map((record) => record.index),
          Array.from({ length: head - tail }, (_, k) => tail + 1 + k),
        )
        for (const record of records) assert.deepEqual(record.payload, model.get(record.index))
        await wal.close()
      })
    }),
    { numRuns: 60 },
  )
})

// ------------------------------------------------------------ preallocation

/** An io whose zero fills wait for the test to release them (each fill then runs for real). */
function gatedPreallocation(): { io: Partial<WalIo>; release: () => void; waiting: () => number; writes: () => number } {
  let gates: Array<() => void> = []
  let writes = 0
  return {
    io: {
      preallocate: (handle, position, bytes) =>
        new Promise<void>((resolve, reject) => {
          gates.push(() => {
            handle
              .write(Buffer.alloc(bytes), 0, bytes, position)
              .then(() => handle.datasync())
              .then(resolve, reject)
          })
        }),
      write: async (handle, buffers, position) => {
        writes += 1
        return (await handle.writev(buffers, position)).bytesWritten
      },
    },
    release: () => {
      const open = gates
      gates = []
      for (const gate of open) gate()
    },
    waiting: () => gates.length,
    writes: () => writes,
  }
}

test('preallocation: zeros are written ahead of the entries, within the segment; a reopen keeps them as the end, truncating nothing', async () => {
  await withDirectory(async (directory) => {
    const options: WalOptions = { directory, segmentBytesMax: 1 << 20, preallocateBytes: 256 * 1024 }
    const { wal } = await Wal.open(options)
    for (let round = 0; round < 40; round += 1) {
      appendMany(wal, 50)
      await wal.flush()
    }
    await wal.close()
    const counters = wal.counters
    assert.ok(counters.preallocateCount >= 2, `fills: ${counters.preallocateCount}`)
    const file = path.join(directory, segmentFileName(1))
    const size = fs.statSync(file).size
    assert.ok(size > counters.bytesWritten, `the file (${size} B) holds zeros beyond the entries (${counters.bytesWritten} B)`)
    assert.ok(size <= (options.segmentBytesMax ?? 0), 'never past the segment bound')
    assert.ok(fs.readFileSync(file).subarray(counters.bytesWritten).every((byte) => byte === 0), 'only zeros beyond the entries')
    const reopened = await Wal.open(options)
    assert.equal(reopened.recovery.head, 2000)
    assert.equal(reopened.recovery.truncatedTornBytes, 0)
    assert.equal(reopened.recovery.zeroTailBytes, size - counters.bytesWritten)
    assert.equal(fs.statSync(file).size, size, 'nothing truncated')
    // Appends continue over the zeros.
    appendMany(reopened.wal, 10)
    await reopened.wal.flush()
    await reopened.wal.close()
    const again = await Wal.open({ directory })
    assertRecords(await collect(again.wal.read(1)), 1, 2010)
    await again.wal.close()
  })
})

test('preallocation: segments that are not the last end in zeros; they open, read, recycle and truncate like any other', async () => {
  await withDirectory(async (directory) => {
    const options: WalOptions = { directory, segmentBytesMax: 2048, preallocateBytes: 2048 }
    let { wal } = await Wal.open(options)
    for (let round = 0; round < 30; round += 1) {
      appendMany(wal, 7)
      await wal.flush()
    }
    await wal.close()
    const files = segmentFiles(directory)
    assert.ok(files.length >= 4, `${files.length} segments`)
    const zeroTails = files.slice(0, -1).filter((name) => {
      const image = fs.readFileSync(path.join(directory, name))
      return image.at(-1) === 0 && image.at(-2) === 0
    })
    assert.ok(zeroTails.length > 0, 'some closed segment ends in zeros')
    ;({ wal } = await Wal.open(options))
    assertRecords(await collect(wal.read(1)), 1, 210)
    await wal.truncateAfter(150)
    assert.equal(await wal.recycle(100) <= 100, true)
    appendMany(wal, 20)
    await wal.flush()
    await wal.close()
    const reopened = await Wal.open({ directory })
    assertRecords(await collect(reopened.wal.read(reopened.wal.tail + 1)), reopened.wal.tail + 1, 170)
    await reopened.wal.close()
  })
})

test('preallocation: a segment that is not the last may end in zeros only where its successor starts; other damage is corruption', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({ directory, segmentBytesMax: 2048, preallocateBytes: 2048 })
    for (let round = 0; round < 20; round += 1) {
      appendMany(wal, 5)
      await wal.flush()
    }
    await wal.close()
    const files = segmentFiles(directory)
    assert.ok(files.length >= 3)
    const middle = path.join(directory, files[1] ?? '')
    const original = fs.readFileSync(middle)
    const indexFirst = Number((files[1] ?? '').slice(0, 20))
    const indexNext = Number((files[2] ?? '').slice(0, 20))
    const lastEntryBytes = entryOverheadBytes + payloadFor(indexNext - 1).length
    const entriesEnd = [...Array(indexNext - indexFirst).keys()].reduce((sum, k) => sum + entryOverheadBytes + payloadFor(indexFirst + k).length, 0)
    assert.ok(original.byteLength > entriesEnd, 'the middle segment ends in zeros')
    // Its last entry zeroed: the zeros now start one entry early, and the next segment does not follow on.
    const zeroed = Buffer.from(original)
    zeroed.fill(0, entriesEnd - lastEntryBytes, entriesEnd)
    fs.writeFileSync(middle, zeroed)
    await assert.rejects(Wal.open({ directory }), (error: unknown) => {
      expectWalError('CORRUPTION')(error)
      assert.match(String(error), /previous segment ends at/)
      return true
    })
    // A stray byte in its zeros: damage in a segment that is not the last.
    const stray = Buffer.from(original)
    stray[original.byteLength - 1] = 1
    fs.writeFileSync(middle, stray)
    await assert.rejects(Wal.open({ directory }), (error: unknown) => {
      expectWalError('CORRUPTION')(error)
      assert.match(String(error), /not the last/)
      return true
    })
  })
})

test('preallocation: a group never writes where a zero fill is in flight; it waits, and the fill never covers an entry', async () => {
  await withDirectory(async (directory) => {
    const gate = gatedPreallocation()
    const { wal } = await Wal.open({ directory, preallocateBytes: 1024 * 1024, io: gate.io })
    // The first fill starts at open, at offset 0: the first group must wait for it.
    assert.equal(gate.waiting(), 1)
    appendMany(wal, 5)
    const flushed = wal.flush()
    let durable = false
    void flushed.then(() => (durable = true))
    for (let turn = 0; turn < 50; turn += 1) await new Promise<void>((resolve) => setImmediate(resolve))
    assert.equal(gate.writes(), 0, 'no group write while the fill covering its bytes is in flight')
    assert.equal(durable, false)
    gate.release()
    assert.equal(await flushed, 5)
    // Past half the lead (64 KiB at first), the next fill starts beyond every appended byte: groups below it go ahead while it is held.
    const large = new Uint8Array(40 * 1024).fill(9)
    assert.equal(wal.append({ epoch: 1, type: 6, payload: large }), 6)
    assert.equal(await wal.flush(), 6)
    await until(() => gate.waiting() === 1)
    const writes = gate.writes()
    appendMany(wal, 5)
    assert.equal(await wal.flush(), 11)
    assert.ok(gate.writes() > writes, 'a group below the fill was written while the fill was held')
    gate.release()
    await wal.close()
    const reopened = await Wal.open({ directory })
    const read = await collect(reopened.wal.read(1))
    assert.equal(read.length, 11)
    assert.deepEqual(read[5]?.payload, large)
    assertRecords(read.slice(0, 5), 1, 5)
    await reopened.wal.close()
  })
})

test('preallocation: a failed zero fill is fatal, like a failed group (its fdatasync may have seen the entries\' error)', async () => {
  await withDirectory(async (directory) => {
    const { wal } = await Wal.open({
      directory,
      preallocateBytes: 64 * 1024,
      io: {
        preallocate: () => Promise.reject(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })),
      },
    })
    await until(() => {
      try {
        wal.append({ epoch: 1, type: 1, payload: payloadFor(1) })
        return false
      } catch (error) {
        return expectWalError('FAILED')(error)
      }
    })
    await assert.rejects(wal.close(), expectWalError('FAILED'))
  })
})

// ------------------------------------------------------------------- crash test

/** Runs the writer until it has printed `linesBeforeKill` durable lines, SIGKILLs it, returns every durable index it printed. */
async function runWriterUntilKilled(directory: string, linesBeforeKill: number, preallocateBytes: number): Promise<number[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'writer.ts'), directory, String(preallocateBytes)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const durable: number[] = []
  let pending = ''
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk
  })
  return new Promise<number[]>((resolve, reject) => {
    let killed = false
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      pending += chunk
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) {
        const match = /^durable (\d+)$/.exec(line)
        if (match !== null) durable.push(Number(match[1]))
      }
      if (!killed && durable.length >= linesBeforeKill) {
        killed = true
        child.kill('SIGKILL')
      }
    })
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(durable)
      else reject(new Error(`writer exited with ${String(code)} before the kill: ${stderr}`))
    })
  })
}

test('crash: every index the writer reported durable survives SIGKILL at a random moment', async () => {
  await withDirectory(async (directory) => {
    let previousHead = 0
    const rounds = 4
    for (let round = 0; round < rounds; round += 1) {
      const linesBeforeKill = 1 + Math.floor(Math.random() * 40)
      // Odd rounds write zeros ahead of the entries (the even ones then continue a log with zero tails).
      const durable = await runWriterUntilKilled(directory, linesBeforeKill, round % 2 === 1 ? 8 * 1024 : 0)
      assert.ok(durable.length >= linesBeforeKill)
      const maxDurable = Math.max(...durable)
      assert.ok(maxDurable > previousHead, 'the writer made progress')
      const { wal, recovery } = await Wal.open({ directory })
      assert.ok(recovery.head >= maxDurable, `round ${round}: head ${recovery.head} ≥ reported durable ${maxDurable}`)
      assert.equal(recovery.tail, 0)
      let expected = 1
      for await (const record of wal.read(1)) {
        assert.equal(record.index, expected, 'contiguous')
        assert.equal(record.type, expected % 3)
        assert.deepEqual(record.payload, payloadOf(expected))
        expected += 1
      }
      assert.equal(expected - 1, recovery.head)
      previousHead = recovery.head
      await wal.close()
    }
  })
})
