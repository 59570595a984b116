/**
 * A power-loss model under the WAL and the store (issue 9, point 18).
 *
 * A SIGKILL keeps the page cache, so it cannot show that a write was made
 * durable before it was acknowledged. This layer can: it sits under the WAL
 * (`WalIo`) and the store (a `Store` subclass), counts every operation that
 * changes the disk, and at a chosen operation "pulls the plug": that
 * operation and every later one never complete (they reject with
 * `PowerLost`). `restorePower()` then reduces the data directory to what a
 * machine that lost power keeps, drawn from the seeded `random`:
 *
 *  - a WAL file keeps what it held at its last `fdatasync`, then — at random —
 *    none of the writes made since, all of them (including part of a write
 *    the power failed in), a prefix of their bytes in the order they were
 *    written, or such a prefix followed by garbage (a torn write: zeros or
 *    noise). A write may extend the file (an append) or overwrite bytes
 *    already there (zeros a preallocation wrote ahead): what it overwrote
 *    comes back when it is lost. A preallocation (zeros, then fdatasync) is a
 *    write followed by a sync of the whole file;
 *  - the entries created or deleted in a directory since its last fsync
 *    survive as a prefix, in the order they were made (a journalled file
 *    system's metadata): a later creation may vanish, a later deletion be
 *    undone (the file comes back with its durable content);
 *  - the store keeps every batch written before its last synced write, then a
 *    prefix (possibly empty) of the later, unsynced batches — what RocksDB
 *    recovers from its log — never anything else.
 *
 * Nothing is ever really lost by the machine running the test, so the real
 * calls skip their own fsyncs: the model alone decides what survived.
 * Out of scope: reordered pages inside one unsynced write (the WAL refuses
 * them by design, docs/wal.md), and the parent directory of the data
 * directory (created once, before any write).
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs'
import * as fs from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { RocksLevel } from '@nxtedition/rocksdb'
import { Store, groupedRows, shortRangeRowsMax } from '../../src/store/index.ts'
import type { BatchedRangeOptions, RangeOptions, RowWrite, ShortRange } from '../../src/store/index.ts'
import type { WalIo } from '../../src/wal/index.ts'

export class PowerLost extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'PowerLost'
  }
}

export interface PowerLossDiskOptions {
  /** Seeded: decides what survives each power loss. */
  readonly random: () => number
  /**
   * A deliberately broken store, to show the harness notices: synced writes
   * for which this returns true are kept unsynced (as if the sync were lost).
   */
  readonly storeSyncIgnored?: (rows: readonly RowWrite[]) => boolean
  /**
   * Every loss keeps only what was synced (no unsynced byte, batch or
   * directory change survives): the surest way to expose a missing sync.
   */
  readonly worstCase?: boolean
  /**
   * Whether a WAL write of `bytes` completes on the JavaScript thread and
   * returns its count as a number (the real io's path for small groups,
   * whose fdatasync the WAL then calls in the same synchronous run), rather
   * than a promise (the thread pool's path). Default: always a promise.
   */
  readonly walWriteAtOnce?: (bytes: number) => boolean
  /**
   * A deliberately broken io, to show the harness notices: a write made at
   * once returns its full count before its bytes reach the file; they land
   * only after the fdatasync the WAL then calls, so they are not durable.
   */
  readonly walWriteCountEarly?: boolean
}

/** What one `restorePower` did, for diagnostics. */
export interface PowerLossOutcome {
  readonly operations: number
  readonly crashedAt: string | undefined
  readonly walBytesDropped: number
  readonly walTornFiles: number
  readonly filesVanished: number
  readonly filesReappeared: number
  readonly storeBatchesDropped: number
  readonly storeBatchesKept: number
}

