import { InvariantViolation, invariant } from '../domain/errors.ts'
import type { Json } from '../domain/json.ts'
import { PackedShape, packValue, packedFields, unpackValue } from '../domain/packed.ts'
import { packedObjectFields } from '../domain/packed-json.ts'
import { TRANSACTION_LOG_LAYOUT, decodeTransactionLogRow, encodeTransactionLogRow } from '../domain/log-layouts.ts'
/**
 * The store's row layout, importable by pure code (the FSM writes rows but
 * never reads the store: it may import this file and nothing else of the
 * store module).
 *
 * Key zones of the store (contract §2): one leading byte says what a row is.
 * Attribute rows are keyed by their canonical key so that a ledger's accounts
 * or transactions can be listed by a prefix scan in order.
 */
export const Zone = {
  meta: 0x00,
  /**
   * This node's outputs: each pipeline's cursor, I/O state written by the
   * node, never by the FSM, so neither replayed nor compared by `tally
   * check`. Exporters and pipelines themselves are the `o` attribute; the
   * `e`/`p` rows are an older release's, converted at start (docs/adr/0008).
   */
  outputs: 0xe0,
  /** Signed checkpoints of the audit chain; below the audit zone so one ordered scan meets them first. */
  auditCheckpoints: 0xe2,
  logs: 0xf0,
  attributes: 0xf1,
  audit: 0xf2,
  indexes: 0xf3,
  cacheMirror: 0xff,
} as const

/** Keys inside the meta zone. */
export const MetaKey = {
  schemaVersion: 'schema-version',
  clusterId: 'cluster-id',
  appliedIndex: 'applied-index',
  cacheState: 'cache-state',
  /**
   * The cache settings a data directory was created with, never rewritten:
   * where a replay of the audit chain starts (later changes are audited).
   */
  cacheGenesis: 'cache-genesis',
  auditHead: 'audit-head',
  /** Store index known durable (synced); the WAL below it may be recycled. */
  checkpointIndex: 'checkpoint-index',
} as const

export function metaKey(name: string): Buffer {
  return Buffer.concat([Buffer.of(Zone.meta), Buffer.from(name, 'utf8')])
}

export function attributeRowKey(canonicalKey: string): Buffer {
  const key = Buffer.allocUnsafe(1 + utf8Length(canonicalKey))
  key[0] = Zone.attributes
  writeUtf8(key, canonicalKey, 1)
  return key
}

/**
 * Smallest key strictly greater than every key starting with `prefix`;
 * undefined when there is none (a prefix of 0xff bytes, like the mirror zone).
 */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  const end = Buffer.from(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] !== 0xff) {
      end[i] = (end[i] as number) + 1
      return end.subarray(0, i + 1)
    }
  }
  return undefined
}

/**
 * `Buffer.byteLength(text, 'utf8')`; an ASCII text (every ledger name, and the
 * accounts and assets of most ledgers) measured by its length, without the
 * call into the binding. The rows' keys are built from a few such texts.
 */
export function utf8Length(text: string): number {
  const length = text.length
  for (let i = 0; i < length; i++) if (text.charCodeAt(i) >= 0x80) return Buffer.byteLength(text, 'utf8')
  return length
}

/** Writes `text` as UTF-8 at `at` (the caller sized the buffer with `utf8Length`); returns the offset after it. ASCII unit by unit. */
export function writeUtf8(buffer: Buffer, text: string, at: number): number {
  const length = text.length
  for (let i = 0; i < length; i++) {
    const unit = text.charCodeAt(i)
    if (unit >= 0x80) return at + buffer.write(text, at, 'utf8')
    buffer[at + i] = unit
  }
  return at + length
}

export function u64be(value: number | bigint): Buffer {
  const buffer = Buffer.allocUnsafe(8)
  writeU64(buffer, typeof value === 'bigint' ? value : BigInt(value), 0)
  return buffer
}

/**
 * Writes `value` (0 ≤ value < 2^64) as 8 bytes big-endian at `at`: the bytes
 * `writeBigUInt64BE` writes, and its refusal of anything else. A value a
 * double holds exactly (every id and index in practice) is written as two
 * 32-bit halves, without the bigint masks and shifts (and the bigints they
 * allocate: ~100 B per call) of `writeBigUInt64BE`. Returns the offset after it.
 */
