import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/app.ts'
import { tempDirectory } from '../support/temp.ts'
import { assertCheckClean } from '../support/ledger.ts'

/**
 * Issue #9 point 6: a row must never outgrow the log record its seed travels
 * in. Metadata limits hold on what is STORED (an account grown over many
 * requests is refused at the limit with a 400 naming it), and a proposal
 * that would not fit the log with its seeds is refused before anything is
 * logged. The log here has small records (2 MiB segments), as a cluster with
 * small segments would: without the bounds, an account grows past them and,
 * once out of the cache, no order touching it can be logged again.
 */
const SEGMENT_BYTES = 2 * 1024 * 1024
const CHUNK_KEYS = 6
const CHUNK_VALUE = 'x'.repeat(10_000)

interface Harness {
  readonly node: LedgerNode
  readonly app: FastifyInstance
}

async function open(directory: string): Promise<Harness> {
  const node = await LedgerNode.open({ dataDirectory: directory, cacheRotationThreshold: 2, clusterId: 'bounds', sync: false, walSegmentBytesMax: SEGMENT_BYTES })
  return { node, app: await buildApi(node) }
}

async function close(harness: Harness): Promise<void> {
  await harness.app.close()
  await harness.node.close()
}

async function send(harness: Harness, method: 'POST' | 'PUT', url: string, payload: string): Promise<{ status: number; body: string }> {
  const reply = await harness.app.inject({ method, url, payload, headers: { 'content-type': 'application/json' } })
  return { status: reply.statusCode, body: reply.body }
}

/** `count` keys of 10 kB each, named from `first`. */
function chunk(first: number, count = CHUNK_KEYS): string {
  const entries: string[] = []
  for (let i = first; i < first + count; i++) entries.push(`"k${String(i).padStart(5, '0')}":"${CHUNK_VALUE}"`)
  return `{${entries.join(',')}}`
}

const transfer = (destination: string, amount = 1) => `{"postings":[{"source":"world","destination":"${destination}","amount":${amount},"asset":"USD"}]}`

/** Moves the cache two generations on (K = 2), so every earlier row is out of it and must be seeded. */
async function rotateOut(harness: Harness): Promise<void> {
  for (let i = 0; i < 6; i++) assert.equal((await send(harness, 'POST', '/v2/main/transactions', transfer('filler'))).status, 200)
}

test('an account grown over many requests is refused at the metadata limit, and stays writable out of the cache and after a restart', async () => {
  const temp = tempDirectory('tally-row-bounds-')
  try {
    let harness = await open(temp.directory)
    assert.equal((await send(harness, 'POST', '/v2/main', '{}')).status, 204)
    let accepted = 0
    let refused: { status: number; body: string } | undefined
    // 60 kB a request: far under any per-request limit; the stored total is what grows.
    for (let request = 0; request < 60 && refused === undefined; request++) {
      const reply = await send(harness, 'POST', '/v2/main/accounts/users:1/metadata', chunk(request * CHUNK_KEYS))
      if (reply.status === 204) accepted++
      else refused = reply
    }
    // The account left the cache: an order touching it seeds its whole row, which must fit the log.
    await rotateOut(harness)
    const touching = await send(harness, 'POST', '/v2/main/transactions', transfer('users:1', 5))
    assert.equal(touching.status, 200, `after ${accepted} metadata saves the account is unwritable: ${touching.body}`)
    assert.ok(refused !== undefined, `${accepted} requests of 60 kB each were all accepted: the stored metadata is unbounded`)
    assert.ok(accepted >= 2, 'the limit is on the stored total: several requests fit before it')
    assert.equal(refused.status, 400, refused.body)
    const error = JSON.parse(refused.body) as { errorCode: string; errorMessage: string }
    assert.equal(error.errorCode, 'VALIDATION')
    assert.match(error.errorMessage, /over the limit of \d+ bytes of metadata per transaction, account or ledger/)
    await rotateOut(harness)
    assert.equal((await send(harness, 'POST', '/v2/main/accounts/users:1/metadata', '{"small":"1"}')).status, 204)
    await close(harness)

    harness = await open(temp.directory)
    await rotateOut(harness)
    assert.equal((await send(harness, 'POST', '/v2/main/transactions', transfer('users:1', 7))).status, 200)
    const account = await harness.app.inject({ method: 'GET', url: '/v2/main/accounts/users:1?expand=volumes' })
    assert.equal(account.statusCode, 200)
    const data = (JSON.parse(account.body) as { data: { metadata: Record<string, string>; volumes: { USD: { balance: number } } } }).data
    assert.equal(Object.keys(data.metadata).length, accepted * CHUNK_KEYS + 1)
    assert.equal(data.volumes.USD.balance, 12)
    await close(harness)

    await assertCheckClean(temp.directory)
  } finally {
    temp.remove()
  }
})

