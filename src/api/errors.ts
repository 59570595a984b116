import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { InvariantViolation, TallyError, httpStatusOf } from '../domain/index.ts'
import type { OrderFailure } from '../fsm/index.ts'
import { v2ErrorCodes } from './openapi/schemas.ts'
import { TransportError } from './transport.ts'

/** v2 error body: `{errorCode, errorMessage, details?}`; retryable errors carry Retry-After. */
export function sendFailure(reply: FastifyReply, failure: OrderFailure): FastifyReply {
  const status = httpStatusOf(failure.kind)
  if (status === 503) void reply.header('Retry-After', '1')
  // v2 error codes only: our internal reasons map to INTERNAL on the wire, with the reason kept in the message.
  const errorCode = wireCode(failure.code)
  const details = errorCode === failure.code ? failure.details : reasonDetails(failure, status)
  return reply.code(status).send({
    errorCode,
    errorMessage: errorCode === failure.code ? failure.message : `${failure.code}: ${failure.message}`,
    ...(details === undefined ? {} : { details: JSON.stringify(details) }),
  })
}

/**
 * A Tally-only reason travels as v2's `INTERNAL` (v2 answers its own
 * retryable overload with 503 `INTERNAL`, and v2 SDKs parse a closed enum),
 * so the reason is also given where a program reads it: `details.reason`,
 * with `retryable: "true"` on a 503 — nothing was applied, retry after
 * `Retry-After`.
 */
function reasonDetails(failure: OrderFailure, status: number): Record<string, string> {
  return { reason: failure.code, ...(status === 503 ? { retryable: 'true' } : {}), ...failure.details }
}

const V2_ERROR_CODES: ReadonlySet<string> = new Set(v2ErrorCodes)

/** Tally's own reasons (CACHE_HORIZON_EXCEEDED, STALE_INPUTS, …) travel as INTERNAL, the reason leading the message. */
export function wireCode(code: string): string {
  return V2_ERROR_CODES.has(code) ? code : 'INTERNAL'
}

export function errorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof TallyError) {
    return sendFailure(reply, { code: error.code, kind: error.kind, message: error.message, ...(error.details ? { details: error.details } : {}) })
  }
  if (error instanceof TransportError) {
    return reply.code(error.statusCode).send({ errorCode: error.errorCode, errorMessage: error.message })
  }
  const fastifyError = error as FastifyError
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    // A route whose limit is tighter than the server's says why (`_bulk`: the log's record bound).
    const reason = (request.routeOptions.config as { bodyLimitReason?: string } | undefined)?.bodyLimitReason
    const message = `request body larger than the limit of ${request.routeOptions.bodyLimit} bytes${reason === undefined ? '' : `: ${reason}`}`
    return reply.code(413).send({ errorCode: 'VALIDATION', errorMessage: message })
  }
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return reply.code(fastifyError.statusCode).send({ errorCode: 'VALIDATION', errorMessage: fastifyError.message })
  }
  if (error instanceof InvariantViolation) request.log.fatal({ err: error }, 'invariant violated')
  else request.log.error({ err: error }, 'unexpected error')
  return reply.code(500).send({ errorCode: 'INTERNAL', errorMessage: 'internal error' })
}
