import assert from 'node:assert/strict'
import { SDK } from '@formance/formance-sdk'
import { ErrorsV2ErrorResponse } from '@formance/formance-sdk/sdk/models/ledger/index.js'
import type { V2Posting } from '@formance/formance-sdk/sdk/models/ledger/index.js'
import type { FastifyInstance } from 'fastify'
import { LedgerNode } from '../../src/server/index.ts'
import type { LedgerNodeOptions } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/index.ts'
import type { ApiOptions } from '../../src/api/index.ts'
import { tempDirectory } from '../support/temp.ts'

export type LedgerV2 = SDK['ledger']['v2']

/** A real Tally server on 127.0.0.1 (ephemeral port) and Formance's SDK pointed at it. */
export interface CompatServer {
  readonly url: string
  readonly sdk: SDK
  readonly v2: LedgerV2
  readonly node: LedgerNode
  readonly app: FastifyInstance
  close(): Promise<void>
}

/** Node settings a compatibility test may change (the rest are the defaults, without fsync). */
export interface CompatNodeOptions {
  readonly cacheRotationThreshold?: number
  /** Writes in flight stay unapplied for a whole WAL write (`LedgerNodeOptions.applyWhenDurable`): how a test overruns the cache horizon. */
  readonly applyWhenDurable?: boolean
  /** The WAL's file operations (`LedgerNodeOptions.walIo`), e.g. `test/support/held-wal.ts` to keep writes in flight. */
  readonly walIo?: LedgerNodeOptions['walIo']
  /** fdatasync the WAL (default false here): a hold on the fdatasync needs it. */
  readonly sync?: boolean
}

export async function openCompatServer(options: ApiOptions = {}, nodeOptions: CompatNodeOptions = {}): Promise<CompatServer> {
  const temp = tempDirectory('tally-compat-')
  const node = await LedgerNode.open({ dataDirectory: temp.directory, sync: false, ...nodeOptions })
  const app = await buildApi(node, options)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
  const sdk = new SDK({ serverURL: url })
  return {
    url,
    sdk,
    v2: sdk.ledger.v2,
    node,
    app,
    async close() {
      await app.close()
      await node.close()
      temp.remove()
    },
  }
}

/** Opens a server, runs `body`, always closes it. */
export async function withServer(body: (server: CompatServer) => Promise<void>, options: ApiOptions = {}, nodeOptions: CompatNodeOptions = {}): Promise<void> {
  const server = await openCompatServer(options, nodeOptions)
  try {
    await body(server)
  } finally {
    await server.close()
  }
}

/** Awaits `call`, which must fail with the SDK's typed v2 error of that status and code. */
export async function rejectsWithV2Error(
  call: Promise<unknown>,
  expected: { readonly status: number; readonly errorCode: string; readonly messageIncludes?: string },
): Promise<ErrorsV2ErrorResponse> {
  const outcome = await call.then(
    (value: unknown) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  )
  assert.ok(!outcome.ok, `expected ${expected.status} ${expected.errorCode}, the call succeeded`)
  const error = outcome.error
  assert.ok(error instanceof ErrorsV2ErrorResponse, `expected ErrorsV2ErrorResponse, got ${String(error)} ${error instanceof Error ? error.constructor.name : ''}`)
  assert.equal(error.statusCode, expected.status, error.body)
  assert.equal(error.errorCode, expected.errorCode, error.body)
  if (expected.messageIncludes !== undefined) assert.ok(error.errorMessage.includes(expected.messageIncludes), `${error.errorMessage} lacks ${expected.messageIncludes}`)
  return error
}

export function posting(source: string, destination: string, amount: bigint, asset = 'USD/2'): V2Posting {
  return { source, destination, amount, asset }
}

/** The value of a response header as the SDK exposes it (`{name: [values]}`). */
export function headerOf(headers: Readonly<Record<string, readonly string[]>>, name: string): string | undefined {
  return headers[name.toLowerCase()]?.join(', ')
}

/** Unwraps an optional field the SDK types as possibly undefined. */
export function present<T>(value: T | undefined | null, what: string): T {
  assert.ok(value !== undefined && value !== null, `${what} is missing`)
  return value
}
