import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { RocksLevel } from '@nxtedition/rocksdb'
import { invariant } from '../domain/index.ts'

/** Spilled rows read back per `nextv`: about this many bytes, at most this many rows. */
const spillReadBatchBytes = 1024 * 1024
const spillReadBatchRowsMax = 4096

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

  constructor(private readonly directory: string | undefined) {}

  /** The directory in use once something was spilled (for progress and tests). */
  get path(): string | undefined {
    return this.location
  }

  async open(): Promise<RocksLevel<Buffer, Buffer>> {
    this.opening ??= (async () => {
      this.location = mkdtempSync(path.join(this.directory ?? os.tmpdir(), 'tally-check-spill-'))
      const db = new RocksLevel<Buffer, Buffer>(this.location, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
      await db.open({ createIfMissing: true })
      this.db = db
      return db
    })()
    return this.opening
  }

  /** A point read on the calling thread: the replay plans synchronously. */
  getSync(key: Buffer): Buffer | undefined {
    if (this.db === undefined) return undefined
    return this.db._getManySync([key])[0] ?? undefined
  }

  async close(): Promise<void> {
    if (this.opening !== undefined) await (await this.opening).close()
    if (this.location !== undefined) rmSync(this.location, { recursive: true, force: true })
    this.db = undefined
    this.opening = undefined
  }

  /**
   * The rows under `prefix`, in key order, read `nextv` a batch at a time
   * (one promise per batch, not per row: the comparison reads back every
   * spilled row).
   */
  async *range(prefix: number): AsyncGenerator<[Buffer, Buffer]> {
    if (this.db === undefined) return
    const iterator = this.db.iterator({ gte: Buffer.of(prefix), lt: Buffer.of(prefix + 1), highWaterMarkBytes: spillReadBatchBytes } as object)
    try {
      for (;;) {
        const entries = (await iterator.nextv(spillReadBatchRowsMax)) as [Buffer, Buffer][]
        if (entries.length === 0) return
        yield* entries
      }
    } finally {
      await iterator.close()
    }
  }
}

/** A value as the check keeps it: a row's bytes, or a row digest (text). */
export type SpilledValue = Buffer | string

/**
 * What both kinds of spilled rows share: the disk and their prefix byte on
 * it, the memory budget, the count of spills, and how a row read back from
 * disk gets its original type (`isDigest(firstByte)`: zones that hold
 * digests, text, rather than rows).
 */
abstract class SpilledZone {
  protected heldBytes = 0
  protected spilledAny = false
  spills = 0

  constructor(
    protected readonly disk: SpillDisk,
    protected readonly prefix: number,
    private readonly bytesMax: number,
    private readonly isDigest: (zone: number) => boolean,
  ) {}

  get overBudget(): boolean {
    return this.heldBytes > this.bytesMax
  }

  /** Writes held entries to disk in one chained batch (closed by `write()`; `Store.write` says why), a null deleting. */
  protected async writeToDisk(entries: Iterable<readonly [string, SpilledValue | null]>): Promise<void> {
    const db = await this.disk.open()
    const batch = db.batch()
    for (const [id, value] of entries) {
      const key = diskKeyOf(this.prefix, id)
      if (value === null) batch.del(key)
      else batch.put(key, typeof value === 'string' ? Buffer.from(value, 'latin1') : value)
    }
    await batch.write()
    this.spilledAny = true
    this.spills++
    this.heldBytes = 0
  }

  /** A row read back from disk under the id whose first character is its zone. */
  protected revive(id: string, row: Buffer): SpilledValue {
    return this.isDigest(id.charCodeAt(0)) ? row.toString('latin1') : row
  }
}

/**
 * Rows keyed by their store key (as a latin1 string), held in memory up to
 * `bytesMax` and beyond that spilled to a `SpillDisk` under one prefix byte:
 * the memory the check holds is bounded by configuration, not by the
 * ledger's size. A deletion is remembered (null) until spilled, where it
 * deletes. `sorted()` walks the union in store key order, memory over disk,
 * so the comparison streams both sides in one ordered pass.
 */
export class SpillRows extends SpilledZone {
  private pending = new Map<string, SpilledValue | null>()

