import { STATUS_CODES } from 'node:http'
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

/**
 * HTTP transport concerns that sit below the routes: every error the
 * transport itself produces in v2's `{errorCode, errorMessage}` shape,
 * 404 versus 405, the content-type policy for writes, and connections that
 * are bounded in time and closed within a bound at shutdown.
 */

/** An HTTP-level refusal; `errorHandler` sends it as `{errorCode, errorMessage}` with its status. */
export class TransportError extends Error {
  readonly statusCode: number
  readonly errorCode: 'VALIDATION' | 'TIMEOUT' | 'INTERNAL'
  constructor(statusCode: number, errorCode: 'VALIDATION' | 'TIMEOUT' | 'INTERNAL', message: string) {
    super(message)
    this.name = 'TransportError'
    this.statusCode = statusCode
    this.errorCode = errorCode
  }
}

export interface TransportLimits {
  /** The whole request, headers and body, must arrive within this (node's `requestTimeout`). */
  readonly requestTimeoutMs: number
  /** The headers must arrive within this (node's `headersTimeout`); at most `requestTimeoutMs`. */
  readonly headersTimeoutMs: number
  /** A kept-alive connection with no request in flight is closed after this. */
  readonly idleTimeoutMs: number
  /** Connections beyond this are refused at accept time. */
  readonly connectionsMax: number
  /** At shutdown, requests still being handled after this lose their connection. */
  readonly shutdownGraceMs: number
}

export const transportLimitsDefault: TransportLimits = {
  requestTimeoutMs: 60_000,
  headersTimeoutMs: 10_000,
  idleTimeoutMs: 5_000,
  connectionsMax: 4096,
  shutdownGraceMs: 10_000,
}

/** How often node looks for requests past their timeout: a fraction of the shortest, so a cut lands close to it. */
export function timeoutCheckIntervalMs(limits: TransportLimits): number {
  return Math.max(10, Math.min(1_000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)))
}

// ---- errors below the routes ---------------------------------------------------------

/**
 * Errors node's HTTP parser raises before fastify sees a request (bad request
 * line, bad chunking, oversized headers, a request that did not arrive in
 * time) are answered here, on the raw socket, in the v2 shape.
 */
export function clientErrorHandler(limits: TransportLimits): (error: Error & { code?: string }, socket: Socket) => void {
  return (error, socket) => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return
    const [status, errorCode, message] = clientErrorReply(error.code, limits)
    // A response already on the wire cannot be followed by another one.
    const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
    if (socket.writable && (current === undefined || current === null || !current.headersSent)) {
      const body = JSON.stringify({ errorCode, errorMessage: message })
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      )
    }
    socket.destroySoon()
  }
}

function clientErrorReply(code: string | undefined, limits: TransportLimits): [number, 'VALIDATION' | 'TIMEOUT', string] {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'TIMEOUT', `request not received in time (headers within ${limits.headersTimeoutMs} ms, whole request within ${limits.requestTimeoutMs} ms)`]
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'VALIDATION', 'request headers larger than the limit (16 KiB)']
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return [400, 'VALIDATION', 'malformed HTTP request: invalid Content-Length']
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return [400, 'VALIDATION', 'malformed HTTP request: invalid chunked encoding']
    default:
      return [400, 'VALIDATION', `malformed HTTP request${code === undefined ? '' : ` (${code})`}`]
  }
}

/** fastify's router refusals (bad percent-encoding, an over-long path parameter), in the v2 shape. */
export function frameworkErrors(maxParamLength: number): (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => void {
  return (error, _request, reply) => {
    if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
      void reply.code(414).send({ errorCode: 'VALIDATION', errorMessage: `path parameter longer than the limit of ${maxParamLength} characters` })
      return
    }
    if (error.code === 'FST_ERR_BAD_URL') {
      void reply.code(400).send({ errorCode: 'VALIDATION', errorMessage: 'path is not valid percent-encoded UTF-8' })
      return
    }
    void reply.code(400).send({ errorCode: 'VALIDATION', errorMessage: error.message })
  }
}

