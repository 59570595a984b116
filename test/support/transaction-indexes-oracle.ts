/**
 * `writeTransactionIndexes` (`src/fsm/indexes.ts`) as it was before a
 * transaction's few postings were gathered in one scratch list of quads,
 * frozen as the oracle of `test/fsm/transaction-indexes.property.test.ts`:
 * the same rows, byte for byte, in the same order.
 */
import { invariant } from '../../src/domain/index.ts'
import type { LedgerLog } from '../../src/orders/index.ts'
import type { AssetMoves } from '../../src/store/layout.ts'
import { accountTransactionKey, encodeAccountMovesRow, schemaIndexKey, transactionByTimestampKey } from '../../src/store/layout.ts'
import type { WriteBatch } from '../../src/fsm/write-batch.ts'

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
 * the transaction by effective date. Pure: same log, same rows. Each row's key
 * holds the log's transaction id (or log id): written once (`putNew`).
 */
export function writeTransactionIndexesOracle(ledger: string, log: LedgerLog, batch: WriteBatch): void {
  if (log.type === 'INSERTED_SCHEMA') return writeSchemaIndex(ledger, log, batch)
  if (log.type !== 'NEW_TRANSACTION' && log.type !== 'REVERTED_TRANSACTION') return
  const transaction = (log.data as unknown as { transaction: LoggedTransaction }).transaction
  invariant(typeof transaction.id === 'bigint' && transaction.postings.length > 0, 'logged transaction with id and postings')
  // Moves per account, accounts in first-seen order, each account's assets in a short list (a transfer
  // moves one asset per account): a flat list of (account, moves) scanned in place for a few
  // postings; past them maps find the account and the pair, so the work stays linear.
  const postings = transaction.postings
  if (postings.length > PAIR_SCAN_POSTINGS_MAX) {
    const byAccount = new Map<string, AssetMoves[]>()
    const pairs = new Map<string, AssetMoves>()
    for (const posting of postings) {
      pairMoves(byAccount, pairs, posting.source, posting.asset).output += posting.amount
      pairMoves(byAccount, pairs, posting.destination, posting.asset).input += posting.amount
    }
    for (const [account, moves] of byAccount) {
      batch.putNew(accountTransactionKey(ledger, account, transaction.id), encodeAccountMovesRow(transaction.insertedAt, transaction.timestamp, moves))
    }
  } else {
    // [account, its moves, account, its moves, …]
    const byAccount: (string | AssetMoves[])[] = []
    for (const posting of postings) {
      scannedMoves(byAccount, posting.source, posting.asset).output += posting.amount
      scannedMoves(byAccount, posting.destination, posting.asset).input += posting.amount
    }
    for (let at = 0; at < byAccount.length; at += 2) {
      const account = byAccount[at] as string
      const moves = byAccount[at + 1] as AssetMoves[]
      batch.putNew(accountTransactionKey(ledger, account, transaction.id), encodeAccountMovesRow(transaction.insertedAt, transaction.timestamp, moves))
    }
  }
  batch.putNew(transactionByTimestampKey(ledger, transaction.timestamp, transaction.id), EMPTY)
}

const EMPTY = Buffer.alloc(0)

const PAIR_SCAN_POSTINGS_MAX = 16

/** The (account, asset) pair's moves, found by comparing in place (`byAccount` alternates accounts and their moves). */
function scannedMoves(byAccount: (string | AssetMoves[])[], account: string, asset: string): AssetMoves {
  let moves: AssetMoves[] | undefined
  for (let at = 0; at < byAccount.length; at += 2) {
    if (byAccount[at] === account) {
      moves = byAccount[at + 1] as AssetMoves[]
      break
    }
  }
  if (moves === undefined) byAccount.push(account, (moves = []))
  for (const moved of moves) if (moved.asset === asset) return moved
  const moved: AssetMoves = { asset, input: 0n, output: 0n }
  moves.push(moved)
  return moved
}

/** The pair's moves through maps (many postings). */
function pairMoves(byAccount: Map<string, AssetMoves[]>, pairs: Map<string, AssetMoves>, account: string, asset: string): AssetMoves {
  const pair = `${account}\u0000${asset}`
  const found = pairs.get(pair)
  if (found !== undefined) return found
  let moves = byAccount.get(account)
  if (moves === undefined) byAccount.set(account, (moves = []))
  const moved: AssetMoves = { asset, input: 0n, output: 0n }
  moves.push(moved)
  pairs.set(pair, moved)
  return moved
}

/** A schema in insertion order (its log id), naming its version: schemas list by creation. */
function writeSchemaIndex(ledger: string, log: LedgerLog, batch: WriteBatch): void {
  const version = (log.data as unknown as { schema: { version: unknown } }).schema.version
  invariant(typeof version === 'string', 'an INSERTED_SCHEMA log names the version')
  batch.putNew(schemaIndexKey(ledger, log.id), Buffer.from(version, 'utf8'))
}
