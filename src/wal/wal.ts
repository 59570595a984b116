/**
 * The write-ahead log: assigns each proposal its index (LSN) and makes it
 * durable by group commit. See docs/wal.md for the format and the rules.
 *
 * Invariants (checked where they change):
 *   tail ≤ durable ≤ head;
 *   segments are contiguous: segment[i + 1].indexFirst = segment[i].indexLast + 1;
 *   tail = segment[0].indexFirst − 1; head = last segment's indexLast;
 *   at most one group is being written at a time, and groups are written in index order.
 */
import { fdatasync, writevSync } from 'node:fs'
import * as fs from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import * as path from 'node:path'
import { invariant } from '../domain/index.ts'
import { WalError, corruption } from './errors.ts'
import {
  encodeEntry,
  entryOverheadBytes,
  indexMax,
  parseSegmentFileName,
  payloadBytesMaxFormat,
  segmentFileName,
  typeMax,
} from './format.ts'
import { offsetStride, readEntries, scanSegment } from './segment.ts'

export interface WalRecord {
  index: number
  epoch: number
  type: number
  payload: Uint8Array
}

/**
 * Every operation by which the WAL changes its files or makes them durable;
 * injectable so tests and the simulator can fail or stall it, and so that a
 * fault layer can model a power loss (what was never synced is lost). Reads
 * are not part of it: they see whatever the files hold.
 */
export interface WalIo {
  /**
   * Writes `buffers` contiguously at `position`; returns the bytes written
   * (may be short). A write done on the JavaScript thread returns its count
   * as a number: the group's `sync` is then called in the same synchronous
   * run, before any other microtask (the node's early apply) can run first.
   */
  write(handle: FileHandle, buffers: Buffer[], position: number): number | Promise<number>
  /** fdatasync. */
  sync(handle: FileHandle): Promise<void>
  /** Opens a segment for writing: `wx` creates it (it must not exist), `r+` opens an existing one. */
  open(file: string, flags: 'wx' | 'r+'): Promise<FileHandle>
  /** Shortens a segment file to `bytes`. */
  truncate(file: string, bytes: number): Promise<void>
  unlink(file: string): Promise<void>
  /** fsync of the directory: makes file creations and deletions in it durable. */
  syncDirectory(directory: string): Promise<void>
  /**
   * Writes zeros over [position, position + bytes) of a segment, beyond every
   * byte of an entry, then fdatasyncs the file: later group writes overwrite
   * allocated blocks of a file whose size does not change, so their
   * fdatasync need not commit the file system's journal (docs/wal.md).
   */
  preallocate(handle: FileHandle, position: number, bytes: number): Promise<void>
}

export interface WalOptions {
  directory: string
  /** default 64 MiB; a segment rolls when an append would exceed it */
  segmentBytesMax?: number
  /** default true: fdatasync on every group flush; false only for tests/bench */
  sync?: boolean
  /** bound on one group write (default 16 MiB); pending bytes are bounded by 4× this */
  groupBytesMax?: number
  /**
   * Zeros written ahead of the entries in the open segment, off the group
   * commit's path (0, the default: none). The lead is twice the bytes groups
   * wrote since open, at least 64 KiB, at most this bound (and never past
   * `segmentBytesMax`).
   */
  preallocateBytes?: number
  /** test/simulator hook: replaces any of the WAL's mutating file operations */
  io?: Partial<WalIo>
}

export interface WalRecovery {
  head: number
  tail: number
  truncatedTornBytes: number
  /** zero bytes found after the last segment's entries (a preallocated region, kept) */
  zeroTailBytes: number
  segments: number
}

export interface WalCounters {
  appendCount: number
  /** groups made durable (one write + one fsync each) */
  groupCount: number
  /** `write`/`writev` calls for groups */
  writeCount: number
  /** fdatasync calls on segment files (0 when sync is off) */
  syncCount: number
  /** fsyncs of the directory (segment creation and deletion) */
  directorySyncCount: number
  bytesWritten: number
  /** zero fills ahead of the entries (each one write run + one fdatasync) */
  preallocateCount: number
  bytesPreallocated: number
}

export const segmentBytesMaxDefault = 64 * 1024 * 1024
export const groupBytesMaxDefault = 16 * 1024 * 1024
/** an append is refused while this many groups' worth of bytes wait to be written */
export const pendingGroupsMax = 4
const bytesMin = 64
const groupBytesMaxLimit = 1024 * 1024 * 1024
const chunkBytesDefault = 1024 * 1024
/** The least lead of zeros ahead; it grows with what was written since open, up to `preallocateBytes`. */
const preallocateLeadMin = 64 * 1024
/**
 * Bytes of one zero fill at most. Each fill changes the file's size, so the
 * group fdatasync that runs beside it may have to wait for the journal
 * commit (and the zeros' writeback) it causes: smaller fills spread that
 * cost over more, shorter waits.
 */
const preallocateFillBytesMax = 256 * 1024
const zeroChunk = Buffer.alloc(1024 * 1024)

interface Config {
  directory: string
  segmentBytesMax: number
  groupBytesMax: number
  pendingBytesMax: number
  recordBytesMax: number
  chunkBytes: number
  sync: boolean
  preallocateBytes: number
  io: WalIo
}

