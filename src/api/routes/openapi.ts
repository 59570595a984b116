import type { FastifyInstance } from 'fastify'
import { RouteInventory, buildOpenApiDocument } from '../openapi/index.ts'
import type { OpenApiObject } from '../openapi/index.ts'
import { serverVersion } from './system.ts'

/**
 * `GET /_/openapi.json`: Tally's OpenAPI document, limited to the operations
 * this scope's routes serve. Register it first in a scope: it records the
 * routes registered after it with an `onRoute` hook.
 */
export function openApiRoutes(app: FastifyInstance): void {
  const inventory = new RouteInventory([app.prefix])
  app.addHook('onRoute', (route) => inventory.record(route))
  let document: OpenApiObject | undefined
  app.get('/_/openapi.json', async () => {
    // Routes are fixed once the app listens, so the first request builds the document for good.
    document ??= buildOpenApiDocument({ version: serverVersion, isServed: (method, path) => inventory.has(method, path, app.prefix) })
    return document
  })
}
