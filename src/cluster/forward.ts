/**
 * Writes sent to a replica are forwarded to the primary (docs/cluster.md,
 * "Writes on a replica"), so a Formance SDK pointed at any node works: the
 * request — method, path, query, headers (Authorization and
 * Idempotency-Key included), body — goes as it came to the primary's HTTP
 * address, and the primary's answer comes back as it was sent. The body is
 * streamed, never buffered here; the primary applies its own limits.
 *
 * Forwarded once only (the `Tally-Forwarded-By` header): a request that
 * reaches a replica already forwarded is answered there (503 NOT_PRIMARY),
 * so two nodes with different views never bounce a write between them. A
 * replica that knows no primary answers 503 NOT_PRIMARY itself. A forward
 * that fails after the body left is of unknown outcome: 503, retry with the
 * same idempotency key.
 */
import http from 'node:http'
import https from 'node:https'
import type { FastifyInstance, FastifyRequest } from 'fastify'

export const forwardedByHeader = 'tally-forwarded-by'

export interface WriteForwarding {
  readonly nodeId: string
  /** The primary's HTTP address (`host:port`) while this node is a replica that knows it; undefined otherwise. */
  primaryAddress(): string | undefined
  /** https when the cluster serves TLS (the primary's certificate must then be valid for its address). */
  readonly scheme?: 'http' | 'https'
  /** The whole forwarded exchange must end within this (default 30 s). */
  readonly timeoutMs?: number
  /**
   * Why this node, the primary, cannot acknowledge a write now (its lease
   * cannot be renewed: etcd unreachable, or it is being deposed); undefined
   * when it can. Such a write is refused before it is logged: 503 +
   * Retry-After, nothing to lose.
   */
  refusal?(): string | undefined
}

const readMethods = new Set(['GET', 'HEAD', 'OPTIONS'])
/** Hop-by-hop headers (RFC 9110 §7.6.1) are not passed on. */
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host'])

/** A write of the ledger API: any method but GET/HEAD/OPTIONS under `/v2` (or the gateway's `/api/ledger/v2`). */
export function isLedgerWrite(request: Pick<FastifyRequest, 'method' | 'url'>): boolean {
  if (readMethods.has(request.method)) return false
  const path = request.url.split('?', 1)[0] as string
  return path === '/v2' || path.startsWith('/v2/') || path === '/api/ledger/v2' || path.startsWith('/api/ledger/v2/')
}

export function forwardWritesToPrimary(app: FastifyInstance, forwarding: WriteForwarding): void {
  app.addHook('onRequest', async (request, reply) => {
    if (!isLedgerWrite(request)) return
    const refusal = forwarding.refusal?.()
    if (refusal !== undefined) {
      void reply.header('Retry-After', '1')
      return reply.code(503).send({ errorCode: 'INTERNAL', errorMessage: `NOT_PRIMARY: ${refusal}; retry`, details: { reason: 'NOT_PRIMARY', retryable: 'true' } })
    }
    if (request.headers[forwardedByHeader] !== undefined) return
    const target = forwarding.primaryAddress()
    if (target === undefined) return
    reply.hijack()
    await forward(request, reply.raw, target, forwarding)
    return reply
  })
}

function forward(request: FastifyRequest, response: http.ServerResponse, target: string, forwarding: WriteForwarding): Promise<void> {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(target)
  const headers: http.OutgoingHttpHeaders = {}
  for (const [name, value] of Object.entries(request.headers)) if (!hopByHop.has(name) && value !== undefined) headers[name] = value
  headers[forwardedByHeader] = forwarding.nodeId
  headers['x-request-id'] = request.id
  return new Promise<void>((resolve) => {
    let bodySent = false
    const fail = (why: string): void => {
      if (!response.headersSent) {
        const unknown = bodySent ? ' — the write may or may not have been applied: retry with the same idempotency key' : ''
        const body = JSON.stringify({ errorCode: 'INTERNAL', errorMessage: `NOT_PRIMARY: forwarding to the primary at ${target} failed: ${why}${unknown}`, details: { reason: 'NOT_PRIMARY', retryable: 'true' } })
        response.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1', 'content-length': Buffer.byteLength(body), 'x-request-id': request.id })
        response.end(body)
      } else response.destroy()
      resolve()
    }
    if (match === null) {
      fail('the primary registered a malformed address')
      return
    }
    const transport = forwarding.scheme === 'https' ? https : http
    const upstream = transport.request(
      { host: match[1] ?? match[2], port: Number(match[3]), method: request.method, path: request.url, headers, timeout: forwarding.timeoutMs ?? 30_000 },
      (answer) => {
        const passed: http.OutgoingHttpHeaders = {}
        for (const [name, value] of Object.entries(answer.headers)) if (!hopByHop.has(name) && value !== undefined) passed[name] = value
        response.writeHead(answer.statusCode ?? 502, passed)
        answer.pipe(response)
        answer.once('end', () => resolve())
        answer.once('error', () => fail('the answer broke off'))
      },
    )
    upstream.once('timeout', () => upstream.destroy(new Error('timed out')))
    upstream.once('error', (error) => fail(error.message))
    request.raw.once('end', () => {
      bodySent = true
    })
    request.raw.once('error', () => upstream.destroy())
    response.once('close', () => {
      if (!response.writableFinished) upstream.destroy()
    })
    request.raw.pipe(upstream)
  })
}