/** The disk of one data directory across power cycles. */
export class PowerLossDisk {
  private operations = 0
  private crashAt = Number.POSITIVE_INFINITY
  private crashedAt: string | undefined
  /** WAL files opened this power period: the writes made to each since its last fdatasync, oldest first. */
  private unsyncedWrites = new Map<string, UnsyncedWrite[]>()
  private handleFiles = new Map<FileHandle, string>()
  /** Per directory: its entries created or deleted since its last fsync, in order. */
  private directoryChanges = new Map<string, DirectoryChange[]>()
  private stores = new Set<PowerLossStore>()
  /** `walWriteCountEarly`: writes whose count was returned and whose bytes are not yet in the file. */
  private writesLate: { handle: FileHandle; file: string; bytes: Buffer; position: number }[] = []

  readonly walIo: WalIo

  constructor(private readonly options: PowerLossDiskOptions) {
    this.walIo = {
      write: (handle, buffers, position) => {
        let bytes = 0
        for (const buffer of buffers) bytes += buffer.byteLength
        if (this.options.walWriteAtOnce?.(bytes) !== true) return this.writeOnPool(handle, buffers, position)
        const file = this.fileOf(handle)
        const image = Buffer.concat(buffers)
        // The write the power fails in may have partly reached the file (a torn write; its fate is drawn at restore).
        if (this.failsNext()) this.recordedWriteAtOnce(handle, file, image.subarray(0, Math.floor(this.options.random() * image.byteLength)), position)
        this.step('wal write (at once)')
        if (this.options.walWriteCountEarly === true) {
          // The planted bug: the count is trusted before the bytes are in the file; they land after the sync that follows.
          this.writesLate.push({ handle, file, bytes: image, position })
          return image.byteLength
        }
        return this.recordedWriteAtOnce(handle, file, image, position)
      },
      sync: async (handle) => {
        this.step('wal fdatasync')
        const file = this.fileOf(handle)
        // The power may fail while the sync runs: then it never returned.
        this.assertPowered()
        this.unsyncedWrites.set(file, [])
        // The broken io's writes complete only now: after the sync, so they are not durable.
        for (const late of this.writesLate.splice(0)) this.recordedWriteAtOnce(late.handle, late.file, late.bytes, late.position)
      },
      preallocate: async (handle, position, bytes) => {
        const file = this.fileOf(handle)
        if (this.failsNext()) await this.recordedWrite(handle, file, Buffer.alloc(Math.floor(this.options.random() * bytes)), position)
        this.step('wal preallocate')
        await this.recordedWrite(handle, file, Buffer.alloc(bytes), position)
        this.assertPowered()
        this.unsyncedWrites.set(file, [])
      },
      open: async (file, flags) => {
        this.step(`wal open ${flags}`)
        const handle = await fs.open(file, flags)
        this.handleFiles.set(handle, file)
        if (flags === 'wx') this.changesOf(path.dirname(file)).push({ kind: 'create', file })
        // A new file is empty; one found at open survived the last power loss whole.
        if (flags === 'wx' || !this.unsyncedWrites.has(file)) this.unsyncedWrites.set(file, [])
        if (this.crashed) {
          // The open never returned: nobody will close this handle.
          await handle.close()
          this.assertPowered()
        }
        return handle
      },
      truncate: async (file, bytes) => {
        this.step('wal truncate')
        await fs.truncate(file, bytes)
        // Taken as durable at once (the WAL syncs the file right after): what was unsynced beyond `bytes` is gone for good.
        const writes = this.unsyncedWrites.get(file)
        if (writes !== undefined) this.unsyncedWrites.set(file, writes.flatMap((write) => clipped(write, bytes)))
        this.assertPowered()
      },
      unlink: async (file) => {
        this.step('wal unlink')
        const image = await fs.readFile(file)
        this.changesOf(path.dirname(file)).push({ kind: 'unlink', file, image: undone(image, this.unsyncedWrites.get(file) ?? []) })
        this.unsyncedWrites.delete(file)
        await fs.unlink(file)
        this.assertPowered()
      },
      syncDirectory: async (directory) => {
        this.step('wal directory fsync')
        const made = this.changesOf(directory).length
        await fs.readdir(directory) // stands for the real fsync's latency (the model decides durability)
        this.assertPowered()
        this.changesOf(directory).splice(0, made)
      },
    }
  }

