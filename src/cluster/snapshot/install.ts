/**
 * Installing a received snapshot into a replica's (closed) data directory,
 * atomically (docs/cluster.md, "Snapshots and rebuild"):
 *
 *   1. the image is verified again, then loaded into a new store in
 *      `store.installing` (last batch synced, with this node's own rows:
 *      checkpoint = committed = applied index, its epoch);
 *   2. an `install.json` marker (the image's applied index) is written,
 *      fsynced and renamed into place: the commit point of the install;
 *   3. roll forward: `store` → `store.old`, `store.installing` → `store`, the
 *      WAL reset to start after the applied index, `store.old`, the marker and
 *      the staging directory removed — each step idempotent.
 *
 * A crash before the marker is durable leaves the old store and WAL whole
 * (`recoverInstall` drops `store.installing`); after it, `recoverInstall`
 * finishes the roll forward. The node never opens a mix of both.
 */
import * as fs from 'node:fs/promises'
import path from 'node:path'
import { invariant } from '../../domain/index.ts'
import { MetaKey, Store, metaKey, type RowWrite } from '../../store/index.ts'
import { ReplicationMetaKey } from '../../server/index.ts'
import { resetWal, type WalIo } from '../../wal/index.ts'
import { readSnapshotRows, verifySnapshotDirectory } from './image.ts'
import type { SnapshotManifest } from './manifest.ts'
import { fsyncPath } from './fsync.ts'

const markerName = 'install.json'
const installBatchRows = 1024

/** The directory operations the install's atomicity rests on (a test replaces them with a power-loss model). */
export interface InstallIo {
  rename(from: string, to: string): Promise<void>
  /** Removes a file or a directory tree; nothing when missing. */
  remove(target: string): Promise<void>
  /** fsync of a directory: makes renames and removals in it durable. */
  syncDirectory(directory: string): Promise<void>
  /** Writes a new file and fsyncs it (its directory entry still needs `syncDirectory`). */
  writeFileSynced(file: string, bytes: Uint8Array): Promise<void>
}

export const fileSystemInstallIo: InstallIo = {
  rename: (from, to) => fs.rename(from, to),
  remove: (target) => fs.rm(target, { recursive: true, force: true }),
  syncDirectory: (directory) => fsyncPath(directory),
  async writeFileSynced(file, bytes) {
    const handle = await fs.open(file, 'w')
    try {
      await handle.write(bytes, 0, bytes.byteLength, 0)
      await handle.sync()
    } finally {
      await handle.close()
    }
  },
}

export interface InstallSnapshotOptions {
  /** The replica's data directory (`store/`, `wal/`); its node is closed. */
  readonly dataDirectory: string
  /** Where `receiveSnapshot` left the verified image. */
  readonly stagingDirectory: string
  /** The manifest the transfer verified the files against. */
  readonly manifest: SnapshotManifest
  /** The epoch this replica has adopted: kept if above the image's. */
  readonly epoch: number
  readonly io?: InstallIo
  readonly walIo?: Partial<WalIo>
  readonly openStore?: (directory: string) => Promise<Store>
  /** Test hook (mutation checks): false skips verifying the image before loading it. */
  readonly verifyImage?: boolean
  /** Test hook (mutation checks): false loads the image straight into `store`, without the staging store and marker. */
  readonly atomic?: boolean
}

function locations(dataDirectory: string): { store: string; installing: string; old: string; wal: string; marker: string; markerTemp: string } {
  return {
    store: path.join(dataDirectory, 'store'),
    installing: path.join(dataDirectory, 'store.installing'),
    old: path.join(dataDirectory, 'store.old'),
    wal: path.join(dataDirectory, 'wal'),
    marker: path.join(dataDirectory, markerName),
    markerTemp: path.join(dataDirectory, `${markerName}.tmp`),
  }
}

async function exists(target: string): Promise<boolean> {
  return fs.stat(target).then(
    () => true,
    () => false,
  )
}

export async function installSnapshot(options: InstallSnapshotOptions): Promise<void> {
  const io = options.io ?? fileSystemInstallIo
  const where = locations(options.dataDirectory)
  if (options.verifyImage ?? true) {
    const verdict = await verifySnapshotDirectory(options.stagingDirectory)
    if (!verdict.ok) throw new Error(`snapshot install: the staged image does not verify (${verdict.reason})`)
    invariant(verdict.manifest.appliedIndex === options.manifest.appliedIndex, 'the staged image is the one transferred')
  }
  const atomic = options.atomic ?? true
  const target = atomic ? where.installing : where.store
  await io.remove(target)
  const store = await (options.openStore ?? Store.open)(target)
  try {
    let batch: RowWrite[] = []
    for await (const [key, value] of readSnapshotRows(options.stagingDirectory, options.manifest)) {
      batch.push({ key, value })
      if (batch.length >= installBatchRows) {
        await store.write(batch, { sync: false })
        batch = []
      }
    }
    const applied = Buffer.from(String(options.manifest.appliedIndex))
    batch.push(
      { key: metaKey(MetaKey.checkpointIndex), value: applied },
      { key: metaKey(ReplicationMetaKey.committed), value: applied },
      { key: metaKey(ReplicationMetaKey.epoch), value: Buffer.from(String(Math.max(options.epoch, options.manifest.epoch))) },
    )
    await store.write(batch, { sync: true })
  } finally {
    await store.close()
  }
  if (!atomic) {
    await resetWal({ directory: where.wal, head: options.manifest.appliedIndex, ...(options.walIo === undefined ? {} : { io: options.walIo }) })
    return
  }
  await io.syncDirectory(options.dataDirectory)
  // The commit point: once this marker is durable, the install finishes even across crashes.
  await io.writeFileSynced(where.markerTemp, Buffer.from(JSON.stringify({ appliedIndex: options.manifest.appliedIndex })))
  await io.rename(where.markerTemp, where.marker)
  await io.syncDirectory(options.dataDirectory)
  await rollForward(options.dataDirectory, options.manifest.appliedIndex, io, options.walIo)
  await io.remove(options.stagingDirectory)
}

