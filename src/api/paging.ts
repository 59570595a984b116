import { createHmac, hash, timingSafeEqual } from 'node:crypto'
import type { BatchedRangeReader, ShortReader, StoreReader } from '../store/index.ts'
import { prefixEnd, rangeBatchesOf, scanBatchBytes, shortRangeRowsMax } from '../store/index.ts'
import { validationError } from '../domain/index.ts'

export const pageSizeDefault = 15
export const pageSizeMax = 1000

/**
 * The key cursors are tagged with: derived from the cluster id, so that a
 * cursor survives a restart and is good on every node of the cluster, and
 * never the cluster id itself.
 */
export type CursorKey = Buffer & { readonly __brand: 'CursorKey' }

declare module 'fastify' {
  interface FastifyInstance {
    /** Decorated by `buildApi`: what list routes tag and verify cursors with. */
    readonly cursorKey: CursorKey
  }
}

/** Exported for tests: a cursor's tag. */
export { cursorTag }

export function cursorKeyOf(clusterId: string): CursorKey {
  return createHmac('sha256', clusterId).update('tally list cursors v1').digest() as CursorKey
}

/** Bytes of the tag a cursor carries (HMAC-SHA256, truncated: 128 bits cannot be guessed). */
const cursorTagBytes = 16

/**
 * Opaque to clients: `base64url(JSON of this).base64url(tag)`, the tag an
 * HMAC of the JSON under the server's cursor key. Keyset paging, so stable
 * under concurrent writes.
 */
interface Cursor {
  readonly pageSize: number
  /** hex of the row key the page starts after (in the list's order). */
  readonly boundary: string
  readonly direction: 'next' | 'previous'
  /** The list's query options (e.g. `expand`), kept so later pages are the same list. */
  readonly options: Readonly<Record<string, string>>
}

export interface PageRequest {
  /** The key the page's own cursors are tagged with. */
  readonly cursorKey: CursorKey
  readonly pageSize: number
  readonly cursor: Cursor | undefined
  /** Query options of the list: from the request, or from the cursor when one is given. */
  readonly options: Readonly<Record<string, string>>
}

/**
 * The order of a list from v2's `sort=<field>:<asc|desc>` and `reverse=true`
 * (and the deprecated `order=effective`). Lists are ordered by their key
 * (`keyField`); other fields would need an index per order and are refused.
 */
export function listDescending(options: Readonly<Record<string, string>>, keyField: string, descendingByDefault: boolean): boolean {
  return listOrder(options, [keyField], descendingByDefault).descending
}

/**
 * Like `listDescending` for lists with several orders, each backed by an
 * index: `fields[0]` is the default. v2's deprecated `order=effective` is
 * `sort=timestamp` where `timestamp` is one of the fields.
 */
export function listOrder(
  options: Readonly<Record<string, string>>,
  fields: readonly string[],
  descendingByDefault: boolean,
): { field: string; descending: boolean } {
  let descending = descendingByDefault
  let field = fields[0] as string
  const sort = options.sort
  if (options.order !== undefined && options.order !== '') {
    if (options.order !== 'effective' || !fields.includes('timestamp')) {
      throw validationError(`order: expected "effective" on transaction lists, got ${JSON.stringify(options.order)} (use sort)`)
    }
    field = 'timestamp'
  }
  if (sort !== undefined && sort !== '') {
    const match = /^([a-zA-Z_]+)(?::(asc|desc))?$/.exec(sort)
    if (match === null) throw validationError(`sort: expected <field>:<asc|desc>, got ${JSON.stringify(sort)}`)
    if (!fields.includes(match[1] as string)) throw validationError(`sort: this list is ordered by ${fields.join(' or ')} (got ${JSON.stringify(match[1])})`)
    field = match[1] as string
    descending = match[2] === undefined ? descendingByDefault : match[2] === 'desc'
  }
  const reverse = options.reverse
  if (reverse !== undefined && reverse !== '' && reverse !== 'false' && reverse !== '0') {
    if (reverse !== 'true' && reverse !== '1') throw validationError(`reverse: expected true or false, got ${JSON.stringify(reverse)}`)
    descending = !descending
  }
  return { field, descending }
}

