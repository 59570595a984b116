import { BearerToken, credentialsHelp } from './credentials.ts'
import { createReadStream, statSync } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { parseArgs } from 'node:util'
import { TallyError, parseLedgerName } from '../domain/index.ts'
import { SchemaVersionMismatch } from '../store/index.ts'
import { LedgerNode } from '../server/index.ts'
import { cacheRotationThresholdDefault } from '../cache/index.ts'
import { NoDataDirectory, StoreInUse, importLogStream, isLockError, openStoreForTool, rotationThresholdOf, storeDirectoryOf } from '../check/index.ts'
import { progressLine } from './progress-line.ts'
import { existsSync } from 'node:fs'

const usage = `Usage: tally import --ledger L [--data DIR | --target URL] [--in FILE]

Replays a Formance v2 log stream (JSON lines, as tally export or v2's export
write them, or one JSON array) into an empty ledger L, created when missing,
through the normal write pipeline. Every log's hash is verified against the
v2 chain recomputed so far; the first mismatch stops the import (exit 1)
with the ledger holding exactly the logs before it.

Options (each also read from the environment variable shown):
  --ledger L                      the ledger to import into (required)
  --data DIR                      data directory, offline   [TALLY_DATA, default ./data]
  --target URL                    a running server: POST URL/v2/L/logs/import  [TALLY_TARGET]
  --in FILE                       the log stream            [default: stdin]
  --cache-rotation-threshold K    only for a new data directory (an existing one keeps its own)
  -h, --help                      show this help

${credentialsHelp}
`

export async function importCommand(argv: string[]): Promise<number> {
  let values: { ledger?: string | undefined; data?: string | undefined; target?: string | undefined; in?: string | undefined; 'cache-rotation-threshold'?: string | undefined; help?: boolean | undefined }
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: {
        ledger: { type: 'string' },
        data: { type: 'string' },
        target: { type: 'string' },
        in: { type: 'string' },
        'cache-rotation-threshold': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }))
    if (values.help !== true) parseLedgerName(values.ledger, '--ledger')
  } catch (error) {
    process.stderr.write(`tally import: ${(error as Error).message}\n\n${usage}`)
    return 2
  }
  if (values.help === true) {
    process.stdout.write(usage)
    return 0
  }
  const ledger = parseLedgerName(values.ledger, '--ledger')
  const input: Readable = values.in === undefined ? process.stdin : createReadStream(values.in, { highWaterMark: 1024 * 1024 })
  const target = values.target ?? (values.data === undefined ? process.env.TALLY_TARGET : undefined)
  try {
    if (target !== undefined && target !== '') return await importRemote(target, ledger, input, values.in)
    return await importLocal(path.resolve(values.data ?? process.env.TALLY_DATA ?? 'data'), ledger, input, values['cache-rotation-threshold'])
  } catch (error) {
    if (error instanceof StoreInUse || error instanceof NoDataDirectory || error instanceof SchemaVersionMismatch) {
      process.stderr.write(`tally import: ${error.message}\n`)
      return 2
    }
    if (error instanceof TallyError) {
      process.stderr.write(`tally import: ${error.code}: ${error.message}\n`)
      return 1
    }
    throw error
  }
}

async function importLocal(dataDirectory: string, ledger: string, input: Readable, thresholdFlag: string | undefined): Promise<number> {
  const whenInUse = `POST /v2/${ledger}/logs/import on that server, or tally import --target http://HOST:PORT`
  // An existing store keeps its rotation threshold: opening it with another one would log a settings change (ADR 0007).
  let threshold = thresholdFlag === undefined ? cacheRotationThresholdDefault : Number(thresholdFlag)
  if (!Number.isSafeInteger(threshold) || threshold < 1) throw new TallyError({ code: 'VALIDATION', kind: 'validation', message: '--cache-rotation-threshold: expected a positive integer' })
  if (existsSync(path.join(storeDirectoryOf(dataDirectory), 'CURRENT'))) {
    const store = await openStoreForTool(dataDirectory, whenInUse)
    threshold = (await rotationThresholdOf(store)) ?? threshold
    await store.close()
  }
  let node: LedgerNode
  try {
    node = await LedgerNode.open({ dataDirectory, cacheRotationThreshold: threshold })
  } catch (error) {
    if (isLockError(error)) throw new StoreInUse(dataDirectory, whenInUse)
    throw error
  }
  const progress = progressLine()
  const started = Date.now()
  try {
    const summary = await importLogStream(node, ledger as never, input as AsyncIterable<Buffer>, {
      onProgress: ({ logs }) => progress.update({ label: 'import', done: logs, total: null, rate: (logs * 1000) / Math.max(1, Date.now() - started), etaSeconds: null, unit: 'logs' }),
    })
    progress.done()
    process.stderr.write(`import: ${summary.logs} logs into ledger ${ledger} in ${((Date.now() - started) / 1000).toFixed(1)}s, last hash ${summary.lastHash || '(none)'}\n`)
    return 0
  } finally {
    progress.done()
    await node.close()
  }
}

async function importRemote(target: string, ledger: string, input: Readable, file: string | undefined): Promise<number> {
  const url = new URL(`/v2/${ledger}/logs/import`, target)
  const total = file === undefined ? null : statSync(file).size
  const progress = progressLine()
  const started = Date.now()
  let sent = 0
  input.on('data', (chunk: Buffer) => {
    sent += chunk.length
    const rate = (sent * 1000) / Math.max(1, Date.now() - started)
    progress.update({ label: 'import upload', done: sent, total, rate, etaSeconds: total === null || rate === 0 ? null : (total - sent) / rate, unit: 'bytes' })
  })
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', ...((await BearerToken.fromEnvironment(process.env, target)?.headers()) ?? {}) },
    body: Readable.toWeb(input) as ReadableStream,
    duplex: 'half',
  } as RequestInit)
  progress.done()
  if (response.status === 204) {
    process.stderr.write(`import: ${response.headers.get('tally-imported-logs') ?? '?'} logs into ledger ${ledger}\n`)
    return 0
  }
  process.stderr.write(`tally import: ${url.href} answered ${response.status}: ${await response.text()}\n`)
  return 1
}
