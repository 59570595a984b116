import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LedgerNode } from '../../src/server/index.ts'
import { MIRROR_ZONE } from '../../src/cache/index.ts'
import { decodeCacheState } from '../../src/fsm/index.ts'
import { MetaKey, metaKey } from '../../src/store/index.ts'
import { restoreCache } from '../../src/server/cache-restore.ts'
import { parseJson } from '../../src/domain/index.ts'
import type { Json } from '../../src/domain/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { killTally, spawnTally } from '../support/server-process.ts'
import type { ServerProcess } from '../support/server-process.ts'
import { asArray, asBigint, asObject, at, show } from '../support/api.ts'
import { mulberry32 } from './power-loss-harness.ts'

/**
 * Crash test (issue 2): the real server under concurrent writes, SIGKILLed at
 * a seeded random point, restarted on the same data directory, several
 * rounds. Every acknowledged transaction must be there exactly once, and the
 * ledger invariants must hold. Replay a failure with TALLY_CRASH_SEED=<seed>.
 */

const seed = Number(process.env.TALLY_CRASH_SEED ?? '20260522')
const roundsCount = 4
const clientsCount = 6
const requestsPerClientMax = 150
const killAfterAcksMin = 15
const killAfterAcksMax = 90
const usersCount = 12
const keyedPercent = 35
/** Small K so the workload rotates the cache many times (mirror tombstones, Gen1 fallback). */
const cacheRotationThreshold = 16
const testMsMax = 90_000
const ledger = 'crash'

function integerBelow(random: () => number, limit: number): number {
  return Math.floor(random() * limit)
}

interface HttpReply {
  readonly status: number
  readonly text: string
  readonly body: Json
  readonly idempotencyHit: boolean
}

/** One request to 127.0.0.1; rejects when the connection fails (server gone). */
async function call(baseUrl: string, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<HttpReply> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body }),
  })
  const text = await response.text()
  return { status: response.status, text, body: text === '' ? null : parseJson(text), idempotencyHit: response.headers.get('idempotency-hit') === 'true' }
}

/** A write the workload sent: `tag` (in its metadata) identifies it among all transactions. */
interface Sent {
  readonly tag: string
  readonly body: string
  readonly key: string | undefined
  readonly postings: Json
}

interface Acknowledged extends Sent {
  readonly id: bigint
}

interface History {
  readonly acknowledged: Map<string, Acknowledged>
  /** Keyed writes whose outcome is unknown (connection lost, or an unexpected status). */
  readonly uncertainKeyed: Map<string, Sent>
  readonly unexpected: string[]
}

function makeWrite(random: () => number, round: number, client: number, sequence: number): Sent {
  const tag = `r${round}c${client}s${sequence}`
  const user = (): string => `users:${integerBelow(random, usersCount)}`
  let postings: { source: string; destination: string; amount: bigint; asset: string }[]
  const kind = random()
  if (kind < 0.35) {
    postings = [{ source: 'world', destination: user(), amount: BigInt(50 + integerBelow(random, 500)), asset: 'USD/2' }]
  } else if (kind < 0.42) {
    // Beyond 2^53: the sums must stay exact across restarts.
    postings = [{ source: 'world', destination: user(), amount: 2n ** 60n + BigInt(integerBelow(random, 1_000_000)), asset: 'BIG' }]
  } else if (kind < 0.9) {
    const source = user()
    let destination = user()
    if (destination === source) destination = 'users:sink'
    postings = [{ source, destination, amount: BigInt(1 + integerBelow(random, 40)), asset: 'USD/2' }]
  } else {
    // Two postings through an intermediate account: checked posting by posting.
    const source = user()
    postings = [
      { source, destination: 'users:escrow', amount: BigInt(1 + integerBelow(random, 30)), asset: 'USD/2' },
      { source: 'users:escrow', destination: user(), amount: 1n, asset: 'USD/2' },
    ]
  }
  const postingsText = postings.map((p) => `{"source":"${p.source}","destination":"${p.destination}","amount":${p.amount},"asset":"${p.asset}"}`).join(',')
  const body = `{"postings":[${postingsText}],"metadata":{"tag":"${tag}"}}`
  const key = integerBelow(random, 100) < keyedPercent ? `key-${tag}` : undefined
  return { tag, body, key, postings: asObject(parseJson(body)).postings as Json }
}

