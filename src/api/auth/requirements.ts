import type { Scope } from './clients.ts'

/** What a route asks of a token. */
export type Requirement =
  | { readonly kind: 'public' }
  /** `ledger`: the route names a ledger (`:ledger`), which a restricted client must be allowed. */
  | { readonly kind: 'token'; readonly scope: Scope; readonly reach: 'ledger' | 'cluster' | 'any' }

const gatewayPrefix = '/api/ledger'

/** Routes that answer without a token: probes, and what a client needs to get one. */
const publicRoutes: ReadonlySet<string> = new Set(['/_/healthz', '/_/readyz', ...tokenRoutes(), '/.well-known/openid-configuration', '/.well-known/jwks.json'])

/** Where the OAuth2 token endpoint answers: Formance SDKs' default `tokenURL` (`/api/auth/oauth/token`) and `/oauth/token`. */
export function tokenRoutes(): readonly string[] {
  return ['/api/auth/oauth/token', '/oauth/token']
}

/** Creation, deletion and operator routes (`ledger:admin`), by method and route template. */
const adminRoutes: ReadonlySet<string> = new Set([
  'POST /v2/:ledger',
  'DELETE /v2/:ledger',
  'POST /_/check',
  'POST /v2/:ledger/logs/import',
  // Outputs send a ledger's whole history where they are pointed: configuring them is an operator's act.
  'POST /v2/_/exporters',
  // An exporter's configuration names where data goes and how to reach it: reading it is an operator's act too.
  'GET /v2/_/exporters',
  'GET /v2/_/exporters/:exporterID',
  'PUT /v2/_/exporters/:exporterID',
  'DELETE /v2/_/exporters/:exporterID',
  'POST /v2/:ledger/pipelines',
  'DELETE /v2/:ledger/pipelines/:pipelineID',
  'POST /v2/:ledger/pipelines/:pipelineID/start',
  'POST /v2/:ledger/pipelines/:pipelineID/stop',
  'POST /v2/:ledger/pipelines/:pipelineID/reset',
])

/** Cluster-wide routes every valid token may read, restricted or not (they say nothing about any ledger). */
const anyReach: ReadonlySet<string> = new Set(['/_/info', '/_/openapi.json'])

/**
 * The one mapping from a route to what it requires; every route of the app
 * goes through it (`test/api/auth.test.ts` sweeps them all). Reads need
 * `ledger:read`, writes `ledger:write`, creation and operator routes
 * `ledger:admin`. A route without `:ledger` reaches every ledger, so a
 * client restricted to some ledgers may not use it (beyond `anyReach`).
 */
export function requirementOf(method: string, routeTemplate: string | undefined): Requirement {
  if (routeTemplate === undefined) return { kind: 'token', scope: 'ledger:read', reach: 'any' }
  const route = routeTemplate.startsWith(`${gatewayPrefix}/`) ? routeTemplate.slice(gatewayPrefix.length) : routeTemplate
  if (publicRoutes.has(route)) return { kind: 'public' }
  const reach = route.includes(':ledger') ? 'ledger' : anyReach.has(route) ? 'any' : 'cluster'
  if (adminRoutes.has(`${method} ${route}`)) return { kind: 'token', scope: 'ledger:admin', reach }
  const reads = method === 'GET' || method === 'HEAD' || (method === 'POST' && route === '/v2/:ledger/logs/export')
  return { kind: 'token', scope: reads ? 'ledger:read' : 'ledger:write', reach }
}