test('transaction and ledger metadata are bounded on the stored total too; one request over the limit is refused alone', async () => {
  const temp = tempDirectory('tally-row-bounds-')
  try {
    const harness = await open(temp.directory)
    try {
      assert.equal((await send(harness, 'POST', '/v2/main', '{}')).status, 204)
      assert.equal((await send(harness, 'POST', '/v2/main/transactions', transfer('users:1'))).status, 200)
      for (const [method, url] of [['POST', '/v2/main/transactions/0/metadata'], ['PUT', '/v2/main/metadata']] as const) {
        let status = 204
        let request = 0
        for (; request < 60 && status === 204; request++) status = (await send(harness, method, url, chunk(request * CHUNK_KEYS))).status
        assert.equal(status, 400, `${url}: never refused`)
        assert.ok(request > 2, `${url}: refused after ${request} requests`)
      }
      // One request alone over the byte limit (small enough for the body limit): refused, nothing proposed.
      const big = await send(harness, 'POST', '/v2/main/accounts/users:2/metadata', chunk(0, 40))
      assert.equal(big.status, 400, big.body)
      assert.match(big.body, /bytes of metadata per transaction, account or ledger/)
      const absent = await harness.app.inject({ method: 'GET', url: '/v2/main/accounts/users:2' })
      assert.equal(absent.statusCode, 404)
    } finally {
      await close(harness)
    }
  } finally {
    temp.remove()
  }
})

test('a write whose seeds would not fit one log record is refused before anything is logged, naming the limit', async () => {
  const temp = tempDirectory('tally-row-bounds-')
  try {
    const harness = await open(temp.directory)
    try {
      assert.equal((await send(harness, 'POST', '/v2/main', '{}')).status, 204)
      // Ten accounts, each with metadata just under the per-entity limit: 2.4 MB together, over a 2 MiB record.
      const accounts = Array.from({ length: 10 }, (_, i) => `big:${i}`)
      for (const address of accounts) {
        for (let part = 0; part < 4; part++) {
          const reply = await send(harness, 'POST', `/v2/main/accounts/${address}/metadata`, chunk(part * CHUNK_KEYS))
          assert.equal(reply.status, 204, reply.body)
        }
      }
      await rotateOut(harness)
      const before = harness.node.nextIndex()
      const postings = accounts.map((address) => `{"source":"world","destination":"${address}","amount":1,"asset":"USD"}`).join(',')
      const reply = await send(harness, 'POST', '/v2/main/transactions', `{"postings":[${postings}]}`)
      assert.equal(reply.status, 413, reply.body)
      assert.match(reply.body, /over the log's record limit of \d+ bytes/)
      assert.equal(harness.node.nextIndex(), before, 'nothing was logged')
      // Split, the same moves go through.
      for (const address of accounts) assert.equal((await send(harness, 'POST', '/v2/main/transactions', transfer(address))).status, 200)
    } finally {
      await close(harness)
    }
  } finally {
    temp.remove()
  }
})
