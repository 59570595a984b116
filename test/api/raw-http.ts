import assert from 'node:assert/strict'
import net from 'node:net'
import type { FastifyInstance } from 'fastify'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/app.ts'
import type { ApiOptions } from '../../src/api/app.ts'
import { tempDirectory } from '../support/temp.ts'

/**
 * Raw HTTP over node:net, for what a client library would never send:
 * malformed request lines, bad chunking, stalled bodies, oversized headers.
 */

/** A listening server on 127.0.0.1 (ephemeral port), for raw sockets. */
export interface ListeningApi {
  readonly app: FastifyInstance
  readonly node: LedgerNode
  readonly port: number
  close(): Promise<void>
}

export async function openListeningApi(options: ApiOptions = {}): Promise<ListeningApi> {
  const temp = tempDirectory('tally-raw-')
  const node = await LedgerNode.open({ dataDirectory: temp.directory, sync: false })
  const app = await buildApi(node, options)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  assert.ok(address !== null && typeof address === 'object')
  return {
    app,
    node,
    port: address.port,
    async close() {
      await app.close()
      await node.close()
      temp.remove()
    },
  }
}

export interface RawResponse {
  readonly status: number
  /** Lower-cased header names; a repeated header keeps its last value. */
  readonly headers: ReadonlyMap<string, string>
  readonly body: string
}

/** Parses the first HTTP/1.1 response in `text` (Content-Length framed); undefined while incomplete. */
export function parseRawResponse(text: string): RawResponse | undefined {
  const headEnd = text.indexOf('\r\n\r\n')
  if (headEnd < 0) return undefined
  const [statusLine = '', ...lines] = text.slice(0, headEnd).split('\r\n')
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)
  assert.ok(match !== null, `not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`)
  const headers = new Map<string, string>()
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  const length = Number(headers.get('content-length') ?? '0')
  const body = text.slice(headEnd + 4)
  if (Buffer.byteLength(body) < length) return undefined
  return { status: Number(match[1]), headers, body }
}

/** A raw connection: write bytes, await the first response, await the close. */
export interface RawConnection {
  readonly socket: net.Socket
  write(text: string | Buffer): void
  /** The first complete response; rejects if the connection closes without one or none comes within the deadline. */
  response(deadlineMs?: number): Promise<RawResponse>
  /** Resolves when the server (or we) closed the connection. */
  readonly closed: Promise<void>
  /** Everything received so far. */
  received(): string
}

export async function connect(port: number): Promise<RawConnection> {
  const socket = net.connect({ host: '127.0.0.1', port })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  let text = ''
  const waiting: (() => void)[] = []
  const wake = (): void => {
    for (const resolve of waiting.splice(0)) resolve()
  }
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    text += chunk
    wake()
  })
  socket.on('error', () => wake()) // a reset is a close for these tests
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  let isClosed = false
  void closed.then(() => {
    isClosed = true
    wake()
  })
  return {
    socket,
    write: (bytes) => void socket.write(bytes),
    async response(deadlineMs = 15_000) {
      const deadline = setTimeout(wake, deadlineMs)
      const started = Date.now()
      try {
        for (;;) {
          const parsed = parseRawResponse(text)
          if (parsed !== undefined) return parsed
          if (isClosed) throw new Error(`connection closed without a complete response: ${JSON.stringify(text.slice(0, 500))}`)
          if (Date.now() - started >= deadlineMs) throw new Error(`no response within ${deadlineMs} ms: ${JSON.stringify(text.slice(0, 500))}`)
          await new Promise<void>((resolve) => waiting.push(resolve))
        }
      } finally {
        clearTimeout(deadline)
      }
    },
    closed,
    received: () => text,
  }
}

/** One request on a fresh connection; the response it gets. */
export async function exchange(port: number, request: string | Buffer): Promise<RawResponse> {
  const connection = await connect(port)
  try {
    connection.write(request)
    return await connection.response()
  } finally {
    connection.socket.destroy()
  }
}

/** Asserts a v2 error body: `{errorCode, errorMessage}`, JSON, with the status given. */
export function assertV2Error(response: RawResponse, status: number, errorCode: string, messagePattern?: RegExp): void {
  assert.equal(response.status, status, `expected ${status} ${errorCode}, got ${response.status} ${response.body}`)
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/, `content-type of ${response.body}`)
  const body = JSON.parse(response.body) as Record<string, unknown>
  assert.equal(body.errorCode, errorCode, response.body)
  assert.equal(typeof body.errorMessage, 'string', response.body)
  if (messagePattern !== undefined) assert.match(body.errorMessage as string, messagePattern)
}

/** Polls `condition` until it holds or the deadline passes (no fixed sleeps). */
export async function eventually(condition: () => boolean | Promise<boolean>, what: string, deadlineMs = 10_000): Promise<void> {
  const deadline = Date.now() + deadlineMs
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`not within ${deadlineMs} ms: ${what}`)
    await new Promise<void>((resolve) => setTimeout(resolve, 10)) // a polling step, not a synchronisation
  }
}
