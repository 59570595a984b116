import type { FastifyReply } from 'fastify'
import type { OrderResult } from '../fsm/index.ts'
import type { ProposedOrder } from '../orders/index.ts'
import type { LedgerNode } from '../server/index.ts'
import { InvariantViolation, printTransaction, printableTransaction } from '../domain/index.ts'
import type { OrderOutput } from '../orders/index.ts'
import { sendFailure } from './errors.ts'
import { sendPrinted } from './sliced-json.ts'

/** Submits one order and answers the request from its result. */
export async function submitOne(
  node: LedgerNode,
  reply: FastifyReply,
  proposed: ProposedOrder,
  success: (output: OrderOutput, reply: FastifyReply) => FastifyReply,
  options: { dryRun?: boolean } = {},
): Promise<FastifyReply> {
  const [result] = await node.admission.submit([proposed], { atomic: true, continueOnFailure: false, dryRun: options.dryRun === true })
  return answer(reply, result, success)
}

export function answer(
  reply: FastifyReply,
  result: OrderResult | undefined,
  success: (output: OrderOutput, reply: FastifyReply) => FastifyReply,
): FastifyReply {
  if (result === undefined) throw new InvariantViolation('a submitted order has a result')
  switch (result.status) {
    case 'applied':
      if (result.idempotencyHit) void reply.header('Idempotency-Hit', 'true')
      return success(result.output, reply)
    case 'failed':
      return sendFailure(reply, result.error)
    case 'skipped':
      throw new InvariantViolation('a single order is never skipped')
    default: {
      const never: never = result
      throw new InvariantViolation(`unknown result ${JSON.stringify(never)}`)
    }
  }
}

export function noContent(_output: OrderOutput, reply: FastifyReply): FastifyReply {
  return reply.code(204).send()
}

export function transactionData(status: number) {
  return (output: OrderOutput, reply: FastifyReply): FastifyReply => {
    if (output.type !== 'TRANSACTION') throw new InvariantViolation(`expected a transaction output, got ${output.type}`)
    return sendPrinted(reply, status, `{"data":${printTransaction(printableTransaction(output.transaction), { volumes: true })}}`)
  }
}
