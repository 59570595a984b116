import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/app.ts'
import type { ApiOptions } from '../../src/api/app.ts'
import { parseJson } from '../../src/domain/index.ts'
import type { Json } from '../../src/domain/index.ts'
import { tempDirectory } from './temp.ts'

/** One HTTP exchange as a test sees it: status, headers, the raw text and the lossless body. */
export interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | number | undefined>>
  readonly text: string
  /** `parseJson(text)`; `null` for an empty body. */
  readonly body: Json
}

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE'

export interface TestApi {
  readonly app: FastifyInstance
  readonly node: LedgerNode
  /** `body` is sent as is when a string, through `JSON.stringify` otherwise (no bigints there). */
  request(method: Method, url: string, body?: unknown, headers?: Record<string, string>): Promise<Reply>
  close(): Promise<void>
}

/** A fresh node in a temp directory behind `buildApi`, driven with `inject` (no network). */
export async function openTestApi(options: ApiOptions = {}): Promise<TestApi> {
  const temp = tempDirectory('tally-api-')
  const node = await LedgerNode.open({ dataDirectory: temp.directory, sync: false })
  const app = await buildApi(node, options)
  return {
    app,
    node,
    async request(method, url, body, headers = {}) {
      const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
      const response = await app.inject({
        method,
        url,
        ...(payload === undefined ? { headers } : { payload, headers: { 'content-type': 'application/json', ...headers } }),
      })
      const text = response.body
      return { status: response.statusCode, headers: response.headers, text, body: text === '' ? null : parseJson(text) }
    },
    async close() {
      await app.close()
      await node.close()
      temp.remove()
    },
  }
}

// ---- reading lossless JSON without `any` ------------------------------------------

export type JsonObject = { [key: string]: Json }

export function asObject(value: Json | undefined, what = 'value'): JsonObject {
  assert.ok(value !== null && value !== undefined && typeof value === 'object' && !Array.isArray(value), `${what}: expected an object, got ${show(value)}`)
  return value
}

export function asArray(value: Json | undefined, what = 'value'): Json[] {
  assert.ok(Array.isArray(value), `${what}: expected an array, got ${show(value)}`)
  return value
}

export function asString(value: Json | undefined, what = 'value'): string {
  assert.equal(typeof value, 'string', `${what}: expected a string, got ${show(value)}`)
  return value as string
}

export function asBigint(value: Json | undefined, what = 'value'): bigint {
  assert.equal(typeof value, 'bigint', `${what}: expected an integer, got ${show(value)}`)
  return value as bigint
}

/** `at(json, 'data', 'postings', 0, 'amount')`: a path that must exist. */
export function at(value: Json | undefined, ...path: (string | number)[]): Json {
  let current: Json | undefined = value
  const walked: string[] = []
  for (const step of path) {
    walked.push(String(step))
    if (typeof step === 'number') current = asArray(current, walked.join('.'))[step]
    else current = asObject(current, walked.slice(0, -1).join('.') || 'body')[step]
    assert.ok(current !== undefined, `missing ${walked.join('.')} in ${show(value)}`)
  }
  return current as Json
}

export function show(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, entry: unknown) => (typeof entry === 'bigint' ? `${entry}n` : entry))?.slice(0, 2000) ?? String(value)
  } catch {
    return String(value)
  }
}

/** Asserts a v2 error reply: status, errorCode, and optionally a message fragment. */
export function assertError(reply: Reply, status: number, errorCode: string, messageIncludes?: string | RegExp): void {
  assert.equal(reply.status, status, `expected ${status} ${errorCode}, got ${reply.status} ${reply.text}`)
  const body = asObject(reply.body, 'error body')
  assert.equal(body.errorCode, errorCode, reply.text)
  const message = asString(body.errorMessage, 'errorMessage')
  if (typeof messageIncludes === 'string') assert.ok(message.includes(messageIncludes), `message ${JSON.stringify(message)} lacks ${JSON.stringify(messageIncludes)}`)
  else if (messageIncludes !== undefined) assert.match(message, messageIncludes)
}

