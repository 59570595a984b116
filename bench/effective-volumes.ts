/**
 * What effective-volume reads cost on one account's history: `transactions`
 * transfers from `world` to one user (every one of them on the user's and on
 * world's index), then, `rounds` times, the user's effective volumes at a
 * point in time, and the pre/post commit effective volumes of a transaction
 * in the middle of the history and of the last one.
 *
 *   node --import tsx bench/effective-volumes.ts [--transactions 5000] [--rounds 20]
 *
 * Runs on any build exporting `effectiveVolumes` and
 * `transactionEffectiveVolumes` from `src/api/history.ts`, so one file
 * measures a layout change before and after (copy it into the older tree).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { LedgerNode } from '../src/server/index.ts'
import { effectiveVolumes, transactionEffectiveVolumes } from '../src/api/history.ts'
import type { AccountAddress, Asset, LedgerName, TransactionRecord } from '../src/domain/index.ts'
import type { ProposedOrder } from '../src/orders/index.ts'
import { attributeRowKey } from '../src/store/index.ts'
import { decodeRowValue, transactionKey } from '../src/domain/index.ts'

const { values } = parseArgs({ options: { transactions: { type: 'string' }, rounds: { type: 'string' } } })
const transactions = Number(values.transactions ?? 5000)
const rounds = Number(values.rounds ?? 20)
const perProposal = 500

const directory = mkdtempSync(path.join(os.tmpdir(), 'tally-effective-'))
const ledger = 'bench' as LedgerName
const user = 'users:1' as AccountAddress
try {
  const node = await LedgerNode.open({ dataDirectory: directory, sync: false })
  const submit = (orders: ProposedOrder[]) => node.admission.submit(orders, { atomic: false, continueOnFailure: true })
  await submit([{ order: { type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: {}, features: {} } }])
  for (let from = 0; from < transactions; from += perProposal) {
    await submit(
      Array.from({ length: Math.min(perProposal, transactions - from) }, (_, i) => ({
        order: {
          type: 'CREATE_TRANSACTION' as const,
          ledger,
          postings: [{ source: 'world' as AccountAddress, destination: user, amount: BigInt(1 + i), asset: 'USD/2' as Asset }],
          metadata: {},
          accountMetadata: {},
          force: false,
          // Effective dates spread over a year, not in insertion order.
          timestamp: new Date(Date.UTC(2026, 0, 1) + (((from + i) * 7919) % 365) * 86_400_000).toISOString(),
        },
      })),
    )
  }
  const record = async (id: bigint): Promise<TransactionRecord> => {
    const row = await node.store.get(attributeRowKey(transactionKey(ledger, id)))
    return decodeRowValue('t', row as Buffer) as TransactionRecord
  }
  const middle = await record(BigInt(Math.floor(transactions / 2)))
  const last = await record(BigInt(transactions - 1))
  const time = async (what: () => Promise<unknown>): Promise<number> => {
    let best = Infinity
    for (let round = 0; round < rounds; round++) {
      const started = process.hrtime.bigint()
      await what()
      best = Math.min(best, Number(process.hrtime.bigint() - started) / 1e6)
    }
    return best
  }
  const pit = await time(() => effectiveVolumes(node.store, ledger, user, '2026-07-01T00:00:00Z'))
  const all = await time(() => effectiveVolumes(node.store, ledger, user))
  const ofMiddle = await time(() => transactionEffectiveVolumes(node.store, ledger, middle))
  const ofLast = await time(() => transactionEffectiveVolumes(node.store, ledger, last))
  await node.close()
  console.log(`${transactions} transactions world → ${user}; best of ${rounds}, ms:`)
  console.log(`| effective volumes at pit | effective volumes, all | pre/post effective, middle tx | pre/post effective, last tx |`)
  console.log(`| ${pit.toFixed(2)} | ${all.toFixed(2)} | ${ofMiddle.toFixed(2)} | ${ofLast.toFixed(2)} |`)
} finally {
  rmSync(directory, { recursive: true, force: true })
}
