import type { LedgerName } from '../domain/index.ts'
import type { PackedCursor } from '../domain/index.ts'
import { JsonBytes, LOG_BARE_NUMBER_MAX, LOG_HASH_BYTES, TransactionLogFlag, decodeAttribute, idempotencyKey, invariant, isPackedString, ledgerKey, ledgerNotFound, openPackedObject, readPackedCount, readPackedString, writePackedJson } from '../domain/index.ts'
import type { BatchedRangeReader, BatchedValueReader, StoreReader } from '../store/index.ts'
import { RowLayout, attributeRowKey, logRowFields, logRowPrefix, prefixEnd, rangeValueBatchesOf } from '../store/index.ts'

/**
 * Bytes of log rows read from the store at once: one `nextv` on the thread
 * pool (`exportBatchRowsMax` rows at most, values only), then printed
 * without an `await` per row; the batch's idempotency records come in one
 * `getMany`.
 */
export const exportBatchBytes = 1024 * 1024

/**
 * Bytes of JSON lines gathered before `exportLogChunks` hands them on (one
 * write, not one per log): a batch of 400 transfers' logs (~180 KB) is a
 * chunk by itself, handed on without being copied into a larger one.
 */
export const exportChunkBytes = 128 * 1024

/**
 * Bytes of chunks an export's file stream queues before it pushes back
 * (its `highWaterMark`): about ten batches' lines, so the next batches are
 * read and printed while the last ones are written. With a stream's default
 * (16 KiB) every chunk waits for its write to finish before the next is
 * printed; with 4 MiB (three batches of ~1.3 MB) a loaded machine's slow
 * writes still held the printing ~2.7 s of a 1M-log export.
 */
export const exportWriteQueueBytes = 16 * 1024 * 1024

/**
 * Rows of a batch at most (`exportBatchBytes` bounds a batch of large logs).
 * Measured on 1M transfers at load 16–19, the same CPU each way: batches
 * bounded by bytes alone (~3 000 rows, ~1.3 MB of lines) took 1.6–2.3 times
 * the wall time of batches of 1 000, and batches of 400 less again in four
 * pairs of five (÷ 1.0–1.6): the read ahead on the thread pool and the
 * printing on the JavaScript thread overlap in finer steps, which a loaded
 * machine's scheduler serves better.
 */
export const exportBatchRowsMax = 400

/** What an export reads: the ledger and idempotency rows, and the log zone in batches (values only, where the reader can). */
export type ExportReader = Pick<StoreReader, 'get' | 'getMany'> & BatchedRangeReader & Partial<BatchedValueReader>

/**
 * A ledger's v2 logs, oldest first, one JSON object per line as v2's export
 * writes them (`{type, data, date, idempotencyKey, idempotencyHash?, id,
 * hash, schemaVersion?}`; the version a write followed is part of its hash). The logs come from one store iterator (one snapshot); a log with
 * an idempotency key carries its request hash (`idempotencyHash`, read from
 * the immutable idempotency record), so an import restores the record as it
 * was.
 */
export async function* exportLogLines(store: ExportReader, ledger: LedgerName): AsyncGenerator<string> {
  // A line holds no raw newline (JSON escapes it): the batch splits back into its lines.
  for await (const batch of exportLogBatches(store, ledger)) for (const line of batch.bytes.toString('utf8').split('\n').slice(0, -1)) yield `${line}\n`
}

/**
 * The same lines as `exportLogLines`, as UTF-8 bytes in chunks of at least
 * `chunkBytes` (whole batches of logs, a batch being about `exportBatchBytes`
 * of rows): what a file or an HTTP response is written in. The caller's
 * backpressure paces the store iterator (a generator reads on demand), so
 * memory is a batch or two of logs and one chunk whatever the ledger's size.
 */