interface Segment {
  indexFirst: number
  /** highest index appended to this segment; indexFirst − 1 when empty */
  indexLast: number
  /** logical size, pending bytes included */
  bytes: number
  /** bytes written to the file (maybe not synced yet) */
  bytesWritten: number
  /** bytes known to be on stable storage */
  bytesDurable: number
  /** size of the file: its entries and, beyond them, zeros written ahead (≥ bytesWritten) */
  bytesFile: number
  /** whether the file exists and its directory entry is synced */
  created: boolean
  file: string
  /** offsets[k] = byte offset of entry indexFirst + k × offsetStride */
  offsets: number[]
}

/** A run of encoded entries for one segment, waiting to be written. */
interface Piece {
  segment: Segment
  buffer: Buffer
  indexFirst: number
  indexLast: number
}

interface Group {
  segment: Segment
  buffers: Buffer[]
  bytes: number
  indexFirst: number
  indexLast: number
}

/** A zero fill in flight on the open segment: [start, end) is not written by groups until it is done. */
interface Fill {
  segment: Segment
  start: number
  done: Promise<void>
}

interface Waiter {
  index: number
  /** Called with the durable index. */
  resolve: (durable: number) => void
  reject: (error: unknown) => void
}

/**
 * A group of at most this many bytes is written on the JavaScript thread
 * when it is then fdatasynced: into the page cache, a few µs, where a
 * thread-pool round trip costs two thread wake-ups and an event-loop turn on
 * every small group (what a lone single-transaction proposal pays;
 * docs/wal.md, "Group commit"). Larger groups (bulks) are written on the
 * pool, and the fdatasync always runs there, so the event loop still turns
 * while a group is made durable. Without sync (tests, benchmarks) every
 * write goes to the pool: written at once, a group would be durable within
 * the same turn, and writes in flight would never overlap.
 */
export const walSyncWriteBytesMax = 128 * 1024

async function writeOnPool(handle: FileHandle, buffers: Buffer[], position: number): Promise<number> {
  const { bytesWritten } = await handle.writev(buffers, position)
  return bytesWritten
}

/**
 * fdatasync of a segment through the callback API rather than
 * `FileHandle.datasync()`: the same one job on libuv's pool, without the
 * handle's promise machinery (its ref count, `finally` and extra turns),
 * ~5 µs less of the JavaScript thread per group (19.0 against 24.9 µs,
 * bench/wal-sync-handoff.ts). The WAL never closes a handle while its sync is
 * in flight: a segment closes once complete and durable, and `close` waits
 * for the flush loop.
 */
export function datasyncHandle(handle: FileHandle): Promise<void> {
  return new Promise((resolve, reject) => {
    fdatasync(handle.fd, (error) => {
      if (error === null) resolve()
      else reject(error)
    })
  })
}