export function writeU64(buffer: Buffer, value: bigint, at: number): number {
  if (value >= 0n && value <= SAFE_INTEGER_BIG) {
    const number = Number(value)
    const high = Math.floor(number / 2 ** 32)
    buffer.writeUInt32BE(high, at)
    buffer.writeUInt32BE(number - high * 2 ** 32, at + 4)
    return at + 8
  }
  return buffer.writeBigUInt64BE(value, at)
}

const SAFE_INTEGER_BIG = BigInt(Number.MAX_SAFE_INTEGER)

/** One row change of an atomic batch; `value: null` deletes the row. */
export interface RowWrite {
  readonly key: Buffer
  readonly value: Buffer | null
}

/**
 * Layout bytes leading the values of packed rows (`domain/packed.ts`,
 * docs/adr/0009); attribute rows use `ATTRIBUTE_ROW_LAYOUT` (0x01), or for
 * volumes and transactions their fixed layouts (0x07, 0x08: docs/adr/0012);
 * by-account index rows `accountMoves` (0x09, fixed), other index rows `index`;
 * v2 log rows `log`, or for a NEW_TRANSACTION `transactionLog` (0x0a, fixed).
 */
export const RowLayout = { log: 0x02, index: 0x03, accountMoves: 0x09, transactionLog: TRANSACTION_LOG_LAYOUT } as const

/**
 * A v2 log row's value: the log packed in its own field order (the order v2
 * prints it in: `stringifyJson(decodeLogRow(row))` is the log's JSON text).
 */
export function encodeLogRow(log: unknown): Buffer {
  return encodeTransactionLogRow(log) ?? packValue(log, RowLayout.log, false)
}

/** A log row of either layout (the fixed NEW_TRANSACTION one, docs/adr/0012, or the generic one) as the log it holds. */
export function decodeLogRow(row: Uint8Array): Json {
  if (row[0] === RowLayout.transactionLog) return decodeTransactionLogRow(row)
  return unpackValue(row, RowLayout.log)
}

/** A log row's top-level fields and where each value starts, undecoded (the export prints them from the bytes). */
export function logRowFields(row: Buffer): Map<string, number> {
  return packedObjectFields(row, RowLayout.log)
}

/** A secondary index row's value (a transaction's moves on an account, with its dates), packed canonically. */
export function encodeIndexRow(value: unknown): Buffer {
  return packValue(value, RowLayout.index, true)
}

/** One asset's moves of a transaction on one account. */
export interface AssetMoves {
  readonly asset: string
  input: bigint
  output: bigint
}

/**
 * The by-account row `{insertedAt, timestamp, volumes: {asset: {input, output}}}`
 * in its fixed layout (storage schema 5, docs/adr/0012), no field names:
 *
 *   [0x09][flags][insertedAt][timestamp, with flag 1: when it is not insertedAt]
 *   [asset count] ([asset][input][output])…   assets sorted, amounts bare LEB128
 *
 * Dates and assets are string items (`PackedShape.string`: a date is an
 * instant). `decodeIndexRow` reads it back as the object the generic row
 * (`encodeIndexRow`) of the same value gives. `moves` is sorted here, by asset.
 */
export function encodeAccountMovesRow(insertedAt: string, timestamp: string, moves: AssetMoves[]): Buffer {
  if (moves.length > 1) moves.sort(byAsset)
  beginAccountMovesRow(insertedAt, timestamp, moves.length)
  for (const moved of moves) {
    PackedShape.string(moved.asset)
    PackedShape.unsigned(moved.input)
    PackedShape.unsigned(moved.output)
  }
  return PackedShape.end()
}

/**
 * `encodeAccountMovesRow` of one asset's moves, given as values: the same
 * bytes without an `AssetMoves` object and its list (a transfer moves one
 * asset on each of its accounts).
 */
export function encodeAccountMoveRow(insertedAt: string, timestamp: string, asset: string, input: bigint, output: bigint): Buffer {
  beginAccountMovesRow(insertedAt, timestamp, 1)
  PackedShape.string(asset)
  PackedShape.unsigned(input)
  PackedShape.unsigned(output)
  return PackedShape.end()
}

