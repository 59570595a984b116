/**
 * The store batches a server writes, recorded to a file and read back, for
 * `bench/store-replay.ts` (RocksDB's options compared on the server's own rows).
 *
 * Recording: preload this module into `tally serve` with TALLY_STORE_CAPTURE
 * naming the file (appended to), e.g. under the growth bench's load:
 *
 *   TALLY_STORE_CAPTURE=/tmp/rows.bin BENCH_SERVER_NODE_FLAGS="--import tsx --import ./bench/store-capture.ts" \
 *     node --import tsx bench/growth.ts --transactions 2000000 --segment 500000
 *
 * It wraps `Store.prototype.write` of the ledger's store (a directory named
 * `store`) and appends each batch before writing it, on the JavaScript
 * thread (a benchmark's instrument: it slows the server). Format, one record
 * per batch: a byte (1 when synced), the row count (u32 LE), then per row the
 * key's length (u32 LE), the key, the value's length (i32 LE, −1 for a
 * delete) and the value.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs'
import { Store, type RowWrite } from '../src/store/index.ts'

export interface CapturedBatch {
  readonly sync: boolean
  readonly rows: readonly RowWrite[]
}

/** One batch as the capture file holds it. */
export function encodeCapturedBatch(rows: readonly RowWrite[], sync: boolean): Buffer {
  let size = 5
  for (const row of rows) size += 8 + row.key.length + (row.value === null ? 0 : row.value.length)
  const out = Buffer.allocUnsafe(size)
  out[0] = sync ? 1 : 0
  out.writeUInt32LE(rows.length, 1)
  let at = 5
  for (const row of rows) {
    at = out.writeUInt32LE(row.key.length, at)
    at += row.key.copy(out, at)
    if (row.value === null) at = out.writeInt32LE(-1, at)
    else {
      at = out.writeInt32LE(row.value.length, at)
      at += row.value.copy(out, at)
    }
  }
  return out
}

/** The batches of a capture file in order, read a few MiB at a time (rows are views of the read buffer). */
export function* readCapturedBatches(file: string): Generator<CapturedBatch> {
  const fd = openSync(file, 'r')
  try {
    let buffer = Buffer.alloc(0)
    let at = 0
    let ended = false
    /** Makes `length` bytes from `at` available; false at the file's end. */
    const need = (length: number): boolean => {
      while (buffer.length - at < length) {
        if (ended) return false
        const chunk = Buffer.allocUnsafe(Math.max(16 << 20, length))
        const read = readSync(fd, chunk, 0, chunk.length, null)
        if (read === 0) ended = true
        buffer = Buffer.concat([buffer.subarray(at), chunk.subarray(0, read)])
        at = 0
      }
      return true
    }
    for (;;) {
      if (!need(5)) return
      const sync = buffer[at] === 1
      const count = buffer.readUInt32LE(at + 1)
      at += 5
      const rows: RowWrite[] = []
      for (let row = 0; row < count; row++) {
        if (!need(4)) throw new Error(`${file}: a batch cut short`)
        const keyLength = buffer.readUInt32LE(at)
        if (!need(8 + keyLength)) throw new Error(`${file}: a batch cut short`)
        const key = buffer.subarray(at + 4, at + 4 + keyLength)
        const valueLength = buffer.readInt32LE(at + 4 + keyLength)
        at += 8 + keyLength
        if (valueLength < 0) {
          rows.push({ key, value: null })
          continue
        }
        if (!need(valueLength)) throw new Error(`${file}: a batch cut short`)
        // `need` may move on to a new buffer: views of the old one stay valid.
        rows.push({ key, value: buffer.subarray(at, at + valueLength) })
        at += valueLength
      }
      yield { sync, rows }
    }
  } finally {
    closeSync(fd)
  }
}

const captureFile = process.env.TALLY_STORE_CAPTURE
if (captureFile !== undefined && captureFile !== '') {
  const fd = openSync(captureFile, 'a')
  const write = Store.prototype.write
  Store.prototype.write = function capturingWrite(this: Store, rows, options) {
    if (rows.length > 0 && this.directory.endsWith('store')) writeSync(fd, encodeCapturedBatch(rows, options.sync))
    return write.call(this, rows, options)
  }
}
