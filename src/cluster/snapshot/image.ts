/**
 * Trusted snapshots on the primary (docs/cluster.md, "Snapshots and
 * rebuild"). The RocksDB binding offers no checkpoint call, so an image is a
 * consistent copy: one store iterator (RocksDB pins an implicit snapshot for
 * its life) reads every row once, so the applied index, the state hash and
 * the rows all describe the same instant. Rows go to `rows-NNNNNN.bin` files
 * (`u32 key length ‖ key ‖ u32 value length ‖ value`, little-endian), then a
 * manifest with their sizes and SHA-256; everything is fsynced in a
 * `.tmp` directory that is renamed into place last, so a snapshot directory
 * either exists whole or not at all.
 *
 * The catalog trusts a snapshot only after every file matched its manifest
 * (at take, and again at open after a restart); it keeps the newest
 * `retained` images plus any pinned by a rebuild in progress.
 */
import { createHash } from 'node:crypto'
import * as fs from 'node:fs/promises'
import path from 'node:path'
import { InvariantViolation, invariant } from '../../domain/index.ts'
import { MetaKey, Zone, metaKey, type StoreReader } from '../../store/index.ts'
import { ReplicationMetaKey } from '../../server/index.ts'
import { decodeStateHash } from '../../server/replicated.ts'
import { decodeManifest, encodeManifest, snapshotFileName, snapshotFilesMax, type SnapshotFile, type SnapshotManifest } from './manifest.ts'
import { fsyncPath } from './fsync.ts'

export const snapshotFileBytesMaxDefault = 64 * 1024 * 1024
export const snapshotsRetainedDefault = 2
/** A row is at most this big in an image (RocksDB rows of Tally are far smaller). */
export const snapshotRowBytesMax = 64 * 1024 * 1024
const manifestName = 'manifest.json'

/**
 * Meta rows that are this node's own, not the ledger's state: the replica
 * that installs an image writes its own (docs/cluster.md). The outputs zone
 * (exporters, pipelines, cursors) is node configuration and never copied.
 */
const nodeLocalKeys: readonly Buffer[] = [metaKey(MetaKey.checkpointIndex), metaKey(ReplicationMetaKey.committed), metaKey(ReplicationMetaKey.epoch)]

export function isSnapshotRow(key: Buffer): boolean {
  if (key.byteLength > 0 && key[0] === Zone.outputs) return false
  return !nodeLocalKeys.some((local) => local.equals(key))
}

export function snapshotDirectoryName(appliedIndex: number): string {
  return `snap-${String(appliedIndex).padStart(16, '0')}`
}

/**
 * Bytes of rows a take reads per store batch (on the thread pool) and writes
 * per file write (docs/cluster.md, "Snapshots and rebuild"): what a take
 * holds at once is one batch plus one slice, each over by one row at most.
 */
export const snapshotTakeSliceBytes = 1024 * 1024

/** Resolves after the event loop's next check phase: timers, I/O and lease renewals run first. */
function turnOfTheEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/**
 * Writes rows into size-bounded files; returns their descriptions. Records
 * are gathered into slices of about `sliceBytes`, each hashed and written
 * at once, with a turn of the event loop after it: a take never runs
 * longer than one slice on the JavaScript thread, nor holds more than one
 * slice of records. The bytes are the ones a row-by-row writer would write.
 */
class RowFileWriter {
  readonly files: SnapshotFile[] = []
  #handle: fs.FileHandle | undefined
  #hash = createHash('sha256')
  /** Bytes of the current file, its pending slice included. */
  #bytes = 0
  /** Where the pending slice goes in the current file. */
  #position = 0
  #slice: Buffer[] = []
  #sliceBytes = 0

  constructor(
    private readonly directory: string,
    private readonly fileBytesMax: number,
    private readonly sliceBytes: number,
  ) {}

