import { RocksLevel } from '@nxtedition/rocksdb'
import { TallyError, invariant } from '../domain/index.ts'
import { MetaKey, metaKey, prefixEnd } from './layout.ts'
import type { RowWrite } from './layout.ts'

/** Bumped whenever the on-disk layout changes; see docs/operations.md. */
export const STORAGE_SCHEMA_VERSION = 3

/**
 * The binding inserts a batch's rows into the memtable synchronously, on the
 * JavaScript thread: each insert walks a skip list, so its cost grows with the
 * memtable (RocksDB's default is 64 MiB). With this budget the binding sizes
 * memtables at a quarter of it (8 MiB, two merged per flush, level compaction,
 * uncompressed L0–L1): ~1.3× cheaper batch writes on the JavaScript thread
 * for a bulk's rows (docs/performance.md), for more frequent flushes on
 * RocksDB's own threads. Only where and when rows are kept changes: not what
 * a read or a batch sees, nor what a crash keeps (that is the WAL's and
 * `sync`'s business).
 */
const memtableMemoryBudget = 32 * 1024 * 1024

/** Rows per batch of a range read in batches (`RangeOptions.batchBytes` bounds its bytes first). */
const rangeBatchRowsMax = 1000

export interface RangeOptions {
  readonly gte: Buffer
  /** Exclusive upper bound; none = to the end of the key space. */
  readonly lt?: Buffer | undefined
  readonly reverse?: boolean
  readonly limit?: number
  /**
   * Read in batches of about this many bytes (one row more at most), each
   * on the thread pool, instead of on the JavaScript thread: for long scans
   * (a snapshot image) that must neither hold the event loop nor buffer
   * more than a batch. Readers without a thread pool may ignore it.
   */
  readonly batchBytes?: number
}

/** Reads: admission's loads and the API's views. Never used by the FSM. */
export interface StoreReader {
  get(key: Buffer): Promise<Buffer | undefined>
  getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]>
  range(options: RangeOptions): AsyncIterable<[Buffer, Buffer]>
}

/**
 * Building a large batch in slices: after every `rows` rows, `turn()` is
 * awaited (the caller gives the event loop a turn). The batch still lands in
 * one atomic write, after the last slice: nothing of it is visible, or
 * durable, before.
 */
export interface WriteSlices {
  readonly rows: number
  turn(): Promise<void>
}

/** The one way state reaches disk: an atomic batch, fsynced when `sync`. */
export interface StoreWriter {
  write(rows: readonly RowWrite[], options: { sync: boolean; slices?: WriteSlices }): Promise<void>
}

export class SchemaVersionMismatch extends TallyError {
  constructor(found: string, directory: string) {
    super({
      code: 'INTERNAL',
      kind: 'internal',
      message:
        `the store at ${directory} was written with storage schema version ${found}, ` +
        `this build reads version ${STORAGE_SCHEMA_VERSION}; refusing to open. ` +
        `Run the Tally release that wrote it, export the ledgers (tally export) and import them into a fresh data directory.`,
    })
  }
}

/**
 * RocksDB behind the store interfaces. Subclassable so that a test layer can
 * sit between the node and RocksDB (e.g. to model what a power loss keeps:
 * test/support/power-loss.ts) while every caller keeps one store type.
 */
export class Store implements StoreReader, StoreWriter {
  protected constructor(
    protected readonly db: RocksLevel<Buffer, Buffer>,
    readonly directory: string,
  ) {}

  /**
   * Opens (creating when missing) and checks the schema version. A store
   * written by another version is refused: there is no flag to bypass it.
   */
  static async open(directory: string): Promise<Store> {
    const store = new Store(await Store.openDatabase(directory), directory)
    await store.checkSchemaVersion()
    return store
  }

  protected static async openDatabase(directory: string): Promise<RocksLevel<Buffer, Buffer>> {
    const db = new RocksLevel<Buffer, Buffer>(directory, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    // Binding-specific options (abstract-level passes them through): see `memtableMemoryBudget`.
    await db.open({ createIfMissing: true, compaction: 'level', memtableMemoryBudget } as object)
    return db
  }

  /** Writes the version into a new store; closes the database and throws on another version. */
  protected async checkSchemaVersion(): Promise<void> {
    const version = await this.get(metaKey(MetaKey.schemaVersion))
    if (version === undefined) {
      const anyRow = await this.firstKey()
      if (anyRow !== undefined) {
        await this.db.close()
        throw new SchemaVersionMismatch('(none: rows without a schema version)', this.directory)
      }
      await this.write([{ key: metaKey(MetaKey.schemaVersion), value: Buffer.from(String(STORAGE_SCHEMA_VERSION)) }], {
        sync: true,
      })
    } else if (version.toString('utf8') !== String(STORAGE_SCHEMA_VERSION)) {
      await this.db.close()
      throw new SchemaVersionMismatch(version.toString('utf8'), this.directory)
    }
  }

  private async firstKey(): Promise<Buffer | undefined> {
    for await (const [key] of this.range({ gte: Buffer.of(0), limit: 1 })) return key
    return undefined
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    const [value] = await this.db.getMany([key])
    return value ?? undefined
  }

  async getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    if (keys.length === 0) return []
    const values = await this.db.getMany([...keys])
    return values.map((value) => value ?? undefined)
  }

