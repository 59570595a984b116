import { BearerToken, credentialsHelp } from './credentials.ts'
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { TallyError, parseJson, stringifyJson } from '../domain/index.ts'
import type { Json } from '../domain/index.ts'
import { SchemaVersionMismatch } from '../store/index.ts'
import { NoDataDirectory, StoreInUse, openStoreForTool, runCheck } from '../check/index.ts'
import type { CheckProgress, CheckSummary, Finding } from '../check/index.ts'
import type { NoteVerifier } from '../audit/index.ts'
import { NoteError, checkpointFileBytesMax, parseVerifierKey, splitCheckpointNotes } from '../audit/index.ts'
import { progressLine } from './progress-line.ts'

const usage = `Usage: tally check [--data DIR | --target URL] [--json]
                   [--verifier-key KEY]... [--checkpoints FILE]...
                   [--memory-mb N] [--spill-dir DIR]

Proves the store is what the audit chain says: verifies the chain (links,
HMACs, sequence), replays every audited proposal through the FSM into a
scratch state and compares every projection (volumes, accounts,
transactions, references, ledgers, idempotency records, v2 logs, indexes,
cache mirror, meta) with the store. Exit code 0 when nothing differs, 1 on
any finding, 2 when the check could not run.

Options (each also read from the environment variable shown):
  --data DIR      data directory, checked offline     [TALLY_DATA, default ./data]
  --target URL    a running server: POST URL/_/check  [TALLY_TARGET]
  --json          findings and the summary as JSON lines on stdout
  --verifier-key KEY
                  the audit checkpoints must be signed by this key: a verifier
                  key (tally audit-key prints it) or a file holding them, one
                  per line; repeat while rotating keys  [TALLY_AUDIT_VERIFIER_KEY]
  --checkpoints FILE
                  signed checkpoints kept outside the store (the server's
                  --audit-checkpoint-file, notes saved from GET
                  /_/audit/checkpoint): the store must not be behind or
                  disagree with any of them; needs --verifier-key
  --memory-mb N   rows the check holds in memory (the store's rows as
                  digests, the replay's rows), in MiB; beyond, they spill to
                  a temporary directory and are compared from there
                  [TALLY_CHECK_MEMORY_MB, default 256]
  --spill-dir DIR where spilled rows go (a directory inside, removed at the
                  end)                         [TALLY_CHECK_SPILL_DIR, default the OS temp directory]
  -h, --help      show this help

A running server holds its data directory's lock: check it with --target
(or POST /_/check); the check then reads one consistent snapshot while the
server keeps serving.

${credentialsHelp}
`

interface Output {
  finding(finding: Finding): void
  summary(summary: CheckSummary): void
}

export async function checkCommand(argv: string[]): Promise<number> {
  let values: {
    data?: string | undefined
    target?: string | undefined
    json?: boolean | undefined
    help?: boolean | undefined
    'verifier-key'?: string[] | undefined
    checkpoints?: string[] | undefined
    'memory-mb'?: string | undefined
    'spill-dir'?: string | undefined
  }
  let audit: AuditInputs
  let bounds: SpillBounds
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: {
        data: { type: 'string' },
        target: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        'verifier-key': { type: 'string', multiple: true },
        checkpoints: { type: 'string', multiple: true },
        'memory-mb': { type: 'string' },
        'spill-dir': { type: 'string' },
      },
      strict: true,
    }))
    bounds = spillBounds(values['memory-mb'] ?? process.env.TALLY_CHECK_MEMORY_MB, values['spill-dir'] ?? process.env.TALLY_CHECK_SPILL_DIR)
    audit = auditInputs(values['verifier-key'] ?? (process.env.TALLY_AUDIT_VERIFIER_KEY ? [process.env.TALLY_AUDIT_VERIFIER_KEY] : []), values.checkpoints ?? [])
  } catch (error) {
    process.stderr.write(`tally check: ${(error as Error).message}\n\n${usage}`)
    return 2
  }
  if (values.help === true) {
    process.stdout.write(usage)
    return 0
  }
  const output = values.json === true ? jsonOutput() : textOutput()
  const target = values.target ?? (values.data === undefined ? process.env.TALLY_TARGET : undefined)
  try {
    const summary = target !== undefined && target !== '' ? await checkRemote(target, output, audit) : await checkLocal(path.resolve(values.data ?? process.env.TALLY_DATA ?? 'data'), output, audit, bounds)
    if (summary === undefined) return 2
    output.summary(summary)
    return summary.ok ? 0 : 1
  } catch (error) {
    if (error instanceof StoreInUse || error instanceof NoDataDirectory || error instanceof SchemaVersionMismatch || error instanceof TallyError) {
      process.stderr.write(`tally check: ${error.message}\n`)
      return 2
    }
    throw error
  }
}

