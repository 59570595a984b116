import type { RowWrite } from '../store/layout.ts'
import type { MirrorSink } from '../cache/index.ts'

/**
 * The rows one or more applied proposals leave for the store, coalesced by
 * key (last write wins, as it would in an ordered batch). Committed as one
 * atomic store write. A row put "later" (the cache's segment of an index) is
 * encoded when the rows are taken, after every mutation it describes.
 */
export class WriteBatch implements MirrorSink {
  private readonly rowsByKey = new Map<string, RowWrite | { readonly key: Buffer; readonly later: () => Buffer }>()

  put(key: Buffer, value: Buffer): void {
    this.rowsByKey.set(key.toString('latin1'), { key, value })
  }

  putLater(key: Buffer, value: () => Buffer): void {
    this.rowsByKey.set(key.toString('latin1'), { key, later: value })
  }

  del(key: Buffer): void {
    this.rowsByKey.set(key.toString('latin1'), { key, value: null })
  }

  get size(): number {
    return this.rowsByKey.size
  }

  rows(): RowWrite[] {
    const rows: RowWrite[] = []
    for (const row of this.rowsByKey.values()) rows.push('later' in row ? { key: row.key, value: row.later() } : row)
    return rows
  }
}
