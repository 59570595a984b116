/**
 * What the read views' answer cache costs the write path (docs/reads.md,
 * "Answers kept between writes"): `RowGenerations.rowsWritten` over the rows
 * a bulk transfer writes, in process.
 *
 *   node --import tsx bench/answer-cache-writes.ts [--rounds 5] [--batches 2000]
 *
 * A batch is 100 transfers `users:i → users:i+500`, seven rows each as the
 * FSM writes them (two volume rows, two by-account index rows, the
 * transaction row, its by-timestamp row, its log row). Prints process CPU
 * per transfer and per row for each round.
 */
import { parseArgs } from 'node:util'
import type { AccountAddress, Asset, LedgerName, TransactionId } from '../src/domain/index.ts'
import { accountKey, transactionKey, volumesKey } from '../src/domain/index.ts'
import { RowGenerations, accountTransactionKey, attributeRowKey, logRowKey, transactionByTimestampKey } from '../src/store/index.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, batches: { type: 'string', default: '2000' } } })
const ledger = 'bench' as LedgerName
const asset = 'USD/2' as Asset
const transfers = 100
const keys: Buffer[] = []
for (let i = 0; i < transfers; i++) {
  const source = `users:${i}` as AccountAddress
  const destination = `users:${i + 500}` as AccountAddress
  const id = BigInt(i)
  keys.push(
    attributeRowKey(volumesKey(ledger, source, asset)),
    attributeRowKey(volumesKey(ledger, destination, asset)),
    accountTransactionKey(ledger, source, id),
    accountTransactionKey(ledger, destination, id),
    attributeRowKey(transactionKey(ledger, id as TransactionId)),
    transactionByTimestampKey(ledger, '2026-12-07T09:00:00.000Z', id),
    logRowKey(ledger, id),
  )
}
// The owner of an account row too, as a first use writes it.
keys.push(attributeRowKey(accountKey(ledger, 'users:0' as AccountAddress)))
const rows = keys.map((key) => ({ key, value: Buffer.of(1) }))
const generations = new RowGenerations()
const batches = Number(values.batches)
for (let round = 1; round <= Number(values.rounds); round++) {
  const start = process.cpuUsage()
  for (let batch = 0; batch < batches; batch++) generations.rowsWritten(rows)
  const used = process.cpuUsage(start)
  const nanoseconds = (used.user + used.system) * 1000
  process.stdout.write(`round ${round}: ${(nanoseconds / (batches * transfers)).toFixed(0)} ns per transfer, ${(nanoseconds / (batches * rows.length)).toFixed(0)} ns per row\n`)
}