interface AuditInputs {
  readonly verifierKeys: readonly NoteVerifier[]
  readonly checkpoints: readonly string[]
}

/** Verifier keys (given inline or as files of keys, one per line) and external checkpoint notes; throws on anything unusable. */
function auditInputs(keys: readonly string[], checkpointFiles: readonly string[]): AuditInputs {
  const verifierKeys: NoteVerifier[] = []
  for (const value of keys) {
    const lines = existsSync(value) ? readBounded(value, 64 * 1024).split('\n').filter((line) => line.trim() !== '') : [value]
    for (const line of lines) {
      try {
        verifierKeys.push(parseVerifierKey(line))
      } catch (error) {
        if (error instanceof NoteError) throw new Error(`--verifier-key ${value}: ${error.message}`)
        throw error
      }
    }
  }
  if (checkpointFiles.length > 0 && verifierKeys.length === 0) throw new Error('--checkpoints needs --verifier-key (a checkpoint is only worth its signature)')
  const checkpoints: string[] = []
  for (const file of checkpointFiles) {
    try {
      checkpoints.push(...splitCheckpointNotes(readBounded(file, checkpointFileBytesMax)))
    } catch (error) {
      if (error instanceof NoteError) throw new Error(`--checkpoints ${file}: ${error.message}`)
      throw error
    }
  }
  return { verifierKeys, checkpoints }
}

function readBounded(file: string, bytesMax: number): string {
  if (statSync(file).size > bytesMax) throw new Error(`${file} is larger than ${bytesMax} bytes`)
  return readFileSync(file, 'utf8')
}

interface SpillBounds {
  readonly memoryBytesMax?: number
  readonly spillDirectory?: string
}

function spillBounds(memoryMb: string | undefined, spillDirectory: string | undefined): SpillBounds {
  const bounds: { memoryBytesMax?: number; spillDirectory?: string } = {}
  if (memoryMb !== undefined && memoryMb !== '') {
    const mb = Number(memoryMb)
    if (!Number.isSafeInteger(mb) || mb < 1) throw new Error(`--memory-mb: expected a positive integer of MiB, got ${memoryMb}`)
    bounds.memoryBytesMax = mb * 2 ** 20
  }
  if (spillDirectory !== undefined && spillDirectory !== '') {
    if (!existsSync(spillDirectory) || !statSync(spillDirectory).isDirectory()) throw new Error(`--spill-dir: ${spillDirectory} is not a directory`)
    bounds.spillDirectory = path.resolve(spillDirectory)
  }
  return bounds
}

async function checkLocal(dataDirectory: string, output: Output, audit: AuditInputs, bounds: SpillBounds): Promise<CheckSummary> {
  const store = await openStoreForTool(dataDirectory, 'POST /_/check on that server, or tally check --target http://HOST:PORT')
  const progress = progressLine()
  try {
    const { findingsList: _kept, ...summary } = await runCheck(store, {
      verifierKeys: audit.verifierKeys,
      externalCheckpoints: audit.checkpoints,
      ...bounds,
      onProgress: (state) => showProgress(progress, state),
      onFinding: (finding) => {
        progress.done()
        output.finding(finding)
      },
    })
    return summary
  } finally {
    progress.done()
    await store.close()
  }
}

