import type { Json, LedgerName } from '../domain/index.ts'
import { decodeAttribute, idempotencyKey, invariant, isJsonObject, ledgerKey, ledgerNotFound, stringifyJson } from '../domain/index.ts'
import type { Store } from '../store/index.ts'
import { attributeRowKey, decodeLogRow, logRowPrefix, prefixEnd } from '../store/index.ts'

/**
 * A ledger's v2 logs, oldest first, one JSON object per line as v2's export
 * writes them (`{type, data, date, idempotencyKey, idempotencyHash?, id,
 * hash, schemaVersion?}`; the version a write followed is part of its hash). The logs come from one store iterator (one snapshot); a log with
 * an idempotency key carries its request hash (`idempotencyHash`, read from
 * the immutable idempotency record), so an import restores the record as it
 * was.
 */
export async function* exportLogLines(store: Store, ledger: LedgerName): AsyncGenerator<string> {
  if ((await store.get(attributeRowKey(ledgerKey(ledger)))) === undefined) throw ledgerNotFound(ledger)
  const prefix = logRowPrefix(ledger)
  for await (const [, value] of store.range({ gte: prefix, lt: prefixEnd(prefix) })) {
    const log = decodeLogRow(value)
    invariant(isJsonObject(log), 'a stored log is an object')
    const key = typeof log.idempotencyKey === 'string' ? log.idempotencyKey : ''
    const idempotencyHash = key === '' ? undefined : await requestHashOf(store, ledger, key)
    const exported: Record<string, Json> = {
      type: log.type ?? null,
      data: log.data ?? null,
      date: log.date ?? null,
      idempotencyKey: key,
      ...(idempotencyHash === undefined ? {} : { idempotencyHash }),
      id: log.id ?? null,
      hash: log.hash ?? null,
      ...(typeof log.schemaVersion === 'string' ? { schemaVersion: log.schemaVersion } : {}),
    }
    yield `${stringifyJson(exported)}\n`
  }
}

async function requestHashOf(store: Store, ledger: LedgerName, key: string): Promise<string | undefined> {
  const row = await store.get(attributeRowKey(idempotencyKey(ledger, key)))
  if (row === undefined) return undefined
  const record = decodeAttribute('i', row).value
  return record.kind === 'i' && record.value.requestHash !== '' ? record.value.requestHash : undefined
}
