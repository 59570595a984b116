import type { Json, LedgerName, LedgerRecord, Metadata, Posting, TransactionRecord } from '../domain/index.ts'
import {
  REVERTS_METADATA_KEY,
  TallyError,
  decodeAttribute,
  describe,
  isJsonObject,
  ledgerKey,
  mergeMetadata,
  parseAccountAddress,
  parseMetadata,
  parseMetadataKey,
  parsePostings,
  transactionKey,
  withoutKey,
} from '../domain/index.ts'
import { goDate, importedDate, v2LogHash, v2Memento } from '../audit/v2-log-hash.ts'
import type { OrderResult } from '../fsm/index.ts'
import type { Order, ProposedOrder } from '../orders/index.ts'
import { parseAccountMetadata, parseReference, parseSchemaData, parseSchemaVersion, parseTransactionId, revertPostings } from '../orders/index.ts'
import type { SubmitOptions, SubmitSequence } from '../admission/index.ts'
import type { StoreReader } from '../store/index.ts'
import { attributeRowKey, decodeLogRow, logRowKey } from '../store/index.ts'

/** What an import needs of a node: its write pipeline and its store. `LedgerNode` is one. */
export interface ImportTarget {
  readonly admission: {
    submit(orders: readonly ProposedOrder[], options: SubmitOptions): Promise<readonly OrderResult[]>
    sequence(): SubmitSequence
  }
  readonly store: StoreReader
}

export interface ImportProgress {
  readonly logs: number
  readonly lastLogId: bigint | null
}

export interface ImportOptions {
  readonly onProgress?: (progress: ImportProgress) => void
  /** Logs of one date replay as one proposal of at most this many orders (bounded memory). */
  readonly groupOrdersMax?: number
}

export interface ImportSummary {
  readonly logs: number
  readonly lastHash: string
}

export const importGroupOrdersMax = 1000
/** Proposals of an import in flight at most (planned, logged or being applied, not yet verified). */
export const importGroupsInFlightMax = 4
/** Bytes of logs (as v2 prints their payloads) in flight at most: bounds the import's memory whatever the logs' size. */
export const importBytesInFlightMax = 32 * 1024 * 1024
const unavailableRetriesMax = 100

export function importError(message: string): TallyError {
  return new TallyError({ code: 'IMPORT', kind: 'validation', message })
}

/** One incoming log, checked and mapped to the order that replays it. */
interface PlannedLog {
  readonly id: bigint
  readonly hash: string
  readonly date: string
  readonly proposed: ProposedOrder
  readonly createsTransaction: boolean
  /** The log's payload as v2 prints it, in bytes: what the in-flight bound counts. */
  readonly bytes: number
}

/** A group of logs proposed in the import's sequence, not yet verified. */
interface ProposedGroup {
  readonly logs: readonly PlannedLog[]
  readonly bytes: number
  results: Promise<readonly OrderResult[]>
  /** Times it was proposed again after a retryable refusal (503). */
  retries: number
}

const importsRunning = new WeakMap<object, Set<string>>()

/**
 * Replays a Formance v2 log stream into an empty ledger (created when
 * missing) through the normal pipeline, as v2's `Import` does: each log's
 * hash is recomputed by v2's rule over the chain so far and must equal the
 * one supplied; the first mismatch stops the import with `IMPORT` naming the
 * log, after everything before it — and nothing after — is applied.
 *
 * Each log becomes the order that produces it (NEW_TRANSACTION → a forced
 * CREATE_TRANSACTION with the log's postings, timestamp, reference, metadata
 * and account metadata; REVERTED_TRANSACTION → a forced revert;
 * SET_METADATA / DELETE_METADATA → the metadata orders), proposed at the
 * log's date with its idempotency key. Before a log is proposed, the log our
 * handlers will write for it is predicted and must hash the same (v2 fields
 * Tally cannot reproduce, e.g. a `null` account metadata map, are refused
 * there, not discovered after). Consecutive logs of one date replay as one
 * proposal, so an export of bulk writes imports at bulk speed.
 *
 * Proposals are pipelined: up to `importGroupsInFlightMax` groups (and
 * `importBytesInFlightMax` bytes of logs) in one `SubmitSequence`, so the
 * next group is parsed, verified and planned while the one before is logged
 * and applied. The sequence appends each group only once the one before it
 * was applied and verified (its log ids are the ledger's next ones, its last
 * log row has the supplied hash), so the ledger's logs are the stream's, in
 * order, and a failure leaves exactly the verified groups before it.
 */
