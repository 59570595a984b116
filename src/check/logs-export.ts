import type { LedgerName } from '../domain/index.ts'
import { JsonBytes, decodeAttribute, idempotencyKey, isPackedString, ledgerKey, ledgerNotFound, readPackedString, writePackedJson } from '../domain/index.ts'
import type { BatchedRangeReader, StoreReader } from '../store/index.ts'
import { attributeRowKey, logRowFields, logRowPrefix, prefixEnd } from '../store/index.ts'

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
 * `exportBatchBytes` at a time; each batch's lines are printed straight from
 * the packed rows (`writePackedJson`: nothing decoded but the idempotency
 * key) in one synchronous stretch into the generator's own writer.
 */
async function* exportLogBatches(store: ExportReader, ledger: LedgerName): AsyncGenerator<ExportChunk> {
  if ((await store.get(attributeRowKey(ledgerKey(ledger)))) === undefined) throw ledgerNotFound(ledger)
  const prefix = logRowPrefix(ledger)
  const out = new JsonBytes(exportBatchBytes)
  for await (const rows of store.rangeBatches({ gte: prefix, lt: prefixEnd(prefix), batchBytes: exportBatchBytes })) {
    const batch = rows.map(([, value]) => storedLog(value))
    const hashes = await idempotencyHashes(store, ledger, batch)
    batch.forEach((log, i) => writeLog(out, log, hashes[i]))
    yield { bytes: out.take(), logs: batch.length }
  }
}

/** A stored log row, its fields located but not decoded (only the idempotency key is read). */
interface StoredLog {
  readonly row: Buffer
  /** The offset of each top-level field's packed value. */
  readonly fields: ReadonlyMap<string, number>
  /** '' when the log has none (or no string). */
  readonly idempotencyKey: string
}

function storedLog(row: Buffer): StoredLog {
  const fields = logRowFields(row)
  const at = fields.get('idempotencyKey')
  const idempotencyKey = at !== undefined && isPackedString(row, at) ? readPackedString(row, { offset: at }) : ''
  return { row, fields, idempotencyKey }
}

/** The request hash of each keyed log's idempotency record, read for the batch in one `getMany`. */
async function idempotencyHashes(store: ExportReader, ledger: LedgerName, batch: readonly StoredLog[]): Promise<(string | undefined)[]> {
  const hashes: (string | undefined)[] = []
  const keyed = batch.flatMap((log, i) => (log.idempotencyKey !== '' ? [i] : []))
  if (keyed.length === 0) return hashes
  const rows = await store.getMany(keyed.map((i) => attributeRowKey(idempotencyKey(ledger, (batch[i] as StoredLog).idempotencyKey))))
  keyed.forEach((at, i) => (hashes[at] = requestHashOf(rows[i])))
  return hashes
}

/**
 * One exported line, written field by field in v2's order: the text
 * `stringifyJson` gives for the decoded object `{type, data, date,
 * idempotencyKey, idempotencyHash?, id, hash, schemaVersion?}` and a
 * newline (a missing field prints `null`, as the generic printer prints an
 * absent value), each value printed from the row's packed bytes.
 */
function writeLog(out: JsonBytes, log: StoredLog, idempotencyHash: string | undefined): void {
  out.bytes(printed.type)
  writeField(out, log, 'type')
  out.bytes(printed.data)
  writeField(out, log, 'data')
  out.bytes(printed.date)
  writeField(out, log, 'date')
  out.bytes(printed.idempotencyKey)
  out.string(log.idempotencyKey)
  if (idempotencyHash !== undefined) {
    out.bytes(printed.idempotencyHash)
    out.string(idempotencyHash)
  }
  out.bytes(printed.id)
  writeField(out, log, 'id')
  out.bytes(printed.hash)
  writeField(out, log, 'hash')
  const schemaVersion = log.fields.get('schemaVersion')
  if (schemaVersion !== undefined && isPackedString(log.row, schemaVersion)) {
    out.bytes(printed.schemaVersion)
    writePackedJson(log.row, { offset: schemaVersion }, out)
  }
  out.bytes(printed.end)
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
  null: Buffer.from('null'),
}

function writeField(out: JsonBytes, log: StoredLog, name: string): void {
  const at = log.fields.get(name)
  if (at === undefined) out.bytes(printed.null)
  else writePackedJson(log.row, { offset: at }, out)
}

function requestHashOf(row: Buffer | undefined): string | undefined {
  if (row === undefined) return undefined
  const record = decodeAttribute('i', row).value
  return record.kind === 'i' && record.value.requestHash !== '' ? record.value.requestHash : undefined
}
