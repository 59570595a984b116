import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RequestIds, requestIdOf } from '../../src/api/app.ts'

const uuidShape = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

test('request ids: UUID-shaped, the seed UUID then a counter in its last 48 bits, never repeated within a process', () => {
  const ids = new RequestIds('0f1e2d3c-4b5a-4968-8776-00000000fffe')
  assert.deepEqual([ids.next(), ids.next(), ids.next()], ['0f1e2d3c-4b5a-4968-8776-00000000fffe', '0f1e2d3c-4b5a-4968-8776-00000000ffff', '0f1e2d3c-4b5a-4968-8776-000000010000'])
  const seen = new Set<string>()
  for (let i = 0; i < 10_000; i++) {
    const id = ids.next()
    assert.match(id, uuidShape)
    assert.ok(!seen.has(id), `${id} repeated`)
    seen.add(id)
  }
})

test('request ids: the lower 24 bits carry into the upper 24', () => {
  const ids = new RequestIds('aaaaaaaa-bbbb-4ccc-9ddd-123456fffffe')
  assert.deepEqual([ids.next(), ids.next(), ids.next()], ['aaaaaaaa-bbbb-4ccc-9ddd-123456fffffe', 'aaaaaaaa-bbbb-4ccc-9ddd-123456ffffff', 'aaaaaaaa-bbbb-4ccc-9ddd-123457000000'])
})

test('request ids: the counter wraps to zero after 2^48 - 1, keeping the shape', () => {
  const ids = new RequestIds('aaaaaaaa-bbbb-4ccc-9ddd-fffffffffffe')
  assert.deepEqual([ids.next(), ids.next(), ids.next()], ['aaaaaaaa-bbbb-4ccc-9ddd-fffffffffffe', 'aaaaaaaa-bbbb-4ccc-9ddd-ffffffffffff', 'aaaaaaaa-bbbb-4ccc-9ddd-000000000000'])
})

test('request ids: a seed that is not a lowercase UUID is refused', () => {
  assert.throws(() => new RequestIds('not-a-uuid'), /a request-id seed is a lowercase UUID/)
  assert.throws(() => new RequestIds('AAAAAAAA-BBBB-4CCC-9DDD-FFFFFFFFFFFE'), /a request-id seed is a lowercase UUID/)
})

test('request ids: an incoming usable X-Request-Id is kept; otherwise each request gets a new UUID-shaped id', () => {
  assert.equal(requestIdOf('client-chosen-42'), 'client-chosen-42')
  const made = [requestIdOf(undefined), requestIdOf('has spaces'), requestIdOf(['a', 'b']), requestIdOf('x'.repeat(129))]
  for (const id of made) assert.match(id, uuidShape)
  assert.equal(new Set(made).size, made.length)
})
