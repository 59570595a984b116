/**
 * One TCP connection between peers: frames in and out, an idle timeout, and
 * a single close path. Decoding errors and protocol refusals close it after
 * an ERROR frame naming the reason; the owner learns why through `onClose`
 * exactly once.
 */
import type { Socket } from 'node:net'
import { PeerError, isPeerErrorReason } from './errors.ts'
import { FrameDecoder, encodeFrame } from './frame.ts'
import { decodeMessage, encodeMessage, frameTypeOf, type PeerMessage } from './messages.ts'

export interface ConnectionOptions {
  readonly frameBytesMax: number
  /** Close when nothing arrives for this long (0 = never). */
  readonly idleTimeoutMs: number
  /** One decoded message with its sender's epoch. Synchronous: queue async work. */
  readonly onMessage: (message: PeerMessage, epoch: number) => void
  /** Once, when the connection is gone: undefined for a local `close()`. */
  readonly onClose: (error: PeerError | undefined) => void
}

export class PeerConnection {
  readonly socket: Socket
  readonly #options: ConnectionOptions
  readonly #decoder: FrameDecoder
  #idleTimer: NodeJS.Timeout | undefined
  #closed = false

  constructor(socket: Socket, options: ConnectionOptions) {
    this.socket = socket
    this.#options = options
    this.#decoder = new FrameDecoder({ frameBytesMax: options.frameBytesMax })
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.#receive(chunk))
    socket.on('end', () => {
      try {
        this.#decoder.finish()
        this.#end(new PeerError({ reason: 'CLOSED', message: 'the peer closed the connection' }))
      } catch (error) {
        this.#end(error instanceof PeerError ? error : new PeerError({ reason: 'CLOSED', message: String(error) }))
      }
    })
    socket.on('error', (error) => this.#end(new PeerError({ reason: 'CLOSED', message: `socket error: ${error.message}`, cause: error })))
    socket.on('close', () => this.#end(new PeerError({ reason: 'CLOSED', message: 'connection closed' })))
    this.#armIdle()
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Bytes handed to the socket and not yet written to the kernel. */
  get sendBufferedBytes(): number {
    return this.socket.writableLength
  }

  send(epoch: number, message: PeerMessage): number {
    if (this.#closed) return 0
    const frame = encodeFrame({ type: frameTypeOf(message.kind), epoch, payload: encodeMessage(message) })
    this.socket.write(frame)
    return frame.byteLength
  }

  /** Refuses to go on: tells the peer why (best effort), then closes. */
  fail(epoch: number, error: PeerError): void {
    if (this.#closed) return
    this.send(epoch, { kind: 'error', reason: error.reason, message: error.message })
    this.socket.end()
    this.#end(error)
    // Do not wait for the peer to finish a half-closed socket forever.
    const timer = setTimeout(() => this.socket.destroy(), 1000)
    timer.unref()
  }

  close(): void {
    if (this.#closed) return
    this.#end(undefined)
    this.socket.destroy()
  }

  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    if (!this.#closed) this.socket.resume()
  }

  #receive(chunk: Buffer): void {
    if (this.#closed) return
    this.#armIdle()
    let frames
    try {
      frames = this.#decoder.push(chunk)
    } catch (error) {
      const refused = error instanceof PeerError ? error : new PeerError({ reason: 'MALFORMED', message: String(error) })
      this.fail(0, refused)
      return
    }
    for (const frame of frames) {
      if (this.#closed) return
      let message: PeerMessage
      try {
        message = decodeMessage(frame.type, frame.payload)
      } catch (error) {
        this.fail(0, error instanceof PeerError ? error : new PeerError({ reason: 'MALFORMED', message: String(error) }))
        return
      }
      if (message.kind === 'error') {
        // The peer refused us: its reason becomes ours.
        const reason = isPeerErrorReason(message.reason) ? message.reason : 'PROTOCOL'
        this.#end(new PeerError({ reason, message: `refused by the peer: ${message.message}`, peerEpoch: frame.epoch }))
        this.socket.destroy()
        return
      }
      this.#options.onMessage(message, frame.epoch)
    }
  }

  #armIdle(): void {
    if (this.#options.idleTimeoutMs <= 0) return
    if (this.#idleTimer !== undefined) {
      this.#idleTimer.refresh()
      return
    }
    this.#idleTimer = setTimeout(() => {
      this.fail(0, new PeerError({ reason: 'TIMEOUT', message: `nothing received for ${this.#options.idleTimeoutMs} ms` }))
      this.socket.destroy()
    }, this.#options.idleTimeoutMs)
    this.#idleTimer.unref()
  }

  #end(error: PeerError | undefined): void {
    if (this.#closed) return
    this.#closed = true
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer)
    this.#options.onClose(error)
  }
}
