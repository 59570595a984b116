import { existsSync } from 'node:fs'
import path from 'node:path'
import { isJsonObject, parseJson } from '../domain/index.ts'
import { MetaKey, Store, metaKey } from '../store/index.ts'
import type { StoreReader } from '../store/index.ts'

/** The RocksDB store of a data directory (`DIR/store`, next to `DIR/wal`). */
export function storeDirectoryOf(dataDirectory: string): string {
  return path.join(dataDirectory, 'store')
}

/** The data directory is open in another process (a running server): RocksDB allows one. */
export class StoreInUse extends Error {
  constructor(
    readonly dataDirectory: string,
    command: string,
  ) {
    super(
      `the data directory ${dataDirectory} is in use by another process (a running tally serve holds its lock). ` +
        `Run it through that server instead: ${command}`,
    )
    this.name = 'StoreInUse'
  }
}

export class NoDataDirectory extends Error {
  constructor(dataDirectory: string) {
    super(`no Tally data directory at ${dataDirectory} (expected ${storeDirectoryOf(dataDirectory)}); check --data`)
    this.name = 'NoDataDirectory'
  }
}

/**
 * Opens an existing data directory's store for an offline tool (check,
 * export). Goes through `Store.open`, so the storage schema version guard
 * applies (invariant #9): a store of another version is refused with its
 * actionable message. Never creates a store where there is none.
 */
export async function openStoreForTool(dataDirectory: string, whenInUse: string): Promise<Store> {
  const directory = storeDirectoryOf(dataDirectory)
  if (!existsSync(path.join(directory, 'CURRENT'))) throw new NoDataDirectory(dataDirectory)
  try {
    return await Store.open(directory)
  } catch (error) {
    if (isLockError(error)) throw new StoreInUse(dataDirectory, whenInUse)
    throw error
  }
}

/** RocksDB's LOCK file refused us: "While lock file" (another process) or "lock hold by current process". */
export function isLockError(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const cause = (error as { cause?: unknown }).cause
  const text = `${error.message} ${cause instanceof Error ? cause.message : String(cause ?? '')}`
  return /\block\b/i.test(text) && /LOCK/.test(text)
}

/** The cache rotation threshold a store is running with; undefined for a store from before ADR 0007 that never rotated. */
export async function rotationThresholdOf(store: StoreReader): Promise<number | undefined> {
  const row = await store.get(metaKey(MetaKey.cacheState))
  if (row === undefined) return undefined
  const state = parseJson(row.toString('utf8'))
  if (!isJsonObject(state) || typeof state.rotationThreshold !== 'bigint') return undefined
  return Number(state.rotationThreshold)
}
