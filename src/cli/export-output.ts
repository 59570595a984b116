import { createWriteStream, fstatSync } from 'node:fs'
import { Socket, type SocketConstructorOpts } from 'node:net'
import type { Writable } from 'node:stream'

/**
 * Where `tally export` writes its lines: a file it opens (`--out`) or the
 * process's standard output, written asynchronously in both cases.
 *
 * Node's own `process.stdout` writes a pipe or a file synchronously on
 * Linux, so each write held the export's JavaScript thread until the
 * reader had taken the bytes (`tally export | sha256sum` took two to four
 * times `--out`'s wall time). Here a pipe or socket on fd 1 gets a libuv
 * stream of its own (written as it drains, from the event loop), and
 * anything else on fd 1 (a file, a terminal, `/dev/null`) a file stream
 * whose writes run on the thread pool. Either queues at most `queueBytes`
 * before `write` waits for it to drain, so memory does not grow with the
 * ledger whatever the reader's pace.
 */
export interface ExportOutput {
  /** Resolves once the bytes are queued within the bound; rejects with `ExportOutputFailed` once the output has failed. */
  write(bytes: Buffer): Promise<void>
  /** Resolves once every queued byte is written (a file we opened is closed; fd 1 is left to the process). */
  end(): Promise<void>
  /** Drops what is queued and stops writing (after a failure elsewhere). */
  destroy(): void
}

/** The output refused a write: its reader went away (`EPIPE`), the disk is full, the file could not be opened… */
export class ExportOutputFailed extends Error {
  readonly code: string | undefined
  constructor(readonly where: string, cause: Error & { code?: string }) {
    super(cause.code === 'EPIPE' || cause.code === 'ERR_STREAM_DESTROYED'
      ? `the reader of ${where} closed it before the export ended`
      : `writing ${where} failed: ${cause.message}`, { cause })
    this.code = cause.code
  }
}

const STDOUT_FD = 1

export function openExportOutput(file: string | undefined, queueBytes: number): ExportOutput {
  if (file !== undefined) return streamOutput(createWriteStream(file, { highWaterMark: queueBytes }), file)
  let stream: Writable
  try {
    const stat = fstatSync(STDOUT_FD)
    stream = stat.isFIFO() || stat.isSocket()
      ? new Socket(socketOptions(queueBytes))
      : createWriteStream('', { fd: STDOUT_FD, autoClose: false, highWaterMark: queueBytes })
  } catch (error) {
    const failed = new ExportOutputFailed('standard output', error as Error)
    return { write: () => Promise.reject(failed), end: () => Promise.reject(failed), destroy: () => {} }
  }
  return streamOutput(stream, 'standard output')
}

/**
 * A socket passes its options on to its `Duplex`, which takes the write
 * queue's bound (`@types/node` does not list it for `Socket`).
 */
function socketOptions(queueBytes: number): SocketConstructorOpts {
  const options: SocketConstructorOpts & { writableHighWaterMark: number } = { fd: STDOUT_FD, readable: false, writable: true, writableHighWaterMark: queueBytes }
  return options
}

function streamOutput(stream: Writable, where: string): ExportOutput {
  let failure: ExportOutputFailed | undefined
  let waiting: { resolve: () => void; reject: (error: Error) => void } | undefined
  const fail = (error: Error): void => {
    failure ??= new ExportOutputFailed(where, error)
    waiting?.reject(failure)
    waiting = undefined
  }
  // Listened to from the start: an error between two writes (the reader
  // closing while nothing is queued) must not be an unhandled 'error'.
  stream.on('error', fail)
  stream.on('drain', () => {
    waiting?.resolve()
    waiting = undefined
  })
  return {
    async write(bytes) {
      if (failure !== undefined) throw failure
      if (stream.write(bytes)) return
      await new Promise<void>((resolve, reject) => {
        waiting = { resolve, reject }
      })
    },
    async end() {
      if (failure !== undefined) throw failure
      await new Promise<void>((resolve, reject) => {
        waiting = { resolve: () => {}, reject }
        stream.end(() => {
          waiting = undefined
          if (failure !== undefined) reject(failure)
          else resolve()
        })
      })
    },
    destroy() {
      stream.destroy()
    },
  }
}
