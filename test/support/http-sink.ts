import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { EventEmitter } from 'node:events'
import { parseJson } from '../../src/domain/index.ts'

/** One POST the sink accepted (2xx): the log ids it carried, in order. */
export interface AcceptedBatch {
  readonly ledger: string
  readonly pipelineID: string
  readonly ids: readonly bigint[]
}

/**
 * A test HTTP sink on 127.0.0.1: records the batches it accepts, can fail
 * the next N requests (500) or hold every request unanswered until
 * released. Waiting is by events with a deadline, never by sleeping.
 */
export class TestHttpSink {
  readonly accepted: AcceptedBatch[] = []
  requests = 0
  failures = 0
  private failNext = 0
  private stalled = false
  private readonly held: ServerResponse[] = []
  private readonly events = new EventEmitter()
  private readonly server = createServer((request, response) => this.handle(request, response))
  url = ''

  static async start(): Promise<TestHttpSink> {
    const sink = new TestHttpSink()
    await new Promise<void>((resolve) => sink.server.listen(0, '127.0.0.1', resolve))
    const address = sink.server.address()
    if (address === null || typeof address === 'string') throw new Error('no port')
    sink.url = `http://127.0.0.1:${address.port}/logs`
    return sink
  }

  /** The next `count` requests answer 500 (the pipeline must retry them). */
  fail(count: number): void {
    this.failNext = count
  }

  /** From now on requests are held open, unanswered. */
  stall(): void {
    this.stalled = true
  }

  /** Answers the held requests 503 (they failed) and stops holding. */
  release(): void {
    this.stalled = false
    for (const response of this.held.splice(0)) response.writeHead(503).end()
  }

  /** Every accepted id, in arrival order (with replays). */
  ids(): bigint[] {
    return this.accepted.flatMap((batch) => batch.ids)
  }

  /** Resolves once `predicate` holds (checked now and after each request); rejects after `deadlineMs`. */
  until(predicate: () => boolean, what: string, deadlineMs = 60_000): Promise<void> {
    if (predicate()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!predicate()) return
        clearTimeout(timer)
        this.events.off('request', check)
        resolve()
      }
      const timer = setTimeout(() => {
        this.events.off('request', check)
        reject(new Error(`sink: ${what} not reached in ${deadlineMs} ms (${this.requests} requests, ${this.ids().length} ids accepted)`))
      }, deadlineMs)
      this.events.on('request', check)
    })
  }

  async close(): Promise<void> {
    this.release()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      this.requests++
      if (this.stalled) {
        this.held.push(response)
      } else if (this.failNext > 0) {
        this.failNext--
        this.failures++
        response.writeHead(500).end('down')
      } else {
        const body = parseJson(Buffer.concat(chunks).toString('utf8')) as { ledger: string; pipelineID: string; logs: { id: bigint }[] }
        this.accepted.push({ ledger: body.ledger, pipelineID: body.pipelineID, ids: body.logs.map((log) => log.id) })
        response.writeHead(204).end()
      }
      this.events.emit('request')
    })
  }
}

/**
 * The delivery guarantees over what a sink accepted: every batch continues
 * from at most one past the highest id seen before it (no log skipped),
 * ids inside a batch are consecutive, and together they cover `0..newest`.
 */
export function assertOrderedAtLeastOnce(batches: readonly AcceptedBatch[], firstId: bigint, newest: bigint): void {
  let highest = firstId - 1n
  for (const [index, batch] of batches.entries()) {
    const first = batch.ids[0]
    if (first === undefined) throw new Error(`batch ${index} is empty`)
    if (first > highest + 1n) throw new Error(`batch ${index} starts at ${first} after ${highest}: logs skipped`)
    for (let i = 1; i < batch.ids.length; i++) {
      if (batch.ids[i] !== (batch.ids[i - 1] as bigint) + 1n) throw new Error(`batch ${index} is not consecutive: ${batch.ids.join(',')}`)
    }
    const last = batch.ids[batch.ids.length - 1] as bigint
    if (last > highest) highest = last
  }
  if (highest !== newest) throw new Error(`delivered up to ${highest}, the ledger's newest log is ${newest}`)
}
