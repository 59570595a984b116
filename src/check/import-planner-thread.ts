import type { Worker } from 'node:worker_threads'
import type { LedgerName } from '../domain/index.ts'
import { TallyError } from '../domain/index.ts'
import type { ErrorCode, ErrorKind } from '../domain/index.ts'
import type { CheckedLog, PlannedLog } from './import-plan.ts'
import { RefusedLog } from './import-plan.ts'
import type { WireValue } from './import-wire.ts'
import { readWire } from './import-wire.ts'
import { startSourceWorker } from './source-worker.ts'

/**
 * The import's planning on a thread of its own: the stream's bytes go to a
 * worker (`import-worker.ts`), which parses each log, verifies its hash
 * and place in the chain and maps it to its order; the thread that applies
 * them receives the logs planned, in order, in batches. The work the
 * import adds to every log's apply moves off the write pipeline's thread,
 * and the tool gets both cores of a machine.
 *
 * Memory stays bounded: at most `plannerBytesInFlightMax` of the stream's
 * bytes are with the worker or waiting, planned, to be applied; the source
 * is read no faster (its backpressure holds the sender).
 */

/** Bytes of the stream sent to the worker whose logs are not applied yet, at most (beyond one chunk). */
export const plannerBytesInFlightMax = 4 * 1024 * 1024

/** What the pipeline's thread sends the worker. */
export type ToPlanner = { readonly type: 'chunk'; readonly bytes: Uint8Array } | { readonly type: 'end' } | { readonly type: 'abort' }

/** What the worker sends back. */
export type FromPlanner =
  | { readonly type: 'logs'; readonly wire: WireValue[]; readonly chunks: number }
  | { readonly type: 'end' }
  | { readonly type: 'aborted' }
  | { readonly type: 'refused'; readonly error: { code: string; kind: string; message: string; details: Record<string, string> | undefined }; readonly applyBefore: boolean }
  | { readonly type: 'failed'; readonly name: string; readonly message: string; readonly stack: string }

type Event = FromPlanner | { readonly type: 'crashed'; readonly error: unknown } | { readonly type: 'exited'; readonly code: number }

function startWorker(ledger: LedgerName): Worker {
  return startSourceWorker(new URL('./import-worker.ts', import.meta.url), { execArgv: [], workerData: { ledger }, name: 'tally-import-planner' })
}

/**
 * The stream's logs, planned by a worker thread: each a `PlannedLog`, or a
 * `CheckedLog` (hash verified) that the caller maps (a revert, or any log
 * not of the transfer shape the wire carries). A refused log throws
 * `RefusedLog` after the logs before it; a failure of the source throws
 * its error after the logs of the chunks read before it.
 */
export async function* planInWorker(ledger: LedgerName, source: AsyncIterator<Uint8Array>): AsyncGenerator<PlannedLog | CheckedLog> {
  const worker = startWorker(ledger)
  const events: Event[] = []
  let wakeReader: (() => void) | undefined
  const deliver = (event: Event): void => {
    events.push(event)
    const resume = wakeReader
    wakeReader = undefined
    resume?.()
  }
  worker.on('message', (message: FromPlanner) => deliver(message))
  worker.on('error', (error) => deliver({ type: 'crashed', error }))
  worker.on('exit', (code) => deliver({ type: 'exited', code }))

  let stopped = false
  let bytesSent = 0
  /** Bytes of each chunk sent, oldest first: the worker's batches say how many of them they cover. */
  const sentChunks: number[] = []
  let wakeSender: (() => void) | undefined
  let sourceFailure: { error: unknown } | undefined

  const send = async (): Promise<void> => {
    try {
      for (;;) {
        while (!stopped && bytesSent >= plannerBytesInFlightMax) await new Promise<void>((resolve) => (wakeSender = resolve))
        if (stopped) return
        const next = await source.next()
        if (stopped) return
        if (next.done === true) break
        const chunk = next.value
        if (chunk.byteLength === 0) continue
        // A copy of its own, moved to the worker (the source's chunks may share a pooled buffer).
        const bytes = new Uint8Array(chunk)
        sentChunks.push(bytes.byteLength)
        bytesSent += bytes.byteLength
        worker.postMessage({ type: 'chunk', bytes } satisfies ToPlanner, [bytes.buffer])
      }
      worker.postMessage({ type: 'end' } satisfies ToPlanner)
    } catch (error) {
      if (stopped) return
      sourceFailure = { error }
      worker.postMessage({ type: 'abort' } satisfies ToPlanner)
    }
  }
  const sending = send()

  try {
    for (;;) {
      while (events.length === 0) await new Promise<void>((resolve) => (wakeReader = resolve))
      const event = events.shift() as Event
      switch (event.type) {
        case 'logs':
          yield* readWire(ledger, event.wire)
          // Applied (or proposed): the chunks they came from leave the window.
          for (let i = 0; i < event.chunks; i++) bytesSent -= sentChunks.shift() as number
          wakeSender?.()
          break
        case 'end':
          return
        case 'aborted':
          throw (sourceFailure as { error: unknown }).error
        case 'refused': {
          const { code, kind, message, details } = event.error
          const error = new TallyError({ code: code as ErrorCode, kind: kind as ErrorKind, message, ...(details === undefined ? {} : { details }) })
          throw new RefusedLog(error, event.applyBefore)
        }
        case 'failed': {
          const error = new Error(event.message)
          error.name = event.name
          error.stack = `${event.name}: ${event.message} (in the import's planning thread)\n${event.stack}`
          throw error
        }
        case 'crashed':
          throw event.error
        case 'exited':
          throw new Error(`the import's planning thread exited (code ${event.code}) before the end of the stream`)
      }
    }
  } finally {
    stopped = true
    wakeSender?.()
    worker.removeAllListeners('exit')
    await worker.terminate()
    // The sender stops at its next step; a source that never yields again is the caller's to close.
    void sending.then(() => source.return?.()).catch(() => {})
  }
}