/** Query parameters that shape a list (carried in cursors). */
const LIST_OPTIONS = ['expand', 'pit', 'query', 'useInsertionDate', 'startTime', 'endTime', 'insertionDate', 'groupBy', 'sort', 'reverse', 'order'] as const

export interface Page<T> {
  readonly pageSize: number
  readonly hasMore: boolean
  readonly next?: string
  readonly previous?: string
  readonly data: T[]
}

/**
 * A cursor is refused (400) unless this cluster issued it, unchanged: its tag
 * must verify under the cursor key. It is then validated like any input —
 * page size in range, a boundary that is hex, and (in `pageOfRows`) a
 * boundary inside the list's own key range, so an issued cursor moved to
 * another list is refused too.
 */
export function parsePageRequest(query: Record<string, unknown>, cursorKey: CursorKey): PageRequest {
  const cursorText = query.cursor
  if (typeof cursorText === 'string' && cursorText !== '') {
    let cursor: Cursor
    try {
      cursor = JSON.parse(verifiedPayload(cursorText, cursorKey)) as Cursor
    } catch {
      throw invalidCursor()
    }
    if (
      cursor === null ||
      typeof cursor !== 'object' ||
      !Number.isInteger(cursor.pageSize) ||
      cursor.pageSize < 1 ||
      cursor.pageSize > pageSizeMax ||
      typeof cursor.boundary !== 'string' ||
      !/^([0-9a-f]{2})+$/.test(cursor.boundary) ||
      (cursor.direction !== 'next' && cursor.direction !== 'previous') ||
      cursor.options === null ||
      typeof cursor.options !== 'object' ||
      Object.values(cursor.options).some((value) => typeof value !== 'string')
    ) {
      throw invalidCursor()
    }
    return { cursorKey, pageSize: cursor.pageSize, cursor, options: cursor.options }
  }
  const options: Record<string, string> = {}
  for (const name of LIST_OPTIONS) {
    const value = query[name]
    if (typeof value === 'string') options[name] = value
  }
  return { cursorKey, pageSize: parsePageSize(query.pageSize), cursor: undefined, options }
}

/** The cursor's JSON text when its tag verifies; throws otherwise. */
function verifiedPayload(cursorText: string, cursorKey: CursorKey): string {
  const parts = cursorText.split('.')
  if (parts.length !== 2) throw invalidCursor()
  const [payloadText = '', tagText = ''] = parts
  const payload = Buffer.from(payloadText, 'base64url')
  const tag = Buffer.from(tagText, 'base64url')
  // base64url decoding skips what is not base64url: re-encoding must give the text back, or the text was not ours.
  if (payload.toString('base64url') !== payloadText || tag.toString('base64url') !== tagText) throw invalidCursor()
  const expected = cursorTag(payload, cursorKey)
  if (tag.length !== expected.length || !timingSafeEqual(tag, expected)) throw invalidCursor()
  return payload.toString('utf8')
}

/**
 * HMAC-SHA256 (RFC 2104) of the payload, truncated: the same bytes as
 * `createHmac`, computed as two one-shot hashes over the key's padded
 * blocks, kept per key. A `createHmac` object per page cost ~10 µs, most of
 * a small page's hashing (docs/performance.md, "Reads").
 */
function cursorTag(payload: Buffer, cursorKey: CursorKey): Buffer {
  const pads = hmacPadsOf(cursorKey)
  const inner = hash('sha256', Buffer.concat([pads.inner, payload]), 'buffer')
  return hash('sha256', Buffer.concat([pads.outer, inner]), 'buffer').subarray(0, cursorTagBytes)
}

const sha256BlockBytes = 64
const hmacPads = new WeakMap<Buffer, { inner: Buffer; outer: Buffer }>()

function hmacPadsOf(key: CursorKey): { inner: Buffer; outer: Buffer } {
  const kept = hmacPads.get(key)
  if (kept !== undefined) return kept
  // A key longer than a block is hashed first (RFC 2104 §2); a cursor key is 32 bytes.
  const block = Buffer.alloc(sha256BlockBytes)
  ;(key.length > sha256BlockBytes ? hash('sha256', key, 'buffer') : key).copy(block)
  const pads = { inner: Buffer.from(block.map((byte) => byte ^ 0x36)), outer: Buffer.from(block.map((byte) => byte ^ 0x5c)) }
  hmacPads.set(key, pads)
  return pads
}

