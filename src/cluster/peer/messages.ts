/**
 * The payloads of peer frames, one message per frame type. Binary, little-
 * endian, every field bounded; a payload that does not decode exactly (short,
 * trailing bytes, a value beyond its range) is `MALFORMED`.
 */
import { invariant } from '../../domain/index.ts'
import type { WalRecord } from '../../wal/index.ts'
import { PeerError } from './errors.ts'
import { frameTypes, readU64, writeU64, type FrameType } from './frame.ts'

/** A run of consecutive log entries of one epoch, starting at `firstLsn` (epochs never decrease along a log). */
export interface EpochRun {
  readonly firstLsn: number
  readonly epoch: number
}

export type PeerMessage =
  /** primary → replica: opens a session at the frame's epoch. */
  | { readonly kind: 'hello'; readonly senderId: string; readonly sessionId: string; readonly committedLsn: number }
  /**
   * replica → primary: its log, for matching by (index, epoch). `runs` give
   * the epochs of the entries [runsFromLsn, durableLsn]; below `runsFromLsn`
   * the replica reports nothing (too far back, or at or below its safe floor).
   */
  | {
      readonly kind: 'hello_reply'
      readonly replicaId: string
      readonly headLsn: number
      readonly durableLsn: number
      readonly tailLsn: number
      readonly knownCommittedLsn: number
      readonly checkpointLsn: number
      /** The largest frame this replica accepts: the primary sizes its batches to fit. */
      readonly frameBytesMax: number
      readonly runsFromLsn: number
      readonly runs: readonly EpochRun[]
    }
  /** primary → replica: drop every entry above `toLsn` (the match point, or the committed LSN for an ahead replica). */
  | { readonly kind: 'truncate'; readonly toLsn: number }
  /** replica → primary: the truncation is durable; the replica's durable LSN now. */
  | { readonly kind: 'truncated'; readonly durableLsn: number }
  /** primary → replica: consecutive WAL entries with their own epochs, and the primary's committed LSN. */
  | { readonly kind: 'entries'; readonly committedLsn: number; readonly entries: readonly WalRecord[] }
  /** replica → primary: the highest LSN it has fsynced. */
  | { readonly kind: 'ack'; readonly durableLsn: number }
  /** primary → replica when idle: keeps the connection alive and carries the committed LSN. */
  | { readonly kind: 'heartbeat'; readonly committedLsn: number }
  /** primary → replica: rebuild from this trusted snapshot; the replica pulls its files (docs/cluster.md, "Snapshots and rebuild"). */
  | { readonly kind: 'snapshot_offer'; readonly manifest: Uint8Array }
  /** replica → primary: bytes [offset, offset + bytes) of one file of the offered image. */
  | { readonly kind: 'chunk_request'; readonly appliedIndex: number; readonly file: string; readonly offset: number; readonly bytes: number }
  /** primary → replica: the requested bytes with their CRC-32. */
  | { readonly kind: 'chunk'; readonly appliedIndex: number; readonly file: string; readonly offset: number; readonly crc32: number; readonly data: Uint8Array }
  /** replica → primary: every file of the image verified in its staging directory; it installs when its node reopens. */
  | { readonly kind: 'snapshot_staged'; readonly appliedIndex: number }
  /** either way, then close: why the sender refuses to go on. */
  | { readonly kind: 'error'; readonly reason: string; readonly message: string }

export type PeerMessageKind = PeerMessage['kind']

export const stringBytesMax = 1024
export const runsMax = 4096
/** bytes an entry adds to an entries payload besides its payload */
/** Bounds of the base transfer's messages: a manifest and one chunk each fit a frame. */
export const snapshotManifestBytesMax = 256 * 1024
export const snapshotChunkBytesMax = 4 * 1024 * 1024
export const shippedEntryOverheadBytes = 8 + 8 + 1 + 4

const typeOfKind: Record<PeerMessageKind, FrameType> = {
  hello: frameTypes.hello,
  hello_reply: frameTypes.helloReply,
  truncate: frameTypes.truncate,
  truncated: frameTypes.truncated,
  entries: frameTypes.entries,
  ack: frameTypes.ack,
  heartbeat: frameTypes.heartbeat,
  error: frameTypes.error,
  snapshot_offer: frameTypes.snapshotOffer,
  chunk_request: frameTypes.chunkRequest,
  chunk: frameTypes.chunk,
  snapshot_staged: frameTypes.snapshotStaged,
}

export function frameTypeOf(kind: PeerMessageKind): FrameType {
  return typeOfKind[kind]
}

// ------------------------------------------------------------------ writing

class Writer {
  readonly #parts: Buffer[] = []
  #bytes = 0

  u8(value: number): void {
    const buffer = Buffer.allocUnsafe(1)
    buffer.writeUInt8(value, 0)
    this.#push(buffer)
  }

  u32(value: number): void {
    const buffer = Buffer.allocUnsafe(4)
    buffer.writeUInt32LE(value, 0)
    this.#push(buffer)
  }