  /**
   * Point reads on the JavaScript thread. For reads that are a few
   * microseconds each (memtable and block cache), a thread-pool round trip
   * per row costs more than the read; use for small batches on read paths.
   */
  getManySync(keys: readonly Buffer[]): (Buffer | undefined)[] {
    if (keys.length === 0) return []
    return this.db._getManySync([...keys]).map((value) => value ?? undefined)
  }

  async *range(options: RangeOptions): AsyncIterable<[Buffer, Buffer]> {
    if (options.batchBytes !== undefined) {
      yield* this.rangeInBatches(options, options.batchBytes)
      return
    }
    const iterator = this.db.iterator({
      gte: options.gte,
      ...(options.lt === undefined ? {} : { lt: options.lt }),
      reverse: options.reverse ?? false,
      ...(options.limit === undefined ? {} : { limit: options.limit }),
    })
    try {
      for await (const entry of iterator) yield entry as [Buffer, Buffer]
    } finally {
      await iterator.close()
    }
  }

  /**
   * The binding's plain `next()` refills its cache with up to 1 000 rows read
   * synchronously on the JavaScript thread, whatever their size (32 MiB of
   * rows for a snapshot of large transactions). `nextv()` reads on the
   * thread pool, and the binding stops a batch once `highWaterMarkBytes` is
   * passed, so each batch is bounded in bytes and the event loop runs while
   * it is read.
   */
  private async *rangeInBatches(options: RangeOptions, batchBytes: number): AsyncIterable<[Buffer, Buffer]> {
    invariant(Number.isSafeInteger(batchBytes) && batchBytes > 0, () => `a range batch of ${batchBytes} bytes`)
    const iterator = this.db.iterator({
      gte: options.gte,
      ...(options.lt === undefined ? {} : { lt: options.lt }),
      reverse: options.reverse ?? false,
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      // Binding-specific (abstract-level passes unknown options through).
      highWaterMarkBytes: batchBytes,
    } as object)
    try {
      for (;;) {
        const entries = (await iterator.nextv(rangeBatchRowsMax)) as [Buffer, Buffer][]
        if (entries.length === 0) return
        for (const entry of entries) yield entry
      }
    } finally {
      await iterator.close()
    }
  }

  async write(rows: readonly RowWrite[], options: { sync: boolean; slices?: WriteSlices }): Promise<void> {
    if (rows.length === 0) return
    const slices = options.slices
    // RocksDB copies each row into its batch on the JavaScript thread (about
    // as long as the write itself): a large batch is copied in slices.
    if (slices !== undefined && rows.length > slices.rows) return this.writeInSlices(rows, options.sync, slices)
    const operations = rows.map((row) =>
      row.value === null
        ? { type: 'del' as const, key: row.key }
        : { type: 'put' as const, key: row.key, value: row.value },
    )
    // `sync` is honoured by the RocksDB binding (WriteOptions.sync) though
    // abstract-level's types do not list it.
    await this.db.batch(operations, { sync: options.sync } as object)
  }

  private async writeInSlices(rows: readonly RowWrite[], sync: boolean, slices: WriteSlices): Promise<void> {
    const batch = this.db.batch()
    try {
      for (let at = 0; at < rows.length; at++) {
        if (at > 0 && at % slices.rows === 0) await slices.turn()
        const row = rows[at] as RowWrite
        if (row.value === null) batch.del(row.key)
        else batch.put(row.key, row.value)
      }
    } catch (error) {
      await batch.close() // nothing of it was written
      throw error
    }
    // As `batch` above: `sync` is honoured by the binding. The write closes the batch.
    await batch.write({ sync } as object)
  }

  /** A numeric RocksDB property for metrics (memtable bytes, pending compactions); undefined when unknown or closed. */
  numericProperty(name: string): number | undefined {
    if (this.db.status !== 'open') return undefined
    const value = Number(this.db.getProperty(name))
    return Number.isFinite(value) ? value : undefined
  }

  async close(): Promise<void> {
    await this.db.close()
  }
}
