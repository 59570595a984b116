import http from 'node:http'
import https from 'node:https'
import { invariant } from '../domain/index.ts'

export interface HttpRequest {
  readonly method: string
  /** Path and query relative to the target, starting with `/`. */
  readonly path: string
  readonly body: string | undefined
}

export interface HttpResponse {
  readonly status: number
  readonly body: string
}

/** The runner's only I/O port: tests can substitute a scripted transport. */
export interface HttpTransport {
  send(request: HttpRequest): Promise<HttpResponse>
  close(): void
}

/** A request that got no HTTP answer: refused, reset, unresolvable or timed out. */
export class NetworkError extends Error {
  readonly code: string

  constructor(code: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'NetworkError'
    this.code = code
  }
}

export interface HttpTransportOptions {
  readonly target: URL
  /** Upper bound on open sockets: the sum of all workloads' concurrency. */
  readonly socketsMax: number
  readonly requestTimeoutMs: number
  /** Extra headers per request (a bearer token, renewed by its source). */
  readonly credentials?: () => Promise<Record<string, string>>
}

/**
 * node:http with one keep-alive agent for the whole run, so connection setup
 * is paid once per client rather than per request.
 */
export function createHttpTransport(options: HttpTransportOptions): HttpTransport {
  invariant(options.socketsMax > 0, 'socketsMax must be positive')
  invariant(options.requestTimeoutMs > 0, 'requestTimeoutMs must be positive')
  const secure = options.target.protocol === 'https:'
  invariant(secure || options.target.protocol === 'http:', `unsupported protocol ${options.target.protocol}`)
  const agentOptions = { keepAlive: true, maxSockets: options.socketsMax, maxFreeSockets: options.socketsMax }
  const agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions)
  const request = secure ? https.request : http.request
  const basePath = options.target.pathname.replace(/\/+$/, '')

  async function send(input: HttpRequest): Promise<HttpResponse> {
    invariant(input.path.startsWith('/'), `request path ${input.path} must start with /`)
    const credentials = options.credentials === undefined ? {} : await options.credentials()
    return new Promise<HttpResponse>((resolve, reject) => {
      const headers: Record<string, string | number> = { accept: 'application/json', ...credentials }
      if (input.body !== undefined) {
        headers['content-type'] = 'application/json'
        headers['content-length'] = Buffer.byteLength(input.body)
      }
      const outgoing = request(
        {
          protocol: options.target.protocol,
          hostname: options.target.hostname,
          port: options.target.port,
          method: input.method,
          path: basePath + input.path,
          headers,
          agent,
        },
        (incoming) => {
          const chunks: Buffer[] = []
          incoming.on('data', (chunk: Buffer) => chunks.push(chunk))
          incoming.on('error', (error: Error) => reject(toNetworkError(error)))
          incoming.on('end', () => {
            resolve({ status: incoming.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') })
          })
        },
      )
      outgoing.setTimeout(options.requestTimeoutMs, () => {
        outgoing.destroy(new NetworkError('TIMEOUT', `no answer within ${options.requestTimeoutMs} ms`))
      })
      outgoing.on('error', (error: Error) => reject(toNetworkError(error)))
      outgoing.end(input.body)
    })
  }

  return {
    send,
    close: () => agent.destroy(),
  }
}

function toNetworkError(error: Error): NetworkError {
  if (error instanceof NetworkError) return error
  const code = (error as NodeJS.ErrnoException).code ?? 'NETWORK'
  return new NetworkError(code, error.message, error)
}
