import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { findPostgresBinaries, startPostgresCluster, type PostgresCluster } from '../../src/bench/peer/cluster.ts'
import {
  installPeerSchema,
  peerBalances,
  peerCounts,
  transferBatch,
  transferOne,
  type PeerTransfer,
} from '../../src/bench/peer/postgres-ledger.ts'
import { createPeerTransport, peerTransferOf } from '../../src/bench/peer/peer-transport.ts'
import { classifyBulk, classifySingle } from '../../src/bench/index.ts'

const binaries = findPostgresBinaries()
const skip = binaries === undefined ? 'PostgreSQL (initdb/pg_ctl) is not installed: apt-get install -y postgresql' : false

function transfer(source: string, destination: string, amount: bigint, force = false): PeerTransfer {
  return { source, destination, amount, asset: 'USD/2', force }
}

describe('Postgres ledger peer', { skip }, () => {
  let cluster: PostgresCluster
  let pool: pg.Pool

  before(async () => {
    if (binaries === undefined) return
    cluster = await startPostgresCluster({ binaries })
    pool = new pg.Pool({ host: cluster.host, port: cluster.port, user: cluster.user, database: cluster.database, max: 8 })
    await installPeerSchema(pool)
  })

  after(async () => {
    await pool?.end()
    await cluster?.stop()
  })

  async function reset(): Promise<void> {
    await pool.query({ text: 'TRUNCATE peer_entry, peer_transfer, peer_account' })
  }

  it('runs durably: fsync and synchronous_commit are on', async () => {
    const rows = await pool.query<{ name: string; setting: string }>({
      text: "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit') ORDER BY name",
    })
    assert.deepEqual(rows.rows, [
      { name: 'fsync', setting: 'on' },
      { name: 'synchronous_commit', setting: 'on' },
    ])
  })

  it('moves money from world, refuses an unfunded user unless forced, and keeps the books balanced', async () => {
    await reset()
    const funded = await transferOne(pool, transfer('world', 'users:1', 500n))
    assert.equal(typeof funded, 'bigint')
    assert.equal(await transferOne(pool, transfer('users:2', 'users:1', 1n)), undefined, 'users:2 has nothing')
    assert.equal(await transferOne(pool, transfer('users:1', 'users:2', 501n)), undefined, 'users:1 has 500')
    assert.equal(typeof (await transferOne(pool, transfer('users:1', 'users:2', 500n))), 'bigint')
    assert.equal(typeof (await transferOne(pool, transfer('users:1', 'users:3', 7n, true))), 'bigint', 'forced')
    assert.deepEqual(
      await peerBalances(pool),
      new Map([
        ['users:1 USD/2', -7n],
        ['users:2 USD/2', 500n],
        ['users:3 USD/2', 7n],
        ['world USD/2', -500n],
      ]),
    )
    assert.deepEqual(await peerCounts(pool), { transfers: 3n, entries: 6n, entrySum: 0n })
  })

  it('applies a batch in order in one transaction and skips exactly the transfers without funds', async () => {
    await reset()
    const ids = await transferBatch(pool, [
      transfer('users:1', 'users:2', 10n), // no funds yet
      transfer('world', 'users:1', 100n),
      transfer('users:1', 'users:2', 60n), // funded by the element before it
      transfer('users:1', 'users:2', 60n), // 40 left
      transfer('users:1', 'users:3', 60n, true),
    ])
    assert.deepEqual(ids.map((id) => id !== undefined), [false, true, true, false, true])
    assert.deepEqual(
      await peerBalances(pool),
      new Map([
        ['users:1 USD/2', -20n],
        ['users:2 USD/2', 60n],
        ['users:3 USD/2', 60n],
        ['world USD/2', -100n],
      ]),
    )
    assert.deepEqual(await peerCounts(pool), { transfers: 3n, entries: 6n, entrySum: 0n })
    assert.deepEqual(await transferBatch(pool, []), [])
  })

  it('never deadlocks when transfers and batches lock the same accounts in opposite directions', async () => {
    await reset()
    const accounts = ['users:a', 'users:b', 'users:c', 'users:d']
    const work: Promise<unknown>[] = []
    for (let round = 0; round < 40; round++) {
      const source = accounts[round % 4] as string
      const destination = accounts[3 - (round % 4)] === source ? (accounts[(round + 1) % 4] as string) : (accounts[3 - (round % 4)] as string)
      work.push(transferOne(pool, transfer(source, destination, 1n, true)))
      work.push(
        transferBatch(pool, [transfer(destination, source, 1n, true), transfer('users:d', 'users:a', 1n, true), transfer('users:a', 'users:c', 1n, true)]),
      )
    }
    await Promise.all(work)
    const counts = await peerCounts(pool)
    assert.equal(counts.transfers, 40n * 4n)
    assert.equal(counts.entrySum, 0n)
    const total = [...(await peerBalances(pool)).values()].reduce((sum, balance) => sum + balance, 0n)
    assert.equal(total, 0n, 'money is neither created nor destroyed')
  })

  it('answers the bench transport in Tally\'s shapes, so the same classifiers count both', async () => {
    await reset()
    const transport = createPeerTransport(pool)
    assert.equal((await transport.send({ method: 'POST', path: '/v2/bench', body: '{}' })).status, 204)
    const bulkBody = JSON.stringify([
      { action: 'CREATE_TRANSACTION', data: { postings: [{ source: 'world', destination: 'users:1', amount: 5, asset: 'USD/2' }], metadata: {} } },
      { action: 'CREATE_TRANSACTION', data: { postings: [{ source: 'users:2', destination: 'users:1', amount: 5, asset: 'USD/2' }], metadata: {} } },
    ])
    const bulk = await transport.send({ method: 'POST', path: '/v2/bench/_bulk?atomic=false', body: bulkBody })
    assert.deepEqual(classifyBulk(bulk, 2), {
      ok: false,
      transactions: 1,
      operationsSucceeded: 1,
      failures: [{ key: 'element INSUFFICIENT_FUND', operations: 1 }],
    })
    const forcedBody = '{"postings":[{"source":"users:2","destination":"users:1","amount":5,"asset":"USD/2"}],"metadata":{},"force":true}'
    const forced = await transport.send({ method: 'POST', path: '/v2/bench/transactions?force=true', body: forcedBody })
    assert.equal(classifySingle(forced, 1).transactions, 1)
    const refused = await transport.send({ method: 'POST', path: '/v2/bench/transactions', body: forcedBody.replace(',"force":true', '') })
    assert.deepEqual(classifySingle(refused, 1).failures, [{ key: 'HTTP 400 INSUFFICIENT_FUND', operations: 1 }])
  })
})

describe('peerTransferOf', () => {
  it('reads force from the body or the query, and the amount as a bigint', () => {
    const data = { postings: [{ source: 'users:1', destination: 'users:2', amount: 42, asset: 'USD/2' }], metadata: {} }
    assert.deepEqual(peerTransferOf(data, false), { source: 'users:1', destination: 'users:2', amount: 42n, asset: 'USD/2', force: false })
    assert.equal(peerTransferOf(data, true).force, true)
    assert.equal(peerTransferOf({ ...data, force: true }, false).force, true)
    assert.throws(() => peerTransferOf({ postings: [] }, false), /one-posting/)
  })
})
