import type { Json, LedgerName, LedgerRecord, TransactionRecord } from '../domain/index.ts'
import { TallyError, decodeAttribute, isJsonObject, ledgerKey, transactionKey } from '../domain/index.ts'
import type { OrderResult } from '../fsm/index.ts'
import type { ProposedOrder } from '../orders/index.ts'
import type { SubmitOptions, SubmitSequence } from '../admission/index.ts'
import type { StoreReader } from '../store/index.ts'
import { attributeRowKey, decodeLogRow, logRowKey } from '../store/index.ts'
import type { CheckedLog, PlannedLog } from './import-plan.ts'
import { LogPlanner, RefusedLog, importError, mapsAlone, revertedIdOf } from './import-plan.ts'
import { planInWorker } from './import-planner-thread.ts'
import { parseJsonStream } from './json-stream.ts'

export { importError }

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
 *
 * The checks and the mapping are `LogPlanner`'s (`import-plan.ts`); here
 * they run beside the pipeline, over values already parsed.
 * `importLogStream` reads bytes and, for a large stream, runs them on a
 * worker thread.
 */
export async function importLogs(target: ImportTarget, ledger: LedgerName, logs: AsyncIterable<Json>, options: ImportOptions = {}): Promise<ImportSummary> {
  return await importPlanned(target, ledger, () => planInThread(new LogPlanner(ledger), logs), options)
}

/** Where an import's logs are parsed, verified and mapped to orders. */
export type ImportPlanner = 'worker' | 'thread'

export interface ImportStreamOptions extends ImportOptions {
  /**
   * `worker`: on a worker thread, the logs handed over planned
   * (`import-planner-thread.ts`); `thread`: beside the write pipeline. By
   * default a stream of more than `importWorkerBytesMin` goes to a worker,
   * a smaller one (a worker's start would cost more than it saves) stays.
   */
  readonly planner?: ImportPlanner
}

/** A stream shorter than this is planned on the pipeline's own thread unless told otherwise. */
export const importWorkerBytesMin = 1024 * 1024

/**
 * `importLogs` over the bytes of a v2 log stream (JSON lines, or one JSON
 * array; `parseJsonStream`'s forms): the same checks, the same orders and
 * the same refusals, at the same log. The parsing, the hash verification and
 * the mapping to orders run on a worker thread for a large stream
 * (`ImportStreamOptions.planner`). When the import stops before the end of
 * the stream, a `source` that can be destroyed (a Node stream) is.
 */
export async function importLogStream(target: ImportTarget, ledger: LedgerName, source: AsyncIterable<Buffer>, options: ImportStreamOptions = {}): Promise<ImportSummary> {
  let finished = false
  try {
    const summary = await importPlanned(target, ledger, () => planStream(ledger, source, options.planner), options)
    finished = true
    return summary
  } finally {
    if (!finished) destroySource(source)
  }
}

async function importPlanned(target: ImportTarget, ledger: LedgerName, incoming: () => AsyncIterable<IncomingLog>, options: ImportOptions): Promise<ImportSummary> {
  const running = importsRunning.get(target) ?? new Set<string>()
  importsRunning.set(target, running)
  if (running.has(ledger)) throw new TallyError({ code: 'IMPORT', kind: 'conflict', message: `an import into ledger ${ledger} is already running` })
  running.add(ledger)
  try {
    return await new Importer(target, ledger, options).run(incoming)
  } finally {
    running.delete(ledger)
  }
}

/** A log as the importer receives it: planned, or checked and left to map (a revert, which needs the store). */
type IncomingLog = PlannedLog | CheckedLog

function isChecked(log: IncomingLog): log is CheckedLog {
  return (log as CheckedLog).kind === 'checked'
}

/** Each log checked and, unless it needs the store, mapped, beside the pipeline. */
async function* planInThread(planner: LogPlanner, logs: AsyncIterable<Json>): AsyncGenerator<IncomingLog> {
  for await (const raw of logs) {
    const checked = planner.check(raw)
    yield mapsAlone(checked) ? planner.map(checked) : checked
  }
}

/**
 * The stream's logs, planned on a worker when asked, or by default when the
 * stream holds more than `importWorkerBytesMin` (its first chunks are read
 * to know, then handed on first).
 */
async function* planStream(ledger: LedgerName, source: AsyncIterable<Buffer>, planner: ImportPlanner | undefined): AsyncGenerator<IncomingLog> {
  const iterator = source[Symbol.asyncIterator]()
  const head: Buffer[] = []
  let headBytes = 0
  let ended = planner !== undefined
  while (!ended && headBytes < importWorkerBytesMin) {
    const next = await iterator.next()
    if (next.done === true) ended = true
    else {
      head.push(next.value)
      headBytes += next.value.byteLength
    }
  }
  const rest = (async function* (): AsyncGenerator<Buffer> {
    yield* head
    head.length = 0
    if (headBytes >= importWorkerBytesMin || planner !== undefined) {
      for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value
    }
  })()
  const onWorker = planner === 'worker' || (planner === undefined && headBytes >= importWorkerBytesMin)
  if (onWorker) yield* planInWorker(ledger, rest)
  else yield* planInThread(new LogPlanner(ledger), parseJsonStream(rest))
}

function destroySource(source: AsyncIterable<Buffer>): void {
  const stream = source as { destroy?: unknown; destroyed?: unknown }
  if (typeof stream.destroy === 'function' && stream.destroyed !== true) (stream.destroy as () => void).call(source)
}

class Importer {
  private readonly group: PlannedLog[] = []
  private readonly proposed: ProposedGroup[] = []
  private proposedBytes = 0
  private sequence: SubmitSequence
  /** Maps the logs that arrive checked, not planned (`map` keeps no state of the chain). */
  private readonly mapper: LogPlanner
  private lastHash = ''
  private nextLogId = 0n
  private imported = 0

  constructor(
    private readonly target: ImportTarget,
    private readonly ledger: LedgerName,
    private readonly options: ImportOptions,
  ) {
    this.sequence = target.admission.sequence()
    this.mapper = new LogPlanner(ledger)
  }

  async run(incoming: () => AsyncIterable<IncomingLog>): Promise<ImportSummary> {
    await this.prepareLedger()
    try {
      return await this.replay(incoming())
    } catch (error) {
      // The stream failed (or a log was refused) with groups in flight: they hold logs before the failure
      // and are applied in order; the import ends only once they settled, so its caller sees the final ledger.
      await Promise.allSettled(this.proposed.map((entry) => entry.results))
      throw error
    }
  }

  private async replay(incoming: AsyncIterable<IncomingLog>): Promise<ImportSummary> {
    try {
      for await (const log of incoming) {
        const planned = isChecked(log) ? await this.mapChecked(log) : log
        const head = this.group[0]
        if (head !== undefined && (head.date !== planned.date || this.group.length >= (this.options.groupOrdersMax ?? importGroupOrdersMax))) await this.flush()
        this.group.push(planned)
        this.lastHash = planned.hash
      }
    } catch (error) {
      if (!(error instanceof RefusedLog)) throw error
      // A wrong hash, or a log Tally would write differently: everything before it is verified, so it is applied.
      if (error.applyBefore) await this.drain()
      throw error.error
    }
    await this.drain()
    return { logs: this.imported, lastHash: this.lastHash }
  }

  /** A checked log's order; a revert's original must be applied first, then read. */
  private async mapChecked(checked: CheckedLog): Promise<PlannedLog> {
    if (mapsAlone(checked)) return this.mapper.map(checked)
    await this.drain()
    const original = await this.readTransaction(revertedIdOf(checked))
    return this.mapper.map(checked, original)
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

