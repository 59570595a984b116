import { PassThrough } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { LedgerNode } from '../../server/index.ts'
import { stringifyJson } from '../../domain/index.ts'
import type { NoteVerifier } from '../../audit/index.ts'
import { NoteError, parseVerifierKey } from '../../audit/index.ts'
import { runCheck } from '../../check/index.ts'

/** Verifier keys a check request may name (a handful while keys rotate). */
const verifierKeysMax = 16

/**
 * `POST /_/check`: runs `tally check` against the live store and streams
 * newline-delimited JSON — `{"type":"progress",…}` lines, one
 * `{"type":"finding",…}` per finding as it is found, and a final
 * `{"type":"summary",…}`. The check reads one snapshot iterator, so writes
 * continue meanwhile and the result is the state at one applied index
 * (docs/check.md). One check at a time per server. An optional JSON body
 * `{"verifierKeys": [...], "checkpoints": [...]}` gives the keys audit
 * checkpoints must be signed with and checkpoint notes kept outside the store.
 *
 * `GET /_/audit/checkpoint`: the latest signed checkpoint (text), for an
 * auditor to keep outside the store.
 */
export function checkRoutes(app: FastifyInstance, node: LedgerNode): void {
  let running = false
  app.post('/_/check', async (request, reply) => {
    let wanted: { verifierKeys: NoteVerifier[]; checkpoints: string[] }
    try {
      wanted = checkRequest(request.body)
    } catch (error) {
      if (!(error instanceof NoteError)) throw error
      return reply.code(400).send({ errorCode: 'VALIDATION', errorMessage: error.message })
    }
    if (running) {
      return reply.code(409).send({ errorCode: 'CONFLICT', errorMessage: 'a check is already running on this server' })
    }
    running = true
    const out = new PassThrough()
    const line = (value: unknown): void => void out.write(`${stringifyJson(value)}\n`)
    runCheck(node.store, {
      onProgress: (progress) => line({ type: 'progress', ...progress }),
      onFinding: (finding) => line({ type: 'finding', ...finding }),
      progressIntervalMs: 500,
      verifierKeys: wanted.verifierKeys,
      externalCheckpoints: wanted.checkpoints,
    })
      .then(({ findingsList: _kept, ...summary }) => line({ type: 'summary', ...summary }))
      .catch((error: unknown) => line({ type: 'error', message: error instanceof Error ? error.message : String(error) }))
      .finally(() => {
        running = false
        out.end()
      })
    return reply.code(200).type('application/x-ndjson').send(out)
  })

  app.get('/_/audit/checkpoint', async (_request, reply) => {
    const note = node.auditCheckpoints?.latest()
    if (note === undefined) {
      const why = node.auditCheckpoints === undefined ? 'this server signs no checkpoints (start it with --audit-key)' : 'no checkpoint signed yet'
      return reply.code(404).send({ errorCode: 'NOT_FOUND', errorMessage: why })
    }
    return reply.code(200).type('text/plain; charset=utf-8').send(note)
  })
}

/** The optional body of `POST /_/check`; throws `NoteError` saying what is wrong. */
function checkRequest(body: unknown): { verifierKeys: NoteVerifier[]; checkpoints: string[] } {
  if (body === undefined || body === null || body === '') return { verifierKeys: [], checkpoints: [] }
  if (typeof body !== 'object' || Array.isArray(body)) throw new NoteError('the body is {"verifierKeys": [string], "checkpoints": [string]}')
  const { verifierKeys = [], checkpoints = [], ...rest } = body as { verifierKeys?: unknown; checkpoints?: unknown }
  if (Object.keys(rest).length > 0) throw new NoteError(`unknown field(s) ${Object.keys(rest).map((key) => JSON.stringify(key)).join(', ')}; the body is {"verifierKeys", "checkpoints"}`)
  if (!Array.isArray(verifierKeys) || !verifierKeys.every((key) => typeof key === 'string')) throw new NoteError('verifierKeys: a list of verifier keys (strings)')
  if (verifierKeys.length > verifierKeysMax) throw new NoteError(`verifierKeys: at most ${verifierKeysMax}`)
  if (!Array.isArray(checkpoints) || !checkpoints.every((note) => typeof note === 'string')) throw new NoteError('checkpoints: a list of checkpoint notes (strings)')
  if (checkpoints.length > 0 && verifierKeys.length === 0) throw new NoteError('checkpoints need verifierKeys to be verified with')
  return { verifierKeys: (verifierKeys as string[]).map(parseVerifierKey), checkpoints: checkpoints as string[] }
}
