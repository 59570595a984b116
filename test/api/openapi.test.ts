import { test } from 'node:test'
import assert from 'node:assert/strict'
import diagnostics from 'node:diagnostics_channel'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Json } from '../../src/domain/index.ts'
import { RouteInventory, operations, pathParameterNames, routeUrlOf, v2ErrorCodes } from '../../src/api/openapi/index.ts'
import type { HttpMethod, Operation } from '../../src/api/openapi/index.ts'
import { notImplementedBody } from '../../src/api/routes/unsupported.ts'
import { asObject, assertStatus, at, openTestApi, show } from '../support/api.ts'
import type { TestApi } from '../support/api.ts'
import { readSpecOperations, repoRoot, specMissing } from '../compat/spec.ts'

const gatewayPrefix = '/api/ledger'

/**
 * A fresh app whose routes are recorded by an `onRoute` hook of our own,
 * attached through fastify's `fastify.initialization` diagnostics channel
 * before `buildApi` registers anything — independent of the inventory the
 * openapi route keeps for itself.
 */
async function openRecordedApi(): Promise<{ api: TestApi; inventory: RouteInventory }> {
  const inventory = new RouteInventory([gatewayPrefix])
  const channel = diagnostics.channel('fastify.initialization')
  const attach = (message: unknown): void => {
    const { fastify } = message as { fastify: FastifyInstance }
    fastify.addHook('onRoute', (route) => inventory.record(route))
  }
  channel.subscribe(attach)
  try {
    return { api: await openTestApi(), inventory }
  } finally {
    channel.unsubscribe(attach)
  }
}

const key = (method: string, route: string): string => `${method.toUpperCase()} ${route}`

function catalogued(method: HttpMethod, route: string): Operation | undefined {
  return operations.find((operation) => operation.method === method && operation.path === route)
}

test('catalogue: operationIds unique, one entry per method and path, path parameters named in the template', () => {
  const ids = new Set<string>()
  const routes = new Set<string>()
  for (const operation of operations) {
    assert.ok(!ids.has(operation.operationId), `duplicate operationId ${operation.operationId}`)
    ids.add(operation.operationId)
    assert.ok(!routes.has(key(operation.method, operation.path)), `duplicate route ${key(operation.method, operation.path)}`)
    routes.add(key(operation.method, operation.path))
    assert.match(operation.path, /^\/(v2|_)(\/|$)/, operation.path)
    if (operation.origin === 'tally') assert.match(operation.operationId, /^tally[A-Z]/, operation.operationId)
  }
})

test('every route the app serves is documented, and every documented operation not planned is served (both prefixes)', async () => {
  const { api, inventory } = await openRecordedApi()
  try {
    const direct = inventory.list('')
    const gateway = inventory.list(gatewayPrefix)
    assert.ok(direct.length > 20, `recorded only ${direct.length} routes`)
    assert.deepEqual(
      gateway.map((route) => key(route.method, route.path)).sort(),
      direct.map((route) => key(route.method, route.path)).sort(),
      'the gateway prefix serves exactly the direct routes',
    )
    const undocumented = direct.filter((route) => catalogued(route.method, route.path) === undefined).map((route) => key(route.method, route.path))
    assert.deepEqual(undocumented, [], 'routes missing from src/api/openapi/operations.ts')
    const missing = operations
      .filter((operation) => operation.status.kind !== 'planned' && !inventory.has(operation.method, operation.path))
      .map((operation) => `${key(operation.method, operation.path)} (${operation.operationId})`)
    assert.deepEqual(missing, [], 'documented as served or 501 but no route')
  } finally {
    await api.close()
  }
})

test('GET /_/openapi.json lists exactly the served operations, under both prefixes', async () => {
  const { api, inventory } = await openRecordedApi()
  try {
    const served = inventory
      .list('')
      .map((route) => key(route.method, route.path))
      .sort()
    for (const url of ['/_/openapi.json', `${gatewayPrefix}/_/openapi.json`]) {
      const reply = await api.request('GET', url)
      assertStatus(reply, 200)
      const paths = asObject(at(reply.body, 'paths'))
      const documented = Object.entries(paths)
        .flatMap(([route, item]) => Object.keys(asObject(item)).map((method) => key(method, route)))
        .sort()
      assert.deepEqual(documented, served, url)
      assert.equal(at(reply.body, 'openapi'), '3.0.3')
    }
  } finally {
    await api.close()
  }
})

