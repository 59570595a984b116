import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { isJsonObject, parseJson, type Json } from '../../src/domain/index.ts'

/**
 * A tiny Formance v2 stand-in for the bench tests: it counts requests,
 * checks every body is a valid v2 payload with integer (bigint) amounts, and
 * fails on a schedule. Binds to 127.0.0.1 on an ephemeral port.
 */
export interface FakeServerOptions {
  /** Every n-th POST /transactions answers 400 INSUFFICIENT_FUND. */
  readonly failTransactionEvery?: number
  /** Every n-th bulk element answers an ERROR element (and the bulk 400). */
  readonly failElementEvery?: number
  /** Ledger creation answers 400 LEDGER_ALREADY_EXISTS from the start. */
  readonly ledgerExists?: boolean
  /** Ledger creation answers this status with a non-v2 body. */
  readonly ledgerCreateStatus?: number
}

export interface FakeServer {
  readonly url: string
  readonly stats: {
    ledgerCreates: number
    transactionRequests: number
    bulkRequests: number
    bulkElementCounts: number[]
    transactionsReceived: number
    forcedTransactions: number
    forceQueryRequests: number
    accounts: Set<string>
    accountReads: number
    invalid: string[]
    other: string[]
  }
  close(): Promise<void>
}

const address = /^[a-zA-Z0-9_-]+(:[a-zA-Z0-9_-]+)*$/

/** Returns a problem description, or undefined when `data` is a valid V2PostTransaction with postings. */
export function checkTransactionData(data: Json | undefined): string | undefined {
  if (!isJsonObject(data)) return 'data is not an object'
  const postings = data['postings']
  if (!Array.isArray(postings) || postings.length === 0) return 'postings missing'
  if (!isJsonObject(data['metadata'] ?? null)) return 'metadata missing'
  const force = data['force']
  if (force !== undefined && typeof force !== 'boolean') return 'force is not a boolean'
  for (const posting of postings) {
    if (!isJsonObject(posting)) return 'posting is not an object'
    const { source, destination, amount, asset } = posting
    if (typeof source !== 'string' || !address.test(source)) return `bad source ${String(source)}`
    if (typeof destination !== 'string' || !address.test(destination)) return `bad destination ${String(destination)}`
    if (typeof amount !== 'bigint') return `amount ${String(amount)} is not an integer`
    if (amount <= 0n) return `amount ${amount} is not positive`
    if (asset !== 'USD/2') return `bad asset ${String(asset)}`
    if (source !== 'world' && force !== true) return 'a user-to-user transfer without force'
    if (source === destination) return 'source equals destination'
  }
  return undefined
}