function invalidCursor(): Error {
  return validationError('cursor: not a cursor this server issued for this list')
}

function parsePageSize(value: unknown): number {
  if (value === undefined || value === '') return pageSizeDefault
  const size = typeof value === 'string' && /^[0-9]{1,7}$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isInteger(size) || size < 1 || size > pageSizeMax) {
    throw validationError(`pageSize: expected an integer from 1 to ${pageSizeMax}, got ${JSON.stringify(value)}`)
  }
  return size
}

function encodeCursor(cursor: Cursor, cursorKey: CursorKey): string {
  const payload = Buffer.from(JSON.stringify(cursor), 'utf8')
  return `${payload.toString('base64url')}.${cursorTag(payload, cursorKey).toString('base64url')}`
}

/** Turns rows into items, undefined for a row the list leaves out: one row at a time, or a batch at once (one store read for all). */
export type RowSelection<T> =
  | { readonly select: (key: Buffer, value: Buffer) => T | undefined | Promise<T | undefined> }
  | {
      readonly selectMany: (rows: readonly [Buffer, Buffer][]) => (T | undefined)[]
      /**
       * The range is the filter (an index of exactly the rows the list
       * keeps): the row after a full page only tells that there are more, so
       * it is not selected (its row not read, not decoded).
       */
      readonly keepsEveryRow?: boolean
      /** The selection reads the rows' keys alone (an index): the store may leave their values out. */
      readonly keysOnly?: boolean
    }

/**
 * One page of rows under `prefix`, ascending or descending by key, keeping
 * only the rows the selection turns into an item (a filter). A `previous`
 * cursor walks back from the first row of the page. `scan` narrows the range
 * inside the prefix (an address prefix taken from the filter).
 *
 * A store that answers short reads on the JavaScript thread (`ShortReader`)
 * gives the first page-and-one rows at once; only a filter that leaves rows
 * out reads on, in batches read on the thread pool (the event loop runs during
 * a long scan), the first no larger than what the page still needs.
 */
export async function pageOfRows<T>(
  store: StoreReader & Partial<ShortReader & BatchedRangeReader>,
  options: {
    prefix: Buffer
    descending: boolean
    request: PageRequest
    scan?: { gte: Buffer; lt: Buffer | undefined }
  } & RowSelection<T>,
): Promise<Page<T>> {
  const { prefix, descending, request } = options
  const size = request.pageSize
  const boundary = request.cursor === undefined ? undefined : Buffer.from(request.cursor.boundary, 'hex')
  if (boundary !== undefined && (boundary.length <= prefix.length || !boundary.subarray(0, prefix.length).equals(prefix))) {
    throw invalidCursor()
  }
  const backward = request.cursor?.direction === 'previous'
  // Scan direction in key order: forward pages of a descending list scan down.
  const scanDown = descending !== backward
  let gte = options.scan?.gte ?? prefix
  let lt: Buffer | undefined = options.scan === undefined ? prefixEnd(prefix) : options.scan.lt
  if (boundary !== undefined) {
    if (scanDown) lt = lt === undefined || Buffer.compare(boundary, lt) < 0 ? boundary : lt
    else {
      const after = Buffer.concat([boundary, Buffer.of(0)])
      if (Buffer.compare(after, gte) > 0) gte = after
    }
  }
  const keysOnly = 'selectMany' in options && options.keysOnly === true
  const kept = new PageRows(options, size)
  if (lt === undefined || Buffer.compare(gte, lt) < 0) {
    let exhausted = false
    // A descending short read needs its upper bound; the attribute and index zones always have one.
    if (store.rowsSync !== undefined && (!scanDown || lt !== undefined)) {
      const read = store.rowsSync({ gte, lt, reverse: scanDown, limit: Math.min(shortRangeRowsMax, size + 1), keysOnly })
      const selecting = kept.keep(read.rows)
      if (selecting !== undefined) await selecting
      exhausted = read.exhausted
      const last = read.rows[read.rows.length - 1]
      if (last !== undefined) {
        if (scanDown) lt = last[0]
        else gte = Buffer.concat([last[0], Buffer.of(0)])
      }
    }
    if (!exhausted && !kept.full()) {
      // Batches read on the thread pool, not one promise per row; the first no
      // larger than what the page still needs, each next one twice the last
      // (up to 1 000 rows), and none read ahead: a page reads little past its rows.
      const batches = rangeBatchesOf(store, { gte, lt, reverse: scanDown, batchBytes: scanBatchBytes, firstBatchRows: size + 1 - kept.rows.length, readAhead: false, keysOnly })
      for await (const batch of batches) {
        // Selected in slices of the rows the page still needs: no selection runs on a row past the page.
        for (let at = 0; at < batch.length && !kept.full(); ) {
          const slice = batch.slice(at, at + size + 1 - kept.rows.length)
          at += slice.length
          const selecting = kept.keep(slice)
          if (selecting !== undefined) await selecting
        }
        if (kept.full()) break
      }
    }
  }
  const more = kept.full()
  const page = kept.rows.slice(0, size)
  if (backward) page.reverse()
  const hasNext = backward ? true : more
  const hasPrevious = backward ? more : boundary !== undefined
  const first = page[0]
  const last = page[page.length - 1]
  return {
    pageSize: size,
    hasMore: hasNext && last !== undefined,
    ...(hasNext && last !== undefined
      ? { next: encodeCursor({ pageSize: size, boundary: last[0].toString('hex'), direction: 'next', options: request.options }, request.cursorKey) }
      : {}),
    ...(hasPrevious && first !== undefined
      ? { previous: encodeCursor({ pageSize: size, boundary: first[0].toString('hex'), direction: 'previous', options: request.options }, request.cursorKey) }
      : {}),
    data: page.map(([, item]) => item),
  }
}

