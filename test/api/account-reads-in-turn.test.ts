import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Views } from '../../src/api/views.ts'
import { Store, attributeRowKey } from '../../src/store/index.ts'
import type { AccountAddress, AccountRecord, Asset, LedgerName } from '../../src/domain/index.ts'
import { accountKey, encodeAttribute, ledgerKey, stringifyJson, volumesKey } from '../../src/domain/index.ts'
import { createLedger, openTestApi, postTransaction } from '../support/api.ts'

// Account reads that miss the kept answers are read together once the turn's
// requests are handled (`Views.readAccountsInTurn`): each must still get its
// own answer or its own error.

const main = 'main' as LedgerName
const other = 'other' as LedgerName

function accountRows(ledger: LedgerName, address: string, volumes: readonly [string, bigint, bigint][]) {
  const record = { address, metadata: { n: address }, insertionDate: '2026-12-07T03:45:00.123Z' } as unknown as AccountRecord
  return [
    { key: attributeRowKey(accountKey(ledger, address as AccountAddress)), value: encodeAttribute({ kind: 'a', value: record }).bytes },
    ...volumes.map(([asset, input, output]) => ({
      key: attributeRowKey(volumesKey(ledger, address as AccountAddress, asset as Asset)),
      value: encodeAttribute({ kind: 'v', value: { input, output } }).bytes,
    })),
  ]
}

async function withStore(run: (store: Store) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'tally-account-reads-'))
  const store = await Store.open(path.join(directory, 'store'))
  try {
    await store.write(
      [
        { key: attributeRowKey(ledgerKey(main)), value: Buffer.of(1) },
        { key: attributeRowKey(ledgerKey(other)), value: Buffer.of(1) },
        ...accountRows(main, 'users:1', [['USD/2', 100n, 30n]]),
        ...accountRows(main, 'users:2', [['EUR/2', 5n, 0n], ['USD/2', 1n, 1n << 70n]]),
        ...accountRows(main, 'users:3', []),
        ...accountRows(other, 'users:1', [['BTC/8', 7n, 2n]]),
      ],
      { sync: false },
    )
    await run(store)
  } finally {
    await store.close()
    await rm(path.dirname(store.directory), { recursive: true, force: true })
  }
}

/** The answer as the decoded view prints it, read alone by views of their own. */
async function expectedAnswer(store: Store, ledger: LedgerName, address: string, volumes: boolean): Promise<string> {
  const views = new Views(store, { answerCacheBytes: 0 })
  return `{"data":${stringifyJson(await views.account(ledger, address as AccountAddress, { volumes, effectiveVolumes: false }))}}`
}

/** Counts the store's point-read calls (one per batch). */
function countPointReads(store: Store): { calls: number; keys: number } {
  const counted = { calls: 0, keys: 0 }
  const read = store.getManySync.bind(store)
  store.getManySync = (keys) => {
    counted.calls++
    counted.keys += keys.length
    return read(keys)
  }
  return counted
}

const asked: readonly { ledger: LedgerName; address: string; volumes: boolean; fails?: string }[] = [
  { ledger: main, address: 'users:1', volumes: true },
  { ledger: main, address: 'users:2', volumes: true },
  { ledger: main, address: 'users:404', volumes: true, fails: 'not_found' },
  { ledger: main, address: 'users:3', volumes: true },
  { ledger: other, address: 'users:1', volumes: true },
  { ledger: 'missing' as LedgerName, address: 'users:1', volumes: true, fails: 'LEDGER_NOT_FOUND' },
  { ledger: main, address: 'users:2', volumes: false },
  { ledger: main, address: 'users:1', volumes: true },
]

for (const answerCacheBytes of [0, 1 << 20]) {
  test(`account reads asked in one turn are read in one call, each settled with its own answer or error (answer cache ${answerCacheBytes} bytes)`, async () => {
    await withStore(async (store) => {
      const expected = await Promise.all(asked.map((read) => (read.fails === undefined ? expectedAnswer(store, read.ledger, read.address, read.volumes) : undefined)))
      const views = new Views(store, { answerCacheBytes })
      const counted = countPointReads(store)
      // Asked within one synchronous stretch, as the requests a turn's sockets carry.
      const answers = asked.map((read) => Promise.resolve(views.accountAnswer(read.ledger, read.address as AccountAddress, { volumes: read.volumes, effectiveVolumes: false })))
      const settled = await Promise.allSettled(answers)
      assert.deepEqual({ calls: counted.calls, keys: counted.keys }, { calls: 1, keys: asked.length + 3 }, 'the accounts and the three ledgers not known yet (two found, one missing), each once, in one call')
      for (const [at, read] of asked.entries()) {
        const outcome = settled[at]
        if (read.fails === undefined) {
          assert.equal(outcome?.status, 'fulfilled', `${read.ledger} ${read.address}`)
          assert.equal((outcome as PromiseFulfilledResult<string>).value, expected[at], `${read.ledger} ${read.address} volumes ${read.volumes}`)
        } else {
          assert.equal(outcome?.status, 'rejected', `${read.ledger} ${read.address}`)
          const error = (outcome as PromiseRejectedResult).reason as { code?: string; kind?: string }
          assert.ok(error.code === read.fails || error.kind === read.fails, `${read.address}: ${JSON.stringify(error)}`)
        }
      }
      // The ledgers found are known now: the next turn reads the account alone.
      await views.accountAnswer(main, 'users:3' as AccountAddress, { volumes: false, effectiveVolumes: false })
      assert.deepEqual({ calls: counted.calls, keys: counted.keys }, { calls: 2, keys: asked.length + 3 + 1 })
    })
  })
}

