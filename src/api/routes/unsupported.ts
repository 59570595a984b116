import type { FastifyInstance, FastifyReply, HTTPMethods } from 'fastify'
import { operations, routeUrlOf } from '../openapi/index.ts'
import type { Operation } from '../openapi/index.ts'

/**
 * The v2 operations Tally does not support answer 501 with a v2 error body
 * instead of a bare 404. v2's error enum has no "not implemented" code and
 * the generated clients reject any code outside it, so the body is
 * `errorCode: "INTERNAL"` with the reason leading the message — the same
 * convention as Tally's other internal reasons (`"NOT_IMPLEMENTED: …"`) — and
 * `details` carrying it as data.
 *
 * Register last in a scope: an operation some route above already serves
 * (say, a real `/_/metrics`) keeps its route and gets no stub.
 */
export function unsupportedRoutes(app: FastifyInstance): void {
  for (const operation of operations) {
    if (operation.status.kind !== 'unsupported') continue
    const method = operation.method.toUpperCase() as HTTPMethods
    const url = routeUrlOf(operation.path)
    if (app.hasRoute({ method, url: app.prefix + url })) continue
    const body = notImplementedBody(operation)
    app.route({ method, url, handler: async (_request, reply: FastifyReply) => reply.code(501).send(body) })
  }
}

export interface NotImplementedBody {
  readonly errorCode: 'INTERNAL'
  readonly errorMessage: string
  readonly details: string
}

export function notImplementedBody(operation: Operation): NotImplementedBody {
  const reason = operation.status.kind === 'unsupported' ? operation.status.reason : 'not supported'
  return {
    errorCode: 'INTERNAL',
    errorMessage: `NOT_IMPLEMENTED: Tally does not support ${operation.operationId} (${operation.method.toUpperCase()} ${operation.path}): ${reason}`,
    details: JSON.stringify({ reason: 'NOT_IMPLEMENTED', operationId: operation.operationId, documentation: 'docs/api-compatibility.md' }),
  }
}
