import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LedgerNode } from '../../src/server/index.ts'
import type { LedgerNodeOptions } from '../../src/server/index.ts'
import { SubmitSequence } from '../../src/admission/index.ts'
import type { SubmitOptions } from '../../src/admission/index.ts'
import type { ImportTarget } from '../../src/check/index.ts'
import { exportLogLines, importLogs } from '../../src/check/index.ts'
import type { AccountAddress, Json, LedgerName } from '../../src/domain/index.ts'
import { TallyError, parseJson } from '../../src/domain/index.ts'
import type { Order, ProposedOrder } from '../../src/orders/index.ts'

type SequencedSubmit = (orders: readonly ProposedOrder[], options: SubmitOptions, previous: Promise<boolean>) => Promise<readonly OrderResult[]>
import type { OrderResult, ProposalResult } from '../../src/fsm/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { MAIN, assertCheckClean, transfer } from '../support/ledger.ts'

/**
 * `importLogs` keeps several proposals in flight in one `SubmitSequence`
 * (src/check/logs-import.ts): the imported ledger must log exactly the
 * stream's logs, in order, with their hashes, whatever goes stale or is
 * refused on the way, and a failure must leave exactly the groups before it.
 */

interface Opened {
  readonly node: LedgerNode
  readonly directory: string
  close(): Promise<void>
  remove(): void
}

async function open(options: Partial<LedgerNodeOptions> = {}): Promise<Opened> {
  const temp = tempDirectory('tally-import-pipeline-')
  let t = Date.UTC(2026, 0, 1)
  const node = await LedgerNode.open({ dataDirectory: temp.directory, clusterId: 'import-pipeline', sync: false, now: () => (t += 1), ...options })
  let closed = false
  return {
    node,
    directory: temp.directory,
    async close() {
      if (!closed) await node.close()
      closed = true
    },
    remove() {
      temp.remove()
    },
  }
}

const write = (node: LedgerNode, orders: readonly Order[]): Promise<readonly OrderResult[]> =>
  node.admission.submit(
    orders.map((order) => ({ order })),
    { atomic: false, continueOnFailure: true },
  )

/**
 * A ledger whose logs group variously: bulks of one date (several logs per
 * group), single writes (a date each), metadata on a transaction created by
 * the group just before, account metadata set and deleted, and reverts
 * (which wait for everything before them).
 */
async function source(): Promise<{ opened: Opened; exported: string }> {
  const opened = await open()
  const { node } = opened
  await write(node, [{ type: 'CREATE_LEDGER', ledger: MAIN, bucket: '_default', metadata: {}, features: {} }])
  let transactions = 0n
  for (let round = 0; round < 12; round++) {
    const bulk = Array.from({ length: 1 + (round % 5) }, (_, i) => transfer('world', `users:${(round * 7 + i) % 9}`, BigInt(1 + round + i)))
    await write(node, bulk)
    transactions += BigInt(bulk.length)
    await write(node, [{ type: 'SAVE_TRANSACTION_METADATA', ledger: MAIN, id: transactions - 1n, metadata: { round: String(round) } }])
    await write(node, [{ type: 'SAVE_ACCOUNT_METADATA', ledger: MAIN, address: `users:${round % 9}` as AccountAddress, metadata: { tier: String(round % 3) } }])
    if (round % 4 === 1) await write(node, [{ type: 'DELETE_ACCOUNT_METADATA', ledger: MAIN, address: `users:${round % 9}` as AccountAddress, key: 'tier' }])
    if (round % 3 === 2) {
      await write(node, [{ type: 'REVERT_TRANSACTION', ledger: MAIN, id: transactions - 1n - BigInt(round % 2), force: true, atEffectiveDate: false, metadata: {} }])
      transactions++
    }
  }
  return { opened, exported: await exportText(node) }
}

async function exportText(node: LedgerNode): Promise<string> {
  let text = ''
  for await (const line of exportLogLines(node.store, MAIN)) text += line
  return text
}

function stream(text: string): AsyncIterable<Json> {
  return (async function* () {
    for (const line of text.split('\n')) if (line !== '') yield parseJson(line)
  })()
}

/**
 * The node's write pipeline, seen through the import: counts the submits in
 * flight at once, and refuses the chosen ones (by their order of arrival) the
 * way admission refuses before logging.
 */
function observed(node: LedgerNode, refuse: (submit: number) => TallyError | undefined): { target: ImportTarget; inFlightMax: () => number } {
  let submits = 0
  let inFlight = 0
  let inFlightMax = 0
  const target: ImportTarget = {
    store: node.store,
    admission: {
      submit: (orders, options) => node.admission.submit(orders, options),
      sequence() {
        // The sequence's own step (what `Admission.sequence` wires), refusing some submits before they are logged.
        const admission = node.admission as unknown as { submitAfter: SequencedSubmit }
        return new SubmitSequence(async (orders, options, previous) => {
          const refusal = refuse(submits++)
          inFlight++
          inFlightMax = Math.max(inFlightMax, inFlight)
          try {
            if (refusal !== undefined) {
              // Refused once its turn has come (the submit before it applied), as admission refuses at stamping.
              await previous
              throw refusal
            }
            // A slower planning: the importer reads on while this group is in flight.
            for (let turn = 0; turn < 3; turn++) await new Promise<void>((resolve) => setImmediate(resolve))
            return await admission.submitAfter.call(node.admission, orders, options, previous)
          } finally {
            inFlight--
          }
        })
      },
    },
  }
  return { target, inFlightMax: () => inFlightMax }
}

