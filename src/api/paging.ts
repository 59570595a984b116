import type { StoreReader } from '../store/index.ts'
import { prefixEnd } from '../store/index.ts'
import { validationError } from '../domain/index.ts'

export const pageSizeDefault = 15
export const pageSizeMax = 1000

/** Opaque to clients: base64url of this JSON. Keyset paging, so stable under concurrent writes. */
interface Cursor {
  readonly pageSize: number
  /** hex of the row key the page starts after (in the list's order). */
  readonly boundary: string
  readonly direction: 'next' | 'previous'
}

export interface PageRequest {
  readonly pageSize: number
  readonly cursor: Cursor | undefined
}

export interface Page<T> {
  readonly pageSize: number
  readonly hasMore: boolean
  readonly next?: string
  readonly previous?: string
  readonly data: T[]
}

export function parsePageRequest(query: Record<string, unknown>): PageRequest {
  const cursorText = query.cursor
  if (typeof cursorText === 'string' && cursorText !== '') {
    let cursor: Cursor
    try {
      cursor = JSON.parse(Buffer.from(cursorText, 'base64url').toString('utf8')) as Cursor
    } catch {
      throw validationError('cursor: not a cursor this server issued')
    }
    if (
      typeof cursor.pageSize !== 'number' ||
      typeof cursor.boundary !== 'string' ||
      !/^([0-9a-f]{2})*$/.test(cursor.boundary) ||
      (cursor.direction !== 'next' && cursor.direction !== 'previous')
    ) {
      throw validationError('cursor: not a cursor this server issued')
    }
    return { pageSize: cursor.pageSize, cursor }
  }
  return { pageSize: parsePageSize(query.pageSize), cursor: undefined }
}

function parsePageSize(value: unknown): number {
  if (value === undefined || value === '') return pageSizeDefault
  const size = typeof value === 'string' && /^[0-9]{1,7}$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isInteger(size) || size < 1 || size > pageSizeMax) {
    throw validationError(`pageSize: expected an integer from 1 to ${pageSizeMax}, got ${JSON.stringify(value)}`)
  }
  return size
}

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor), 'utf8').toString('base64url')
}

/**
 * One page of rows under `prefix`, ascending or descending by key. A
 * `previous` cursor walks back from the first row of the page.
 */
export async function pageOfRows<T>(
  store: StoreReader,
  options: { prefix: Buffer; descending: boolean; request: PageRequest; view: (key: Buffer, value: Buffer) => T },
): Promise<Page<T>> {
  const { prefix, descending, request } = options
  const size = request.pageSize
  const boundary = request.cursor === undefined ? undefined : Buffer.from(request.cursor.boundary, 'hex')
  const backward = request.cursor?.direction === 'previous'
  // Scan direction in key order: forward pages of a descending list scan down.
  const scanDown = descending !== backward
  let gte = prefix
  let lt: Buffer | undefined = prefixEnd(prefix)
  if (boundary !== undefined) {
    if (scanDown) lt = boundary
    else gte = Buffer.concat([boundary, Buffer.of(0)])
  }
  const rows: [Buffer, Buffer][] = []
  for await (const row of store.range({ gte, lt, reverse: scanDown, limit: size + 1 })) rows.push(row)
  const more = rows.length > size
  const page = rows.slice(0, size)
  if (backward) page.reverse()
  const hasNext = backward ? true : more
  const hasPrevious = backward ? more : boundary !== undefined
  const first = page[0]
  const last = page[page.length - 1]
  return {
    pageSize: size,
    hasMore: hasNext && last !== undefined,
    ...(hasNext && last !== undefined ? { next: encodeCursor({ pageSize: size, boundary: last[0].toString('hex'), direction: 'next' }) } : {}),
    ...(hasPrevious && first !== undefined
      ? { previous: encodeCursor({ pageSize: size, boundary: first[0].toString('hex'), direction: 'previous' }) }
      : {}),
    data: page.map(([key, value]) => options.view(key, value)),
  }
}
