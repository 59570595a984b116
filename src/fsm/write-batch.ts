import type { RowWrite } from '../store/layout.ts'
import { Zone } from '../store/layout.ts'
import { invariant } from '../domain/index.ts'
import type { MirrorSink } from '../cache/index.ts'

/**
 * The rows one or more applied proposals leave for the store, coalesced by
 * key (last write wins, as it would in an ordered batch). Committed as one
 * atomic store write. A row put "later" (the cache's segment of an index) is
 * encoded when the rows are taken, after every mutation it describes.
 *
 * Rows whose key no other write of the batch can name — a new v2 log, its
 * transaction's index rows, an audit entry: each key holds an id that is
 * never used twice — are `putNew` and kept in a list, without the map's key
 * text and lookup. They live in zones of their own (`newRowZones`), which the
 * FSM writes only this way, so no coalesced row of its batch shares a key
 * with them.
 */
export class WriteBatch implements MirrorSink {
  private readonly rowsByKey = new Map<string, RowWrite | { readonly key: Buffer; readonly later: () => Buffer }>()
  private readonly newRows: RowWrite[] = []

  put(key: Buffer, value: Buffer): void {
    this.rowsByKey.set(coalescedKey(key), { key, value })
  }

  /** A row whose key nothing else in the batch writes, by `putNew` or otherwise (see the class). */
  putNew(key: Buffer, value: Buffer): void {
    invariant(newRowZones.has(key[0] as number), () => `a new row in zone ${key[0]}, where rows are coalesced`)
    this.newRows.push({ key, value })
  }

  putLater(key: Buffer, value: () => Buffer): void {
    this.rowsByKey.set(coalescedKey(key), { key, later: value })
  }

  del(key: Buffer): void {
    this.rowsByKey.set(coalescedKey(key), { key, value: null })
  }

  get size(): number {
    return this.rowsByKey.size + this.newRows.length
  }

  rows(): RowWrite[] {
    const rows: RowWrite[] = []
    for (const row of this.rowsByKey.values()) rows.push('later' in row ? { key: row.key, value: row.later() } : row)
    for (const row of this.newRows) rows.push(row)
    return rows
  }
}

/** The zones of rows written once each (`putNew`): v2 logs, audit entries, secondary indexes. */
const newRowZones: ReadonlySet<number> = new Set([Zone.logs, Zone.audit, Zone.indexes])

/** A coalesced row's map key: its bytes as text. */
function coalescedKey(key: Buffer): string {
  return key.toString('latin1')
}
