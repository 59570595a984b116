import { test } from 'node:test'
import type { FileHandle } from 'node:fs/promises'
import assert from 'node:assert/strict'
import type { Order } from '../../src/orders/index.ts'
import type { OrderResult } from '../../src/fsm/index.ts'
import { attributeRowKey } from '../../src/store/index.ts'
import { transactionKey } from '../../src/domain/index.ts'
import { LedgerNode, silentObserver } from '../../src/server/index.ts'
import type { LedgerNodeOptions } from '../../src/server/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { heldWal } from '../support/held-wal.ts'
import { until } from '../support/local.ts'
import { MAIN, transfer } from '../support/ledger.ts'

const once = { atomic: true, continueOnFailure: false }

/** A node (`options` besides its directory and WAL I/O) whose WAL fdatasyncs wait, while `hold` is in force, until `release`; ledger `main` created. */
async function openGatedNode(options: Partial<LedgerNodeOptions> = {}): Promise<{ node: LedgerNode; hold: () => void; release: () => void; close: () => Promise<void> }> {
  const wal = heldWal()
  const tmp = tempDirectory()
  const node = await LedgerNode.open({ ...options, dataDirectory: tmp.directory, walIo: wal.walIo })
  await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger: MAIN, bucket: '_default', metadata: {}, features: {} } as Order }], once)
  // The creation was answered just before its store write, which settles (with its metrics) within this turn.
  await new Promise<void>((resolve) => setImmediate(resolve))
  return {
    node,
    hold: () => wal.hold(),
    release: () => wal.release(),
    close: async () => {
      wal.release()
      await node.close()
      tmp.remove()
    },
  }
}

// ADR 0005: a write is answered after its WAL group is fdatasynced, the FSM applied it and its
// store batch is written. A single node applies while the fdatasync runs; nothing reaches the
// store, and nobody is answered, before the group is durable.
test('a single node applies an appended write while its WAL group is made durable; the store and the answer wait for the fdatasync', async () => {
  const { node, hold, release, close } = await openGatedNode()
  try {
    hold()
    const index = node.nextIndex()
    let answered: readonly OrderResult[] | undefined
    const submitted = node.admission.submit([{ order: transfer('world', 'users:1', 7n) }], once).then((results) => (answered = results))
    await until('the FSM applied the write, its group not yet durable', () => (node.fsm.appliedIndex === index ? true : undefined))
    assert.ok(node.wal.durable < index, 'the group is not durable yet')
    assert.equal(node.storeIndex(), index - 1, 'the store holds nothing of it')
    assert.deepEqual(await node.store.getMany([attributeRowKey(transactionKey(MAIN, 0n))]), [undefined])
    // A few turns more: still not answered while the fdatasync waits.
    for (let turn = 0; turn < 5; turn++) await new Promise<void>((resolve) => setImmediate(resolve))
    assert.equal(answered, undefined, 'not answered before the group is durable')
    release()
    const [result] = await submitted
    assert.equal(result?.status, 'applied')
    assert.ok(node.wal.durable >= index)
    assert.equal(node.storeIndex(), index)
    assert.notDeepEqual(await node.store.getMany([attributeRowKey(transactionKey(MAIN, 0n))]), [undefined])
  } finally {
    await close()
  }
})

// Under load the apply loop is rarely idle: a write appended while an earlier one waits for its
// fdatasync used to wait for that fdatasync and its own before the FSM even applied it, so a slow
// fdatasync left a backlog applied in one long turn after it. Now it is applied while the earlier
// one waits (docs/performance.md, "Latency at half load"); each is still stored, and answered, only
// once its own group is durable, in order.
test('a write appended while an earlier one waits for its fdatasync is applied before that fdatasync returns; both are stored and answered only once durable', async () => {
  const { node, hold, release, close } = await openGatedNode()
  try {
    hold()
    const firstIndex = node.nextIndex()
    const answered: number[] = []
    const first = node.admission.submit([{ order: transfer('world', 'users:1', 7n) }], once).then((results) => (answered.push(firstIndex), results))
    await until('the FSM applied the first write', () => (node.fsm.appliedIndex === firstIndex ? true : undefined))
    const secondIndex = node.nextIndex()
    const second = node.admission.submit([{ order: transfer('world', 'users:2', 5n) }], once).then((results) => (answered.push(secondIndex), results))
    await until('the FSM applied the second write, the first one\'s fdatasync still held', () => (node.fsm.appliedIndex === secondIndex ? true : undefined), 5_000)
    assert.equal(secondIndex, firstIndex + 1)
    assert.ok(node.wal.durable < firstIndex, 'the first group is not durable yet')
    assert.equal(node.storeIndex(), firstIndex - 1, 'the store holds neither')
    assert.deepEqual(await node.store.getMany([attributeRowKey(transactionKey(MAIN, 0n)), attributeRowKey(transactionKey(MAIN, 1n))]), [undefined, undefined])
    for (let turn = 0; turn < 5; turn++) await new Promise<void>((resolve) => setImmediate(resolve))
    assert.deepEqual(answered, [], 'neither is answered before its group is durable')
    release()
    const [[firstResult], [secondResult]] = await Promise.all([first, second])
    assert.equal(firstResult?.status, 'applied')
    assert.equal(secondResult?.status, 'applied')
    assert.deepEqual(answered, [firstIndex, secondIndex], 'answered in log order')
    assert.equal(node.storeIndex(), secondIndex)
    assert.equal((await node.store.getMany([attributeRowKey(transactionKey(MAIN, 1n))]))[0] !== undefined, true)
  } finally {
    await close()
  }
})

