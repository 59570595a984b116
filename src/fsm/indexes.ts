import { invariant } from '../domain/index.ts'
import type { LedgerLog } from '../orders/index.ts'
import type { AssetMoves } from '../store/layout.ts'
import { accountTransactionKey, encodeAccountMoveRow, encodeAccountMovesRow, schemaIndexKey, transactionByTimestampKey } from '../store/layout.ts'
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
 * the transaction by effective date. Pure: same log, same rows. Each row's key
 * holds the log's transaction id (or log id): written once (`putNew`).
 */
export function writeTransactionIndexes(ledger: string, log: LedgerLog, batch: WriteBatch): void {
  if (log.type === 'INSERTED_SCHEMA') return writeSchemaIndex(ledger, log, batch)
  if (log.type !== 'NEW_TRANSACTION' && log.type !== 'REVERTED_TRANSACTION') return
  const transaction = (log.data as unknown as { transaction: LoggedTransaction }).transaction
  invariant(typeof transaction.id === 'bigint' && transaction.postings.length > 0, 'logged transaction with id and postings')
  // Moves per account, accounts in first-seen order, each account's assets sorted in its row. A few
  // postings: (account, asset, input, output) quads in one scratch list, found by comparing in place,
  // an account of one asset written from its quad (no object or list per account). Past them maps find
  // the account and the pair, so the work stays linear.
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
    const quads = quadScratch
    quads.length = 0 // a throw inside an earlier call may have left its quads
    for (const posting of postings) {
      addMove(quads, posting.source, posting.asset, OUTPUT, posting.amount)
      addMove(quads, posting.destination, posting.asset, INPUT, posting.amount)
    }
    for (let at = 0; at < quads.length; at += QUAD) {
      const account = quads[at] as string
      if (seenBefore(quads, account, at)) continue
      const row = hasAnotherAsset(quads, account, at)
        ? encodeAccountMovesRow(transaction.insertedAt, transaction.timestamp, movesOf(quads, account, at))
        : encodeAccountMoveRow(transaction.insertedAt, transaction.timestamp, quads[at + 1] as string, quads[at + INPUT] as bigint, quads[at + OUTPUT] as bigint)
      batch.putNew(accountTransactionKey(ledger, account, transaction.id), row)
    }
    quads.length = 0 // nothing of this transaction kept alive by the scratch list
  }
  batch.putNew(transactionByTimestampKey(ledger, transaction.timestamp, transaction.id), EMPTY)
}

const EMPTY = Buffer.alloc(0)

const PAIR_SCAN_POSTINGS_MAX = 16

/** The scratch list of `writeTransactionIndexes`: `QUAD` items per (account, asset) pair, pairs in first-seen order. */
const quadScratch: (string | bigint)[] = []
const QUAD = 4
/** Where a quad holds the pair's input and its output (the account at 0, the asset at 1). */
const INPUT = 2
const OUTPUT = 3

/** Adds `amount` to the pair's input or output, the pair found by comparing in place (appended when new). */
function addMove(quads: (string | bigint)[], account: string, asset: string, side: typeof INPUT | typeof OUTPUT, amount: bigint): void {
  for (let at = 0; at < quads.length; at += QUAD) {
    if (quads[at] === account && quads[at + 1] === asset) {
      quads[at + side] = (quads[at + side] as bigint) + amount
      return
    }
  }
  quads.push(account, asset, side === INPUT ? amount : 0n, side === OUTPUT ? amount : 0n)
}

/** Whether a quad before `at` names `account` (its row was written there). */
function seenBefore(quads: readonly (string | bigint)[], account: string, at: number): boolean {
  for (let before = 0; before < at; before += QUAD) if (quads[before] === account) return true
  return false
}

/** Whether a quad after `at` names `account`: the account moves more than one asset. */
function hasAnotherAsset(quads: readonly (string | bigint)[], account: string, at: number): boolean {
  for (let after = at + QUAD; after < quads.length; after += QUAD) if (quads[after] === account) return true
  return false
}

/** The account's moves, from its first quad at `from` on, in first-seen order. */
function movesOf(quads: readonly (string | bigint)[], account: string, from: number): AssetMoves[] {
  const moves: AssetMoves[] = []
  for (let at = from; at < quads.length; at += QUAD) {
    if (quads[at] === account) moves.push({ asset: quads[at + 1] as string, input: quads[at + INPUT] as bigint, output: quads[at + OUTPUT] as bigint })
  }
  return moves
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
