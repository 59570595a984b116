/**
 * Base transfer of a trusted snapshot, replica side (docs/cluster.md,
 * "Snapshots and rebuild"). The replica pulls: it asks the primary for
 * chunks of each file of the manifest, at most `inFlightBytesMax` bytes
 * requested and not yet written, and writes them strictly in file order, so
 * a staging file's length is always the prefix received so far. Each chunk
 * carries a CRC-32 that is checked before a byte is written; each finished
 * file is fsynced and its SHA-256 checked against the manifest.
 *
 * Resumable: the staging directory keeps the manifest and the files. A new
 * `receiveSnapshot` over the same manifest (after a dropped connection or a
 * restart) keeps every file that already verifies and restarts a partial one
 * from its last whole chunk; a partial file whose bytes did not survive
 * intact fails its SHA-256 once complete and is fetched again from zero.
 */
import * as fs from 'node:fs/promises'
import path from 'node:path'
import { crc32 } from 'node:zlib'
import { TallyError, invariant } from '../../domain/index.ts'
import { verifyFile } from './image.ts'
import { decodeManifest, manifestBytes, type SnapshotFile, type SnapshotManifest } from './manifest.ts'
import { fsyncPath } from './fsync.ts'

export const chunkBytesDefault = 1024 * 1024
export const inFlightBytesMaxDefault = 8 * 1024 * 1024
export const chunkRetriesMaxDefault = 3
const manifestName = 'manifest.json'

export interface SnapshotChunkRequest {
  readonly file: string
  readonly offset: number
  readonly bytes: number
}

export interface SnapshotChunk {
  readonly file: string
  readonly offset: number
  readonly data: Uint8Array
  /** CRC-32 of `data`, computed by the sender. */
  readonly crc32: number
}

export interface TransferProgress {
  readonly appliedIndex: number
  readonly bytesTotal: number
  /** Bytes written after their chunk's CRC matched (files verified, plus the current file's prefix). */
  readonly bytesReceived: number
  readonly filesTotal: number
  readonly filesVerified: number
  /** Bytes found on disk from an earlier attempt and kept. */
  readonly bytesResumed: number
  readonly chunksRefetched: number
}

export type SnapshotTransferFailure = 'manifest_invalid' | 'wrong_cluster' | 'chunk_corrupt' | 'chunk_mismatch' | 'file_corrupt' | 'source_failed'

export class SnapshotTransferError extends TallyError {
  constructor(
    readonly reason: SnapshotTransferFailure,
    message: string,
  ) {
    super({ code: 'INTERNAL', kind: 'unavailable', message: `snapshot transfer: ${message}`, details: { reason } })
  }
}

export interface ReceiveSnapshotOptions {
  /** Staging directory of this transfer (`<data>/rebuild`); created when missing. */
  readonly directory: string
  /** The manifest's bytes as the primary sent them. */
  readonly manifest: Uint8Array
  /** The cluster this node belongs to: an image of another is refused. */
  readonly clusterId: string
  readonly fetch: (request: SnapshotChunkRequest) => Promise<SnapshotChunk>
  readonly chunkBytes?: number
  readonly inFlightBytesMax?: number
  readonly chunkRetriesMax?: number
  readonly onProgress?: (progress: TransferProgress) => void
  /** Test hook (mutation checks): false skips the per-chunk CRC check. */
  readonly verifyChunks?: boolean
}

/** Prepares the staging directory for `manifestBytes`: an earlier transfer of another image there is discarded. */
async function prepareStaging(directory: string, manifest: Uint8Array): Promise<void> {
  const location = path.join(directory, manifestName)
  const held = await fs.readFile(location).catch(() => undefined)
  if (held !== undefined && Buffer.compare(held, Buffer.from(manifest)) === 0) return
  await fs.rm(directory, { recursive: true, force: true })
  await fs.mkdir(directory, { recursive: true })
  await fs.writeFile(location, manifest)
  await fsyncPath(location)
  await fsyncPath(directory)
}

/**
 * Receives every file of the manifest into `directory`; resolves with the
 * verified manifest. Rejects with `SnapshotTransferError` (the staging
 * directory keeps what was verified, for the next attempt).
 */
