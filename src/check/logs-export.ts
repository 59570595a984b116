import type { Json, LedgerName } from '../domain/index.ts'
import { JsonBytes, decodeAttribute, idempotencyKey, invariant, isJsonObject, ledgerKey, ledgerNotFound, printableTransaction, stringifyJson, writeMetadata, writeTransaction } from '../domain/index.ts'
import type { BatchedRangeReader, StoreReader } from '../store/index.ts'
import { attributeRowKey, decodeLogRow, logRowPrefix, prefixEnd } from '../store/index.ts'

/**
 * Bytes of log rows read from the store at once: one `nextv` on the thread
 * pool (a thousand rows at most), then decoded and printed without an
 * `await` per row; the batch's idempotency records come in one `getMany`.
 */
export const exportBatchBytes = 1024 * 1024

/** Bytes of JSON lines gathered before `exportLogChunks` hands them on (one write, not one per log). */
export const exportChunkBytes = 256 * 1024

/** What an export reads: the ledger and idempotency rows, and the log zone in batches. */
export type ExportReader = Pick<StoreReader, 'get' | 'getMany'> & BatchedRangeReader

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
 * `exportBatchBytes` at a time; each batch's rows are decoded and printed in
 * one synchronous stretch into the generator's own writer.
 */
async function* exportLogBatches(store: ExportReader, ledger: LedgerName): AsyncGenerator<ExportChunk> {
  if ((await store.get(attributeRowKey(ledgerKey(ledger)))) === undefined) throw ledgerNotFound(ledger)
  const prefix = logRowPrefix(ledger)
  const out = new JsonBytes(exportBatchBytes)
  for await (const rows of store.rangeBatches({ gte: prefix, lt: prefixEnd(prefix), batchBytes: exportBatchBytes })) {
    const batch: { [key: string]: Json }[] = []
    for (const [, value] of rows) {
      const log = decodeLogRow(value)
      invariant(isJsonObject(log), 'a stored log is an object')
      batch.push(log)
    }
    const hashes = await idempotencyHashes(store, ledger, batch)
    batch.forEach((log, i) => writeLog(out, log, hashes[i]))
    yield { bytes: out.take(), logs: batch.length }
  }
}

/** The request hash of each keyed log's idempotency record, read for the batch in one `getMany`. */
async function idempotencyHashes(store: ExportReader, ledger: LedgerName, batch: readonly { [key: string]: Json }[]): Promise<(string | undefined)[]> {
  const hashes: (string | undefined)[] = []
  const keyed = batch.flatMap((log, i) => (typeof log.idempotencyKey === 'string' && log.idempotencyKey !== '' ? [i] : []))
  if (keyed.length === 0) return hashes
  const rows = await store.getMany(keyed.map((i) => attributeRowKey(idempotencyKey(ledger, (batch[i] as { idempotencyKey: string }).idempotencyKey))))
  keyed.forEach((at, i) => (hashes[at] = requestHashOf(rows[i])))
  return hashes
}

/**
 * One exported line, written field by field in v2's order (the same text
 * `stringifyJson` gives for the object `{type, data, date, idempotencyKey,
 * idempotencyHash?, id, hash, schemaVersion?}` and a newline, without
 * building it).
 */
function writeLog(out: JsonBytes, log: { [key: string]: Json }, idempotencyHash: string | undefined): void {
  out.raw('{"type":')
  writeField(out, log.type)
  out.raw(',"data":')
  writeLogData(out, log.type, log.data)
  out.raw(',"date":')
  writeField(out, log.date)
  out.raw(',"idempotencyKey":')
  out.string(typeof log.idempotencyKey === 'string' ? log.idempotencyKey : '')
  if (idempotencyHash !== undefined) {
    out.raw(',"idempotencyHash":')
    out.string(idempotencyHash)
  }
  out.raw(',"id":')
  writeField(out, log.id)
  out.raw(',"hash":')
  writeField(out, log.hash)
  if (typeof log.schemaVersion === 'string') {
    out.raw(',"schemaVersion":')
    out.string(log.schemaVersion)
  }
  out.raw('}\n')
}

/** A scalar field of a log (a string, the id), as the generic printer prints it; `null` when missing. */
function writeField(out: JsonBytes, value: Json | undefined): void {
  if (typeof value === 'string') out.string(value)
  else if (typeof value === 'bigint') out.integer(value)
  else out.utf8(stringifyJson(value ?? null))
}

/**
 * A log's payload. The transactions a NEW_TRANSACTION or a
 * REVERTED_TRANSACTION carries go through the transaction printer, in the
 * payload's key order as the ledger log writes it (`appendLedgerLog`);
 * a payload of any other shape, and every other log, through the generic
 * printer. Either way the text is `stringifyJson(data)`.
 */
function writeLogData(out: JsonBytes, type: Json | undefined, data: Json | undefined): void {
  if (data === undefined || !isJsonObject(data)) return out.utf8(stringifyJson(data ?? null))
  const fields = Object.keys(data)
  if (type === 'NEW_TRANSACTION' && fields.length === 2 && fields[0] === 'transaction' && fields[1] === 'accountMetadata' && isAccountMetadata(data.accountMetadata)) {
    out.raw('{"transaction":')
    writeTransaction(out, printableTransaction(data.transaction), { volumes: false })
    out.raw(',"accountMetadata":')
    writeAccountMetadata(out, data.accountMetadata)
    return out.raw('}')
  }
  if (type === 'REVERTED_TRANSACTION' && fields.length === 3 && fields[0] === 'revertedTransactionID' && fields[1] === 'transaction' && fields[2] === 'revertedTransaction') {
    out.raw('{"revertedTransactionID":')
    writeField(out, data.revertedTransactionID)
    out.raw(',"transaction":')
    writeTransaction(out, printableTransaction(data.transaction), { volumes: false })
    out.raw(',"revertedTransaction":')
    writeTransaction(out, printableTransaction(data.revertedTransaction), { volumes: false })
    return out.raw('}')
  }
  out.utf8(stringifyJson(data))
}

/** Metadata by account, as the log holds it (`{address: {key: value}}`, usually empty). */
function isAccountMetadata(value: Json | undefined): value is { [address: string]: { [key: string]: string } } {
  if (value === undefined || !isJsonObject(value)) return false
  for (const address of Object.keys(value)) {
    const metadata = value[address]
    if (metadata === undefined || !isJsonObject(metadata)) return false
  }
  return true
}

function writeAccountMetadata(out: JsonBytes, value: { [address: string]: { [key: string]: string } }): void {
  out.raw('{')
  let first = true
  for (const address of Object.keys(value)) {
    if (!first) out.raw(',')
    out.string(address)
    out.raw(':')
    writeMetadata(out, value[address] as { [key: string]: string })
    first = false
  }
  out.raw('}')
}

function requestHashOf(row: Buffer | undefined): string | undefined {
  if (row === undefined) return undefined
  const record = decodeAttribute('i', row).value
  return record.kind === 'i' && record.value.requestHash !== '' ? record.value.requestHash : undefined
}