  u64(value: number): void {
    const buffer = Buffer.allocUnsafe(8)
    writeU64(buffer, 0, value)
    this.#push(buffer)
  }

  string(value: string): void {
    const bytes = Buffer.from(value, 'utf8')
    invariant(bytes.byteLength <= stringBytesMax, () => `string field of ${bytes.byteLength} bytes exceeds ${stringBytesMax}`)
    const length = Buffer.allocUnsafe(2)
    length.writeUInt16LE(bytes.byteLength, 0)
    this.#push(length)
    this.#push(bytes)
  }

  bytes(value: Uint8Array): void {
    this.u32(value.byteLength)
    this.#push(Buffer.from(value.buffer, value.byteOffset, value.byteLength))
  }

  finish(): Buffer {
    return Buffer.concat(this.#parts, this.#bytes)
  }

  #push(buffer: Buffer): void {
    this.#parts.push(buffer)
    this.#bytes += buffer.byteLength
  }
}

export function encodeMessage(message: PeerMessage): Buffer {
  const writer = new Writer()
  switch (message.kind) {
    case 'hello':
      writer.string(message.senderId)
      writer.string(message.sessionId)
      writer.u64(message.committedLsn)
      break
    case 'hello_reply':
      invariant(message.runs.length <= runsMax, () => `${message.runs.length} epoch runs exceed ${runsMax}`)
      writer.string(message.replicaId)
      writer.u64(message.headLsn)
      writer.u64(message.durableLsn)
      writer.u64(message.tailLsn)
      writer.u64(message.knownCommittedLsn)
      writer.u64(message.checkpointLsn)
      writer.u32(message.frameBytesMax)
      writer.u64(message.runsFromLsn)
      writer.u32(message.runs.length)
      for (const run of message.runs) {
        writer.u64(run.firstLsn)
        writer.u64(run.epoch)
      }
      break
    case 'truncate':
      writer.u64(message.toLsn)
      break
    case 'truncated':
      writer.u64(message.durableLsn)
      break
    case 'entries':
      writer.u64(message.committedLsn)
      writer.u32(message.entries.length)
      for (const entry of message.entries) {
        writer.u64(entry.index)
        writer.u64(entry.epoch)
        writer.u8(entry.type)
        writer.bytes(entry.payload)
      }
      break
    case 'ack':
      writer.u64(message.durableLsn)
      break
    case 'heartbeat':
      writer.u64(message.committedLsn)
      break
    case 'snapshot_offer':
      invariant(message.manifest.byteLength <= snapshotManifestBytesMax, 'a manifest fits its message')
      writer.bytes(message.manifest)
      break
    case 'chunk_request':
      invariant(message.bytes <= snapshotChunkBytesMax, 'a chunk fits its message')
      writer.u64(message.appliedIndex)
      writer.string(message.file)
      writer.u64(message.offset)
      writer.u32(message.bytes)
      break
    case 'chunk':
      invariant(message.data.byteLength <= snapshotChunkBytesMax, 'a chunk fits its message')
      writer.u64(message.appliedIndex)
      writer.string(message.file)
      writer.u64(message.offset)
      writer.u32(message.crc32)
      writer.bytes(message.data)
      break
    case 'snapshot_staged':
      writer.u64(message.appliedIndex)
      break
    case 'error':
      writer.string(message.reason.slice(0, 64))
      writer.string(truncateUtf8(message.message, stringBytesMax))
      break
    default: {
      const never: never = message
      throw new Error(`unknown message ${String(never)}`)
    }
  }
  return writer.finish()
}

function truncateUtf8(text: string, bytesMax: number): string {
  let cut = text.slice(0, bytesMax)
  while (Buffer.byteLength(cut, 'utf8') > bytesMax) cut = cut.slice(0, -1)
  return cut
}

// ------------------------------------------------------------------ reading

class Reader {
  #offset = 0
  constructor(readonly buffer: Buffer) {}

  #need(bytes: number, what: string): void {
    if (this.#offset + bytes > this.buffer.byteLength) throw malformed(`payload ends inside ${what}`)
  }

