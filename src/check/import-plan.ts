import type { Json, LedgerName, Metadata, Posting, TransactionRecord } from '../domain/index.ts'
import {
  REVERTS_METADATA_KEY,
  TallyError,
  describe,
  isJsonObject,
  mergeMetadata,
  parseAccountAddress,
  parseMetadata,
  parseMetadataKey,
  parsePostings,
  withoutKey,
} from '../domain/index.ts'
import { goDate, importedDate, v2LogHash, v2Memento } from '../audit/v2-log-hash.ts'
import type { Order, ProposedOrder } from '../orders/index.ts'
import { parseAccountMetadata, parseReference, parseSchemaData, parseSchemaVersion, parseTransactionId, revertPostings } from '../orders/index.ts'

/**
 * The import's planning, apart from the store and the write pipeline: each
 * incoming v2 log is checked against the chain so far (`LogPlanner.check`:
 * its id after the last one, its fields, its hash by v2's rule over the
 * previous log's hash) and mapped to the order that replays it
 * (`LogPlanner.map`), with the log Tally will write for that order
 * predicted and compared with the incoming one. Nothing here awaits or reads
 * the store, so it runs as well in the import's worker thread
 * (`import-worker.ts`) as beside the write pipeline; the one input it cannot
 * know, a reverted transaction, is the caller's to read and pass in.
 */

export function importError(message: string): TallyError {
  return new TallyError({ code: 'IMPORT', kind: 'validation', message })
}

/**
 * A log the import refuses. When `applyBefore`, everything before it is to
 * be applied first (its hash, or the log Tally would write for it, differs:
 * the logs before it are verified); otherwise the logs not yet proposed are
 * dropped, as for a stream that cannot be read on.
 */
export class RefusedLog extends Error {
  constructor(
    readonly error: TallyError,
    readonly applyBefore: boolean,
  ) {
    super(error.message)
    this.name = 'RefusedLog'
  }
}

/** One incoming log, checked and mapped to the order that replays it. */
export interface PlannedLog {
  readonly id: bigint
  readonly hash: string
  readonly date: string
  readonly proposed: ProposedOrder
  readonly createsTransaction: boolean
  /** The log's payload as v2 prints it, in bytes: what the import's in-flight bound counts. */
  readonly bytes: number
}

/** A log whose place in the chain and hash are verified, not yet mapped to its order. */
export interface CheckedLog {
  readonly kind: 'checked'
  readonly id: bigint
  readonly type: Json | undefined
  readonly data: Json
  /** The log's date as Tally stores dates. */
  readonly date: string
  readonly key: string
  readonly schemaVersion: string | undefined
  readonly hash: string
  /** The request hash the log's idempotency record is restored with (when it has a key). */
  readonly requestHash: string
  /** The ledger's transaction id for the transaction this log creates, if it creates one. */
  readonly transactionId: bigint
  /** The id of the log before it, for the messages of a refusal. */
  readonly previousId: bigint | undefined
}

/** Orders that can be mapped without the store: every log type but a revert, which replays its original's postings. */
export function mapsAlone(checked: CheckedLog): boolean {
  return checked.type !== 'REVERTED_TRANSACTION'
}

/**
 * The chain of one import: the hash, log id and transaction id the next log
 * must follow. `check` moves it on, so logs are checked exactly once, in the
 * stream's order.
 */
export class LogPlanner {
  private previousHash = ''
  private previousId: bigint | undefined
  private nextTransactionId = 0n

  constructor(readonly ledger: LedgerName) {}

  /** The hash of the last log checked ('' before the first). */
  lastHash(): string {
    return this.previousHash
  }

  /**
   * Checks one incoming log against the chain so far; throws `RefusedLog`
   * naming it when it does not follow (with `applyBefore` when only its
   * hash is wrong: everything before it is verified).
   */
  check(raw: Json): CheckedLog {
    if (!isJsonObject(raw)) throw refused(`expected a log object, got ${describe(raw)}`)
    const id = logId(raw.id)
    const where = `log ${id}`
    if (this.previousId !== undefined && id <= this.previousId) throw refused(`${where}: ids must increase (after log ${this.previousId})`)
    const type = raw.type
    const data = raw.data ?? null
    if (typeof raw.date !== 'string') throw refused(`${where}: date: expected an RFC 3339 date`)
    const date = wrap(where, () => importedDate(raw.date as string, 'date'))
    const key = raw.idempotencyKey ?? ''
    if (typeof key !== 'string') throw refused(`${where}: idempotencyKey: expected a string`)
    if (typeof raw.hash !== 'string') throw refused(`${where}: hash: expected the log's base64 hash`)
    const schemaVersion = raw.schemaVersion === undefined || raw.schemaVersion === null || raw.schemaVersion === '' ? undefined : wrap(where, () => parseSchemaVersion(raw.schemaVersion))
    // Only the writes that name a schema log its version: a version on another log could not be replayed to the same hash.
    if (schemaVersion !== undefined && type !== 'NEW_TRANSACTION' && type !== 'REVERTED_TRANSACTION' && type !== 'SET_METADATA') {
      throw refused(`${where}: schemaVersion on a ${describe(type as Json)} log is not supported (Tally logs it on NEW_TRANSACTION, REVERTED_TRANSACTION and SET_METADATA only)`)
    }
    const expected = v2LogHash(this.previousHash, { type: String(type), data, date: raw.date, idempotencyKey: key, ...(schemaVersion === undefined ? {} : { schemaVersion }) })
    // Everything before this log is verified: it is applied, nothing after.
    if (expected !== raw.hash) throw new RefusedLog(importError(`${where}: invalid hash: expected ${expected}, got ${raw.hash}`), true)
    const requestHash = typeof raw.idempotencyHash === 'string' && raw.idempotencyHash !== '' ? raw.idempotencyHash : `import:${this.ledger}:${key}`
    const checked: CheckedLog = { kind: 'checked', id, type, data, date, key, schemaVersion, hash: raw.hash, requestHash, transactionId: this.nextTransactionId, previousId: this.previousId }
    this.previousHash = raw.hash
    this.previousId = id
    if (type === 'NEW_TRANSACTION' || type === 'REVERTED_TRANSACTION') this.nextTransactionId++
    return checked
  }