function beginAccountMovesRow(insertedAt: string, timestamp: string, assets: number): void {
  const backdated = timestamp !== insertedAt
  PackedShape.begin(RowLayout.accountMoves)
  PackedShape.count(backdated ? ACCOUNT_MOVES_TIMESTAMP : 0)
  PackedShape.string(insertedAt)
  if (backdated) PackedShape.string(timestamp)
  PackedShape.count(assets)
}

/** The by-account row's one flag: its timestamp is written (it differs from insertedAt). */
const ACCOUNT_MOVES_TIMESTAMP = 1

function decodeAccountMovesRow(row: Uint8Array): Json {
  const fields = packedFields(row, RowLayout.accountMoves)
  const flags = fields.count()
  invariant(flags <= ACCOUNT_MOVES_TIMESTAMP, () => `by-account row with unknown flags ${flags}`)
  const insertedAt = fields.string()
  const timestamp = flags === ACCOUNT_MOVES_TIMESTAMP ? fields.string() : insertedAt
  const count = fields.count()
  invariant(count <= row.length, 'by-account row with more assets than bytes')
  // As the generic decoder builds an object: a plain one, `__proto__` kept as data.
  const volumes: { [asset: string]: Json } = {}
  let previous: string | undefined
  for (let i = 0; i < count; i++) {
    const asset = fields.string()
    invariant(previous === undefined || asset > previous, 'by-account row assets out of order')
    previous = asset
    const moved = { input: fields.unsigned(), output: fields.unsigned() }
    if (asset === '__proto__') Object.defineProperty(volumes, asset, { value: moved, writable: true, enumerable: true, configurable: true })
    else volumes[asset] = moved
  }
  fields.end()
  return { insertedAt, timestamp, volumes }
}

/** Canonical key order (UTF-16 code units, as `packValue` sorts). */
function byAsset(left: AssetMoves, right: AssetMoves): number {
  return left.asset < right.asset ? -1 : left.asset > right.asset ? 1 : 0
}

/** A secondary index row's value: a by-account row of the fixed layout, or any packed generically. */
export function decodeIndexRow(row: Uint8Array): Json {
  if (row[0] === RowLayout.accountMoves) return decodeAccountMovesRow(row)
  return unpackValue(row, RowLayout.index)
}

/** v2 log rows: [zone][ledger][0][id u64 BE], in id order per ledger. */
/** `[zone][ledger][0][id u64]`, in one buffer. */
export function logRowKey(ledger: string, id: bigint): Buffer {
  const key = Buffer.allocUnsafe(1 + utf8Length(ledger) + 1 + 8)
  key[0] = Zone.logs
  const at = writeUtf8(key, ledger, 1)
  key[at] = 0
  writeU64(key, id, at + 1)
  return key
}

export function logRowPrefix(ledger: string): Buffer {
  return Buffer.concat([Buffer.of(Zone.logs), Buffer.from(ledger, 'utf8'), Buffer.of(0)])
}

/**
 * Secondary indexes the FSM writes in the same batch as the transaction:
 *  - by account, in insertion order: [zone]['A'][ledger][0][account][0][id u64]
 *    → `{insertedAt, timestamp, volumes: {asset: {input, output}}}` (this
 *    transaction's moves on the account; `encodeAccountMovesRow`, a fixed layout). One row per
 *    (account, transaction) serves both volume histories: by insertion date
 *    (the rows in key order) and effective (the same rows filtered by
 *    `timestamp`, summed in any order: docs/adr/0010);
 *  - transactions by effective date: [zone]['T'][ledger][0][instant, 11 bytes][id u64] → empty,
 *    for lists ordered by timestamp (`sort=timestamp`, v2's `order=effective`);
 *  - schemas in insertion order: [zone]['S'][ledger][0][log id u64] → the version,
 *    for `GET /v2/{ledger}/schemas` (v2 lists them by creation).
 *
 * `moves` ('M', moves by account, asset and effective date) is retired since
 * storage schema 3: no build of this version writes or reads it; the byte stays
 * reserved so the checker still names such a row if one turns up.
 */
