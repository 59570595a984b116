// The replica server against a hand-written client on a raw socket: frames
// cut into single bytes still decode, a corrupted or oversized frame is
// refused with a typed ERROR frame and the connection closed, messages out
// of order are refused, a truncation below what the replica knows is
// committed is an invariant violation (reported, nothing dropped), and a
// silent connection is closed by the idle timeout.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as net from 'node:net'
import { FrameDecoder, ReplicaServer, decodeMessage, encodeFrame, encodeMessage, frameTypeOf, type PeerMessage } from '../../src/cluster/peer/index.ts'
import { Cleanup, MemoryReplicaState, appendEntries, openWal, until } from './peer-harness.ts'

interface Received {
  message: PeerMessage
  epoch: number
}

class RawClient {
  readonly socket: net.Socket
  readonly received: Received[] = []
  closed = false
  readonly #decoder = new FrameDecoder()

  constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port })
    this.socket.on('data', (chunk: Buffer) => {
      for (const frame of this.#decoder.push(chunk)) this.received.push({ message: decodeMessage(frame.type, frame.payload), epoch: frame.epoch })
    })
    this.socket.on('close', () => (this.closed = true))
    this.socket.on('error', () => undefined)
  }

  frame(epoch: number, message: PeerMessage): Buffer {
    return encodeFrame({ type: frameTypeOf(message.kind), epoch, payload: encodeMessage(message) })
  }

  send(epoch: number, message: PeerMessage): void {
    this.socket.write(this.frame(epoch, message))
  }

  async nextOf<K extends PeerMessage['kind']>(kind: K): Promise<Extract<PeerMessage, { kind: K }>> {
    await until(`a ${kind}`, () => this.received.some((each) => each.message.kind === kind) || this.closed)
    const found = this.received.find((each) => each.message.kind === kind)
    assert.ok(found !== undefined, `got ${JSON.stringify(this.received.map((each) => each.message))} then close`)
    return found.message as Extract<PeerMessage, { kind: K }>
  }

  async refusedWith(reason: string): Promise<void> {
    const error = await this.nextOf('error')
    assert.equal(error.reason, reason)
    await until('the replica closed the connection', () => this.closed)
  }
}

async function rig(cleanup: Cleanup, options: { knownCommittedLsn?: number; entries?: number; idleTimeoutMs?: number } = {}) {
  const { wal } = await openWal(cleanup)
  if ((options.entries ?? 0) > 0) await appendEntries(wal, { epoch: 1, count: options.entries ?? 0, origin: 'r' })
  const state = new MemoryReplicaState({ epoch: 1, knownCommittedLsn: options.knownCommittedLsn ?? 0 })
  const violations: Error[] = []
  const server = await ReplicaServer.listen({
    replicaId: 'r1',
    wal,
    state,
    idleTimeoutMs: options.idleTimeoutMs ?? 5_000,
    frameBytesMax: 64 * 1024,
    onInvariantViolation: (error) => violations.push(error),
  })
  cleanup.add(() => server.close())
  const client = (): RawClient => {
    const raw = new RawClient(server.address.port)
    cleanup.add(() => void raw.socket.destroy())
    return raw
  }
  return { wal, state, server, violations, client }
}

const hello: PeerMessage = { kind: 'hello', senderId: 'p1', sessionId: 'p1/1', committedLsn: 0 }

