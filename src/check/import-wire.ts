import type { AccountAddress, Asset, Keyed, LedgerName, Metadata, Posting } from '../domain/index.ts'
import { InvariantViolation, canonicalAccountMetadata, canonicalMetadata, isJsonObject } from '../domain/index.ts'
import type { Order, ProposedOrder } from '../orders/index.ts'
import type { CheckedLog, PlannedLog } from './import-plan.ts'

/**
 * How the import's worker hands its logs to the write pipeline's thread:
 * one flat array of primitives per batch, which a `postMessage` copies far
 * more cheaply than the objects it describes (~0.7 µs per transfer log
 * against ~3.5 µs for the planned objects, and no rebuilding of maps
 * without a prototype, which a structured clone loses).
 *
 * A planned NEW_TRANSACTION log (the order `LogPlanner.map` builds) is
 * written field by field and read back into an equal order, key order,
 * prototype-less maps and all: `writePlannedLog` writes only orders of
 * exactly the shape it knows and answers false for anything else, and the
 * caller then sends the checked log itself (an object the clone copies
 * whole), which the pipeline's thread maps again. So is every other log
 * type: they are rare, and a revert needs the store.
 */
export type WireValue = string | number | bigint | boolean | null | CheckedLog

const TRANSACTION = 1
const CHECKED = 2

const ORDER_KEYS = ['type', 'ledger', 'postings', 'timestamp', 'reference', 'template', 'metadata', 'accountMetadata', 'force', 'schemaVersion']
const POSTING_KEYS = ['source', 'destination', 'amount', 'asset']

/** Appends a planned log to `wire` when it is a transfer of the known shape; false, with `wire` as it was, otherwise. */
export function writePlannedLog(planned: PlannedLog, wire: WireValue[]): boolean {
  const proposed = planned.proposed
  const order = proposed.order
  if (order.type !== 'CREATE_TRANSACTION' || !isTransferShape(proposed, order)) return false
  const from = wire.length
  wire.push(TRANSACTION, planned.id, planned.hash, planned.date, planned.bytes, planned.createsTransaction)
  wire.push(proposed.idempotencyKey ?? null, proposed.requestHash ?? null)
  wire.push(order.timestamp ?? null, order.reference ?? null, order.template ?? null, order.schemaVersion ?? null)
  wire.push(order.postings.length)
  for (const posting of order.postings) wire.push(posting.source, posting.destination, posting.amount, posting.asset)
  if (!writeMetadata(order.metadata, wire)) {
    wire.length = from
    return false
  }
  const accounts = Object.keys(order.accountMetadata)
  // No account metadata is the shared empty map, which reads back as itself; a fresh empty one (from an absent
  // field, which the log check refuses) would not: left to the checked form.
  if (accounts.length === 0 && !Object.isFrozen(order.accountMetadata)) {
    wire.length = from
    return false
  }
  wire.push(accounts.length)
  for (const address of accounts) {
    wire.push(address)
    if (!writeMetadata(order.accountMetadata[address] as Metadata, wire)) {
      wire.length = from
      return false
    }
  }
  return true
}

/** Appends a checked log, which the pipeline's thread maps itself. */
export function writeCheckedLog(checked: CheckedLog, wire: WireValue[]): void {
  wire.push(CHECKED, checked)
}

/** The logs of one batch, in the order written. */
export function* readWire(ledger: LedgerName, wire: readonly WireValue[]): Generator<PlannedLog | CheckedLog> {
  const reader = { at: 0 }
  while (reader.at < wire.length) {
    const tag = wire[reader.at++]
    if (tag === CHECKED) yield wire[reader.at++] as CheckedLog
    else if (tag === TRANSACTION) yield readPlannedTransaction(ledger, wire, reader)
    else throw new InvariantViolation(`import wire: unknown tag ${String(tag)} at ${reader.at - 1}`)
  }
}

