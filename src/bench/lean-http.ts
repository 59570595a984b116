import net from 'node:net'
import { invariant } from '../domain/index.ts'
import { NetworkError, type HttpRequest, type HttpResponse, type HttpTransport, type HttpTransportOptions } from './http.ts'

/**
 * A keep-alive HTTP/1.1 client on bare sockets, for plain-http targets.
 *
 * node:http costs the client ~100 µs of CPU per request (agent bookkeeping,
 * header objects, its parser, stream events): on a 2-core machine shared with
 * the server, that is CPU the server does not get, and more than the server's
 * own budget per transaction. Here a request is one string written once, and
 * an answer is read as bytes: the status line, `Content-Length` or chunked
 * framing, nothing else. The body is decoded to text only if a classifier
 * asks for it (a counted 200 `_bulk` answer never is).
 *
 * One request at a time per connection (no pipelining), at most `socketsMax`
 * connections; a request waits for a free one. A connection that fails or
 * times out is dropped with its request failed as a `NetworkError`; nothing
 * is retried, since a write may have been applied.
 *
 * A server closes a kept-alive connection once it has been idle for its
 * keep-alive timeout: a request written at that moment crosses the server's
 * FIN and is reset, though it was never read (ECONNRESET in long runs). So an
 * idle connection is reused only well inside the timeout its server announces
 * (`Keep-Alive: timeout=N`, `keepAliveReuseMs`), and only while its socket
 * has seen no FIN; otherwise the request goes on a fresh connection.
 */

/** Bounds on what one answer may hold before the connection is dropped as broken. */
export const responseHeadBytesMax = 64 * 1024
export const responseBodyBytesMax = 256 * 1024 * 1024

interface Pending {
  readonly request: HttpRequest
  readonly resolve: (response: HttpResponse) => void
  readonly reject: (error: NetworkError) => void
}

const crlfcrlf = Buffer.from('\r\n\r\n')

/** The decoded head of an answer: what framing the body uses. */
export interface ResponseHead {
  readonly status: number
  /** Undefined when the length is not given (chunked, or until close). */
  readonly contentLength: number | undefined
  readonly chunked: boolean
  readonly closeAfter: boolean
  /** The server's keep-alive timeout (`Keep-Alive: timeout=N`, seconds) in ms; undefined when not announced. */
  readonly keepAliveMs: number | undefined
}

/**
 * How long after an answer its connection may still carry a request, for a
 * server that closes idle connections after `keepAliveMs`: a second (or half
 * the timeout, if shorter) before it, room for the answer's time on the wire
 * and the two processes' timers. Unbounded when the server announced nothing.
 */
export function keepAliveReuseMs(keepAliveMs: number | undefined): number {
  if (keepAliveMs === undefined) return Number.POSITIVE_INFINITY
  return keepAliveMs - Math.min(1000, keepAliveMs / 2)
}

export function parseResponseHead(text: string): ResponseHead {
  const lines = text.split('\r\n')
  const statusMatch = /^HTTP\/1\.[01] ([0-9]{3})(?: |$)/.exec(lines[0] ?? '')
  if (statusMatch === null) throw new NetworkError('BAD_RESPONSE', `not an HTTP/1.x status line: ${JSON.stringify(lines[0]?.slice(0, 80))}`)
  let contentLength: number | undefined
  let chunked = false
  let closeAfter = /^HTTP\/1\.0/.test(lines[0] ?? '')
  let keepAliveMs: number | undefined
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim().toLowerCase()
    if (name === 'content-length') {
      if (!/^[0-9]{1,15}$/.test(value)) throw new NetworkError('BAD_RESPONSE', `bad Content-Length ${value}`)
      contentLength = Number(value)
    } else if (name === 'transfer-encoding') {
      chunked = value.split(',').some((coding) => coding.trim() === 'chunked')
    } else if (name === 'connection') {
      if (value.split(',').some((option) => option.trim() === 'close')) closeAfter = true
      if (value.split(',').some((option) => option.trim() === 'keep-alive')) closeAfter = false
    } else if (name === 'keep-alive') {
      const timeout = /(?:^|[,;\s])timeout\s*=\s*([0-9]{1,9})(?:$|[,;\s])/.exec(value)
      if (timeout !== null) keepAliveMs = Number(timeout[1]) * 1000
    }
  }
  if (contentLength !== undefined && contentLength > responseBodyBytesMax) {
    throw new NetworkError('BAD_RESPONSE', `answer of ${contentLength} bytes exceeds ${responseBodyBytesMax}`)
  }
  return { status: Number(statusMatch[1]), contentLength: chunked ? undefined : contentLength, chunked, closeAfter, keepAliveMs }
}

