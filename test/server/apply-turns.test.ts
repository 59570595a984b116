import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FileHandle } from 'node:fs/promises'
import { LedgerNode, silentObserver } from '../../src/server/index.ts'
import type { Order } from '../../src/orders/index.ts'
import { tempDirectory } from '../support/temp.ts'
import type { LedgerName, AccountAddress, Asset } from '../../src/domain/index.ts'
import { volumesKey } from '../../src/domain/index.ts'
import { buildApi } from '../../src/api/app.ts'

const L = 'main' as LedgerName

function send(destination: string): Order {
  return {
    type: 'CREATE_TRANSACTION',
    ledger: L,
    postings: [{ source: 'world' as AccountAddress, destination: destination as AccountAddress, amount: 1n, asset: 'USD/2' as Asset }],
    metadata: {},
    accountMetadata: {},
    force: false,
  } as Order
}

/** Resolves once `condition` holds, checking after each turn of the event loop; fails after a deadline. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

test('a backlog of durable proposals is stored in batches bounded by orders, with a turn of the event loop between batches', async () => {
  const tmp = tempDirectory()
  // The WAL's writes wait at a gate: proposals pile up behind it and become durable together.
  let open = true
  let release: () => void = () => {}
  let gate = Promise.resolve()
  const closeGate = (): void => {
    open = false
    gate = new Promise((resolve) => (release = resolve))
  }
  const node = await LedgerNode.open({
    dataDirectory: tmp.directory,
    cacheRotationThreshold: 1000,
    applyBatchOrdersMax: 2,
    // One proposal per submit: the backlog is made of eight proposals, not one gathering.
    gatherOrdersMax: 1,
    walIo: {
      write: async (handle: FileHandle, buffers: Buffer[], position: number) => {
        if (!open) await gate
        const { bytesWritten } = await handle.writev(buffers, position)
        return bytesWritten
      },
    },
  })
  try {
    const created = await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} } }], { atomic: false, continueOnFailure: false })
    assert.equal(created[0]?.status, 'applied')
    // Every store batch, and every turn of the event loop that follows one, in order.
    const events: string[] = []
    node.observe({
      ...silentObserver,
      batchApplied(proposals) {
        events.push(`batch ${proposals}`)
        setImmediate(() => events.push('turn'))
      },
    })
    closeGate()
    const first = node.nextIndex()
    const writes = Array.from({ length: 8 }, (_, i) => node.admission.submit([{ order: send(`users:${i}`) }], { atomic: false, continueOnFailure: false }))
    await until(() => node.nextIndex() === first + 8, 'eight appended proposals')
    open = true
    release()
    const results = await Promise.all(writes)
    assert.ok(results.every((result) => result[0]?.status === 'applied'))
    await until(() => events.filter((event) => event === 'turn').length === events.filter((event) => event !== 'turn').length, 'the last turn')

    // Two orders per batch: proposals of one order each are stored two by two (at most), never eight at once.
    const batches = events.filter((event) => event !== 'turn')
    assert.ok(batches.every((event) => event === 'batch 1' || event === 'batch 2'), events.join(', '))
    assert.ok(batches.length >= 4, events.join(', '))
    // The store's write settles without a turn of the event loop: the node yields one itself between batches.
    for (let i = 1; i < events.length; i++) assert.ok(!(events[i - 1] !== 'turn' && events[i] !== 'turn'), `two batches without a turn between them: ${events.join(', ')}`)
  } finally {
    open = true
    release()
    await node.close()
    tmp.remove()
  }
})

test('a bulk larger than a batch is applied in slices: the event loop turns (a health check is answered) while it is applied, and no write is admitted on a cache holding part of it', async () => {
  const tmp = tempDirectory()
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, sync: false, applyBatchOrdersMax: 4, applySliceUnits: 3, storeWriteSliceRows: 8 })
  const app = await buildApi(node)
  let ticking = true
  try {
    const created = await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} } }], { atomic: false, continueOnFailure: false })
    assert.equal(created[0]?.status, 'applied')
    const size = 40
    const keys = Array.from({ length: size }, (_, i) => volumesKey(L, `bulk:${i}` as AccountAddress, 'USD/2' as Asset))
    const held = (): number => keys.filter((key) => node.cache.get(key).state !== 'absent').length
    // Every append, with how much of the bulk the cache held when admission stamped it.
    const appends: { destination: string; held: number }[] = []
    const append = node.append.bind(node)
    node.append = (payload, proposal) => {
      const order = proposal?.orders[0]?.order
      appends.push({ destination: order?.type === 'CREATE_TRANSACTION' ? String(order.postings[0]?.destination) : '', held: held() })
      return append(payload, proposal)
    }
    // How much of the bulk the cache held at each of admission's cache checks (the FSM never calls these).
    const checks: number[] = []
    const check = node.cache.check.bind(node.cache)
    node.cache.check = (key, index) => {
      checks.push(held())
      return check(key, index)
    }
    const bulkIndex = node.nextIndex()
    // At every turn of the event loop: is the bulk being applied (begun, not stored), and how much of it does the cache hold?
    const during: number[] = []
    // The apply time the stall watch reads, at each of those turns: it grows slice by slice, not only at the end.
    const applyTimes: number[] = []
    let health: Promise<{ statusCode: number; body: string }> | undefined
    let healthAnsweredDuring = false
    let probe: Promise<unknown> | undefined
    const tick = (): void => {
      if (!ticking) return
      if (node.fsm.appliedIndex >= bulkIndex && node.storeIndex() < bulkIndex) {
        const now = held()
        during.push(now)
        applyTimes.push(node.applyTime.milliseconds)
        health ??= app.inject({ method: 'GET', url: '/_/healthz' }).then((reply) => {
          healthAnsweredDuring = node.storeIndex() < bulkIndex
          return reply
        })
        // A write submitted while the cache holds part of the bulk.
        if (now > 0 && now < size) probe ??= node.admission.submit([{ order: send('probe') }], { atomic: true, continueOnFailure: false })
      }
      setImmediate(tick)
    }
    setImmediate(tick)
    const results = await node.admission.submit(
      keys.map((_, i) => ({ order: send(`bulk:${i}`) })),
      { atomic: true, continueOnFailure: false },
    )
    assert.equal(results.length, size)
    assert.ok(results.every((result) => result.status === 'applied'))
    assert.ok(during.length >= 2, `turns of the event loop while the bulk was applied: ${during.length}`)
    const grew = applyTimes.filter((ms, i) => i > 0 && ms > (applyTimes[i - 1] as number)).length
    assert.ok(grew >= 3, `apply time at each turn: ${applyTimes.join(', ')}`)
    // The cache takes the bulk in slices too (the turns saw it hold part of it) ...
    assert.ok(during.some((count) => count > 0 && count < size), `keys of the bulk the cache held, turn by turn: ${during.join(', ')}`)
    // ... and admission waited: the write submitted meanwhile was stamped on a cache holding all of it.
    assert.ok(probe !== undefined)
    await probe
    assert.deepEqual(appends.filter((entry) => entry.destination === 'probe'), [{ destination: 'probe', held: size }])
    assert.ok(checks.every((count) => count === 0 || count === size), `keys of the bulk the cache held at admission's checks: ${checks.join(', ')}`)
    assert.ok(health !== undefined)
    const reply = await health
    assert.equal(reply.statusCode, 200)
    assert.ok(healthAnsweredDuring, 'the health check was answered before the bulk was stored')
    assert.equal(keys.filter((key) => node.cache.get(key).state === 'live').length, size)
  } finally {
    ticking = false
    await app.close()
    await node.close()
    tmp.remove()
  }
})