export const IndexKind = { accountTransactions: 0x41, moves: 0x4d, transactionsByTimestamp: 0x54, schemas: 0x53 } as const

export function schemasPrefix(ledger: string): Buffer {
  return Buffer.concat([Buffer.of(Zone.indexes, IndexKind.schemas), Buffer.from(`${ledger}\u0000`, 'utf8')])
}

export function schemaIndexKey(ledger: string, logId: bigint): Buffer {
  return Buffer.concat([schemasPrefix(ledger), u64be(logId)])
}

export function transactionsByTimestampPrefix(ledger: string): Buffer {
  return Buffer.concat([Buffer.of(Zone.indexes, IndexKind.transactionsByTimestamp), Buffer.from(`${ledger}\u0000`, 'utf8')])
}

/**
 * `[zone]['T'] ledger \0 [instant: 11 bytes] [id u64 BE]` (storage schema 5,
 * docs/adr/0012): the timestamp's fields as numbers, in the order of its
 * fixed-width text (`fixedWidthInstant`), so keys sort as those texts did, in
 * 11 bytes instead of 30 characters and a separator.
 */
export function transactionByTimestampKey(ledger: string, timestamp: string, id: bigint): Buffer {
  const ledgerBytes = utf8Length(ledger)
  const key = Buffer.allocUnsafe(2 + ledgerBytes + 1 + INSTANT_KEY_BYTES + 8)
  key[0] = Zone.indexes
  key[1] = IndexKind.transactionsByTimestamp
  let at = writeUtf8(key, ledger, 2)
  key[at++] = 0
  at = writeInstantKey(key, at, fixedWidthInstant(timestamp))
  writeU64(key, id, at)
  return key
}

/** The instant of a by-timestamp key: 7 bytes of year, month, day, hour, minute, second (7 bits each but the year's 14), then 4 of nanoseconds. */
export const INSTANT_KEY_BYTES = 11

/**
 * Writes the fixed-width text `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` at `at`: its
 * fields read as numbers (each below 2^7, the year below 2^14: every digit
 * string of its width fits), packed from the year down, big-endian, so that
 * byte order is the text's order. Returns the offset after it.
 */
function writeInstantKey(key: Buffer, at: number, fixedWidth: string): number {
  invariant(fixedWidth.length === 30, 'a fixed-width instant has 30 characters')
  let fields = digitsAt(fixedWidth, 0, 4)
  for (const start of INSTANT_TWO_DIGIT_FIELDS) fields = fields * 128 + digitsAt(fixedWidth, start, 2)
  // 14 + 5 × 7 = 49 bits: exact in a double; the top byte, then six.
  key[at] = Math.floor(fields / 2 ** 48)
  key.writeUIntBE(fields % 2 ** 48, at + 1, 6)
  key.writeUInt32BE(digitsAt(fixedWidth, 20, 9), at + 7)
  return at + INSTANT_KEY_BYTES
}

/** Where the month, day, hour, minute and second start in the fixed-width text. */
const INSTANT_TWO_DIGIT_FIELDS = [5, 8, 11, 14, 17] as const

function digitsAt(text: string, start: number, count: number): number {
  let value = 0
  for (let i = start; i < start + count; i++) {
    const digit = text.charCodeAt(i) - 0x30
    invariant(digit >= 0 && digit <= 9, 'a fixed-width instant has digits where digits go')
    value = value * 10 + digit
  }
  return value
}

/** The fixed-width text of a by-timestamp key's instant (findings name the row by it). */
export function readInstantKey(key: Buffer, at: number): string {
  invariant(key.length >= at + INSTANT_KEY_BYTES, 'a by-timestamp key holds an instant')
  let fields = (key[at] as number) * 2 ** 48 + key.readUIntBE(at + 1, 6)
  const parts: string[] = []
  for (let i = 0; i < INSTANT_TWO_DIGIT_FIELDS.length; i++) {
    parts.unshift(String(fields % 128).padStart(2, '0'))
    fields = Math.floor(fields / 128)
  }
  const [month, day, hour, minute, second] = parts
  const nanoseconds = String(key.readUInt32BE(at + 7)).padStart(9, '0')
  return `${String(fields).padStart(4, '0')}-${month}-${day}T${hour}:${minute}:${second}.${nanoseconds}Z`
}

