import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { LedgerNode, silentObserver } from '../../src/server/index.ts'
import type { LedgerNodeOptions } from '../../src/server/index.ts'
import type { Order, ProposedOrder } from '../../src/orders/index.ts'
import { parseCreateTransaction } from '../../src/orders/index.ts'
import type { OrderResult } from '../../src/fsm/index.ts'
import type { AccountAddress, Json } from '../../src/domain/index.ts'
import { TallyError, parseJson, printTransaction, printableTransaction, stringifyJson } from '../../src/domain/index.ts'
import { Views } from '../../src/api/views.ts'
import { tempDirectory } from '../support/temp.ts'
import { until } from '../support/local.ts'
import { at, openTestApi } from '../support/api.ts'
import { Admission } from '../../src/admission/index.ts'
import type { StoreReader } from '../../src/store/index.ts'
import { MAIN, USD, assertCheckClean, storeRows, transfer } from '../support/ledger.ts'

/**
 * Admission gathers the single-order submits of one turn of the event loop
 * into one proposal (docs/pipeline.md, "Gathering single writes"). Each
 * request must still get exactly what a proposal of its own would give it.
 */

const FIXED_NOW = Date.UTC(2026, 0, 1)
const createLedger: Order = { type: 'CREATE_LEDGER', ledger: MAIN, bucket: '_default', metadata: {}, features: {} }

interface Harness {
  readonly node: LedgerNode
  /** Orders per appended proposal, in append order. */
  readonly proposals: number[]
  readonly directory: string
  close(): Promise<void>
}

async function open(options: Partial<LedgerNodeOptions> = {}): Promise<Harness> {
  const temp = tempDirectory('tally-gathering-')
  const node = await LedgerNode.open({ dataDirectory: temp.directory, clusterId: 'gathering', sync: false, now: () => FIXED_NOW, ...options })
  const proposals: number[] = []
  node.observe({ ...silentObserver, proposalAppended: (orders) => void proposals.push(orders) })
  let closed = false
  return {
    node,
    proposals,
    directory: temp.directory,
    async close() {
      if (!closed) await node.close()
      closed = true
      temp.remove()
    },
  }
}

function submitAlone(node: LedgerNode, proposed: ProposedOrder, dryRun = false): Promise<OrderResult> {
  return node.admission.submit([proposed], { atomic: true, continueOnFailure: false, dryRun }).then(([result]) => {
    assert.ok(result !== undefined)
    return result
  })
}

async function balance(node: LedgerNode, account: string): Promise<bigint> {
  const volumes = (await new Views(node.store).volumesOf(MAIN, account as AccountAddress)) as Record<string, { balance: bigint }>
  return volumes[USD]?.balance ?? 0n
}

const keyed = (order: Order, idempotencyKey: string, requestHash: string): ProposedOrder => ({ order, idempotencyKey, requestHash })

/** Funded, then a turn of transfers that succeed, fail for funds, and share idempotency keys (same request, and another one). */
const turn: readonly ProposedOrder[] = [
  { order: transfer('users:a', 'users:b', 4n) },
  { order: transfer('users:a', 'users:b', 100n) },
  keyed(transfer('users:a', 'users:c', 6n), 'k1', 'h1'),
  keyed(transfer('users:a', 'users:c', 6n), 'k1', 'h1'),
  { order: transfer('users:a', 'users:d', 1n) },
  keyed(transfer('world', 'users:e', 2n), 'k2', 'h2'),
  keyed(transfer('world', 'users:e', 3n), 'k2', 'h3'),
  { order: transfer('world', 'users:a', 1n) },
  { order: transfer('users:a', 'users:d', 1n) },
]

/**
 * A result as a client sees it: a transaction as the answer printer prints it. A replayed answer
 * is decoded from its stored row (objects in the row's sorted field order, maps with a prototype)
 * where a fresh one is the handler's own objects; the printed bytes are what must agree.
 */
