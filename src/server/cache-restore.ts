import type { CacheSettings, CacheState } from '../cache/index.ts'
import { AttributeCache, MIRROR_ZONE, initialCacheState } from '../cache/index.ts'
import { cacheSettingsToJson, decodeCacheState, encodeCacheState } from '../fsm/index.ts'
import type { BatchedRangeReader, RowWrite, StoreReader } from '../store/index.ts'
import { MetaKey, attributeRowKey, metaKey, prefixEnd, rangeBatchesOf, scanBatchBytes } from '../store/index.ts'
import { stringifyJson } from '../domain/index.ts'
import type { CanonicalKey } from '../domain/index.ts'

/**
 * The rows a new data directory starts with (ADR 0007): the cache settings
 * it is created with, kept twice — the genesis row, never rewritten, where a
 * replay of the audit chain starts, and the live cache-state row.
 */
export function cacheCreationRows(settings: CacheSettings): RowWrite[] {
  return [
    { key: metaKey(MetaKey.cacheGenesis), value: encodeCacheGenesis(settings) },
    { key: metaKey(MetaKey.cacheState), value: encodeCacheState(initialCacheState(settings)) },
  ]
}

export function encodeCacheGenesis(settings: CacheSettings): Buffer {
  return Buffer.from(stringifyJson(cacheSettingsToJson(settings)), 'utf8')
}

/**
 * The cache state a store holds. A store from before the state was written
 * at creation has no row until its first rotation: it ran with the flag's K
 * and no byte bound.
 */
export async function readCacheState(store: StoreReader, legacyThreshold: number): Promise<CacheState> {
  const row = await store.get(metaKey(MetaKey.cacheState))
  if (row === undefined) return initialCacheState({ rotationThreshold: legacyThreshold, generationBytesMax: null })
  return decodeCacheState(row)
}

/**
 * Rebuilds the cache from its disk mirror (docs/adr/0010): the segment rows,
 * streamed a batch at a time (no list of every row: a generation can span
 * many indexes), give each generation's keys; the live
 * keys' values are then read from their attribute rows in bounded batches.
 * Fails closed on a malformed row or a value that disagrees with the segment.
 */
export async function restoreCache(store: StoreReader & Partial<BatchedRangeReader>, state: CacheState, appliedIndex: number): Promise<AttributeCache> {
  const cache = AttributeCache.restoring(state, appliedIndex)
  const mirrorPrefix = Buffer.of(MIRROR_ZONE)
  // In batches read on the thread pool, the next one while this one is restored (not one promise per row).
  for await (const rows of rangeBatchesOf(store, { gte: mirrorPrefix, lt: prefixEnd(mirrorPrefix), batchBytes: scanBatchBytes })) {
    for (const [rowKey, rowValue] of rows) cache.restoreSegment(rowKey, rowValue)
  }
  let keys: CanonicalKey[] = []
  const fill = async (): Promise<void> => {
    const rows = await store.getMany(keys.map((key) => attributeRowKey(key)))
    keys.forEach((key, i) => cache.restoreValue(key, rows[i]))
    keys = []
  }
  // Collected first: restoreValue changes the maps the generator walks.
  for (const key of [...cache.keysAwaitingValues()]) {
    keys.push(key)
    if (keys.length === VALUE_READ_BATCH) await fill()
  }
  if (keys.length > 0) await fill()
  return cache
}

/** Attribute rows read per `getMany` while restoring: bounds one read's memory. */
const VALUE_READ_BATCH = 1024