/**
 * The rows a page has kept so far, and whether it is full: a row past the
 * page kept, or (a selection that keeps every row) met. A class rather than
 * a closure per request: tsx's keepNames names each named closure a request
 * makes (`__name`, a `defineProperty`).
 */
class PageRows<T> {
  readonly rows: [Buffer, T][] = []
  /** Set when a selection that keeps every row met a row past the page. */
  private pastPage = false

  constructor(
    private readonly selection: RowSelection<T>,
    private readonly size: number,
  ) {}

  full(): boolean {
    return this.rows.length > this.size || this.pastPage
  }

  /** Selects `read` and keeps what it gives: at once for a batch selection, else once every row's selection settles. */
  keep(read: readonly [Buffer, Buffer][]): Promise<void> | undefined {
    const selection = this.selection
    if (!('selectMany' in selection)) return this.keepSelected(read, Promise.all(read.map(([key, value]) => selection.select(key, value))))
    let batch = read
    if (selection.keepsEveryRow === true && this.rows.length + read.length > this.size) {
      batch = read.slice(0, this.size - this.rows.length)
      this.pastPage = true
    }
    this.add(batch, selection.selectMany(batch))
    return undefined
  }

  private async keepSelected(batch: readonly [Buffer, Buffer][], items: Promise<(T | undefined)[]>): Promise<void> {
    this.add(batch, await items)
  }

  private add(batch: readonly [Buffer, Buffer][], items: readonly (T | undefined)[]): void {
    for (let at = 0; at < batch.length && this.rows.length <= this.size; at++) {
      const item = items[at]
      if (item !== undefined) this.rows.push([(batch[at] as [Buffer, Buffer])[0], item])
    }
  }
}

/** A sorted in-memory list seen as a store range, so computed lists page like stored ones. */
export function sortedRows(rows: readonly [Buffer, Buffer][]): StoreReader {
  const inRange = (key: Buffer, gte: Buffer, lt: Buffer | undefined) => Buffer.compare(key, gte) >= 0 && (lt === undefined || Buffer.compare(key, lt) < 0)
  return {
    get: async () => undefined,
    getMany: async (keys) => keys.map(() => undefined),
    async *range(options) {
      const selected = rows.filter(([key]) => inRange(key, options.gte, options.lt))
      if (options.reverse === true) selected.reverse()
      yield* selected.slice(0, options.limit ?? selected.length)
    },
  }
}
