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
/** After the log's fields, in this order, each at most once: flag bits 1 and 2 (`matchKeys`' bits are these flags). */
const LOG_OPTIONAL = ['idempotencyKey', 'schemaVersion'] as const
const DATA_FIELDS = ['transaction', 'accountMetadata'] as const
const TRANSACTION_FIELDS = ['id', 'postings', 'timestamp', 'insertedAt', 'updatedAt', 'metadata', 'reverted'] as const
const TRANSACTION_OPTIONAL = ['reference', 'revertedAt', 'template'] as const
const POSTING_FIELDS = ['source', 'destination', 'amount', 'asset'] as const
const NONE: readonly string[] = []

type Fields = { readonly [key: string]: unknown }

/**
 * An object whose own keys `for…in` lists exactly (its prototype is
 * `Object.prototype` or null, as every literal and keyed map is): the layout
 * walks its keys without an array of them. Any other object (an array, a
 * class instance) is not a shape the layout holds.
 */
function isPlainRecord(value: unknown): value is Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const prototype: unknown = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}

/**
 * Whether `value`'s own keys are `expected`, in that order, each value
 * defined, then some of `optional`, in that order, each at most once and
 * defined: bit i of the result is set when `optional[i]` is present; -1 when
 * the keys are anything else. The keys are walked in place (`for…in` on a
 * plain record lists its own keys in `Object.keys` order), no array built.
 */
function matchKeys(value: Fields, expected: readonly string[], optional: readonly string[]): number {
  let at = 0
  let next = 0
  let bits = 0
  for (const key in value) {
    if (at < expected.length) {
      if (key !== expected[at] || value[key] === undefined) return -1
      at++
      continue
    }
    while (next < optional.length && optional[next] !== key) next++
    if (next === optional.length || value[key] === undefined) return -1
    bits |= 1 << next
    next++
  }
  return at === expected.length ? bits : -1
}

/**
 * The NEW_TRANSACTION log in its fixed layout; undefined for any other log,
 * or one whose shape the layout does not hold (the caller packs it
 * generically; a row half written here is dropped: every pack begins afresh).
 */