export async function importLogs(target: ImportTarget, ledger: LedgerName, logs: AsyncIterable<Json>, options: ImportOptions = {}): Promise<ImportSummary> {
  const running = importsRunning.get(target) ?? new Set<string>()
  importsRunning.set(target, running)
  if (running.has(ledger)) throw new TallyError({ code: 'IMPORT', kind: 'conflict', message: `an import into ledger ${ledger} is already running` })
  running.add(ledger)
  try {
    return await new Importer(target, ledger, options).run(logs)
  } finally {
    running.delete(ledger)
  }
}

class Importer {
  private readonly group: PlannedLog[] = []
  private readonly proposed: ProposedGroup[] = []
  private proposedBytes = 0
  private sequence: SubmitSequence
  private previousHash = ''
  private previousId: bigint | undefined
  private nextTransactionId = 0n
  private nextLogId = 0n
  private imported = 0

  constructor(
    private readonly target: ImportTarget,
    private readonly ledger: LedgerName,
    private readonly options: ImportOptions,
  ) {
    this.sequence = target.admission.sequence()
  }

  async run(logs: AsyncIterable<Json>): Promise<ImportSummary> {
    await this.prepareLedger()
    try {
      return await this.replay(logs)
    } catch (error) {
      // The stream failed (or a log was refused) with groups in flight: they hold logs before the failure
      // and are applied in order; the import ends only once they settled, so its caller sees the final ledger.
      await Promise.allSettled(this.proposed.map((entry) => entry.results))
      throw error
    }
  }

  private async replay(logs: AsyncIterable<Json>): Promise<ImportSummary> {
    for await (const raw of logs) {
      const planned = await this.plan(raw)
      if (planned === 'drain-first') {
        await this.drain()
        const retried = await this.plan(raw)
        if (retried === 'drain-first') throw new Error('a log planned after a drain needs no other drain')
        this.group.push(retried)
      } else {
        const head = this.group[0]
        if (head !== undefined && (head.date !== planned.date || this.group.length >= (this.options.groupOrdersMax ?? importGroupOrdersMax))) await this.flush()
        this.group.push(planned)
      }
      this.previousHash = this.group.at(-1)?.hash ?? this.previousHash
    }
    await this.drain()
    return { logs: this.imported, lastHash: this.previousHash }
  }

  private async prepareLedger(): Promise<void> {
    const existing = await this.readLedger()
    if (existing === undefined) {
      await this.submit([{ order: { type: 'CREATE_LEDGER', ledger: this.ledger, bucket: '_default', metadata: {}, features: {} } }], undefined)
      return
    }
    if (existing.nextLogId !== 0n || existing.nextTransactionId !== 0n) {
      throw importError(`ledger ${this.ledger} must be empty to import (it has ${existing.nextLogId} logs)`)
    }
  }