  /** `LedgerNodeOptions.openStore`. */
  readonly openStore = async (directory: string): Promise<Store> => {
    this.assertPowered()
    const store = await PowerLossStore.openOn(this, directory, this.options.storeSyncIgnored)
    this.stores.add(store)
    return store
  }

  get crashed(): boolean {
    return this.crashedAt !== undefined
  }

  get operationCount(): number {
    return this.operations
  }

  /** The power fails during the `operation`-th disk operation from now (1 = the next one). */
  failAtOperation(operation: number): void {
    this.crashAt = this.operations + operation
  }

  /** The power fails now, between two operations. */
  pullPlug(): void {
    this.crashedAt ??= `after operation ${this.operations} (plug pulled)`
  }

  /** Whether the power fails during the next operation. */
  private failsNext(): boolean {
    return this.crashedAt === undefined && this.operations + 1 >= this.crashAt
  }

  /** @internal Called before every disk-changing operation. */
  step(what: string): void {
    this.assertPowered()
    this.operations += 1
    if (this.operations >= this.crashAt) {
      this.crashedAt = `during operation ${this.operations} (${what})`
      throw new PowerLost(`power lost ${this.crashedAt}`)
    }
  }

  /** @internal */
  assertPowered(): void {
    if (this.crashedAt !== undefined) throw new PowerLost(`power lost ${this.crashedAt}`)
  }

  /** A WAL write through the thread pool (a promise), as the real io makes large ones. */
  private async writeOnPool(handle: FileHandle, buffers: Buffer[], position: number): Promise<number> {
    const file = this.fileOf(handle)
    if (this.failsNext()) {
      // The write the power fails in may have partly reached the file (a torn write; its fate is drawn at restore).
      const image = Buffer.concat(buffers)
      await this.recordedWrite(handle, file, image.subarray(0, Math.floor(this.options.random() * image.byteLength)), position)
    }
    this.step('wal write')
    const bytesWritten = await this.recordedWrite(handle, file, Buffer.concat(buffers), position)
    this.assertPowered()
    return bytesWritten
  }

  /** `recordedWrite` done on the JavaScript thread: returns before any microtask runs. */
  private recordedWriteAtOnce(handle: FileHandle, file: string, bytes: Buffer, position: number): number {
    const { size } = fstatSync(handle.fd)
    const overwritten = Buffer.alloc(Math.max(0, Math.min(size, position + bytes.byteLength) - position))
    if (overwritten.byteLength > 0) {
      // Segments are opened write-only: read what the write replaces through a descriptor of our own.
      const reader = openSync(file, 'r')
      try {
        readSync(reader, overwritten, 0, overwritten.byteLength, position)
      } finally {
        closeSync(reader)
      }
    }
    const writes = this.unsyncedWrites.get(file)
    if (writes === undefined) throw new Error('power-loss model: a write to a WAL file not opened through WalIo.open')
    writes.push({ position, bytes, overwritten, sizeBefore: size })
    return writeSync(handle.fd, bytes, 0, bytes.byteLength, position)
  }

  /** Writes `bytes` at `position`, remembering what they overwrote (and the size before) so that a power loss can undo them. */
  private async recordedWrite(handle: FileHandle, file: string, bytes: Buffer, position: number): Promise<number> {
    const { size } = await handle.stat()
    const overwritten = Buffer.alloc(Math.max(0, Math.min(size, position + bytes.byteLength) - position))
    if (overwritten.byteLength > 0) {
      // Segments are opened write-only: read what the write replaces through a handle of our own.
      const reader = await fs.open(file, 'r')
      try {
        await reader.read(overwritten, 0, overwritten.byteLength, position)
      } finally {
        await reader.close()
      }
    }
    const writes = this.unsyncedWrites.get(file)
    if (writes === undefined) throw new Error('power-loss model: a write to a WAL file not opened through WalIo.open')
    writes.push({ position, bytes, overwritten, sizeBefore: size })
    const { bytesWritten } = await handle.write(bytes, 0, bytes.byteLength, position)
    return bytesWritten
  }