/** Drives the clients until the seeded number of acknowledgements, then SIGKILLs the server. */
async function runRound(server: ServerProcess, round: number, history: History): Promise<{ acks: number; requests: number }> {
  const killAfterAcks = killAfterAcksMin + integerBelow(mulberry32(seed * 31 + round), killAfterAcksMax - killAfterAcksMin + 1)
  let acks = 0
  let requests = 0
  let killed = false
  const kill = (): void => {
    if (killed) return
    killed = true
    server.child.kill('SIGKILL')
  }
  const client = async (index: number): Promise<void> => {
    const random = mulberry32(seed ^ ((round + 1) * 7919 + index * 104729))
    for (let sequence = 0; sequence < requestsPerClientMax && !killed; sequence++) {
      const write = makeWrite(random, round, index, sequence)
      requests++
      let reply: HttpReply
      try {
        reply = await call(server.baseUrl, 'POST', `/v2/${ledger}/transactions`, write.body, write.key === undefined ? {} : { 'Idempotency-Key': write.key })
      } catch {
        // The server is gone: this write may or may not have been applied.
        if (write.key !== undefined) history.uncertainKeyed.set(write.tag, write)
        return
      }
      if (reply.status === 200) {
        assert.equal(reply.idempotencyHit, false, `fresh key replayed: ${write.tag}`)
        history.acknowledged.set(write.tag, { ...write, id: asBigint(at(reply.body, 'data', 'id')) })
        acks++
        if (acks >= killAfterAcks) kill()
      } else if (reply.status === 400 && asObject(reply.body).errorCode === 'INSUFFICIENT_FUND') {
        // Refused, nothing applied; a refused request does not consume its key.
      } else {
        history.unexpected.push(`${write.tag}: ${reply.status} ${reply.text}`)
        if (write.key !== undefined) history.uncertainKeyed.set(write.tag, write)
      }
    }
  }
  await Promise.all(Array.from({ length: clientsCount }, (_, i) => client(i)))
  // Every client hit its bound before the seeded ack count: kill now.
  kill()
  const exit = await server.exited
  assert.equal(exit.signal, 'SIGKILL', `the server exited on its own: ${show(exit)}\n${server.stderr()}`)
  return { acks, requests }
}

async function walk(baseUrl: string, path: string): Promise<Json[]> {
  const items: Json[] = []
  let reply = await call(baseUrl, 'GET', `${path}?pageSize=1000${path.includes('accounts') ? '&expand=volumes' : ''}`)
  for (let guard = 0; guard < 1000; guard++) {
    assert.equal(reply.status, 200, reply.text)
    const cursor = asObject(at(reply.body, 'cursor'))
    items.push(...asArray(cursor.data))
    if (typeof cursor.next !== 'string') return items
    reply = await call(baseUrl, 'GET', `${path}?cursor=${cursor.next}${path.includes('accounts') ? '&expand=volumes' : ''}`)
  }
  assert.fail(`${path}: paging does not end`)
}