/**
 * Decodes a complete chunked body, or returns undefined when more bytes are
 * needed. Trailers are skipped.
 */
export function decodeChunked(bytes: Buffer): { body: Buffer; consumed: number } | undefined {
  const parts: Buffer[] = []
  let at = 0
  let size = 0
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', at)
    if (lineEnd === -1) return undefined
    const sizeText = bytes.toString('latin1', at, lineEnd).split(';')[0]?.trim() ?? ''
    if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText)) throw new NetworkError('BAD_RESPONSE', `bad chunk size ${JSON.stringify(sizeText)}`)
    const chunkBytes = parseInt(sizeText, 16)
    size += chunkBytes
    if (size > responseBodyBytesMax) throw new NetworkError('BAD_RESPONSE', `chunked answer exceeds ${responseBodyBytesMax} bytes`)
    const dataStart = lineEnd + 2
    if (chunkBytes === 0) {
      // Trailer section: header lines until an empty line.
      let trailerAt = dataStart
      for (;;) {
        const trailerEnd = bytes.indexOf('\r\n', trailerAt)
        if (trailerEnd === -1) return undefined
        if (trailerEnd === trailerAt) return { body: Buffer.concat(parts), consumed: trailerEnd + 2 }
        trailerAt = trailerEnd + 2
      }
    }
    if (bytes.length < dataStart + chunkBytes + 2) return undefined
    if (bytes[dataStart + chunkBytes] !== 0x0d || bytes[dataStart + chunkBytes + 1] !== 0x0a) {
      throw new NetworkError('BAD_RESPONSE', 'a chunk is longer than its size says')
    }
    parts.push(bytes.subarray(dataStart, dataStart + chunkBytes))
    at = dataStart + chunkBytes + 2
  }
}

/** An answer whose body is decoded on first read. */
function lazyResponse(status: number, bytes: Buffer): HttpResponse {
  let text: string | undefined
  return {
    status,
    get body(): string {
      text ??= bytes.toString('utf8')
      return text
    },
  }
}

class Connection {
  private readonly socket: net.Socket
  /** Bytes of the answer so far, joined only when they must be read. */
  private chunks: Buffer[] = []
  private chunkBytes = 0
  private buffered: Buffer = Buffer.alloc(0)
  private head: ResponseHead | undefined
  private headBytes = 0
  private current: Pending | undefined
  private ended = false
  /** When the last answer completed (the transport's clock), and until when the server keeps the connection. */
  private idleSince = 0
  private reuseMs = Number.POSITIVE_INFINITY

