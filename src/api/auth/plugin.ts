import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { TallyError } from '../../domain/index.ts'
import { formRoute } from '../transport.ts'
import { secretMatches } from './clients.ts'
import type { ApiClient } from './clients.ts'
import { requirementOf, tokenRoutes } from './requirements.ts'
import { TokenRefused, TokenVerifier, issueToken } from './tokens.ts'
import type { Grant, SigningKey, TokenSettings } from './tokens.ts'
import type { Requirement } from './requirements.ts'

/** What `--auth-clients` turns on: the clients, the built-in issuer's key, token settings. */
export interface AuthOptions {
  readonly clients: ReadonlyMap<string, ApiClient>
  readonly key: SigningKey
  readonly settings: TokenSettings
  /** Seconds since the epoch; tests move it. */
  readonly nowSeconds?: () => number
}

/** Token requests hashing secrets at once (scrypt costs ~50 ms of CPU and 16 MiB each); more answer 503. */
export const tokenRequestsInFlightMax = 8
const tokenBodyBytesMax = 8 * 1024
/** A presented secret for an unknown client is still hashed, against this, so timing does not tell which ids exist. */
const decoyHash = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

function unauthenticated(reply: FastifyReply, reason: string): TallyError {
  void reply.header('WWW-Authenticate', 'Bearer realm="tally", error="invalid_token"')
  return new TallyError({ code: 'UNAUTHORIZED', kind: 'unauthenticated', message: reason })
}

function forbidden(message: string): TallyError {
  return new TallyError({ code: 'FORBIDDEN', kind: 'forbidden', message })
}

/**
 * Requires a bearer token on every route but the probes and the token
 * endpoint, checked in `onRequest`: before the body is read, so nothing is
 * parsed, admitted or applied for a refused request.
 */
export function authentication(app: FastifyInstance, options: AuthOptions): void {
  const verifier = new TokenVerifier(options.key, options.settings)
  // A callback hook: a token verified before is admitted at once, with no promise and no microtask turn; a new one waits for jose.
  app.addHook('onRequest', (request, reply, done) => {
    const requirement = requirementOf(request.method, request.routeOptions.url)
    if (requirement.kind === 'public') return done()
    let token: string
    try {
      token = bearerTokenOf(request, reply)
    } catch (error) {
      return done(error as TallyError)
    }
    const kept = verifier.keptGrant(token)
    if (kept !== undefined) return done(admission(request, kept, requirement, app.log))
    verifier.verify(token).then(
      (grant) => done(admission(request, grant, requirement, app.log)),
      (error: unknown) => done((error instanceof TokenRefused ? unauthenticated(reply, error.message) : error) as TallyError),
    )
  })
}

/** The token of `Authorization: Bearer <token>`; a missing or malformed header is refused. */
function bearerTokenOf(request: FastifyRequest, reply: FastifyReply): string {
  const header = request.headers.authorization
  if (header === undefined) throw unauthenticated(reply, 'missing Authorization: Bearer token')
  const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/i.exec(header)
  if (match === null) throw unauthenticated(reply, 'Authorization must be "Bearer <token>"')
  return match[1] as string
}

/**
 * Whether `log` takes bindings: with logging on, fastify gives each request a
 * pino child of its own (also `reply.log`), so a binding set on it reaches
 * that request's lines only; with logging off, every request shares the
 * app's no-op logger, which has nothing to bind (and is never bound:
 * `admission` skips the app's own logger whatever it is).
 */
function logsBindings(log: FastifyBaseLogger): log is FastifyBaseLogger & { setBindings(bindings: { clientId: string }): void } {
  return typeof (log as { setBindings?: unknown }).setBindings === 'function'
}

/** Whether `grant` lets this request through: undefined when it does, the 403 otherwise. */
function admission(
  request: FastifyRequest,
  grant: Grant,
  requirement: Exclude<Requirement, { kind: 'public' }>,
  sharedLog: FastifyBaseLogger,
): TallyError | undefined {
  // Every later line of this request (its completion, a configuration change) names the client that made it:
  // a binding added to the request's own logger (the same line a child logger would write), not a child per request.
  if (request.log !== sharedLog && logsBindings(request.log)) request.log.setBindings({ clientId: grant.subject })
  if (!grant.scopes.has(requirement.scope)) return forbidden(`this route needs scope ${requirement.scope}; the token of ${grant.subject} has ${[...grant.scopes].join(' ') || 'none'}`)
  if (grant.ledgers === undefined || requirement.reach === 'any') return undefined
  if (requirement.reach === 'cluster') return forbidden(`${grant.subject} is restricted to some ledgers; this route reaches every ledger`)
  const ledger = (request.params as Record<string, string | undefined> | undefined)?.ledger
  if (ledger === undefined || !grant.ledgers.has(ledger)) return forbidden(`${grant.subject} may not use this ledger`)
  return undefined
}