test('a kept account answer read in a batch is served again until its account is written, then read anew', async () => {
  await withStore(async (store) => {
    const views = new Views(store, { answerCacheBytes: 1 << 20 })
    const expand = { volumes: true, effectiveVolumes: false }
    const first = views.accountAnswer(main, 'users:1' as AccountAddress, expand)
    assert.ok(first instanceof Promise, 'a miss is read in the turn')
    assert.equal(await first, await expectedAnswer(store, main, 'users:1', true))
    const kept = views.accountAnswer(main, 'users:1' as AccountAddress, expand)
    assert.equal(typeof kept, 'string', 'kept, served at once')
    // Asked, then written before (or while) the turn's batch reads it: never kept stale.
    const asked = views.accountAnswer(main, 'users:1' as AccountAddress, { volumes: false, effectiveVolumes: false })
    await store.write(accountRows(main, 'users:1', [['USD/2', 500n, 30n]]), { sync: false })
    await asked
    assert.equal(await views.accountAnswer(main, 'users:1' as AccountAddress, expand), await expectedAnswer(store, main, 'users:1', true))
    assert.match(await views.accountAnswer(main, 'users:1' as AccountAddress, expand), /"balance":470/)
  })
})

test('a store that fails the batch read rejects every read of the turn, and the next turn reads again', async () => {
  await withStore(async (store) => {
    const views = new Views(store, { answerCacheBytes: 0 })
    const read = store.getManySync.bind(store)
    let fail = true
    store.getManySync = (keys) => {
      if (fail) throw new Error('store closed')
      return read(keys)
    }
    const settled = await Promise.allSettled([1, 2].map((n) => Promise.resolve(views.accountAnswer(main, `users:${n}` as AccountAddress))))
    assert.deepEqual(
      settled.map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as Error).message : 'answered')),
      ['store closed', 'store closed'],
    )
    fail = false
    assert.equal(await views.accountAnswer(main, 'users:1' as AccountAddress), await expectedAnswer(store, main, 'users:1', false))
  })
})

test('more account reads than one turn takes are answered over several turns, in order', async () => {
  await withStore(async (store) => {
    const views = new Views(store, { answerCacheBytes: 0 })
    const counted = countPointReads(store)
    const addresses = Array.from({ length: 150 }, (_, at) => `users:${1 + (at % 3)}`)
    const answers = await Promise.all(addresses.map((address) => Promise.resolve(views.accountAnswer(main, address as AccountAddress))))
    // 64 a turn: three turns.
    assert.equal(counted.calls, 3, `${counted.calls} calls for 150 reads`)
    for (const [at, address] of addresses.entries()) assert.equal(answers[at], await expectedAnswer(store, main, address, false))
  })
})

test('get-accounts sent at once through the app: each answer and each error is the one the same request gets alone', async () => {
  for (const answerCacheBytes of [0, 1 << 20]) {
    const api = await openTestApi({ answerCacheBytes })
    try {
      await createLedger(api, 'main')
      for (let i = 0; i < 6; i++) await postTransaction(api, 'main', [{ source: 'world', destination: `users:${i}`, amount: 10 + i, asset: i % 2 === 0 ? 'USD' : 'EUR/2' }])
      const urls = [
        ...Array.from({ length: 6 }, (_, i) => `/v2/main/accounts/users:${i}?expand=volumes`),
        '/v2/main/accounts/world?expand=volumes',
        '/v2/main/accounts/users:404',
        '/v2/nowhere/accounts/users:1',
        '/v2/main/accounts/users:3',
      ]
      const alone: { status: number; text: string }[] = []
      for (const url of urls) {
        const reply = await api.request('GET', url)
        alone.push({ status: reply.status, text: reply.text })
      }
      // Twice over, so that with answers kept the second round mixes kept answers and none.
      const together = await Promise.all([...urls, ...urls].map((url) => api.request('GET', url)))
      assert.deepEqual(
        together.map((reply) => ({ status: reply.status, text: reply.text })),
        [...alone, ...alone],
      )
      assert.deepEqual(
        alone.map((reply) => reply.status),
        [200, 200, 200, 200, 200, 200, 200, 404, 404, 200],
      )
    } finally {
      await api.close()
    }
  }
})
