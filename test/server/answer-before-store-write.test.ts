import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Order } from '../../src/orders/index.ts'
import type { OrderResult } from '../../src/fsm/index.ts'
import type { AccountAddress } from '../../src/domain/index.ts'
import { transactionKey } from '../../src/domain/index.ts'
import { attributeRowKey } from '../../src/store/index.ts'
import { LedgerNode } from '../../src/server/index.ts'
import { NO_EXPAND, Views } from '../../src/api/views.ts'
import { tempDirectory } from '../support/temp.ts'
import { MAIN, transfer } from '../support/ledger.ts'

/**
 * A single node answers a batch's writes in the stretch that hands the batch
 * to the store, just before the store write (docs/pipeline.md, "Answers and
 * the store write"): an answer's bytes leave while RocksDB writes. What must
 * hold: the answer says the applied index it reflects, and nothing that runs
 * after the answer — a promise continuation, a read — finds the store, or a
 * read answer kept between writes, without the answered write.
 */

const once = { atomic: true, continueOnFailure: false }
const withVolumes = { ...NO_EXPAND, volumes: true }

test('a single write is answered before its store write, and the first code to run after the answer reads it, kept read answers included', async () => {
  const temp = tempDirectory('tally-answer-first-')
  const node = await LedgerNode.open({ dataDirectory: temp.directory, clusterId: 'answer-first', sync: false })
  try {
    await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger: MAIN, bucket: '_default', metadata: {}, features: {} } as Order }], once)
    await node.admission.submit([{ order: transfer('world', 'users:1', 7n) }], once)
    const views = new Views(node.store)
    const account = 'users:1' as AccountAddress
    // Read twice: the second answer is the one kept between writes (a string, no read of the store).
    await views.printedAccount(MAIN, account, withVolumes)
    const kept = views.accountAnswer(MAIN, account, withVolumes)
    assert.equal(typeof kept, 'string', 'the account answer is kept')
    assert.match(kept as string, /"balance":7\b/)

    const index = node.nextIndex()
    const txRow = attributeRowKey(transactionKey(MAIN, 1n))
    const seen = await new Promise<{ storeIndex: number; rowAtAnswer: Buffer | undefined; rowAfter: Buffer | undefined; answerAfter: string; result: OrderResult }>((resolve, reject) => {
      node.admission.submitSingle({ order: transfer('world', 'users:1', 5n) }, once, (error, result) => {
        if (result === undefined) return reject(error)
        const storeIndex = node.storeIndex()
        const [rowAtAnswer] = node.store.getManySync([txRow])
        // The first thing that can run after the answer's stretch: a microtask.
        queueMicrotask(() => {
          const [rowAfter] = node.store.getManySync([txRow])
          Promise.resolve(views.accountAnswer(MAIN, account, withVolumes)).then((answerAfter) => resolve({ storeIndex, rowAtAnswer, rowAfter, answerAfter, result }), reject)
        })
      })
    })
    assert.equal(seen.result.status, 'applied')
    assert.ok(seen.storeIndex >= index, `answered with applied index ${seen.storeIndex}, the write is at ${index}`)
    assert.equal(seen.rowAtAnswer, undefined, 'answered before the store write (one synchronous RocksDB write)')
    assert.notEqual(seen.rowAfter, undefined, 'the store holds the write once the answer stretch ends')
    assert.match(seen.answerAfter, /"balance":12\b/, 'a read answer kept before the write is not served after it')
  } finally {
    await node.close()
    temp.remove()
  }
})