export async function* exportLogChunks(store: ExportReader, ledger: LedgerName, chunkBytes = exportChunkBytes): AsyncGenerator<ExportChunk> {
  let pending: Buffer[] = []
  let length = 0
  let logs = 0
  for await (const batch of exportLogBatches(store, ledger)) {
    pending.push(batch.bytes)
    length += batch.bytes.length
    logs += batch.logs
    if (length >= chunkBytes) {
      yield { bytes: pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, length), logs }
      pending = []
      length = 0
      logs = 0
    }
  }
  if (logs > 0) yield { bytes: Buffer.concat(pending, length), logs }
}

/** Exported lines as UTF-8, and how many logs they are. */
export interface ExportChunk {
  readonly bytes: Buffer
  readonly logs: number
}

/**
 * Logs in batches: one iterator over the log zone (one snapshot), read
 * `exportBatchBytes` at a time; each batch's lines are printed straight from
 * the packed rows (`writePackedJson`: nothing decoded but the idempotency
 * key) in one synchronous stretch into the generator's own writer. A keyed
 * log's request hash is read afterwards for the whole batch (one `getMany`)
 * and put in its line where it was left out.
 */
async function* exportLogBatches(store: ExportReader, ledger: LedgerName): AsyncGenerator<ExportChunk> {
  if ((await store.get(attributeRowKey(ledgerKey(ledger)))) === undefined) throw ledgerNotFound(ledger)
  const prefix = logRowPrefix(ledger)
  // A batch's lines outgrow its rows (~1.3 times): room for them from the start, kept between batches
  // (a writer emptied past its bound would start again small and grow, copying, every batch).
  const out = new JsonBytes(2 * exportBatchBytes, 4 * exportBatchBytes)
  const keyed: KeyedLine[] = []
  for await (const rows of rangeValueBatchesOf(store, { gte: prefix, lt: prefixEnd(prefix), batchBytes: exportBatchBytes, rowsMax: exportBatchRowsMax })) {
    keyed.length = 0
    for (const row of rows) writeLogLine(out, row, keyed)
    yield { bytes: keyed.length === 0 ? out.take() : await withIdempotencyHashes(store, ledger, out, keyed), logs: rows.length }
  }
}

/** A printed line whose log has an idempotency key: where its `idempotencyHash` field goes, if its record has one. */
interface KeyedLine {
  readonly at: number
  readonly key: string
}

/**
 * One exported line, written field by field in v2's order: the text
 * `stringifyJson` gives for the decoded object `{type, data, date,
 * idempotencyKey, idempotencyHash?, id, hash, schemaVersion?}` and a
 * newline (a missing field prints `null`, as the generic printer prints an
 * absent value), each value printed from the row's packed bytes. The
 * `idempotencyHash` is left out: a keyed log notes where it goes in `keyed`.
 */
function writeLogLine(out: JsonBytes, row: Buffer, keyed: KeyedLine[]): void {
  if (row[0] === RowLayout.transactionLog) return writeTransactionLogLine(out, row, keyed)
  const start = out.length
  if (writeFsmOrderedLine(out, row, keyed)) return
  out.discardFrom(start)
  writeLocatedLine(out, row, keyed)
}

/** Reused by the one-pass printer (printing is synchronous). */
const cursor: PackedCursor = { offset: 0 }

/**
 * The line of a row in the order the FSM writes a log (`{id, hash, type,
 * data, date, idempotencyKey?, schemaVersion?}`), printed in one pass over
 * the row: the fields before `type` are remembered, the rest printed as they
 * come. False, with part of a line written, for a row of any other shape
 * (the caller discards it and prints the row by `writeLocatedLine`).
 */