/**
 * The OAuth2 client-credentials grant (RFC 6749 §4.4) at Formance SDKs'
 * default `tokenURL`: client id and secret in the form body or HTTP Basic.
 * The token carries all of the client's scopes, whatever `scope` asks
 * (RFC 6749 §3.3 lets the server decide; Formance SDKs ask per operation
 * and never name `ledger:admin`), and its ledgers when restricted.
 */
export function tokenEndpoint(app: FastifyInstance, options: AuthOptions): void {
  const nowSeconds = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000))
  let inFlight = 0
  const routes = async (scope: FastifyInstance): Promise<void> => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: tokenBodyBytesMax }, (_request, body, done) => {
      done(null, new URLSearchParams(typeof body === 'string' ? body : body.toString('utf8')))
    })
    for (const url of tokenRoutes()) {
      scope.post(url, { bodyLimit: tokenBodyBytesMax, config: formRoute }, async (request, reply) => {
        void reply.header('Cache-Control', 'no-store')
        const form = request.body instanceof URLSearchParams ? request.body : undefined
        if (form === undefined) return reply.code(400).send({ error: 'invalid_request', error_description: 'expected an application/x-www-form-urlencoded body' })
        if (form.get('grant_type') !== 'client_credentials') return reply.code(400).send({ error: 'unsupported_grant_type', error_description: 'only client_credentials' })
        const credentials = credentialsOf(request, form)
        if (credentials === undefined) return reply.code(401).header('WWW-Authenticate', 'Basic realm="tally"').send({ error: 'invalid_client', error_description: 'client_id and client_secret are required' })
        if (inFlight >= tokenRequestsInFlightMax) return reply.code(503).header('Retry-After', '1').send({ error: 'temporarily_unavailable', error_description: 'too many token requests, retry' })
        inFlight++
        let client: ApiClient | undefined
        try {
          const known = options.clients.get(credentials.id)
          const matches = await secretMatches(credentials.secret, known?.secretHash ?? decoyHash)
          client = matches ? known : undefined
        } finally {
          inFlight--
        }
        if (client === undefined) {
          request.log.warn({ clientId: credentials.id.slice(0, 128) }, 'token refused: unknown client or wrong secret')
          return reply.code(401).header('WWW-Authenticate', 'Basic realm="tally"').send({ error: 'invalid_client', error_description: 'unknown client or wrong secret' })
        }
        const { token, scopes } = await issueToken(options.key, options.settings, client, nowSeconds())
        request.log.info({ clientId: client.id }, 'token issued')
        return reply.send({ access_token: token, token_type: 'Bearer', expires_in: options.settings.tokenSeconds, scope: scopes.join(' ') })
      })
    }
    // Discovery, so that other services (and other Tally nodes) can verify Tally's tokens.
    scope.get('/.well-known/openid-configuration', async (request) => {
      const base = `${request.protocol}://${request.host}`
      return { issuer: options.settings.issuer, token_endpoint: `${base}/oauth/token`, jwks_uri: `${base}/.well-known/jwks.json`, grant_types_supported: ['client_credentials'], token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'] }
    })
    scope.get('/.well-known/jwks.json', async () => ({ keys: [options.key.publicJwk] }))
  }
  void app.register(routes)
}

function credentialsOf(request: FastifyRequest, form: URLSearchParams): { id: string; secret: string } | undefined {
  const header = request.headers.authorization
  const basic = header === undefined ? null : /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header)
  if (basic !== null && basic !== undefined) {
    const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon <= 0) return undefined
    try {
      // RFC 6749 §2.3.1: both parts are form-urlencoded before the Basic encoding.
      return { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) }
    } catch {
      return undefined
    }
  }
  const id = form.get('client_id')
  const secret = form.get('client_secret')
  if (id === null || secret === null || id === '' || secret === '' || id.length > 256 || secret.length > 1024) return undefined
  return { id, secret }
}