  async add(key: Buffer, value: Buffer): Promise<void> {
    invariant(key.byteLength + value.byteLength <= snapshotRowBytesMax, () => `a row of ${key.byteLength + value.byteLength} bytes`)
    const record = Buffer.allocUnsafe(8 + key.byteLength + value.byteLength)
    record.writeUInt32LE(key.byteLength, 0)
    key.copy(record, 4)
    record.writeUInt32LE(value.byteLength, 4 + key.byteLength)
    value.copy(record, 8 + key.byteLength)
    if (this.#handle !== undefined && this.#bytes > 0 && this.#bytes + record.byteLength > this.fileBytesMax) await this.#closeFile()
    if (this.#handle === undefined) await this.#openFile()
    this.#slice.push(record)
    this.#sliceBytes += record.byteLength
    this.#bytes += record.byteLength
    if (this.#sliceBytes >= this.sliceBytes) await this.#flush()
  }

  async finish(): Promise<SnapshotFile[]> {
    if (this.#handle === undefined && this.files.length === 0) await this.#openFile()
    if (this.#handle !== undefined) await this.#closeFile()
    return this.files
  }

  async abandon(): Promise<void> {
    this.#slice = []
    this.#sliceBytes = 0
    await this.#handle?.close().catch(() => {})
    this.#handle = undefined
  }

  async #flush(): Promise<void> {
    if (this.#sliceBytes === 0) return
    const slice = this.#slice.length === 1 ? (this.#slice[0] as Buffer) : Buffer.concat(this.#slice, this.#sliceBytes)
    this.#slice = []
    this.#sliceBytes = 0
    this.#hash.update(slice)
    const handle = this.#handle as fs.FileHandle
    const { bytesWritten } = await handle.write(slice, 0, slice.byteLength, this.#position)
    invariant(bytesWritten === slice.byteLength, () => `short write of a snapshot file: ${bytesWritten} of ${slice.byteLength} bytes`)
    this.#position += slice.byteLength
    await turnOfTheEventLoop()
  }

  async #openFile(): Promise<void> {
    invariant(this.files.length < snapshotFilesMax, () => `more than ${snapshotFilesMax} snapshot files: raise the file size`)
    this.#handle = await fs.open(path.join(this.directory, snapshotFileName(this.files.length)), 'wx')
    this.#hash = createHash('sha256')
    this.#bytes = 0
    this.#position = 0
  }

  async #closeFile(): Promise<void> {
    await this.#flush()
    const handle = this.#handle as fs.FileHandle
    await handle.sync()
    await handle.close()
    this.#handle = undefined
    this.files.push({ name: snapshotFileName(this.files.length), bytes: this.#bytes, sha256: this.#hash.digest('hex') })
  }
}

export type SnapshotVerification = { readonly ok: true; readonly manifest: SnapshotManifest } | { readonly ok: false; readonly reason: string }

/** Reads a snapshot directory's manifest and checks every file's size and SHA-256 against it. */
export async function verifySnapshotDirectory(directory: string): Promise<SnapshotVerification> {
  let manifestBytes: Buffer
  try {
    manifestBytes = await fs.readFile(path.join(directory, manifestName))
  } catch {
    return { ok: false, reason: 'manifest_missing' }
  }
  const decoded = decodeManifest(manifestBytes)
  if (!decoded.ok) return { ok: false, reason: `manifest_${decoded.reason}` }
  for (const file of decoded.manifest.files) {
    const verdict = await verifyFile(path.join(directory, file.name), file)
    if (verdict !== undefined) return { ok: false, reason: verdict }
  }
  return decoded
}

/** undefined when the file matches; else why not. */
export async function verifyFile(location: string, file: SnapshotFile): Promise<string | undefined> {
  let handle: fs.FileHandle
  try {
    handle = await fs.open(location, 'r')
  } catch {
    return `file_missing:${file.name}`
  }
  try {
    const { size } = await handle.stat()
    if (size !== file.bytes) return `size_mismatch:${file.name}`
    const hash = createHash('sha256')
    for await (const piece of handle.createReadStream({ autoClose: false, start: 0 })) hash.update(piece as Buffer)
    return hash.digest('hex') === file.sha256 ? undefined : `sha256_mismatch:${file.name}`
  } finally {
    await handle.close()
  }
}

/** Reads the rows of an image's files in order (install). */
export async function* readSnapshotRows(directory: string, manifest: SnapshotManifest): AsyncIterable<[Buffer, Buffer]> {
  for (const file of manifest.files) {
    const bytes = await fs.readFile(path.join(directory, file.name))
    invariant(bytes.byteLength === file.bytes, () => `${file.name} changed size since it was verified`)
    let offset = 0
    while (offset < bytes.byteLength) {
      invariant(offset + 4 <= bytes.byteLength, () => `${file.name}: a row is cut at ${offset}`)
      const keyBytes = bytes.readUInt32LE(offset)
      invariant(offset + 8 + keyBytes <= bytes.byteLength, () => `${file.name}: a key is cut at ${offset}`)
      const key = bytes.subarray(offset + 4, offset + 4 + keyBytes)
      const valueBytes = bytes.readUInt32LE(offset + 4 + keyBytes)
      const valueAt = offset + 8 + keyBytes
      invariant(valueAt + valueBytes <= bytes.byteLength, () => `${file.name}: a value is cut at ${offset}`)
      yield [Buffer.from(key), Buffer.from(bytes.subarray(valueAt, valueAt + valueBytes))]
      offset = valueAt + valueBytes
    }
  }
}

export interface SnapshotCatalogOptions {
  /** `<data>/snapshots`. */
  readonly directory: string
  readonly retained?: number
  readonly fileBytesMax?: number
  /** Bytes per store batch and per file write of a take (`snapshotTakeSliceBytes`). */
  readonly takeSliceBytes?: number
  readonly log?: (message: string) => void
}

interface CatalogEntry {
  readonly manifest: SnapshotManifest
  /** The manifest as stored: what is offered to a replica. */
  readonly encoded: Buffer
  pins: number
}

export class SnapshotCatalog {
  readonly #entries = new Map<number, CatalogEntry>()
  #taking: Promise<SnapshotManifest> | undefined

  private constructor(private readonly options: SnapshotCatalogOptions) {}

  /** Scans the directory: unfinished (`.tmp`) and unverifiable images are removed, never trusted. */
  static async open(options: SnapshotCatalogOptions): Promise<SnapshotCatalog> {
    const catalog = new SnapshotCatalog(options)
    await fs.mkdir(options.directory, { recursive: true })
    for (const name of await fs.readdir(options.directory)) {
      const location = path.join(options.directory, name)
      if (!/^snap-\d{16}$/.test(name)) {
        if (name.endsWith('.tmp')) await fs.rm(location, { recursive: true, force: true })
        continue
      }
      const verdict = await verifySnapshotDirectory(location)
      if (!verdict.ok || snapshotDirectoryName(verdict.manifest.appliedIndex) !== name) {
        options.log?.(`snapshot ${name} does not verify (${verdict.ok ? 'misnamed' : verdict.reason}): removed`)
        await fs.rm(location, { recursive: true, force: true })
        continue
      }
      catalog.#entries.set(verdict.manifest.appliedIndex, { manifest: verdict.manifest, encoded: encodeManifest(verdict.manifest), pins: 0 })
    }
    return catalog
  }

  /** The newest trusted image, if any. */
  newest(): SnapshotManifest | undefined {
    let best: SnapshotManifest | undefined
    for (const entry of this.#entries.values()) if (best === undefined || entry.manifest.appliedIndex > best.appliedIndex) best = entry.manifest
    return best
  }

  trustedAt(appliedIndex: number): SnapshotManifest | undefined {
    return this.#entries.get(appliedIndex)?.manifest
  }

  directoryOf(appliedIndex: number): string {
    return path.join(this.options.directory, snapshotDirectoryName(appliedIndex))
  }

  /** Keeps the image at `appliedIndex` until `release` (idempotent). */
  pin(appliedIndex: number): { readonly ok: true; readonly release: () => void } | { readonly ok: false; readonly reason: string } {
    const entry = this.#entries.get(appliedIndex)
    if (entry === undefined) return { ok: false, reason: 'snapshot_missing' }
    entry.pins += 1
    let released = false
    return {
      ok: true,
      release: () => {
        if (released) return
        released = true
        entry.pins -= 1
      },
    }
  }

  pinned(appliedIndex: number): boolean {
    return (this.#entries.get(appliedIndex)?.pins ?? 0) > 0
  }

  /**
   * Reads a consistent image of `store`; one take at a time (a second caller
   * shares the running one). `epoch` is the node's adopted epoch now.
   */
  take(store: StoreReader, context: { readonly epoch: number }): Promise<SnapshotManifest> {
    this.#taking ??= this.#take(store, context).finally(() => {
      this.#taking = undefined
    })
    return this.#taking
  }

  async #take(store: StoreReader, context: { readonly epoch: number }): Promise<SnapshotManifest> {
    const staging = path.join(this.options.directory, `take-${process.pid}.tmp`)
    await fs.rm(staging, { recursive: true, force: true })
    await fs.mkdir(staging, { recursive: true })
    const sliceBytes = this.options.takeSliceBytes ?? snapshotTakeSliceBytes
    const writer = new RowFileWriter(staging, this.options.fileBytesMax ?? snapshotFileBytesMaxDefault, sliceBytes)
    let clusterId: string | undefined
    let appliedIndex = 0
    let stateHash: { index: number; hash: string } | undefined
    let rows = 0
    const clusterIdKey = metaKey(MetaKey.clusterId)
    const appliedKey = metaKey(MetaKey.appliedIndex)
    const stateHashKey = metaKey(ReplicationMetaKey.stateHash)
    try {
      // One iterator: every row below comes from the same RocksDB snapshot,
      // read in batches on the thread pool (not on the event loop).
      for await (const [key, value] of store.range({ gte: Buffer.of(0), batchBytes: sliceBytes })) {
        if (key.equals(clusterIdKey)) clusterId = value.toString('utf8')
        else if (key.equals(appliedKey)) appliedIndex = Number(value.toString('utf8'))
        else if (key.equals(stateHashKey)) stateHash = decodeStateHash(value)
        if (!isSnapshotRow(key)) continue
        await writer.add(key, value)
        rows += 1
      }
      const files = await writer.finish()
      invariant(clusterId !== undefined, 'a store without a cluster id has no snapshot')
      if (stateHash === undefined || stateHash.index !== appliedIndex) {
        throw new InvariantViolation(`the store's state hash (${String(stateHash?.index)}) is not at its applied index ${appliedIndex}: no trusted snapshot without it`)
      }
      const manifest: SnapshotManifest = { format: 1, clusterId, appliedIndex, epoch: context.epoch, stateHash: { index: stateHash.index, hash: stateHash.hash }, rows, files }
      const existing = this.#entries.get(appliedIndex)
      if (existing !== undefined) {
        await fs.rm(staging, { recursive: true, force: true })
        return existing.manifest
      }
      await fs.writeFile(path.join(staging, manifestName), encodeManifest(manifest))
      await fsyncPath(path.join(staging, manifestName))
      await fsyncPath(staging)
      const target = this.directoryOf(appliedIndex)
      await fs.rm(target, { recursive: true, force: true })
      await fs.rename(staging, target)
      await fsyncPath(this.options.directory)
      // Trusted only once what reached the disk verifies.
      const verdict = await verifySnapshotDirectory(target)
      if (!verdict.ok) throw new InvariantViolation(`snapshot at ${appliedIndex} does not verify right after it was written: ${verdict.reason}`)
      this.#entries.set(appliedIndex, { manifest: verdict.manifest, encoded: encodeManifest(verdict.manifest), pins: 0 })
      this.options.log?.(`snapshot at applied index ${appliedIndex}: ${rows} rows in ${files.length} files`)
      await this.prune()
      return verdict.manifest
    } catch (error) {
      await writer.abandon()
      await fs.rm(staging, { recursive: true, force: true }).catch(() => {})
      throw error
    }
  }

  /** Removes unpinned images beyond the newest `retained`. */
  async prune(): Promise<void> {
    const retained = this.options.retained ?? snapshotsRetainedDefault
    const indexes = [...this.#entries.keys()].sort((a, b) => b - a)
    for (const index of indexes.slice(retained)) {
      if (this.pinned(index)) continue
      this.#entries.delete(index)
      await fs.rm(this.directoryOf(index), { recursive: true, force: true })
    }
  }

  /** Bytes [offset, offset + bytes) of one file of a trusted image (the transfer's source). */
  async readChunk(request: { readonly appliedIndex: number; readonly file: string; readonly offset: number; readonly bytes: number }): Promise<Buffer> {
    const manifest = this.trustedAt(request.appliedIndex)
    invariant(manifest !== undefined, () => `no trusted snapshot at ${request.appliedIndex}`)
    const file = manifest.files.find((candidate) => candidate.name === request.file)
    invariant(file !== undefined, () => `snapshot ${request.appliedIndex} has no file ${request.file.slice(0, 64)}`)
    invariant(request.offset >= 0 && request.offset <= file.bytes, 'chunk offset inside the file')
    const length = Math.min(request.bytes, file.bytes - request.offset)
    const handle = await fs.open(path.join(this.directoryOf(request.appliedIndex), file.name), 'r')
    try {
      const buffer = Buffer.alloc(length)
      const { bytesRead } = await handle.read(buffer, 0, length, request.offset)
      invariant(bytesRead === length, () => `short read of ${file.name}`)
      return buffer
    } finally {
      await handle.close()
    }
  }

  /** The manifest's bytes as stored (what a replica verifies). */
  async manifestBytes(appliedIndex: number): Promise<Buffer> {
    return fs.readFile(path.join(this.directoryOf(appliedIndex), manifestName))
  }

  /** The encoded manifest of a trusted image (offered to a replica), at once. */
  manifestBytesOf(appliedIndex: number): Buffer | undefined {
    return this.#entries.get(appliedIndex)?.encoded
  }
}
