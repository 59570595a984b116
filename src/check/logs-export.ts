import type { Json, LedgerName } from '../domain/index.ts'
import { decodeAttribute, idempotencyKey, invariant, isJsonObject, ledgerKey, ledgerNotFound, stringifyJson } from '../domain/index.ts'
import type { StoreReader } from '../store/index.ts'
import { attributeRowKey, decodeLogRow, logRowPrefix, prefixEnd } from '../store/index.ts'

/** Logs read before their idempotency records are fetched in one `getMany`. */
const exportBatchLogs = 512

/** Bytes of JSON lines gathered before `exportLogChunks` hands them on (one write, not one per log). */
export const exportChunkBytes = 256 * 1024

/**
 * A ledger's v2 logs, oldest first, one JSON object per line as v2's export
 * writes them (`{type, data, date, idempotencyKey, idempotencyHash?, id,
 * hash, schemaVersion?}`; the version a write followed is part of its hash). The logs come from one store iterator (one snapshot); a log with
 * an idempotency key carries its request hash (`idempotencyHash`, read from
 * the immutable idempotency record), so an import restores the record as it
 * was.
 */
export async function* exportLogLines(store: StoreReader, ledger: LedgerName): AsyncGenerator<string> {
  for await (const lines of exportLogBatches(store, ledger)) yield* lines
}

/**
 * The same lines as `exportLogLines`, joined into chunks of about
 * `chunkBytes`: what a file or an HTTP response is written in. The caller's
 * backpressure paces the store iterator (a generator reads on demand), so
 * memory is one batch of logs and one chunk whatever the ledger's size.
 */
export async function* exportLogChunks(store: StoreReader, ledger: LedgerName, chunkBytes = exportChunkBytes): AsyncGenerator<{ readonly text: string; readonly logs: number }> {
  let text = ''
  let logs = 0
  for await (const lines of exportLogBatches(store, ledger)) {
    for (const line of lines) {
      text += line
      logs++
      if (text.length >= chunkBytes) {
        yield { text, logs }
        text = ''
        logs = 0
      }
    }
  }
  if (logs > 0) yield { text, logs }
}

/** Logs in batches: one iterator over the log zone, the batch's idempotency records in one read. */
async function* exportLogBatches(store: StoreReader, ledger: LedgerName): AsyncGenerator<string[]> {
  if ((await store.get(attributeRowKey(ledgerKey(ledger)))) === undefined) throw ledgerNotFound(ledger)
  const prefix = logRowPrefix(ledger)
  let batch: { [key: string]: Json }[] = []
  for await (const [, value] of store.range({ gte: prefix, lt: prefixEnd(prefix) })) {
    const log = decodeLogRow(value)
    invariant(isJsonObject(log), 'a stored log is an object')
    batch.push(log)
    if (batch.length >= exportBatchLogs) {
      yield await printBatch(store, ledger, batch)
      batch = []
    }
  }
  if (batch.length > 0) yield await printBatch(store, ledger, batch)
}

async function printBatch(store: StoreReader, ledger: LedgerName, batch: readonly { [key: string]: Json }[]): Promise<string[]> {
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
  let line = `{"type":${stringifyJson(log.type ?? null)},"data":${stringifyJson(log.data ?? null)},"date":${stringifyJson(log.date ?? null)},"idempotencyKey":${JSON.stringify(key)}`
  if (idempotencyHash !== undefined) line += `,"idempotencyHash":${JSON.stringify(idempotencyHash)}`
  line += `,"id":${stringifyJson(log.id ?? null)},"hash":${stringifyJson(log.hash ?? null)}`
  if (typeof log.schemaVersion === 'string') line += `,"schemaVersion":${JSON.stringify(log.schemaVersion)}`
  return `${line}}\n`
}

function requestHashOf(row: Buffer | undefined): string | undefined {
  if (row === undefined) return undefined
  const record = decodeAttribute('i', row).value
  return record.kind === 'i' && record.value.requestHash !== '' ? record.value.requestHash : undefined
}
