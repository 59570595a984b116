import type { FastifyBaseLogger } from 'fastify'

/** The bindings and options fastify hands a child logger factory (its `reqId`; a route's level or serializers): pino's, as fastify types them. */
type Bindings = Parameters<FastifyBaseLogger['child']>[0]
type ChildLoggerOptions = NonNullable<Parameters<FastifyBaseLogger['child']>[1]>

/** The pino methods a request's logger is asked for beyond fastify's `FastifyBaseLogger`. */
interface PinoLogger extends FastifyBaseLogger {
  isLevelEnabled(level: string): boolean
  setBindings(bindings: Bindings): void
}

type LevelName = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/**
 * Fastify's `childLoggerFactory` for a request: the pino child it would
 * make (`parent.child(bindings, options)`), made only when the request first
 * writes a line at an enabled level, changes its level, takes bindings after
 * a line, or makes a child of its own. At `info` most requests log nothing
 * (their two lines are debug: `RequestLinesAtDebug`), and a child per request
 * cost ~1 µs — the options' copy and the bindings' JSON text
 * (docs/performance.md, "After: the HTTP edge per request: the request id
 * and the child logger").
 *
 * The lines are the child's own: the same call with the same arguments,
 * bindings set before it (`setBindings`: the authenticated client) applied
 * in the order given, and pino stamps each line's time when it is written.
 * A route with options of its own (a log level, serializers) gets its child
 * at once.
 */
export function requestChildLogger(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  if (Object.keys(options).length !== 0 || !isPino(parent)) return parent.child(bindings, options)
  return new RequestLogger(parent, bindings, options)
}

function isPino(logger: FastifyBaseLogger): logger is PinoLogger {
  const methods = logger as Partial<Record<'isLevelEnabled' | 'setBindings', unknown>>
  return typeof methods.isLevelEnabled === 'function' && typeof methods.setBindings === 'function'
}

/** A request's logger until its pino child exists, then a forwarder to it. */
export class RequestLogger implements FastifyBaseLogger {
  private pino: PinoLogger | undefined
  /** `setBindings` calls before the child exists, replayed on it in order. */
  private laterBindings: Bindings[] | undefined

  constructor(
    private readonly parent: PinoLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  /** Whether the pino child was made (tests: a request that logs nothing makes none). */
  get materialised(): boolean {
    return this.pino !== undefined
  }

  get level(): string {
    return this.pino === undefined ? this.parent.level : this.pino.level
  }

  set level(level: string) {
    this.made().level = level
  }

  fatal(...args: unknown[]): void {
    this.write('fatal', args)
  }

  error(...args: unknown[]): void {
    this.write('error', args)
  }

  warn(...args: unknown[]): void {
    this.write('warn', args)
  }

  info(...args: unknown[]): void {
    this.write('info', args)
  }

  debug(...args: unknown[]): void {
    this.write('debug', args)
  }

  trace(...args: unknown[]): void {
    this.write('trace', args)
  }

  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.made().child(bindings, options)
  }

  setBindings(bindings: Bindings): void {
    if (this.pino !== undefined) return this.pino.setBindings(bindings)
    ;(this.laterBindings ??= []).push(bindings)
  }

  isLevelEnabled(level: string): boolean {
    return this.pino === undefined ? this.parent.isLevelEnabled(level) : this.pino.isLevelEnabled(level)
  }

  private write(level: LevelName, args: unknown[]): void {
    // Until the child exists its level is the parent's (a pino child without a level option inherits it).
    if (this.pino === undefined && !this.parent.isLevelEnabled(level)) return
    const log = this.made()[level] as (...logged: unknown[]) => void
    log.apply(this.pino, args)
  }

  private made(): PinoLogger {
    if (this.pino !== undefined) return this.pino
    const child = this.parent.child(this.bindings, this.options) as PinoLogger
    if (this.laterBindings !== undefined) for (const bindings of this.laterBindings) child.setBindings(bindings)
    this.laterBindings = undefined
    this.pino = child
    return child
  }
}