function outcome(result: OrderResult | Error): unknown {
  if (result instanceof Error) return { thrown: result.message }
  if (result.status !== 'applied' || result.output.type !== 'TRANSACTION') return stringifyJson(result as unknown as Json)
  const { output } = result
  return { idempotencyHit: result.idempotencyHit, logId: output.logId, transaction: printTransaction(printableTransaction(output.transaction), { volumes: true }) }
}

test('single writes of one turn share one proposal, and each gets what a proposal of its own would give it', async () => {
  const gathered = await open()
  const alone = await open({ gatherOrdersMax: 1 })
  try {
    for (const harness of [gathered, alone]) {
      assert.equal((await submitAlone(harness.node, { order: createLedger })).status, 'applied')
      assert.equal((await submitAlone(harness.node, { order: transfer('world', 'users:a', 10n) })).status, 'applied')
    }
    const together = await Promise.all(turn.map((proposed) => submitAlone(gathered.node, proposed)))
    assert.deepEqual(gathered.proposals, [1, 1, turn.length], 'the turn went into one proposal')
    const oneByOne: OrderResult[] = []
    for (const proposed of turn) oneByOne.push(await submitAlone(alone.node, proposed))
    assert.deepEqual(alone.proposals, [1, 1, ...turn.map(() => 1)])
    // Same statuses, errors, transaction ids, post-commit volumes, idempotency hits.
    assert.deepEqual(together.map(outcome), oneByOne.map(outcome))
    const statuses = together.map((result) => (result.status === 'failed' ? result.error.code : result.status === 'applied' && result.idempotencyHit ? 'hit' : result.status))
    assert.deepEqual(statuses, ['applied', 'INSUFFICIENT_FUND', 'applied', 'hit', 'INSUFFICIENT_FUND', 'applied', 'VALIDATION', 'applied', 'applied'])
    const third = together[2]
    const fourth = together[3]
    assert.ok(third?.status === 'applied' && fourth?.status === 'applied')
    assert.deepEqual(fourth.output, third.output, 'the repeated key answers the first request\'s transaction')
    for (const account of ['users:a', 'users:b', 'users:c', 'users:d', 'users:e']) {
      assert.equal(await balance(gathered.node, account), await balance(alone.node, account), account)
    }
    await gathered.node.close()
    await assertCheckClean(gathered.directory)
  } finally {
    await gathered.close()
    await alone.close()
  }
})

test('a gathered proposal replays to the same store bytes from the WAL alone', async () => {
  const live = await open({ cacheRotationThreshold: 4 })
  const replay = tempDirectory('tally-gathering-replay-')
  try {
    await submitAlone(live.node, { order: createLedger })
    await submitAlone(live.node, { order: transfer('world', 'users:a', 10n) })
    for (let round = 0; round < 3; round++) await Promise.all(turn.map((proposed) => submitAlone(live.node, proposed)))
    assert.ok(live.proposals.some((orders) => orders > 1), 'something was gathered')
    const applied = live.node.fsm.appliedIndex
    await live.node.close()
    cpSync(path.join(live.directory, 'wal'), path.join(replay.directory, 'wal'), { recursive: true })
    const replayed = await LedgerNode.open({ dataDirectory: replay.directory, cacheRotationThreshold: 4, clusterId: 'gathering', sync: false })
    assert.equal(replayed.fsm.appliedIndex, applied)
    await replayed.close()
    assert.deepEqual(await storeRows(replay.directory), await storeRows(live.directory))
  } finally {
    await live.close()
    replay.remove()
  }
})