  private fileOf(handle: FileHandle): string {
    const file = this.handleFiles.get(handle)
    if (file === undefined) throw new Error('power-loss model: a WAL handle not opened through WalIo.open')
    return file
  }

  private changesOf(directory: string): DirectoryChange[] {
    let changes = this.directoryChanges.get(directory)
    if (changes === undefined) {
      changes = []
      this.directoryChanges.set(directory, changes)
    }
    return changes
  }

  /**
   * Reduces the disk to what survives the power loss (pulling the plug first
   * if the chosen operation was never reached) and starts a new power period.
   * Call after the node's WAL and store were abandoned (closing them is fine:
   * after the loss, nothing more reaches the disk).
   */
  async restorePower(): Promise<PowerLossOutcome> {
    this.pullPlug()
    const seeded = this.options.random
    // Worst case: every draw says "lost" (draws ≥ every threshold keep nothing).
    const random = this.options.worstCase === true ? () => 0 : seeded
    let walBytesDropped = 0
    let walTornFiles = 0
    let filesVanished = 0
    let filesReappeared = 0
    for (const [file, writes] of this.unsyncedWrites) {
      if ((await fileSize(file)) === undefined) continue
      const unsynced = writes.reduce((sum, write) => sum + write.bytes.byteLength, 0)
      if (unsynced <= 0) continue
      const fate = random()
      let kept = 0
      let garbage: Buffer | undefined
      if (fate < 0.4) kept = 0
      else if (fate < 0.55) kept = unsynced
      else if (fate < 0.85) kept = Math.floor(random() * unsynced)
      else {
        kept = Math.floor(random() * unsynced)
        const length = 1 + Math.floor(random() * Math.min(64, unsynced - kept))
        garbage = random() < 0.5 ? Buffer.alloc(length) : Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)))
      }
      // The first `kept` bytes of the writes, in the order they were made, reached the disk; the rest is undone.
      const survivors: UnsyncedWrite[] = []
      let left = kept
      for (const write of writes) {
        const length = Math.min(left, write.bytes.byteLength)
        left -= length
        survivors.push({ ...write, bytes: write.bytes.subarray(0, length) })
      }
      const image = await fs.readFile(file)
      const lostFrom = survivors.find((write, at) => write.bytes.byteLength < (writes[at] as UnsyncedWrite).bytes.byteLength)
      let after = undone(image, writes)
      for (const write of survivors) if (write.bytes.byteLength > 0) after = redone(after, write)
      if (garbage !== undefined && lostFrom !== undefined) after = redone(after, { ...lostFrom, position: lostFrom.position + lostFrom.bytes.byteLength, bytes: garbage })
      await fs.writeFile(file, after)
      walBytesDropped += unsynced - kept - (garbage?.byteLength ?? 0)
      if (kept > 0 || garbage !== undefined) walTornFiles += 1
    }
    // Directory changes not yet fsynced survive as a prefix, in the order they were made (journalled
    // metadata; the WAL's deletion orders rely on it, docs/wal.md): the rest is undone, newest first.
    for (const changes of this.directoryChanges.values()) {
      const kept = Math.floor(random() * (changes.length + 1))
      for (const change of changes.slice(kept).reverse()) {
        if (change.kind === 'create') {
          await fs.rm(change.file, { force: true })
          filesVanished += 1
        } else {
          await fs.writeFile(change.file, change.image)
          filesReappeared += 1
        }
      }
    }
    let storeBatchesDropped = 0
    let storeBatchesKept = 0
    for (const store of this.stores) {
      const { dropped, kept } = await store.loseUnsynced(random)
      storeBatchesDropped += dropped
      storeBatchesKept += kept
    }
    const outcome: PowerLossOutcome = {
      operations: this.operations,
      crashedAt: this.crashedAt,
      walBytesDropped,
      walTornFiles,
      filesVanished,
      filesReappeared,
      storeBatchesDropped,
      storeBatchesKept,
    }
    this.operations = 0
    this.crashAt = Number.POSITIVE_INFINITY
    this.crashedAt = undefined
    this.unsyncedWrites = new Map()
    this.handleFiles = new Map()
    this.directoryChanges = new Map()
    this.stores = new Set()
    this.writesLate = []
    return outcome
  }
}

