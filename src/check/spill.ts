import { mkdtempSync, rmSync } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { open } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { RocksLevel } from '@nxtedition/rocksdb'
import type { RocksChainedBatch } from '@nxtedition/rocksdb'
import { invariant } from '../domain/errors.ts'

/** Spilled rows read back per `nextv`: about this many bytes, at most this many rows. */
const spillReadBatchBytes = 1024 * 1024
const spillReadBatchRowsMax = 4096
/** The options of every row copied into a spill batch: none (the binding reads a column family from them). */
const NO_OPTIONS = Object.freeze({})

/**
 * The spill database's options (binding-specific): memtables within 16 MiB
 * (the binding's 'level' setup: four of 4 MiB, six at worst while flushes
 * lag) instead of RocksDB's 2 × 64 MiB, which held a whole spill in native
 * memory a second time; and no compression: digests do not compress, and
 * the rows are read back once.
 */
const spillDatabaseOptions = { compaction: 'level', memtableMemoryBudget: 16 * 2 ** 20, compression: false }

/** Default memory `tally check` may hold for rows it compares before it spills them to disk. */
export const checkMemoryBytesDefault = 256 * 2 ** 20

/**
 * A temporary RocksDB the check spills rows to when they outgrow its memory
 * bound. Created on the first spill only (a small ledger never touches the
 * disk), under `directory` (default: the OS temp directory), and removed
 * when closed. Each user owns one key prefix byte.
 */
export class SpillDisk {
  private db: RocksLevel<Buffer, Buffer> | undefined
  private location: string | undefined
  private opening: Promise<RocksLevel<Buffer, Buffer>> | undefined
  private files: FileHandle[] = []

  constructor(
    private readonly directory: string | undefined,
    /** Told the temporary directory once it is made (a check whose spill lives on another thread removes it too, should that thread die). */
    private readonly onDirectory?: (location: string) => void,
  ) {}

  /** The directory in use once something was spilled (for progress and tests). */
  get path(): string | undefined {
    return this.location
  }

  /** The temporary directory, made on first use (removed by `close`). */
  private directoryInUse(): string {
    if (this.location === undefined) {
      this.location = mkdtempSync(path.join(this.directory ?? os.tmpdir(), 'tally-check-spill-'))
      this.onDirectory?.(this.location)
    }
    return this.location
  }

  async open(): Promise<RocksLevel<Buffer, Buffer>> {
    this.opening ??= (async () => {
      const db = new RocksLevel<Buffer, Buffer>(path.join(this.directoryInUse(), 'rows'), { keyEncoding: 'buffer', valueEncoding: 'buffer' })
      await db.open({ createIfMissing: true, ...spillDatabaseOptions } as object)
      this.db = db
      return db
    })()
    return this.opening
  }

  /** A flat file of the spill directory, opened for appending and reading (rows that arrive in order need no index: `OrderedSpillRows`); closed by `close`. */
  async openFile(name: string): Promise<FileHandle> {
    const file = await open(path.join(this.directoryInUse(), name), 'a+')
    this.files.push(file)
    return file
  }

  /** A point read on the calling thread: the replay plans synchronously. */
  getSync(key: Buffer): Buffer | undefined {
    if (this.db === undefined) return undefined
    return this.db._getManySync([key])[0] ?? undefined
  }

  async close(): Promise<void> {
    for (const file of this.files.splice(0)) await file.close()
    if (this.opening !== undefined) await (await this.opening).close()
    if (this.location !== undefined) rmSync(this.location, { recursive: true, force: true })
    this.db = undefined
    this.opening = undefined
    this.location = undefined
  }