  u8(what: string): number {
    this.#need(1, what)
    const value = this.buffer.readUInt8(this.#offset)
    this.#offset += 1
    return value
  }

  u32(what: string): number {
    this.#need(4, what)
    const value = this.buffer.readUInt32LE(this.#offset)
    this.#offset += 4
    return value
  }

  u64(what: string): number {
    this.#need(8, what)
    const value = readU64(this.buffer, this.#offset)
    if (value === undefined) throw malformed(`${what} beyond 2^53 − 1`)
    this.#offset += 8
    return value
  }

  string(what: string): string {
    this.#need(2, what)
    const bytes = this.buffer.readUInt16LE(this.#offset)
    this.#offset += 2
    if (bytes > stringBytesMax) throw malformed(`${what} of ${bytes} bytes exceeds ${stringBytesMax}`)
    this.#need(bytes, what)
    const value = this.buffer.toString('utf8', this.#offset, this.#offset + bytes)
    this.#offset += bytes
    return value
  }

  bytes(what: string): Uint8Array {
    const length = this.u32(`${what} length`)
    this.#need(length, what)
    const value = new Uint8Array(this.buffer.subarray(this.#offset, this.#offset + length))
    this.#offset += length
    return value
  }

  end(): void {
    if (this.#offset !== this.buffer.byteLength) throw malformed(`${this.buffer.byteLength - this.#offset} trailing bytes`)
  }
}

function malformed(message: string): PeerError {
  return new PeerError({ reason: 'MALFORMED', message })
}

export function decodeMessage(type: FrameType, payload: Buffer): PeerMessage {
  const reader = new Reader(payload)
  const message = decodeFields(type, reader)
  reader.end()
  return message
}

function decodeFields(type: FrameType, reader: Reader): PeerMessage {
  switch (type) {
    case frameTypes.hello:
      return { kind: 'hello', senderId: reader.string('sender id'), sessionId: reader.string('session id'), committedLsn: reader.u64('committed') }
    case frameTypes.helloReply: {
      const replicaId = reader.string('replica id')
      const headLsn = reader.u64('head')
      const durableLsn = reader.u64('durable')
      const tailLsn = reader.u64('tail')
      const knownCommittedLsn = reader.u64('known committed')
      const checkpointLsn = reader.u64('checkpoint')
      const frameBytesMax = reader.u32('frame bound')
      const runsFromLsn = reader.u64('runs from')
      const count = reader.u32('run count')
      if (count > runsMax) throw malformed(`${count} epoch runs exceed ${runsMax}`)
      const runs: EpochRun[] = []
      for (let i = 0; i < count; i += 1) runs.push({ firstLsn: reader.u64('run lsn'), epoch: reader.u64('run epoch') })
      if (durableLsn > headLsn || tailLsn > durableLsn) throw malformed(`log positions out of order: tail ${tailLsn}, durable ${durableLsn}, head ${headLsn}`)
      return { kind: 'hello_reply', replicaId, headLsn, durableLsn, tailLsn, knownCommittedLsn, checkpointLsn, frameBytesMax, runsFromLsn, runs }
    }
    case frameTypes.truncate:
      return { kind: 'truncate', toLsn: reader.u64('truncate lsn') }
    case frameTypes.truncated:
      return { kind: 'truncated', durableLsn: reader.u64('durable') }
    case frameTypes.entries: {
      const committedLsn = reader.u64('committed')
      const count = reader.u32('entry count')
      const entries: WalRecord[] = []
      for (let i = 0; i < count; i += 1) {
        const index = reader.u64('entry index')
        const epoch = reader.u64('entry epoch')
        const entryType = reader.u8('entry type')
        const payload = reader.bytes('entry payload')
        const previous = entries[entries.length - 1]
        if (index < 1) throw malformed('entry index 0')
        if (previous !== undefined && index !== previous.index + 1) throw malformed(`entry ${index} does not follow ${previous.index}`)
        if (previous !== undefined && epoch < previous.epoch) throw malformed(`entry ${index} epoch ${epoch} below the previous ${previous.epoch}`)
        entries.push({ index, epoch, type: entryType, payload })
      }
      return { kind: 'entries', committedLsn, entries }
    }
    case frameTypes.ack:
      return { kind: 'ack', durableLsn: reader.u64('durable') }
    case frameTypes.heartbeat:
      return { kind: 'heartbeat', committedLsn: reader.u64('committed') }
    case frameTypes.error:
      return { kind: 'error', reason: reader.string('reason'), message: reader.string('message') }
    case frameTypes.snapshotOffer: {
      const manifest = reader.bytes('manifest')
      if (manifest.byteLength > snapshotManifestBytesMax) throw malformed(`a manifest of ${manifest.byteLength} bytes`)
      return { kind: 'snapshot_offer', manifest }
    }
    case frameTypes.chunkRequest: {
      const message = { kind: 'chunk_request' as const, appliedIndex: reader.u64('snapshot index'), file: reader.string('file'), offset: reader.u64('offset'), bytes: reader.u32('bytes') }
      if (message.bytes > snapshotChunkBytesMax) throw malformed(`a chunk of ${message.bytes} bytes`)
      return message
    }
    case frameTypes.chunk: {
      const message = { kind: 'chunk' as const, appliedIndex: reader.u64('snapshot index'), file: reader.string('file'), offset: reader.u64('offset'), crc32: reader.u32('crc'), data: reader.bytes('chunk data') }
      if (message.data.byteLength > snapshotChunkBytesMax) throw malformed(`a chunk of ${message.data.byteLength} bytes`)
      return message
    }
    case frameTypes.snapshotStaged:
      return { kind: 'snapshot_staged', appliedIndex: reader.u64('snapshot index') }
    default: {
      const never: never = type
      throw malformed(`unknown frame type ${String(never)}`)
    }
  }
}