function writeFsmOrderedLine(out: JsonBytes, row: Buffer, keyed: KeyedLine[]): boolean {
  const count = openPackedObject(row, RowLayout.log, cursor)
  if (count === undefined) return false
  if (!nextKeyIs(row, 'id')) return false
  const id = cursor.offset
  writePackedJson(row, cursor, undefined)
  if (!nextKeyIs(row, 'hash')) return false
  const hash = cursor.offset
  writePackedJson(row, cursor, undefined)
  if (!nextKeyIs(row, 'type')) return false
  out.bytes(printed.type)
  writePackedJson(row, cursor, out)
  if (!nextKeyIs(row, 'data')) return false
  out.bytes(printed.data)
  writePackedJson(row, cursor, out)
  if (!nextKeyIs(row, 'date')) return false
  out.bytes(printed.date)
  writePackedJson(row, cursor, out)
  let fields = 5
  let key = ''
  if (fields < count && nextKeyIs(row, 'idempotencyKey')) {
    if (!isPackedString(row, cursor.offset)) return false
    key = readPackedString(row, cursor)
    fields++
  }
  let schemaVersion = -1
  if (fields < count && nextKeyIs(row, 'schemaVersion')) {
    if (!isPackedString(row, cursor.offset)) return false
    schemaVersion = cursor.offset
    writePackedJson(row, cursor, undefined)
    fields++
  }
  if (fields !== count || cursor.offset !== row.length) return false
  out.bytes(printed.idempotencyKey)
  out.string(key)
  if (key !== '') keyed.push({ at: out.length, key })
  out.bytes(printed.id)
  cursor.offset = id
  writePackedJson(row, cursor, out)
  out.bytes(printed.hash)
  cursor.offset = hash
  writePackedJson(row, cursor, out)
  if (schemaVersion >= 0) {
    out.bytes(printed.schemaVersion)
    cursor.offset = schemaVersion
    writePackedJson(row, cursor, out)
  }
  out.bytes(printed.end)
  return true
}

/**
 * The line of a NEW_TRANSACTION row of the fixed layout (docs/adr/0012,
 * `domain/log-layouts.ts`), in one pass: the field names are the line's
 * constant text, each value is printed from its item as the generic row's
 * item would be, a date left out of the row (equal to the one before it) is
 * that item printed again (the log's date, after the account metadata, when
 * it is insertedAt's), a metadata or account metadata left out is `{}`, a
 * `reverted` left out `false`, and the hash is its 32 bytes in base64.
 */