  constructor(
    private readonly options: { host: string; port: number; requestTimeoutMs: number; now: () => number },
    private readonly onIdle: (connection: Connection) => void,
    private readonly onGone: (connection: Connection) => void,
  ) {
    this.socket = net.connect({ host: options.host, port: options.port, noDelay: true })
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk))
    this.socket.on('error', (error: NodeJS.ErrnoException) => this.fail(new NetworkError(error.code ?? 'NETWORK', error.message, error)))
    this.socket.on('close', () => this.fail(new NetworkError('ECONNRESET', 'connection closed before the answer was complete')))
    this.socket.on('end', () => this.receiveEnd())
    this.socket.on('timeout', () => this.fail(new NetworkError('TIMEOUT', `no answer within ${options.requestTimeoutMs} ms`)))
  }

  /**
   * Whether a request written now would reach a server still reading this
   * connection: not closed, no FIN seen, and idle for less than the server's
   * keep-alive timeout allows (`keepAliveReuseMs`).
   */
  usable(now: number): boolean {
    if (this.ended) return false
    const socket = this.socket
    return !socket.destroyed && socket.writable && !socket.readableEnded && now - this.idleSince < this.reuseMs
  }

  send(pending: Pending, wire: string): void {
    invariant(this.current === undefined, 'one request at a time per connection')
    invariant(!this.ended, 'no request on a closed connection')
    this.current = pending
    this.socket.setTimeout(this.options.requestTimeoutMs)
    this.socket.write(wire, 'utf8')
  }

  close(): void {
    this.ended = true
    this.socket.destroy()
  }

  private receive(chunk: Buffer): void {
    if (this.current === undefined) {
      // Bytes nobody asked for: the connection's framing is lost.
      this.fail(new NetworkError('BAD_RESPONSE', 'unsolicited bytes on an idle connection'))
      return
    }
    this.chunks.push(chunk)
    this.chunkBytes += chunk.length
    // A body of known length: wait for all of it before joining (one copy, not one per chunk).
    const head = this.head
    if (head !== undefined && !head.chunked && head.contentLength !== undefined && this.chunkBytes < this.headBytes + head.contentLength) return
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.chunkBytes)]
    this.buffered = this.chunks[0] ?? Buffer.alloc(0)
    try {
      this.tryComplete(false)
    } catch (error) {
      this.fail(error instanceof NetworkError ? error : new NetworkError('BAD_RESPONSE', String(error)))
    }
  }

  private receiveEnd(): void {
    if (this.current !== undefined && this.head !== undefined && this.head.contentLength === undefined && !this.head.chunked) {
      try {
        this.tryComplete(true)
      } catch (error) {
        this.fail(error instanceof NetworkError ? error : new NetworkError('BAD_RESPONSE', String(error)))
        return
      }
    }
    this.fail(new NetworkError('ECONNRESET', 'the server closed the connection'))
  }

  private tryComplete(atEnd: boolean): void {
    if (this.head === undefined) {
      const headEnd = this.buffered.indexOf(crlfcrlf)
      if (headEnd === -1) {
        if (this.buffered.length > responseHeadBytesMax) throw new NetworkError('BAD_RESPONSE', `answer head exceeds ${responseHeadBytesMax} bytes`)
        return
      }
      this.head = parseResponseHead(this.buffered.toString('latin1', 0, headEnd))
      this.headBytes = headEnd + 4
      // 1xx interim answers (100 Continue) carry no body: skip them.
      if (this.head.status >= 100 && this.head.status < 200) {
        this.buffered = this.buffered.subarray(this.headBytes)
        this.chunks = [this.buffered]
        this.chunkBytes = this.buffered.length
        this.head = undefined
        this.tryComplete(atEnd)
        return
      }
    }
    const head = this.head
    const bodyBytes = this.buffered.subarray(this.headBytes)
    const noBody = head.status === 204 || head.status === 304 || this.current?.request.method === 'HEAD'
    let body: Buffer
    let consumed: number
    if (noBody) {
      body = Buffer.alloc(0)
      consumed = 0
    } else if (head.chunked) {
      const decoded = decodeChunked(bodyBytes)
      if (decoded === undefined) return
      body = decoded.body
      consumed = decoded.consumed
    } else if (head.contentLength !== undefined) {
      if (bodyBytes.length < head.contentLength) return
      body = bodyBytes.subarray(0, head.contentLength)
      consumed = head.contentLength
    } else {
      if (bodyBytes.length > responseBodyBytesMax) throw new NetworkError('BAD_RESPONSE', `answer exceeds ${responseBodyBytesMax} bytes`)
      if (!atEnd) return
      body = bodyBytes
      consumed = bodyBytes.length
    }
    if (this.headBytes + consumed !== this.buffered.length) {
      throw new NetworkError('BAD_RESPONSE', 'bytes after the end of the answer')
    }
    const pending = this.current
    invariant(pending !== undefined, 'an answer completes a request in flight')
    this.current = undefined
    this.head = undefined
    this.buffered = Buffer.alloc(0)
    this.chunks = []
    this.chunkBytes = 0
    this.socket.setTimeout(0)
    this.idleSince = this.options.now()
    this.reuseMs = keepAliveReuseMs(head.keepAliveMs)
    // The body may pin the socket's chunk until the classifier drops it: no copy.
    pending.resolve(lazyResponse(head.status, body))
    if (head.closeAfter || atEnd) {
      this.ended = true
      this.socket.end()
      this.onGone(this)
    } else {
      this.onIdle(this)
    }
  }

  private fail(error: NetworkError): void {
    const pending = this.current
    this.current = undefined
    const wasEnded = this.ended
    this.ended = true
    this.socket.destroy()
    pending?.reject(error)
    if (!wasEnded) this.onGone(this)
  }
}