/** A write not yet synced: its bytes, what they overwrote, and the file's size before it. */
interface UnsyncedWrite {
  readonly position: number
  readonly bytes: Buffer
  readonly overwritten: Buffer
  readonly sizeBefore: number
}

/** The write as a truncation to `size` leaves it (nothing of it past `size` remains to undo or redo). */
function clipped(write: UnsyncedWrite, size: number): UnsyncedWrite[] {
  if (write.position >= size) return []
  const keep = size - write.position
  return [{ position: write.position, bytes: write.bytes.subarray(0, keep), overwritten: write.overwritten.subarray(0, keep), sizeBefore: Math.min(write.sizeBefore, size) }]
}

/** The file as it was before `writes`, undone newest first. */
function undone(image: Buffer, writes: readonly UnsyncedWrite[]): Buffer {
  let result = Buffer.from(image)
  for (let at = writes.length - 1; at >= 0; at--) {
    const write = writes[at] as UnsyncedWrite
    write.overwritten.copy(result, write.position)
    result = result.subarray(0, write.sizeBefore)
  }
  return result
}

/** `write` applied to the file `image` (extending it when it writes past its end). */
function redone(image: Buffer, write: Pick<UnsyncedWrite, 'position' | 'bytes'>): Buffer {
  const end = write.position + write.bytes.byteLength
  const result = end > image.byteLength ? Buffer.concat([image, Buffer.alloc(end - image.byteLength)]) : Buffer.from(image)
  write.bytes.copy(result, write.position)
  return result
}

type DirectoryChange = { readonly kind: 'create'; readonly file: string } | { readonly kind: 'unlink'; readonly file: string; readonly image: Buffer }

