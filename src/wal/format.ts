/**
 * On-disk entry framing (little-endian):
 *
 *   index u64 | epoch u64 | type u8 | length u32 | payload[length] | crc32 u32
 *
 * The CRC-32 (zlib polynomial) covers the 21-byte header and the payload.
 * Indexes and epochs are JS numbers, so both are bounded by 2^53 − 1.
 */
import { crc32 } from 'node:zlib'
import { invariant } from '../domain/index.ts'

export const entryHeaderBytes = 21
export const entryTrailerBytes = 4
export const entryOverheadBytes = entryHeaderBytes + entryTrailerBytes
export const indexMax = Number.MAX_SAFE_INTEGER
export const typeMax = 0xff
export const payloadBytesMaxFormat = 0xffff_ffff

const twoPow32 = 0x1_0000_0000
const highWordSafeMax = 0x1f_ffff // high 32 bits of Number.MAX_SAFE_INTEGER

export const segmentSuffix = '.wal'
const segmentNamePattern = /^(\d{20})\.wal$/

export function segmentFileName(indexFirst: number): string {
  invariant(Number.isSafeInteger(indexFirst) && indexFirst >= 1, `segment first index ${indexFirst} out of range`)
  return `${String(indexFirst).padStart(20, '0')}${segmentSuffix}`
}

/** The first index encoded in a segment file name, or undefined for other files. */
export function parseSegmentFileName(name: string): number | undefined {
  const match = segmentNamePattern.exec(name)
  if (match === null) return undefined
  const value = Number(match[1])
  if (!Number.isSafeInteger(value) || value < 1) return undefined
  return value
}

export function entryBytes(payloadBytes: number): number {
  return entryOverheadBytes + payloadBytes
}

function writeU64(target: Buffer, offset: number, value: number): void {
  target.writeUInt32LE(value % twoPow32, offset)
  target.writeUInt32LE(Math.floor(value / twoPow32), offset + 4)
}

/** undefined when the stored value does not fit a safe integer. */
function readU64(source: Buffer, offset: number): number | undefined {
  const low = source.readUInt32LE(offset)
  const high = source.readUInt32LE(offset + 4)
  if (high > highWordSafeMax) return undefined
  return high * twoPow32 + low
}

/** Encodes one entry at `offset`; returns the bytes written. The caller checked the bounds. */
export function encodeEntry(
  target: Buffer,
  offset: number,
  entry: { index: number; epoch: number; type: number; payload: Uint8Array },
): number {
  const length = entry.payload.byteLength
  const end = offset + entryOverheadBytes + length
  invariant(end <= target.byteLength, 'entry does not fit the target buffer')
  writeU64(target, offset, entry.index)
  writeU64(target, offset + 8, entry.epoch)
  target[offset + 16] = entry.type
  target.writeUInt32LE(length, offset + 17)
  target.set(entry.payload, offset + entryHeaderBytes)
  const checksum = crc32(target.subarray(offset, offset + entryHeaderBytes + length))
  target.writeUInt32LE(checksum, offset + entryHeaderBytes + length)
  return entryOverheadBytes + length
}

export interface DecodedHeader {
  index: number
  epoch: number
  type: number
  payloadBytes: number
}

export type DecodeResult =
  | { kind: 'entry'; header: DecodedHeader; bytes: number }
  /** fewer bytes remain than the header, or than the length the header declares */
  | { kind: 'incomplete'; declaredBytes: number | undefined }
  /** complete by its declared length, but the CRC or a field is wrong */
  | { kind: 'invalid'; bytes: number; what: string }

/** Decodes the entry starting at `offset`, looking at bytes in [offset, end). */
export function decodeEntry(source: Buffer, offset: number, end: number): DecodeResult {
  invariant(offset >= 0 && offset <= end && end <= source.byteLength, 'decode window out of range')
  if (end - offset < entryHeaderBytes) return { kind: 'incomplete', declaredBytes: undefined }
  const payloadBytes = source.readUInt32LE(offset + 17)
  const bytes = entryOverheadBytes + payloadBytes
  if (end - offset < bytes) return { kind: 'incomplete', declaredBytes: bytes }
  const checksumStored = source.readUInt32LE(offset + entryHeaderBytes + payloadBytes)
  const checksum = crc32(source.subarray(offset, offset + entryHeaderBytes + payloadBytes))
  if (checksum !== checksumStored) return { kind: 'invalid', bytes, what: 'CRC mismatch' }
  const index = readU64(source, offset)
  const epoch = readU64(source, offset + 8)
  if (index === undefined || epoch === undefined) return { kind: 'invalid', bytes, what: 'index or epoch beyond 2^53' }
  const type = source[offset + 16]
  invariant(type !== undefined, 'type byte in range')
  return { kind: 'entry', header: { index, epoch, type, payloadBytes }, bytes }
}

/**
 * Whether some complete, CRC-valid entry with an index in [indexLow, indexHigh]
 * starts anywhere in (from, end). Used by recovery to tell a torn tail (nothing
 * valid follows the damage) from damage in front of acknowledged entries.
 */
export function findValidEntryAfter(source: Buffer, from: number, end: number, indexLow: number, indexHigh: number): number | undefined {
  for (let offset = from + 1; offset + entryOverheadBytes <= end; offset += 1) {
    const index = readU64(source, offset)
    if (index === undefined || index < indexLow || index > indexHigh) continue
    const decoded = decodeEntry(source, offset, end)
    if (decoded.kind === 'entry') return offset
  }
  return undefined
}
