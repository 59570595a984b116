import { createRequire } from 'node:module'
import { RocksLevel } from '@nxtedition/rocksdb'
import type { RocksChainedBatch, RocksIterator } from '@nxtedition/rocksdb'
import { TallyError, invariant } from '../domain/index.ts'
import { MetaKey, metaKey } from './layout.ts'
import type { RowWrite } from './layout.ts'
import { LogSyncAhead, logSyncAheadBytesDefault } from './log-sync-ahead.ts'
import type { LogSyncAheadFigures } from './log-sync-ahead.ts'

/** Bumped whenever the on-disk layout changes; see docs/operations.md. */
export const STORAGE_SCHEMA_VERSION = 5

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

/**
 * RocksDB's own log compressed with ZSTD (the binding's default) costs the
 * JavaScript thread: the binding writes on the calling thread, and RocksDB
 * compresses each batch's log record there before appending it. Off, a
 * store write of the growth bench's rows takes ~1.33× less CPU on that
 * thread (2.0–2.1 → 1.5–1.6 s per 100,000 transfers, `bench/store-stalls.ts`,
 * docs/performance.md), for ~1.3 MB of log per bulk of 1,000 transfers
 * written uncompressed, and recycled at each memtable flush. RocksDB reads
 * a log of either kind at open (an existing store's compressed records
 * included: test/store/wal-compression.test.ts).
 */
const walCompression = false

/**
 * The binding's `compression` option (default on) trains a ZSTD dictionary
 * for every table file a flush or compaction writes to a compressed level
 * (16 KiB, from 1.6 MB of the file's blocks): off, those levels keep plain
 * ZSTD, and RocksDB's compactions take ÷ 1.30–1.40 less CPU per transfer
 * (24.4–28.3 → 18.7–20.2 µs in `bench/store-replay.ts` on the growth load's
 * own store writes, 1M transfers; docs/performance.md, "RocksDB's options")
 * for ~16 % more table file bytes. A file written with a dictionary keeps it inside, so a
 * store an earlier release wrote reads as before
 * (test/store/store-options.test.ts).
 */
const compressionDictionaries = false

/**
 * Which file of a level a compaction takes next into the level below:
 * RocksDB's default picks the file whose overlap with the level below is
 * smallest for its size; round-robin takes the files in key order, one
 * after the other, from a cursor kept in the manifest. Our writes are
 * mostly appends under increasing keys (logs, transactions, audit) beside a
 * few rows rewritten by every transfer (balances): round-robin wrote
 * ÷ 1.10–1.20 fewer bytes in compactions and took ÷ 1.14–1.5 less compaction
 * CPU per transfer, with dictionaries or without (`bench/store-replay.ts`,
 * docs/performance.md, "RocksDB's options"). Only which files are merged
 * when changes, not what a read finds; a store compacted either way opens
 * under the other.
 */
const compactionPriority = 'roundRobin'

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

/**
 * A long scan read a batch at a time (`Store.rangeBatches`): one promise per
 * batch instead of one per row, for readers that walk a whole zone (an export).
 */
export interface BatchedRangeReader {
  rangeBatches(options: BatchedRangeOptions): AsyncIterable<readonly [Buffer, Buffer][]>
}

export interface BatchedRangeOptions extends RangeOptions {
  readonly batchBytes: number
  /** Read the next batch while the caller handles this one (default true). */
  readonly readAhead?: boolean
  /** As `ShortRange.keysOnly`: values may be left out (empty buffers). */
  readonly keysOnly?: boolean
  /**
   * At most this many rows in the first batch, read at once on the
   * JavaScript thread, each later batch twice the one before (up to 1 000),
   * read on the thread pool: for a scan that is often short or may stop
   * early (an account's history, a filtered page), so it reads little past
   * the rows it uses and a short one costs no thread-pool hop. Default: every
   * batch 1 000 rows, on the thread pool.
   */
  readonly firstBatchRows?: number
}

/**
 * A whole-range scan that wants only the rows' values (an export): read as
 * `rangeBatches` reads, without the keys. The binding copies each key into a
 * `Buffer` of its own on the JavaScript thread; a reader that never looks at
 * them pays for none.
 */
