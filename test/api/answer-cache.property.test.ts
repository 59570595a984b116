import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Writable } from 'node:stream'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createLedger, openTestApi } from '../support/api.ts'
import type { TestApi } from '../support/api.ts'
import { Views } from '../../src/api/views.ts'
import { AnswerCache } from '../../src/api/answer-cache.ts'
import { cursorKeyOf, parsePageRequest } from '../../src/api/paging.ts'
import { parseFilter } from '../../src/query/index.ts'
import { RowGenerations, Store } from '../../src/store/index.ts'
import { PowerLossDisk } from '../support/power-loss.ts'
import type { AccountAddress, LedgerName } from '../../src/domain/index.ts'
import { accountKey, canonicalJson, transactionKey, volumesKey } from '../../src/domain/index.ts'
import { accountTransactionKey, attributeRowKey } from '../../src/store/index.ts'

const accounts = ['users:0', 'users:1', 'users:2', 'bank'] as const
const account = fc.constantFrom(...accounts)
const asset = fc.constantFrom('USD', 'EUR/2')

/** A write the property interleaves with reads: every kind of row a kept answer reads from. */
const write = fc.oneof(
  fc.record({ kind: fc.constant('transfer' as const), source: fc.constantFrom('world', ...accounts), destination: account, asset, amount: fc.integer({ min: 1, max: 50 }) }),
  fc.record({ kind: fc.constant('account-metadata' as const), address: account, value: fc.constantFrom('a', 'b') }),
  fc.record({ kind: fc.constant('delete-account-metadata' as const), address: account }),
  fc.record({ kind: fc.constant('transaction-metadata' as const), id: fc.nat({ max: 6 }), value: fc.constantFrom('x', 'y') }),
  fc.record({ kind: fc.constant('revert' as const), id: fc.nat({ max: 6 }) }),
)
const read = fc.oneof(
  fc.record({ kind: fc.constant('account' as const), address: fc.constantFrom(...accounts, 'world', 'ghost'), volumes: fc.boolean() }),
  fc.record({
    kind: fc.constant('list' as const),
    address: fc.constantFrom(...accounts, 'world'),
    pageSize: fc.constantFrom(1, 3),
    volumes: fc.boolean(),
    reverse: fc.boolean(),
  }),
)

function bulkElement(step: typeof write extends fc.Arbitrary<infer T> ? T : never): unknown {
  switch (step.kind) {
    case 'transfer':
      return { action: 'CREATE_TRANSACTION', data: { force: true, postings: [{ source: step.source, destination: step.destination, amount: step.amount, asset: step.asset }] } }
    case 'account-metadata':
      return { action: 'ADD_METADATA', data: { targetType: 'ACCOUNT', targetId: step.address, metadata: { tier: step.value } } }
    case 'delete-account-metadata':
      return { action: 'DELETE_METADATA', data: { targetType: 'ACCOUNT', targetId: step.address, key: 'tier' } }
    case 'transaction-metadata':
      return { action: 'ADD_METADATA', data: { targetType: 'TRANSACTION', targetId: step.id, metadata: { note: step.value } } }
    case 'revert':
      return { action: 'REVERT_TRANSACTION', data: { force: true, id: step.id } }
  }
}

/** What the same store answers with nothing kept: the reference every served answer must equal, byte for byte. */
type ReadStep = typeof read extends fc.Arbitrary<infer T> ? T : never

async function uncached(api: TestApi, views: Views, step: ReadStep): Promise<{ status: number; text: string }> {
  const expand = { volumes: step.volumes, effectiveVolumes: false }
  try {
    if (step.kind === 'account') return { status: 200, text: await views.printedAccount('main' as LedgerName, step.address as AccountAddress, expand) }
    const query: Record<string, string> = { pageSize: String(step.pageSize), ...(step.volumes ? { expand: 'volumes' } : {}), ...(step.reverse ? { reverse: 'true' } : {}) }
    const page = parsePageRequest(query, cursorKeyOf(api.node.clusterId))
    // As the route takes a filter from the body: its canonical text last among the options cursors carry.
    const request = { ...page, options: { ...page.options, query: canonicalJson({ $match: { account: step.address } }) } }
    const filter = parseFilter('transactions', { $match: { account: step.address } })
    return { status: 200, text: await views.printedTransactionList('main' as LedgerName, request, filter, expand) }
  } catch (error) {
    return { status: (error as { kind?: string }).kind === 'not_found' ? 404 : 500, text: '' }
  }
}

