import type {
  AccountAddress,
  Json,
  Keyed,
  LedgerName,
  Metadata,
  Posting,
  TransactionId,
} from '../domain/index.ts'

/**
 * An order is one thing a client asked the ledger to do. Orders are data:
 * they are logged, replayed and hashed into the audit chain as they are
 * (invariant #8), so every field is plain JSON (bigint for integers).
 */
export type Order =
  | CreateLedger
  | CreateTransaction
  | RevertTransaction
  | SaveTransactionMetadata
  | DeleteTransactionMetadata
  | SaveAccountMetadata
  | DeleteAccountMetadata
  | SaveLedgerMetadata
  | DeleteLedgerMetadata
  | InsertSchema
  | PutExporter
  | DeleteExporter
  | PutPipeline
  | DeletePipeline
  | SetPipelineEnabled
  | ResetPipeline
  | SetPipelineCursor

export interface CreateLedger {
  readonly type: 'CREATE_LEDGER'
  readonly ledger: LedgerName
  readonly bucket: string
  readonly metadata: Metadata
  readonly features: Readonly<Keyed<string>>
}

/** A Numscript program and its variables (v2: `script: {plain, vars}`). */
export interface TransactionScript {
  readonly plain: string
  readonly vars: Readonly<Keyed<string>>
}

/**
 * The schema version a write follows (v2 `schemaVersion`): the FSM reads that
 * schema and refuses what breaks it. Absent while the ledger has a schema is
 * SCHEMA_NOT_SPECIFIED.
 */
export interface FollowsSchema {
  readonly schemaVersion?: string
}

export interface CreateTransaction extends FollowsSchema {
  readonly type: 'CREATE_TRANSACTION'
  readonly ledger: LedgerName
  /** The transaction template of the schema the script comes from (`script.template`). */
  readonly template?: string
  /** Empty when `script` is set: the FSM computes them by running the script. */
  readonly postings: readonly Posting[]
  readonly script?: TransactionScript
  /**
   * What admission's planning run of the script read, in order: one
   * fingerprint per input (which balance or metadata, and its value;
   * `scriptInputFingerprint`). The FSM's run must read the same values, or
   * the order is STALE_INPUTS (retryable); stamped by admission.
   */
  readonly scriptInputs?: readonly string[]
  readonly timestamp?: string
  readonly reference?: string
  readonly metadata: Metadata
  readonly accountMetadata: Readonly<Keyed<Metadata>>
  readonly force: boolean
}

export interface RevertTransaction extends FollowsSchema {
  readonly type: 'REVERT_TRANSACTION'
  readonly ledger: LedgerName
  readonly id: TransactionId
  readonly force: boolean
  readonly atEffectiveDate: boolean
  readonly metadata: Metadata
  /**
   * The postings of the reverted transaction as admission planned on them
   * (`revertedPostingsFingerprint`; absent when it did not exist yet): they
   * decide which volumes the revert reads. Stamped by admission.
   */
  readonly plannedPostings?: string
}

export interface SaveTransactionMetadata extends FollowsSchema {
  readonly type: 'SAVE_TRANSACTION_METADATA'
  readonly ledger: LedgerName
  readonly id: TransactionId
  readonly metadata: Metadata
}

export interface DeleteTransactionMetadata {
  readonly type: 'DELETE_TRANSACTION_METADATA'
  readonly ledger: LedgerName
  readonly id: TransactionId
  readonly key: string
}

export interface SaveAccountMetadata extends FollowsSchema {
  readonly type: 'SAVE_ACCOUNT_METADATA'
  readonly ledger: LedgerName
  readonly address: AccountAddress
  readonly metadata: Metadata
}

export interface DeleteAccountMetadata {
  readonly type: 'DELETE_ACCOUNT_METADATA'
  readonly ledger: LedgerName
  readonly address: AccountAddress
  readonly key: string
}

export interface SaveLedgerMetadata {
  readonly type: 'SAVE_LEDGER_METADATA'
  readonly ledger: LedgerName
  readonly metadata: Metadata
}

export interface DeleteLedgerMetadata {
  readonly type: 'DELETE_LEDGER_METADATA'
  readonly ledger: LedgerName
  readonly key: string
}

/** `POST /v2/{ledger}/schemas/{version}`: `data` is the canonical `V2SchemaData` (`parseSchemaData`). */
export interface InsertSchema {
  readonly type: 'INSERT_SCHEMA'
  readonly ledger: LedgerName
  readonly version: string
  readonly data: { readonly [key: string]: Json }
  /**
   * Only a log import sets it: the schema's creation date as the imported log
   * has it (v2 dates a schema apart from its log). Absent, the write's date.
   */
  readonly createdAt?: string
}

/**
 * Exporters and pipelines (docs/pipelines.md) are configured by orders like
 * any write, so a change is audited, replayed and ordered against the logs
 * (docs/adr/0008-outputs-are-node-state.md). They write no v2 log: v2 has no
 * log type for them. Ids are drawn by the API and carried in the order;
 * `createdAt` is set only when an existing configuration is carried over
 * (migration), else the proposal's date is the creation date.
 */
export interface PutExporter {
  readonly type: 'PUT_EXPORTER'
  readonly id: string
  readonly driver: string
  /** Parsed, defaults filled in, canonical (`canonicalExporterConfig`). */
  readonly config: { readonly [key: string]: Json }
  /** true: replace an existing exporter's configuration (NOT_FOUND without one); false: create it. */
  readonly update: boolean
  readonly createdAt?: string
}

/** Refused while a pipeline uses the exporter. */
export interface DeleteExporter {
  readonly type: 'DELETE_EXPORTER'
  readonly id: string
}

/** A new pipeline, enabled, from the ledger's first log; one per ledger and exporter. */
export interface PutPipeline {
  readonly type: 'PUT_PIPELINE'
  readonly ledger: LedgerName
  readonly id: string
  readonly exporterID: string
  readonly createdAt?: string
}

export interface DeletePipeline {
  readonly type: 'DELETE_PIPELINE'
  readonly ledger: LedgerName
  readonly id: string
}

/** `start` (enabled) and `stop`. */
export interface SetPipelineEnabled {
  readonly type: 'SET_PIPELINE_ENABLED'
  readonly ledger: LedgerName
  readonly id: string
  readonly enabled: boolean
}

/** From the beginning: every node drops its cursor once it has applied this order. */
export interface ResetPipeline {
  readonly type: 'RESET_PIPELINE'
  readonly ledger: LedgerName
  readonly id: string
}

/**
 * A checkpoint of a pipeline's cursor (docs/adr/0008-outputs-are-node-state.md,
 * "Failover"): the primary's sink confirmed every log up to `lastLogID` under
 * the reset count `resets`. Proposed by the node itself, at most once a second
 * per pipeline and only when the cursor moved; applied only forward
 * (a lower or equal `lastLogID` changes nothing) and refused for another
 * reset count.
 */
export interface SetPipelineCursor {
  readonly type: 'SET_PIPELINE_CURSOR'
  readonly ledger: LedgerName
  readonly id: string
  readonly resets: bigint
  readonly lastLogID: bigint
}

/** The ledger an order is about; absent for exporters, which serve every ledger. */
export function ledgerOfOrder(order: Order): LedgerName | undefined {
  return 'ledger' in order ? order.ledger : undefined
}

export type OrderType = Order['type']

/** An order as proposed: with the idempotency key and request hash it was sent with. */
export interface ProposedOrder {
  readonly order: Order
  readonly idempotencyKey?: string
  /** base64url(sha256(canonical request)): same key + other request = VALIDATION. */
  readonly requestHash?: string
}
