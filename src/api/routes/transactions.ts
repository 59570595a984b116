import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { LedgerNode } from '../../server/index.ts'
import { isJsonObject, parseMetadata, parseMetadataKey } from '../../domain/index.ts'
import type { LedgerName, SchemaRecord } from '../../domain/index.ts'
import { parseCreateTransaction, parseRevertTransaction, parseTransactionId, scriptTemplateOf, templateScript } from '../../orders/index.ts'
import type { ProposedOrder } from '../../orders/index.ts'
import type { Views } from '../views.ts'
import type { Params, Query } from '../requests.ts'
import { countFilter, expandOf, idempotencyKeyOf, ledgerParam, listRequest, queryFlag, requestHash, schemaVersionOf } from '../requests.ts'
import { answerWhenApplied, noContent, submitOne, transactionData } from '../writes.ts'
import { sendPrinted } from '../sliced-json.ts'

const createdTransaction = transactionData(200)
const revertedTransaction = transactionData(201)

/** The create order of a `POST /v2/{ledger}/transactions`, with its idempotency key and request hash when it has a key. */
function createTransaction(request: FastifyRequest, ledger: LedgerName, schema: { schemaVersion?: string }, followed: SchemaRecord | undefined): ProposedOrder {
  const order = parseCreateTransaction(ledger, request.body, {
    force: queryFlag(request, 'force'),
    ...schema,
    ...(followed === undefined ? {} : { templateScript: (name: string) => templateScript(followed, name) }),
  })
  const key = idempotencyKeyOf(request)
  return key ? { order, idempotencyKey: key, requestHash: requestHash(['create-transaction', order]) } : { order }
}

export function transactionRoutes(app: FastifyInstance, node: LedgerNode, views: Views): void {
  app.head('/v2/:ledger/transactions', async (request, reply) => {
    const count = await views.countTransactions(ledgerParam(request), countFilter('transactions', request), expandOf({ pit: (request.query as Query).pit }).pit)
    return reply.header('Count', count.toString()).code(204).send()
  })

  // Not async: a kept answer is sent at once, without a promise and its turns (docs/performance.md, "Reads").
  app.get('/v2/:ledger/transactions', { exposeHeadRoute: false }, (request, reply) => {
    const ledger = ledgerParam(request)
    const { page, filter } = listRequest('transactions', request)
    const expand = expandOf(page.options)
    const answer = views.transactionListAnswer(ledger, page, filter, expand)
    if (typeof answer === 'string') {
      // Returning nothing: fastify would send a returned reply a second time.
      sendPrinted(reply, 200, answer)
      return undefined
    }
    return answer.then((text) => sendPrinted(reply, 200, text))
  })

  app.get('/v2/:ledger/transactions/:id', async (request, reply) => {
    const ledger = ledgerParam(request)
    const printed = await views.printedTransaction(ledger, parseTransactionId((request.params as Params).id), expandOf(request.query as Query))
    return sendPrinted(reply, 200, `{"data":${printed}}`)
  })

  // Not async: the common create (no template read from a schema) is answered from its result without a
  // promise of its own (docs/performance.md, "Single writes at 64 connections").
  app.post('/v2/:ledger/transactions', (request, reply) => {
    const ledger = ledgerParam(request)
    const schema = schemaVersionOf(request)
    // A template's script is read from the schema here; the FSM checks it against the schema it reads.
    const template = isJsonObject(request.body) ? scriptTemplateOf(request.body) : undefined
    if (template === undefined || schema.schemaVersion === undefined) {
      answerWhenApplied(node, reply, createTransaction(request, ledger, schema, undefined), createdTransaction, { dryRun: queryFlag(request, 'dryRun') })
      return undefined
    }
    return views.schema(ledger, schema.schemaVersion).then((followed) =>
      submitOne(node, reply, createTransaction(request, ledger, schema, followed), createdTransaction, { dryRun: queryFlag(request, 'dryRun') }),
    )
  })

  // The single-order writes below are not async either: each is answered from its result as the create is.
  app.post('/v2/:ledger/transactions/:id/revert', (request, reply) => {
    const ledger = ledgerParam(request)
    const id = parseTransactionId((request.params as Params).id)
    const order = {
      ...parseRevertTransaction(ledger, id, request.body, {
        force: queryFlag(request, 'force'),
        atEffectiveDate: queryFlag(request, 'atEffectiveDate'),
      }),
      ...schemaVersionOf(request),
    }
    const key = idempotencyKeyOf(request)
    answerWhenApplied(node, reply, { order, ...(key ? { idempotencyKey: key, requestHash: requestHash(['revert', order]) } : {}) }, revertedTransaction, {
      dryRun: queryFlag(request, 'dryRun'),
    })
    return undefined
  })

  app.post('/v2/:ledger/transactions/:id/metadata', (request, reply) => {
    const ledger = ledgerParam(request)
    const id = parseTransactionId((request.params as Params).id)
    const metadata = parseMetadata(request.body, 'body')
    const key = idempotencyKeyOf(request)
    const order = { type: 'SAVE_TRANSACTION_METADATA' as const, ledger, id, metadata, ...schemaVersionOf(request) }
    answerWhenApplied(node, reply, { order, ...(key ? { idempotencyKey: key, requestHash: requestHash(['tx-metadata', order]) } : {}) }, noContent, {
      dryRun: queryFlag(request, 'dryRun'),
    })
    return undefined
  })

  app.delete('/v2/:ledger/transactions/:id/metadata/:key', (request, reply) => {
    const ledger = ledgerParam(request)
    const id = parseTransactionId((request.params as Params).id)
    const metadataKey = parseMetadataKey((request.params as Params).key)
    const key = idempotencyKeyOf(request)
    const order = { type: 'DELETE_TRANSACTION_METADATA' as const, ledger, id, key: metadataKey }
    answerWhenApplied(node, reply, { order, ...(key ? { idempotencyKey: key, requestHash: requestHash(['tx-metadata-delete', order]) } : {}) }, noContent)
    return undefined
  })
}