export interface LeanHttpTransportOptions extends HttpTransportOptions {
  /** The clock idle connections are timed by (ms); tests pass their own. */
  readonly now?: () => number
}

export function createLeanHttpTransport(options: LeanHttpTransportOptions): HttpTransport {
  invariant(options.socketsMax > 0, 'socketsMax must be positive')
  invariant(options.requestTimeoutMs > 0, 'requestTimeoutMs must be positive')
  invariant(options.target.protocol === 'http:', 'the lean client speaks plain http; use the node:http transport for https')
  const host = options.target.hostname.replace(/^\[|\]$/g, '')
  const port = options.target.port === '' ? 80 : Number(options.target.port)
  const hostHeader = options.target.host
  const basePath = options.target.pathname.replace(/\/+$/, '')
  const now = options.now ?? (() => performance.now())
  const idle: Connection[] = []
  const waiting: Pending[] = []
  const open = new Set<Connection>()
  let closed = false

  function wireOf(request: HttpRequest): string {
    invariant(request.path.startsWith('/'), `request path ${request.path} must start with /`)
    const start = `${request.method} ${basePath}${request.path} HTTP/1.1\r\nHost: ${hostHeader}\r\nAccept: application/json\r\n`
    if (request.body === undefined) return `${start}\r\n`
    return `${start}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(request.body)}\r\n\r\n${request.body}`
  }

  function dispatch(connection: Connection, pending: Pending): void {
    connection.send(pending, wireOf(pending.request))
  }

  function onIdle(connection: Connection): void {
    const next = waiting.shift()
    if (next !== undefined && !closed) dispatch(connection, next)
    else idle.push(connection)
  }

  function onGone(connection: Connection): void {
    open.delete(connection)
    const at = idle.indexOf(connection)
    if (at !== -1) idle.splice(at, 1)
    const next = waiting.shift()
    if (next !== undefined) start(next)
  }

  function start(pending: Pending): void {
    if (closed) {
      pending.reject(new NetworkError('CLOSED', 'the transport is closed'))
      return
    }
    // Most recently used first: the connections idle longest stay at the bottom, where the server's timeout closes them.
    let connection = idle.pop()
    const at = now()
    while (connection !== undefined && !connection.usable(at)) {
      // Past the server's keep-alive (or already closing): closed here, before a request can cross the server's FIN.
      open.delete(connection)
      connection.close()
      connection = idle.pop()
    }
    if (connection === undefined && open.size < options.socketsMax) {
      connection = new Connection({ host, port, requestTimeoutMs: options.requestTimeoutMs, now }, onIdle, onGone)
      open.add(connection)
    }
    if (connection === undefined) waiting.push(pending)
    else dispatch(connection, pending)
  }

  return {
    send: (request) => new Promise<HttpResponse>((resolve, reject) => start({ request, resolve, reject })),
    close() {
      closed = true
      for (const connection of open) connection.close()
      open.clear()
      idle.length = 0
      for (const pending of waiting.splice(0)) pending.reject(new NetworkError('CLOSED', 'the transport is closed'))
    },
  }
}