  /**
   * Checks one incoming log against the chain so far and maps it to its
   * order. A revert needs its original transaction applied first: while
   * logs are pending or in flight it answers 'drain-first'.
   */
  private async plan(raw: Json): Promise<PlannedLog | 'drain-first'> {
    if (!isJsonObject(raw)) throw importError(`expected a log object, got ${describe(raw)}`)
    const id = logId(raw.id)
    const where = `log ${id}`
    if (this.previousId !== undefined && id <= this.previousId) throw importError(`${where}: ids must increase (after log ${this.previousId})`)
    const type = raw.type
    const data = raw.data ?? null
    if (typeof raw.date !== 'string') throw importError(`${where}: date: expected an RFC 3339 date`)
    const date = wrap(where, () => importedDate(raw.date as string, 'date'))
    const key = raw.idempotencyKey ?? ''
    if (typeof key !== 'string') throw importError(`${where}: idempotencyKey: expected a string`)
    if (typeof raw.hash !== 'string') throw importError(`${where}: hash: expected the log's base64 hash`)
    const schemaVersion = raw.schemaVersion === undefined || raw.schemaVersion === null || raw.schemaVersion === '' ? undefined : wrap(where, () => parseSchemaVersion(raw.schemaVersion))
    // Only the writes that name a schema log its version: a version on another log could not be replayed to the same hash.
    if (schemaVersion !== undefined && type !== 'NEW_TRANSACTION' && type !== 'REVERTED_TRANSACTION' && type !== 'SET_METADATA') {
      throw importError(`${where}: schemaVersion on a ${describe(type as Json)} log is not supported (Tally logs it on NEW_TRANSACTION, REVERTED_TRANSACTION and SET_METADATA only)`)
    }
    if (type === 'REVERTED_TRANSACTION' && (this.group.length > 0 || this.proposed.length > 0)) return 'drain-first'
    const previousHash = this.group.at(-1)?.hash ?? this.previousHash
    const expected = v2LogHash(previousHash, { type: String(type), data, date: raw.date, idempotencyKey: key, ...(schemaVersion === undefined ? {} : { schemaVersion }) })
    if (expected !== raw.hash) {
      await this.drain() // everything before this log is verified: it is applied, nothing after
      throw importError(`${where}: invalid hash: expected ${expected}, got ${raw.hash}`)
    }
    const mapped = await wrapAsync(where, () => this.orderOf(type, data, date))
    const memento = v2Memento(String(type), mapped.predicted)
    if (memento !== v2Memento(String(type), data)) {
      await this.drain()
      throw importError(`${where}: Tally would replay it to another log (a field v2 allows but Tally writes differently, e.g. a null map); nothing after log ${this.previousId ?? 'none'} is applied`)
    }
    this.previousId = id
    const order: Order = schemaVersion === undefined ? mapped.order : { ...mapped.order, schemaVersion } as Order
    const idempotencyHash = typeof raw.idempotencyHash === 'string' && raw.idempotencyHash !== '' ? raw.idempotencyHash : `import:${this.ledger}:${key}`
    const proposed: ProposedOrder = key === '' ? { order } : { order, idempotencyKey: key, requestHash: idempotencyHash }
    if (mapped.createsTransaction) this.nextTransactionId++
    return { id, hash: raw.hash, date, proposed, createsTransaction: mapped.createsTransaction, bytes: memento.length }
  }