async function rollForward(dataDirectory: string, appliedIndex: number, io: InstallIo, walIo: Partial<WalIo> | undefined): Promise<void> {
  const where = locations(dataDirectory)
  if (await exists(where.installing)) {
    if (await exists(where.store)) {
      await io.remove(where.old)
      await io.rename(where.store, where.old)
    }
    await io.rename(where.installing, where.store)
    await io.syncDirectory(dataDirectory)
  }
  await resetWal({ directory: where.wal, head: appliedIndex, ...(walIo === undefined ? {} : { io: walIo }) })
  await io.remove(where.old)
  await io.remove(where.marker)
  await io.syncDirectory(dataDirectory)
}

/**
 * Run before a node opens its data directory: finishes an install whose
 * marker is durable, or discards one that never reached it.
 */
export async function recoverInstall(options: { readonly dataDirectory: string; readonly io?: InstallIo; readonly walIo?: Partial<WalIo> }): Promise<'none' | 'rolled_forward' | 'discarded'> {
  const io = options.io ?? fileSystemInstallIo
  const where = locations(options.dataDirectory)
  await io.remove(where.markerTemp)
  const marker = await fs.readFile(where.marker).catch(() => undefined)
  if (marker === undefined) {
    if (!(await exists(where.installing))) return 'none'
    await io.remove(where.installing)
    await io.syncDirectory(options.dataDirectory)
    return 'discarded'
  }
  const { appliedIndex } = JSON.parse(marker.toString('utf8')) as { appliedIndex: unknown }
  invariant(typeof appliedIndex === 'number' && Number.isSafeInteger(appliedIndex) && appliedIndex >= 0, 'the install marker names an applied index')
  await rollForward(options.dataDirectory, appliedIndex, io, options.walIo)
  return 'rolled_forward'
}

export type StagedInstallOutcome = 'none' | 'installed' | 'partial' | 'rolled_forward'

/**
 * Run before a cluster node opens its data directory: finishes or discards
 * an interrupted install (`recoverInstall`), then installs an image the
 * replica server staged in `<data>/rebuild` once every file verifies. A
 * partial image is kept for the transfer to resume; one of another cluster
 * is removed. The node's own epoch is carried over.
 */
export async function installStagedSnapshot(options: { readonly dataDirectory: string; readonly clusterId: string; readonly log?: (message: string) => void }): Promise<StagedInstallOutcome> {
  const recovered = await recoverInstall({ dataDirectory: options.dataDirectory })
  if (recovered === 'rolled_forward') options.log?.('snapshot install: finished an install interrupted by a crash')
  const stagingDirectory = path.join(options.dataDirectory, 'rebuild')
  if (!(await exists(path.join(stagingDirectory, 'manifest.json')))) return recovered === 'rolled_forward' ? 'rolled_forward' : 'none'
  const verdict = await verifySnapshotDirectory(stagingDirectory)
  if (!verdict.ok) {
    options.log?.(`snapshot install: the staged image is incomplete (${verdict.reason}); kept for the transfer to resume`)
    return 'partial'
  }
  if (verdict.manifest.clusterId !== options.clusterId) {
    options.log?.(`snapshot install: the staged image belongs to cluster ${verdict.manifest.clusterId}; removed`)
    await fileSystemInstallIo.remove(stagingDirectory)
    return 'none'
  }
  let epoch = 0
  const storeDirectory = path.join(options.dataDirectory, 'store')
  if (await exists(storeDirectory)) {
    const store = await Store.open(storeDirectory)
    try {
      const row = await store.get(metaKey(ReplicationMetaKey.epoch))
      epoch = row === undefined ? 0 : Number(row.toString('utf8'))
      invariant(Number.isSafeInteger(epoch) && epoch >= 0, 'the stored epoch is a count')
    } finally {
      await store.close()
    }
  }
  await installSnapshot({ dataDirectory: options.dataDirectory, stagingDirectory, manifest: verdict.manifest, epoch })
  options.log?.(`snapshot install: the store is now the image at applied index ${verdict.manifest.appliedIndex} (state hash ${verdict.manifest.stateHash.hash.slice(0, 12)}…); the WAL tail follows from the primary`)
  return 'installed'
}
