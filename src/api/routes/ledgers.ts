import type { FastifyInstance } from 'fastify'
import type { LedgerNode } from '../../server/index.ts'
import { describe, isJsonObject, parseMetadata, parseMetadataKey, validationError } from '../../domain/index.ts'
import type { Views } from '../views.ts'
import { parsePageRequest } from '../paging.ts'
import type { Params, Query } from '../requests.ts'
import { idempotencyKeyOf, ledgerParam, requestHash } from '../requests.ts'
import { noContent, submitOne } from '../writes.ts'

export function ledgerRoutes(app: FastifyInstance, node: LedgerNode, views: Views): void {
  app.get('/v2', async (request) => ({ cursor: await views.listLedgers(parsePageRequest(request.query as Query, request.server.cursorKey)) }))

  app.get('/v2/:ledger', async (request) => ({ data: views.ledgerView(await views.ledger(ledgerParam(request))) }))

  app.get('/v2/:ledger/stats', async (request) => ({ data: await views.stats(ledgerParam(request)) }))

  app.get('/v2/:ledger/_info', async (request) => {
    const ledger = await views.ledger(ledgerParam(request))
    return { data: { name: ledger.name, storage: { migrations: [] } } }
  })

  app.post('/v2/:ledger', async (request, reply) => {
    const ledger = ledgerParam(request)
    const body = request.body ?? {}
    if (!isJsonObject(body)) throw validationError(`body: expected an object, got ${describe(body)}`)
    const bucket = body.bucket ?? '_default'
    if (typeof bucket !== 'string' || !/^[a-zA-Z0-9_-]{1,63}$/.test(bucket)) throw validationError(`bucket: invalid bucket name ${describe(bucket)}`)
    const features = parseMetadata(body.features, 'features')
    return submitOne(node, reply, { order: { type: 'CREATE_LEDGER', ledger, bucket, metadata: parseMetadata(body.metadata), features } }, noContent)
  })

  app.put('/v2/:ledger/metadata', async (request, reply) => {
    const ledger = ledgerParam(request)
    const metadata = parseMetadata(request.body, 'body')
    const key = idempotencyKeyOf(request)
    return submitOne(
      node,
      reply,
      { order: { type: 'SAVE_LEDGER_METADATA', ledger, metadata }, ...(key ? { idempotencyKey: key, requestHash: requestHash(['ledger-metadata', metadata]) } : {}) },
      noContent,
    )
  })

  app.delete('/v2/:ledger/metadata/:key', async (request, reply) => {
    const ledger = ledgerParam(request)
    const key = parseMetadataKey((request.params as Params).key)
    return submitOne(node, reply, { order: { type: 'DELETE_LEDGER_METADATA', ledger, key } }, noContent)
  })
}
