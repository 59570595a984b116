/** Segment scanning (recovery) and ranged reading of one segment file. */
import type { FileHandle } from 'node:fs/promises'
import { invariant } from '../domain/index.ts'
import { corruption } from './errors.ts'
import { decodeEntry, entryHeaderBytes, entryOverheadBytes, findValidEntryAfter, type DecodedHeader } from './format.ts'

/** Every `offsetStride`-th entry of a segment has its byte offset remembered. */
export const offsetStride = 64
const readChunkBytes = 1 << 20

export interface SegmentScan {
  indexLast: number // indexFirst − 1 when the segment holds no valid entry
  epochLast: number | undefined
  bytesValid: number
  bytesTorn: number
  /** zero bytes after the last valid entry, up to the end of the file: a preallocated (never written) region */
  bytesZero: number
  offsets: number[]
}

const zeros = Buffer.alloc(64 * 1024)

/** Whether image[from, end) holds only zero bytes. */
export function isZeroFilled(image: Buffer, from: number, end: number): boolean {
  for (let at = from; at < end; at += zeros.byteLength) {
    const bytes = Math.min(zeros.byteLength, end - at)
    if (!image.subarray(at, at + bytes).equals(zeros.subarray(0, bytes))) return false
  }
  return true
}

/**
 * Validates a whole segment image. Its entries end at the first offset that
 * does not start a valid entry. When every byte from there to the end of the
 * file is zero, that is the segment's end (a preallocated region never
 * written, in any segment: a gap before the next segment is caught by the
 * caller's contiguity check). Other damage is tolerated only at the very end
 * of the last segment, and only when no valid entry follows it (a crash
 * mid-write); anything else throws a CORRUPTION WalError naming the file and
 * offset.
 */
export function scanSegment(options: {
  image: Buffer
  file: string
  indexFirst: number
  isLast: boolean
  epochBefore: number
}): SegmentScan {
  const { image, file, indexFirst, isLast } = options
  const offsets: number[] = []
  let offset = 0
  let indexExpected = indexFirst
  let epochLast = options.epochBefore
  let epochSeen: number | undefined
  while (offset < image.byteLength) {
    const decoded = decodeEntry(image, offset, image.byteLength)
    if (decoded.kind === 'entry') {
      const { index, epoch } = decoded.header
      if (index !== indexExpected) throw corruption(file, offset, `entry index ${index}, expected ${indexExpected}`)
      if (epoch < epochLast) throw corruption(file, offset, `entry ${index} has epoch ${epoch} below the previous epoch ${epochLast}`)
      if ((index - indexFirst) % offsetStride === 0) offsets.push(offset)
      epochLast = epoch
      epochSeen = epoch
      indexExpected += 1
      offset += decoded.bytes
      continue
    }
    // An entry's index is ≥ 1, so an entry never starts with eight zero bytes: zeros are never data.
    if (isZeroFilled(image, offset, image.byteLength)) {
      return { indexLast: indexExpected - 1, epochLast: epochSeen, bytesValid: offset, bytesTorn: 0, bytesZero: image.byteLength - offset, offsets }
    }
    const what = decoded.kind === 'incomplete' ? 'incomplete entry' : decoded.what
    if (!isLast) throw corruption(file, offset, `${what} in a segment that is not the last`)
    const indexHigh = indexExpected + Math.ceil((image.byteLength - offset) / entryOverheadBytes)
    const after = findValidEntryAfter(image, offset, image.byteLength, indexExpected, indexHigh)
    if (after !== undefined) throw corruption(file, offset, `${what} followed by a valid entry at offset ${after}`)
    return { indexLast: indexExpected - 1, epochLast: epochSeen, bytesValid: offset, bytesTorn: image.byteLength - offset, bytesZero: 0, offsets }
  }
  return { indexLast: indexExpected - 1, epochLast: epochSeen, bytesValid: offset, bytesTorn: 0, bytesZero: 0, offsets }
}

export interface EntryView {
  header: DecodedHeader
  payload: Buffer // a view valid only until the iterator advances
  offset: number
  offsetEnd: number
}

/**
 * Reads the entries of one segment file in [offsetStart, offsetEnd), checking
 * CRCs and index contiguity from `indexStart`. Yields views into a reused
 * buffer: copy what must outlive the step.
 */
export async function* readEntries(options: {
  handle: FileHandle
  file: string
  offsetStart: number
  offsetEnd: number
  indexStart: number
}): AsyncGenerator<EntryView> {
  const { handle, file, offsetEnd } = options
  invariant(options.offsetStart <= offsetEnd, 'read window is inverted')
  let buffer = Buffer.allocUnsafe(Math.min(readChunkBytes, Math.max(offsetEnd - options.offsetStart, entryOverheadBytes)))
  let bufferFileOffset = options.offsetStart // file offset of buffer[0]
  let bufferBytes = 0
  let cursor = 0
  let indexExpected = options.indexStart
  while (bufferFileOffset + cursor < offsetEnd) {
    const decoded = decodeEntry(buffer, cursor, bufferBytes)
    if (decoded.kind === 'incomplete') {
      const fileOffset = bufferFileOffset + cursor
      const needed = decoded.declaredBytes ?? entryOverheadBytes
      if (fileOffset + needed > offsetEnd) throw corruption(file, fileOffset, 'entry runs past the durable end of the segment')
      // Move the partial entry to the front (growing the buffer for a large entry) and read more.
      const remaining = bufferBytes - cursor
      const size = Math.max(buffer.byteLength, needed)
      const next = size === buffer.byteLength ? buffer : Buffer.allocUnsafe(size)
      buffer.copy(next, 0, cursor, bufferBytes)
      buffer = next
      bufferFileOffset = fileOffset
      bufferBytes = remaining
      cursor = 0
      const want = Math.min(buffer.byteLength - bufferBytes, offsetEnd - (bufferFileOffset + bufferBytes))
      const { bytesRead } = await handle.read(buffer, bufferBytes, want, bufferFileOffset + bufferBytes)
      if (bytesRead === 0) throw corruption(file, bufferFileOffset + bufferBytes, 'segment shorter than its durable size')
      bufferBytes += bytesRead
      continue
    }
    const fileOffset = bufferFileOffset + cursor
    if (decoded.kind === 'invalid') throw corruption(file, fileOffset, decoded.what)
    if (decoded.header.index !== indexExpected) {
      throw corruption(file, fileOffset, `entry index ${decoded.header.index}, expected ${indexExpected}`)
    }
    const payloadStart = cursor + entryHeaderBytes
    yield {
      header: decoded.header,
      payload: buffer.subarray(payloadStart, payloadStart + decoded.header.payloadBytes),
      offset: fileOffset,
      offsetEnd: fileOffset + decoded.bytes,
    }
    indexExpected += 1
    cursor += decoded.bytes
  }
}
