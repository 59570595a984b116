import { hostname } from 'node:os'
import { Writable } from 'node:stream'
import type { NodeLog } from '../server/index.ts'

/** pino's level names and numbers: fastify's request lines and the node's lines share them. */
export const logLevels = new Map<string, number>([
  ['trace', 10],
  ['debug', 20],
  ['info', 30],
  ['warn', 40],
  ['error', 50],
  ['fatal', 60],
  ['silent', Number.POSITIVE_INFINITY],
])

export function parseLogLevel(value: string): string {
  if (!logLevels.has(value)) throw new Error(`--log-level: expected one of ${[...logLevels.keys()].join(', ')}, got ${JSON.stringify(value)}`)
  return value
}

/**
 * The node's messages as JSON lines in pino's shape (`level`, `time`, `pid`,
 * `hostname`, `msg`, then the figures), so one stream carries them and
 * fastify's request lines alike.
 */
export function nodeLogLines(options: { readonly level: string; readonly stream: NodeJS.WritableStream }): NodeLog {
  const threshold = logLevels.get(options.level) ?? 30
  const base = { pid: process.pid, hostname: hostname() }
  return (message, fields = {}) => {
    const { level = 'info', ...figures } = fields
    const number = logLevels.get(level) ?? 30
    if (number < threshold) return
    options.stream.write(`${JSON.stringify({ level: number, time: Date.now(), ...base, component: 'node', ...figures, msg: message })}\n`)
  }
}

/** Bytes of log lines held before they are written without waiting for the turn to end. */
export const logLinesBytesMax = 64 * 1024

/**
 * Log lines gathered over one turn of the event loop and written to `target`
 * in one call: under load every request logs two lines, and a synchronous
 * write per line (stderr on a pipe or a file) cost more than building them.
 * Lines keep their order; at most `bytesMax` wait, and never past the turn.
 * `flush` writes what waits at once (the caller runs it on process exit, so
 * a last line before exiting is not lost); a SIGKILL loses at most the
 * lines of the turn it interrupts.
 */
export function linesPerTurn(target: NodeJS.WritableStream, bytesMax = logLinesBytesMax): Writable & { flush(): void } {
  let pending: string[] = []
  let pendingBytes = 0
  let scheduled = false
  const flush = (): void => {
    if (pending.length === 0) return
    const text = pending.length === 1 ? (pending[0] as string) : pending.join('')
    pending = []
    pendingBytes = 0
    target.write(text)
  }
  const stream = new Writable({
    decodeStrings: false,
    write(chunk: Buffer | string, _encoding, done) {
      const line = typeof chunk === 'string' ? chunk : chunk.toString('utf8')
      pending.push(line)
      pendingBytes += line.length
      if (pendingBytes >= bytesMax) flush()
      else if (!scheduled) {
        scheduled = true
        setImmediate(() => {
          scheduled = false
          flush()
        })
      }
      done()
    },
    final(done) {
      flush()
      done()
    },
  })
  return Object.assign(stream, { flush })
}

const levelNames = new Map([...logLevels].map(([name, number]) => [number, name.toUpperCase()]))

/**
 * For a terminal: each JSON line as `HH:MM:SS.mmm LEVEL msg key=value …`.
 * Lines that are not JSON pass through. A stand-in for `pino-pretty`, which
 * Tally does not depend on; off a terminal the JSON goes out untouched.
 */
export function prettyLines(target: NodeJS.WritableStream): Writable {
  let pending = ''
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      pending += chunk.toString()
      let newline = pending.indexOf('\n')
      while (newline >= 0) {
        target.write(`${prettyLine(pending.slice(0, newline))}\n`)
        pending = pending.slice(newline + 1)
        newline = pending.indexOf('\n')
      }
      done()
    },
  })
}

export function prettyLine(line: string): string {
  let record: unknown
  try {
    record = JSON.parse(line)
  } catch {
    return line
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return line
  const { level, time, msg, pid: _pid, hostname: _hostname, ...rest } = record as Record<string, unknown>
  const when = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : ''
  const name = (typeof level === 'number' ? levelNames.get(level) : undefined) ?? String(level)
  const figures = Object.entries(rest).map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
  return [when, name.padEnd(5), String(msg ?? ''), ...figures].join(' ')
}