  /**
   * The rows under `prefix`, in key order, in the batches `nextv` reads
   * them in (one promise per batch, not per row: the comparison reads back
   * every spilled row).
   */
  async *range(prefix: number): AsyncGenerator<[Buffer, Buffer][]> {
    if (this.db === undefined) return
    const iterator = this.db.iterator({ gte: Buffer.of(prefix), lt: Buffer.of(prefix + 1), highWaterMarkBytes: spillReadBatchBytes } as object)
    try {
      for (;;) {
        const entries = (await iterator.nextv(spillReadBatchRowsMax)) as [Buffer, Buffer][]
        if (entries.length === 0) return
        yield entries
      }
    } finally {
      await iterator.close()
    }
  }
}

/** A value as the check keeps it: a row's bytes, or a row digest (text). */
export type SpilledValue = Buffer | string

/**
 * Rows keyed by their store key (as a latin1 string), held in memory up to
 * `bytesMax` and beyond that spilled to a `SpillDisk` under one prefix byte:
 * the memory the check holds is bounded by configuration, not by the
 * ledger's size. A deletion is remembered (null) until spilled, where it
 * deletes. `sorted()` walks the union in store key order, memory over disk,
 * so the comparison streams both sides in one ordered pass.
 *
 * Digests (`isDigest(zone)`: rows the replay only writes) are spilled
 * first: while the rows kept whole (the replay's seeds, read back while
 * planning) hold at most half the bound, only digests go to disk, so the
 * seeds stay in memory instead of costing a point read on disk each.
 */
export class SpillRows {
  private pending = new Map<string, SpilledValue | null>()
  /** Bytes held of rows kept whole and of deletions. */
  private wholeBytes = 0
  /** Bytes held of digests. */
  private digestBytes = 0
  private spilledAny = false
  spills = 0

  constructor(
    private readonly disk: SpillDisk,
    private readonly prefix: number,
    private readonly bytesMax: number,
    private readonly isDigest: (zone: number) => boolean,
  ) {}

  get overBudget(): boolean {
    return this.wholeBytes + this.digestBytes > this.bytesMax
  }

  get(id: string): SpilledValue | undefined {
    const held = this.pending.get(id)
    if (held !== undefined) return held ?? undefined
    if (!this.spilledAny) return undefined
    const row = this.disk.getSync(diskKeyOf(this.prefix, id))
    return row === undefined ? undefined : this.revive(id, row)
  }

  set(id: string, value: SpilledValue | null): void {
    const before = this.pending.get(id)
    if (before !== undefined) this.count(id, before, -1)
    this.pending.set(id, value)
    this.count(id, value, 1)
  }

  private count(id: string, value: SpilledValue | null, sign: 1 | -1): void {
    if (typeof value === 'string') this.digestBytes += sign * entryBytes(id, value)
    else this.wholeBytes += sign * entryBytes(id, value)
  }

  /** Moves held rows to disk, in one batch: the digests alone while the whole rows fit in half the bound, else everything. */
  async spill(): Promise<void> {
    if (this.pending.size === 0) return
    if (this.digestBytes > 0 && this.wholeBytes <= this.bytesMax / 2) {
      const digests: [string, string][] = []
      const kept = new Map<string, SpilledValue | null>()
      for (const [id, value] of this.pending) {
        if (typeof value === 'string') digests.push([id, value])
        else kept.set(id, value)
      }
      this.pending = kept
      this.digestBytes = 0
      await this.writeToDisk(digests)
      return
    }
    await this.writeToDisk(this.pending)
    this.pending = new Map()
    this.wholeBytes = 0
    this.digestBytes = 0
  }

  /** Writes entries to disk in one chained batch (closed by `write()`; `Store.write` says why), a null deleting. */
  private async writeToDisk(entries: Iterable<readonly [string, SpilledValue | null]>): Promise<void> {
    const db = await this.disk.open()
    const batch = db.batch()
    // Rows go straight into the binding's batch, as `Store.write` puts them: abstract-level's
    // `put` would re-check each, map it through the identity 'buffer' encodings and keep an
    // operation object per row for a 'batch' event nobody listens to.
    const rocksBatch = batch as unknown as RocksChainedBatch
    try {
      for (const [id, value] of entries) {
        const key = diskKeyOf(this.prefix, id)
        if (value === null) rocksBatch._del(key, NO_OPTIONS)
        else rocksBatch._put(key, typeof value === 'string' ? Buffer.from(value, 'latin1') : value, NO_OPTIONS)
      }
    } catch (error) {
      await batch.close() // nothing of it was written
      throw error
    }
    await batch.write()
    this.spilledAny = true
    this.spills++
  }

