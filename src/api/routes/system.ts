import type { FastifyInstance, FastifyReply } from 'fastify'
import type { LedgerNode } from '../../server/index.ts'
import type { ClusterRuntimeView } from '../../cluster/runtime-status.ts'

export const serverVersion = '0.1.0'

/** Tally's own routes: `/_/info`, `/_/healthz`, `/_/readyz`, `/_/cluster`. */
export function systemRoutes(app: FastifyInstance, node: LedgerNode, clusterRuntime?: () => ClusterRuntimeView | undefined): void {
  app.get('/_/info', async () => ({ server: 'tally', version: serverVersion, experimentalFeatures: [] }))
  const failed = (reply: FastifyReply): FastifyReply | undefined => {
    const failure = node.failure
    if (failure === undefined) return undefined
    return reply.code(503).header('Retry-After', '1').send({ status: 'failed', reason: failure.message })
  }
  app.get('/_/healthz', async (_request, reply) => failed(reply) ?? reply.send({ status: 'ok', appliedIndex: node.fsm.appliedIndex }))
  // Ready: healthy and, in replicated mode, caught up (reads here reflect the cluster's committed state).
  app.get('/_/readyz', async (_request, reply) => {
    const stopped = failed(reply)
    if (stopped !== undefined) return stopped
    const status = node.clusterStatus()
    if (!status.caughtUp) {
      return reply.code(503).header('Retry-After', '1').send({
        status: 'catching_up',
        reason: `${status.role} at epoch ${status.epoch}: applied ${status.appliedIndex}, committed ${status.committedLsn} known`,
        appliedIndex: status.appliedIndex,
      })
    }
    return reply.send({ status: 'ok', appliedIndex: node.fsm.appliedIndex })
  })
  // The node's own positions, and in cluster mode the runtime's: assignment, each replica as its primary sees it, the recovery log.
  app.get('/_/cluster', async () => {
    const replication = clusterRuntime?.()
    return replication === undefined ? node.clusterStatus() : { ...node.clusterStatus(), replication }
  })
}
