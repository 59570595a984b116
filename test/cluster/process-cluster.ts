// Shared by the tests that run real `tally serve --cluster` processes
// (serve-cluster, bank, acceptance): free ports, JSON calls with a deadline,
// a node's `/_/cluster` view, and account balances.
import assert from 'node:assert/strict'
import net from 'node:net'
import type { ServerProcess } from '../support/server-process.ts'
import { until } from './helpers.ts'

export interface ClusterView {
  role: string
  epoch: number
  appliedIndex: number
  committedLsn: number
  caughtUp: boolean
  primaryId?: string
  stateHash?: { index: number; hash: string }
}

export interface Reply {
  status: number
  headers: Headers
  json: unknown
}

export async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  assert.ok(address !== null && typeof address === 'object')
  return address.port
}

export async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<Reply> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(timeoutMs),
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, json: text === '' ? undefined : JSON.parse(text) }
}

/** A write to a primary that may not hold its lease yet (just promoted): 503 is retried until the deadline. */
export async function writeOnPrimary(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return until(`a write to ${path} accepted`, async () => {
    const reply = await call(base, 'POST', path, body, headers).catch(() => undefined)
    return reply === undefined || reply.status === 503 ? undefined : reply
  })
}

/** The node's `/_/cluster` view; undefined when it is not running or does not answer. */
export async function clusterView(server: ServerProcess | undefined): Promise<ClusterView | undefined> {
  if (server === undefined) return undefined
  try {
    const reply = await call(server.baseUrl, 'GET', '/_/cluster', undefined, {}, 3_000)
    return reply.status === 200 ? (reply.json as ClusterView) : undefined
  } catch {
    return undefined
  }
}

export async function balance(base: string, ledger: string, account: string, minIndex: number): Promise<bigint> {
  const reply = await call(base, 'GET', `/v2/${ledger}/accounts/${account}?expand=volumes`, undefined, { 'Tally-Min-Applied-Index': String(minIndex) })
  if (reply.status === 404) return 0n
  assert.equal(reply.status, 200, JSON.stringify(reply.json))
  const volumes = (reply.json as { data: { volumes?: Record<string, { balance: number }> } }).data.volumes ?? {}
  return BigInt(volumes.USD?.balance ?? 0)
}
