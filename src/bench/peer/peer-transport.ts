import type pg from 'pg'
import { invariant } from '../../domain/index.ts'
import type { HttpRequest, HttpResponse, HttpTransport } from '../http.ts'
import { transferBatch, transferOne, type PeerTransfer } from './postgres-ledger.ts'

/**
 * The Postgres peer behind the bench's transport port, so the very same
 * workloads, clients, stop conditions and accounting drive both ledgers:
 * `POST …/transactions` becomes one `peer_transfer` call, `POST …/_bulk` one
 * `peer_transfer_batch` call, and the answer is shaped as Tally's (200, or
 * 400 with per-element results) for the workload's classifier.
 *
 * The peer is driven directly over the PostgreSQL protocol, without an HTTP
 * service in front: that favours the peer (no JSON or HTTP cost on its side),
 * which is the safe direction for a comparison Tally must win.
 */
export function createPeerTransport(pool: pg.Pool): HttpTransport {
  async function send(request: HttpRequest): Promise<HttpResponse> {
    if (request.method === 'POST' && /^\/v2\/[^/]+$/.test(request.path)) return { status: 204, body: '' }
    invariant(request.method === 'POST' && request.body !== undefined, `the peer serves POST writes only, not ${request.method} ${request.path}`)
    const [pathname = '', query = ''] = request.path.split('?')
    if (pathname.endsWith('/_bulk')) {
      const elements = JSON.parse(request.body) as { action: string; data: unknown }[]
      invariant(Array.isArray(elements), 'a bulk body is an array')
      const transfers = elements.map((element) => {
        invariant(element.action === 'CREATE_TRANSACTION', `the peer runs CREATE_TRANSACTION elements, not ${element.action}`)
        return peerTransferOf(element.data, false)
      })
      const ids = await transferBatch(pool, transfers)
      const failed = ids.some((id) => id === undefined)
      const results = ids.map((id) =>
        id === undefined
          ? '{"responseType":"ERROR","errorCode":"INSUFFICIENT_FUND"}'
          : `{"responseType":"CREATE_TRANSACTION","data":{"id":${id}}}`,
      )
      return { status: failed ? 400 : 200, body: `{"data":[${results.join(',')}]}` }
    }
    invariant(pathname.endsWith('/transactions'), `the peer does not serve ${request.path}`)
    const id = await transferOne(pool, peerTransferOf(JSON.parse(request.body), /(^|&)force=true(&|$)/.test(query)))
    return id === undefined
      ? { status: 400, body: '{"errorCode":"INSUFFICIENT_FUND","errorMessage":"insufficient funds"}' }
      : { status: 200, body: `{"data":{"id":${id}}}` }
  }
  return { send, close: () => undefined }
}

/** The bench's one-posting `V2PostTransaction` body as a peer transfer. */
export function peerTransferOf(data: unknown, forceFromQuery: boolean): PeerTransfer {
  invariant(data !== null && typeof data === 'object', 'a transaction body is an object')
  const body = data as { postings?: unknown; force?: unknown }
  invariant(Array.isArray(body.postings) && body.postings.length === 1, 'the peer runs one-posting transactions')
  const posting = body.postings[0] as { source: unknown; destination: unknown; amount: unknown; asset: unknown }
  invariant(typeof posting.source === 'string' && typeof posting.destination === 'string', 'posting accounts are strings')
  invariant(typeof posting.asset === 'string', 'a posting asset is a string')
  invariant(typeof posting.amount === 'number' && Number.isSafeInteger(posting.amount), 'bench amounts are safe integers')
  return {
    source: posting.source,
    destination: posting.destination,
    amount: BigInt(posting.amount),
    asset: posting.asset,
    force: forceFromQuery || body.force === true,
  }
}