// ---- 404 versus 405 ------------------------------------------------------------------

/**
 * The route table as path patterns, to tell "no such resource" (404) from
 * "no such method on this resource" (405 with `Allow`). Fastify's router
 * answers only the first.
 */
export class RouteTable {
  private readonly methodsByPattern = new Map<string, Set<string>>()

  add(method: string | readonly string[], url: string): void {
    const methods = this.methodsByPattern.get(url) ?? new Set<string>()
    for (const one of typeof method === 'string' ? [method] : method) methods.add(one.toUpperCase())
    this.methodsByPattern.set(url, methods)
  }

  /** Methods some route serves at this concrete path, sorted; empty when no route matches it. */
  methodsAt(path: string): string[] {
    const segments = path.split('/')
    const methods = new Set<string>()
    for (const [pattern, patternMethods] of this.methodsByPattern) {
      if (matches(pattern.split('/'), segments)) for (const method of patternMethods) methods.add(method)
    }
    return [...methods].sort()
  }
}

function matches(pattern: readonly string[], segments: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const part = pattern[i] as string
    if (part === '*') return true
    const segment = segments[i]
    if (segment === undefined) return false
    if (part.startsWith(':')) {
      if (segment === '') return false
    } else if (part !== segment) {
      return false
    }
  }
  return pattern.length === segments.length
}

// ---- the content-type policy for writes ----------------------------------------------

