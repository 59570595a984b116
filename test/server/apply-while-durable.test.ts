import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FileHandle } from 'node:fs/promises'
import type { Order } from '../../src/orders/index.ts'
import type { OrderResult } from '../../src/fsm/index.ts'
import { attributeRowKey } from '../../src/store/index.ts'
import { transactionKey } from '../../src/domain/index.ts'
import { LedgerNode } from '../../src/server/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { until } from '../support/local.ts'
import { MAIN, transfer } from '../support/ledger.ts'

const once = { atomic: true, continueOnFailure: false }

/** A node whose WAL fdatasyncs wait, while `hold` is in force, until `release`. */
async function openGatedNode(): Promise<{ node: LedgerNode; hold: () => void; release: () => void; close: () => Promise<void> }> {
  let open: () => void = () => {}
  let gate: Promise<void> | undefined
  const tmp = tempDirectory()
  const node = await LedgerNode.open({
    dataDirectory: tmp.directory,
    walIo: {
      async sync(handle: FileHandle) {
        if (gate !== undefined) await gate
        await handle.datasync()
      },
    },
  })
  await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger: MAIN, bucket: '_default', metadata: {}, features: {} } as Order }], once)
  const release = (): void => {
    gate = undefined
    open()
  }
  return {
    node,
    hold: () => void (gate = new Promise((resolve) => (open = resolve))),
    release,
    close: async () => {
      release()
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
