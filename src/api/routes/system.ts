import type { FastifyInstance } from 'fastify'
import type { LedgerNode } from '../../server/index.ts'

export const serverVersion = '0.1.0'

/** Tally's own routes: `/_/info`, `/_/healthz`, `/_/readyz`. */
export function systemRoutes(app: FastifyInstance, node: LedgerNode): void {
  app.get('/_/info', async () => ({ server: 'tally', version: serverVersion, experimentalFeatures: [] }))
  const health = async (_request: unknown, reply: import('fastify').FastifyReply) => {
    const failure = node.failure
    if (failure !== undefined) return reply.code(503).header('Retry-After', '1').send({ status: 'failed', reason: failure.message })
    return reply.send({ status: 'ok', appliedIndex: node.fsm.appliedIndex })
  }
  app.get('/_/healthz', health)
  app.get('/_/readyz', health)
}
