/**
 * What every request pays for its id and its logger before any route runs,
 * two builds side by side in one process, rounds alternated:
 *
 *   node --import tsx bench/request-fixed-cost.ts --base /tmp/base-tree [--rounds 30] [--requests 20000]
 *
 * Per request, as fastify does with `tally serve`'s logger (pino at info):
 * the build's `requestIdOf` for a request without `X-Request-Id`, then
 * fastify's own `createChildLogger` with the build's child logger factory
 * (fastify's default when the build has none), then the request's two
 * lines at debug (`RequestLinesAtDebug`: no-ops at info). Prints the median
 * and the fastest round in ns of process CPU per request for each, and the
 * ratio of the medians.
 */
import { createRequire } from 'node:module'
import path from 'node:path'
import { existsSync } from 'node:fs'
import { Writable } from 'node:stream'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import type { FastifyBaseLogger } from 'fastify'
import { median } from './support/stats.ts'

const { values } = parseArgs({ options: { base: { type: 'string' }, rounds: { type: 'string', default: '30' }, requests: { type: 'string', default: '20000' } } })
if (values.base === undefined) throw new Error('--base DIR: the tree to compare against')
const rounds = Number(values.rounds)
const requests = Number(values.requests)
const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

type Factory = (logger: FastifyBaseLogger, bindings: Record<string, unknown>, options: Record<string, unknown>) => FastifyBaseLogger
interface FastifyLoggerFactory {
  createChildLogger(context: unknown, logger: FastifyBaseLogger, request: unknown, id: string, options: Record<string, unknown>): FastifyBaseLogger
  defaultChildLoggerFactory: Factory
}

const require = createRequire(import.meta.url)
const { createChildLogger, defaultChildLoggerFactory } = require('fastify/lib/logger-factory.js') as FastifyLoggerFactory
const { kLogController } = require('fastify/lib/symbols.js') as { kLogController: symbol }

const dropped = new Writable({ write: (_chunk, _encoding, done) => done() })
const logger = Fastify({ logger: { level: 'info', stream: dropped } }).log

async function load(root: string): Promise<() => void> {
  const app = (await import(pathToFileURL(path.join(root, 'src/api/app.ts')).href)) as { requestIdOf(header: string | undefined): string }
  const factoryFile = path.join(root, 'src/api/request-logger.ts')
  const factory = existsSync(factoryFile)
    ? ((await import(pathToFileURL(factoryFile).href)) as { requestChildLogger: Factory }).requestChildLogger
    : defaultChildLoggerFactory
  const context = { server: { [kLogController]: { requestIdLogLabel: 'reqId' } }, childLoggerFactory: factory }
  const request = {}
  return () => {
    const id = app.requestIdOf(undefined)
    const log = createChildLogger(context, logger, request, id, {})
    log.debug({ req: request }, 'incoming request')
    log.debug({ res: request, responseTime: 1 }, 'request completed')
  }
}

const builds = { base: await load(path.resolve(values.base)), head: await load(here) }
const figures: Record<'base' | 'head', number[]> = { base: [], head: [] }
for (let round = -2; round < rounds; round++) {
  for (const name of round % 2 === 0 ? (['base', 'head'] as const) : (['head', 'base'] as const)) {
    const run = builds[name]
    const before = process.cpuUsage()
    for (let i = 0; i < requests; i++) run()
    const used = process.cpuUsage(before)
    if (round >= 0) figures[name].push(((used.user + used.system) * 1000) / requests)
  }
}
const [base, head] = [median(figures.base), median(figures.head)]
console.log(`${rounds} rounds of ${requests} requests`)
console.log(`base: median ${base.toFixed(0)} ns/request (fastest ${Math.min(...figures.base).toFixed(0)})`)
console.log(`head: median ${head.toFixed(0)} ns/request (fastest ${Math.min(...figures.head).toFixed(0)})`)
console.log(`head ÷ base, medians: ×${(head / base).toFixed(3)}; head lower in ${figures.head.filter((h, i) => h < (figures.base[i] as number)).length} of ${rounds} rounds`)
