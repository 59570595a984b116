/**
 * Peer frames (little-endian), the unit of the replication transport:
 *
 *   length u32 | version u8 | type u8 | epoch u64 | payload[length − 14] | crc32 u32
 *
 * `length` counts every byte after itself (version … crc). The CRC-32 (zlib
 * polynomial, as the WAL's) covers everything before it, the length field
 * included, so a corrupted length is caught too (the frame it delimits no
 * longer checks). Every frame carries its sender's epoch: the receiver fences
 * before it looks at the payload.
 */
import { crc32 } from 'node:zlib'
import { invariant } from '../../domain/index.ts'
import { PeerError } from './errors.ts'

export const frameVersion = 1
/** length field + version + type + epoch */
export const frameHeaderBytes = 4 + 1 + 1 + 8
export const frameTrailerBytes = 4
export const frameOverheadBytes = frameHeaderBytes + frameTrailerBytes
/** Default bound on one whole frame: a batch of entries, at least one WAL record of up to 16 MiB. */
export const frameBytesMaxDefault = 17 * 1024 * 1024

const twoPow32 = 0x1_0000_0000
const highWordSafeMax = 0x1f_ffff

export const frameTypes = {
  hello: 1,
  helloReply: 2,
  truncate: 3,
  truncated: 4,
  entries: 5,
  ack: 6,
  heartbeat: 7,
  error: 8,
  snapshotOffer: 9,
  chunkRequest: 10,
  chunk: 11,
  snapshotStaged: 12,
} as const

export type FrameTypeName = keyof typeof frameTypes
export type FrameType = (typeof frameTypes)[FrameTypeName]
const knownTypes: ReadonlySet<number> = new Set(Object.values(frameTypes))

export interface Frame {
  readonly type: FrameType
  readonly epoch: number
  readonly payload: Buffer
}

export function writeU64(target: Buffer, offset: number, value: number): void {
  invariant(Number.isSafeInteger(value) && value >= 0, () => `u64 field ${value} is not a non-negative safe integer`)
  target.writeUInt32LE(value % twoPow32, offset)
  target.writeUInt32LE(Math.floor(value / twoPow32), offset + 4)
}

/** undefined when the value does not fit a safe integer. */
export function readU64(source: Buffer, offset: number): number | undefined {
  const low = source.readUInt32LE(offset)
  const high = source.readUInt32LE(offset + 4)
  if (high > highWordSafeMax) return undefined
  return high * twoPow32 + low
}

/** One frame's bytes. The caller bounds the payload; the encoder asserts it fits the format. */
export function encodeFrame(frame: { type: FrameType; epoch: number; payload: Uint8Array }): Buffer {
  invariant(knownTypes.has(frame.type), () => `frame type ${frame.type} is unknown`)
  const bytes = frameOverheadBytes + frame.payload.byteLength
  invariant(bytes - 4 <= 0xffff_ffff, 'frame length fits u32')
  const buffer = Buffer.allocUnsafe(bytes)
  buffer.writeUInt32LE(bytes - 4, 0)
  buffer.writeUInt8(frameVersion, 4)
  buffer.writeUInt8(frame.type, 5)
  writeU64(buffer, 6, frame.epoch)
  buffer.set(frame.payload, frameHeaderBytes)
  buffer.writeUInt32LE(crc32(buffer.subarray(0, bytes - frameTrailerBytes)), bytes - frameTrailerBytes)
  return buffer
}

/**
 * Turns a byte stream cut anywhere into frames. Holds at most one frame's
 * bytes (bounded by `frameBytesMax`, refused as soon as its length is read).
 * After a decode error the decoder is broken: the connection must close
 * (there is no resynchronisation on a stream that lied once).
 */
export class FrameDecoder {
  readonly #frameBytesMax: number
  #chunks: Buffer[] = []
  #bytes = 0
  #failure: PeerError | undefined

  constructor(options: { frameBytesMax?: number } = {}) {
    const frameBytesMax = options.frameBytesMax ?? frameBytesMaxDefault
    invariant(Number.isSafeInteger(frameBytesMax) && frameBytesMax >= frameOverheadBytes, 'frameBytesMax holds at least an empty frame')
    this.#frameBytesMax = frameBytesMax
  }

  /** Bytes received but not yet part of a returned frame. */
  get bufferedBytes(): number {
    return this.#bytes
  }

