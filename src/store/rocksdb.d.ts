// @nxtedition/rocksdb ships no type declarations; it is an abstract-level
// database, so it is typed as one.
declare module '@nxtedition/rocksdb' {
  import { AbstractLevel } from 'abstract-level'

  export class RocksLevel<K = string, V = string> extends AbstractLevel<Buffer | Uint8Array | string, K, V> {
    constructor(location: string, options?: { keyEncoding?: string; valueEncoding?: string })
    /** Point reads on the calling thread (no thread-pool hop); binding-specific. */
    /** A RocksDB property (`rocksdb.cur-size-all-mem-tables`, …), read synchronously. */
    getProperty(property: string): string
    _getManySync(keys: Buffer[], options?: object): (Buffer | undefined | null)[]
  }

  /**
   * The binding's chained batch, as `RocksLevel.batch()` returns it: beside
   * abstract-level's API, the binding's own row copy into its batch, without
   * abstract-level's per-row checks, encodings and operation list.
   */
  export interface RocksChainedBatch {
    _put(key: Buffer, value: Buffer, options: object): void
    _del(key: Buffer, options: object): void
  }

  /**
   * The binding's iterator, as `RocksLevel.iterator()` returns it: beside
   * abstract-level's API, synchronous seek and batch reads on the calling
   * thread. `rows` alternates keys and values.
   */
  export interface RocksIterator {
    _seekSync(target: Buffer): void
    _nextvSync(count: number): { rows: Buffer[]; finished: boolean }
    /** The same read on the thread pool, rows as the binding gives them (no key/value pairs built). */
    _nextvAsync(count: number): Promise<{ rows: (Buffer | undefined)[]; finished: boolean }>
    close(): Promise<void>
  }
}
