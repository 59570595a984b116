import type { RowWrite } from '../store/layout.ts'
import type { MirrorSink } from '../cache/index.ts'

/**
 * The rows one or more applied proposals leave for the store, coalesced by
 * key (last write wins, as it would in an ordered batch). Committed as one
 * atomic store write.
 */
export class WriteBatch implements MirrorSink {
  private readonly rowsByKey = new Map<string, RowWrite>()

  put(key: Buffer, value: Buffer): void {
    this.rowsByKey.set(key.toString('latin1'), { key, value })
  }

  del(key: Buffer): void {
    this.rowsByKey.set(key.toString('latin1'), { key, value: null })
  }

  get size(): number {
    return this.rowsByKey.size
  }

  rows(): RowWrite[] {
    return [...this.rowsByKey.values()]
  }
}
