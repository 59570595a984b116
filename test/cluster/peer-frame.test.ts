import { test } from 'node:test'
import assert from 'node:assert/strict'
import { crc32 } from 'node:zlib'
import fc from 'fast-check'
import {
  FrameDecoder,
  PeerError,
  decodeMessage,
  encodeFrame,
  encodeMessage,
  frameOverheadBytes,
  frameTypeOf,
  frameTypes,
  type Frame,
  type FrameType,
  type PeerMessage,
} from '../../src/cluster/peer/index.ts'

const typeValues = Object.values(frameTypes) as FrameType[]

const frameArbitrary = fc.record({
  type: fc.constantFrom(...typeValues),
  epoch: fc.oneof(fc.nat(10), fc.constant(Number.MAX_SAFE_INTEGER), fc.nat()),
  payload: fc.uint8Array({ maxLength: 300 }),
})

function decodeAll(stream: Buffer, cuts: number[], frameBytesMax?: number): Frame[] {
  const decoder = new FrameDecoder(frameBytesMax === undefined ? {} : { frameBytesMax })
  const frames: Frame[] = []
  let start = 0
  for (const cut of [...cuts, stream.byteLength]) {
    frames.push(...decoder.push(stream.subarray(start, cut)))
    start = cut
  }
  decoder.finish()
  return frames
}

function reasonOf(run: () => unknown): string | undefined {
  try {
    run()
    return undefined
  } catch (error) {
    assert.ok(error instanceof PeerError, `a typed PeerError, got ${String(error)}`)
    return error.reason
  }
}

test('any split of any frame sequence decodes to the same frames', () => {
  fc.assert(
    fc.property(fc.array(frameArbitrary, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, rawCuts) => {
      const stream = Buffer.concat(frames.map((frame) => encodeFrame(frame)))
      const cuts = [...new Set(rawCuts.map((cut) => (stream.byteLength === 0 ? 0 : cut % (stream.byteLength + 1))))].sort((a, b) => a - b)
      const decoded = decodeAll(stream, cuts)
      assert.equal(decoded.length, frames.length)
      decoded.forEach((frame, i) => {
        const sent = frames[i]
        assert.ok(sent !== undefined)
        assert.equal(frame.type, sent.type)
        assert.equal(frame.epoch, sent.epoch)
        assert.deepEqual(new Uint8Array(frame.payload), sent.payload)
      })
    }),
    { numRuns: 400 },
  )
})

test('one byte at a time decodes too (every boundary inside the header and the CRC)', () => {
  const frames = [
    encodeFrame({ type: frameTypes.ack, epoch: 7, payload: new Uint8Array(8) }),
    encodeFrame({ type: frameTypes.entries, epoch: 7, payload: new Uint8Array([1, 2, 3]) }),
  ]
  const stream = Buffer.concat(frames)
  const cuts = Array.from({ length: stream.byteLength }, (_, i) => i)
  assert.equal(decodeAll(stream, cuts).length, 2)
})

test('any corrupted byte in a frame sequence is detected', () => {
  fc.assert(
    fc.property(
      fc.array(frameArbitrary, { minLength: 1, maxLength: 6 }),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      (frames, at, flip, rawCuts) => {
        const stream = Buffer.concat(frames.map((frame) => encodeFrame(frame)))
        const position = at % stream.byteLength
        const corrupted = Buffer.from(stream)
        corrupted[position] = (corrupted[position] ?? 0) ^ flip
        const cuts = [...new Set(rawCuts.map((cut) => cut % (stream.byteLength + 1)))].sort((a, b) => a - b)
        const reason = reasonOf(() => decodeAll(corrupted, cuts, 4096))
        assert.ok(
          reason !== undefined && ['FRAME_CRC', 'FRAME_TOO_LARGE', 'FRAME_TOO_SMALL', 'FRAME_TRUNCATED'].includes(reason),
          `byte ${position} flipped by ${flip} went undetected (${reason ?? 'decoded'})`,
        )
      },
    ),
    { numRuns: 1000 },
  )
})

