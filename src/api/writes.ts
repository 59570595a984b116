import type { FastifyReply } from 'fastify'
import type { OrderResult } from '../fsm/index.ts'
import type { ProposedOrder } from '../orders/index.ts'
import type { LedgerNode } from '../server/index.ts'
import { InvariantViolation, JsonBytes, asciiText, printableTransaction, writeTransaction } from '../domain/index.ts'
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

/**
 * `submitOne` without a promise: the route handler returns nothing (fastify
 * then waits for the reply) and the answer is sent from the order's result
 * as admission hands it over, in the stretch that delivers its proposal.
 * A pending request costs no promise, no async frame and no adoption of the
 * reply as a thenable, each a turn of the microtask queue
 * (docs/performance.md, "Single writes at 64 connections").
 * An error is sent as a rejected handler's would be (fastify's error
 * handler).
 */
export function answerWhenApplied(
  node: LedgerNode,
  reply: FastifyReply,
  proposed: ProposedOrder,
  success: (output: OrderOutput, reply: FastifyReply) => FastifyReply,
  options: { dryRun?: boolean } = {},
): void {
  node.admission.submitSingle(proposed, { atomic: true, continueOnFailure: false, dryRun: options.dryRun === true }, (error, result) => {
    if (result === undefined) return sendError(reply, error)
    try {
      answer(reply, result, success)
    } catch (thrown) {
      sendError(reply, thrown)
    }
  })
}

/** What fastify does with a handler's rejection: the error handler answers, unless an answer was already sent. */
function sendError(reply: FastifyReply, error: unknown): void {
  if (reply.sent) {
    reply.log.error({ err: error }, 'a write failed after its answer was sent')
    return
  }
  void reply.send(error instanceof Error ? error : new InvariantViolation(`a write failed with a non-error: ${String(error)}`))
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

/**
 * `{"data": transaction}` printed as UTF-8 bytes and sent as they are: no
 * string to decode from the printer's bytes and for the socket to encode
 * again. The writer is shared: each answer is written and taken in one
 * synchronous stretch.
 */
export function transactionData(status: number) {
  return (output: OrderOutput, reply: FastifyReply): FastifyReply => {
    if (output.type !== 'TRANSACTION') throw new InvariantViolation(`expected a transaction output, got ${output.type}`)
    try {
      answerWriter.ascii(dataOpen)
      writeTransaction(answerWriter, printableTransaction(output.transaction), { volumes: true })
      answerWriter.ascii(dataClose)
    } catch (error) {
      answerWriter.discardFrom(0)
      throw error
    }
    return sendPrinted(reply, status, answerWriter.take())
  }
}

const answerWriter = new JsonBytes()
const dataOpen = asciiText('{"data":')
const dataClose = asciiText('}')