function writeTransactionLogLine(out: JsonBytes, row: Buffer, keyed: KeyedLine[]): void {
  cursor.offset = 1
  const flags = readPackedCount(row, cursor)
  invariant(flags <= 0x1fff, () => `transaction log row with unknown flags ${flags}`)
  const items = (flags & TransactionLogFlag.numberItems) !== 0
  const id = cursor.offset
  writeLogNumber(out, row, cursor, items, false)
  const hash = cursor.offset
  if ((flags & TransactionLogFlag.hashText) !== 0) writePackedJson(row, cursor, undefined)
  else {
    invariant(hash + LOG_HASH_BYTES <= row.length, 'packed value cut short')
    cursor.offset += LOG_HASH_BYTES
  }
  const key = (flags & TransactionLogFlag.idempotencyKey) !== 0 ? readPackedString(row, cursor) : ''
  const schemaVersion = cursor.offset
  if ((flags & TransactionLogFlag.schemaVersion) !== 0) writePackedJson(row, cursor, undefined)
  out.bytes(printed.transactionLogStart)
  writeLogNumber(out, row, cursor, items, true)
  out.bytes(printed.postings)
  const postings = readPackedCount(row, cursor)
  invariant(postings <= row.length, 'transaction log row with more postings than bytes')
  for (let i = 0; i < postings; i++) {
    out.bytes(i === 0 ? printed.source : printed.nextSource)
    writePackedJson(row, cursor, out)
    out.bytes(printed.destination)
    writePackedJson(row, cursor, out)
    out.bytes(printed.amount)
    writeLogNumber(out, row, cursor, items, true)
    out.bytes(printed.asset)
    writePackedJson(row, cursor, out)
    out.byte(0x7d) // }
  }
  out.bytes(printed.timestamp)
  const timestamp = cursor.offset
  writePackedJson(row, cursor, out)
  out.bytes(printed.insertedAt)
  let insertedAt = timestamp
  if ((flags & TransactionLogFlag.insertedAt) !== 0) {
    insertedAt = cursor.offset
    writePackedJson(row, cursor, out)
  } else writePackedJson(row, { offset: timestamp }, out)
  out.bytes(printed.updatedAt)
  if ((flags & TransactionLogFlag.updatedAt) !== 0) writePackedJson(row, cursor, out)
  else writePackedJson(row, { offset: insertedAt }, out)
  out.bytes(printed.metadata)
  if ((flags & TransactionLogFlag.metadata) !== 0) writePackedJson(row, cursor, out)
  else out.bytes(printed.emptyObject)
  out.bytes(printed.reverted)
  if ((flags & TransactionLogFlag.reverted) !== 0) writePackedJson(row, cursor, out)
  else out.bytes(printed.false)
  if ((flags & TransactionLogFlag.reference) !== 0) {
    out.bytes(printed.reference)
    writePackedJson(row, cursor, out)
  }
  if ((flags & TransactionLogFlag.revertedAt) !== 0) {
    out.bytes(printed.revertedAt)
    writePackedJson(row, cursor, out)
  }
  if ((flags & TransactionLogFlag.template) !== 0) {
    out.bytes(printed.template)
    writePackedJson(row, cursor, out)
  }
  out.bytes(printed.accountMetadata)
  if ((flags & TransactionLogFlag.accountMetadata) !== 0) writePackedJson(row, cursor, out)
  else out.bytes(printed.emptyObject)
  out.bytes(printed.transactionLogDate)
  if ((flags & TransactionLogFlag.date) !== 0) writePackedJson(row, cursor, out)
  else writePackedJson(row, { offset: insertedAt }, out)
  invariant(cursor.offset === row.length, 'packed value followed by extra bytes')
  out.bytes(printed.idempotencyKey)
  out.string(key)
  if (key !== '') keyed.push({ at: out.length, key })
  out.bytes(printed.id)
  cursor.offset = id
  writeLogNumber(out, row, cursor, items, true)
  out.bytes(printed.hash)
  if ((flags & TransactionLogFlag.hashText) !== 0) writePackedJson(row, { offset: hash }, out)
  else out.string(row.toString('base64', hash, hash + LOG_HASH_BYTES))
  if ((flags & TransactionLogFlag.schemaVersion) !== 0) {
    out.bytes(printed.schemaVersion)
    writePackedJson(row, { offset: schemaVersion }, out)
  }
  out.bytes(printed.end)
}

/** An id or amount of the fixed log row: an item (flag 4096), or a bare LEB128 up to 2^52; printed when `print`, else stepped over. */
function writeLogNumber(out: JsonBytes, row: Buffer, at: PackedCursor, items: boolean, print: boolean): void {
  if (items) return writePackedJson(row, at, print ? out : undefined)
  const value = readPackedCount(row, at)
  invariant(value <= LOG_BARE_NUMBER_MAX, 'transaction log row with a bare number past 2^52')
  if (print) out.safeInteger(value)
}

/** Whether the next key of the object at `cursor` is `name`: if so the cursor moves past it, else it stays. */
function nextKeyIs(row: Buffer, name: string): boolean {
  const at = cursor.offset
  if (!isPackedString(row, at)) return false
  if (readPackedString(row, cursor) === name) return true
  cursor.offset = at
  return false
}

/** The line of a row of any field order: its fields located first (`logRowFields`), then printed by name. */
function writeLocatedLine(out: JsonBytes, row: Buffer, keyed: KeyedLine[]): void {
  const fields = logRowFields(row)
  const at = fields.get('idempotencyKey')
  const key = at !== undefined && isPackedString(row, at) ? readPackedString(row, { offset: at }) : ''
  out.bytes(printed.type)
  writeField(out, row, fields, 'type')
  out.bytes(printed.data)
  writeField(out, row, fields, 'data')
  out.bytes(printed.date)
  writeField(out, row, fields, 'date')
  out.bytes(printed.idempotencyKey)
  out.string(key)
  if (key !== '') keyed.push({ at: out.length, key })
  out.bytes(printed.id)
  writeField(out, row, fields, 'id')
  out.bytes(printed.hash)
  writeField(out, row, fields, 'hash')
  const schemaVersion = fields.get('schemaVersion')
  if (schemaVersion !== undefined && isPackedString(row, schemaVersion)) {
    out.bytes(printed.schemaVersion)
    writePackedJson(row, { offset: schemaVersion }, out)
  }
  out.bytes(printed.end)
}