test('a dry run is never gathered with real writes: it keeps nothing, and nothing of it is kept', async () => {
  const harness = await open()
  try {
    await submitAlone(harness.node, { order: createLedger })
    await submitAlone(harness.node, { order: transfer('world', 'users:a', 5n) })
    const [real, dry, other] = await Promise.all([
      submitAlone(harness.node, { order: transfer('users:a', 'users:b', 5n) }),
      submitAlone(harness.node, { order: transfer('users:a', 'users:c', 5n) }, true),
      submitAlone(harness.node, { order: transfer('world', 'users:d', 1n) }),
    ])
    assert.equal(real.status, 'applied')
    assert.equal(other.status, 'applied')
    assert.ok(dry.status === 'applied' || (dry.status === 'failed' && dry.error.code === 'INSUFFICIENT_FUND'))
    assert.deepEqual([...harness.proposals].sort(), [1, 1, 1, 2], 'the dry run went alone, the two real writes together')
    assert.equal(await balance(harness.node, 'users:c'), 0n)
    assert.equal(await balance(harness.node, 'users:b'), 5n)
  } finally {
    await harness.close()
  }
})

test('a gathered script whose inputs moved (STALE_INPUTS) is retried alone; the others of its proposal are answered once', async () => {
  // The WAL's writes wait at a gate, so a second proposal is planned before the first is applied.
  let release: () => void = () => {}
  let gate: Promise<void> | undefined
  const harness = await open({
    // Each entry applied only once durable: what waits at the gate stays logged and not applied
    // (a single node otherwise applies what it appends at once, ahead of durability).
    applyWhenDurable: true,
    walIo: {
      write: async (handle: FileHandle, buffers: Buffer[], position: number) => {
        if (gate !== undefined) await gate
        const { bytesWritten } = await handle.writev(buffers, position)
        return bytesWritten
      },
    },
  })
  try {
    await submitAlone(harness.node, { order: createLedger })
    await submitAlone(harness.node, { order: transfer('world', 'pool', 10n) })
    gate = new Promise((resolve) => (release = resolve))
    const first = harness.node.nextIndex()
    // The first proposal waits at the gate, and the ones after it behind it, none applied.
    const blocker = submitAlone(harness.node, { order: transfer('world', 'users:blocker', 1n) })
    await until('the blocker appended', () => (harness.node.nextIndex() === first + 1 ? true : undefined))
    const topUp = submitAlone(harness.node, { order: transfer('world', 'pool', 5n) })
    await until('the top-up appended', () => (harness.node.nextIndex() === first + 2 ? true : undefined))
    // Planned on the pool's 10: the top-up is logged but not applied.
    const sweep = parseCreateTransaction(MAIN, parseJson(JSON.stringify({ script: { plain: 'vars { monetary $b = balance(@pool, USD/2) }\nsend $b ( source = @pool destination = @sink )', vars: {} } })))
    const together = Promise.all([submitAlone(harness.node, { order: sweep }), submitAlone(harness.node, { order: transfer('world', 'users:x', 1n) })])
    await until('the gathered pair appended', () => (harness.node.nextIndex() === first + 3 ? true : undefined))
    gate = undefined
    release()
    assert.equal((await blocker).status, 'applied')
    assert.equal((await topUp).status, 'applied')
    const [swept, funded] = await together
    assert.equal(swept.status, 'applied', JSON.stringify(outcome(swept), (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value)))
    assert.equal(funded.status, 'applied')
    assert.deepEqual(harness.proposals, [1, 1, 1, 1, 2, 1], 'the pair, then the script alone')
    assert.equal(await balance(harness.node, 'sink'), 15n, 'the retry swept what the pool held when it was applied')
    assert.equal(await balance(harness.node, 'users:x'), 1n, 'the other order was applied once')
  } finally {
    gate = undefined
    release()
    await harness.close()
  }
})