  get(id: string): SpilledValue | undefined {
    const held = this.pending.get(id)
    if (held !== undefined) return held ?? undefined
    if (!this.spilledAny) return undefined
    const row = this.disk.getSync(diskKeyOf(this.prefix, id))
    return row === undefined ? undefined : this.revive(id, row)
  }

  set(id: string, value: SpilledValue | null): void {
    const before = this.pending.get(id)
    if (before !== undefined) this.heldBytes -= entryBytes(id, before)
    this.pending.set(id, value)
    this.heldBytes += entryBytes(id, value)
  }

  /** Moves what memory holds to disk, in one batch. */
  async spill(): Promise<void> {
    if (this.pending.size === 0) return
    await this.writeToDisk(this.pending)
    this.pending = new Map()
  }

  /** Every live row in store key order: memory shadows disk (a pending null hides a spilled row). */
  async *sorted(): AsyncGenerator<[string, SpilledValue]> {
    const held = [...this.pending.keys()].sort(compareLatin1)
    const disk = this.spilledAny ? this.disk.range(this.prefix) : undefined
    let spilled = disk === undefined ? undefined : await disk.next()
    try {
      yield* this.merge(held, disk, spilled)
    } finally {
      await disk?.return(undefined)
    }
  }

  private async *merge(
    held: readonly string[],
    disk: AsyncGenerator<[Buffer, Buffer]> | undefined,
    first: IteratorResult<[Buffer, Buffer]> | undefined,
  ): AsyncGenerator<[string, SpilledValue]> {
    let spilled = first
    let next = 0
    for (;;) {
      const diskId = spilled === undefined || spilled.done === true ? undefined : spilled.value[0].toString('latin1', 1)
      const heldId = held[next]
      if (diskId === undefined && heldId === undefined) return
      if (heldId !== undefined && (diskId === undefined || compareLatin1(heldId, diskId) <= 0)) {
        next++
        if (heldId === diskId) spilled = await disk?.next()
        const value = this.pending.get(heldId)
        if (value !== null && value !== undefined) yield [heldId, value]
        continue
      }
      const row = (spilled as IteratorYieldResult<[Buffer, Buffer]>).value[1]
      yield [diskId as string, this.revive(diskId as string, row)]
      spilled = await disk?.next()
    }
  }
}

/** Byte order of latin1 strings (one byte per character) is code unit order. */
export function compareLatin1(left: string, right: string): number {
  return left < right ? -1 : left > right ? 1 : 0
}

/** What a held entry costs, roughly: two-byte-per-character bound on the strings plus map and object overhead. */
function entryBytes(id: string, value: SpilledValue | null): number {
  const valueBytes = value === null ? 0 : typeof value === 'string' ? value.length : value.length + 96
  return 2 * id.length + valueBytes + 80
}

/**
 * Rows that arrive in strictly increasing key order and are never changed
 * (the store's rows, read by one ordered iterator): held in two arrays, no
 * map, spilled in order, so everything on disk sorts before everything in
 * memory and `sorted()` is the disk range followed by memory.
 */
export class OrderedSpillRows extends SpilledZone {
  private ids: string[] = []
  private values: SpilledValue[] = []
  private last: string | undefined

  append(id: string, value: SpilledValue): void {
    invariant(this.last === undefined || compareLatin1(this.last, id) < 0, 'ordered rows arrive in increasing key order')
    this.last = id
    this.ids.push(id)
    this.values.push(value)
    this.heldBytes += entryBytes(id, value) - 40 // no map entry
  }

  async spill(): Promise<void> {
    if (this.ids.length === 0) return
    const values = this.values
    await this.writeToDisk(this.ids.map((id, i) => [id, values[i] as SpilledValue] as const))
    this.ids = []
    this.values = []
  }

  async *sorted(): AsyncGenerator<[string, SpilledValue]> {
    if (this.spilledAny) {
      for await (const [key, row] of this.disk.range(this.prefix)) {
        const id = key.toString('latin1', 1)
        yield [id, this.revive(id, row)]
      }
    }
    for (let i = 0; i < this.ids.length; i++) yield [this.ids[i] as string, this.values[i] as SpilledValue]
  }
}

function diskKeyOf(prefix: number, id: string): Buffer {
  const key = Buffer.allocUnsafe(1 + id.length)
  key[0] = prefix
  key.write(id, 1, 'latin1')
  return key
}
