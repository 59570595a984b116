import { BearerToken, credentialsHelp } from './credentials.ts'
import { createWriteStream } from 'node:fs'
import { once } from 'node:events'
import path from 'node:path'
import { parseArgs } from 'node:util'
import type { Writable } from 'node:stream'
import { TallyError, parseLedgerName } from '../domain/index.ts'
import { SchemaVersionMismatch } from '../store/index.ts'
import { NoDataDirectory, StoreInUse, exportLogChunks, exportWriteQueueBytes, openStoreForTool } from '../check/index.ts'
import { progressLine } from './progress-line.ts'

const usage = `Usage: tally export --ledger L [--data DIR | --target URL] [--out FILE]

Writes a ledger's Formance v2 logs, oldest first, one JSON object a line
(v2's export format, hashes included) to FILE or stdout.

Options (each also read from the environment variable shown):
  --ledger L      the ledger to export (required)
  --data DIR      data directory, read offline        [TALLY_DATA, default ./data]
  --target URL    a running server: POST URL/v2/L/logs/export  [TALLY_TARGET]
  --out FILE      output file                          [default: stdout]
  -h, --help      show this help

${credentialsHelp}
`

export async function exportCommand(argv: string[]): Promise<number> {
  let values: { ledger?: string | undefined; data?: string | undefined; target?: string | undefined; out?: string | undefined; help?: boolean | undefined }
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: { ledger: { type: 'string' }, data: { type: 'string' }, target: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }))
    if (values.help !== true) parseLedgerName(values.ledger, '--ledger')
  } catch (error) {
    process.stderr.write(`tally export: ${(error as Error).message}\n\n${usage}`)
    return 2
  }
  if (values.help === true) {
    process.stdout.write(usage)
    return 0
  }
  const ledger = parseLedgerName(values.ledger, '--ledger')
  const out: Writable = values.out === undefined ? process.stdout : createWriteStream(values.out, { highWaterMark: exportWriteQueueBytes })
  const target = values.target ?? (values.data === undefined ? process.env.TALLY_TARGET : undefined)
  const progress = progressLine()
  let logs = 0
  const started = Date.now()
  const write = async (bytes: Buffer): Promise<void> => {
    if (!out.write(bytes)) await once(out, 'drain')
  }
  try {
    if (target !== undefined && target !== '') {
      const url = new URL(`/v2/${ledger}/logs/export`, target)
      const bearer = BearerToken.fromEnvironment(process.env, target)
      const response = await fetch(url, { method: 'POST', headers: (await bearer?.headers()) ?? {} })
      if (!response.ok || response.body === null) {
        process.stderr.write(`tally export: ${url.href} answered ${response.status}: ${await response.text()}\n`)
        return 1
      }
      for await (const chunk of response.body) await write(Buffer.from(chunk as Uint8Array))
    } else {
      const store = await openStoreForTool(path.resolve(values.data ?? process.env.TALLY_DATA ?? 'data'), `POST /v2/${ledger}/logs/export on that server, or tally export --target http://HOST:PORT`)
      try {
        for await (const chunk of exportLogChunks(store, ledger)) {
          await write(chunk.bytes)
          logs += chunk.logs
          if (out !== process.stdout) progress.update({ label: 'export', done: logs, total: null, rate: (logs * 1000) / Math.max(1, Date.now() - started), etaSeconds: null, unit: 'logs' })
        }
      } finally {
        await store.close()
      }
    }
    if (out !== process.stdout) {
      out.end()
      await once(out, 'finish')
    }
    progress.done()
    if (out !== process.stdout) process.stderr.write(`export: ${logs === 0 && target !== undefined ? 'done' : `${logs} logs`} → ${values.out}\n`)
    return 0
  } catch (error) {
    progress.done()
    if (error instanceof StoreInUse || error instanceof NoDataDirectory || error instanceof SchemaVersionMismatch || error instanceof TallyError) {
      process.stderr.write(`tally export: ${error.message}\n`)
      return error instanceof TallyError && error.kind === 'not_found' ? 1 : 2
    }
    throw error
  }
}