/** Every `$ref` in `value`, with where it was found. */
function refsOf(value: Json, where: string, found: { ref: string; where: string }[] = []): { ref: string; where: string }[] {
  if (Array.isArray(value)) value.forEach((item, i) => refsOf(item, `${where}[${i}]`, found))
  else if (value !== null && typeof value === 'object') {
    for (const [name, item] of Object.entries(value)) {
      if (name === '$ref' && typeof item === 'string') found.push({ ref: item, where })
      else refsOf(item, `${where}.${name}`, found)
    }
  }
  return found
}

test('the served document is well formed: refs resolve, path parameters declared, bigint amounts, v2 error codes, 501 and 503 responses', async () => {
  const api = await openTestApi()
  try {
    const reply = await api.request('GET', '/_/openapi.json')
    assertStatus(reply, 200)
    const document = asObject(reply.body)
    for (const { ref, where } of refsOf(document, '#')) {
      const match = /^#\/components\/(schemas|responses)\/([A-Za-z0-9]+)$/.exec(ref)
      assert.ok(match !== null, `${where}: unexpected $ref ${ref}`)
      assert.ok(asObject(at(document, 'components', match[1] as string))[match[2] as string] !== undefined, `${where}: ${ref} does not resolve`)
    }
    for (const [route, item] of Object.entries(asObject(at(document, 'paths')))) {
      for (const [method, operationJson] of Object.entries(asObject(item))) {
        const operation = asObject(operationJson)
        const declared = ((operation.parameters ?? []) as Json[]).map((parameter) => asObject(parameter)).filter((parameter) => parameter.in === 'path').map((parameter) => parameter.name)
        assert.deepEqual(declared, pathParameterNames(route), `${method} ${route}: path parameters`)
        const responses = asObject(operation.responses)
        if (operation['x-tally-status'] === 'unsupported') assert.deepEqual(Object.keys(responses), ['501'], `${method} ${route}`)
        else {
          assert.ok(responses['503'] !== undefined && responses.default !== undefined, `${method} ${route}: 503 and default error responses`)
          assert.ok(Object.keys(responses).some((status) => /^2\d\d$/.test(status)), `${method} ${route}: a success response`)
        }
      }
    }
    const schemas = asObject(at(document, 'components', 'schemas'))
    for (const [schema, field] of [['Posting', 'amount'], ['Volume', 'input'], ['Volume', 'output'], ['Volume', 'balance'], ['Transaction', 'id'], ['Log', 'id']] as const) {
      const property = asObject(at(schemas, schema, 'properties', field))
      assert.equal(property.type, 'integer', `${schema}.${field}`)
      assert.equal(property.format, 'bigint', `${schema}.${field}`)
    }
    assert.deepEqual(at(schemas, 'ErrorCode', 'enum'), [...v2ErrorCodes])
    assert.deepEqual(at(document, 'components', 'responses', 'Unavailable', 'headers', 'Retry-After', 'schema', 'type'), 'integer')
    const servers = (at(document, 'servers') as Json[]).map((server) => at(server, 'url'))
    assert.deepEqual(servers, ['/', gatewayPrefix])
  } finally {
    await api.close()
  }
})