async function fileSize(file: string): Promise<number | undefined> {
  try {
    return (await fs.stat(file)).size
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

const overlayKey = (key: Buffer): string => key.toString('latin1')

/**
 * The store as a power loss sees it: RocksDB holds exactly what is durable;
 * batches written without `sync` wait in an in-memory overlay (reads merge it
 * over RocksDB) until a synced write carries them down, in order.
 */
class PowerLossStore extends Store {
  /** Unsynced batches, oldest first. */
  private pending: RowWrite[][] = []
  /** The overlay: latest unsynced value per key (null: deleted). latin1 strings order like the bytes. */
  private overlay = new Map<string, { key: Buffer; value: Buffer | null }>()
  private lost = false

  private constructor(
    db: RocksLevel<Buffer, Buffer>,
    directory: string,
    private readonly disk: PowerLossDisk,
    private readonly syncIgnored: ((rows: readonly RowWrite[]) => boolean) | undefined,
  ) {
    super(db, directory)
  }

  static async openOn(disk: PowerLossDisk, directory: string, syncIgnored?: (rows: readonly RowWrite[]) => boolean): Promise<PowerLossStore> {
    const db = await Store.openDatabase(directory)
    const store = new PowerLossStore(db, directory, disk, syncIgnored)
    try {
      await store.checkSchemaVersion()
    } catch (error) {
      if (db.status === 'open') await db.close()
      throw error
    }
    return store
  }

  override async write(rows: readonly RowWrite[], options: { sync: boolean }): Promise<void> {
    if (rows.length === 0) return
    const sync = options.sync && this.syncIgnored?.(rows) !== true
    this.disk.step(sync ? 'store synced write' : 'store write')
    if (!sync) {
      this.pending.push([...rows])
      for (const row of rows) this.overlay.set(overlayKey(row.key), row)
      // Reads see the overlay at once: the store's observers must hear of it as of a written batch.
      this.rowsVisible(rows)
      return
    }
    const carried = this.pending.length
    const written = [...this.pending.flat(), ...rows]
    // The real write need not be synced: only the model decides what a power loss keeps.
    await super.write(written, { sync: false })
    this.pending = this.pending.slice(carried)
    this.overlay = new Map()
    for (const batch of this.pending) for (const row of batch) this.overlay.set(overlayKey(row.key), row)
    // The store told its observers inside `super.write`, while the overlay still shadowed these rows: again, now reads see them.
    this.rowsVisible(written)
    this.disk.assertPowered()
  }

  override async get(key: Buffer): Promise<Buffer | undefined> {
    this.disk.assertPowered()
    const row = this.overlay.get(overlayKey(key))
    if (row !== undefined) return row.value ?? undefined
    return super.get(key)
  }

  override async getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    this.disk.assertPowered()
    // The overlay as of the call: a synced write finishing during the read empties it.
    const mine = keys.map((key) => this.overlay.get(overlayKey(key)))
    const below = await super.getMany(keys)
    return mine.map((row, i) => (row === undefined ? below[i] : (row.value ?? undefined)))
  }

  override getManySync(keys: readonly Buffer[]): (Buffer | undefined)[] {
    this.disk.assertPowered()
    const below = super.getManySync(keys)
    return keys.map((key, i) => {
      const row = this.overlay.get(overlayKey(key))
      return row === undefined ? below[i] : (row.value ?? undefined)
    })
  }

  override async *range(options: RangeOptions): AsyncIterable<[Buffer, Buffer]> {
    this.disk.assertPowered()
    const reverse = options.reverse ?? false
    const limit = options.limit ?? Number.POSITIVE_INFINITY
    if (limit <= 0) return
    const inRange = (key: Buffer): boolean => Buffer.compare(key, options.gte) >= 0 && (options.lt === undefined || Buffer.compare(key, options.lt) < 0)
    const mine = [...this.overlay.values()].filter((row) => inRange(row.key)).sort((a, b) => Buffer.compare(a.key, b.key))
    if (reverse) mine.reverse()
    // Created now, with the overlay captured above: one moment for both (RocksDB iterators read a snapshot).
    const iterator = this.db.iterator({ gte: options.gte, ...(options.lt === undefined ? {} : { lt: options.lt }), reverse })
    try {
      yield* this.merged(iterator, mine, reverse, limit)
    } finally {
      await iterator.close()
    }
  }

  /** Batches merge the overlay too: the merged rows, grouped as the store would batch them. */
  override rangeBatches(options: BatchedRangeOptions): AsyncIterable<readonly [Buffer, Buffer][]> {
    return groupedRows(this.range(options), options)
  }

  /** Short reads merge the overlay too: RocksDB's rows read in batches, overlay rows shadowing them. */
  override rowsSync(range: ShortRange): { rows: [Buffer, Buffer][]; exhausted: boolean } {
    this.disk.assertPowered()
    const inRange = (key: Buffer): boolean => Buffer.compare(key, range.gte) >= 0 && (range.lt === undefined || Buffer.compare(key, range.lt) < 0)
    const mine = [...this.overlay.values()].filter((row) => inRange(row.key)).sort((a, b) => Buffer.compare(a.key, b.key))
    if (range.reverse) mine.reverse()
    const before = (a: Buffer, b: Buffer): boolean => (range.reverse ? Buffer.compare(a, b) > 0 : Buffer.compare(a, b) < 0)
    // RocksDB's rows, a batch at a time (the overlay's deletions may hide many of them).
    let bounds = { gte: range.gte, lt: range.lt }
    let batch: [Buffer, Buffer][] = []
    let at = 0
    let belowExhausted = false
    const nextBelow = (): [Buffer, Buffer] | undefined => {
      if (at === batch.length && !belowExhausted) {
        const read = super.rowsSync({ ...bounds, reverse: range.reverse, limit: shortRangeRowsMax })
        batch = read.rows
        at = 0
        belowExhausted = read.exhausted
        const last = batch[batch.length - 1]
        if (last !== undefined) bounds = range.reverse ? { ...bounds, lt: last[0] } : { ...bounds, gte: Buffer.concat([last[0], Buffer.of(0)]) }
        else belowExhausted = true
      }
      return at < batch.length ? batch[at++] : undefined
    }
    const rows: [Buffer, Buffer][] = []
    let next = 0
    let below = nextBelow()
    // One row past the limit says whether the range holds more.
    while (rows.length <= range.limit) {
      const row = mine[next]
      let taken: [Buffer, Buffer] | undefined
      if (row !== undefined && (below === undefined || before(row.key, below[0]) || row.key.equals(below[0]))) {
        if (below !== undefined && row.key.equals(below[0])) below = nextBelow()
        next += 1
        if (row.value === null) continue
        taken = [row.key, row.value]
      } else if (below !== undefined) {
        taken = below
        below = nextBelow()
      } else {
        break
      }
      rows.push(taken)
    }
    const exhausted = rows.length <= range.limit
    return { rows: rows.slice(0, range.limit), exhausted }
  }

  private async *merged(iterator: AsyncIterable<[Buffer, Buffer]>, mine: { key: Buffer; value: Buffer | null }[], reverse: boolean, limit: number): AsyncIterable<[Buffer, Buffer]> {
    const before = (a: Buffer, b: Buffer): boolean => (reverse ? Buffer.compare(a, b) > 0 : Buffer.compare(a, b) < 0)
    let next = 0
    let yielded = 0
    for await (const [key, value] of iterator) {
      for (let row = mine[next]; row !== undefined && before(row.key, key); row = mine[++next]) {
        if (row.value === null) continue
        yield [row.key, row.value]
        if (++yielded >= limit) return
      }
      const shadow = mine[next]
      if (shadow !== undefined && shadow.key.equals(key)) {
        next += 1
        if (shadow.value === null) continue
        yield [shadow.key, shadow.value]
      } else {
        yield [key, value]
      }
      if (++yielded >= limit) return
    }
    for (let row = mine[next]; row !== undefined; row = mine[++next]) {
      if (row.value === null) continue
      yield [row.key, row.value]
      if (++yielded >= limit) return
    }
  }

  override async close(): Promise<void> {
    // After a power loss the database stays open until `restorePower` decides what it keeps.
    if (this.disk.crashed || this.lost) return
    if (this.pending.length > 0) {
      // A graceful close: RocksDB flushes what it holds.
      await super.write(this.pending.flat(), { sync: false })
      this.pending = []
      this.overlay = new Map()
    }
    this.lost = true
    await super.close()
  }

  /** The power loss: a prefix of the unsynced batches reaches RocksDB, the rest is gone. */
  async loseUnsynced(random: () => number): Promise<{ dropped: number; kept: number }> {
    if (this.lost) return { dropped: 0, kept: 0 }
    this.lost = true
    const fate = random()
    const kept = fate < 0.4 ? 0 : fate < 0.6 ? this.pending.length : Math.floor(random() * (this.pending.length + 1))
    const survivors = this.pending.slice(0, kept).flat()
    const dropped = this.pending.length - kept
    this.pending = []
    this.overlay = new Map()
    if (survivors.length > 0) await super.write(survivors, { sync: false })
    await this.db.close()
    return { dropped, kept }
  }
}
