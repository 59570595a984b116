import type { Json, LedgerName, Posting, TransactionRecord, VolumesMap } from '../domain/index.ts'
import { emptyKeyed, invariant, keyedChild, ownEntries } from '../domain/index.ts'
import type { BatchedRangeReader, StoreReader } from '../store/index.ts'
import { accountTransactionsPrefix, decodeIndexRow, fixedWidthInstant, prefixEnd, rangeBatchesOf, scanBatchBytes } from '../store/index.ts'

/** Volumes per asset: `{asset: {input, output}}`, summed from index rows. */
export type VolumesByAsset = Map<string, { input: bigint; output: bigint }>

function add(target: VolumesByAsset, asset: string, input: bigint, output: bigint): void {
  const entry = target.get(asset)
  if (entry === undefined) target.set(asset, { input, output })
  else target.set(asset, { input: entry.input + input, output: entry.output + output })
}

export function volumesJson(volumes: VolumesByAsset): Json {
  const result = emptyKeyed<Json>()
  for (const asset of [...volumes.keys()].sort()) {
    const { input, output } = volumes.get(asset) as { input: bigint; output: bigint }
    result[asset] = { input, output, balance: input - output }
  }
  return result
}

/** One by-account index row: a transaction's moves on the account, with its dates. */
interface AccountMoves {
  readonly insertedAt: string
  readonly timestamp: string
  readonly volumes: Record<string, { input: bigint; output: bigint }>
}

/**
 * The account's by-account index rows in insertion (id) order, each with its
 * transaction id, a batch at a time (no promise per row). Read on the thread
 * pool, but the first 64 rows at once on the JavaScript thread: most accounts
 * hold a few rows, and `volumesInsertedBy` stops at its date; the batches
 * double for an account with a long history.
 */
async function* accountMoves(store: HistoryReader, ledger: LedgerName, account: string): AsyncGenerator<{ id: bigint; row: AccountMoves }[]> {
  const prefix = accountTransactionsPrefix(ledger, account)
  const batches = rangeBatchesOf(store, { gte: prefix, lt: prefixEnd(prefix), batchBytes: scanBatchBytes, firstBatchRows: accountMovesFirstBatchRows, readAhead: false })
  for await (const rows of batches) {
    yield rows.map(([key, value]) => {
      invariant(key.length === prefix.length + 8, 'a by-account index key ends with the transaction id')
      return { id: key.readBigUInt64BE(prefix.length), row: decodeIndexRow(value) as unknown as AccountMoves }
    })
  }
}

const accountMovesFirstBatchRows = 64

/** What the history reads: ranges, in batches where the store reads them so. */
export type HistoryReader = StoreReader & Partial<BatchedRangeReader>

/**
 * Effective volumes of an account: the moves of every transaction whose
 * timestamp is at or before `pit` (all of them without one), whatever order
 * they were inserted in. A sum over the account's by-account index rows,
 * filtered by their effective date (a sum needs no order).
 */
export async function effectiveVolumes(store: HistoryReader, ledger: LedgerName, account: string, pit?: string, from?: string): Promise<VolumesByAsset> {
  const until = pit === undefined ? undefined : fixedWidthInstant(pit)
  const since = from === undefined ? undefined : fixedWidthInstant(from)
  const volumes: VolumesByAsset = new Map()
  for await (const moves of accountMoves(store, ledger, account)) {
    for (const { row } of moves) {
      if (until !== undefined || since !== undefined) {
        const timestamp = fixedWidthInstant(row.timestamp)
        if (until !== undefined && timestamp > until) continue
        if (since !== undefined && timestamp < since) continue
      }
      for (const [asset, moved] of ownEntries(row.volumes)) add(volumes, asset, moved.input, moved.output)
    }
  }
  return volumes
}

/** Volumes of an account as inserted up to `pit` (insertion date), from the by-account index. */
export async function volumesInsertedBy(store: HistoryReader, ledger: LedgerName, account: string, pit: string | undefined, from?: string): Promise<VolumesByAsset> {
  const volumes: VolumesByAsset = new Map()
  for await (const moves of accountMoves(store, ledger, account)) {
    for (const { row } of moves) {
      const insertedAt = fixedWidthInstant(row.insertedAt)
      if (pit !== undefined && insertedAt > fixedWidthInstant(pit)) return volumes // insertion order: nothing later qualifies
      if (from !== undefined && insertedAt < fixedWidthInstant(from)) continue
      for (const [asset, moved] of ownEntries(row.volumes)) add(volumes, asset, moved.input, moved.output)
    }
  }
  return volumes
}

/**
 * Pre/post commit *effective* volumes of a transaction: for each touched
 * (account, asset), the moves of transactions ordered before it by
 * (timestamp, id), then the same plus its own. They change when a
 * transaction is backdated before it, so they are computed on read: one scan
 * of each touched account's by-account rows, keeping those ordered before it.
 */
export async function transactionEffectiveVolumes(
  store: HistoryReader,
  ledger: LedgerName,
  transaction: TransactionRecord,
): Promise<{ pre: VolumesMap; post: VolumesMap }> {
  const own = new Map<string, VolumesByAsset>()
  for (const posting of transaction.postings) addPosting(own, posting)
  const at = fixedWidthInstant(transaction.timestamp)
  const pre: VolumesMap = emptyKeyed()
  const post: VolumesMap = emptyKeyed()
  for (const [account, assets] of own) {
    const before: VolumesByAsset = new Map()
    for await (const moves of accountMoves(store, ledger, account)) {
      for (const { id, row } of moves) {
        const timestamp = fixedWidthInstant(row.timestamp)
        if (timestamp > at || (timestamp === at && id >= transaction.id)) continue
        for (const [asset, moved] of ownEntries(row.volumes)) if (assets.has(asset)) add(before, asset, moved.input, moved.output)
      }
    }
    for (const [asset, moved] of assets) {
      const { input, output } = before.get(asset) ?? { input: 0n, output: 0n }
      keyedChild(pre, account)[asset] = { input, output, balance: input - output }
      const after = { input: input + moved.input, output: output + moved.output }
      keyedChild(post, account)[asset] = { ...after, balance: after.input - after.output }
    }
  }
  return { pre, post }
}

function addPosting(target: Map<string, VolumesByAsset>, posting: Posting): void {
  for (const [account, input, output] of [
    [posting.source, 0n, posting.amount],
    [posting.destination, posting.amount, 0n],
  ] as const) {
    let byAsset = target.get(account)
    if (byAsset === undefined) target.set(account, (byAsset = new Map()))
    add(byAsset, posting.asset, input, output)
  }
}
