import type { AggregatedVolumes, Json, TransactionRecord } from '../domain/index.ts'
import { canonicalMetadata, ownEntries } from '../domain/index.ts'

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
  return viewOf(record, postingsView(record), canonicalMetadata(ownEntries(record.metadata)), options.volumes)
}

/**
 * A new transaction's two views: the log's (`transactionView(record)`) and
 * the answer's (`transactionView(record, { volumes: true })`), built from
 * one copy of its postings and metadata, which they share.
 */
export function transactionViews(record: TransactionRecord): { readonly logged: Json; readonly answered: Json } {
  const postings = postingsView(record)
  const metadata = canonicalMetadata(ownEntries(record.metadata))
  return { logged: viewOf(record, postings, metadata, false), answered: viewOf(record, postings, metadata, true) }
}

function postingsView(record: TransactionRecord): Json {
  return record.postings.map((p) => ({ source: p.source, destination: p.destination, amount: p.amount, asset: p.asset }))
}

/** The view's fields, always in this order (printers and hashes depend on it). */
function viewOf(record: TransactionRecord, postings: Json, metadata: Json, volumes: boolean): Json {
  const view: Record<string, Json> = {
    id: record.id,
    postings,
    timestamp: record.timestamp,
    insertedAt: record.insertedAt,
    updatedAt: record.updatedAt,
    metadata,
    reverted: record.reverted,
  }
  if (record.reference !== undefined) view.reference = record.reference
  if (record.revertedAt !== undefined) view.revertedAt = record.revertedAt
  if (record.template !== undefined) view.template = record.template
  if (volumes && record.preCommitVolumes !== undefined && record.postCommitVolumes !== undefined) {
    // Listed volumes (a write's own) stay a list: every generic printer and packer takes them as their map.
    view.preCommitVolumes = record.preCommitVolumes as Json
    view.postCommitVolumes = record.postCommitVolumes as Json
  }
  return view
}