export interface BatchedValueReader {
  rangeValueBatches(options: BatchedValueOptions): AsyncIterable<readonly Buffer[]>
}

export interface BatchedValueOptions {
  readonly gte: Buffer
  /** Exclusive upper bound (none: to the end of the store). */
  readonly lt: Buffer | undefined
  /** Bytes of values per batch (one row more at most). */
  readonly batchBytes: number
  /** Rows per batch at most (default the `rangeBatches` bound, 1 000). */
  readonly rowsMax?: number
}

/** The value batches of a reader: `rangeValueBatches` where it has one, else the values of its `rangeBatches`. */
export async function* rangeValueBatchesOf(reader: BatchedRangeReader & Partial<BatchedValueReader>, options: BatchedValueOptions): AsyncIterable<readonly Buffer[]> {
  if (reader.rangeValueBatches !== undefined) {
    yield* reader.rangeValueBatches(options)
    return
  }
  for await (const rows of reader.rangeBatches({ gte: options.gte, ...(options.lt === undefined ? {} : { lt: options.lt }), batchBytes: options.batchBytes })) yield rows.map(([, value]) => value)
}

/** Bytes per batch of a scan that reads a whole range (a count, an aggregate, the cache restore): the size export and check read in. */
export const scanBatchBytes = 1024 * 1024

/** The scan batches of a reader: `rangeBatches` where it has one, else its `range` rows grouped by `batchBytes`. */
export function rangeBatchesOf(reader: StoreReader & Partial<BatchedRangeReader>, options: BatchedRangeOptions): AsyncIterable<readonly [Buffer, Buffer][]> {
  return reader.rangeBatches === undefined ? groupedRows(reader.range(options), options) : reader.rangeBatches(options)
}

/**
 * Rows grouped into batches as `rangeBatches` bounds them (bytes first, one
 * row more at most; `firstBatchRows` doubling), for readers whose rows are
 * already in memory or that only serve `range` (test doubles, the simulator).
 */
export async function* groupedRows(rows: AsyncIterable<[Buffer, Buffer]>, options: BatchedRangeOptions): AsyncIterable<readonly [Buffer, Buffer][]> {
  let rowsMax = batchRowsFirst(options)
  let batch: [Buffer, Buffer][] = []
  let bytes = 0
  for await (const row of rows) {
    batch.push(row)
    bytes += row[0].length + row[1].length
    if (bytes >= options.batchBytes || batch.length >= rowsMax) {
      yield batch
      batch = []
      bytes = 0
      rowsMax = Math.min(rowsMax * 2, rangeBatchRowsMax)
    }
  }
  if (batch.length > 0) yield batch
}

function batchRowsFirst(options: BatchedRangeOptions): number {
  const first = options.firstBatchRows ?? rangeBatchRowsMax
  invariant(Number.isSafeInteger(first) && first >= 1, () => `a first range batch of ${first} rows`)
  return Math.min(first, rangeBatchRowsMax)
}

/** Reads: admission's loads and the API's views. Never used by the FSM. */
export interface StoreReader {
  get(key: Buffer): Promise<Buffer | undefined>
  getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]>
  range(options: RangeOptions): AsyncIterable<[Buffer, Buffer]>
}

/** A short range read: at most `limit` rows, answered at once. */
export interface ShortRange {
  readonly gte: Buffer
  /** Exclusive upper bound; required when `reverse` (a descending read starts below it). */
  readonly lt: Buffer | undefined
  readonly reverse: boolean
  readonly limit: number
  /**
   * The reader uses the keys alone (an index whose key names the row it
   * points to): the store may leave the values out, each then an empty
   * buffer. RocksDB's binding then copies no value into a JavaScript buffer
   * (each copy costs the JavaScript thread and, freed, GC helpers).
   */
  readonly keysOnly?: boolean
}

/** The largest `ShortRange.limit`: a short read holds the event loop, so it stays short. */
export const shortRangeRowsMax = 1000
/** Each batch a short read takes from RocksDB stops after about this many bytes (one row more at most). */
export const shortRangeBatchBytesMax = 1024 * 1024

/**
 * Reads of a few rows answered on the JavaScript thread, for the API's
 * point reads and first pages: a thread-pool hop, or a new RocksDB iterator,
 * costs more than such a read (docs/performance.md, "Reads").
 */
