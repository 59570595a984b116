import type { Json } from '../domain/index.ts'
import { PackedShape, packedKey } from '../domain/packed.ts'
import type { PlannedOrder } from './proposal.ts'

/**
 * The audit body's order items (`packItems(orders.map(auditOrder), true)`),
 * the common order written field by field: a create of postings only
 * (`{type, ledger, postings, metadata, accountMetadata, force}`, each
 * posting `{source, destination, amount, asset}`, as `parseCreateTransaction`
 * and a bulk build them) has its keys written in canonical order from
 * constants, without the generic walk's key gathering, sort and word lookups
 * of key names. Any other order, or one of that type with another key or a
 * value of another type, goes through the generic walk. Same bytes either
 * way (test/fsm/audit-items.property.test.ts against `auditOrder` packed).
 *
 * Why not reuse the WAL record's bytes of the order: they are packed in the
 * order's own key order, which is never canonical for a create (`type` comes
 * before `accountMetadata`, `source` before `amount`), and changing the
 * orders' key order would change the WAL's and the v2 log's bytes.
 */
export function packAuditOrders(orders: readonly PlannedOrder[], auditOrder: (order: PlannedOrder) => Json): Buffer {
  PackedShape.beginItems()
  for (const planned of orders) {
    const { order, idempotencyKey, requestHash } = planned
    if (!isPlainCreate(order) || (idempotencyKey !== undefined && typeof idempotencyKey !== 'string') || (requestHash !== undefined && typeof requestHash !== 'string')) {
      PackedShape.item(auditOrder(planned), true)
      continue
    }
    // The entry's keys in canonical order: idempotencyKey < order < requestHash.
    PackedShape.object(1 + (idempotencyKey === undefined ? 0 : 1) + (requestHash === undefined ? 0 : 1))
    if (idempotencyKey !== undefined) {
      PackedShape.knownKey(IDEMPOTENCY_KEY)
      PackedShape.string(idempotencyKey)
    }
    PackedShape.knownKey(ORDER)
    PackedShape.object(6)
    PackedShape.knownKey(ACCOUNT_METADATA)
    PackedShape.item(order.accountMetadata, true)
    PackedShape.knownKey(FORCE)
    PackedShape.boolean(order.force as boolean)
    PackedShape.knownKey(LEDGER)
    PackedShape.string(order.ledger as string)
    PackedShape.knownKey(METADATA)
    PackedShape.item(order.metadata, true)
    PackedShape.knownKey(POSTINGS)
    const postings = order.postings as readonly Record<string, unknown>[]
    PackedShape.array(postings.length)
    for (const posting of postings) {
      PackedShape.object(4)
      PackedShape.knownKey(AMOUNT)
      PackedShape.integer(posting.amount as bigint)
      PackedShape.knownKey(ASSET)
      PackedShape.string(posting.asset as string)
      PackedShape.knownKey(DESTINATION)
      PackedShape.string(posting.destination as string)
      PackedShape.knownKey(SOURCE)
      PackedShape.string(posting.source as string)
    }
    PackedShape.knownKey(TYPE)
    PackedShape.string('CREATE_TRANSACTION')
    if (requestHash !== undefined) {
      PackedShape.knownKey(REQUEST_HASH)
      PackedShape.string(requestHash)
    }
  }
  return PackedShape.end()
}

const IDEMPOTENCY_KEY = packedKey('idempotencyKey')
const ORDER = packedKey('order')
const REQUEST_HASH = packedKey('requestHash')
const ACCOUNT_METADATA = packedKey('accountMetadata')
const FORCE = packedKey('force')
const LEDGER = packedKey('ledger')
const METADATA = packedKey('metadata')
const POSTINGS = packedKey('postings')
const TYPE = packedKey('type')
const AMOUNT = packedKey('amount')
const ASSET = packedKey('asset')
const DESTINATION = packedKey('destination')
const SOURCE = packedKey('source')

// One bit per key of the common create and of a posting: every key listed once, none else.
const CREATE_KEYS: ReadonlyMap<string, number> = new Map([
  ['type', 1],
  ['ledger', 2],
  ['postings', 4],
  ['metadata', 8],
  ['accountMetadata', 16],
  ['force', 32],
])
const CREATE_ALL = 63
const POSTING_KEYS: ReadonlyMap<string, number> = new Map([
  ['source', 1],
  ['destination', 2],
  ['amount', 4],
  ['asset', 8],
])
const POSTING_ALL = 15

/**
 * Whether the generic walk would write `order` as the fast path does: the
 * keys `for…in` lists (what `writeObject` gathers) are exactly the six of
 * the common create, each value of the type written for it (no undefined
 * field skipped, no array item nulled), and every posting likewise.
 */
function isPlainCreate(value: unknown): value is Record<string, unknown> {
  if (!isRecord(value)) return false
  const order = value
  if (order.type !== 'CREATE_TRANSACTION' || !hasExactly(order, CREATE_KEYS, CREATE_ALL)) return false
  if (typeof order.ledger !== 'string' || typeof order.force !== 'boolean') return false
  // Metadata is written by the generic walk either way: only a field it would skip changes the count.
  if (!isWritten(order.metadata) || !isWritten(order.accountMetadata) || !Array.isArray(order.postings)) return false
  for (const posting of order.postings as unknown[]) {
    if (!isRecord(posting) || !hasExactly(posting, POSTING_KEYS, POSTING_ALL)) return false
    if (typeof posting.source !== 'string' || typeof posting.destination !== 'string' || typeof posting.amount !== 'bigint' || typeof posting.asset !== 'string') return false
  }
  return true
}

/** An object the generic walk writes as a record of its keys (a plain or prototype-less object: not an array, bytes, packed items or volumes). */
function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const prototype: unknown = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}

/** A field `writeObject` writes (it skips undefined, functions and symbols). */
function isWritten(field: unknown): boolean {
  return field !== undefined && typeof field !== 'function' && typeof field !== 'symbol'
}

function hasExactly(record: Record<string, unknown>, keys: ReadonlyMap<string, number>, all: number): boolean {
  let seen = 0
  for (const key in record) {
    const bit = keys.get(key)
    if (bit === undefined || (seen & bit) !== 0) return false
    seen |= bit
  }
  return seen === all
}
