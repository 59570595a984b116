import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { LedgerNode } from '../../server/index.ts'
import { exportLogChunks, importLogStream } from '../../check/index.ts'
import { ledgerParam } from '../requests.ts'
import { jsonLinesRoute } from '../transport.ts'

/** The raw request bodies of imports, taken before the JSON body parser buffers them. */
const importBodies = new WeakMap<FastifyRequest, Readable>()

/**
 * `POST /v2/{ledger}/logs/export`: the ledger's v2 logs, oldest first, one
 * JSON object a line, streamed from one store iterator.
 *
 * `POST /v2/{ledger}/logs/import`: a v2 log stream (JSON lines or one JSON
 * array) replayed into an empty ledger, created when missing. The body is
 * streamed (bounded memory: one log and one proposal of logs at a time), never
 * buffered whole. 204 with `Tally-Imported-Logs`; the first log whose hash
 * does not verify stops it with 400 `IMPORT` naming the log, the ledger then
 * holding exactly the logs before it.
 */
export function logTransferRoutes(app: FastifyInstance, node: LedgerNode): void {
  app.post('/v2/:ledger/logs/export', async (request, reply) => {
    const ledger = ledgerParam(request)
    const chunks = exportLogChunks(node.store, ledger)
    const first = await chunks.next() // LEDGER_NOT_FOUND before the 200 is committed
    async function* all(): AsyncGenerator<Buffer> {
      if (first.done !== true) yield first.value.bytes
      for await (const chunk of chunks) yield chunk.bytes
    }
    return reply.code(200).type('application/octet-stream').send(Readable.from(all()))
  })

  app.post(
    '/v2/:ledger/logs/import',
    {
      config: jsonLinesRoute,
      // Take the raw stream; the body parser then sees an empty body.
      preParsing: async (request, _reply, payload) => {
        importBodies.set(request, payload)
        const empty = Readable.from([]) as Readable & { receivedEncodedLength?: number }
        empty.receivedEncodedLength = Number(request.headers['content-length'] ?? 0)
        return empty
      },
    },
    async (request, reply) => {
      const ledger = ledgerParam(request)
      const body = importBodies.get(request) ?? Readable.from([])
      try {
        const summary = await importLogStream(node, ledger, body as AsyncIterable<Buffer>)
        return await reply.code(204).header('Tally-Imported-Logs', String(summary.logs)).send()
      } catch (error) {
        body.resume() // discard the rest of the stream so the client gets the answer
        throw error
      }
    },
  )
}