export function assertStatus(reply: Reply, status: number): void {
  assert.equal(reply.status, status, `expected ${status}, got ${reply.status} ${reply.text}`)
}

// ---- common requests ---------------------------------------------------------------

export interface PostingInput {
  readonly source: string
  readonly destination: string
  /** A decimal string is written as a bare JSON number, so amounts beyond 2^53 stay exact. */
  readonly amount: bigint | number
  readonly asset: string
}

/** A v2 transaction body as text, amounts as exact JSON numbers. */
export function transactionBody(postings: readonly PostingInput[], extra: Record<string, unknown> = {}): string {
  const postingsText = postings
    .map((p) => `{"source":${JSON.stringify(p.source)},"destination":${JSON.stringify(p.destination)},"amount":${p.amount.toString()},"asset":${JSON.stringify(p.asset)}}`)
    .join(',')
  const extraText = Object.entries(extra)
    .map(([key, value]) => `,${JSON.stringify(key)}:${JSON.stringify(value)}`)
    .join('')
  return `{"postings":[${postingsText}]${extraText}}`
}

export async function createLedger(api: TestApi, name: string): Promise<void> {
  assertStatus(await api.request('POST', `/v2/${name}`), 204)
}

export async function postTransaction(api: TestApi, ledger: string, postings: readonly PostingInput[], extra: Record<string, unknown> = {}): Promise<JsonObject> {
  const reply = await api.request('POST', `/v2/${ledger}/transactions`, transactionBody(postings, extra))
  assertStatus(reply, 200)
  return asObject(at(reply.body, 'data'))
}

/** Balance of one account in one asset as the account route reports it; 0 for an unknown account. */
export async function balanceOf(api: TestApi, ledger: string, address: string, asset: string): Promise<bigint> {
  const reply = await api.request('GET', `/v2/${ledger}/accounts/${address}?expand=volumes`)
  if (reply.status === 404) return 0n
  assertStatus(reply, 200)
  const volumes = asObject(at(reply.body, 'data', 'volumes'))
  const entry = volumes[asset]
  return entry === undefined ? 0n : asBigint(at(entry, 'balance'))
}

/** `url` with its pageSize and cursor replaced by `cursor`; other query parameters (expand…) kept. */
export function withCursor(url: string, cursor: string): string {
  const [path, query = ''] = url.split('?') as [string, string | undefined]
  const params = new URLSearchParams(query)
  params.delete('pageSize')
  params.set('cursor', cursor)
  return `${path}?${params.toString()}`
}

/** Follows `next` cursors to the end; returns every item of every page, in order. */
export async function walkForward(api: TestApi, url: string, filter?: unknown): Promise<{ items: Json[]; pages: JsonObject[] }> {
  const pages: JsonObject[] = []
  const items: Json[] = []
  let reply = await api.request('GET', url, filter)
  for (let guard = 0; guard < 10_000; guard++) {
    assertStatus(reply, 200)
    const cursor = asObject(at(reply.body, 'cursor'))
    pages.push(cursor)
    items.push(...asArray(cursor.data))
    if (typeof cursor.next !== 'string') return { items, pages }
    reply = await api.request('GET', withCursor(url, cursor.next))
  }
  assert.fail('paging did not end')
}

/** Everything observable about a ledger's state, to check that a refused request changed nothing. */
export async function ledgerSnapshot(api: TestApi, ledger: string): Promise<string> {
  const transactions = await walkForward(api, `/v2/${ledger}/transactions?pageSize=1000`)
  const accounts = await walkForward(api, `/v2/${ledger}/accounts?pageSize=1000&expand=volumes`)
  const logs = await walkForward(api, `/v2/${ledger}/logs?pageSize=1000`)
  const info = await api.request('GET', `/v2/${ledger}`)
  return show({ transactions: transactions.items, accounts: accounts.items, logs: logs.items, ledger: info.body })
}
