import { invariant } from './errors.ts'
import type { Json } from './json.ts'
import { PackedShape, packedFields } from './packed.ts'

/**
 * A fixed layout for the v2 log every transfer writes, NEW_TRANSACTION
 * (storage schema 5, docs/adr/0012): the log's structure — its field names,
 * the transaction's and each posting's — is known, so the row holds the
 * values only, each one a packed item (`packed.ts`) as the generic row would
 * hold it, and the hash as its 32 bytes instead of 44 characters of base64.
 * Any other log, and a NEW_TRANSACTION of any other shape (a field missing,
 * extra or out of order), is packed generically (`RowLayout.log`, 0x02); the
 * first byte says which, and `decodeLogRow` reads both.
 *
 *   [0x0a][flags]
 *   [log id][hash: 32 bytes, or with flag 4 a string item]
 *   [idempotencyKey, flag 1][schemaVersion, flag 2]
 *   transaction: [id][posting count] ([source][destination][amount][asset])…
 *                [timestamp][insertedAt, flag 8][updatedAt, flag 16]
 *                [metadata, flag 1024][reverted, flag 512]
 *                [reference, flag 32][revertedAt, flag 64][template, flag 128]
 *   [accountMetadata, flag 2048][date, flag 256]
 *
 * Counts and flags are bare LEB128, and so are the log id, the transaction
 * id and the amounts when each is an integer from 0 to 2^52 (else flag 4096:
 * those three are items); every other value is an item. Without
 * flag 8 insertedAt is the timestamp's item again, without flag 16
 * updatedAt is insertedAt's, and without flag 256 the log's date is
 * insertedAt's (the usual transfer's four equal dates are written once).
 * Without flag 512 `reverted` is false, without 1024 and 2048 the metadata
 * and the account metadata are empty objects: a transfer's usual row has
 * flags 0 (one byte).
 *
 * It decodes to exactly what the generic row of the same log decodes to,
 * fields in the same order at every depth, and the export prints it in one
 * pass from its items (`src/check/logs-export.ts`): the printed line is the
 * one the generic row gives. The v2 log hash is over the printed canonical
 * form (`audit/v2-log-hash.ts`), never over these bytes.
 */
export const TRANSACTION_LOG_LAYOUT = 0x0a

export const TransactionLogFlag = {
  idempotencyKey: 1,
  schemaVersion: 2,
  hashText: 4,
  insertedAt: 8,
  updatedAt: 16,
  reference: 32,
  revertedAt: 64,
  template: 128,
  date: 256,
  reverted: 512,
  metadata: 1024,
  accountMetadata: 2048,
  numberItems: 4096,
} as const
const FLAGS_ALL = 8191

/** Ids and amounts up to this are bare LEB128 (exact in a double, printed without a bigint). */
export const LOG_BARE_NUMBER_MAX = 2 ** 52

/** A v2 log hash: base64 of a sha256. */
export const LOG_HASH_BYTES = 32
const HASH_TEXT_LENGTH = 44

const LOG_FIELDS = ['id', 'hash', 'type', 'data', 'date'] as const
const TRANSACTION_FIELDS = ['id', 'postings', 'timestamp', 'insertedAt', 'updatedAt', 'metadata', 'reverted'] as const
const TRANSACTION_OPTIONAL = ['reference', 'revertedAt', 'template'] as const
const POSTING_FIELDS = ['source', 'destination', 'amount', 'asset'] as const

type Fields = { readonly [key: string]: unknown }