test('a pipelined import logs the stream exactly, through stale proposals (a tiny cache) and refusals it proposes again', async () => {
  const { opened: from, exported } = await source()
  // Rotations the plans cannot foresee (a generation's byte budget) make proposals stale: applied
  // once durable, proposals stay planned but not applied while the WAL writes.
  const to = await open({ cacheRotationThreshold: 3, cacheGenerationBytesMax: 2048, applyWhenDurable: true })
  try {
    const unavailable = new TallyError({ code: 'CACHE_HORIZON_EXCEEDED', kind: 'unavailable', message: 'retry' })
    let refused = 0
    const { target, inFlightMax } = observed(to.node, (submit) => (submit % 7 === 3 ? (refused++, unavailable) : undefined))
    // Stale proposals counted where admission learns of them (its log's results).
    const sequencer = (to.node.admission as unknown as { options: { sequencer: { result(index: number): Promise<ProposalResult> } } }).options.sequencer
    const result = sequencer.result.bind(sequencer)
    let stale = 0
    sequencer.result = async (index) => {
      const settled = await result(index)
      if (settled.outcome === 'stale') stale++
      return settled
    }
    // Another ledger's writers meanwhile: their proposals fill the cache's generations between the import's plans and applies.
    const OTHER = 'other' as LedgerName
    await write(to.node, [{ type: 'CREATE_LEDGER', ledger: OTHER, bucket: '_default', metadata: {}, features: {} }])
    let importing = true
    const writers = Array.from({ length: 3 }, async (_, w) => {
      for (let i = 0; importing; i++) await write(to.node, [transfer('world', `others:${w}:${i % 50}`, 1n, { ledger: OTHER })])
    })
    const progress: bigint[] = []
    const summary = await importLogs(target, MAIN, stream(exported), { groupOrdersMax: 2, onProgress: ({ lastLogId }) => void progress.push(lastLogId ?? -1n) }).finally(() => (importing = false))
    await Promise.all(writers)
    const count = exported.split('\n').length - 1
    assert.equal(summary.logs, count)
    const groups = progress.length
    assert.ok(refused > 0)
    assert.ok(stale > 0, `${stale} stale proposals for ${groups} groups`)
    assert.ok(inFlightMax() > 1, `the import kept ${inFlightMax()} proposal(s) in flight at most`)
    assert.deepEqual(progress, [...progress].sort((a, b) => (a < b ? -1 : 1)), 'progress in log order')
    assert.equal(progress.at(-1), BigInt(count - 1))
    assert.equal(await exportText(to.node), exported, 'same logs, ids and hashes, in order')
    await to.close()
    await assertCheckClean(to.directory)
  } finally {
    await from.close()
    await to.close()
    from.remove()
    to.remove()
  }
})

test('a pipelined import that fails at a group leaves exactly the groups before it, verified, and nothing after', async () => {
  const { opened: from, exported } = await source()
  const lines = exported.split('\n').filter((line) => line !== '')
  try {
    for (const failing of [0, 3, 8]) {
      const to = await open()
      try {
        const broken = new TallyError({ code: 'INTERNAL', kind: 'internal', message: `refused submit ${failing}` })
        // Submit 0 is the ledger's creation (not in the sequence): sequence submit k is the k-th group.
        const { target } = observed(to.node, (submit) => (submit === failing ? broken : undefined))
        const logged: bigint[] = []
        await assert.rejects(
          importLogs(target, MAIN, stream(exported), { groupOrdersMax: 2, onProgress: ({ lastLogId }) => void logged.push(lastLogId ?? -1n) }),
          (error: unknown) => error === broken,
        )
        const copy = await exportText(to.node)
        const held = copy.split('\n').filter((line) => line !== '')
        assert.deepEqual(held, lines.slice(0, held.length), 'a prefix of the stream, hashes included')
        assert.equal(BigInt(held.length - 1), logged.at(-1) ?? -1n, 'every log held was verified')
        if (failing === 0) assert.equal(held.length, 0)
        await to.close()
        await assertCheckClean(to.directory)
      } finally {
        await to.close()
        to.remove()
      }
    }
  } finally {
    await from.close()
    from.remove()
  }
})

test('an import whose stream fails with groups in flight returns only once they settled: the ledger then holds a verified prefix that no longer moves', async () => {
  const { opened: from, exported } = await source()
  const lines = exported.split('\n').filter((line) => line !== '')
  const to = await open()
  try {
    const failure = new Error('the stream broke')
    async function* breaking(): AsyncGenerator<Json> {
      for (const [i, line] of lines.entries()) {
        if (i === 30) throw failure
        yield parseJson(line)
      }
    }
    const { target, inFlightMax } = observed(to.node, () => undefined)
    await assert.rejects(importLogs(target, MAIN, breaking(), { groupOrdersMax: 2 }), (error: unknown) => error === failure)
    assert.ok(inFlightMax() > 1)
    const held = await exportText(to.node)
    for (let turn = 0; turn < 50; turn++) await new Promise<void>((resolve) => setImmediate(resolve))
    assert.equal(await exportText(to.node), held, 'nothing was applied after the import returned')
    const heldLines = held.split('\n').filter((line) => line !== '')
    assert.ok(heldLines.length > 0 && heldLines.length <= 30)
    assert.deepEqual(heldLines, lines.slice(0, heldLines.length))
  } finally {
    await from.close()
    await to.close()
    from.remove()
    to.remove()
  }
})