export function encodeTransactionLogRow(log: unknown): Buffer | undefined {
  if (!isPlainRecord(log) || log.type !== 'NEW_TRANSACTION') return undefined
  // Bits 0 and 1 are the flags `idempotencyKey` and `schemaVersion`.
  let flags = matchKeys(log, LOG_FIELDS, LOG_OPTIONAL)
  if (flags < 0) return undefined
  if ((flags & TransactionLogFlag.idempotencyKey) !== 0 && typeof log.idempotencyKey !== 'string') return undefined
  if ((flags & TransactionLogFlag.schemaVersion) !== 0 && typeof log.schemaVersion !== 'string') return undefined
  const data = log.data
  if (!isPlainRecord(data) || matchKeys(data, DATA_FIELDS, NONE) !== 0) return undefined
  const transaction = data.transaction
  if (!isPlainRecord(transaction)) return undefined
  const optional = matchKeys(transaction, TRANSACTION_FIELDS, TRANSACTION_OPTIONAL)
  if (optional < 0) return undefined
  // reference, revertedAt, template: flags 32, 64 and 128.
  flags |= optional * TransactionLogFlag.reference
  const postings = transaction.postings
  if (!Array.isArray(postings)) return undefined
  let bare = bareNumber(log.id) && bareNumber(transaction.id)
  for (const posting of postings) {
    if (!isPlainRecord(posting) || matchKeys(posting, POSTING_FIELDS, NONE) !== 0) return undefined
    if (!bareNumber(posting.amount)) bare = false
  }
  if (!bare) flags |= TransactionLogFlag.numberItems
  // Validated and decoded in one pass (into `hashBytes`), written as they are below.
  const hashIsBytes = decodeHashText(log.hash)
  if (!hashIsBytes) flags |= TransactionLogFlag.hashText
  const { timestamp, insertedAt, updatedAt } = transaction
  if (!sameString(insertedAt, timestamp)) flags |= TransactionLogFlag.insertedAt
  if (!sameString(updatedAt, insertedAt)) flags |= TransactionLogFlag.updatedAt
  if (!sameString(log.date, insertedAt)) flags |= TransactionLogFlag.date
  if (transaction.reverted !== false) flags |= TransactionLogFlag.reverted
  if (!isEmptyObject(transaction.metadata)) flags |= TransactionLogFlag.metadata
  if (!isEmptyObject(data.accountMetadata)) flags |= TransactionLogFlag.accountMetadata

  const items = (flags & TransactionLogFlag.numberItems) !== 0
  PackedShape.begin(TRANSACTION_LOG_LAYOUT)
  PackedShape.count(flags)
  writeNumber(log.id, items)
  if (hashIsBytes) PackedShape.raw(hashBytes)
  else PackedShape.item(log.hash, false)
  if ((flags & TransactionLogFlag.idempotencyKey) !== 0) PackedShape.string(log.idempotencyKey as string)
  if ((flags & TransactionLogFlag.schemaVersion) !== 0) PackedShape.string(log.schemaVersion as string)
  writeNumber(transaction.id, items)
  PackedShape.count(postings.length)
  for (const posting of postings as Fields[]) {
    PackedShape.item(posting.source, false)
    PackedShape.item(posting.destination, false)
    writeNumber(posting.amount, items)
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

/** An id or amount: an item when the row's numbers are items (flag 4096), else bare LEB128 (`bareNumber` held for all). */
function writeNumber(value: unknown, items: boolean): void {
  if (items) PackedShape.item(value, false)
  else PackedShape.count(Number(value))
}

/** A plain object (or one without prototype, as keyed maps are) without fields: it packs as an empty object item, and decodes as `{}`. */
function isEmptyObject(value: unknown): boolean {
  if (!isPlainRecord(value)) return false
  for (const _ in value) return false
  return true
}

/** An integer a bare LEB128 holds here (what the generic row's integer item would read back as). */
function bareNumber(value: unknown): boolean {
  if (typeof value === 'bigint') return value >= 0n && value <= LOG_BARE_NUMBER_MAX_BIG
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= LOG_BARE_NUMBER_MAX && !Object.is(value, -0)
}

const LOG_BARE_NUMBER_MAX_BIG = BigInt(LOG_BARE_NUMBER_MAX)

/** Equal strings: the later date is the earlier one's item again. Anything else is written. */
function sameString(value: unknown, previous: unknown): boolean {
  return typeof value === 'string' && value === previous
}

/**
 * Whether the hash is base64 of 32 bytes in its one canonical text (so its
 * bytes print back the same): 43 characters of the standard alphabet, the
 * last of them with its two low bits zero (they fall past the 256th bit),
 * and one `=`. Checked by character, without printing again; the bytes are
 * decoded in the same pass into `hashBytes` (meaningful only when true).
 */
function decodeHashText(hash: unknown): hash is string {
  if (typeof hash !== 'string' || hash.length !== HASH_TEXT_LENGTH || hash.charCodeAt(HASH_TEXT_LENGTH - 1) !== EQUALS) return false
  let bits = 0
  let bitCount = 0
  let at = 0
  for (let i = 0; i < HASH_TEXT_LENGTH - 1; i++) {
    const value = base64Value(hash.charCodeAt(i))
    if (value < 0) return false
    if (i === HASH_TEXT_LENGTH - 2) {
      // The last character: its top 4 bits end the 32nd byte, its two low bits must be zero.
      if ((value & 3) !== 0) return false
      hashBytes[at++] = ((bits << 4) | (value >> 2)) & 0xff
      break
    }
    bits = ((bits << 6) | value) & 0xffff
    bitCount += 6
    if (bitCount >= 8) {
      bitCount -= 8
      hashBytes[at++] = (bits >> bitCount) & 0xff
    }
  }
  return at === LOG_HASH_BYTES
}

/** The bytes `decodeHashText` decoded last (encoding is synchronous: used at once). */
const hashBytes = new Uint8Array(LOG_HASH_BYTES)

const EQUALS = 0x3d

/** A standard base64 character's 6-bit value, -1 for any other character. */
function base64Value(unit: number): number {
  if (unit >= 0x41 && unit <= 0x5a) return unit - 0x41
  if (unit >= 0x61 && unit <= 0x7a) return unit - 0x61 + 26
  if (unit >= 0x30 && unit <= 0x39) return unit - 0x30 + 52
  if (unit === 0x2b) return 62
  if (unit === 0x2f) return 63
  return -1
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