export async function receiveSnapshot(options: ReceiveSnapshotOptions): Promise<SnapshotManifest> {
  const decoded = decodeManifest(options.manifest)
  if (!decoded.ok) throw new SnapshotTransferError('manifest_invalid', `${decoded.reason}: ${decoded.message}`)
  const manifest = decoded.manifest
  if (manifest.clusterId !== options.clusterId) throw new SnapshotTransferError('wrong_cluster', `image of cluster ${manifest.clusterId}, this node is in ${options.clusterId}`)
  const chunkBytes = options.chunkBytes ?? chunkBytesDefault
  const inFlightBytesMax = options.inFlightBytesMax ?? inFlightBytesMaxDefault
  invariant(Number.isSafeInteger(chunkBytes) && chunkBytes >= 1, 'chunk size is a positive integer')
  invariant(inFlightBytesMax >= chunkBytes, 'at least one chunk may be in flight')
  await prepareStaging(options.directory, options.manifest)
  const state = {
    appliedIndex: manifest.appliedIndex,
    bytesTotal: manifestBytes(manifest),
    bytesReceived: 0,
    filesTotal: manifest.files.length,
    filesVerified: 0,
    bytesResumed: 0,
    chunksRefetched: 0,
  }
  const report = (): void => options.onProgress?.({ ...state })
  for (const file of manifest.files) {
    const location = path.join(options.directory, file.name)
    if ((await verifyFile(location, file)) === undefined) {
      state.bytesResumed += file.bytes
      state.bytesReceived += file.bytes
      state.filesVerified += 1
      report()
      continue
    }
    const held = await fs.stat(location).then((stats) => stats.size, () => 0)
    const resumeAt = Math.min(Math.floor(held / chunkBytes) * chunkBytes, file.bytes)
    state.bytesResumed += resumeAt
    state.bytesReceived += resumeAt
    await receiveFile({ options, file, location, from: resumeAt, chunkBytes, inFlightBytesMax, state, report })
    if ((await verifyFile(location, file)) !== undefined) {
      // What an earlier attempt left did not survive intact (a crash before its fsync): fetch the whole file once more.
      state.bytesReceived -= file.bytes
      await receiveFile({ options, file, location, from: 0, chunkBytes, inFlightBytesMax, state, report })
      const verdict = await verifyFile(location, file)
      if (verdict !== undefined) throw new SnapshotTransferError('file_corrupt', `${file.name} does not match the manifest after a full fetch (${verdict})`)
    }
    state.filesVerified += 1
    report()
  }
  await fsyncPath(options.directory)
  return manifest
}

interface FileReception {
  readonly options: ReceiveSnapshotOptions
  readonly file: SnapshotFile
  readonly location: string
  readonly from: number
  readonly chunkBytes: number
  readonly inFlightBytesMax: number
  readonly state: { bytesReceived: number; chunksRefetched: number }
  readonly report: () => void
}

/** Fetches [from, end) of one file with a bounded window, writing chunks in order; fsyncs the file. */
async function receiveFile(reception: FileReception): Promise<void> {
  const { file, from, chunkBytes } = reception
  const handle = await fs.open(reception.location, from === 0 ? 'w' : 'r+')
  try {
    await handle.truncate(from)
    const window = Math.max(1, Math.floor(reception.inFlightBytesMax / chunkBytes))
    const pending: Promise<SnapshotChunk>[] = []
    let nextRequest = from
    let nextWrite = from
    const requestMore = (): void => {
      while (pending.length < window && nextRequest < file.bytes) {
        const request = { file: file.name, offset: nextRequest, bytes: Math.min(chunkBytes, file.bytes - nextRequest) }
        const fetched = fetchVerified(reception, request)
        // Rejections surface when the chunk's turn to be written comes; do not let them go unhandled meanwhile.
        fetched.catch(() => {})
        pending.push(fetched)
        nextRequest += request.bytes
      }
    }
    requestMore()
    while (nextWrite < file.bytes) {
      const chunk = await (pending.shift() as Promise<SnapshotChunk>)
      invariant(chunk.offset === nextWrite, 'chunks are written in file order')
      await handle.write(chunk.data, 0, chunk.data.byteLength, chunk.offset)
      nextWrite += chunk.data.byteLength
      reception.state.bytesReceived += chunk.data.byteLength
      reception.report()
      requestMore()
    }
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** One chunk whose offset, size and CRC-32 match what was asked; a corrupt one is asked again, a few times. */
async function fetchVerified(reception: FileReception, request: SnapshotChunkRequest): Promise<SnapshotChunk> {
  const retriesMax = reception.options.chunkRetriesMax ?? chunkRetriesMaxDefault
  for (let attempt = 0; ; attempt++) {
    let chunk: SnapshotChunk
    try {
      chunk = await reception.options.fetch(request)
    } catch (error) {
      throw new SnapshotTransferError('source_failed', `${request.file} at ${request.offset}: ${error instanceof Error ? error.message : String(error)}`)
    }
    if (chunk.file !== request.file || chunk.offset !== request.offset || chunk.data.byteLength !== request.bytes) {
      throw new SnapshotTransferError('chunk_mismatch', `asked ${request.file} at ${request.offset} (${request.bytes} bytes), got ${chunk.file.slice(0, 64)} at ${chunk.offset} (${chunk.data.byteLength} bytes)`)
    }
    if ((reception.options.verifyChunks ?? true) === false || crc32(chunk.data) === chunk.crc32) return chunk
    if (attempt >= retriesMax) throw new SnapshotTransferError('chunk_corrupt', `${request.file} at ${request.offset}: CRC mismatch ${attempt + 1} times`)
    reception.state.chunksRefetched += 1
  }
}

/** The sender's half: a chunk with its CRC-32. */
export function chunkOf(request: SnapshotChunkRequest, data: Buffer): SnapshotChunk {
  return { file: request.file, offset: request.offset, data, crc32: crc32(data) }
}
