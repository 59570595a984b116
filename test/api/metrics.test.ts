import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LedgerNode } from '../../src/server/index.ts'
import { buildApi } from '../../src/api/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { overrunCacheHorizon } from '../support/ledger.ts'
import { heldWal } from '../support/held-wal.ts'
import { until } from '../support/local.ts'

/** The value of one sample of the Prometheus text (`name{labels} value`); 0 when absent. */
function sample(text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    if (line.slice(0, space) === series) return Number(line.slice(space + 1))
  }
  return 0
}

test('/_/metrics: Prometheus text whose counters move with the work done, labelled by route template only', async () => {
  const tmp = tempDirectory()
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, sync: true, checkpointEntries: 3 })
  const app = await buildApi(node)
  try {
    const scrape = async (): Promise<string> => {
      const reply = await app.inject({ method: 'GET', url: '/_/metrics' })
      assert.equal(reply.statusCode, 200)
      assert.match(String(reply.headers['content-type']), /^text\/plain; version=0\.0\.4/)
      return reply.body
    }
    const before = await scrape()
    assert.equal(sample(before, 'tally_proposals_total'), 0)
    const post = (url: string, body: unknown) => app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
    assert.equal((await post('/v2/secret-ledger-name', {})).statusCode, 204)
    // Concurrent: admission gathers the four into one proposal (docs/pipeline.md, "Gathering single writes").
    const written = await Promise.all(
      Array.from({ length: 4 }, (_, i) => post('/v2/secret-ledger-name/transactions', { postings: [{ source: 'world', destination: `users:secret-${i}`, amount: 100 + i, asset: 'USD' }] })),
    )
    for (const reply of written) assert.equal(reply.statusCode, 200)
    const bulk = await post('/v2/secret-ledger-name/_bulk?atomic=true', [
      { action: 'CREATE_TRANSACTION', data: { postings: [{ source: 'world', destination: 'users:a', amount: 1, asset: 'USD' }] } },
      { action: 'CREATE_TRANSACTION', data: { postings: [{ source: 'world', destination: 'users:b', amount: 1, asset: 'USD' }] } },
    ])
    assert.equal(bulk.statusCode, 200, bulk.body)
    assert.equal((await app.inject({ method: 'GET', url: '/v2/secret-ledger-name/transactions/999' })).statusCode, 404)
    // The checkpoint after the third entry first syncs RocksDB's logs on libuv's pool: it may end after the answers.
    const after = await until('a store checkpoint', async () => {
      const text = await scrape()
      return sample(text, 'tally_store_checkpoint_duration_seconds_count') >= 1 ? text : undefined
    })

    // 1 ledger creation + 4 gathered transactions + 1 bulk of 2: 3 proposals, 7 orders, all applied.
    assert.equal(sample(after, 'tally_proposals_total'), 3)
    assert.equal(sample(after, 'tally_orders_total'), 7)
    assert.equal(sample(after, 'tally_applied_proposals_total'), 3)
    assert.equal(sample(after, 'tally_proposal_orders_count'), 3)
    assert.equal(sample(after, 'tally_proposal_orders_sum'), 7)
    assert.ok(sample(after, 'tally_cache_lookups_total{result="hit"}') + sample(after, 'tally_cache_lookups_total{result="miss"}') > 0)
    assert.equal(sample(after, 'tally_wal_group_entries_sum'), 3, 'every durable entry is in a WAL group')
    assert.ok(sample(after, 'tally_wal_fsync_duration_seconds_count') >= 1)
    assert.ok(sample(after, 'tally_wal_fsync_duration_seconds_sum') > 0, 'fsync timed')
    assert.ok(sample(after, 'tally_apply_batch_duration_seconds_count') >= 1)
    assert.equal(sample(after, 'tally_commit_duration_seconds_count'), 3, 'one commit latency per proposal')
    assert.ok(sample(after, 'tally_store_checkpoint_duration_seconds_count') >= 1, 'checkpoint every 3 entries')
    assert.ok(sample(after, 'tally_store_log_syncs_ahead_total{outcome="synced"}') >= 1, "the checkpoint synced RocksDB's logs ahead of its synced write")
    assert.equal(sample(after, 'tally_store_log_syncs_ahead_total{outcome="failed"}'), 0)
    assert.equal(sample(after, 'tally_applied_index'), 3)
    assert.equal(sample(after, 'tally_durable_index'), 3)
    assert.equal(sample(after, 'tally_apply_lag_entries'), 0)
    assert.ok(sample(after, 'tally_cache_entries{generation="gen0"}') > 0)
    assert.ok(sample(after, 'tally_cache_bytes{generation="gen0"}') > 0)
    assert.ok(sample(after, 'tally_rocksdb_memtable_bytes') > 0)
    // RocksDB's write-stall figures are exposed (a fresh store: no stall, no L0 file yet, no error).
    for (const series of ['tally_rocksdb_level0_files', 'tally_rocksdb_immutable_memtables', 'tally_rocksdb_delayed_write_rate_bytes', 'tally_rocksdb_write_stopped', 'tally_rocksdb_background_errors']) {
      assert.match(after, new RegExp(`^${series} 0$`, 'm'), series)
    }
    assert.match(after, /^tally_rocksdb_write_stall_seconds_total 0$/m)
    assert.match(after, /^# TYPE tally_event_loop_stall_seconds histogram$/m)
    // The apply time the stall watch reads grew with the work applied.
    assert.ok(node.applyTime.milliseconds > 0)
    assert.equal(sample(after, 'tally_coverage_misses_total'), 0)
    assert.ok(sample(after, 'process_cpu_user_seconds_total') > 0, 'process metrics')
    assert.equal(sample(after, 'tally_http_request_duration_seconds_count{method="POST",route="/v2/:ledger/transactions",status="200"}'), 4)
    assert.equal(sample(after, 'tally_http_request_duration_seconds_count{method="GET",route="/v2/:ledger/transactions/:id",status="404"}'), 1)
    // Bounded labels: no ledger name, address or URL in any series.
    assert.doesNotMatch(after, /secret/)
  } finally {
    await app.close()
    await node.close()
    tmp.remove()
  }
})