  /** A row read back from disk under the id whose first character is its zone. */
  private revive(id: string, row: Buffer): SpilledValue {
    return this.isDigest(id.charCodeAt(0)) ? row.toString('latin1') : row
  }

  /**
   * Every live row in store key order, in batches (an await per batch, not
   * per row): memory shadows disk (a pending null hides a spilled row).
   */
  async *sorted(): AsyncGenerator<[string, SpilledValue][]> {
    const held = [...this.pending.keys()].sort(compareLatin1)
    const disk = this.spilledAny ? this.disk.range(this.prefix) : undefined
    let rows: [Buffer, Buffer][] = []
    let at = 0
    let diskId: string | undefined
    let diskDone = disk === undefined
    /** The next disk row, if the batch holds one (no await); false when the next batch must be read (`refill`). */
    const advance = (): boolean => {
      at++
      diskId = at < rows.length ? (rows[at] as [Buffer, Buffer])[0].toString('latin1', 1) : undefined
      return diskId !== undefined || diskDone
    }
    const refill = async (): Promise<void> => {
      while (at >= rows.length && !diskDone) {
        const step = await (disk as AsyncGenerator<[Buffer, Buffer][]>).next()
        if (step.done === true) diskDone = true
        else {
          rows = step.value
          at = 0
        }
      }
      diskId = at < rows.length ? (rows[at] as [Buffer, Buffer])[0].toString('latin1', 1) : undefined
    }
    try {
      at = -1
      if (!advance()) await refill()
      let next = 0
      let batch: [string, SpilledValue][] = []
      for (;;) {
        const heldId = held[next]
        if (diskId === undefined && heldId === undefined) break
        if (heldId !== undefined && (diskId === undefined || compareLatin1(heldId, diskId) <= 0)) {
          next++
          if (heldId === diskId && !advance()) await refill()
          const value = this.pending.get(heldId)
          if (value !== null && value !== undefined) batch.push([heldId, value])
        } else {
          const id = diskId as string
          batch.push([id, this.revive(id, (rows[at] as [Buffer, Buffer])[1])])
          if (!advance()) await refill()
        }
        if (batch.length >= sortedBatchRows) {
          yield batch
          batch = []
        }
      }
      if (batch.length > 0) yield batch
    } finally {
      await disk?.return(undefined)
    }
  }
}

/** Rows per batch of `sorted()`. */
const sortedBatchRows = 4096

/** Byte order of latin1 strings (one byte per character) is code unit order. */
export function compareLatin1(left: string, right: string): number {
  return left < right ? -1 : left > right ? 1 : 0
}

/** What a held entry costs, roughly: two-byte-per-character bound on the strings plus map and object overhead. */
function entryBytes(id: string, value: SpilledValue | null): number {
  const valueBytes = value === null ? 0 : typeof value === 'string' ? value.length : value.length + 96
  return 2 * id.length + valueBytes + 80
}

/** Bytes of one block of `OrderedSpillRows` entries (a larger entry gets a block of its own size). */
const orderedBlockBytes = 1024 * 1024

/**
 * Rows that arrive in strictly increasing key order and are never changed
 * (the store's rows, read by one ordered iterator), each a key and a digest:
 * packed into blocks of bytes (`[u16 key length][key][u8 digest length]
 * [digest]`), not held as strings, so millions of them cost the garbage
 * collector nothing. Beyond `bytesMax` the blocks are appended to a flat
 * file of the spill directory, in order: everything on disk sorts before
 * everything in memory, and `sorted()` is the file followed by memory.
 */
