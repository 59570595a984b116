import type { FastifyInstance } from 'fastify'
import type { LedgerNode } from '../../server/index.ts'
import { parseAccountAddress, parseMetadata, parseMetadataKey } from '../../domain/index.ts'
import type { Views } from '../views.ts'
import type { Params, Query } from '../requests.ts'
import { countFilter, expandOf, listRequest, idempotencyKeyOf, ledgerParam, queryFlag, requestHash, schemaVersionOf } from '../requests.ts'
import { answerWhenApplied, noContent } from '../writes.ts'
import { sendPrinted } from '../sliced-json.ts'

export function accountRoutes(app: FastifyInstance, node: LedgerNode, views: Views): void {
  app.head('/v2/:ledger/accounts', async (request, reply) => {
    const query = request.query as Query
    const count = await views.countAccounts(ledgerParam(request), countFilter('accounts', request), expandOf({ pit: query.pit }).pit)
    return reply.header('Count', count.toString()).code(204).send()
  })

  app.get('/v2/:ledger/accounts', { exposeHeadRoute: false }, async (request) => {
    const ledger = ledgerParam(request)
    const { page, filter } = listRequest('accounts', request)
    return { cursor: await views.listAccounts(ledger, page, filter, expandOf(page.options)) }
  })

  // Not async: a kept answer is sent at once, without a promise and its turns (docs/performance.md, "Reads").
  app.get('/v2/:ledger/accounts/:address', (request, reply) => {
    const ledger = ledgerParam(request)
    const address = parseAccountAddress((request.params as Params).address)
    const answer = views.accountAnswer(ledger, address, expandOf(request.query as Query))
    if (typeof answer === 'string') {
      // Returning nothing: fastify would send a returned reply a second time.
      sendPrinted(reply, 200, answer)
      return undefined
    }
    return answer.then((text) => sendPrinted(reply, 200, text))
  })

  // Not async: answered from the order's result without a promise of its own, as a create is (`answerWhenApplied`).
  app.post('/v2/:ledger/accounts/:address/metadata', (request, reply) => {
    const ledger = ledgerParam(request)
    const address = parseAccountAddress((request.params as Params).address)
    const metadata = parseMetadata(request.body, 'body')
    const key = idempotencyKeyOf(request)
    const order = { type: 'SAVE_ACCOUNT_METADATA' as const, ledger, address, metadata, ...schemaVersionOf(request) }
    answerWhenApplied(node, reply, { order, ...(key ? { idempotencyKey: key, requestHash: requestHash(['account-metadata', order]) } : {}) }, noContent, {
      dryRun: queryFlag(request, 'dryRun'),
    })
    return undefined
  })

  app.delete('/v2/:ledger/accounts/:address/metadata/:key', (request, reply) => {
    const ledger = ledgerParam(request)
    const address = parseAccountAddress((request.params as Params).address)
    const metadataKey = parseMetadataKey((request.params as Params).key)
    const key = idempotencyKeyOf(request)
    const order = { type: 'DELETE_ACCOUNT_METADATA' as const, ledger, address, key: metadataKey }
    answerWhenApplied(node, reply, { order, ...(key ? { idempotencyKey: key, requestHash: requestHash(['account-metadata-delete', order]) } : {}) }, noContent)
    return undefined
  })
}