/**
 * The batch's lines with each keyed log's `idempotencyHash` put where it
 * goes (its record's request hash, read for the batch in one `getMany`);
 * the writer is empty again.
 */
async function withIdempotencyHashes(store: ExportReader, ledger: LedgerName, out: JsonBytes, keyed: readonly KeyedLine[]): Promise<Buffer> {
  const records = await store.getMany(keyed.map(({ key }) => attributeRowKey(idempotencyKey(ledger, key))))
  const fields = new JsonBytes(64 * keyed.length)
  const ends: number[] = []
  for (const record of records) {
    const hash = requestHashOf(record)
    if (hash !== undefined) {
      fields.bytes(printed.idempotencyHash)
      fields.string(hash)
    }
    ends.push(fields.length)
  }
  if (fields.length === 0) return out.take()
  const lines = out.viewFrom(0)
  const inserted = fields.viewFrom(0)
  const bytes = Buffer.allocUnsafe(lines.length + inserted.length)
  let from = 0
  let written = 0
  let fieldFrom = 0
  keyed.forEach(({ at }, i) => {
    bytes.set(lines.subarray(from, at), written)
    written += at - from
    from = at
    const fieldEnd = ends[i] as number
    bytes.set(inserted.subarray(fieldFrom, fieldEnd), written)
    written += fieldEnd - fieldFrom
    fieldFrom = fieldEnd
  })
  bytes.set(lines.subarray(from), written)
  out.discardFrom(0)
  return bytes
}

/** The line's fixed text, as bytes once. */
const printed = {
  type: Buffer.from('{"type":'),
  data: Buffer.from(',"data":'),
  date: Buffer.from(',"date":'),
  idempotencyKey: Buffer.from(',"idempotencyKey":'),
  idempotencyHash: Buffer.from(',"idempotencyHash":'),
  id: Buffer.from(',"id":'),
  hash: Buffer.from(',"hash":'),
  schemaVersion: Buffer.from(',"schemaVersion":'),
  end: Buffer.from('}\n'),
  transactionLogStart: Buffer.from('{"type":"NEW_TRANSACTION","data":{"transaction":{"id":'),
  postings: Buffer.from(',"postings":['),
  source: Buffer.from('{"source":'),
  nextSource: Buffer.from(',{"source":'),
  destination: Buffer.from(',"destination":'),
  amount: Buffer.from(',"amount":'),
  asset: Buffer.from(',"asset":'),
  timestamp: Buffer.from('],"timestamp":'),
  insertedAt: Buffer.from(',"insertedAt":'),
  updatedAt: Buffer.from(',"updatedAt":'),
  metadata: Buffer.from(',"metadata":'),
  reverted: Buffer.from(',"reverted":'),
  reference: Buffer.from(',"reference":'),
  revertedAt: Buffer.from(',"revertedAt":'),
  template: Buffer.from(',"template":'),
  accountMetadata: Buffer.from('},"accountMetadata":'),
  transactionLogDate: Buffer.from('},"date":'),
  null: Buffer.from('null'),
  false: Buffer.from('false'),
  emptyObject: Buffer.from('{}'),
}

function writeField(out: JsonBytes, row: Buffer, fields: ReadonlyMap<string, number>, name: string): void {
  const at = fields.get(name)
  if (at === undefined) out.bytes(printed.null)
  else writePackedJson(row, { offset: at }, out)
}

function requestHashOf(row: Buffer | undefined): string | undefined {
  if (row === undefined) return undefined
  const record = decodeAttribute('i', row).value
  return record.kind === 'i' && record.value.requestHash !== '' ? record.value.requestHash : undefined
}