/** The invariants of a restarted server; returns the transaction id of each tag. */
async function checkState(server: ServerProcess, history: History, when: string): Promise<Map<string, bigint>> {
  const health = await call(server.baseUrl, 'GET', '/_/healthz')
  assert.equal(health.status, 200, `${when}: ${health.text}`)
  assert.equal(at(health.body, 'status'), 'ok')

  const transactions = await walk(server.baseUrl, `/v2/${ledger}/transactions`)
  const ids = transactions.map((tx) => asBigint(at(tx, 'id'))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  ids.forEach((id, i) => assert.equal(id, BigInt(i), `${when}: transaction ids are not contiguous from 0 at position ${i}`))
  const byTag = new Map<string, Json>()
  for (const tx of transactions) {
    const tag = at(tx, 'metadata', 'tag') as string
    assert.ok(!byTag.has(tag), `${when}: write ${tag} applied twice: ${show(byTag.get(tag))} and ${show(tx)}`)
    byTag.set(tag, tx)
  }
  for (const write of history.acknowledged.values()) {
    const tx = byTag.get(write.tag)
    assert.ok(tx !== undefined, `${when}: acknowledged write ${write.tag} (id ${write.id}) is lost`)
    assert.equal(at(tx, 'id'), write.id, `${when}: ${write.tag} changed id`)
    assert.deepEqual(at(tx, 'postings'), write.postings, `${when}: ${write.tag} changed postings`)
  }

  const accounts = await walk(server.baseUrl, `/v2/${ledger}/accounts`)
  const sums = new Map<string, bigint>()
  for (const account of accounts) {
    const address = at(account, 'address') as string
    for (const [asset, volumes] of Object.entries(asObject(at(account, 'volumes')))) {
      const balance = asBigint(at(volumes, 'balance'))
      assert.equal(balance, asBigint(at(volumes, 'input')) - asBigint(at(volumes, 'output')))
      sums.set(asset, (sums.get(asset) ?? 0n) + balance)
      if (address !== 'world') assert.ok(balance >= 0n, `${when}: ${address} is negative in ${asset}: ${balance}`)
    }
  }
  for (const [asset, sum] of sums) assert.equal(sum, 0n, `${when}: Σ balances of ${asset} is ${sum}`)
  return new Map([...byTag].map(([tag, tx]) => [tag, asBigint(at(tx, 'id'))]))
}

/** Every acknowledged key replays to its id; every uncertain keyed write is retried and lands once. */
async function checkIdempotency(server: ServerProcess, history: History, idsByTag: Map<string, bigint>, when: string): Promise<void> {
  for (const write of history.acknowledged.values()) {
    if (write.key === undefined) continue
    const replay = await call(server.baseUrl, 'POST', `/v2/${ledger}/transactions`, write.body, { 'Idempotency-Key': write.key })
    assert.equal(replay.status, 200, `${when}: replay of ${write.key}: ${replay.text}`)
    assert.equal(replay.idempotencyHit, true, `${when}: replay of ${write.key} applied it again`)
    assert.equal(at(replay.body, 'data', 'id'), write.id, `${when}: ${write.key} replays to another id`)
  }
  for (const write of [...history.uncertainKeyed.values()]) {
    if (write.key === undefined) continue
    const retry = await call(server.baseUrl, 'POST', `/v2/${ledger}/transactions`, write.body, { 'Idempotency-Key': write.key })
    const appliedBefore = idsByTag.get(write.tag)
    if (retry.status === 200) {
      const id = asBigint(at(retry.body, 'data', 'id'))
      if (appliedBefore !== undefined) {
        assert.equal(retry.idempotencyHit, true, `${when}: ${write.key} was applied before the crash and again on retry`)
        assert.equal(id, appliedBefore)
      } else {
        assert.equal(retry.idempotencyHit, false, `${when}: ${write.key} replayed a write that is not in the ledger`)
      }
      history.acknowledged.set(write.tag, { ...write, id })
    } else {
      assert.equal(retry.status, 400, `${when}: retry of ${write.key}: ${retry.text}`)
      assert.equal(asObject(retry.body).errorCode, 'INSUFFICIENT_FUND', retry.text)
      assert.equal(appliedBefore, undefined, `${when}: ${write.key} is in the ledger but its retry was refused`)
    }
    history.uncertainKeyed.delete(write.tag)
  }
}

async function verifyRestarted(server: ServerProcess, history: History, when: string): Promise<void> {
  const idsByTag = await checkState(server, history, when)
  await checkIdempotency(server, history, idsByTag, when)
  await checkState(server, history, `${when}, after key replays`)
}

/**
 * Invariant #1: the cache mirror on disk restores (opening the node fails
 * closed on a segment that does not decode or a live key whose attribute row
 * is missing or of another length than its last write), and a second restore
 * from the store after the WAL replay gives the node's memory exactly.
 */
async function checkMirror(dataDirectory: string, when: string): Promise<number> {
  const node = await LedgerNode.open({ dataDirectory, cacheRotationThreshold })
  try {
    let rows = 0
    for await (const [key] of node.store.range({ gte: Buffer.of(MIRROR_ZONE) })) {
      assert.equal(key[0], MIRROR_ZONE)
      rows++
    }
    const state = decodeCacheState((await node.store.get(metaKey(MetaKey.cacheState))) as Buffer)
    const again = await restoreCache(node.store, state, node.fsm.appliedIndex)
    assert.equal(again.contents(), node.cache.contents(), `${when}: the mirror restores another cache than the node holds`)
    assert.ok(node.cache.size.gen0 + node.cache.size.gen1 > 0, `${when}: the cache is empty`)
    assert.ok(rows > 0, `${when}: the mirror is empty`)
    return rows
  } finally {
    await node.close()
  }
}

test(`crash: SIGKILL at seeded random points loses no acknowledged write (seed ${seed})`, { timeout: testMsMax }, async (t) => {
  const temp = tempDirectory('tally-crash-')
  const serverArgs = ['--cache-rotation-threshold', String(cacheRotationThreshold)]
  let server: ServerProcess | undefined
  const history: History = { acknowledged: new Map(), uncertainKeyed: new Map(), unexpected: [] }
  try {
    server = await spawnTally({ dataDirectory: temp.directory, args: serverArgs })
    const created = await call(server.baseUrl, 'POST', `/v2/${ledger}`)
    assert.equal(created.status, 204, created.text)
    for (let round = 0; round < roundsCount; round++) {
      if (round > 0) {
        server = await spawnTally({ dataDirectory: temp.directory, args: serverArgs })
        await verifyRestarted(server, history, `before round ${round}`)
      }
      const { acks, requests } = await runRound(server, round, history)
      t.diagnostic(`round ${round}: ${requests} requests, ${acks} acknowledged, ${history.uncertainKeyed.size} keyed writes uncertain`)
      assert.ok(acks > 0, `round ${round}: no write acknowledged\n${server.stderr()}`)
    }
    assert.deepEqual(history.unexpected, [], 'unexpected replies')

    // Recovery in-process straight after the last kill (WAL replay), then the mirror check.
    const mirrorRowsAfterCrash = await checkMirror(temp.directory, 'after the last SIGKILL')
    server = await spawnTally({ dataDirectory: temp.directory, args: serverArgs })
    await verifyRestarted(server, history, 'after the last round')
    const exit = await killTally(server, 'SIGTERM')
    assert.equal(exit.code, 0, `graceful shutdown failed: ${show(exit)}\n${server.stderr()}`)
    const mirrorRows = await checkMirror(temp.directory, 'after a graceful stop')
    t.diagnostic(`${history.acknowledged.size} writes acknowledged over ${roundsCount} crashes; mirror rows ${mirrorRowsAfterCrash} then ${mirrorRows}`)
  } finally {
    if (server !== undefined) await killTally(server)
    temp.remove()
  }
})
