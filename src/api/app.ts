import { randomUUID } from 'node:crypto'
import Fastify, { LogController } from 'fastify'
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify'
import type { LedgerNode } from '../server/index.ts'
import { InvariantViolation, accountAddressLengthMax, metadataKeyLengthMax, parseJson, stringifyJson } from '../domain/index.ts'
import type { Json } from '../domain/index.ts'
import { jsonSliceCharacters, parseJsonBody } from './json-body.ts'
import { errorHandler } from './errors.ts'
import { ConnectionTracker, RouteTable, clientErrorHandler, frameworkErrors, refuseUnexpectedBodyType, timeoutCheckIntervalMs, transportLimitsDefault } from './transport.ts'
import type { TransportLimits } from './transport.ts'
import { Views } from './views.ts'
import { cursorKeyOf } from './paging.ts'
import { systemRoutes } from './routes/system.ts'
import { ledgerRoutes } from './routes/ledgers.ts'
import { transactionRoutes } from './routes/transactions.ts'
import { accountRoutes } from './routes/accounts.ts'
import { logRoutes } from './routes/logs.ts'
import { aggregateRoutes } from './routes/aggregates.ts'
import { bulkRoutes, bulkElementsMaxDefault } from './routes/bulk.ts'
import { openApiRoutes } from './routes/openapi.ts'
import { unsupportedRoutes } from './routes/unsupported.ts'
import { logTransferRoutes } from './routes/logs-transfer.ts'
import { checkRoutes } from './routes/check.ts'
import { schemaRoutes } from './routes/schemas.ts'
import { outputRoutes } from './routes/outputs.ts'
import { Outputs, checkpointMsDefault } from '../outputs/index.ts'
import type { OutputsOptions, SubmitOrders } from '../outputs/index.ts'
import { ServerMetrics, metricsRoutes } from './metrics.ts'
import { LatencyTrace, loopStallThresholdMsDefault, wallMs, watchLatencyTrace, watchLoopStalls } from '../server/index.ts'
import { authentication, tokenEndpoint } from './auth/plugin.ts'
import { AppliedIndexHeaders } from './applied-index.ts'
import { requestChildLogger } from './request-logger.ts'
import type { AuthOptions } from './auth/plugin.ts'
import type { ClusterRuntimeView } from '../cluster/runtime-status.ts'

export interface ApiOptions {
  /** Largest request body; default sized to the bulk limit (`bodyBytesMaxFor`). */
  readonly bodyBytesMax?: number
  readonly bulkElementsMax?: number
  /** Structured JSON request logs (fastify's pino); none when absent. */
  readonly logger?: ApiLogOptions
  /** A request answered after this long logs one warning with its figures. */
  readonly slowRequestMs?: number
  /** Bearer tokens required on every route but the probes (`docs/security.md`); none when absent. */
  readonly auth?: AuthOptions
  /** Serve HTTPS with this certificate chain and key (PEM); plain HTTP when absent. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer }
  /** Timeouts, connection bound and shutdown grace; each defaults to `transportLimitsDefault`. */
  readonly transport?: Partial<TransportLimits>
  /** Exporters and pipelines (docs/pipelines.md): where stdout goes, how often a caught-up pipeline looks again. */
  readonly outputs?: OutputsOptions
  /** How long a read waits for `Tally-Min-Applied-Index` before 503 (docs/reads.md); default `readWaitMsDefault`. */
  readonly readWaitMs?: number
  /**
   * In cluster mode, the runtime's view (assignment, replicas, recovery log):
   * added to `/_/cluster` and `/_/metrics`. Read at each request; undefined
   * while the runtime has not started.
   */
  readonly clusterRuntime?: () => ClusterRuntimeView | undefined
  /**
   * Room for read answers kept between writes (`docs/reads.md`, "Answers kept
   * between writes"): an account, a wallet's first page. Default
   * `answerCacheBytesDefault` (16 MiB); 0 keeps none.
   */
  readonly answerCacheBytes?: number
  /** An event-loop delay this long is logged at warn with what held the loop (`src/server/loop-stalls.ts`); 0 = not watched. Default 100. */
  readonly loopStallThresholdMs?: number
  /** Debug: record a timeline of what the server does and write it here at close (`src/server/latency-trace.ts`). */
  readonly latencyTraceFile?: string
}

export interface ApiLogOptions {
  readonly level: string
  readonly stream: NodeJS.WritableStream
}

export const slowRequestMsDefault = 1000

/**
 * A line per request on arrival and one on completion cost more than a read
 * itself under load (~45 µs for two pino lines, docs/performance.md): they
 * are debug lines. Everything else fastify logs keeps its level (a request
 * that errored, the error handler's lines); slow requests warn (`onResponse`).
 */
