import type { RouteOptions } from 'fastify'
import { openApiPathOf } from './document.ts'
import type { HttpMethod } from './types.ts'
import { httpMethods } from './types.ts'

export interface ServedRoute {
  readonly method: HttpMethod
  /** OpenAPI form, without the scope's prefix: `/v2/{ledger}/transactions`. */
  readonly path: string
  readonly prefix: string
}

/**
 * The routes an app registered, as seen by fastify's `onRoute` hook, minus
 * the HEAD routes fastify adds by itself for each GET (they share the GET's
 * handler; an explicit HEAD route, like a v2 count, has its own).
 */
export class RouteInventory {
  private readonly routes = new Map<string, ServedRoute>()
  private readonly getHandlers = new Map<string, unknown>()

  /** Pass as the `onRoute` hook; `prefixes` are stripped (longest first) so `/api/ledger/v2` files under `/v2`. */
  constructor(private readonly prefixes: readonly string[] = []) {}

  record(route: RouteOptions): void {
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((method) => String(method).toLowerCase())
    const { path, prefix } = this.split(route.url ?? '')
    for (const method of methods) {
      if (method === 'get') this.getHandlers.set(path + '\u0000' + prefix, route.handler)
      if (method === 'head' && this.getHandlers.get(path + '\u0000' + prefix) === route.handler) continue
      const known = httpMethods.find((candidate) => candidate === method)
      if (known === undefined) throw new Error(`route ${method.toUpperCase()} ${route.url}: method outside the OpenAPI document's set`)
      this.routes.set(`${known} ${prefix}${path}`, { method: known, path: openApiPathOf(path), prefix })
    }
  }

  has(method: HttpMethod, path: string, prefix = ''): boolean {
    for (const route of this.routes.values()) if (route.method === method && route.path === path && route.prefix === prefix) return true
    return false
  }

  list(prefix = ''): ServedRoute[] {
    return [...this.routes.values()].filter((route) => route.prefix === prefix)
  }

  private split(url: string): { path: string; prefix: string } {
    const prefix = [...this.prefixes].sort((a, b) => b.length - a.length).find((candidate) => candidate !== '' && url.startsWith(candidate + '/'))
    return prefix === undefined ? { path: url, prefix: '' } : { path: url.slice(prefix.length), prefix }
  }
}