  /**
   * The order that writes a checked log, and the log Tally will write for it
   * compared with the incoming one (`RefusedLog` with `applyBefore` when
   * they differ). A revert needs its original transaction (`undefined` when
   * the ledger has none of that id); any other log maps without it.
   */
  map(checked: CheckedLog, original?: TransactionRecord): PlannedLog {
    const where = `log ${checked.id}`
    const mapped = wrap(where, () => orderOf(this.ledger, checked, original))
    const type = String(checked.type)
    const memento = v2Memento(type, mapped.predicted)
    if (memento !== v2Memento(type, checked.data)) {
      throw new RefusedLog(
        importError(`${where}: Tally would replay it to another log (a field v2 allows but Tally writes differently, e.g. a null map); nothing after log ${checked.previousId ?? 'none'} is applied`),
        true,
      )
    }
    const order: Order = checked.schemaVersion === undefined ? mapped.order : ({ ...mapped.order, schemaVersion: checked.schemaVersion } as Order)
    const proposed: ProposedOrder = checked.key === '' ? { order } : { order, idempotencyKey: checked.key, requestHash: checked.requestHash }
    return { id: checked.id, hash: checked.hash, date: checked.date, proposed, createsTransaction: mapped.createsTransaction, bytes: memento.length }
  }
}

/**
 * The id of the transaction a revert log reverts, which the caller reads for
 * `map`: its fields are checked in `map`'s order up to there, so a log
 * refused here gets the message `map` would give it.
 */
export function revertedIdOf(checked: CheckedLog): bigint {
  return wrap(`log ${checked.id}`, () => {
    const data = objectOf(checked.data)
    const transaction = objectField(data, 'transaction')
    const revertedField = data.revertedTransactionID ?? (isJsonObject(data.revertedTransaction) ? data.revertedTransaction.id : undefined)
    const revertedId = parseTransactionId(revertedField, 'revertedTransactionID')
    expectTransactionId(transaction.id, checked.transactionId)
    return revertedId
  })
}

