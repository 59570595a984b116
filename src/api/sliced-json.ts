import type { FastifyReply } from 'fastify'
import type { Json } from '../domain/index.ts'
import { stringifyJson } from '../domain/index.ts'

/** Elements printed (or parsed) between two turns of the event loop: a few ms of work. */
export const elementsPerTurn = 256

/** One turn of the event loop: health checks and other requests run between slices. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/**
 * `{"data":[…], ...rest}` from elements printed by `printElement` (the
 * transaction printer's text, no objects): 200 elements or so at once, a
 * long array `elementsPerTurn` elements at a time with a turn of the event
 * loop between slices. The same bytes and content type as the reply
 * serializer gives for `{data, ...rest}` with the elements as objects.
 */
export async function sendPrintedData(
  reply: FastifyReply,
  status: number,
  count: number,
  printElement: (i: number) => string,
  rest: Readonly<Record<string, Json>> = {},
): Promise<FastifyReply> {
  let text = '{"data":['
  for (let i = 0; i < count; i++) {
    if (i > 0 && i % elementsPerTurn === 0) await nextTurn()
    text += i === 0 ? printElement(i) : `,${printElement(i)}`
  }
  text += ']'
  for (const [key, value] of Object.entries(rest)) text += `,${JSON.stringify(key)}:${stringifyJson(value)}`
  return sendPrinted(reply, status, `${text}}`)
}

/** An answer already printed as JSON text: sent as it is, with the content type the reply serializer gives. */
export function sendPrinted(reply: FastifyReply, status: number, text: string): FastifyReply {
  return reply.code(status).header('content-type', 'application/json; charset=utf-8').send(text)
}
