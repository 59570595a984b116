import { BearerToken, credentialsHelp } from './credentials.ts'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { TallyError, parseLedgerName } from '../domain/index.ts'
import { SchemaVersionMismatch } from '../store/index.ts'
import { NoDataDirectory, StoreInUse, exportLogChunks, exportWriteQueueBytes, openStoreForTool } from '../check/index.ts'
import { progressLine } from './progress-line.ts'
import { ExportOutputFailed, openExportOutput } from './export-output.ts'

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
  const out = openExportOutput(values.out, exportWriteQueueBytes)
  const target = values.target ?? (values.data === undefined ? process.env.TALLY_TARGET : undefined)
  const progress = progressLine()
  let logs = 0
  const started = Date.now()
  const write = (bytes: Buffer): Promise<void> => out.write(bytes)
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
          if (values.out !== undefined) progress.update({ label: 'export', done: logs, total: null, rate: (logs * 1000) / Math.max(1, Date.now() - started), etaSeconds: null, unit: 'logs' })
        }
      } finally {
        await store.close()
      }
    }
    await out.end()
    progress.done()
    if (values.out !== undefined) process.stderr.write(`export: ${logs === 0 && target !== undefined ? 'done' : `${logs} logs`} → ${values.out}\n`)
    return 0
  } catch (error) {
    progress.done()
    out.destroy()
    if (error instanceof ExportOutputFailed) {
      // A reader that stops early (`| head`) ends the export here: a
      // message and a failing status, as the export did not finish.
      process.stderr.write(`tally export: ${error.message}${logs > 0 ? ` (after ${logs} logs)` : ''}\n`)
      return 1
    }
    if (error instanceof StoreInUse || error instanceof NoDataDirectory || error instanceof SchemaVersionMismatch || error instanceof TallyError) {
      process.stderr.write(`tally export: ${error.message}\n`)
      return error instanceof TallyError && error.kind === 'not_found' ? 1 : 2
    }
    throw error
  }
}