function readPlannedTransaction(ledger: LedgerName, wire: readonly WireValue[], reader: { at: number }): PlannedLog {
  let at = reader.at
  const id = wire[at++] as bigint
  const hash = wire[at++] as string
  const date = wire[at++] as string
  const bytes = wire[at++] as number
  const createsTransaction = wire[at++] as boolean
  const idempotencyKey = wire[at++] as string | null
  const requestHash = wire[at++] as string | null
  const timestamp = wire[at++] as string | null
  const reference = wire[at++] as string | null
  const template = wire[at++] as string | null
  const schemaVersion = wire[at++] as string | null
  const postingCount = wire[at++] as number
  const postings: Posting[] = []
  for (let i = 0; i < postingCount; i++) {
    postings.push({ source: wire[at] as AccountAddress, destination: wire[at + 1] as AccountAddress, amount: wire[at + 2] as bigint, asset: wire[at + 3] as Asset })
    at += 4
  }
  reader.at = at
  const metadata = readMetadata(wire, reader)
  const accountCount = wire[reader.at++] as number
  const entries: [string, Metadata][] = []
  for (let i = 0; i < accountCount; i++) {
    const address = wire[reader.at++] as string
    entries.push([address, readMetadata(wire, reader)])
  }
  const accountMetadata: Keyed<Metadata> = canonicalAccountMetadata(entries)
  // The key order `LogPlanner.map` gives the order (a schema version is added last).
  const created: Order = {
    type: 'CREATE_TRANSACTION',
    ledger,
    postings,
    ...(timestamp === null ? {} : { timestamp }),
    ...(reference === null ? {} : { reference }),
    ...(template === null ? {} : { template }),
    metadata,
    accountMetadata,
    force: true,
  }
  const order: Order = schemaVersion === null ? created : ({ ...created, schemaVersion } as Order)
  const proposed: ProposedOrder = idempotencyKey === null ? { order } : requestHash === null ? { order, idempotencyKey } : { order, idempotencyKey, requestHash }
  return { id, hash, date, proposed, createsTransaction, bytes }
}

/** A canonical metadata map (no prototype, or the shared empty one) as its count and entries; false for any other map. */
function writeMetadata(metadata: Metadata, wire: WireValue[]): boolean {
  if (!isJsonObject(metadata) || Object.getPrototypeOf(metadata) !== null) return false
  const keys = Object.keys(metadata)
  wire.push(keys.length)
  for (const key of keys) {
    const value = metadata[key]
    if (typeof value !== 'string') return false
    wire.push(key, value)
  }
  return true
}

function readMetadata(wire: readonly WireValue[], reader: { at: number }): Metadata {
  const count = wire[reader.at++] as number
  const entries: [string, string][] = []
  for (let i = 0; i < count; i++) {
    entries.push([wire[reader.at] as string, wire[reader.at + 1] as string])
    reader.at += 2
  }
  return canonicalMetadata(entries)
}

/** Exactly the fields `LogPlanner.map` gives a transfer, in its order, each of the type read back. */
function isTransferShape(proposed: ProposedOrder, order: Order & { type: 'CREATE_TRANSACTION' }): boolean {
  const proposedKeys = Object.keys(proposed)
  if (proposedKeys[0] !== 'order' || proposedKeys.length > 3) return false
  if (proposedKeys.length > 1 && (proposedKeys[1] !== 'idempotencyKey' || typeof proposed.idempotencyKey !== 'string')) return false
  if (proposedKeys.length > 2 && (proposedKeys[2] !== 'requestHash' || typeof proposed.requestHash !== 'string')) return false
  let expected = 0
  for (const key of Object.keys(order)) {
    while (expected < ORDER_KEYS.length && ORDER_KEYS[expected] !== key) expected++
    if (expected === ORDER_KEYS.length) return false
    expected++
  }
  for (const required of ['type', 'ledger', 'postings', 'metadata', 'accountMetadata', 'force'] as const) if (!Object.hasOwn(order, required)) return false
  if (order.force !== true || !Array.isArray(order.postings)) return false
  for (const optional of ['timestamp', 'reference', 'template', 'schemaVersion'] as const) if (Object.hasOwn(order, optional) && typeof order[optional] !== 'string') return false
  if (!isJsonObject(order.accountMetadata) || Object.getPrototypeOf(order.accountMetadata) !== null) return false
  for (const posting of order.postings) {
    const keys = Object.keys(posting)
    if (keys.length !== 4 || keys.some((key, i) => key !== POSTING_KEYS[i])) return false
    if (typeof posting.source !== 'string' || typeof posting.destination !== 'string' || typeof posting.amount !== 'bigint' || typeof posting.asset !== 'string') return false
  }
  return true
}