const WRITE_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** `application/json` or a `+json` type, charset absent or UTF-8. */
export function isJsonContentType(value: string): boolean {
  // What clients send: decided without splitting (the same answer as below).
  if (value === 'application/json' || value === 'application/json; charset=utf-8') return true
  const [type = '', ...parameters] = value.split(';').map((part) => part.trim().toLowerCase())
  if (type !== 'application/json' && !/^application\/[a-z0-9.!#$&^_-]+\+json$/.test(type)) return false
  return parameters.every((parameter) => !parameter.startsWith('charset=') || /^charset="?utf-8"?$/.test(parameter))
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length']
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/** Route config of the routes that take a stream of JSON lines (log import) rather than one JSON document. */
export const jsonLinesRoute = { bodyTypes: 'json-lines' } as const

const JSON_LINES_TYPES: ReadonlySet<string> = new Set(['application/octet-stream', 'application/x-ndjson', 'application/jsonl'])

/**
 * Route config of the OAuth2 token endpoint, which RFC 6749 has take a form.
 * It moves no money: a cross-site form can only ask for a token with
 * credentials it would need to know.
 */
export const formRoute = { bodyTypes: 'form' } as const

function isFormContentType(value: string): boolean {
  return (value.split(';', 1)[0] as string).trim().toLowerCase() === 'application/x-www-form-urlencoded'
}

function isJsonLinesContentType(value: string): boolean {
  return JSON_LINES_TYPES.has((value.split(';', 1)[0] as string).trim().toLowerCase()) || isJsonContentType(value)
}

function acceptedBodyType(value: string, form: boolean, jsonLines: boolean): boolean {
  return form ? isFormContentType(value) : jsonLines ? isJsonLinesContentType(value) : isJsonContentType(value)
}

/**
 * A write must say it carries JSON (or, for a log import, JSON lines).
 * `text/plain`, form encodings, and a body with no type at all are what a
 * browser sends cross-site without a CORS preflight; refusing them (before
 * reading the body) keeps a page in a browser from posting transactions to a
 * ledger on the user's network.
 */
export function refuseUnexpectedBodyType(request: FastifyRequest): void {
  if (!WRITE_METHODS.has(request.method)) return
  const config = request.routeOptions.config as { bodyTypes?: string }
  const jsonLines = config.bodyTypes === jsonLinesRoute.bodyTypes
  const form = config.bodyTypes === formRoute.bodyTypes
  const type = request.headers['content-type']
  // A module function, not a closure: tsx's keepNames would define a name on a closure made for every write.
  if (type === undefined ? !hasBody(request) : acceptedBodyType(type, form, jsonLines)) return
  const expected = form ? 'application/x-www-form-urlencoded' : jsonLines ? 'application/json, application/x-ndjson or application/octet-stream' : 'application/json'
  throw new TransportError(
    415,
    'VALIDATION',
    type === undefined ? `a request body needs Content-Type: ${expected}` : `unsupported Content-Type ${JSON.stringify(type)}: this write takes ${expected}`,
  )
}

// ---- connections and shutdown --------------------------------------------------------

/**
 * Knows every open connection and which of them carry a request being
 * handled (its body parsed, so it may have submitted a write). At shutdown
 * the others — idle, half-sent headers, stalled bodies — are closed at once;
 * the handled ones drain, for at most `shutdownGraceMs`.
 *
 * The count of requests a connection is handling lives on its socket (a
 * field, not a map entry made and dropped per request). The app calls its
 * per-request steps from the few hooks it runs for every request (onRequest,
 * preHandler, onSend, onResponse: `src/api/app.ts`), not from hooks of the
 * tracker's own.
 */
export class ConnectionTracker {
  private readonly open = new Set<Socket>()
  private closing = false
  private graceTimer: NodeJS.Timeout | undefined

  constructor(private readonly limits: TransportLimits) {}

  get isClosing(): boolean {
    return this.closing
  }

  /**
   * The connection bound, the open set and shutdown. The per-request steps
   * (`refusal`, `requestHandled`, `beforeSend`, `requestEnded`) are called by
   * the app from the few hooks it runs for every request.
   */
  attach(app: FastifyInstance): void {
    app.server.maxConnections = this.limits.connectionsMax
    app.server.on('connection', (socket: Socket) => {
      this.open.add(socket)
      socket.once('close', () => this.open.delete(socket))
    })
    app.addHook('onRequestAbort', (request, done) => {
      this.requestEnded(request)
      done()
    })
    app.addHook('preClose', async () => this.beginShutdown(app))
    app.addHook('onClose', async () => {
      if (this.graceTimer !== undefined) clearTimeout(this.graceTimer)
    })
  }

  /** On arrival: once shutdown began, the 503 to answer (with `Connection: close`); undefined otherwise. */
  refusal(reply: FastifyReply): TransportError | undefined {
    if (!this.closing) return undefined
    void reply.header('Connection', 'close').header('Retry-After', '1')
    return new TransportError(503, 'INTERNAL', 'SHUTTING_DOWN: the server is stopping; retry on another node or after restart')
  }

  /** Its body is parsed: the request may submit a write, so shutdown lets it finish. */
  requestHandled(request: FastifyRequest): void {
    const socket = request.raw.socket as TrackedSocket | null
    if (socket === null) return // light-my-request injections have no socket
    socket[handlingCount] = (socket[handlingCount] ?? 0) + 1
  }

  /** Before the answer's head is written: once shutdown began, the connection closes after it. */
  beforeSend(reply: FastifyReply): void {
    if (this.closing) void reply.header('Connection', 'close')
  }

  /** Answered or aborted. */
  requestEnded(request: FastifyRequest): void {
    const socket = request.raw.socket as TrackedSocket | null
    if (socket === null) return
    const count = (socket[handlingCount] ?? 0) - 1
    socket[handlingCount] = count > 0 ? count : 0
    if (this.closing && count <= 0) socket.destroySoon()
  }

  private beginShutdown(app: FastifyInstance): void {
    this.closing = true
    // No write can be in flight on these: a write is submitted only after its body is parsed.
    for (const socket of this.open) if (((socket as TrackedSocket)[handlingCount] ?? 0) === 0) socket.destroy()
    this.graceTimer = setTimeout(() => app.server.closeAllConnections(), this.limits.shutdownGraceMs)
    this.graceTimer.unref()
  }
}

/** Requests a connection is handling, kept on its socket. */
const handlingCount = Symbol('tally.handlingCount')

type TrackedSocket = Socket & { [handlingCount]?: number }