export async function startFakeServer(options: FakeServerOptions = {}): Promise<FakeServer> {
  const stats: FakeServer['stats'] = {
    ledgerCreates: 0,
    transactionRequests: 0,
    bulkRequests: 0,
    bulkElementCounts: [],
    transactionsReceived: 0,
    forcedTransactions: 0,
    forceQueryRequests: 0,
    accounts: new Set(),
    accountReads: 0,
    invalid: [],
    other: [],
  }
  let ledgerExists = options.ledgerExists === true
  let transactionId = 0
  let elementsSeen = 0

  function noteTransaction(data: Json | undefined): void {
    stats.transactionsReceived += 1
    if (isJsonObject(data)) {
      if (data['force'] === true) stats.forcedTransactions += 1
      for (const posting of (data['postings'] as Json[]) ?? []) {
        if (isJsonObject(posting)) {
          stats.accounts.add(String(posting['source']))
          stats.accounts.add(String(posting['destination']))
        }
      }
    }
  }

  function reply(response: http.ServerResponse, status: number, body?: unknown): void {
    if (body === undefined) {
      response.writeHead(status).end()
      return
    }
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  }

  function handle(method: string, url: URL, text: string, response: http.ServerResponse): void {
    const parts = url.pathname.split('/').filter((part) => part.length > 0)
    if (method === 'POST' && parts.length === 2 && parts[0] === 'v2') {
      stats.ledgerCreates += 1
      if (options.ledgerCreateStatus !== undefined) return reply(response, options.ledgerCreateStatus, { message: 'nope' })
      if (ledgerExists) return reply(response, 400, { errorCode: 'LEDGER_ALREADY_EXISTS', errorMessage: 'ledger already exists' })
      ledgerExists = true
      return reply(response, 204)
    }
    if (!ledgerExists) return reply(response, 404, { errorCode: 'LEDGER_NOT_FOUND', errorMessage: 'no ledger' })
    if (method === 'POST' && parts.length === 3 && parts[2] === 'transactions') {
      stats.transactionRequests += 1
      if (url.searchParams.get('force') === 'true') stats.forceQueryRequests += 1
      const data = parseJson(text)
      const problem = checkTransactionData(data)
      if (problem !== undefined) {
        stats.invalid.push(problem)
        return reply(response, 400, { errorCode: 'VALIDATION', errorMessage: problem })
      }
      noteTransaction(data)
      if (options.failTransactionEvery !== undefined && stats.transactionRequests % options.failTransactionEvery === 0) {
        return reply(response, 400, { errorCode: 'INSUFFICIENT_FUND', errorMessage: 'not enough' })
      }
      transactionId += 1
      return reply(response, 200, { data: { id: transactionId, postings: [], metadata: {} } })
    }
    if (method === 'POST' && parts.length === 3 && parts[2] === '_bulk') {
      stats.bulkRequests += 1
      if (url.searchParams.get('atomic') !== 'false') stats.invalid.push('bulk without atomic=false')
      const elements = parseJson(text)
      if (!Array.isArray(elements)) {
        stats.invalid.push('bulk body is not an array')
        return reply(response, 400, { errorCode: 'VALIDATION', errorMessage: 'not an array' })
      }
      stats.bulkElementCounts.push(elements.length)
      let failed = false
      const results = elements.map((element, logID) => {
        if (!isJsonObject(element) || element['action'] !== 'CREATE_TRANSACTION') {
          stats.invalid.push('bulk element is not CREATE_TRANSACTION')
          failed = true
          return { responseType: 'ERROR', logID, errorCode: 'VALIDATION', errorDescription: 'bad element' }
        }
        const problem = checkTransactionData(element['data'])
        if (problem !== undefined) stats.invalid.push(problem)
        noteTransaction(element['data'])
        elementsSeen += 1
        if (options.failElementEvery !== undefined && elementsSeen % options.failElementEvery === 0) {
          failed = true
          return { responseType: 'ERROR', logID, errorCode: 'INSUFFICIENT_FUND', errorDescription: 'not enough' }
        }
        transactionId += 1
        return { responseType: 'CREATE_TRANSACTION', logID, data: { id: transactionId } }
      })
      return reply(response, failed ? 400 : 200, { data: results })
    }
    if (method === 'GET' && parts.length === 4 && parts[2] === 'accounts') {
      // An account exists once a posting named it, as in a ledger.
      const account = decodeURIComponent(parts[3] as string)
      stats.accountReads += 1
      if (stats.accounts.has(account)) return reply(response, 200, { data: { address: account, metadata: {} } })
      return reply(response, 404, { errorCode: 'NOT_FOUND', errorMessage: `account ${account} not found` })
    }
    stats.other.push(`${method} ${url.pathname}`)
    return reply(response, 404, { errorCode: 'NOT_FOUND', errorMessage: 'no route' })
  }

  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      try {
        handle(request.method ?? 'GET', new URL(request.url ?? '/', 'http://fake'), Buffer.concat(chunks).toString('utf8'), response)
      } catch (error) {
        stats.invalid.push(error instanceof Error ? error.message : String(error))
        reply(response, 400, { errorCode: 'VALIDATION', errorMessage: 'unparseable' })
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((error) => (error ? reject(error) : resolve()))
      }),
  }
}