// Applying ahead stops at a cache rotation until the store holds everything applied: the store
// then keeps up with the oldest generation the cache still holds, which seeds read from the store
// are judged against (ADR 0002), however slow the fdatasync the batches wait for.
test('applying ahead of durability stops at a cache rotation until the store caught up', async () => {
  const { node, hold, release, close } = await openGatedNode({ cacheRotationThreshold: 4, gatherOrdersMax: 1 })
  try {
    hold()
    const first = node.nextIndex()
    const generation = node.cache.generation
    // One at a time, each appended before the next is planned: the cache's horizon admits them all.
    const writes: Promise<readonly OrderResult[]>[] = []
    for (let i = 0; i < 6; i++) {
      writes.push(node.admission.submit([{ order: transfer('world', `users:${i}`, 1n) }], once))
      await until(`proposal ${i + 1} appended`, () => (node.nextIndex() === first + i + 1 ? true : undefined))
    }
    await until('a rotation applied', () => (node.cache.generation !== generation ? true : undefined))
    for (let turn = 0; turn < 30; turn++) await new Promise<void>((resolve) => setImmediate(resolve))
    assert.ok(node.fsm.appliedIndex < first + 5, `applied up to ${node.fsm.appliedIndex} past a rotation while the store is at ${node.storeIndex()}`)
    assert.equal(node.cache.generation, generation + 1, 'no second rotation before the store caught up')
    release()
    const results = await Promise.all(writes)
    assert.ok(results.every(([result]) => result?.status === 'applied'))
    assert.equal(node.storeIndex(), first + 5)
  } finally {
    await close()
  }
})

// Applied ahead, the batches one fdatasync made durable are stored in one write and answered
// together: the answers for durable writes come before the FSM's work on later ones.
test('batches applied ahead and made durable by one fdatasync are stored in one write', async () => {
  const { node, hold, release, close } = await openGatedNode({ gatherOrdersMax: 1 })
  try {
    const stored: number[] = []
    node.observe({ ...silentObserver, batchApplied: (proposals) => void stored.push(proposals) })
    hold()
    const first = node.nextIndex()
    const writes: Promise<readonly OrderResult[]>[] = []
    for (let i = 0; i < 4; i++) {
      writes.push(node.admission.submit([{ order: transfer('world', `users:${i}`, 1n) }], once))
      await until(`proposal ${i + 1} applied`, () => (node.fsm.appliedIndex === first + i ? true : undefined))
    }
    assert.deepEqual(stored, [], 'nothing stored before durable')
    release()
    await Promise.all(writes)
    // Answers go out just before their store write (docs/pipeline.md), whose metric follows it.
    await until('both store writes observed', () => (stored.length >= 2 ? true : undefined))
    // The first write's group, then the three appended behind its fdatasync (one group): two store writes.
    assert.deepEqual(stored, [1, 3])
    assert.equal(node.storeIndex(), first + 3)
  } finally {
    await close()
  }
})

// The early apply puts a write's idempotency record in the cache before its group is durable. A
// retry with the same key is a proposal of its own, answered after its own, later WAL group: it
// must not acknowledge the first write while that write's fdatasync has not returned.
test('a retry of a write applied early, its group not yet durable, is answered only once the write is durable', async () => {
  const { node, hold, release, close } = await openGatedNode()
  try {
    hold()
    const index = node.nextIndex()
    const keyed = { order: transfer('world', 'users:1', 7n), idempotencyKey: 'retry-ik', requestHash: 'h1' }
    let firstAnswered = false
    let retryAnswered = false
    const first = node.admission.submit([keyed], once).then((results) => ((firstAnswered = true), results))
    await until('the FSM applied the write, its group not yet durable', () => (node.fsm.appliedIndex === index ? true : undefined))
    const retry = node.admission.submit([keyed], once).then((results) => ((retryAnswered = true), results))
    for (let turn = 0; turn < 20; turn++) await new Promise<void>((resolve) => setImmediate(resolve))
    assert.ok(node.wal.durable < index, 'the first group is still not durable')
    assert.equal(firstAnswered, false, 'the write is not answered before it is durable')
    assert.equal(retryAnswered, false, 'nor is its retry')
    release()
    const [[firstResult], [retryResult]] = await Promise.all([first, retry])
    assert.equal(firstResult?.status, 'applied')
    assert.equal(retryResult?.status, 'applied')
    assert.ok(retryResult?.status === 'applied' && retryResult.idempotencyHit, 'the retry is answered from the record')
    assert.ok(node.wal.durable >= index)
  } finally {
    await close()
  }
})

// The overlap above only pays if the fdatasync is on its way when the FSM starts: a group written
// on the JavaScript thread must reach `sync` in the same synchronous run, before the apply loop's
// microtask applies the entry (else a lone write's latency is apply + fdatasync, not the larger).
test('an idle node starts the fdatasync of a lone write before the FSM applies it', async () => {
  const appliedAtSync: { index: number; applied: number }[] = []
  let opened: LedgerNode | undefined
  const tmp = tempDirectory()
  const node = await LedgerNode.open({
    dataDirectory: tmp.directory,
    walIo: {
      async sync(handle: FileHandle) {
        if (opened !== undefined) appliedAtSync.push({ index: opened.wal.head, applied: opened.fsm.appliedIndex })
        await handle.datasync()
      },
    },
  })
  opened = node
  try {
    await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger: MAIN, bucket: '_default', metadata: {}, features: {} } as Order }], once)
    for (let i = 1; i <= 3; i++) {
      appliedAtSync.length = 0
      const index = node.nextIndex()
      const [result] = await node.admission.submit([{ order: transfer('world', `users:${i}`, 7n) }], once)
      assert.equal(result?.status, 'applied')
      assert.deepEqual(appliedAtSync[0], { index, applied: index - 1 }, 'the fdatasync started before the FSM applied the write')
    }
  } finally {
    await node.close()
    tmp.remove()
  }
})