class RequestLinesAtDebug extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return
    request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error !== null && error !== undefined) return super.requestCompleted(error, request, reply, {})
    if (this.isLogDisabled(request)) return
    reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed')
  }
}

/** An incoming `X-Request-Id` is kept when it is short visible ASCII (it goes into logs); otherwise a new one is made. */
const requestIdPattern = /^[\x21-\x7e]{1,128}$/

export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && requestIdPattern.test(header) ? header : requestIds.next()
}

/**
 * New request ids, UUID-shaped (docs/operations.md, `reqId`): a random UUID
 * drawn once per process, its last 12 hex digits (48 bits) replaced by a
 * counter that starts at a random value. Ids of one process never repeat
 * (2^48 requests before the counter wraps); two processes share none but by
 * the chance of two random UUIDs sharing their first 74 random bits. A
 * `randomUUID()` per request cost ~0.25–0.6 µs and ~590 B (docs/performance.md,
 * "After: the HTTP edge per request: the request id and the child logger"). The
 * counter is two 24-bit halves: a small integer prints as hex several times
 * faster than a 48-bit double, and the upper half's text changes once in
 * 2^24 ids. A request id names a request in logs; it is no secret, so that
 * it can be guessed from the one before costs nothing.
 */
export class RequestIds {
  private readonly prefix: string
  private high: number
  private low: number
  /** The prefix and the upper half's six digits. */
  private highText: string

  constructor(seed: string = randomUUID()) {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(seed)) throw new InvariantViolation(`a request-id seed is a lowercase UUID, got ${JSON.stringify(seed)}`)
    this.prefix = seed.slice(0, 24)
    this.high = Number.parseInt(seed.slice(24, 30), 16)
    this.low = Number.parseInt(seed.slice(30), 16)
    this.highText = this.prefix + hex6(this.high)
  }

  next(): string {
    const id = this.highText + hex6(this.low)
    this.low = (this.low + 1) & halfMask
    if (this.low === 0) {
      this.high = (this.high + 1) & halfMask
      this.highText = this.prefix + hex6(this.high)
    }
    return id
  }
}

const halfMask = 0xff_ffff

function hex6(value: number): string {
  return value.toString(16).padStart(6, '0')
}

const requestIds = new RequestIds()

/**
 * What a request line logs of the request: no query string (filters carry
 * metadata values), no headers (Authorization), no body (amounts).
 */
function requestSummary(request: { method: string; url: string; ip?: string }): Record<string, string | undefined> {
  const query = request.url.indexOf('?')
  return { method: request.method, url: query < 0 ? request.url : request.url.slice(0, query), remoteAddress: request.ip }
}

/** Room for one `_bulk` of `bulkElementsMax` elements of up to 2 KiB each, and never under 1 MiB. */
export function bodyBytesMaxFor(bulkElementsMax: number): number {
  return 1024 * 1024 + bulkElementsMax * 2 * 1024
}

export const bodyBytesMaxDefault = bodyBytesMaxFor(bulkElementsMaxDefault)

/**
 * The longest path parameter the router passes on, as sent: every field a
 * path carries (an address, a metadata key) fits percent-encoded (up to 9
 * characters for a UTF-16 unit: three UTF-8 bytes as `%XX`), so that its own
 * parser answers — with its length limit when it passes it — instead of the
 * router's 100-character default refusing fields Tally accepts in bodies.
 */
export const pathParameterLengthMax = 9 * Math.max(accountAddressLengthMax, metadataKeyLengthMax) + 9

/**
 * The HTTP adapter: Formance v2 routes at `/v2/…` and under the gateway
 * prefix `/api/ledger/v2/…` that Formance's SDKs use, plus Tally's `/_/…`.
 * Bodies go through the lossless JSON codec both ways; every error, the
 * transport's own included, answers `{errorCode, errorMessage}`.
 */
