import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync } from 'node:fs'
import path from 'node:path'
import { LedgerNode } from '../../src/server/index.ts'
import type { Order } from '../../src/orders/index.ts'
import { parseCreateTransaction } from '../../src/orders/index.ts'
import type { OrderResult } from '../../src/fsm/index.ts'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'
import { TallyError, parseJson } from '../../src/domain/index.ts'
import { Views } from '../../src/api/views.ts'
import { Store } from '../../src/store/index.ts'
import { tempDirectory } from '../support/temp.ts'

const L = 'main' as LedgerName
const USD = 'USD/2' as Asset

async function one(node: LedgerNode, order: Order): Promise<OrderResult> {
  const [result] = await node.admission.submit([{ order }], { atomic: true, continueOnFailure: false })
  return result as OrderResult
}

function script(plain: string, vars: Record<string, string> = {}, extra: Record<string, unknown> = {}): Order {
  return parseCreateTransaction(L, parseJson(JSON.stringify({ script: { plain, vars }, ...extra })))
}

const fund = (account: string, amount: bigint): Order => ({
  type: 'CREATE_TRANSACTION',
  ledger: L,
  postings: [{ source: 'world' as AccountAddress, destination: account as AccountAddress, amount, asset: USD }],
  metadata: {},
  accountMetadata: {},
  force: false,
})

async function balance(node: LedgerNode, account: string): Promise<bigint> {
  const volumes = (await new Views(node.store).volumesOf(L, account as AccountAddress)) as Record<string, { balance: bigint }>
  return volumes[USD]?.balance ?? 0n
}

test('numscript through the pipeline: fee split, metadata, missing funds, force, parse errors', async () => {
  const tmp = tempDirectory()
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, cacheRotationThreshold: 4, sync: false })
  try {
    await one(node, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} })
    await one(node, fund('users:1', 10_000n))
    const split = await one(
      node,
      script('vars { monetary $m }\nsend $m (\n  source = @users:1\n  destination = { 2% to @fees remaining to @merchant }\n)\nset_tx_meta("kind", "sale")\nset_account_meta(@merchant, "tier", "gold")', { m: 'USD/2 1000' }),
    )
    assert.equal(split.status, 'applied')
    const transaction = split.status === 'applied' && split.output.type === 'TRANSACTION' ? (split.output.transaction as { postings: unknown[]; metadata: Record<string, string> }) : undefined
    assert.deepEqual(transaction?.postings, [
      { source: 'users:1', destination: 'fees', amount: 20n, asset: USD },
      { source: 'users:1', destination: 'merchant', amount: 980n, asset: USD },
    ])
    assert.equal(transaction?.metadata.kind, 'sale')
    assert.equal(await balance(node, 'users:1'), 9_000n)
    assert.equal(await balance(node, 'fees'), 20n)
    const merchant = (await new Views(node.store).account(L, 'merchant' as AccountAddress)) as { metadata: Record<string, string> }
    assert.equal(merchant.metadata.tier, 'gold')

    const short = await one(node, script('send [USD/2 100000] ( source = @users:1 destination = @x )'))
    assert.equal(short.status === 'failed' && short.error.code, 'INSUFFICIENT_FUND')
    const forced = await one(node, script('send [USD/2 100000] ( source = @users:1 destination = @x )', {}, { force: true }))
    assert.equal(forced.status, 'applied')
    assert.equal(await balance(node, 'users:1'), 9_000n - 100_000n)

    const overdraft = await one(node, script('send [USD/2 5] ( source = @users:9 allowing overdraft up to [USD/2 5] destination = @x )'))
    assert.equal(overdraft.status, 'applied')
    assert.equal(await balance(node, 'users:9'), -5n)

    const conflict = await one(node, script('send [USD/2 1] ( source = @world destination = @x )\nset_tx_meta("k", "script")', {}, { metadata: { k: 'request' } }))
    assert.equal(conflict.status === 'failed' && conflict.error.code, 'METADATA_OVERRIDE')

    assert.throws(() => script('send [USD/2 1] (\n  source = @world\n  destination = '), (error: unknown) => {
      assert.ok(error instanceof TallyError)
      assert.equal(error.code, 'INTERPRETER_PARSE')
      assert.match(error.message, /line 3/)
      return true
    })
    assert.throws(() => script('send $nope ( source = @world destination = @x )'), (error: unknown) => error instanceof TallyError && error.code === 'COMPILATION_FAILED')
    assert.throws(() => parseCreateTransaction(L, parseJson('{"script":{"plain":"send [USD 1] (source=@world destination=@a)"},"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD"}]}')), /one or the other/)
  } finally {
    await node.close()
    tmp.remove()
  }
})

test('numscript: balance() of an account written by concurrent transactions gives the same result live and on every replay', async () => {
  const live = tempDirectory()
  const replays = [tempDirectory(), tempDirectory()]
  try {
    let t = Date.UTC(2026, 0, 1)
    const node = await LedgerNode.open({ dataDirectory: live.directory, cacheRotationThreshold: 16, clusterId: 'c', sync: false, now: () => (t += 1000) })
    await one(node, { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} })
    // Writers top the pool up while scripts sweep whatever balance() says it holds.
    const sweep = script('vars { monetary $b = balance(@pool, USD/2) }\nsend $b ( source = @pool destination = @sink )')
    // Waves of concurrent submissions: within a wave, scripts plan against a pool that moves.
    const results: OrderResult[] = []
    for (let wave = 0; wave < 8; wave++) {
      const submissions: Promise<OrderResult>[] = []
      for (let i = wave * 5; i < wave * 5 + 5; i++) submissions.push(one(node, fund('pool', BigInt(100 + i))), one(node, sweep))
      results.push(...(await Promise.all(submissions)))
    }
    // A sweep of an empty pool has nothing to send (NO_POSTINGS); anything else — STALE_INPUTS
    // surfacing after retries, a coverage miss — would be a pipeline failure.
    const failures = results.flatMap((result) => (result.status === 'failed' ? [result.error.code] : []))
    assert.deepEqual([...new Set(failures)].filter((code) => code !== 'NO_POSTINGS'), [])
    assert.ok(failures.length < 40, 'most sweeps found something to move')
    for (const result of results) assert.notEqual(result.status === 'failed' && result.error.code, 'COVERAGE_MISS')
    const funded = 40n * 100n + (39n * 40n) / 2n
    assert.equal((await balance(node, 'pool')) + (await balance(node, 'sink')), funded)
    await node.close()
    const rows = async (directory: string) => {
      const store = await Store.open(path.join(directory, 'store'))
      const all: string[] = []
      for await (const [key, value] of store.range({ gte: Buffer.of(0) })) all.push(`${key.toString('hex')}=${value.toString('hex')}`)
      await store.close()
      return all
    }
    const expected = await rows(live.directory)
    for (const replay of replays) {
      cpSync(path.join(live.directory, 'wal'), path.join(replay.directory, 'wal'), { recursive: true })
      const replayed = await LedgerNode.open({ dataDirectory: replay.directory, cacheRotationThreshold: 16, clusterId: 'c', sync: false })
      await replayed.close()
      assert.deepEqual(await rows(replay.directory), expected)
    }
  } finally {
    live.remove()
    for (const replay of replays) replay.remove()
  }
})