  /** Every frame completed by `chunk`, in order. Throws a PeerError on the first bad frame. */
  push(chunk: Uint8Array): Frame[] {
    if (this.#failure !== undefined) throw this.#failure
    if (chunk.byteLength > 0) {
      this.#chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
      this.#bytes += chunk.byteLength
    }
    const frames: Frame[] = []
    try {
      for (;;) {
        const frame = this.#next()
        if (frame === undefined) break
        frames.push(frame)
      }
    } catch (error) {
      this.#failure = error instanceof PeerError ? error : new PeerError({ reason: 'MALFORMED', message: String(error), cause: error })
      this.#chunks = []
      this.#bytes = 0
      throw this.#failure
    }
    return frames
  }

  /** The stream ended: anything buffered is a frame cut short. */
  finish(): void {
    if (this.#failure !== undefined) throw this.#failure
    if (this.#bytes > 0) throw new PeerError({ reason: 'FRAME_TRUNCATED', message: `stream ended ${this.#bytes} bytes into a frame` })
  }

  #next(): Frame | undefined {
    if (this.#bytes < 4) return undefined
    const length = this.#take(4, false).readUInt32LE(0)
    const bytes = 4 + length
    if (bytes > this.#frameBytesMax) {
      throw new PeerError({ reason: 'FRAME_TOO_LARGE', message: `frame of ${bytes} bytes exceeds the ${this.#frameBytesMax}-byte bound` })
    }
    if (bytes < frameOverheadBytes) {
      throw new PeerError({ reason: 'FRAME_TOO_SMALL', message: `frame of ${bytes} bytes is shorter than its ${frameOverheadBytes}-byte envelope` })
    }
    if (this.#bytes < bytes) return undefined
    return decodeWhole(this.#take(bytes, true))
  }

  /** The first `bytes` buffered bytes as one buffer; consumed when `consume`. */
  #take(bytes: number, consume: boolean): Buffer {
    const first = this.#chunks[0]
    invariant(first !== undefined && this.#bytes >= bytes, 'enough bytes buffered')
    if (first.byteLength < bytes) {
      // Merge just enough leading chunks to hold `bytes`.
      let merged = 0
      let count = 0
      while (merged < bytes) {
        const chunk = this.#chunks[count]
        invariant(chunk !== undefined, 'chunk present')
        merged += chunk.byteLength
        count += 1
      }
      this.#chunks.splice(0, count, Buffer.concat(this.#chunks.slice(0, count), merged))
    }
    const head = this.#chunks[0]
    invariant(head !== undefined && head.byteLength >= bytes, 'merged chunk holds the bytes')
    const taken = head.subarray(0, bytes)
    if (consume) {
      if (head.byteLength === bytes) this.#chunks.shift()
      else this.#chunks[0] = head.subarray(bytes)
      this.#bytes -= bytes
    }
    return taken
  }
}

/** Checks one complete frame (length already bounded): CRC first, so a damaged version or type reads as damage. */
export function decodeWhole(buffer: Buffer): Frame {
  const bytes = buffer.byteLength
  invariant(bytes >= frameOverheadBytes && buffer.readUInt32LE(0) === bytes - 4, 'a whole frame')
  const stored = buffer.readUInt32LE(bytes - frameTrailerBytes)
  if (crc32(buffer.subarray(0, bytes - frameTrailerBytes)) !== stored) {
    throw new PeerError({ reason: 'FRAME_CRC', message: `frame of ${bytes} bytes fails its CRC-32` })
  }
  const version = buffer.readUInt8(4)
  if (version !== frameVersion) throw new PeerError({ reason: 'FRAME_VERSION', message: `frame version ${version}, this node speaks ${frameVersion}` })
  const type = buffer.readUInt8(5)
  if (!knownTypes.has(type)) throw new PeerError({ reason: 'FRAME_TYPE', message: `unknown frame type ${type}` })
  const epoch = readU64(buffer, 6)
  if (epoch === undefined) throw new PeerError({ reason: 'MALFORMED', message: 'frame epoch beyond 2^53 − 1' })
  // A copy: the frame outlives the receive buffer it came in.
  const payload = Buffer.from(buffer.subarray(frameHeaderBytes, bytes - frameTrailerBytes))
  return { type: type as FrameType, epoch, payload }
}
