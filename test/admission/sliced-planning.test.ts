import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LedgerNode } from '../../src/server/index.ts'
import type { Proposal } from '../../src/fsm/index.ts'
import { decodeProposal, encodeProposal } from '../../src/fsm/index.ts'
import type { Order } from '../../src/orders/index.ts'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'
import { planSliceOrdersDefault } from '../../src/admission/admission.ts'
import { tempDirectory } from '../support/temp.ts'

const L = 'main' as LedgerName

function send(destination: string, amount: bigint): Order {
  return {
    type: 'CREATE_TRANSACTION',
    ledger: L,
    postings: [{ source: 'world' as AccountAddress, destination: destination as AccountAddress, amount, asset: 'USD/2' as Asset }],
    metadata: { n: String(amount) },
    accountMetadata: {},
    force: false,
  } as Order
}

test('a bulk of several planning slices is logged as the bytes of its proposal packed in one go, and applied alike', async () => {
  const tmp = tempDirectory()
  const node = await LedgerNode.open({ dataDirectory: tmp.directory, sync: false })
  const appended: { payload: Buffer; proposal: Proposal | undefined }[] = []
  const append = node.append.bind(node)
  node.append = (payload: Buffer, proposal?: Proposal): number => {
    appended.push({ payload, proposal })
    return append(payload, proposal)
  }
  try {
    await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger: L, bucket: '_default', metadata: {}, features: {} } }], { atomic: false, continueOnFailure: false })
    const size = 2 * planSliceOrdersDefault + 7
    // Some accounts repeat, so coverage positions are shared between slices.
    const results = await node.admission.submit(
      Array.from({ length: size }, (_, i) => ({ order: send(`users:${i % 100}`, BigInt(i + 1)), ...(i % 3 === 0 ? { idempotencyKey: `ik-${i}`, requestHash: `h${i}` } : {}) })),
      { atomic: false, continueOnFailure: false },
    )
    assert.equal(results.length, size)
    assert.ok(results.every((result) => result.status === 'applied'))
    const bulk = appended.at(-1)
    assert.ok(bulk?.proposal !== undefined)
    assert.equal(bulk.proposal.orders.length, size)
    assert.ok(bulk.payload.equals(encodeProposal(bulk.proposal)), 'the logged bytes are the proposal packed in one go')
    assert.ok(encodeProposal(decodeProposal(bulk.payload)).equals(bulk.payload))
  } finally {
    await node.close()
    tmp.remove()
  }
})
