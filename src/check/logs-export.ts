import type { Json, LedgerName } from '../domain/index.ts'
import { decodeAttribute, idempotencyKey, invariant, isJsonObject, ledgerKey, ledgerNotFound, metadataJson, printTransaction, printableTransaction, stringJson, stringifyJson } from '../domain/index.ts'
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
  for await (const lines of exportLogBatches(store, ledger)) yield* lines
}

/**
 * The same lines as `exportLogLines`, joined into chunks of about
 * `chunkBytes`: what a file or an HTTP response is written in. The caller's
 * backpressure paces the store iterator (a generator reads on demand), so
 * memory is one batch of logs and one chunk whatever the ledger's size.
 */
export async function* exportLogChunks(store: ExportReader, ledger: LedgerName, chunkBytes = exportChunkBytes): AsyncGenerator<{ readonly text: string; readonly logs: number }> {
  // Lines are joined once per chunk: one flat string, which the writer encodes in one pass.
  let pending: string[] = []
  let length = 0
  for await (const lines of exportLogBatches(store, ledger)) {
    for (const line of lines) {
      pending.push(line)
      length += line.length
      if (length >= chunkBytes) {
        yield { text: pending.join(''), logs: pending.length }
        pending = []
        length = 0
      }
    }
  }
  if (pending.length > 0) yield { text: pending.join(''), logs: pending.length }
}

/** Logs in batches: one iterator over the log zone (one snapshot), read `exportBatchBytes` at a time. */
async function* exportLogBatches(store: ExportReader, ledger: LedgerName): AsyncGenerator<string[]> {
  if ((await store.get(attributeRowKey(ledgerKey(ledger)))) === undefined) throw ledgerNotFound(ledger)
  const prefix = logRowPrefix(ledger)
  for await (const rows of store.rangeBatches({ gte: prefix, lt: prefixEnd(prefix), batchBytes: exportBatchBytes })) {
    const batch: { [key: string]: Json }[] = []
    for (const [, value] of rows) {
      const log = decodeLogRow(value)
      invariant(isJsonObject(log), 'a stored log is an object')
      batch.push(log)
    }
    yield await printBatch(store, ledger, batch)
  }
}

async function printBatch(store: ExportReader, ledger: LedgerName, batch: readonly { [key: string]: Json }[]): Promise<string[]> {
  const keys = batch.map((log) => (typeof log.idempotencyKey === 'string' ? log.idempotencyKey : ''))
  const keyed = keys.flatMap((key, i) => (key === '' ? [] : [i]))
  const hashes: (string | undefined)[] = []
  if (keyed.length > 0) {
    const rows = await store.getMany(keyed.map((i) => attributeRowKey(idempotencyKey(ledger, keys[i] as string))))
    keyed.forEach((at, i) => (hashes[at] = requestHashOf(rows[i])))
  }
  return batch.map((log, i) => printLog(log, keys[i] as string, hashes[i]))
}

/**
 * One exported line, printed field by field in v2's order (the same text
 * `stringifyJson` gives for the object `{type, data, date, idempotencyKey,
 * idempotencyHash?, id, hash, schemaVersion?}`, without building it).
 */
function printLog(log: { [key: string]: Json }, key: string, idempotencyHash: string | undefined): string {
  let line = `{"type":${fieldJson(log.type)},"data":${logDataJson(log.type, log.data)},"date":${fieldJson(log.date)},"idempotencyKey":${stringJson(key)}`
  if (idempotencyHash !== undefined) line += `,"idempotencyHash":${stringJson(idempotencyHash)}`
  line += `,"id":${fieldJson(log.id)},"hash":${fieldJson(log.hash)}`
  if (typeof log.schemaVersion === 'string') line += `,"schemaVersion":${stringJson(log.schemaVersion)}`
  return `${line}}\n`
}

/** A scalar field of a log (a string, the id), as the generic printer prints it; `null` when missing. */
function fieldJson(value: Json | undefined): string {
  if (typeof value === 'string') return stringJson(value)
  if (typeof value === 'bigint') return value.toString()
  return stringifyJson(value ?? null)
}

/**
 * A log's payload. The transactions a NEW_TRANSACTION or a
 * REVERTED_TRANSACTION carries go through the transaction printer, in the
 * payload's key order as the ledger log writes it (`appendLedgerLog`);
 * a payload of any other shape, and every other log, through the generic
 * printer. Either way the text is `stringifyJson(data)`.
 */
function logDataJson(type: Json | undefined, data: Json | undefined): string {
  if (data === undefined || !isJsonObject(data)) return stringifyJson(data ?? null)
  const fields = Object.keys(data)
  if (type === 'NEW_TRANSACTION' && fields.length === 2 && fields[0] === 'transaction' && fields[1] === 'accountMetadata') {
    return `{"transaction":${printTransaction(printableTransaction(data.transaction), { volumes: false })},"accountMetadata":${accountMetadataJson(data.accountMetadata)}}`
  }
  if (type === 'REVERTED_TRANSACTION' && fields.length === 3 && fields[0] === 'revertedTransactionID' && fields[1] === 'transaction' && fields[2] === 'revertedTransaction') {
    return (
      `{"revertedTransactionID":${stringifyJson(data.revertedTransactionID ?? null)}` +
      `,"transaction":${printTransaction(printableTransaction(data.transaction), { volumes: false })}` +
      `,"revertedTransaction":${printTransaction(printableTransaction(data.revertedTransaction), { volumes: false })}}`
    )
  }
  return stringifyJson(data)
}

/** Metadata by account, as the log holds it (`{address: {key: value}}`, usually empty). */
function accountMetadataJson(value: Json | undefined): string {
  if (value === undefined || !isJsonObject(value)) return stringifyJson(value ?? null)
  let text = '{'
  let first = true
  for (const address of Object.keys(value)) {
    const metadata = value[address]
    if (metadata === undefined || !isJsonObject(metadata)) return stringifyJson(value)
    text += `${first ? '' : ','}${stringJson(address)}:${metadataJson(metadata as { [key: string]: string })}`
    first = false
  }
  return `${text}}`
}

function requestHashOf(row: Buffer | undefined): string | undefined {
  if (row === undefined) return undefined
  const record = decodeAttribute('i', row).value
  return record.kind === 'i' && record.value.requestHash !== '' ? record.value.requestHash : undefined
}