const realIo: WalIo = {
  write(handle, buffers, position) {
    let bytes = 0
    for (const buffer of buffers) bytes += buffer.byteLength
    if (bytes <= walSyncWriteBytesMax) return writevSync(handle.fd, buffers, position)
    return writeOnPool(handle, buffers, position)
  },
  sync: datasyncHandle,
  open(file, flags) {
    return fs.open(file, flags)
  },
  truncate(file, bytes) {
    return fs.truncate(file, bytes)
  },
  unlink(file) {
    return fs.unlink(file)
  },
  async syncDirectory(directory) {
    const handle = await fs.open(directory, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  },
  async preallocate(handle, position, bytes) {
    let at = position
    const end = position + bytes
    while (at < end) {
      const { bytesWritten } = await handle.write(zeroChunk, 0, Math.min(zeroChunk.byteLength, end - at), at)
      invariant(bytesWritten > 0, 'a zero fill makes progress')
      at += bytesWritten
    }
    await handle.datasync()
  },
}

function ioOf(io: Partial<WalIo> | undefined, sync = true): WalIo {
  return { ...realIo, ...(sync ? {} : { write: writeOnPool }), ...(io ?? {}) }
}

function checkByteOption(name: string, value: number | undefined, fallback: number, max: number): number {
  const result = value ?? fallback
  invariant(Number.isSafeInteger(result) && result >= bytesMin && result <= max, `${name} must be an integer in [${bytesMin}, ${max}]`)
  return result
}

function configOf(options: WalOptions): Config {
  invariant(typeof options.directory === 'string' && options.directory.length > 0, 'directory is required')
  const segmentBytesMax = checkByteOption('segmentBytesMax', options.segmentBytesMax, segmentBytesMaxDefault, indexMax)
  const groupBytesMax = checkByteOption('groupBytesMax', options.groupBytesMax, groupBytesMaxDefault, groupBytesMaxLimit)
  const recordBytesMax = Math.min(segmentBytesMax, groupBytesMax, entryOverheadBytes + payloadBytesMaxFormat)
  const preallocateBytes = options.preallocateBytes ?? 0
  invariant(Number.isSafeInteger(preallocateBytes) && preallocateBytes >= 0 && preallocateBytes <= indexMax, 'preallocateBytes must be a non-negative integer')
  return {
    directory: path.resolve(options.directory),
    segmentBytesMax,
    groupBytesMax,
    pendingBytesMax: pendingGroupsMax * groupBytesMax,
    recordBytesMax,
    chunkBytes: Math.min(chunkBytesDefault, groupBytesMax),
    sync: options.sync ?? true,
    preallocateBytes,
    io: ioOf(options.io, options.sync ?? true),
  }
}

async function listSegments(directory: string): Promise<number[]> {
  const names = await fs.readdir(directory)
  const firsts: number[] = []
  for (const name of names) {
    const indexFirst = parseSegmentFileName(name)
    if (indexFirst !== undefined) firsts.push(indexFirst)
  }
  return firsts.sort((a, b) => a - b)
}

async function createEmptySegmentFile(io: WalIo, directory: string, indexFirst: number): Promise<void> {
  const handle = await io.open(path.join(directory, segmentFileName(indexFirst)), 'wx')
  await handle.close()
  await io.syncDirectory(directory)
}

function isErrorCode(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code
}

/**
 * Empties the WAL in `directory` so that it restarts after `head`: the next
 * append gets index head + 1, and head = tail = head. Used when the store is
 * restored from a snapshot taken at `head`. The WAL must not be open.
 *
 * Not atomic across a crash: the caller records "restore complete" only after
 * this resolves and re-runs it on restart otherwise.
 */
export async function resetWal(options: { directory: string; head: number; io?: Partial<WalIo> }): Promise<void> {
  invariant(Number.isSafeInteger(options.head) && options.head >= 0 && options.head < indexMax, 'reset head out of range')
  const directory = path.resolve(options.directory)
  const io = ioOf(options.io)
  await fs.mkdir(directory, { recursive: true })
  for (const indexFirst of await listSegments(directory)) {
    await io.unlink(path.join(directory, segmentFileName(indexFirst)))
  }
  await io.syncDirectory(directory)
  await createEmptySegmentFile(io, directory, options.head + 1)
}

export class Wal {
  readonly #config: Config
  #segments: Segment[]
  #handle: FileHandle | null // open on the last created segment
  #handleSegment: Segment | null

  #head: number
  #durable: number
  #tail: number
  #epochHead: number

  // Pending (appended, not yet handed to a group write). Entries are encoded
  // into `#chunk`; [#pieceStart, #chunkUsed) is the open piece.
  #pieces: Piece[] = []
  #chunk: Buffer | null = null
  #chunkUsed = 0
  #pieceStart = 0
  #pieceIndexFirst = 0
  #pendingBytes = 0

  #flushing = false
  #fill: Fill | null = null
  #flushTarget = 0
  #waiters: Waiter[] = []
  #listeners: Array<(fromIndex: number, toIndex: number) => void> = []
  #pins: number[] = []

  #failure: WalError | null = null
  #closed = false
  #truncationsPending = 0
  #maintenance: Promise<void> = Promise.resolve()
  #truncateGeneration = 0

  readonly #counters: WalCounters = {
    appendCount: 0,
    groupCount: 0,
    writeCount: 0,
    syncCount: 0,
    directorySyncCount: 0,
    bytesWritten: 0,
    preallocateCount: 0,
    bytesPreallocated: 0,
  }

  private constructor(config: Config, segments: Segment[], handle: FileHandle, epochHead: number) {
    const first = segments[0]
    const last = segments[segments.length - 1]
    invariant(first !== undefined && last !== undefined, 'a WAL has at least one segment')
    this.#config = config
    this.#segments = segments
    this.#handle = handle
    this.#handleSegment = last
    this.#head = last.indexLast
    this.#durable = last.indexLast
    this.#tail = first.indexFirst - 1
    this.#epochHead = epochHead
  }

  /** Opens (creating if needed) the WAL in `options.directory`, recovering from a crash. */
  static async open(options: WalOptions): Promise<{ wal: Wal; recovery: WalRecovery }> {
    const config = configOf(options)
    await fs.mkdir(config.directory, { recursive: true })
    let firsts = await listSegments(config.directory)
    if (firsts.length === 0) {
      await createEmptySegmentFile(config.io, config.directory, 1)
      firsts = [1]
    }
    const segments: Segment[] = []
    let epochHead = 0
    let truncatedTornBytes = 0
    let zeroTailBytes = 0
    for (let i = 0; i < firsts.length; i += 1) {
      const indexFirst = firsts[i]
      invariant(indexFirst !== undefined, 'segment list index')
      const file = path.join(config.directory, segmentFileName(indexFirst))
      const previous = segments[segments.length - 1]
      if (previous !== undefined && previous.indexLast + 1 !== indexFirst) {
        throw corruption(file, 0, `segment starts at ${indexFirst} but the previous segment ends at ${previous.indexLast}`)
      }
      const isLast = i === firsts.length - 1
      const image = await fs.readFile(file)
      const scan = scanSegment({ image, file, indexFirst, isLast, epochBefore: epochHead })
      if (scan.bytesTorn > 0) {
        invariant(isLast, 'only the last segment may have a torn tail')
        await config.io.truncate(file, scan.bytesValid)
        truncatedTornBytes += scan.bytesTorn
      }
      if (isLast) zeroTailBytes = scan.bytesZero
      epochHead = scan.epochLast ?? epochHead
      segments.push({
        indexFirst,
        indexLast: scan.indexLast,
        bytes: scan.bytesValid,
        bytesWritten: scan.bytesValid,
        bytesDurable: scan.bytesValid,
        bytesFile: scan.bytesValid + scan.bytesZero,
        created: true,
        file,
        offsets: scan.offsets,
      })
    }
    const last = segments[segments.length - 1]
    invariant(last !== undefined, 'at least one segment')
    // What survived a process crash may still sit in the page cache only: make it durable before reporting it.
    const handle = await config.io.open(last.file, 'r+')
    try {
      // Not `io.sync`: that is the group commit's (tests gate it); this one
      // only hardens what a process crash left in the page cache.
      await handle.datasync()
      await config.io.syncDirectory(config.directory)
    } catch (error) {
      await handle.close()
      throw error
    }
    const wal = new Wal(config, segments, handle, epochHead)
    wal.#counters.directorySyncCount += 1
    wal.#preallocateAhead()
    return {
      wal,
      recovery: { head: wal.#head, tail: wal.#tail, truncatedTornBytes, zeroTailBytes, segments: segments.length },
    }
  }

  /** highest index appended (maybe not yet durable); 0 when empty */
  get head(): number {
    return this.#head
  }

  /** highest index fsynced */
  get durable(): number {
    return this.#durable
  }

  /** entries with index > tail are retained (0 = nothing recycled) */
  get tail(): number {
    return this.#tail
  }

  /**
   * The highest index whose segment may go for the segments kept to hold
   * at most `bytesMax` bytes: walking from the newest segment, the first
   * one that takes the sum over `bytesMax`, and every older one, may go
   * (0 when all of them fit). The open segment always stays (`recycle`).
   */
  indexKeepingBytes(bytesMax: number): number {
    invariant(Number.isSafeInteger(bytesMax) && bytesMax >= 0, () => `indexKeepingBytes(${bytesMax}): not a non-negative integer`)
    let kept = 0
    for (let at = this.#segments.length - 1; at >= 0; at--) {
      const segment = this.#segments[at] as Segment
      kept += segment.bytes
      if (kept > bytesMax) return segment.indexLast
    }
    return 0
  }

  /** epoch of the entry at head (or of the last entry seen before a reset; 0 for a new WAL) */
  get epochHead(): number {
    return this.#epochHead
  }

  /** a snapshot of the I/O counters */
  get counters(): WalCounters {
    return { ...this.#counters }
  }

  get segmentCount(): number {
    return this.#segments.length
  }

  /** the largest payload one append accepts (the record bound less the entry's header and trailer) */
  get payloadBytesMax(): number {
    return this.#config.recordBytesMax - entryOverheadBytes
  }

  /** bytes appended but not yet handed to a group write */
  get pendingBytes(): number {
    return this.#pendingBytes
  }

  /** SYNCHRONOUS: assigns index = head + 1, encodes the entry into the pending buffer and returns the index. */
  append(record: { epoch: number; type: number; payload: Uint8Array }): number {
    this.#assertWritable()
    const { epoch, type, payload } = record
    invariant(Number.isSafeInteger(epoch) && epoch >= 0, () => `epoch ${epoch} is not a non-negative safe integer`)
    invariant(epoch >= this.#epochHead, () => `epoch ${epoch} is below the epoch at head ${this.#epochHead}`)
    invariant(Number.isInteger(type) && type >= 0 && type <= typeMax, () => `type ${type} is not a u8`)
    invariant(payload instanceof Uint8Array, 'payload is a Uint8Array')
    const bytes = entryOverheadBytes + payload.byteLength
    if (bytes > this.#config.recordBytesMax) {
      throw new WalError({
        reason: 'RECORD_TOO_LARGE',
        message: `entry of ${bytes} bytes exceeds the ${this.#config.recordBytesMax}-byte record bound`,
      })
    }
    if (this.#pendingBytes + bytes > this.#config.pendingBytesMax) {
      throw new WalError({
        reason: 'RESOURCE_EXHAUSTED',
        message: `${this.#pendingBytes} bytes already wait to be written (bound ${this.#config.pendingBytesMax})`,
      })
    }
    const index = this.#head + 1
    invariant(index <= indexMax, 'index space exhausted')

    let segment = this.#segmentLast()
    if (segment.bytes > 0 && segment.bytes + bytes > this.#config.segmentBytesMax) {
      this.#sealPiece()
      segment = this.#rollSegment(index)
    }
    if (this.#chunk === null || this.#chunk.byteLength - this.#chunkUsed < bytes) {
      this.#sealPiece()
      this.#chunk = Buffer.allocUnsafeSlow(Math.max(this.#config.chunkBytes, bytes))
      this.#chunkUsed = 0
      this.#pieceStart = 0
    }
    if (this.#chunkUsed === this.#pieceStart) this.#pieceIndexFirst = index
    const written = encodeEntry(this.#chunk, this.#chunkUsed, { index, epoch, type, payload })
    invariant(written === bytes, 'encoded size matches')
    if ((index - segment.indexFirst) % offsetStride === 0) segment.offsets.push(segment.bytes)
    segment.bytes += bytes
    segment.indexLast = index
    this.#chunkUsed += bytes
    this.#pendingBytes += bytes
    this.#head = index
    this.#epochHead = epoch
    this.#counters.appendCount += 1
    return index
  }

  /**
   * Resolves when every record appended before the call is durable; returns
   * `durable`. Concurrent callers share one write + fsync (group commit).
   */
  flush(): Promise<number> {
    if (this.#failure !== null) return Promise.reject(this.#failure)
    const target = this.#head
    if (this.#durable >= target) return Promise.resolve(this.#durable)
    return new Promise<number>((resolve, reject) => {
      this.#waiters.push({ index: target, resolve, reject })
      this.#requestFlush(target)
    })
  }

  /** Resolves once `index` is durable (starting a group write if needed); returns `durable`. */
  waitDurable(index: number): Promise<number> {
    invariant(Number.isSafeInteger(index) && index >= 0, `index ${index} is not a non-negative integer`)
    invariant(index <= this.#head, () => `waitDurable(${index}) beyond head ${this.#head}`)
    if (this.#durable >= index) return Promise.resolve(this.#durable)
    if (this.#failure !== null) return Promise.reject(this.#failure)
    // The same waiter shape as `flush`'s: no closure per wait.
    return new Promise<number>((resolve, reject) => {
      this.#waiters.push({ index, resolve, reject })
      this.#requestFlush(index)
    })
  }

  /**
   * `listener(fromIndex, toIndex)` runs synchronously after each group becomes
   * durable, in index order. A listener that throws crashes the process (the
   * error is rethrown on the next tick): the WAL never swallows it.
   * Returns the unsubscribe function.
   */
  onDurable(listener: (fromIndex: number, toIndex: number) => void): () => void {
    this.#listeners.push(listener)
    return () => {
      this.#listeners = this.#listeners.filter((candidate) => candidate !== listener)
    }
  }

  /**
   * Keeps every entry with index > `indexAfter` from being recycled until the
   * returned release function is called (replication catch-up pins). Throws
   * RECYCLED when those entries are already gone.
   */
  pinRetention(indexAfter: number): () => void {
    invariant(Number.isSafeInteger(indexAfter) && indexAfter >= 0, 'pin index is a non-negative integer')
    if (indexAfter < this.#tail) {
      throw new WalError({ reason: 'RECYCLED', message: `cannot pin after ${indexAfter}: tail is ${this.#tail}` })
    }
    this.#pins.push(indexAfter)
    let released = false
    return () => {
      if (released) return
      released = true
      const at = this.#pins.indexOf(indexAfter)
      invariant(at >= 0, 'pin is registered')
      this.#pins.splice(at, 1)
    }
  }

  /**
   * Retained, durable records with fromIndex ≤ index ≤ toIndex, in order.
   * `toIndex` defaults to, and is clamped to, `durable` at the time of the call.
   * Throws RECYCLED if fromIndex ≤ tail (now, or when iteration reaches a
   * segment recycled meanwhile); CONCURRENT_TRUNCATE if truncateAfter runs
   * during the iteration.
   */
  read(fromIndex: number, toIndex?: number): AsyncIterable<WalRecord> {
    if (this.#closed) throw new WalError({ reason: 'CLOSED', message: 'read after close' })
    invariant(Number.isSafeInteger(fromIndex) && fromIndex >= 1, `read from ${fromIndex}: not a positive integer`)
    invariant(toIndex === undefined || Number.isSafeInteger(toIndex), 'read toIndex is an integer')
    if (fromIndex <= this.#tail) {
      throw new WalError({ reason: 'RECYCLED', message: `read from ${fromIndex}: entries up to ${this.#tail} are recycled` })
    }
    const last = Math.min(toIndex ?? this.#durable, this.#durable)
    const generation = this.#truncateGeneration
    return { [Symbol.asyncIterator]: () => this.#iterate(fromIndex, last, generation) }
  }

  /**
   * Drops every record > index (replica divergence repair); head and durable
   * become `index`. Appends are refused (BUSY) while it runs. Records ≤ index
   * that were pending are made durable first.
   */
  truncateAfter(index: number): Promise<void> {
    invariant(Number.isSafeInteger(index) && index >= 0, `truncateAfter(${index}): not a non-negative integer`)
    invariant(index <= this.#head, () => `truncateAfter(${index}) beyond head ${this.#head}`)
    if (index < this.#tail) {
      return Promise.reject(new WalError({ reason: 'RECYCLED', message: `truncateAfter(${index}) below tail ${this.#tail}` }))
    }
    try {
      this.#assertWritable()
    } catch (error) {
      return Promise.reject(error)
    }
    this.#truncationsPending += 1 // appends are refused from now on, not from when the operation starts
    return this.#exclusive(async () => {
      try {
        if (this.#closed) throw new WalError({ reason: 'CLOSED', message: 'truncateAfter after close' })
        await this.flush()
        if (index < this.#tail) {
          throw new WalError({ reason: 'RECYCLED', message: `truncateAfter(${index}) below tail ${this.#tail}` })
        }
        invariant(index <= this.#head, 'no append slipped in before the truncation')
        if (index < this.#head) await this.#truncateFiles(index)
      } finally {
        this.#truncationsPending -= 1
      }
    })
  }

  /**
   * Deletes whole segments whose records are all ≤ min(upToIndex, durable,
   * every retention pin); never the segment holding head. Returns the new tail.
   */
  recycle(upToIndex: number): Promise<number> {
    invariant(Number.isSafeInteger(upToIndex) && upToIndex >= 0, `recycle(${upToIndex}): not a non-negative integer`)
    return this.#exclusive(async () => {
      if (this.#closed) throw new WalError({ reason: 'CLOSED', message: 'recycle after close' })
      const limit = Math.min(upToIndex, this.#durable, ...this.#pins)
      let deleted = 0
      for (;;) {
        const first = this.#segments[0]
        const second = this.#segments[1]
        if (first === undefined || second === undefined) break
        if (first.indexLast > limit || !second.created) break
        invariant(first !== this.#handleSegment, 'the open segment is never recycled')
        invariant(first.bytesDurable === first.bytes, 'a recycled segment is fully durable')
        await this.#config.io.unlink(first.file)
        this.#segments.shift()
        this.#tail = second.indexFirst - 1
        deleted += 1
      }
      if (deleted > 0) await this.#syncDirectory()
      invariant(this.#tail <= this.#durable, 'tail ≤ durable')
      return this.#tail
    })
  }

  /** Flushes and closes; further appends throw CLOSED. Rejects if the WAL had failed. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true // appends now throw CLOSED
    await this.#maintenance.catch(() => undefined)
    let flushError: unknown
    try {
      await this.flush()
    } catch (error) {
      flushError = error
    }
    invariant(!this.#flushing || flushError !== undefined, 'no group in flight after the final flush')
    await this.#fill?.done
    const handle = this.#handle
    this.#handle = null
    this.#handleSegment = null
    if (handle !== null) await handle.close()
    this.#rejectWaiters(new WalError({ reason: 'CLOSED', message: 'closed' }))
    if (flushError !== undefined) throw flushError
  }

  // ---------------------------------------------------------------- internals

  #assertWritable(): void {
    if (this.#failure !== null) throw this.#failure
    if (this.#closed) throw new WalError({ reason: 'CLOSED', message: 'append after close' })
    if (this.#truncationsPending > 0) throw new WalError({ reason: 'BUSY', message: 'truncateAfter in progress' })
  }

  #segmentLast(): Segment {
    const last = this.#segments[this.#segments.length - 1]
    invariant(last !== undefined, 'a WAL has at least one segment')
    return last
  }

  #rollSegment(indexFirst: number): Segment {
    const segment: Segment = {
      indexFirst,
      indexLast: indexFirst - 1,
      bytes: 0,
      bytesWritten: 0,
      bytesDurable: 0,
      bytesFile: 0,
      created: false,
      file: path.join(this.#config.directory, segmentFileName(indexFirst)),
      offsets: [],
    }
    this.#segments.push(segment)
    return segment
  }

  /** Closes the open piece (it belongs to the last segment) and queues it. */
  #sealPiece(): void {
    if (this.#chunk === null || this.#chunkUsed === this.#pieceStart) return
    this.#pieces.push({
      segment: this.#segmentLast(),
      buffer: this.#chunk.subarray(this.#pieceStart, this.#chunkUsed),
      indexFirst: this.#pieceIndexFirst,
      indexLast: this.#head,
    })
    this.#pieceStart = this.#chunkUsed
  }

  /** Pending pieces of the first pending segment, up to groupBytesMax (at least one piece). */
  #takeGroup(): Group {
    this.#sealPiece()
    const first = this.#pieces[0]
    invariant(first !== undefined, 'a group needs pending entries')
    const group: Group = { segment: first.segment, buffers: [], bytes: 0, indexFirst: first.indexFirst, indexLast: 0 }
    while (this.#pieces.length > 0) {
      const piece = this.#pieces[0]
      invariant(piece !== undefined, 'piece present')
      if (piece.segment !== group.segment) break
      if (group.bytes > 0 && group.bytes + piece.buffer.byteLength > this.#config.groupBytesMax) break
      invariant(group.bytes === 0 || piece.indexFirst === group.indexLast + 1, 'pieces are contiguous')
      group.buffers.push(piece.buffer)
      group.bytes += piece.buffer.byteLength
      group.indexLast = piece.indexLast
      this.#pieces.shift()
    }
    invariant(group.bytes <= this.#config.groupBytesMax, 'a group respects groupBytesMax')
    this.#pendingBytes -= group.bytes
    invariant(this.#pendingBytes >= 0, 'pending bytes never negative')
    return group
  }

  #requestFlush(target: number): void {
    this.#flushTarget = Math.max(this.#flushTarget, target)
    if (this.#flushing) return
    this.#flushing = true
    // Start on a microtask so that appends made in the same synchronous run join the group.
    queueMicrotask(() => {
      this.#runFlushLoop().catch((error: unknown) => this.#fail(error))
    })
  }

  async #runFlushLoop(): Promise<void> {
    try {
      while (this.#failure === null && this.#durable < this.#flushTarget) {
        invariant(this.#pendingBytes > 0, 'entries below the flush target are pending')
        const group = this.#takeGroup()
        await this.#writeGroup(group)
        this.#markDurable(group)
        this.#preallocateAhead()
      }
    } catch (error) {
      this.#fail(error)
    } finally {
      this.#flushing = false
    }
  }

  async #writeGroup(group: Group): Promise<void> {
    const { segment } = group
    if (!segment.created) await this.#createSegment(segment)
    invariant(this.#handle !== null && this.#handleSegment === segment, 'groups go to the open segment')
    invariant(group.indexFirst === this.#durable + 1, 'groups are written in index order')
    let position = segment.bytesWritten
    const fill = this.#fill
    // The zeros must land before the entries they make room for, never over them.
    if (fill !== null && fill.segment === segment && position + group.bytes > fill.start) {
      await fill.done
      if (this.#failure !== null) throw this.#failure
    }
    let buffers = group.buffers
    let remaining = group.bytes
    while (remaining > 0) {
      // A write made on this thread is not awaited: the fdatasync must be on its way before the
      // microtasks queued meanwhile run (the node applies the group while it is made durable).
      const writing = this.#config.io.write(this.#handle, buffers, position)
      const written = typeof writing === 'number' ? writing : await writing
      this.#counters.writeCount += 1
      invariant(written > 0 && written <= remaining, 'write made progress')
      position += written
      remaining -= written
      buffers = remaining > 0 ? skipBytes(buffers, written) : []
    }
    segment.bytesWritten = position
    segment.bytesFile = Math.max(segment.bytesFile, position)
    this.#counters.bytesWritten += group.bytes
    if (this.#config.sync) {
      await this.#config.io.sync(this.#handle)
      this.#counters.syncCount += 1
    }
    segment.bytesDurable = segment.bytesWritten
  }

  async #createSegment(segment: Segment): Promise<void> {
    const handle = await this.#config.io.open(segment.file, 'wx')
    try {
      await this.#syncDirectory()
    } catch (error) {
      await handle.close()
      throw error
    }
    // A fill in flight writes through the previous segment's handle.
    await this.#fill?.done
    if (this.#failure !== null) {
      await handle.close()
      throw this.#failure
    }
    const previous = this.#handle
    const previousSegment = this.#handleSegment
    invariant(previousSegment === null || previousSegment.bytesDurable === previousSegment.bytes, 'a segment is complete before the next opens')
    this.#handle = handle
    this.#handleSegment = segment
    segment.created = true
    if (previous !== null) await previous.close()
  }

  /**
   * Starts a zero fill of the open segment when fewer than half the current
   * lead's bytes of zeros are left ahead of its entries (pending ones
   * included). Runs beside group writes: it starts beyond every byte
   * appended so far, and a group that would write into it waits for it.
   * Its failure (a write or fdatasync error on the segment) fails the WAL,
   * like a group's: its fdatasync may have been the one to see an error
   * about the entries' pages.
   */
  #preallocateAhead(): void {
    if (this.#config.preallocateBytes === 0 || this.#fill !== null || this.#failure !== null || this.#closed || this.#truncationsPending > 0) return
    const segment = this.#handleSegment
    const handle = this.#handle
    // A rolled segment not yet created gets its zeros once its first group made it.
    if (segment === null || handle === null || segment !== this.#segmentLast()) return
    // A WAL that writes little keeps few zeros ahead: the lead is twice what groups wrote since open, within bounds.
    const lead = Math.min(this.#config.preallocateBytes, Math.max(preallocateLeadMin, 2 * this.#counters.bytesWritten))
    if (segment.bytesFile - segment.bytes >= lead / 2) return
    const start = Math.max(segment.bytesFile, segment.bytes)
    const end = Math.min(this.#config.segmentBytesMax, segment.bytes + lead, start + preallocateFillBytesMax)
    if (end <= start) return
    const fill: Fill = { segment, start, done: Promise.resolve() }
    fill.done = this.#config.io
      .preallocate(handle, start, end - start)
      .then(
        () => {
          segment.bytesFile = Math.max(segment.bytesFile, end)
          this.#counters.preallocateCount += 1
          this.#counters.bytesPreallocated += end - start
        },
        (error: unknown) => this.#fail(error),
      )
      .finally(() => {
        if (this.#fill === fill) this.#fill = null
      })
    this.#fill = fill
  }

  #markDurable(group: Group): void {
    invariant(group.indexLast > this.#durable && group.indexLast <= this.#head, 'durable advances within head')
    this.#durable = group.indexLast
    this.#counters.groupCount += 1
    for (const listener of [...this.#listeners]) {
      try {
        listener(group.indexFirst, group.indexLast)
      } catch (error) {
        process.nextTick(() => {
          throw error
        })
      }
    }
    const durable = this.#durable
    const still: Waiter[] = []
    for (const waiter of this.#waiters) {
      if (waiter.index <= durable) waiter.resolve(durable)
      else still.push(waiter)
    }
    this.#waiters = still
  }

  #fail(error: unknown): void {
    if (this.#failure !== null) return
    this.#failure =
      error instanceof WalError && error.reason === 'FAILED'
        ? error
        : new WalError({
            reason: 'FAILED',
            message: `write or fsync failed; durable index stays ${this.#durable}: ${error instanceof Error ? error.message : String(error)}`,
            cause: error,
          })
    this.#rejectWaiters(this.#failure)
  }

  #rejectWaiters(error: WalError): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const waiter of waiters) waiter.reject(error)
  }

  async #syncDirectory(): Promise<void> {
    await this.#config.io.syncDirectory(this.#config.directory)
    this.#counters.directorySyncCount += 1
  }

  #exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#maintenance.then(operation)
    this.#maintenance = result.then(
      () => undefined,
      () => undefined,
    )
    return result
  }

  /** Everything is durable and no group is in flight; appends are blocked. */
  async #truncateFiles(index: number): Promise<void> {
    await this.#fill?.done
    if (this.#failure !== null) throw this.#failure
    invariant(!this.#flushing && this.#pendingBytes === 0 && this.#durable === this.#head, 'truncate runs on a quiescent WAL')
    invariant(index >= this.#tail && index < this.#head, 'truncate index within (tail, head)')
    this.#truncateGeneration += 1
    // The segment that will hold index + 1: the last one starting at or before it.
    let keep = 0
    while (keep + 1 < this.#segments.length && (this.#segments[keep + 1]?.indexFirst ?? Infinity) <= index + 1) keep += 1
    const target = this.#segments[keep]
    invariant(target !== undefined, 'truncate target segment exists')
    const doomed = this.#segments.slice(keep + 1).reverse() // newest first: a crash leaves a valid prefix
    if (doomed.length > 0) {
      if (this.#handle !== null) await this.#handle.close()
      this.#handle = null
      this.#handleSegment = null
      for (const segment of doomed) await this.#config.io.unlink(segment.file)
      await this.#syncDirectory()
      this.#segments.length = keep + 1
    }
    const { offset, epoch } = await this.#locateEnd(target, index)
    const handle = this.#handle ?? (await this.#config.io.open(target.file, 'r+'))
    this.#handle = handle
    this.#handleSegment = target
    await this.#config.io.truncate(target.file, offset)
    await this.#config.io.sync(handle)
    this.#counters.syncCount += 1
    target.indexLast = index
    target.bytes = offset
    target.bytesWritten = offset
    target.bytesDurable = offset
    target.bytesFile = offset
    target.offsets.length = Math.ceil((index - target.indexFirst + 1) / offsetStride)
    this.#head = index
    this.#durable = index
    this.#flushTarget = Math.min(this.#flushTarget, index)
    if (epoch !== undefined) this.#epochHead = epoch
    this.#chunk = null
    this.#chunkUsed = 0
    this.#pieceStart = 0
  }

  /** Byte offset just after entry `index` in `segment` (0 when index precedes it) and that entry's epoch. */
  async #locateEnd(segment: Segment, index: number): Promise<{ offset: number; epoch: number | undefined }> {
    if (index < segment.indexFirst) return { offset: 0, epoch: undefined }
    invariant(index <= segment.indexLast, 'located index lies in the segment')
    const slot = Math.floor((index - segment.indexFirst) / offsetStride)
    const offsetStart = segment.offsets[slot]
    invariant(offsetStart !== undefined, 'sparse offset present')
    const handle = await fs.open(segment.file, 'r')
    try {
      const entries = readEntries({
        handle,
        file: segment.file,
        offsetStart,
        offsetEnd: segment.bytesDurable,
        indexStart: segment.indexFirst + slot * offsetStride,
      })
      for await (const entry of entries) {
        if (entry.header.index === index) return { offset: entry.offsetEnd, epoch: entry.header.epoch }
      }
    } finally {
      await handle.close()
    }
    throw corruption(segment.file, segment.bytesDurable, `entry ${index} not found`)
  }

  async *#iterate(fromIndex: number, toIndex: number, generation: number): AsyncGenerator<WalRecord> {
    let next = fromIndex
    while (next <= toIndex) {
      if (generation !== this.#truncateGeneration) {
        throw new WalError({ reason: 'CONCURRENT_TRUNCATE', message: `truncateAfter ran while reading at ${next}` })
      }
      if (next <= this.#tail) {
        throw new WalError({ reason: 'RECYCLED', message: `read at ${next}: entries up to ${this.#tail} are recycled` })
      }
      const segment = this.#segments.find((candidate) => candidate.indexFirst <= next && next <= candidate.indexLast)
      invariant(segment !== undefined, () => `a retained segment holds durable index ${next}`)
      const slot = Math.floor((next - segment.indexFirst) / offsetStride)
      const offsetStart = segment.offsets[slot]
      invariant(offsetStart !== undefined, 'sparse offset present')
      let handle: FileHandle
      try {
        handle = await fs.open(segment.file, 'r')
      } catch (error) {
        if (isErrorCode(error, 'ENOENT')) {
          throw new WalError({ reason: 'RECYCLED', message: `read at ${next}: segment recycled meanwhile`, cause: error })
        }
        throw error
      }
      try {
        const entries = readEntries({
          handle,
          file: segment.file,
          offsetStart,
          offsetEnd: segment.bytesDurable,
          indexStart: segment.indexFirst + slot * offsetStride,
        })
        for await (const entry of entries) {
          const { index, epoch, type } = entry.header
          if (index < next) continue
          if (generation !== this.#truncateGeneration) {
            throw new WalError({ reason: 'CONCURRENT_TRUNCATE', message: `truncateAfter ran while reading at ${index}` })
          }
          yield { index, epoch, type, payload: new Uint8Array(entry.payload) }
          next = index + 1
          if (next > toIndex || next > segment.indexLast) break
        }
      } catch (error) {
        // A file shortened under us by truncateAfter reads as damage: report the race, not corruption.
        if (generation !== this.#truncateGeneration && !(error instanceof WalError && error.reason === 'CONCURRENT_TRUNCATE')) {
          throw new WalError({ reason: 'CONCURRENT_TRUNCATE', message: `truncateAfter ran while reading at ${next}`, cause: error })
        }
        throw error
      } finally {
        await handle.close()
      }
      if (next <= toIndex && next <= segment.indexLast) {
        throw corruption(segment.file, segment.bytesDurable, `segment ended before durable entry ${next}`)
      }
    }
  }
}

/** The buffers left after dropping the first `count` bytes. */
function skipBytes(buffers: Buffer[], count: number): Buffer[] {
  let skip = count
  const rest: Buffer[] = []
  for (const buffer of buffers) {
    if (skip >= buffer.byteLength) {
      skip -= buffer.byteLength
      continue
    }
    rest.push(skip > 0 ? buffer.subarray(skip) : buffer)
    skip = 0
  }
  return rest
}