test('a gathering over its byte bound is proposed in halves: no gathered record over the bound, every order applied', async () => {
  const harness = await open({ gatherBytesMax: 1 })
  try {
    await submitAlone(harness.node, { order: createLedger })
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => submitAlone(harness.node, { order: transfer('world', `users:${i}`, 1n) })))
    assert.deepEqual(results.map((result) => result.status), ['applied', 'applied', 'applied', 'applied', 'applied'])
    assert.deepEqual(harness.proposals, [1, 1, 1, 1, 1, 1], 'every record alone over 1 byte: each order proposed alone')
    const ids = results.map((result) => (result.status === 'applied' && result.output.type === 'TRANSACTION' ? (result.output.transaction as { id: bigint }).id : -1n))
    assert.deepEqual(new Set(ids), new Set([0n, 1n, 2n, 3n, 4n]))
  } finally {
    await harness.close()
  }
})

test('a write that would not fit one log record is refused alone (413); the others of its turn are applied', async () => {
  // Small log records (64 KiB): one transaction with 100 kB of metadata does not fit, alone or gathered.
  const harness = await open({ walSegmentBytesMax: 64 * 1024 })
  try {
    await submitAlone(harness.node, { order: createLedger })
    const big: Order = { ...transfer('world', 'users:big', 1n), metadata: { blob: 'x'.repeat(100_000) } } as Order
    const settled = await Promise.allSettled([
      submitAlone(harness.node, { order: transfer('world', 'users:1', 1n) }),
      submitAlone(harness.node, { order: big }),
      submitAlone(harness.node, { order: transfer('world', 'users:2', 1n) }),
    ])
    const [first, refused, third] = settled
    assert.ok(first?.status === 'fulfilled' && first.value.status === 'applied')
    assert.ok(third?.status === 'fulfilled' && third.value.status === 'applied')
    assert.ok(refused?.status === 'rejected' && refused.reason instanceof TallyError)
    assert.equal(refused.reason.kind, 'too_large')
    assert.match(refused.reason.message, /over the log's record limit/)
    assert.equal(await balance(harness.node, 'users:big'), 0n)
  } finally {
    await harness.close()
  }
})

/** The node's store, except that a read of any key naming `users:poison` fails: planning a proposal touching it is refused. */
function poisonedStore(node: LedgerNode): StoreReader {
  return {
    getMany: async (keys) => {
      if (keys.some((key) => key.includes('users:poison'))) throw new TallyError({ code: 'INTERNAL', kind: 'internal', message: 'poisoned read' })
      return node.store.getMany(keys)
    },
  } as StoreReader
}

test('a refusal while planning a gathering reaches only the request it is about', async () => {
  const temp = tempDirectory('tally-gathering-refusal-')
  const node = await LedgerNode.open({ dataDirectory: temp.directory, sync: false })
  try {
    await submitAlone(node, { order: createLedger })
    const store = poisonedStore(node)
    const admission = new Admission({ cache: node.cache, store, sequencer: node, now: Date.now, newId: () => 'refusal' })
    const proposals: number[] = []
    admission.observer = { proposalAppended: (orders) => void proposals.push(orders), horizonRefused() {} }
    const settled = await Promise.allSettled(
      ['users:1', 'users:poison', 'users:2'].map((account) => admission.submit([{ order: transfer('world', account, 1n) }], { atomic: true, continueOnFailure: false })),
    )
    const [first, poisoned, third] = settled
    assert.ok(first?.status === 'fulfilled' && first.value[0]?.status === 'applied')
    assert.ok(third?.status === 'fulfilled' && third.value[0]?.status === 'applied')
    assert.ok(poisoned?.status === 'rejected' && poisoned.reason instanceof TallyError)
    assert.equal(poisoned.reason.message, 'poisoned read')
    assert.deepEqual(proposals, [1, 1], 'the gathering was refused whole, then its orders went alone')
  } finally {
    await node.close()
    temp.remove()
  }
})

test('the in-flight bound counts gathered requests one by one', async () => {
  const temp = tempDirectory('tally-gathering-bound-')
  const node = await LedgerNode.open({ dataDirectory: temp.directory, sync: false })
  try {
    await submitAlone(node, { order: createLedger })
    const bounded = new Admission({
      cache: node.cache,
      store: node.store,
      sequencer: node,
      now: Date.now,
      newId: () => 'bounded',
      inFlightMax: 2,
    })
    const settled = await Promise.allSettled([0, 1, 2].map((i) => bounded.submit([{ order: transfer('world', `users:${i}`, 1n) }], { atomic: true, continueOnFailure: false })))
    assert.deepEqual(settled.map((entry) => entry.status), ['fulfilled', 'fulfilled', 'rejected'])
    const third = settled[2]
    assert.ok(third?.status === 'rejected' && third.reason instanceof TallyError && third.reason.code === 'RESOURCE_EXHAUSTED')
  } finally {
    await node.close()
    temp.remove()
  }
})


test('a write dated by its caller (a log import) is never gathered: each keeps its own date', async () => {
  const harness = await open()
  try {
    await submitAlone(harness.node, { order: createLedger })
    const dates = ['2025-01-01T00:00:00.000Z', '2025-02-01T00:00:00.000Z']
    const results = await Promise.all(
      dates.map((date, i) => harness.node.admission.submit([{ order: transfer('world', `users:${i}`, 1n) }], { atomic: false, continueOnFailure: false, date })),
    )
    const timestamps = results.map(([result]) => (result?.status === 'applied' && result.output.type === 'TRANSACTION' ? String((result.output.transaction as { timestamp: unknown }).timestamp) : 'none'))
    assert.deepEqual(timestamps, dates)
    assert.deepEqual(harness.proposals, [1, 1, 1])
  } finally {
    await harness.close()
  }
})

test('a gathering holds at most gatherOrdersMax orders', async () => {
  const harness = await open({ gatherOrdersMax: 3 })
  try {
    await submitAlone(harness.node, { order: createLedger })
    const results = await Promise.all(Array.from({ length: 7 }, (_, i) => submitAlone(harness.node, { order: transfer('world', `users:${i}`, 1n) })))
    assert.ok(results.every((result) => result.status === 'applied'))
    // The three gatherings plan concurrently (store reads for new accounts), so they may be appended in any order.
    assert.deepEqual([...harness.proposals].sort(), [1, 1, 3, 3])
  } finally {
    await harness.close()
  }
})

test('over HTTP: concurrent POST /transactions with one Idempotency-Key are one transaction; the second answer says Idempotency-Hit', async () => {
  const api = await openTestApi()
  const proposals: number[] = []
  api.node.observe({ ...silentObserver, proposalAppended: (orders) => void proposals.push(orders) })
  try {
    assert.equal((await api.request('POST', '/v2/main')).status, 204)
    const body = { postings: [{ source: 'world', destination: 'users:1', amount: 7, asset: 'USD' }] }
    const [first, second, other] = await Promise.all([
      api.request('POST', '/v2/main/transactions', body, { 'Idempotency-Key': 'same' }),
      api.request('POST', '/v2/main/transactions', body, { 'Idempotency-Key': 'same' }),
      api.request('POST', '/v2/main/transactions', { postings: [{ source: 'world', destination: 'users:2', amount: 1, asset: 'USD' }] }),
    ])
    assert.deepEqual([first?.status, second?.status, other?.status], [200, 200, 200])
    assert.deepEqual(proposals, [1, 3], 'the three requests were one proposal')
    assert.equal(first?.headers['idempotency-hit'], undefined)
    assert.equal(second?.headers['idempotency-hit'], 'true')
    assert.equal(second?.text, first?.text, 'the same transaction answered twice')
    const count = await api.request('GET', '/v2/main/stats')
    assert.equal(at(count.body, 'data', 'transactions'), 2n)
  } finally {
    await api.close()
  }
})

/** `submitSingle` as a promise of every answer it was given (an array, to see a second answer). */
function submitSingleAnswers(admission: Admission, proposed: ProposedOrder, dryRun = false): { answers: (OrderResult | Error)[]; first: Promise<OrderResult> } {
  const answers: (OrderResult | Error)[] = []
  let settle: (answer: OrderResult | Error) => void = () => {}
  const first = new Promise<OrderResult | Error>((resolve) => (settle = resolve)).then((answer) => {
    if (answer instanceof Error) throw answer
    return answer
  })
  admission.submitSingle(proposed, { atomic: true, continueOnFailure: false, dryRun }, (error, result) => {
    const answer = result ?? (error instanceof Error ? error : new Error(String(error)))
    answers.push(answer)
    settle(answer)
  })
  return { answers, first }
}

test('a single submit answered through a callback: once each, what submit resolves with, gathered into one proposal', async () => {
  const single = await open()
  const promised = await open()
  try {
    for (const harness of [single, promised]) {
      assert.equal((await submitAlone(harness.node, { order: createLedger })).status, 'applied')
      assert.equal((await submitAlone(harness.node, { order: transfer('world', 'users:a', 10n) })).status, 'applied')
    }
    const submitted = turn.map((proposed) => submitSingleAnswers(single.node.admission, proposed))
    const answered = await Promise.all(submitted.map((entry) => entry.first))
    const viaPromises = await Promise.all(turn.map((proposed) => submitAlone(promised.node, proposed)))
    assert.deepEqual(single.proposals, [1, 1, turn.length], 'the turn went into one proposal')
    assert.deepEqual(answered.map(outcome), viaPromises.map(outcome))
    // A dry run goes through `submit` (never gathered) and answers the same way.
    const dry = submitSingleAnswers(single.node.admission, { order: transfer('world', 'users:z', 5n) }, true)
    assert.equal((await dry.first).status, 'applied')
    assert.deepEqual(
      [...submitted, dry].map((entry) => entry.answers.length),
      [...submitted, dry].map(() => 1),
      'each submit answered exactly once',
    )
    assert.equal(await balance(single.node, 'users:z'), 0n, 'the dry run kept nothing')
  } finally {
    await single.close()
    await promised.close()
  }
})

test('a single submit answered through a callback counts in flight until answered; a refusal is its answer', async () => {
  const temp = tempDirectory('tally-gathering-single-bound-')
  const node = await LedgerNode.open({ dataDirectory: temp.directory, sync: false })
  try {
    await submitAlone(node, { order: createLedger })
    const store = poisonedStore(node)
    const bounded = new Admission({ cache: node.cache, store, sequencer: node, now: Date.now, newId: () => 'bounded-single', inFlightMax: 2 })
    const turnOne = ['users:0', 'users:poison', 'users:2'].map((account) => submitSingleAnswers(bounded, { order: transfer('world', account, 1n) }))
    const [first, poisoned, third] = await Promise.allSettled(turnOne.map((entry) => entry.first))
    assert.ok(first?.status === 'fulfilled' && first.value.status === 'applied')
    assert.ok(poisoned?.status === 'rejected' && poisoned.reason instanceof TallyError && poisoned.reason.message === 'poisoned read', 'a planning refusal reaches its own request')
    assert.ok(third?.status === 'rejected' && third.reason instanceof TallyError && third.reason.code === 'RESOURCE_EXHAUSTED', 'the third of a bound of two is refused')
    // Answered submits no longer count: two more fit.
    const turnTwo = ['users:4', 'users:5'].map((account) => submitSingleAnswers(bounded, { order: transfer('world', account, 1n) }))
    const results = await Promise.all(turnTwo.map((entry) => entry.first))
    assert.deepEqual(results.map((result) => result.status), ['applied', 'applied'])
    assert.deepEqual([...turnOne, ...turnTwo].map((entry) => entry.answers.length), [1, 1, 1, 1, 1], 'each submit answered exactly once')
  } finally {
    await node.close()
    temp.remove()
  }
})
