import type { Posting } from './posting.ts'
import type { Metadata } from './metadata.ts'
import type { AggregatedVolumes } from './volumes.ts'

/** Per-ledger sequence number of a transaction, from 0. */
export type TransactionId = bigint

/** The stored record of a transaction: the ledger's own view of it. */
export interface TransactionRecord {
  readonly id: TransactionId
  readonly postings: readonly Posting[]
  readonly timestamp: string
  readonly insertedAt: string
  readonly updatedAt: string
  readonly reference?: string
  readonly metadata: Metadata
  readonly reverted: boolean
  readonly revertedAt?: string
  /** The schema's transaction template it was created from (`script.template`). */
  readonly template?: string
  /** Volumes of every touched (account, asset) just before and after it, in insertion order. */
  readonly preCommitVolumes?: AggregatedVolumes
  readonly postCommitVolumes?: AggregatedVolumes
}

/** Metadata key Formance v2 sets on a revert transaction. */
export const REVERTS_METADATA_KEY = 'com.formance.spec/state/reverts'

export const referenceLengthMax = 512