export async function buildApi(node: LedgerNode, options: ApiOptions = {}): Promise<FastifyInstance> {
  const limits: TransportLimits = { ...transportLimitsDefault, ...options.transport }
  const bulkElementsMax = options.bulkElementsMax ?? bulkElementsMaxDefault
  const bodyBytesMax = options.bodyBytesMax ?? bodyBytesMaxFor(bulkElementsMax)
  // Node's own timeouts live on the HTTP(S) server: the same for both.
  const serverTimeouts = { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: timeoutCheckIntervalMs(limits) }
  const serverOptions: FastifyServerOptions & { https?: { cert: Buffer; key: Buffer; minVersion: 'TLSv1.2' } & typeof serverTimeouts } = {
    ...(options.tls === undefined ? { http: serverTimeouts } : { https: { cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2', ...serverTimeouts } }),
    logger: options.logger === undefined ? false : { level: options.logger.level, stream: options.logger.stream, serializers: { req: requestSummary } },
    logController: new RequestLinesAtDebug(),
    // Without a logger fastify hands every request its no-op logger, unless a factory is given.
    ...(options.logger === undefined ? {} : { childLoggerFactory: requestChildLogger }),
    genReqId: (request) => requestIdOf(request.headers['x-request-id']),
    bodyLimit: bodyBytesMax,
    routerOptions: { maxParamLength: pathParameterLengthMax },
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    return503OnClosing: false, // answered by the connection tracker, in the v2 shape
    clientErrorHandler: clientErrorHandler(limits),
    frameworkErrors: frameworkErrors(pathParameterLengthMax),
  }
  // One instance type for both: the routes never see whether the socket is TLS.
  const app = Fastify(serverOptions) as unknown as FastifyInstance
  const connections = new ConnectionTracker(limits)
  connections.attach(app)
  const routeTable = new RouteTable()
  app.addHook('onRoute', (route) => routeTable.add(route.method, route.url))
  // v2 clients send list filters as a JSON body on GET and HEAD.
  app.addHttpMethod('GET', { hasBody: true, overrideExisting: true })
  app.addHttpMethod('HEAD', { hasBody: true, overrideExisting: true })
  app.removeAllContentTypeParsers()
  // Large bodies parse in slices so one request cannot hold the event loop (health checks, other clients).
  // A callback parser: a body of one slice or less is parsed and handed on at once, with no promise and its turn.
  const parseBody = (_request: unknown, body: string | Buffer, done: (error: Error | null, value?: unknown) => void): void => {
    const text = typeof body === 'string' ? body : body.toString('utf8')
    if (text.trim() === '') return done(null, undefined)
    if (text.length > jsonSliceCharacters) return void parseJsonBody(text).then((value) => done(null, value), done)
    let value: Json
    try {
      value = parseJson(text)
    } catch (error) {
      return done(error as Error)
    }
    done(null, value)
  }
  app.addContentTypeParser('*', { parseAs: 'string' }, parseBody)
  // The same parser under the type JSON clients send: fastify finds it by the header's text in its cache, where
  // the catch-all is looked up by parsing the header anew on every request (docs/performance.md, "Single writes
  // at 64 connections").
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseBody)
  app.decorate('cursorKey', cursorKeyOf(node.clusterId))
  app.setReplySerializer((payload) => stringifyJson(payload))
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0] as string
    const allowed = routeTable.methodsAt(path)
    if (allowed.length > 0) {
      return reply
        .code(405)
        .header('Allow', allowed.join(', '))
        .send({ errorCode: 'VALIDATION', errorMessage: `method ${request.method} not allowed on ${path}; allowed: ${allowed.join(', ')}` })
    }
    return reply.code(404).send({ errorCode: 'NOT_FOUND', errorMessage: `no route ${request.method} ${path}` })
  })
  const metrics = new ServerMetrics(node)
  node.observe(metrics)
  const loopStallThresholdMs = options.loopStallThresholdMs ?? loopStallThresholdMsDefault
  if (loopStallThresholdMs > 0) {
    const stalls = watchLoopStalls({
      store: node.store,
      apply: node.applyTime,
      observer: metrics,
      thresholdMs: loopStallThresholdMs,
      log: (message, { level, ...fields } = {}) => app.log[level ?? 'info']({ component: 'loop', ...fields }, message),
    })
    app.addHook('onClose', async () => stalls.stop())
    app.log.info({ component: 'loop', thresholdMs: loopStallThresholdMs }, 'event-loop stall watch on')
  }
  if (options.clusterRuntime !== undefined) metrics.observeCluster(options.clusterRuntime)
  let trace: LatencyTrace | undefined
  if (options.latencyTraceFile !== undefined) {
    trace = new LatencyTrace()
    node.traceLatency(trace)
    const watch = watchLatencyTrace(trace, options.latencyTraceFile)
    app.addHook('onClose', async () => watch.stop())
    app.log.warn({ component: 'latency-trace', file: options.latencyTraceFile }, 'latency trace on (a debug tool)')
  }
  const slowRequestMs = options.slowRequestMs ?? slowRequestMsDefault
  // One hook per step of the request's life for what every request does (each hook run and each hook
  // runner costs, and a step with no hook is skipped): callbacks, since an async hook costs a promise and a
  // microtask turn each. In order: a request arriving at shutdown is refused (503); it gets its
  // `X-Request-Id`; it is authenticated (when on); a write's body type is checked before its body is read.
  const auth = options.auth
  app.addHook('onRequest', (request, reply, done) => {
    const refusal = connections.refusal(reply)
    if (refusal !== undefined) return done(refusal)
    void reply.header('X-Request-Id', request.id)
    if (auth !== undefined) return done()
    try {
      refuseUnexpectedBodyType(request)
    } catch (error) {
      return done(error as Error)
    }
    done()
  })
  if (auth !== undefined) {
    authentication(app, auth)
    tokenEndpoint(app, auth)
    // After authentication, as without it: an unauthenticated write is refused for its token, not its body type.
    app.addHook('onRequest', (request, _reply, done) => {
      try {
        refuseUnexpectedBodyType(request)
      } catch (error) {
        return done(error as Error)
      }
      done()
    })
  }
  // Before the handler: the request now counts as handled at shutdown, and a read notes (or waits for) the
  // applied index it reflects — after authentication, so an unauthenticated read never waits.
  const appliedIndex = new AppliedIndexHeaders(node, options.readWaitMs)
  appliedIndex.attach(app)
  app.addHook('preHandler', (request, reply, done) => {
    connections.requestHandled(request)
    appliedIndex.beforeHandler(request, reply, done)
  })
  app.addHook('onSend', (request, reply, payload, done) => {
    connections.beforeSend(reply)
    appliedIndex.beforeSend(request, reply)
    done(null, payload)
  })
  app.addHook('onResponse', (request, reply, done) => {
    connections.requestEnded(request)
    const elapsedMs = reply.elapsedTime
    metrics.requestAnswered(request, reply, elapsedMs)
    if (trace !== undefined) {
      const answeredMs = wallMs()
      trace.record('request', answeredMs - elapsedMs, answeredMs, reply.statusCode)
    }
    if (elapsedMs >= slowRequestMs) {
      const route = request.routeOptions.url ?? 'unmatched'
      request.log.warn({ method: request.method, route, statusCode: reply.statusCode, durationMs: Math.round(elapsedMs), slowRequestMs }, 'slow request')
    }
    done()
  })
  const views = new Views(node.store, options.answerCacheBytes === undefined ? {} : { answerCacheBytes: options.answerCacheBytes })
  // The node's outputs run while the app does: opened here (resuming running pipelines), stopped on close before the node is.
  // A start that finds configuration an older release kept as node rows converts it to orders once (ADR 0008).
  const submitOrders: SubmitOrders = async (orders) => {
    const results = await node.admission.submit(
      orders.map((order) => ({ order })),
      { atomic: false, continueOnFailure: true, dryRun: false },
    )
    return results.map((result) => (result.status === 'failed' ? `${result.error.code}: ${result.error.message}` : result.status === 'skipped' ? 'skipped' : undefined))
  }
  // In a cluster only the primary delivers, and checkpoints its cursors for the node that takes over (docs/cluster.md).
  const replicated = node.clusterStatus().mode === 'replicated'
  const outputsOptions: OutputsOptions = {
    ...(replicated ? { delivering: () => node.clusterStatus().role === 'primary', checkpointMs: checkpointMsDefault } : {}),
    ...options.outputs,
  }
  const { outputs, migration } = await Outputs.open(node.store, submitOrders, outputsOptions)
  if (migration !== undefined) {
    app.log.info({ component: 'outputs', exporters: migration.exporters, pipelines: migration.pipelines, refused: migration.refused }, 'outputs configuration converted to orders')
  }
  app.addHook('onClose', async () => outputs.close())
  metrics.observeOutputs(outputs)
  const routes = async (scope: FastifyInstance): Promise<void> => {
    openApiRoutes(scope) // first: documents the routes registered after it
    systemRoutes(scope, node, options.clusterRuntime)
    ledgerRoutes(scope, node, views)
    transactionRoutes(scope, node, views)
    accountRoutes(scope, node, views)
    logRoutes(scope, views)
    aggregateRoutes(scope, node.store, views)
    bulkRoutes(scope, node, views, { bulkElementsMax, bodyBytesMax, recordPayloadBytesMax: node.payloadBytesMax() })
    logTransferRoutes(scope, node)
    checkRoutes(scope, node)
    schemaRoutes(scope, node, views)
    outputRoutes(scope, node, outputs, views)
    metricsRoutes(scope, metrics)
    unsupportedRoutes(scope) // last: 501 for the v2 operations no route above serves
  }
  await app.register(routes)
  await app.register(routes, { prefix: '/api/ledger' })
  return app
}