test('a hello cut into single bytes is answered with the replica’s log', async () => {
  const cleanup = new Cleanup()
  try {
    const r = await rig(cleanup, { entries: 12, knownCommittedLsn: 4 })
    const raw = r.client()
    const bytes = raw.frame(1, hello)
    for (const byte of bytes) {
      raw.socket.write(Buffer.from([byte]))
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    const reply = await raw.nextOf('hello_reply')
    assert.deepEqual(reply, {
      kind: 'hello_reply',
      replicaId: 'r1',
      headLsn: 12,
      durableLsn: 12,
      tailLsn: 0,
      knownCommittedLsn: 4,
      checkpointLsn: 0,
      frameBytesMax: 64 * 1024,
      runsFromLsn: 5,
      runs: [{ firstLsn: 5, epoch: 1 }],
    })
  } finally {
    await cleanup.run()
  }
})

test('a corrupted frame is refused with FRAME_CRC and the connection closed; the WAL is untouched', async () => {
  const cleanup = new Cleanup()
  try {
    const r = await rig(cleanup, { entries: 3 })
    const raw = r.client()
    const frame = raw.frame(1, hello)
    frame[frame.byteLength - 6] = (frame[frame.byteLength - 6] ?? 0) ^ 0x40
    raw.socket.write(frame)
    await raw.refusedWith('FRAME_CRC')
    assert.equal(r.wal.head, 3)
  } finally {
    await cleanup.run()
  }
})

test('a frame longer than the bound is refused from its length alone', async () => {
  const cleanup = new Cleanup()
  try {
    const r = await rig(cleanup)
    const raw = r.client()
    const header = Buffer.alloc(4)
    header.writeUInt32LE(1024 * 1024, 0)
    raw.socket.write(header)
    await raw.refusedWith('FRAME_TOO_LARGE')
  } finally {
    await cleanup.run()
  }
})

test('entries before the handshake, and entries that leave a gap, are refused', async () => {
  const cleanup = new Cleanup()
  try {
    const r = await rig(cleanup, { entries: 5 })
    const early = r.client()
    early.send(1, hello)
    await early.nextOf('hello_reply')
    early.send(1, { kind: 'entries', committedLsn: 0, entries: [{ index: 6, epoch: 1, type: 1, payload: new Uint8Array([1]) }] })
    await early.refusedWith('PROTOCOL')

    const gap = r.client()
    gap.send(1, hello)
    await gap.nextOf('hello_reply')
    gap.send(1, { kind: 'truncate', toLsn: 5 })
    assert.deepEqual(await gap.nextOf('truncated'), { kind: 'truncated', durableLsn: 5 })
    gap.send(1, { kind: 'entries', committedLsn: 0, entries: [{ index: 7, epoch: 1, type: 1, payload: new Uint8Array([1]) }] })
    await gap.refusedWith('GAP')
    assert.equal(r.wal.head, 5)
  } finally {
    await cleanup.run()
  }
})

test('a stale-epoch frame is refused with STALE_EPOCH, stamped with the replica’s epoch', async () => {
  const cleanup = new Cleanup()
  try {
    const r = await rig(cleanup)
    r.state.currentEpoch = 4 as typeof r.state.currentEpoch
    const raw = r.client()
    raw.send(3, hello)
    await raw.refusedWith('STALE_EPOCH')
    assert.equal(raw.received.find((each) => each.message.kind === 'error')?.epoch, 4)
  } finally {
    await cleanup.run()
  }
})

test('a truncation below the known committed LSN is an invariant violation: reported, refused, nothing dropped', async () => {
  const cleanup = new Cleanup()
  try {
    const r = await rig(cleanup, { entries: 10, knownCommittedLsn: 8 })
    const raw = r.client()
    raw.send(1, hello)
    await raw.nextOf('hello_reply')
    raw.send(1, { kind: 'truncate', toLsn: 6 })
    await raw.refusedWith('TRUNCATE_BELOW_COMMITTED')
    assert.equal(r.wal.head, 10)
    assert.equal(r.violations.length, 1)
    assert.match(String(r.violations[0]), /below the lineage-safe LSN 8/)
  } finally {
    await cleanup.run()
  }
})

test('a connection that sends nothing is closed by the idle timeout', async () => {
  const cleanup = new Cleanup()
  try {
    const r = await rig(cleanup, { idleTimeoutMs: 100 })
    const raw = r.client()
    await raw.refusedWith('TIMEOUT')
  } finally {
    await cleanup.run()
  }
})
