import type { Json } from '../domain/index.ts'
import { invariant } from '../domain/index.ts'
import type { LedgerLog } from '../orders/index.ts'
import { accountTransactionKey, encodeIndexRow, schemaIndexKey, transactionByTimestampKey } from '../store/layout.ts'
import type { WriteBatch } from './write-batch.ts'

interface LoggedTransaction {
  readonly id: bigint
  readonly timestamp: string
  readonly insertedAt: string
  readonly postings: readonly { source: string; destination: string; amount: bigint; asset: string }[]
}

/**
 * Index rows for a transaction, derived from its v2 log (the one place every
 * new transaction is described): one row per account it moves, in insertion
 * order, carrying its moves on every asset and its dates (effective volumes
 * read the same rows, filtered by date: storage schema 3, docs/adr/0010), and
 * the transaction by effective date. Pure: same log, same rows.
 */
export function writeTransactionIndexes(ledger: string, log: LedgerLog, batch: WriteBatch): void {
  if (log.type === 'INSERTED_SCHEMA') return writeSchemaIndex(ledger, log, batch)
  if (log.type !== 'NEW_TRANSACTION' && log.type !== 'REVERTED_TRANSACTION') return
  const transaction = (log.data as unknown as { transaction: LoggedTransaction }).transaction
  invariant(typeof transaction.id === 'bigint' && transaction.postings.length > 0, 'logged transaction with id and postings')
  const deltas = new Map<string, Map<string, { input: bigint; output: bigint }>>()
  const delta = (account: string, asset: string) => {
    let byAsset = deltas.get(account)
    if (byAsset === undefined) deltas.set(account, (byAsset = new Map()))
    let entry = byAsset.get(asset)
    if (entry === undefined) byAsset.set(asset, (entry = { input: 0n, output: 0n }))
    return entry
  }
  for (const posting of transaction.postings) {
    delta(posting.source, posting.asset).output += posting.amount
    delta(posting.destination, posting.asset).input += posting.amount
  }
  for (const [account, byAsset] of deltas) {
    const volumes: Record<string, Json> = {}
    for (const [asset, moved] of byAsset) volumes[asset] = moved
    const row = { insertedAt: transaction.insertedAt, timestamp: transaction.timestamp, volumes }
    batch.put(accountTransactionKey(ledger, account, transaction.id), encodeIndexRow(row))
  }
  batch.put(transactionByTimestampKey(ledger, transaction.timestamp, transaction.id), EMPTY)
}

const EMPTY = Buffer.alloc(0)

/** A schema in insertion order (its log id), naming its version: schemas list by creation. */
function writeSchemaIndex(ledger: string, log: LedgerLog, batch: WriteBatch): void {
  const version = (log.data as unknown as { schema: { version: unknown } }).schema.version
  invariant(typeof version === 'string', 'an INSERTED_SCHEMA log names the version')
  batch.put(schemaIndexKey(ledger, log.id), Buffer.from(version, 'utf8'))
}
