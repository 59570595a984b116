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
 * `reply.code(status).send({ data, ...rest })` for a `data` array that may be
 * long (a `_bulk`'s answer): the same bytes as the reply serializer prints,
 * a slice of elements at a time with a turn of the event loop between
 * slices. A short array is sent as before, through the serializer.
 */
export async function sendDataInSlices(reply: FastifyReply, status: number, data: readonly Json[], rest: Readonly<Record<string, Json>> = {}): Promise<FastifyReply> {
  if (data.length <= elementsPerTurn) return reply.code(status).send({ data, ...rest })
  const slices: string[] = []
  for (let at = 0; at < data.length; at += elementsPerTurn) {
    if (at > 0) await nextTurn()
    slices.push(data.slice(at, at + elementsPerTurn).map((element) => stringifyJson(element)).join(','))
  }
  // The serializer prints an object's keys in insertion order: `data` first, then the rest.
  let text = `{"data":[${slices.join(',')}]`
  for (const [key, value] of Object.entries(rest)) text += `,${JSON.stringify(key)}:${stringifyJson(value)}`
  return reply.code(status).header('content-type', 'application/json; charset=utf-8').send(`${text}}`)
}