test('unsupported v2 operations answer 501 with a v2 error body naming the operation, under both prefixes', async () => {
  const api = await openTestApi()
  try {
    const unsupported = operations.filter((operation) => operation.status.kind === 'unsupported')
    assert.ok(unsupported.length > 0, 'the sweep below is not vacuous')
    for (const operation of unsupported) {
      const url = routeUrlOf(operation.path).replace(/:([A-Za-z]+)/g, (_match, name: string) => (name === 'ledger' ? 'main' : `some-${name}`))
      for (const prefix of ['', gatewayPrefix]) {
        const method = operation.method.toUpperCase() as 'GET' | 'POST' | 'PUT' | 'DELETE'
        const reply = await api.request(method, prefix + url, method === 'POST' || method === 'PUT' ? {} : undefined)
        const label = `${method} ${prefix}${url}`
        // A route of its own takes over from the stub (a real /_/metrics, say): then the catalogue must say served.
        assert.equal(reply.status, 501, `${label} is no longer a 501 (${reply.status} ${reply.text}): mark it served in src/api/openapi/operations.ts and docs/api-compatibility.md`)
        const body = asObject(reply.body, label)
        assert.equal(body.errorCode, 'INTERNAL', label)
        assert.ok(String(body.errorMessage).startsWith('NOT_IMPLEMENTED: '), `${label}: ${show(body)}`)
        assert.ok(String(body.errorMessage).includes(operation.operationId), `${label}: ${show(body)}`)
        assert.deepEqual(body, { ...notImplementedBody(operation) }, label)
        assert.deepEqual(JSON.parse(String(body.details)), { reason: 'NOT_IMPLEMENTED', operationId: operation.operationId, documentation: 'docs/api-compatibility.md' })
      }
    }
  } finally {
    await api.close()
  }
})

test('the catalogue covers every operation of the v2 document, with the same method and path', (t) => {
  const missing = specMissing()
  if (missing !== false) return t.skip(missing)
  const spec = readSpecOperations()
  assert.equal(new Set(spec.map((operation) => operation.operationId)).size, spec.length, 'spec operationIds are unique')
  assert.ok(spec.length >= 40, `parsed only ${spec.length} operations from the spec`)
  for (const operation of spec) {
    const entry = operations.find((candidate) => candidate.operationId === operation.operationId)
    assert.ok(entry !== undefined, `${operation.operationId} (${key(operation.method, operation.path)}) is not in src/api/openapi/operations.ts`)
    assert.equal(key(entry.method, entry.path), key(operation.method, operation.path), operation.operationId)
    assert.equal(entry.origin, 'v2', operation.operationId)
  }
  const v2Entries = operations.filter((operation) => operation.origin === 'v2').length
  assert.equal(v2Entries, spec.length, 'v2 entries of the catalogue are exactly the spec operations')
})

interface TableRow {
  readonly method: string
  readonly path: string
  readonly operationId: string
  readonly status: string
}

/** Rows `| METHOD | \`path\` | \`operationId\` | status |` of docs/api-compatibility.md. */
function compatibilityTable(): TableRow[] {
  const text = readFileSync(path.join(repoRoot, 'docs', 'api-compatibility.md'), 'utf8')
  const rows: TableRow[] = []
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim().replace(/^`|`$/g, ''))
    if (cells.length < 6 || !/^(GET|POST|PUT|DELETE|HEAD)$/.test(cells[1] ?? '')) continue
    rows.push({ method: cells[1] as string, path: cells[2] as string, operationId: cells[3] as string, status: cells[4] as string })
  }
  return rows
}

test('docs/api-compatibility.md has a row for every operation of the v2 document, with its method and path', (t) => {
  const missing = specMissing()
  if (missing !== false) return t.skip(missing)
  const rows = compatibilityTable()
  for (const operation of readSpecOperations()) {
    const row = rows.find((candidate) => candidate.operationId === operation.operationId)
    assert.ok(row !== undefined, `docs/api-compatibility.md: no row for ${operation.operationId}`)
    assert.equal(key(row.method, row.path), key(operation.method, operation.path), `docs/api-compatibility.md row of ${operation.operationId}`)
    assert.ok(row.status !== '', `${operation.operationId}: empty status`)
  }
})

test('docs/api-compatibility.md: every catalogued operation has a row, and the 501 ones say so', () => {
  const rows = compatibilityTable()
  for (const operation of operations) {
    const row = rows.find((candidate) => candidate.operationId === operation.operationId)
    assert.ok(row !== undefined, `docs/api-compatibility.md: no row for ${operation.operationId}`)
    assert.equal(key(row.method, row.path), key(operation.method, operation.path), operation.operationId)
    if (operation.status.kind === 'unsupported') assert.match(row.status, /\b501\b/, `${operation.operationId}: ${row.status}`)
    else assert.doesNotMatch(row.status, /\b501\b/, `${operation.operationId}: ${row.status}`)
  }
})