/** One buffer, not a concatenation of three or four: [zone][kind] ledger \0 name \0 id. */
function indexRowKey(kind: number, ledger: string, name: string, id: bigint): Buffer {
  const ledgerBytes = utf8Length(ledger)
  const key = Buffer.allocUnsafe(2 + ledgerBytes + 1 + utf8Length(name) + 1 + 8)
  key[0] = Zone.indexes
  key[1] = kind
  let at = writeUtf8(key, ledger, 2)
  key[at++] = 0
  at = writeUtf8(key, name, at)
  key[at++] = 0
  writeU64(key, id, at)
  return key
}

export function accountTransactionsPrefix(ledger: string, account?: string): Buffer {
  return Buffer.concat([Buffer.of(Zone.indexes, IndexKind.accountTransactions), Buffer.from(`${ledger}\u0000${account === undefined ? '' : `${account}\u0000`}`, 'utf8')])
}

export function accountTransactionKey(ledger: string, account: string, id: bigint): Buffer {
  return indexRowKey(IndexKind.accountTransactions, ledger, account, id)
}

/**
 * RFC 3339 UTC with the fraction padded to nanoseconds, so that bytes order
 * as instants whatever precision a date came with (ours carry milliseconds,
 * imported v2 dates microseconds).
 */
export function fixedWidthInstant(date: string): string {
  // Every transaction of a bulk has the same date: its padded form is kept.
  if (date === lastInstantOf) return lastInstant
  const padded = fixedWidthInstantOf(date)
  lastInstantOf = date
  lastInstant = padded
  return padded
}

/** `fixedWidthInstant`'s last argument and answer (none before the first). */
let lastInstantOf: string | undefined
let lastInstant = ''

/** `fixedWidthInstant` without its memory of the last answer (a pure function of `date`). */
function fixedWidthInstantOf(date: string): string {
  // The common case, a millisecond date as the engine writes it: padded without the regex.
  if (date.length === 24 && isMillisecondDate(date)) return `${date.slice(0, 23)}000000Z`
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(date)
  if (match === null) throw new InvariantViolation(`date ${JSON.stringify(date)} is not RFC 3339 UTC`)
  return `${match[1]}.${(match[2] ?? '').padEnd(9, '0')}Z`
}

/** `YYYY-MM-DDTHH:MM:SS.mmmZ`, digits where digits go (what the regex above accepts at this length). */
function isMillisecondDate(date: string): boolean {
  for (let i = 0; i < 23; i++) {
    const code = date.charCodeAt(i)
    const expected = MILLISECOND_SHAPE.charCodeAt(i)
    if (expected === 0x64 /* d */ ? code < 0x30 || code > 0x39 : code !== expected) return false
  }
  return date.charCodeAt(23) === 0x5a /* Z */
}

const MILLISECOND_SHAPE = 'dddd-dd-ddTdd:dd:dd.ddd'

/** Signed audit checkpoints: [zone][chain size u64 BE] → the C2SP checkpoint note (text). */
export function auditCheckpointRowKey(size: bigint): Buffer {
  return Buffer.concat([Buffer.of(Zone.auditCheckpoints), u64be(size)])
}

/** Audit rows: [zone][seq u64 BE]. */
export function auditRowKey(seq: bigint): Buffer {
  return Buffer.concat([Buffer.of(Zone.audit), u64be(seq)])
}

/** Rows of the outputs zone: [zone][kind byte][0][id]; kind `c` a pipeline's cursor (`e` exporter and `p` pipeline: an older release's rows, read once to convert them). */
export function outputRowKey(kind: 'e' | 'p' | 'c', id: string): Buffer {
  return Buffer.concat([Buffer.of(Zone.outputs), Buffer.from(kind, 'latin1'), Buffer.of(0), Buffer.from(id, 'utf8')])
}

export function outputRowPrefix(kind: 'e' | 'p' | 'c'): Buffer {
  return Buffer.concat([Buffer.of(Zone.outputs), Buffer.from(kind, 'latin1'), Buffer.of(0)])
}
