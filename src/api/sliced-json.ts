import type { FastifyReply } from 'fastify'
import type { Json } from '../domain/index.ts'
import { JsonBytes, stringifyJson } from '../domain/index.ts'

/** Elements printed (or parsed) between two turns of the event loop: a few ms of work. */
export const elementsPerTurn = 256

/** One turn of the event loop: health checks and other requests run between slices. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/**
 * `{"data":[…], ...rest}` from elements written by `writeElement` (the
 * transaction printer's bytes, no objects, no strings): a short array at
 * once, a long one `elementsPerTurn` elements at a time with a turn of the
 * event loop between slices. The same bytes and content type as the reply
 * serializer gives for `{data, ...rest}` with the elements as objects.
 */
export async function sendPrintedData(
  reply: FastifyReply,
  status: number,
  count: number,
  writeElement: (out: JsonBytes, i: number) => void,
  rest: Readonly<Record<string, Json>> = {},
): Promise<FastifyReply> {
  // The writer is shared by every answer: each slice is written and taken within one synchronous stretch.
  // A failure half way leaves nothing behind for the next answer.
  const slices: Buffer[] = []
  try {
    sliceWriter.raw('{"data":[')
    for (let i = 0; i < count; i++) {
      if (i > 0 && i % elementsPerTurn === 0) {
        slices.push(sliceWriter.take())
        await nextTurn()
      }
      if (i > 0) sliceWriter.raw(',')
      writeElement(sliceWriter, i)
    }
    sliceWriter.raw(']')
    for (const [key, value] of Object.entries(rest)) {
      sliceWriter.raw(',')
      sliceWriter.string(key)
      sliceWriter.raw(':')
      sliceWriter.utf8(stringifyJson(value))
    }
    sliceWriter.raw('}')
    slices.push(sliceWriter.take())
  } catch (error) {
    sliceWriter.discardFrom(0)
    throw error
  }
  return sendPrinted(reply, status, slices.length === 1 ? (slices[0] as Buffer) : Buffer.concat(slices))
}

const sliceWriter = new JsonBytes()

/** An answer already printed as JSON (text or UTF-8 bytes): sent as it is, with the content type the reply serializer gives. */
export function sendPrinted(reply: FastifyReply, status: number, text: string | Buffer): FastifyReply {
  return reply.code(status).header('content-type', 'application/json; charset=utf-8').send(text)
}