test('a frame beyond the bound is refused as soon as its length is read, before its body arrives', () => {
  const decoder = new FrameDecoder({ frameBytesMax: 1024 })
  const header = Buffer.alloc(4)
  header.writeUInt32LE(2048, 0)
  assert.equal(reasonOf(() => decoder.push(header)), 'FRAME_TOO_LARGE')
  assert.equal(decoder.bufferedBytes, 0)
  // A broken decoder stays broken: the connection must close.
  assert.equal(reasonOf(() => decoder.push(encodeFrame({ type: frameTypes.ack, epoch: 1, payload: new Uint8Array(8) }))), 'FRAME_TOO_LARGE')
})

test('a length below the envelope, an unknown version or type are typed errors', () => {
  const small = Buffer.alloc(4)
  small.writeUInt32LE(frameOverheadBytes - 5, 0)
  assert.equal(reasonOf(() => new FrameDecoder().push(small)), 'FRAME_TOO_SMALL')

  const resealed = (mutate: (frame: Buffer) => void): Buffer => {
    const frame = encodeFrame({ type: frameTypes.ack, epoch: 3, payload: new Uint8Array(8) })
    mutate(frame)
    frame.writeUInt32LE(crc32(frame.subarray(0, frame.byteLength - 4)), frame.byteLength - 4)
    return frame
  }
  assert.equal(reasonOf(() => new FrameDecoder().push(resealed((frame) => frame.writeUInt8(2, 4)))), 'FRAME_VERSION')
  assert.equal(reasonOf(() => new FrameDecoder().push(resealed((frame) => frame.writeUInt8(99, 5)))), 'FRAME_TYPE')
  assert.equal(reasonOf(() => new FrameDecoder().push(resealed((frame) => frame.writeUInt32LE(0xffffffff, 10)))), 'MALFORMED')
})

const messages: PeerMessage[] = [
  { kind: 'hello', senderId: 'n1', sessionId: 'n1/1/e2/3', committedLsn: 10 },
  {
    kind: 'hello_reply',
    replicaId: 'n2',
    headLsn: 12,
    durableLsn: 12,
    tailLsn: 0,
    knownCommittedLsn: 8,
    checkpointLsn: 4,
    frameBytesMax: 65_536,
    runsFromLsn: 9,
    runs: [
      { firstLsn: 9, epoch: 1 },
      { firstLsn: 11, epoch: 2 },
    ],
  },
  { kind: 'truncate', toLsn: 9 },
  { kind: 'truncated', durableLsn: 9 },
  {
    kind: 'entries',
    committedLsn: 9,
    entries: [
      { index: 10, epoch: 2, type: 1, payload: new Uint8Array([1, 2]) },
      { index: 11, epoch: 2, type: 0, payload: new Uint8Array() },
    ],
  },
  { kind: 'ack', durableLsn: 11 },
  { kind: 'heartbeat', committedLsn: 11 },
  { kind: 'error', reason: 'STALE_EPOCH', message: 'frame of epoch 1, this replica is at epoch 2' },
]

test('every message round-trips; short, long or inconsistent payloads are MALFORMED', () => {
  for (const message of messages) {
    const payload = encodeMessage(message)
    assert.deepEqual(decodeMessage(frameTypeOf(message.kind), payload), message)
    if (payload.byteLength > 0) assert.equal(reasonOf(() => decodeMessage(frameTypeOf(message.kind), payload.subarray(0, payload.byteLength - 1))), 'MALFORMED')
    assert.equal(reasonOf(() => decodeMessage(frameTypeOf(message.kind), Buffer.concat([payload, Buffer.from([0])]))), 'MALFORMED')
  }
  const gap = encodeMessage({
    kind: 'entries',
    committedLsn: 0,
    entries: [
      { index: 3, epoch: 1, type: 0, payload: new Uint8Array() },
      { index: 5, epoch: 1, type: 0, payload: new Uint8Array() },
    ],
  })
  assert.equal(reasonOf(() => decodeMessage(frameTypes.entries, gap)), 'MALFORMED')
})
