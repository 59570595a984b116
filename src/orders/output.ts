import type { AggregatedVolumes, Json, TransactionRecord, Volumes } from '../domain/index.ts'
import { canonicalMetadata, invariant, isJsonObject, keyedChild, ownEntries, volumesWithBalance } from '../domain/index.ts'

export type { AggregatedVolumes }

/** What an order returns; stored verbatim for idempotent replays. */
export type OrderOutput =
  | { readonly type: 'TRANSACTION'; readonly transaction: Json; readonly logId: bigint }
  | { readonly type: 'METADATA'; readonly logId: bigint | null }
  | { readonly type: 'LEDGER' }
  | { readonly type: 'SCHEMA'; readonly logId: bigint }
  /** An exporter or pipeline configured (no v2 log). */
  | { readonly type: 'OUTPUTS' }

/**
 * The v2 wire shape of a transaction (`V2Transaction`); commit volumes are
 * shown when asked for (write responses, `expand=volumes`).
 */
export function transactionView(record: TransactionRecord, options: { volumes: boolean } = { volumes: false }): Json {
  const view: Record<string, Json> = {
    id: record.id,
    postings: record.postings.map((p) => ({ source: p.source, destination: p.destination, amount: p.amount, asset: p.asset })),
    timestamp: record.timestamp,
    insertedAt: record.insertedAt,
    updatedAt: record.updatedAt,
    metadata: canonicalMetadata(ownEntries(record.metadata)),
    reverted: record.reverted,
  }
  if (record.reference !== undefined) view.reference = record.reference
  if (record.revertedAt !== undefined) view.revertedAt = record.revertedAt
  if (record.template !== undefined) view.template = record.template
  if (options.volumes && record.preCommitVolumes !== undefined && record.postCommitVolumes !== undefined) {
    view.preCommitVolumes = record.preCommitVolumes
    view.postCommitVolumes = record.postCommitVolumes
  }
  return view
}

/**
 * `transactionView(record, { volumes: true })` from `view`, the record's
 * view without volumes already built (a new transaction's log carries that
 * one): the same fields in the same order, the view's own values shared.
 */
export function withCommitVolumes(view: Json, record: TransactionRecord): Json {
  if (record.preCommitVolumes === undefined || record.postCommitVolumes === undefined) return view
  invariant(isJsonObject(view) && view.id === record.id, 'the view is the record\'s')
  return { ...view, preCommitVolumes: record.preCommitVolumes, postCommitVolumes: record.postCommitVolumes }
}

export function addAggregated(target: AggregatedVolumes, account: string, asset: string, volumes: Volumes): void {
  keyedChild(target, account)[asset] = volumesWithBalance(volumes)
}