export class OrderedSpillRows {
  private blocks: Buffer[] = []
  private block: Buffer | undefined
  private used = 0
  private heldBytes = 0
  private last: Buffer | undefined
  private file: FileHandle | undefined
  spills = 0

  constructor(
    private readonly disk: SpillDisk,
    private readonly name: string,
    private readonly bytesMax: number,
  ) {}

  get overBudget(): boolean {
    return this.heldBytes > this.bytesMax
  }

  /** A row's key (store key bytes, copied) and its digest (latin1 text). */
  append(key: Buffer, digest: string): void {
    invariant(this.last === undefined || Buffer.compare(this.last, key) < 0, 'ordered rows arrive in increasing key order')
    invariant(key.length <= 0xffff && digest.length <= 0xff, 'a row key or digest too long to hold')
    this.last = key
    const size = 3 + key.length + digest.length
    let block = this.block
    if (block === undefined || this.used + size > block.length) {
      if (block !== undefined) this.blocks.push(block.subarray(0, this.used))
      block = Buffer.allocUnsafe(Math.max(Math.min(orderedBlockBytes, this.bytesMax), size))
      this.block = block
      this.used = 0
      this.heldBytes += block.length
    }
    let at = this.used
    block.writeUInt16BE(key.length, at)
    at += 2
    key.copy(block, at)
    at += key.length
    block[at++] = digest.length
    at += block.write(digest, at, 'latin1')
    this.used = at
  }

  /** Appends the held blocks to the spill file, each as `[u32 length][block]`. */
  async spill(): Promise<void> {
    const blocks = this.held()
    if (blocks.length === 0) return
    this.file ??= await this.disk.openFile(this.name)
    const framed: Buffer[] = []
    for (const block of blocks) {
      const length = Buffer.allocUnsafe(4)
      length.writeUInt32BE(block.length)
      framed.push(length, block)
    }
    await this.file.writev(framed)
    this.blocks = []
    this.block = undefined
    this.used = 0
    this.heldBytes = 0
    this.spills++
  }

  /** Every row in key order as `[latin1 key, digest]`, a block at a time: the spill file's blocks, then memory's. */
  async *sorted(): AsyncGenerator<[string, string][]> {
    if (this.file !== undefined) {
      const header = Buffer.allocUnsafe(4)
      let position = 0
      for (;;) {
        const { bytesRead } = await this.file.read(header, 0, 4, position)
        if (bytesRead === 0) break
        invariant(bytesRead === 4, 'a spilled block cut short')
        const length = header.readUInt32BE(0)
        const block = Buffer.allocUnsafe(length)
        const read = await this.file.read(block, 0, length, position + 4)
        invariant(read.bytesRead === length, 'a spilled block cut short')
        position += 4 + length
        yield entriesOf(block)
      }
    }
    for (const block of this.held()) yield entriesOf(block)
  }

  private held(): Buffer[] {
    return this.block === undefined ? this.blocks : [...this.blocks, this.block.subarray(0, this.used)]
  }
}

/** The `[latin1 key, digest]` entries of one block, in order. */
function entriesOf(block: Buffer): [string, string][] {
  const entries: [string, string][] = []
  let at = 0
  while (at < block.length) {
    const keyLength = block.readUInt16BE(at)
    at += 2
    const id = block.toString('latin1', at, at + keyLength)
    at += keyLength
    const digestLength = block[at++] as number
    entries.push([id, block.toString('latin1', at, at + digestLength)])
    at += digestLength
  }
  return entries
}

function diskKeyOf(prefix: number, id: string): Buffer {
  const key = Buffer.allocUnsafe(1 + id.length)
  key[0] = prefix
  key.write(id, 1, 'latin1')
  return key
}