  /** The order that writes this log, and the payload our handlers will log for it. */
  private async orderOf(type: Json | undefined, data: Json, date: string): Promise<{ order: Order; predicted: Json; createsTransaction: boolean }> {
    if (!isJsonObject(data)) throw importError(`data: expected an object, got ${describe(data)}`)
    const ledger = this.ledger
    switch (type) {
      case 'NEW_TRANSACTION': {
        const transaction = objectField(data, 'transaction')
        const postings = parsePostings(transaction.postings)
        const metadata = parseMetadata(transaction.metadata, 'transaction.metadata')
        const timestamp = importedDate(stringField(transaction, 'timestamp'), 'transaction.timestamp')
        const reference = parseReference(transaction.reference)
        this.expectTransactionId(transaction.id)
        const accountMetadata = parseAccountMetadata(data.accountMetadata)
        const template = transaction.template === undefined || transaction.template === null || transaction.template === '' ? undefined : transaction.template
        if (template !== undefined && typeof template !== 'string') throw importError(`transaction.template: expected a template name, got ${describe(template)}`)
        const order: Order = { type: 'CREATE_TRANSACTION', ledger, postings, timestamp, ...(reference === undefined ? {} : { reference }), ...(template === undefined ? {} : { template }), metadata, accountMetadata, force: true }
        const predicted = { transaction: resume(postings, mergeMetadata({}, metadata), timestamp, reference, this.nextTransactionId), accountMetadata }
        return { order, predicted: predicted as unknown as Json, createsTransaction: true }
      }
      case 'REVERTED_TRANSACTION': {
        const transaction = objectField(data, 'transaction')
        const revertedField = data.revertedTransactionID ?? (isJsonObject(data.revertedTransaction) ? data.revertedTransaction.id : undefined)
        const revertedId = parseTransactionId(revertedField, 'revertedTransactionID')
        this.expectTransactionId(transaction.id)
        const original = await this.readTransaction(revertedId)
        if (original === undefined) throw importError(`revertedTransactionID: transaction ${revertedId} does not exist`)
        const incoming = parseMetadata(transaction.metadata, 'transaction.metadata')
        const metadata = withoutKey(incoming, REVERTS_METADATA_KEY)
        const timestamp = importedDate(stringField(transaction, 'timestamp'), 'transaction.timestamp')
        const atEffectiveDate = timestamp !== date && goDate(timestamp) === goDate(original.timestamp)
        const order: Order = { type: 'REVERT_TRANSACTION', ledger, id: revertedId, force: true, atEffectiveDate, metadata }
        const written = mergeMetadata(metadata, { [REVERTS_METADATA_KEY]: revertedId.toString() })
        const predicted = { revertedTransactionID: revertedId, transaction: resume(revertPostings(original.postings), written, atEffectiveDate ? original.timestamp : date, undefined, this.nextTransactionId) }
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
  private expectTransactionId(value: Json | undefined): void {
    const id = parseTransactionId(value, 'transaction.id')
    if (id !== this.nextTransactionId) throw importError(`transaction.id: ${id}, but the ledger's next transaction id is ${this.nextTransactionId}`)
  }

  /**
   * Proposes the pending logs (one date) in the import's sequence, then waits
   * for the oldest groups in flight until the pipeline is within its bounds.
   */
  private async flush(): Promise<void> {
    const logs = this.group.splice(0)
    if (logs.length === 0) return
    const bytes = logs.reduce((sum, planned) => sum + planned.bytes, 0)
    this.proposed.push({ logs, bytes, results: this.propose(logs), retries: 0 })
    this.proposedBytes += bytes
    while (this.proposed.length > importGroupsInFlightMax || (this.proposed.length > 1 && this.proposedBytes > importBytesInFlightMax)) await this.settleOldest()
  }

  /** Proposes the pending logs and waits until every group in flight is applied and verified. */
  private async drain(): Promise<void> {
    await this.flush()
    while (this.proposed.length > 0) await this.settleOldest()
  }

  private propose(logs: readonly PlannedLog[]): Promise<readonly OrderResult[]> {
    const first = logs[0] as PlannedLog
    const results = this.sequence.submit(
      logs.map((planned) => planned.proposed),
      { atomic: false, continueOnFailure: false, date: first.date },
      (applied) => this.verify(logs, applied),
    )
    // Awaited in order by settleOldest; a rejection before then is not unhandled.
    results.catch(() => {})
    return results
  }

  /**
   * Waits for the oldest group. A retryable refusal (503: the cache horizon,
   * a plan gone stale repeatedly) happened before it was logged, and the
   * sequence ended there, so nothing after it was logged either: the groups
   * in flight are proposed again, in order, in a new sequence.
   */
  private async settleOldest(): Promise<void> {
    const oldest = this.proposed[0]
    if (oldest === undefined) return
    try {
      await oldest.results
    } catch (error) {
      await Promise.allSettled(this.proposed.map((entry) => entry.results))
      if (!(error instanceof TallyError) || error.kind !== 'unavailable' || oldest.retries >= unavailableRetriesMax) {
        this.proposed.length = 0
        this.proposedBytes = 0
        throw error
      }
      oldest.retries++
      await new Promise<void>((resolve) => setImmediate(resolve))
      this.sequence = this.target.admission.sequence()
      for (const entry of this.proposed) entry.results = this.propose(entry.logs)
      return
    }
    this.proposed.shift()
    this.proposedBytes -= oldest.bytes
  }

  /**
   * Runs in the sequence once the group was applied, before the next group
   * is logged: each log was replayed as the ledger's next log, and the
   * ledger logged the last one with the supplied hash (the v2 chain covers
   * the ones before it).
   */
  private async verify(logs: readonly PlannedLog[], results: readonly OrderResult[]): Promise<void> {
    for (const [i, result] of results.entries()) {
      const planned = logs[i] as PlannedLog
      if (result.status !== 'applied') {
        const cause = result.status === 'failed' ? `${result.error.code}: ${result.error.message}` : 'not run'
        throw importError(`log ${planned.id}: the replay failed (${cause}); the ledger holds the logs before it`)
      }
      const output = result.output
      const logged = output.type === 'TRANSACTION' || output.type === 'METADATA' || output.type === 'SCHEMA' ? output.logId : null
      if (result.idempotencyHit || logged !== this.nextLogId) {
        throw importError(`log ${planned.id}: replayed as log ${String(logged)}, expected ${this.nextLogId} (a concurrent write to ledger ${this.ledger}, or a repeated idempotency key)`)
      }
      this.nextLogId++
      this.imported++
    }
    const last = logs.at(-1) as PlannedLog
    const hash = await this.loggedHash(this.nextLogId - 1n)
    if (hash !== last.hash) {
      throw importError(`log ${last.id}: the ledger logged it with hash ${hash ?? '(none)'}, the import says ${last.hash}`)
    }
    this.options.onProgress?.({ logs: this.imported, lastLogId: last.id })
  }

  /** The hash of the ledger's log `id` as stored (a log row never changes once written). */
  private async loggedHash(id: bigint): Promise<string | undefined> {
    const row = await this.target.store.get(logRowKey(this.ledger, id))
    if (row === undefined) return undefined
    const log = decodeLogRow(row)
    return isJsonObject(log) && typeof log.hash === 'string' ? log.hash : undefined
  }

  private async submit(orders: ProposedOrder[], date: string | undefined): Promise<readonly OrderResult[]> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.target.admission.submit(orders, { atomic: false, continueOnFailure: false, ...(date === undefined ? {} : { date }) })
      } catch (error) {
        if (!(error instanceof TallyError) || error.kind !== 'unavailable' || attempt >= unavailableRetriesMax) throw error
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
    }
  }

  private async readLedger(): Promise<LedgerRecord | undefined> {
    const row = await this.target.store.get(attributeRowKey(ledgerKey(this.ledger)))
    if (row === undefined) return undefined
    const value = decodeAttribute('l', row).value
    return value.kind === 'l' ? value.value : undefined
  }

  private async readTransaction(id: bigint): Promise<TransactionRecord | undefined> {
    const row = await this.target.store.get(attributeRowKey(transactionKey(this.ledger, id)))
    if (row === undefined) return undefined
    const value = decodeAttribute('t', row).value
    return value.kind === 't' ? value.value : undefined
  }
}

/** The fields of a transaction v2 hashes, as our handlers will log them. */
function resume(postings: readonly Posting[], metadata: Metadata, timestamp: string, reference: string | undefined, id: bigint): Record<string, unknown> {
  return { postings, metadata, timestamp, ...(reference === undefined ? {} : { reference }), id }
}

function logId(value: Json | undefined): bigint {
  if (typeof value === 'bigint' && value >= 0n) return value
  throw importError(`expected a log with a non-negative integer id, got ${describe(value)}`)
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

/** Validation errors of a log's fields become IMPORT errors naming the log. */
function wrap<T>(where: string, run: () => T): T {
  try {
    return run()
  } catch (error) {
    if (error instanceof TallyError) throw importError(`${where}: ${error.message}`)
    throw error
  }
}

async function wrapAsync<T>(where: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (error) {
    if (error instanceof TallyError) throw importError(error.message.startsWith(where) ? error.message : `${where}: ${error.message}`)
    throw error
  }
}