export interface ShortReader {
  getManySync(keys: readonly Buffer[]): (Buffer | undefined)[]
  /** Rows in `[gte, lt)`, ascending or descending, at most `limit`; `exhausted` when the range holds no more. */
  rowsSync(range: ShortRange): { rows: [Buffer, Buffer][]; exhausted: boolean }
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

/**
 * Whether `Store.write` of `rows` rows with `slices` runs from its call to
 * RocksDB's write in one synchronous stretch (no turn awaited): what a
 * caller that answers first, then writes, relies on (the node, ADR 0005).
 * `Store.write` decides its turns by this same function.
 */
export function writesInOneStretch(rows: number, slices: WriteSlices | undefined): boolean {
  return slices === undefined || rows <= slices.rows
}

/** The one way state reaches disk: an atomic batch, fsynced when `sync`. */
export interface StoreWriter {
  write(rows: readonly RowWrite[], options: { sync: boolean; slices?: WriteSlices }): Promise<void>
}

/** The kept iterators of short reads: a direction, reading rows or keys alone (`ShortRange.keysOnly`). */
type ShortReadIterator = 'forward' | 'reverse' | 'forwardKeys' | 'reverseKeys'
const shortReadIteratorKinds: readonly ShortReadIterator[] = ['forward', 'reverse', 'forwardKeys', 'reverseKeys']

/** The value of a row read for its key alone (`keysOnly`). */
const NO_VALUE = Buffer.alloc(0)

function withoutValues(entries: [Buffer, Buffer | undefined][]): [Buffer, Buffer][] {
  return entries.map(([key]) => [key, NO_VALUE])
}

/** The options of every row copied into a batch: none (the binding reads a column family from them). */
const NO_OPTIONS = Object.freeze({})

/**
 * The shared block cache holds table files' data blocks (their index and
 * filter blocks sit beside it unless `indexesInBlockCache`). The binding's
 * default, 8 MiB, holds the account and volume rows of some 50,000
 * accounts; a read of an account beyond them reads its blocks from the file
 * (a `pread` each, the block then parsed, inserted, and another evicted). At 64 MiB a get-account of one of 200,000 accounts,
 * every account read before, costs ÷ 1.36–1.50 less CPU, and a filtered
 * first page ÷ 1.37–1.83 (in process, docs/performance.md, "Reads, eighth
 * pass"). It fills with what point reads and short reads read (the
 * binding's other iterators read with `fill_cache` off, and flushes and
 * compactions do not fill it), not with what is written. What a read finds
 * is unchanged, and so is every file's format.
 */
export const blockCacheBytesDefault = 64 * 1024 * 1024
/**
 * The block cache's bounds: the binding reads its capacity as a 32-bit
 * unsigned count (a larger one would wrap) and 0 means no cache at all,
 * where index and filter blocks go back beside it; below 1 MiB the cache
 * would not hold the index and filter blocks of one read.
 */
export const blockCacheBytesMin = 1024 * 1024
export const blockCacheBytesMax = 2 ** 32 - 1

/**
 * Each table file's index and filter blocks are kept beside the block
 * cache, in the file's table reader (RocksDB's default), unless
 * `StoreTuning.indexesInBlockCache` (`tally serve --store-indexes-in-cache`)
 * puts them in it. Beside it they take ~9–13 MiB per million transfers of
 * the growth load for the life of each file, so that memory grows with the
 * ledger (~130 MiB at 10 M); in the cache they are charged to its capacity
 * and evicted like data blocks, and a read then looks each up in the cache
 * (+~0.7–1.3 µs per one-key point read, × 1.10–1.19) and re-reads it from
 * the file once evicted: get-account and filtered lists on a 1M-transfer store came
 * out × 0.61–1.85 per pair at load 7–16 (not resolved), and a cache
 * smaller than the indexes cost account reads × 1.12–1.92 in 4 of 4 pairs
 * (docs/performance.md, "Memory bounded by configuration": not the default).
 */
const indexesInBlockCache = false

function blockCacheBytesOf(tuning: StoreTuning): number {
  const bytes = tuning.blockCacheBytes ?? blockCacheBytesDefault
  if (!Number.isSafeInteger(bytes) || bytes < blockCacheBytesMin || bytes > blockCacheBytesMax) {
    throw new RangeError(`a block cache of ${bytes} bytes: expected ${blockCacheBytesMin} to ${blockCacheBytesMax}`)
  }
  return bytes
}

/** The binding's native point reads on the calling thread: the database's handle, its keys, its options. */
type NativeGetManySync = (context: object, keys: Buffer[], options: undefined) => (Buffer | undefined | null)[]

/**
 * The binding's own `db_get_many_sync`, called without its JavaScript
 * wrapper: the wrapper passes an options object (an empty one when given
 * none), and the native side then looks up six option names on it, each a
 * property lookup by a C string (~1.2 µs per call in all, measured in
 * process: docs/performance.md, "Reads, eighth pass"); given `undefined`,
 * it looks up none and reads with the same defaults. Undefined when the
 * installed binding does not expose it (then `getManySync` goes through
 * the wrapper).
 */
const nativeGetManySync: NativeGetManySync | undefined = (() => {
  const binding: unknown = createRequire(import.meta.url)('@nxtedition/rocksdb/binding.js')
  if (typeof binding !== 'object' || binding === null) return undefined
  const native: unknown = (binding as { db_get_many_sync?: unknown }).db_get_many_sync
  return typeof native === 'function' ? (native as NativeGetManySync) : undefined
})()

/** The database's native handle, which the binding keeps under a symbol of its own (`context`); undefined when it is not found. */
function nativeContext(db: RocksLevel<Buffer, Buffer>): object | undefined {
  const symbol = Object.getOwnPropertySymbols(db).find((candidate) => candidate.description === 'context')
  const context: unknown = symbol === undefined ? undefined : (db as unknown as Record<symbol, unknown>)[symbol]
  return typeof context === 'object' && context !== null ? context : undefined
}

/** RocksDB settings a benchmark may vary; the server uses the defaults. */
export interface StoreTuning {
  readonly memtableMemoryBudget?: number
  readonly backgroundJobs?: number
  readonly walCompression?: boolean
  /** ZSTD dictionaries trained per compressed file (the binding's `compression`); without, the compressed levels keep plain ZSTD. */
  readonly compressionDictionaries?: boolean
  /** Bytes per data block of a table file (RocksDB's default 4 KiB). */
  readonly blockBytes?: number
  /** The shared block cache's capacity in bytes (default `blockCacheBytesDefault`, 64 MiB; the binding's own 8 MiB; `tally serve --store-cache-bytes`). */
  readonly blockCacheBytes?: number
  /** Index and filter blocks held in the block cache, within its bound, rather than beside it (default `indexesInBlockCache`: false, RocksDB's default). */
  readonly indexesInBlockCache?: boolean
  /** A RocksDB filter policy (`bloomfilter:10:false`, `ribbonfilter:10`), or `nullptr` for none; default the binding's bloom filter of 10 bits per key. */
  readonly filterPolicy?: string
  /** RocksDB's pipelined write (log and memtable written by different writers). */
  readonly pipelinedWrite?: boolean
  /** The binding's compaction priority name (`roundRobin`, our default; `overlappingRatio`, RocksDB's; `byCompensatedSize`, …). */
  readonly compactionPriority?: string
  /** Unsynced bytes written after which RocksDB's log is synced ahead in the background (0: never); see `LogSyncAhead`. */
  readonly logSyncAheadBytes?: number
}

/** "Cumulative stall: 00:01:02.500 H:M:S, …" in RocksDB's `rocksdb.dbstats` text, in seconds. */
export function cumulativeStallSeconds(dbStats: string): number | undefined {
  const found = /Cumulative stall: (\d+):(\d+):(\d+(?:\.\d+)?) H:M:S/.exec(dbStats)
  if (found === null) return undefined
  return Number(found[1]) * 3600 + Number(found[2]) * 60 + Number(found[3])
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
export class Store implements StoreReader, ShortReader, StoreWriter {
  /**
   * The iterators short reads reuse (one per direction, and one more per
   * direction for reads of keys alone: `ShortRange.keysOnly`), made on first use
   * after a write and dropped by the next write: creating one costs ~20 µs
   * in the binding (option parsing, a RocksDB iterator with its snapshot),
   * a seek on a live one ~1 µs. An iterator sees the store as it was when it
   * was made, so one that outlived a completed write would miss it: every
   * write drops them before it resolves, hence before the write is
   * acknowledged. Dropping them also releases the memtables and files they
   * pin.
   */
  private readonly shortReadIterators: Record<ShortReadIterator, RocksIterator | undefined> = { forward: undefined, reverse: undefined, forwardKeys: undefined, reverseKeys: undefined }
  /** Closes of dropped iterators (their native part is freed at once; abstract-level settles the rest a turn later). */
  private iteratorCloses: Promise<void>[] = []

  /** Background syncs of RocksDB's log between checkpoints (latency only: `log-sync-ahead.ts`). */
  private readonly logSyncAhead: LogSyncAhead

  /** The handle `nativeGetManySync` reads with; undefined: `getManySync` goes through the binding's wrapper. */
  readonly nativeContext: object | undefined

  protected constructor(
    protected readonly db: RocksLevel<Buffer, Buffer>,
    readonly directory: string,
    logSyncAheadBytes: number = logSyncAheadBytesDefault,
  ) {
    this.logSyncAhead = new LogSyncAhead(directory, logSyncAheadBytes)
    this.nativeContext = nativeGetManySync === undefined ? undefined : nativeContext(db)
  }

  /**
   * Opens (creating when missing) and checks the schema version. A store
   * written by another version is refused: there is no flag to bypass it.
   */
  static async open(directory: string, tuning: StoreTuning = {}): Promise<Store> {
    const store = new Store(await Store.openDatabase(directory, tuning), directory, tuning.logSyncAheadBytes)
    await store.checkSchemaVersion()
    return store
  }

  protected static async openDatabase(directory: string, tuning: StoreTuning = {}): Promise<RocksLevel<Buffer, Buffer>> {
    const db = new RocksLevel<Buffer, Buffer>(directory, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    // Binding-specific options (abstract-level passes them through): see `memtableMemoryBudget`,
    // `walCompression`, `compressionDictionaries`, `compactionPriority`, `blockCacheBytesDefault` and
    // `indexesInBlockCache`; the others are RocksDB's or the binding's defaults (a 10-bit bloom filter per file, 4 KiB blocks).
    await db.open({
      createIfMissing: true,
      compaction: 'level',
      memtableMemoryBudget: tuning.memtableMemoryBudget ?? memtableMemoryBudget,
      ...(tuning.backgroundJobs === undefined ? {} : { parallelism: tuning.backgroundJobs }),
      walCompression: tuning.walCompression ?? walCompression,
      compression: tuning.compressionDictionaries ?? compressionDictionaries,
      ...(tuning.blockBytes === undefined ? {} : { blockSize: tuning.blockBytes }),
      cacheSize: blockCacheBytesOf(tuning),
      cacheIndexAndFilterBlocks: tuning.indexesInBlockCache ?? indexesInBlockCache,
      ...(tuning.filterPolicy === undefined ? {} : { filterPolicy: tuning.filterPolicy }),
      ...(tuning.pipelinedWrite === undefined ? {} : { pipelinedWrite: tuning.pipelinedWrite }),
      compactionPriority: tuning.compactionPriority ?? compactionPriority,
    } as object)
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
    const context = this.nativeContext
    // The binding only reads the keys array (it neither keeps nor changes it): no copy.
    const values = context === undefined || nativeGetManySync === undefined ? this.db._getManySync([...keys]) : nativeGetManySync(context, keys as Buffer[], undefined)
    // The binding gives null for a read aborted or past its deadline: with no deadline and no value size limit, none is.
    for (let at = 0; at < values.length; at++) invariant(values[at] !== null, 'a point read neither found nor missing')
    return values as (Buffer | undefined)[]
  }

  rowsSync(range: ShortRange): { rows: [Buffer, Buffer][]; exhausted: boolean } {
    invariant(Number.isSafeInteger(range.limit) && range.limit >= 1 && range.limit <= shortRangeRowsMax, () => `a short read of ${range.limit} rows`)
    const lt = range.lt
    const rows: [Buffer, Buffer][] = []
    if (lt !== undefined && Buffer.compare(range.gte, lt) >= 0) return { rows, exhausted: true }
    invariant(!range.reverse || lt !== undefined, 'a descending short read names its upper bound')
    const keysOnly = range.keysOnly === true
    const iterator = this.shortReadIterator(range.reverse ? (keysOnly ? 'reverseKeys' : 'reverse') : keysOnly ? 'forwardKeys' : 'forward')
    // Descending, the seek lands on the last key ≤ lt, which is lt itself when it exists (skipped below).
    iterator._seekSync(range.reverse ? (lt as Buffer) : range.gte)
    // The iterator has no bounds, so every row it reads past the range is
    // work thrown away, and not a small one: stepping onto a key skips the
    // versions of the key before it still in the memtable (a balance
    // rewritten by every transaction). Batches grow from two rows (2, 4,
    // 8, …): an account's one volume row and the step that finds the range's
    // end are one call (a row is read before the step past it, so two rows
    // cost the steps of two calls of one), a page of 15 four calls. A batch
    // also ends early at the byte bound.
    for (let batchRows = 2; ; batchRows *= 2) {
      const read = iterator._nextvSync(Math.min(batchRows, range.limit + 1 - rows.length))
      for (let at = 0; at < read.rows.length; at += 2) {
        const key = read.rows[at] as Buffer
        if (range.reverse ? Buffer.compare(key, range.gte) < 0 : lt !== undefined && Buffer.compare(key, lt) >= 0) return { rows, exhausted: true }
        if (range.reverse && Buffer.compare(key, lt as Buffer) >= 0) continue
        if (rows.length === range.limit) return { rows, exhausted: false }
        rows.push([key, keysOnly ? NO_VALUE : (read.rows[at + 1] as Buffer)])
      }
      if (read.finished) return { rows, exhausted: true }
    }
  }

  private shortReadIterator(kind: ShortReadIterator): RocksIterator {
    const kept = this.shortReadIterators[kind]
    if (kept !== undefined) return kept
    // No bounds: rowsSync checks the range row by row, so one iterator serves every range.
    const reverse = kind === 'reverse' || kind === 'reverseKeys'
    const values = kind === 'forward' || kind === 'reverse'
    const made = this.db.iterator({ reverse, values, fillCache: true, highWaterMarkBytes: shortRangeBatchBytesMax } as object) as unknown as RocksIterator
    this.shortReadIterators[kind] = made
    return made
  }

  /** Called by every write before it resolves (see `shortReadIterators`). */
  private dropShortReadIterators(): void {
    for (const direction of shortReadIteratorKinds) {
      const iterator = this.shortReadIterators[direction]
      if (iterator === undefined) continue
      this.shortReadIterators[direction] = undefined
      this.iteratorCloses.push(iterator.close())
    }
    // Bounded: settled closes are folded into one promise.
    if (this.iteratorCloses.length > 64) this.iteratorCloses = [Promise.all(this.iteratorCloses).then(() => undefined)]
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
    for await (const entries of this.rangeBatches({ ...options, batchBytes, readAhead: false })) yield* entries
  }

  /**
   * The rows of a range in the batches `nextv()` reads them in (see
   * `rangeInBatches`): for a reader that handles rows a batch at a time,
   * without an `await` per row. With `readAhead` (the default) the next
   * batch is read on the thread pool while the caller handles this one:
   * two batches are held at most.
   */
  async *rangeBatches(options: BatchedRangeOptions): AsyncIterable<readonly [Buffer, Buffer][]> {
    const readAhead = options.readAhead ?? true
    const batchBytes = options.batchBytes
    invariant(Number.isSafeInteger(batchBytes) && batchBytes > 0, () => `a range batch of ${batchBytes} bytes`)
    const iterator = this.db.iterator({
      gte: options.gte,
      ...(options.lt === undefined ? {} : { lt: options.lt }),
      reverse: options.reverse ?? false,
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      // Binding-specific (abstract-level passes unknown options through).
      highWaterMarkBytes: batchBytes,
      ...(options.keysOnly === true ? { values: false } : {}),
    } as object)
    let rowsMax = batchRowsFirst(options)
    const read = () => {
      const reading = options.keysOnly === true ? iterator.nextv(rowsMax).then(withoutValues) : (iterator.nextv(rowsMax) as Promise<[Buffer, Buffer][]>)
      rowsMax = Math.min(rowsMax * 2, rangeBatchRowsMax)
      return reading
    }
    let next: Promise<[Buffer, Buffer][]> | undefined
    try {
      if (options.firstBatchRows !== undefined) {
        // A scan that is often short (one account's history) takes its first
        // batch at once on the JavaScript thread, from the same iterator (one
        // snapshot): a thread-pool hop costs more than a few rows.
        const first = (iterator as unknown as RocksIterator)._nextvSync(rowsMax)
        rowsMax = Math.min(rowsMax * 2, rangeBatchRowsMax)
        const entries: [Buffer, Buffer][] = []
        for (let at = 0; at < first.rows.length; at += 2) entries.push([first.rows[at] as Buffer, options.keysOnly === true ? NO_VALUE : (first.rows[at + 1] as Buffer)])
        if (first.finished) {
          if (entries.length > 0) yield entries
          return
        }
        if (readAhead) next = read()
        if (entries.length > 0) yield entries
      }
      next ??= read()
      for (;;) {
        const entries = await next
        next = undefined
        if (entries.length === 0) return
        if (readAhead) next = read()
        yield entries
        next ??= read()
      }
    } finally {
      // A read still in flight (the caller stopped early) settles before the iterator closes.
      if (next !== undefined) await next.catch(() => undefined)
      await iterator.close()
    }
  }

  /**
   * The values of a range in batches of at most `batchBytes` (and
   * `rowsMax` rows), from one iterator that reads no keys: each batch read
   * on the thread pool while the caller handles the one before (two batches
   * held at most), and no batch read after the one that ends the range.
   */
  async *rangeValueBatches(options: BatchedValueOptions): AsyncIterable<readonly Buffer[]> {
    const { batchBytes } = options
    const rowsMax = options.rowsMax ?? rangeBatchRowsMax
    invariant(Number.isSafeInteger(batchBytes) && batchBytes > 0, () => `a value batch of ${batchBytes} bytes`)
    invariant(Number.isSafeInteger(rowsMax) && rowsMax > 0, () => `a value batch of ${rowsMax} rows`)
    const iterator = this.db.iterator({ gte: options.gte, ...(options.lt === undefined ? {} : { lt: options.lt }), keys: false, highWaterMarkBytes: batchBytes } as object) as unknown as RocksIterator
    // With `keys: false` the binding's rows alternate `undefined` and a value.
    type Read = { rows: (Buffer | undefined)[]; finished: boolean }
    const read = (): Promise<Read> => iterator._nextvAsync(rowsMax)
    let next: Promise<Read> | undefined = read()
    try {
      for (;;) {
        const { rows, finished }: Read = await next
        next = finished ? undefined : read()
        const values: Buffer[] = new Array<Buffer>(rows.length >>> 1)
        for (let at = 1, i = 0; at < rows.length; at += 2, i++) values[i] = rows[at] as Buffer
        if (values.length > 0) yield values
        if (next === undefined) return
      }
    } finally {
      // A read still in flight (the caller stopped early) settles before the iterator closes.
      if (next !== undefined) await next.catch(() => undefined)
      await iterator.close()
    }
  }

  /**
   * One atomic batch. Always a chained batch written with `write()`, which
   * closes it: the binding's array `batch(operations)` writes a chained batch
   * it never closes, so each one stayed attached to the database with its
   * native copy of every row for the life of the process (RSS grew ~0.7 GiB
   * per million transactions in `bench/growth.ts`; `bench/store-write-memory.ts`
   * isolates it; `test/store/write-batches.test.ts`).
   */
  async write(rows: readonly RowWrite[], options: { sync: boolean; slices?: WriteSlices }): Promise<void> {
    if (rows.length === 0) return
    // RocksDB copies each row into its batch on the JavaScript thread (about
    // as long as the write itself): a large batch is copied in slices.
    const slices = writesInOneStretch(rows.length, options.slices) ? undefined : options.slices
    const batch = this.db.batch()
    // Rows go straight to the binding's batch (`_put`, `_del`): abstract-level's `put` would only
    // re-check them, map them through the identity 'buffer' encodings, copy the options and keep
    // an operation object per row for a 'batch' event nobody listens to (~130 B and a few
    // hundred ns per row, ~7 rows per transfer). The binding still refuses a null key or value.
    const rocksBatch = batch as unknown as RocksChainedBatch
    let started = performance.now()
    let bytes = 0
    try {
      for (let at = 0; at < rows.length; at++) {
        if (slices !== undefined && at > 0 && at % slices.rows === 0) {
          this.writeTime.milliseconds += performance.now() - started
          await slices.turn()
          started = performance.now()
        }
        const row = rows[at] as RowWrite
        if (row.value === null) rocksBatch._del(row.key, NO_OPTIONS)
        else {
          rocksBatch._put(row.key, row.value, NO_OPTIONS)
          bytes += row.value.byteLength
        }
        bytes += row.key.byteLength
      }
    } catch (error) {
      await batch.close() // nothing of it was written
      throw error
    }
    // `sync` is honoured by the RocksDB binding (WriteOptions.sync) though
    // abstract-level's types do not list it. The binding writes on this
    // thread before `write` returns its promise: the time is taken there.
    // Reads see the rows once `write` returns (a failed write is told too: its rows may be visible), and
    // the observers hear of them in the same stretch: a caller that answers the rows' writers first, then
    // writes (the node, ADR 0005), leaves no turn in which a read is served from what the rows replace.
    let written: Promise<void>
    try {
      written = batch.write({ sync: options.sync } as object)
    } finally {
      this.writeTime.milliseconds += performance.now() - started
      this.writeTime.writes++
      this.dropShortReadIterators()
      this.rowsVisible(rows)
    }
    await written
    if (options.sync) this.logSyncAhead.synced()
    else this.logSyncAhead.written(bytes)
  }

  /**
   * Syncs RocksDB's log files now, on libuv's pool (a latency measure, not a
   * durability one: see `log-sync-ahead.ts`). Called before a checkpoint's
   * synced write so that the write, which holds the JavaScript thread, has
   * little left to flush.
   */
  async syncLogAhead(): Promise<void> {
    await this.logSyncAhead.syncNow()
  }

  /** What the background syncs of RocksDB's log did since the store opened. */
  get logSyncAheadFigures(): Readonly<LogSyncAheadFigures> {
    return this.logSyncAhead.figures
  }

  private readonly writeObservers: ((rows: readonly RowWrite[]) => void)[] = []

  /**
   * `observer` is told of every batch written from now on, once its rows are
   * visible to reads and before the write resolves (so before anything it
   * holds is acknowledged). Synchronous: the read views' answer cache drops
   * what the rows change (`RowGenerations`). A failed write is told too: its
   * rows may be visible.
   */
  observeWrites(observer: (rows: readonly RowWrite[]) => void): void {
    this.writeObservers.push(observer)
  }

  /** Tells the observers (see `observeWrites`); a subclass that makes rows visible outside `write` calls it itself. */
  protected rowsVisible(rows: readonly RowWrite[]): void {
    for (const observer of this.writeObservers) observer(rows)
  }

  /**
   * Wall-clock time this store's writes held the JavaScript thread (copying
   * rows into batches, and RocksDB's write itself, a write stall included),
   * since it opened: read by the event-loop stall watch.
   */
  readonly writeTime = { milliseconds: 0, writes: 0 }

  /**
   * Seconds RocksDB has delayed or stopped writes since the database opened
   * (its "Cumulative stall" in `rocksdb.dbstats`): such a write waits on the
   * calling thread, here the JavaScript thread. Undefined when closed or unreadable.
   */
  writeStallSeconds(): number | undefined {
    if (this.db.status !== 'open') return undefined
    return cumulativeStallSeconds(this.db.getProperty('rocksdb.dbstats'))
  }

  /** A numeric RocksDB property for metrics (memtable bytes, pending compactions); undefined when unknown or closed. */
  numericProperty(name: string): number | undefined {
    if (this.db.status !== 'open') return undefined
    const value = Number(this.db.getProperty(name))
    return Number.isFinite(value) ? value : undefined
  }

  async close(): Promise<void> {
    await this.logSyncAhead.settled()
    this.dropShortReadIterators()
    await Promise.all(this.iteratorCloses)
    this.iteratorCloses = []
    await this.db.close()
  }
}
