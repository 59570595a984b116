import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import type { FastifyBaseLogger } from 'fastify'
import { RequestLogger, requestChildLogger } from '../../src/api/request-logger.ts'

/** A pino logger as fastify makes it for `tally serve` (no time field, so two runs' lines compare byte for byte), and its lines. */
function pinoAt(level: string): { log: FastifyBaseLogger; text: () => string } {
  let text = ''
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString()
      done()
    },
  })
  const app = Fastify({ logger: { level, stream, timestamp: false } })
  return { log: app.log, text: () => text }
}

/** What a request does with its logger: lines at several levels, the authenticated client bound half way, a child. */
function script(log: FastifyBaseLogger & { setBindings?: (bindings: Record<string, unknown>) => void }, error: Error): void {
  log.debug({ req: { url: '/v2' } }, 'incoming request')
  log.trace('not at info')
  log.setBindings?.({ clientId: 'reader' })
  log.info({ component: 'x', n: 1 }, 'first line %s', 'formatted')
  log.warn('a warning')
  log.setBindings?.({ tenant: 't1' })
  log.error({ err: error }, 'failed')
  log.child({ sub: 1 }).info('from a child')
  log.fatal('invariant violated')
}

test('a request logger writes the lines its pino child would, bindings set before the first line included, in order', () => {
  for (const level of ['info', 'debug', 'warn']) {
    const error = new Error('boom')
    const eager = pinoAt(level)
    const lazy = pinoAt(level)
    script(eager.log.child({ reqId: 'r-1' }, {}), error)
    const logger = requestChildLogger(lazy.log, { reqId: 'r-1' }, {})
    assert.ok(logger instanceof RequestLogger)
    script(logger, error)
    assert.ok(eager.text().length > 0)
    assert.equal(lazy.text(), eager.text(), `at ${level}`)
  }
})

test('a request logger makes no pino child while it writes nothing at an enabled level', () => {
  const { log, text } = pinoAt('info')
  const logger = requestChildLogger(log, { reqId: 'r-2' }, {}) as RequestLogger
  logger.debug({ req: {} }, 'incoming request')
  logger.trace('trace')
  logger.setBindings({ clientId: 'reader' })
  assert.equal(logger.level, 'info')
  assert.equal(logger.materialised, false)
  assert.equal(text(), '')
  logger.info('now')
  assert.equal(logger.materialised, true)
  assert.match(text(), /"reqId":"r-2","clientId":"reader","msg":"now"/)
})

test('a request logger takes a level of its own without changing its parent', () => {
  const { log, text } = pinoAt('info')
  const logger = requestChildLogger(log, { reqId: 'r-3' }, {})
  logger.level = 'debug'
  logger.debug('shown')
  log.debug('not shown')
  assert.equal(log.level, 'info')
  assert.equal(logger.level, 'debug')
  assert.match(text(), /"reqId":"r-3","msg":"shown"/)
  assert.doesNotMatch(text(), /not shown/)
})

test('a route with logger options of its own gets its pino child at once', () => {
  const { log } = pinoAt('info')
  const logger = requestChildLogger(log, { reqId: 'r-4' }, { level: 'debug' })
  assert.ok(!(logger instanceof RequestLogger))
  assert.equal(logger.level, 'debug')
})