test('answers kept between writes are byte for byte what the store answers with nothing kept, across every kind of write (property)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.oneof(write.map((step) => ({ write: step })), read.map((step) => ({ read: step }))), { minLength: 1, maxLength: 40 }), async (steps) => {
      const api = await openTestApi()
      try {
        await createLedger(api, 'main')
        // Every account funded first (transactions 0 to 3), so reads find them and writes apply.
        for (const address of accounts) {
          const seeded = await api.request('POST', '/v2/main/_bulk', [bulkElement({ kind: 'transfer', source: 'world', destination: address, asset: 'USD', amount: 100 })])
          assert.equal(seeded.status, 200, seeded.text)
        }
        const reference = new Views(api.node.store, { answerCacheBytes: 0 })
        // Every distinct read made so far is made again after each write: a kept answer the write changed must not be served.
        const seen = new Map<string, ReadStep>()
        const check = async (one: ReadStep): Promise<void> => {
          const reply =
            one.kind === 'account'
              ? await api.request('GET', `/v2/main/accounts/${one.address}${one.volumes ? '?expand=volumes' : ''}`)
              : await api.request('GET', `/v2/main/transactions?pageSize=${one.pageSize}${one.volumes ? '&expand=volumes' : ''}${one.reverse ? '&reverse=true' : ''}`, {
                  $match: { account: one.address },
                })
          const expected = await uncached(api, reference, one)
          assert.equal(reply.status, expected.status, reply.text)
          if (expected.status === 200) assert.equal(reply.text, expected.text)
        }
        for (const step of steps) {
          if ('write' in step) {
            // Refusals (an unknown transaction, a second revert) are part of the mix: nothing is written for them.
            const reply = await api.request('POST', '/v2/main/_bulk?atomic=false&continueOnFailure=true', [bulkElement(step.write)])
            if (reply.status === 200) applied++
            else assert.match(reply.text, /NOT_FOUND|ALREADY_REVERT/)
            for (const one of seen.values()) await check(one)
            continue
          }
          seen.set(JSON.stringify(step.read), step.read)
          // Twice: the second is served from what the first kept.
          await check(step.read)
          await check(step.read)
        }
      } finally {
        await api.close()
      }
    }),
    { numRuns: 40 },
  )
  // The mix is only worth its runs if most writes apply.
  assert.ok(applied > 50, `${applied} writes applied`)
})

let applied = 0

test('the owners of written rows: an account answers for its attribute, volume and by-account index rows, a transaction for its row', () => {
  const generations = new RowGenerations()
  const ledger = 'main' as LedgerName
  const slot = (owner: 'account' | 'transaction', name: string | bigint): number =>
    (owner === 'account' ? generations.accountSlot(ledger, name as string) : generations.transactionSlot(ledger, name as bigint)) as number
  const bumped = (key: Buffer, owner: 'account' | 'transaction', name: string | bigint): boolean => {
    const before = generations.generation(slot(owner, name))
    generations.rowsWritten([{ key, value: Buffer.of(1) }])
    return generations.generation(slot(owner, name)) === before + 1
  }
  const address = 'users:42' as AccountAddress
  assert.ok(bumped(attributeRowKey(accountKey(ledger, address)), 'account', address))
  assert.ok(bumped(attributeRowKey(volumesKey(ledger, address, 'USD/2' as never)), 'account', address))
  assert.ok(bumped(accountTransactionKey(ledger, address, 7n), 'account', address))
  assert.ok(bumped(attributeRowKey(transactionKey(ledger, 0x1234n as never)), 'transaction', 0x1234n))
  // A deletion bumps as a write does.
  const before = generations.generation(slot('account', address))
  generations.rowsWritten([{ key: attributeRowKey(accountKey(ledger, address)), value: null }])
  assert.equal(generations.generation(slot('account', address)), before + 1)
  // Names past ASCII are never kept.
  assert.equal(generations.accountSlot(ledger, 'usérs'), undefined)
})