function isRecord(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Whether `keys` starts with `expected`, each name at its place, and its values there are all defined. */
function startsWith(keys: readonly string[], expected: readonly string[], value: Fields): boolean {
  if (keys.length < expected.length) return false
  for (let i = 0; i < expected.length; i++) if (keys[i] !== expected[i] || value[expected[i] as string] === undefined) return false
  return true
}

/**
 * The NEW_TRANSACTION log in its fixed layout; undefined for any other log,
 * or one whose shape the layout does not hold (the caller packs it
 * generically; a row half written here is dropped: every pack begins afresh).
 */
export function encodeTransactionLogRow(log: unknown): Buffer | undefined {
  if (!isRecord(log) || log.type !== 'NEW_TRANSACTION') return undefined
  const keys = Object.keys(log)
  if (!startsWith(keys, LOG_FIELDS, log)) return undefined
  let flags = 0
  let at: number = LOG_FIELDS.length
  if (keys[at] === 'idempotencyKey') {
    if (typeof log.idempotencyKey !== 'string') return undefined
    flags |= TransactionLogFlag.idempotencyKey
    at++
  }
  if (keys[at] === 'schemaVersion') {
    if (typeof log.schemaVersion !== 'string') return undefined
    flags |= TransactionLogFlag.schemaVersion
    at++
  }
  if (at !== keys.length) return undefined
  const data = log.data
  if (!isRecord(data)) return undefined
  const dataKeys = Object.keys(data)
  if (dataKeys.length !== 2 || dataKeys[0] !== 'transaction' || dataKeys[1] !== 'accountMetadata' || data.accountMetadata === undefined) return undefined
  const transaction = data.transaction
  if (!isRecord(transaction)) return undefined
  const transactionKeys = Object.keys(transaction)
  if (!startsWith(transactionKeys, TRANSACTION_FIELDS, transaction)) return undefined
  at = TRANSACTION_FIELDS.length
  const optional = [TransactionLogFlag.reference, TransactionLogFlag.revertedAt, TransactionLogFlag.template]
  for (const [i, name] of TRANSACTION_OPTIONAL.entries()) {
    if (transactionKeys[at] !== name) continue
    if (transaction[name] === undefined) return undefined
    flags |= optional[i] as number
    at++
  }
  if (at !== transactionKeys.length) return undefined
  const postings = transaction.postings
  if (!Array.isArray(postings)) return undefined
  for (const posting of postings) {
    if (!isRecord(posting)) return undefined
    const postingKeys = Object.keys(posting)
    if (postingKeys.length !== POSTING_FIELDS.length || !startsWith(postingKeys, POSTING_FIELDS, posting)) return undefined
  }
  if (!bareNumber(log.id) || !bareNumber(transaction.id) || !(postings as Fields[]).every((posting) => bareNumber(posting.amount))) flags |= TransactionLogFlag.numberItems
  const hash = hashBytes(log.hash)
  if (hash === undefined) flags |= TransactionLogFlag.hashText
  const { timestamp, insertedAt, updatedAt } = transaction
  if (!sameString(insertedAt, timestamp)) flags |= TransactionLogFlag.insertedAt
  if (!sameString(updatedAt, insertedAt)) flags |= TransactionLogFlag.updatedAt
  if (!sameString(log.date, insertedAt)) flags |= TransactionLogFlag.date
  if (transaction.reverted !== false) flags |= TransactionLogFlag.reverted
  if (!isEmptyObject(transaction.metadata)) flags |= TransactionLogFlag.metadata
  if (!isEmptyObject(data.accountMetadata)) flags |= TransactionLogFlag.accountMetadata

  PackedShape.begin(TRANSACTION_LOG_LAYOUT)
  PackedShape.count(flags)
  const number = (flags & TransactionLogFlag.numberItems) !== 0 ? (value: unknown) => PackedShape.item(value, false) : (value: unknown) => PackedShape.count(Number(value))
  number(log.id)
  if (hash !== undefined) PackedShape.raw(hash)
  else PackedShape.item(log.hash, false)
  if ((flags & TransactionLogFlag.idempotencyKey) !== 0) PackedShape.string(log.idempotencyKey as string)
  if ((flags & TransactionLogFlag.schemaVersion) !== 0) PackedShape.string(log.schemaVersion as string)
  number(transaction.id)
  PackedShape.count(postings.length)
  for (const posting of postings as Fields[]) {
    PackedShape.item(posting.source, false)
    PackedShape.item(posting.destination, false)
    number(posting.amount)
    PackedShape.item(posting.asset, false)
  }
  PackedShape.item(timestamp, false)
  if ((flags & TransactionLogFlag.insertedAt) !== 0) PackedShape.item(insertedAt, false)
  if ((flags & TransactionLogFlag.updatedAt) !== 0) PackedShape.item(updatedAt, false)
  if ((flags & TransactionLogFlag.metadata) !== 0) PackedShape.item(transaction.metadata, false)
  if ((flags & TransactionLogFlag.reverted) !== 0) PackedShape.item(transaction.reverted, false)
  if ((flags & TransactionLogFlag.reference) !== 0) PackedShape.item(transaction.reference, false)
  if ((flags & TransactionLogFlag.revertedAt) !== 0) PackedShape.item(transaction.revertedAt, false)
  if ((flags & TransactionLogFlag.template) !== 0) PackedShape.item(transaction.template, false)
  if ((flags & TransactionLogFlag.accountMetadata) !== 0) PackedShape.item(data.accountMetadata, false)
  if ((flags & TransactionLogFlag.date) !== 0) PackedShape.item(log.date, false)
  return PackedShape.end()
}

/** A plain object (or one without prototype, as keyed maps are) without fields: it packs as an empty object item, and decodes as `{}`. */
function isEmptyObject(value: unknown): boolean {
  if (!isRecord(value) || Object.keys(value).length !== 0) return false
  const prototype: unknown = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}

/** An integer a bare LEB128 holds here (what the generic row's integer item would read back as). */
function bareNumber(value: unknown): boolean {
  if (typeof value === 'bigint') return value >= 0n && value <= BigInt(LOG_BARE_NUMBER_MAX)
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= LOG_BARE_NUMBER_MAX && !Object.is(value, -0)
}

/** Equal strings: the later date is the earlier one's item again. Anything else is written. */
function sameString(value: unknown, previous: unknown): boolean {
  return typeof value === 'string' && value === previous
}

/** The hash's 32 bytes when it is base64 of 32 bytes in its one canonical text (so it prints back the same), else undefined. */
function hashBytes(hash: unknown): Buffer | undefined {
  if (typeof hash !== 'string' || hash.length !== HASH_TEXT_LENGTH) return undefined
  const bytes = Buffer.from(hash, 'base64')
  if (bytes.length !== LOG_HASH_BYTES || bytes.toString('base64') !== hash) return undefined
  return bytes
}

/** A row of the fixed layout, as `unpackValue` of the generic row of the same log gives it. */
export function decodeTransactionLogRow(row: Uint8Array): Json {
  const fields = packedFields(row, TRANSACTION_LOG_LAYOUT)
  const flags = fields.count()
  invariant(flags <= FLAGS_ALL, () => `transaction log row with unknown flags ${flags}`)
  const items = (flags & TransactionLogFlag.numberItems) !== 0
  const number = (): Json => {
    if (items) return fields.item()
    const value = fields.unsigned()
    invariant(value <= BigInt(LOG_BARE_NUMBER_MAX), 'transaction log row with a bare number past 2^52')
    return value
  }
  const id = number()
  const hash = (flags & TransactionLogFlag.hashText) !== 0 ? fields.item() : fields.raw(LOG_HASH_BYTES).toString('base64')
  const idempotencyKey = (flags & TransactionLogFlag.idempotencyKey) !== 0 ? fields.string() : undefined
  const schemaVersion = (flags & TransactionLogFlag.schemaVersion) !== 0 ? fields.string() : undefined
  const transactionId = number()
  const postingCount = fields.count()
  invariant(postingCount <= row.length, 'transaction log row with more postings than bytes')
  const postings: Json[] = []
  for (let i = 0; i < postingCount; i++) {
    const source = fields.item()
    const destination = fields.item()
    const amount = number()
    const asset = fields.item()
    postings.push({ source, destination, amount, asset })
  }
  const timestamp = fields.item()
  const insertedAt = (flags & TransactionLogFlag.insertedAt) !== 0 ? fields.item() : timestamp
  const updatedAt = (flags & TransactionLogFlag.updatedAt) !== 0 ? fields.item() : insertedAt
  const metadata = (flags & TransactionLogFlag.metadata) !== 0 ? fields.item() : {}
  const reverted = (flags & TransactionLogFlag.reverted) !== 0 ? fields.item() : false
  const transaction: { [key: string]: Json } = { id: transactionId, postings, timestamp, insertedAt, updatedAt, metadata, reverted }
  if ((flags & TransactionLogFlag.reference) !== 0) transaction.reference = fields.item()
  if ((flags & TransactionLogFlag.revertedAt) !== 0) transaction.revertedAt = fields.item()
  if ((flags & TransactionLogFlag.template) !== 0) transaction.template = fields.item()
  const accountMetadata = (flags & TransactionLogFlag.accountMetadata) !== 0 ? fields.item() : {}
  const date = (flags & TransactionLogFlag.date) !== 0 ? fields.item() : insertedAt
  fields.end()
  const log: { [key: string]: Json } = { id, hash, type: 'NEW_TRANSACTION', data: { transaction, accountMetadata }, date }
  if (idempotencyKey !== undefined) log.idempotencyKey = idempotencyKey
  if (schemaVersion !== undefined) log.schemaVersion = schemaVersion
  return log
}
