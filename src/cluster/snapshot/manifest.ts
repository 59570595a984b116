/**
 * The manifest of a trusted snapshot (docs/cluster.md, "Snapshots and
 * rebuild"): what the image holds (files, sizes, SHA-256) and which state it
 * is (applied index, epoch, cluster id, state hash). Its own checksum covers
 * one canonical encoding of every field, so a manifest that changed in one
 * byte is refused before any of its files is trusted. Pure: no I/O.
 */
import { createHash } from 'node:crypto'
import { invariant } from '../../domain/index.ts'

export const snapshotFormatVersion = 1
/** A manifest never lists more files than this (a store of 64 GiB in 64 MiB files). */
export const snapshotFilesMax = 1024
/** Bound on an encoded manifest: it travels in one peer frame. */
export const manifestBytesMax = 256 * 1024

export interface SnapshotFile {
  /** `rows-NNNNNN.bin`: a bare name inside the snapshot directory. */
  readonly name: string
  readonly bytes: number
  /** SHA-256 of the whole file, lowercase hex. */
  readonly sha256: string
}

export interface SnapshotManifest {
  readonly format: number
  readonly clusterId: string
  /** The store's applied index in the image: the snapshot's LSN. */
  readonly appliedIndex: number
  /** The epoch the primary had adopted when the image was read. */
  readonly epoch: number
  /** The rolling state hash at `appliedIndex` (docs/cluster.md, "State hash"). */
  readonly stateHash: { readonly index: number; readonly hash: string }
  readonly rows: number
  readonly files: readonly SnapshotFile[]
}

export type ManifestRefusal = { readonly ok: false; readonly reason: 'malformed' | 'checksum_mismatch' | 'unsupported_format'; readonly message: string }
export type ManifestDecoding = { readonly ok: true; readonly manifest: SnapshotManifest } | ManifestRefusal

const fileNamePattern = /^rows-\d{6}\.bin$/
const sha256Pattern = /^[0-9a-f]{64}$/

/** The one canonical form of a manifest's fields: fixed key order, no whitespace. */
function canonicalBody(manifest: SnapshotManifest): string {
  return JSON.stringify({
    format: manifest.format,
    clusterId: manifest.clusterId,
    appliedIndex: manifest.appliedIndex,
    epoch: manifest.epoch,
    stateHash: { index: manifest.stateHash.index, hash: manifest.stateHash.hash },
    rows: manifest.rows,
    files: manifest.files.map((file) => ({ name: file.name, bytes: file.bytes, sha256: file.sha256 })),
  })
}

function checksumOf(body: string): string {
  return createHash('sha256').update('tally-snapshot-manifest\n').update(body).digest('hex')
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

/** Throws `InvariantViolation` for a manifest this node would never write. */
export function assertManifest(manifest: SnapshotManifest): void {
  invariant(manifest.format === snapshotFormatVersion, () => `snapshot format ${manifest.format}`)
  invariant(manifest.clusterId.length > 0 && manifest.clusterId.length <= 256, 'a snapshot names its cluster')
  invariant(isCount(manifest.appliedIndex), 'a snapshot applied index is a count')
  invariant(isCount(manifest.epoch), 'a snapshot epoch is a count')
  invariant(manifest.stateHash.index === manifest.appliedIndex, () => `state hash at ${manifest.stateHash.index}, image at ${manifest.appliedIndex}`)
  invariant(sha256Pattern.test(manifest.stateHash.hash), 'a state hash is 64 hex digits')
  invariant(isCount(manifest.rows), 'a row count is a count')
  invariant(manifest.files.length >= 1 && manifest.files.length <= snapshotFilesMax, () => `${manifest.files.length} snapshot files`)
  const names = new Set<string>()
  for (const file of manifest.files) {
    invariant(fileNamePattern.test(file.name), () => `snapshot file name ${file.name.slice(0, 64)}`)
    invariant(!names.has(file.name), () => `snapshot file ${file.name} listed twice`)
    names.add(file.name)
    invariant(isCount(file.bytes), 'a file size is a count')
    invariant(sha256Pattern.test(file.sha256), 'a file digest is 64 hex digits')
  }
}

/** `{"manifest": …, "checksum": …}`, UTF-8. */
export function encodeManifest(manifest: SnapshotManifest): Buffer {
  assertManifest(manifest)
  const body = canonicalBody(manifest)
  const encoded = Buffer.from(`{"manifest":${body},"checksum":"${checksumOf(body)}"}`, 'utf8')
  invariant(encoded.byteLength <= manifestBytesMax, () => `manifest of ${encoded.byteLength} bytes`)
  return encoded
}

/**
 * Parses and checks a manifest from outside (disk or network): its checksum
 * first, then every field's shape. Never throws on bad input.
 */
export function decodeManifest(bytes: Uint8Array): ManifestDecoding {
  if (bytes.byteLength > manifestBytesMax) return { ok: false, reason: 'malformed', message: `manifest of ${bytes.byteLength} bytes` }
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    return { ok: false, reason: 'malformed', message: 'manifest is not JSON' }
  }
  if (typeof parsed !== 'object' || parsed === null || !('manifest' in parsed) || !('checksum' in parsed)) {
    return { ok: false, reason: 'malformed', message: 'manifest lacks its body or checksum' }
  }
  const { manifest, checksum } = parsed as { manifest: unknown; checksum: unknown }
  if (typeof manifest !== 'object' || manifest === null || typeof checksum !== 'string') return { ok: false, reason: 'malformed', message: 'manifest body or checksum has the wrong type' }
  const candidate = manifest as SnapshotManifest
  if (candidate.format !== snapshotFormatVersion) return { ok: false, reason: 'unsupported_format', message: `snapshot format ${String(candidate.format)}, this build reads ${snapshotFormatVersion}` }
  let body: string
  try {
    if (!Array.isArray(candidate.files) || typeof candidate.stateHash !== 'object' || candidate.stateHash === null) throw new Error('shape')
    body = canonicalBody(candidate)
  } catch {
    return { ok: false, reason: 'malformed', message: 'manifest fields have the wrong shape' }
  }
  if (checksumOf(body) !== checksum) return { ok: false, reason: 'checksum_mismatch', message: 'the manifest checksum does not match its fields' }
  const decoded = JSON.parse(body) as SnapshotManifest
  try {
    assertManifest(decoded)
  } catch (error) {
    return { ok: false, reason: 'malformed', message: error instanceof Error ? error.message : 'manifest fields are out of range' }
  }
  return { ok: true, manifest: decoded }
}

export function snapshotFileName(ordinal: number): string {
  invariant(Number.isSafeInteger(ordinal) && ordinal >= 0 && ordinal < snapshotFilesMax, () => `snapshot file ordinal ${ordinal}`)
  return `rows-${String(ordinal).padStart(6, '0')}.bin`
}

/** Total bytes of the image's files. */
export function manifestBytes(manifest: SnapshotManifest): number {
  return manifest.files.reduce((sum, file) => sum + file.bytes, 0)
}