/** Streams the server's NDJSON answer: progress, findings, then the summary. */
async function checkRemote(target: string, output: Output, audit: AuditInputs): Promise<CheckSummary | undefined> {
  const url = new URL('/_/check', target)
  const body = audit.verifierKeys.length === 0 ? undefined : JSON.stringify({ verifierKeys: audit.verifierKeys.map((key) => key.text), checkpoints: audit.checkpoints })
  const credentials = (await BearerToken.fromEnvironment(process.env, target)?.headers()) ?? {}
  const response = await fetch(url, { method: 'POST', ...(body === undefined ? { headers: credentials } : { body, headers: { 'content-type': 'application/json', ...credentials } }) })
  if (!response.ok || response.body === null) {
    process.stderr.write(`tally check: ${url.href} answered ${response.status}: ${await response.text()}\n`)
    return undefined
  }
  const progress = progressLine()
  let summary: CheckSummary | undefined
  let pending = ''
  const decoder = new TextDecoder()
  const handle = (line: string): void => {
    if (line.trim() === '') return
    const message = jsonToPlain(parseJson(line)) as { type: string } & Record<string, unknown>
    const { type, ...rest } = message
    if (type === 'progress') showProgress(progress, rest as unknown as CheckProgress)
    else if (type === 'finding') {
      progress.done()
      output.finding(rest as unknown as Finding)
    } else if (type === 'summary') summary = rest as unknown as CheckSummary
    else if (type === 'error') throw new Error(`the server's check failed: ${String(rest.message)}`)
  }
  try {
    for await (const chunk of response.body) {
      pending += decoder.decode(chunk as Uint8Array, { stream: true })
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) handle(line)
    }
    handle(pending)
  } finally {
    progress.done()
  }
  if (summary === undefined) process.stderr.write('tally check: the server closed the stream before its summary\n')
  return summary
}

function showProgress(progress: ReturnType<typeof progressLine>, state: CheckProgress): void {
  progress.update({
    label: `check ${state.phase}`,
    done: state.done,
    total: state.phase === 'scan' ? null : state.total,
    rate: state.entriesPerSecond,
    etaSeconds: state.etaSeconds,
    unit: state.phase === 'scan' ? 'rows' : 'entries',
  })
}

function textOutput(): Output {
  return {
    finding(finding) {
      const detail = [finding.expected === undefined ? '' : `\n    expected: ${finding.expected}`, finding.actual === undefined ? '' : `\n    actual:   ${finding.actual}`].join('')
      process.stdout.write(`FINDING ${finding.kind} ${finding.key}: ${finding.message}${detail}\n`)
    },
    summary(summary) {
      const counts = Object.entries(summary.findingsByKind).map(([kind, count]) => `${kind} ${count}`)
      const facts = `${summary.auditEntries} audit entries, ${summary.ordersReplayed} orders replayed, applied index ${summary.appliedIndex}, ${summary.rowsCompared} rows, ${(summary.durationMs / 1000).toFixed(1)}s`
      const stopped = summary.stopped === undefined ? '' : `\n  the replay stopped: ${summary.stopped}; projections were not compared`
      process.stdout.write(`${checkpointLine(summary)}\n`)
      process.stdout.write(summary.ok ? `check: OK — ${facts}\n` : `check: ${summary.findings} finding(s) (${counts.join(', ')}) — ${facts}${stopped}\n`)
    },
  }
}

/** What the checkpoints proved, in one line: the window after the latest one is what they do not cover. */
function checkpointLine(summary: CheckSummary): string {
  const latest = summary.latestCheckpoint
  if (summary.checkpointsVerified > 0 && latest !== null) {
    return `checkpoints: ${summary.checkpointsVerified} signed checkpoint(s) verified; the latest covers ${latest} of ${summary.auditEntries} audit entries`
  }
  if (summary.checkpointsUnverified > 0) return `checkpoints: ${summary.checkpointsUnverified} stored checkpoint(s) agree with the chain, signatures not checked (give --verifier-key)`
  return 'checkpoints: none verified (without them the chain proves nothing to a holder of the store)'
}

function jsonOutput(): Output {
  return {
    finding: (finding) => void process.stdout.write(`${stringifyJson({ type: 'finding', ...finding })}\n`),
    summary: (summary) => void process.stdout.write(`${stringifyJson({ type: 'summary', ...summary })}\n`),
  }
}

/** Lossless JSON back to plain values (integers that fit become numbers). */
function jsonToPlain(value: Json): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
  if (Array.isArray(value)) return value.map(jsonToPlain)
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, jsonToPlain(entry)]))
  return value
}