test('the answer cache stays within its bytes, drops the least recently served first, and never keeps an answer larger than an eighth of its room', () => {
  const generations = new RowGenerations()
  const cache = new AnswerCache(generations, 8_000)
  const slot = generations.accountSlot('main', 'users:1') as number
  for (let i = 0; i < 40; i++) {
    const record = cache.reading()
    record.add(slot)
    cache.put(`k${i}`, 'x'.repeat(100), record)
    assert.ok(cache.bytesHeld <= cache.bytesMax)
    // k0 is served after every put: the most recently served, never the one dropped.
    assert.equal(cache.get('k0'), 'x'.repeat(100))
  }
  assert.ok(cache.size < 40)
  assert.equal(cache.get('k1'), undefined)
  const large = cache.reading()
  cache.put('large', 'y'.repeat(600), large)
  assert.equal(cache.get('large'), undefined)
  // A write of the owner drops every answer read from it.
  generations.rowsWritten([{ key: attributeRowKey(accountKey('main' as LedgerName, 'users:1' as AccountAddress)), value: null }])
  assert.equal(cache.get('k0'), undefined)
})

test('a kept answer is sent once: the same status, headers and body as the first, and no "already sent" warning', async () => {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'))
      done()
    },
  })
  const api = await openTestApi({ logger: { level: 'warn', stream } })
  try {
    await createLedger(api, 'main')
    await api.request('POST', '/v2/main/_bulk', [bulkElement({ kind: 'transfer', source: 'world', destination: 'users:0', asset: 'USD', amount: 5 })])
    for (const url of ['/v2/main/accounts/users:0?expand=volumes', '/v2/main/transactions?pageSize=2']) {
      const body = url.includes('transactions') ? { $match: { account: 'users:0' } } : undefined
      const first = await api.request('GET', url, body)
      const second = await api.request('GET', url, body)
      assert.equal(first.status, 200)
      assert.equal(second.text, first.text)
      for (const header of ['content-type', 'content-length', 'tally-applied-index']) assert.equal(second.headers[header], first.headers[header], header)
    }
    assert.deepEqual(lines.filter((line) => /already sent|FST_ERR/.test(line)), [])
  } finally {
    await api.close()
  }
})

for (const layer of ['RocksDB', 'the power-loss test layer (unsynced writes in an overlay)'] as const) {
  test(`the store tells its write observers of a batch once reads see it and before the write resolves, synced or not, on ${layer}`, async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'tally-write-observers-'))
    const store = layer === 'RocksDB' ? await Store.open(directory) : await new PowerLossDisk({ random: () => 0.5 }).openStore(directory)
    try {
      const key = Buffer.of(0x20, 1)
      const told: string[] = []
      store.observeWrites((rows) => {
        // Told with the rows already visible to a read.
        told.push(rows.map((row) => `${row.key.toString('hex')}=${store.getManySync([row.key])[0]?.toString('hex')}`).join(','))
      })
      for (const sync of [false, true]) {
        const before = told.length
        await store.write([{ key, value: Buffer.of(sync ? 2 : 1) }], { sync })
        // The last word on a batch sees its rows (the power-loss layer tells twice when a synced write carries its overlay down).
        const last = told[told.length - 1] ?? ''
        assert.ok(told.length > before)
        assert.ok(last.split(',').includes(`2001=0${sync ? 2 : 1}`), last)
      }
    } finally {
      await store.close()
      await rm(directory, { recursive: true, force: true })
    }
  })
}