/** The order that writes this log, and the payload our handlers will log for it. */
function orderOf(ledger: LedgerName, checked: CheckedLog, original: TransactionRecord | undefined): { order: Order; predicted: Json; createsTransaction: boolean } {
  const { type, date } = checked
  const data = objectOf(checked.data)
  switch (type) {
    case 'NEW_TRANSACTION': {
      const transaction = objectField(data, 'transaction')
      const postings = parsePostings(transaction.postings)
      const metadata = parseMetadata(transaction.metadata, 'transaction.metadata')
      const timestamp = importedDate(stringField(transaction, 'timestamp'), 'transaction.timestamp')
      const reference = parseReference(transaction.reference)
      expectTransactionId(transaction.id, checked.transactionId)
      const accountMetadata = parseAccountMetadata(data.accountMetadata)
      const template = transaction.template === undefined || transaction.template === null || transaction.template === '' ? undefined : transaction.template
      if (template !== undefined && typeof template !== 'string') throw importError(`transaction.template: expected a template name, got ${describe(template)}`)
      const order: Order = { type: 'CREATE_TRANSACTION', ledger, postings, timestamp, ...(reference === undefined ? {} : { reference }), ...(template === undefined ? {} : { template }), metadata, accountMetadata, force: true }
      const predicted = { transaction: resume(postings, mergeMetadata({}, metadata), timestamp, reference, checked.transactionId), accountMetadata }
      return { order, predicted: predicted as unknown as Json, createsTransaction: true }
    }
    case 'REVERTED_TRANSACTION': {
      const transaction = objectField(data, 'transaction')
      const revertedField = data.revertedTransactionID ?? (isJsonObject(data.revertedTransaction) ? data.revertedTransaction.id : undefined)
      const revertedId = parseTransactionId(revertedField, 'revertedTransactionID')
      expectTransactionId(transaction.id, checked.transactionId)
      if (original === undefined) throw importError(`revertedTransactionID: transaction ${revertedId} does not exist`)
      const incoming = parseMetadata(transaction.metadata, 'transaction.metadata')
      const metadata = withoutKey(incoming, REVERTS_METADATA_KEY)
      const timestamp = importedDate(stringField(transaction, 'timestamp'), 'transaction.timestamp')
      const atEffectiveDate = timestamp !== date && goDate(timestamp) === goDate(original.timestamp)
      const order: Order = { type: 'REVERT_TRANSACTION', ledger, id: revertedId, force: true, atEffectiveDate, metadata }
      const written = mergeMetadata(metadata, { [REVERTS_METADATA_KEY]: revertedId.toString() })
      const predicted = { revertedTransactionID: revertedId, transaction: resume(revertPostings(original.postings), written, atEffectiveDate ? original.timestamp : date, undefined, checked.transactionId) }
      return { order, predicted: predicted as unknown as Json, createsTransaction: true }
    }
    case 'SET_METADATA':
    case 'DELETE_METADATA': {
      const targetType = data.targetType
      const setting = type === 'SET_METADATA'
      const metadata = setting ? parseMetadata(data.metadata, 'metadata') : {}
      const key = setting ? '' : parseMetadataKey(data.key, 'key')
      if (targetType === 'ACCOUNT') {
        const address = parseAccountAddress(data.targetId, 'targetId')
        const order: Order = setting ? { type: 'SAVE_ACCOUNT_METADATA', ledger, address, metadata } : { type: 'DELETE_ACCOUNT_METADATA', ledger, address, key }
        return { order, predicted: { targetType, targetId: address, ...(setting ? { metadata } : { key }) }, createsTransaction: false }
      }
      if (targetType === 'TRANSACTION') {
        const id = parseTransactionId(data.targetId, 'targetId')
        const order: Order = setting ? { type: 'SAVE_TRANSACTION_METADATA', ledger, id, metadata } : { type: 'DELETE_TRANSACTION_METADATA', ledger, id, key }
        return { order, predicted: { targetType, targetId: id, ...(setting ? { metadata } : { key }) }, createsTransaction: false }
      }
      throw importError(`targetType: expected ACCOUNT or TRANSACTION, got ${describe(targetType)}`)
    }
    case 'INSERTED_SCHEMA': {
      const schema = objectField(data, 'schema')
      const version = parseSchemaVersion(schema.version, 'schema.version')
      const { version: _version, createdAt: given, ...body } = schema
      // v2 dates a schema apart from its log: the imported date is kept when they differ.
      const createdAt = typeof given === 'string' ? importedDate(given, 'schema.createdAt') : date
      const order: Order = { type: 'INSERT_SCHEMA', ledger, version, data: parseSchemaData(body), ...(createdAt === date ? {} : { createdAt }) }
      const predicted = { schema: { ...order.data, version, createdAt } }
      return { order, predicted, createsTransaction: false }
    }
    default:
      throw importError(`type ${describe(type)} is not imported (NEW_TRANSACTION, REVERTED_TRANSACTION, SET_METADATA, DELETE_METADATA, INSERTED_SCHEMA)`)
  }
}

/** Transaction ids are hashed: the log's id must be the one this ledger assigns next. */
function expectTransactionId(value: Json | undefined, next: bigint): void {
  const id = parseTransactionId(value, 'transaction.id')
  if (id !== next) throw importError(`transaction.id: ${id}, but the ledger's next transaction id is ${next}`)
}

/** The fields of a transaction v2 hashes, as our handlers will log them. */
function resume(postings: readonly Posting[], metadata: Metadata, timestamp: string, reference: string | undefined, id: bigint): Record<string, unknown> {
  return { postings, metadata, timestamp, ...(reference === undefined ? {} : { reference }), id }
}

function logId(value: Json | undefined): bigint {
  if (typeof value === 'bigint' && value >= 0n) return value
  throw refused(`expected a log with a non-negative integer id, got ${describe(value)}`)
}

function objectOf(data: Json): { [key: string]: Json } {
  if (!isJsonObject(data)) throw importError(`data: expected an object, got ${describe(data)}`)
  return data
}

function objectField(data: { [key: string]: Json }, field: string): { [key: string]: Json } {
  const value = data[field]
  if (!isJsonObject(value)) throw importError(`${field}: expected an object, got ${describe(value)}`)
  return value
}

function stringField(data: { [key: string]: Json }, field: string): string {
  const value = data[field]
  if (typeof value !== 'string') throw importError(`${field}: expected a string, got ${describe(value)}`)
  return value
}

/** A log refused before anything of it is proposed: the logs not yet proposed are dropped. */
function refused(message: string): RefusedLog {
  return new RefusedLog(importError(message), false)
}

/** Validation errors of a log's fields become IMPORT errors naming the log. */
function wrap<T>(where: string, run: () => T): T {
  try {
    return run()
  } catch (error) {
    if (error instanceof TallyError) throw new RefusedLog(importError(error.message.startsWith(where) ? error.message : `${where}: ${error.message}`), false)
    throw error
  }
}