test('/_/metrics: a write refused for the cache horizon counts as a refusal and an unreachable lookup', async () => {
  const tmp = tempDirectory()
  // One proposal per write, so that writes in flight overrun the horizon (gathered, they would be one
  // proposal); the first is kept in flight by holding its fdatasync (`overrunCacheHorizon`).
  const wal = heldWal()
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: 1, sync: true, walIo: wal.walIo, gatherOrdersMax: 1, applyWhenDurable: true })
  const app = await buildApi(node)
  try {
    const replies = await overrunCacheHorizon(app, wal)
    const refused = replies.filter((reply) => reply.statusCode === 503).length
    assert.equal(refused, 11)
    const text = (await app.inject({ method: 'GET', url: '/_/metrics' })).body
    assert.equal(sample(text, 'tally_cache_horizon_refusals_total'), refused)
    assert.equal(sample(text, 'tally_cache_lookups_total{result="unreachable"}'), refused)
    assert.equal(sample(text, 'tally_http_request_duration_seconds_count{method="POST",route="/v2/:ledger/transactions",status="503"}'), refused)
  } finally {
    await app.close()
    await node.close()
    tmp.remove()
  }
})

test('SDK getMetrics: a client that accepts JSON gets the metrics as a JSON object by name', async () => {
  const { withServer } = await import('../compat/server.ts')
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    const answer = await v2.getMetrics()
    assert.equal(answer.statusCode, 200)
    const metrics = answer.object as Record<string, { type: string; values: { value: number }[] }> | undefined
    assert.equal(metrics?.tally_proposals_total?.type, 'counter')
    assert.equal(metrics?.tally_proposals_total?.values[0]?.value, 1)
    assert.ok(metrics?.process_cpu_user_seconds_total !== undefined)
  })
})
