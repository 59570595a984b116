import { closeSync, constants, createWriteStream, existsSync, fstatSync, openSync } from 'node:fs'
import { isatty } from 'node:tty'
import { Socket, type SocketConstructorOpts } from 'node:net'
import type { Writable } from 'node:stream'

/**
 * Where `tally export` writes its lines: a file it opens (`--out`) or the
 * process's standard output, written asynchronously in both cases.
 *
 * Node's own `process.stdout` writes a pipe or a file synchronously on
 * Linux, so each write held the export's JavaScript thread until the
 * reader had taken the bytes (`tally export | sha256sum` took two to four
 * times `--out`'s wall time). Here a pipe is reopened and written by a
 * file stream on the thread pool, as a file on fd 1 is; a socket on fd 1
 * gets a libuv stream of its own; a terminal keeps Node's stream. Each
 * queues at most about `queueBytes` before `write` waits for it to drain,
 * so memory does not grow with the ledger whatever the reader's pace.
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
    super(cause.code === 'EPIPE' || cause.code === 'ENXIO' || cause.code === 'ERR_STREAM_DESTROYED'
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
    if (stat.isFIFO() && existsSync(PROC_STDOUT)) {
      // The pipe opened afresh: a file description of our own, blocking,
      // so each write of queued chunks runs whole on the thread pool. On
      // fd 1 itself (non-blocking once anything in the process made it a
      // libuv stream) a libuv stream is woken for every 4 KiB the reader
      // frees: measured 1.3 times the CPU of the synchronous writes. The
      // probe first: opened blocking, a pipe whose reader has gone would
      // wait for a reader that never comes.
      closeSync(openSync(PROC_STDOUT, constants.O_WRONLY | constants.O_NONBLOCK))
      stream = createWriteStream('', { fd: openSync(PROC_STDOUT, constants.O_WRONLY), highWaterMark: queueBytes })
    } else if (stat.isFIFO()) {
      // No /proc (macOS, BSD): Node's own stream, synchronous on a pipe, as before.
      stream = process.stdout
    } else if (stat.isSocket()) {
      stream = new Socket(socketOptions(queueBytes))
    } else if (isatty(STDOUT_FD)) {
      // A terminal is no place for speed, and its fd may be non-blocking
      // (a file stream's write would fail with EAGAIN): Node's own stream.
      stream = process.stdout
    } else {
      stream = createWriteStream('', { fd: STDOUT_FD, autoClose: false, highWaterMark: queueBytes })
    }
  } catch (error) {
    const failed = new ExportOutputFailed('standard output', error as Error)
    return { write: () => Promise.reject(failed), end: () => Promise.reject(failed), destroy: () => {} }
  }
  return streamOutput(stream, 'standard output')
}

const PROC_STDOUT = `/proc/self/fd/${STDOUT_FD}`

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
