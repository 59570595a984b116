import { PassThrough } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { LedgerNode } from '../../server/index.ts'
import { stringifyJson } from '../../domain/index.ts'
import { runCheck } from '../../check/index.ts'

/**
 * `POST /_/check`: runs `tally check` against the live store and streams
 * newline-delimited JSON — `{"type":"progress",…}` lines, one
 * `{"type":"finding",…}` per finding as it is found, and a final
 * `{"type":"summary",…}`. The check reads one snapshot iterator, so writes
 * continue meanwhile and the result is the state at one applied index
 * (docs/check.md). One check at a time per server.
 */
export function checkRoutes(app: FastifyInstance, node: LedgerNode): void {
  let running = false
  app.post('/_/check', async (_request, reply) => {
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
    })
      .then(({ findingsList: _kept, ...summary }) => line({ type: 'summary', ...summary }))
      .catch((error: unknown) => line({ type: 'error', message: error instanceof Error ? error.message : String(error) }))
      .finally(() => {
        running = false
        out.end()
      })
    return reply.code(200).type('application/x-ndjson').send(out)
  })
}
