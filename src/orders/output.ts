import type { Json, TransactionRecord, Volumes } from '../domain/index.ts'
import { volumesWithBalance } from '../domain/index.ts'

/** Per account, per asset volumes as v2 prints them (`V2AggregatedVolumes`). */
export type AggregatedVolumes = Record<string, Record<string, { input: bigint; output: bigint; balance: bigint }>>

/** What an order returns; stored verbatim for idempotent replays. */
export type OrderOutput =
  | { readonly type: 'TRANSACTION'; readonly transaction: Json; readonly logId: bigint }
  | { readonly type: 'METADATA'; readonly logId: bigint | null }
  | { readonly type: 'LEDGER' }

/** The v2 wire shape of a transaction (`V2Transaction`). */
export function transactionView(
  record: TransactionRecord,
  volumes?: { pre: AggregatedVolumes; post: AggregatedVolumes },
): Json {
  const view: Record<string, Json> = {
    id: record.id,
    postings: record.postings.map((p) => ({ source: p.source, destination: p.destination, amount: p.amount, asset: p.asset })),
    timestamp: record.timestamp,
    insertedAt: record.insertedAt,
    updatedAt: record.updatedAt,
    metadata: { ...record.metadata },
    reverted: record.reverted,
  }
  if (record.reference !== undefined) view.reference = record.reference
  if (record.revertedAt !== undefined) view.revertedAt = record.revertedAt
  if (volumes !== undefined) {
    view.preCommitVolumes = volumes.pre
    view.postCommitVolumes = volumes.post
  }
  return view
}

export function addAggregated(target: AggregatedVolumes, account: string, asset: string, volumes: Volumes): void {
  const byAsset = (target[account] ??= {})
  byAsset[asset] = volumesWithBalance(volumes)
}
