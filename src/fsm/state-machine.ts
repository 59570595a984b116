import type { Attribute, AttributeValue, CanonicalKey, Json } from '../domain/index.ts'
import {
  InvariantViolation,
  TallyError,
  decodeAttribute,
  encodeAttribute,
  idempotencyKey,
  invariant,
  isJsonObject,
  kindOf,
  parseJson,
  stringifyJson,
} from '../domain/index.ts'
import type { ErrorCode, ErrorKind } from '../domain/index.ts'
import type { AttributeCache, CacheState } from '../cache/index.ts'
import type { AuditHead } from '../audit/index.ts'
import { chainEntry } from '../audit/index.ts'
import type { Order, OrderOutput } from '../orders/index.ts'
import { executeOrder, ledgerOfOrder } from '../orders/index.ts'
import { MetaKey, attributeRowKey, auditRowKey, encodeLogRow, logRowKey, metaKey } from '../store/layout.ts'
import type { Proposal, PlannedOrder } from './proposal.ts'
import { cacheSettingsFromJson, cacheSettingsToJson } from './proposal.ts'
import { GatedScope, WriteSet } from './gated-scope.ts'
import { writeTransactionIndexes } from './indexes.ts'
import type { WriteBatch } from './write-batch.ts'

export interface OrderFailure {
  readonly code: ErrorCode
  readonly kind: ErrorKind
  readonly message: string
  readonly details?: Readonly<Record<string, string>>
}

export type OrderResult =
  | { readonly status: 'applied'; readonly output: OrderOutput; readonly idempotencyHit: boolean }
  /** `rolledBack`: the order itself succeeded, but another order of its atomic proposal failed. */
  | { readonly status: 'failed'; readonly error: OrderFailure; readonly rolledBack?: true }
  /** Not run: an earlier order failed and the bulk neither continues nor is atomic-rolled-back. */
  | { readonly status: 'skipped' }

export type ProposalResult =
  | { readonly index: number; readonly outcome: 'applied'; readonly results: readonly OrderResult[] }
  /**
   * Retryable: planned against another index, cache epoch or cache
   * generation (an unforeseen rotation), or with seeds past the horizon;
   * nothing applied, nothing audited.
   */
  | { readonly index: number; readonly outcome: 'stale'; readonly reason: string }

export interface StateMachineOptions {
  readonly cache: AttributeCache
  readonly clusterId: string
  readonly appliedIndex: number
  readonly auditHead: AuditHead
  /** Called on every coverage miss: the failure is audited, and also loud. */
  readonly onCoverageMiss?: (error: TallyError, index: number) => void
  /**
   * Runs one order's handler; the real handlers by default. Tests drive
   * paths no order uses yet (deleting a whole attribute) through it.
   */
  readonly execute?: (scope: GatedScope, order: Order) => OrderOutput
}

/**
 * The deterministic FSM (contract §2.2). It applies committed proposals in
 * index order against the cache and writes rows into a `WriteBatch`. It
 * cannot read the store, the clock or randomness: its only inputs are the
 * proposal, the index and its own state.
 */
export class LedgerStateMachine {
  private readonly cache: AttributeCache
  private readonly clusterId: string
  private applied: number
  private head: AuditHead
  private readonly onCoverageMiss: ((error: TallyError, index: number) => void) | undefined
  private readonly execute: (scope: GatedScope, order: Order) => OrderOutput
  /** The proposal begun and not yet finished (at most one: proposals apply in index order). */
  private open: ProposalApplication | undefined

  constructor(options: StateMachineOptions) {
    this.cache = options.cache
    this.clusterId = options.clusterId
    this.applied = options.appliedIndex
    this.head = options.auditHead
    this.onCoverageMiss = options.onCoverageMiss
    this.execute = options.execute ?? executeOrder
  }

  get appliedIndex(): number {
    return this.applied
  }

  get auditHead(): AuditHead {
    return this.head
  }

  apply(index: number, proposal: Proposal, batch: WriteBatch): ProposalResult {
    const application = this.begin(index, proposal, batch)
    if (!(application instanceof ProposalApplication)) return application
    application.runOrders(Number.POSITIVE_INFINITY)
    return application.finish()
  }

  /**
   * A resumable apply of one proposal (docs/pipeline.md, "The apply loop and
   * the event loop"): the caller runs its orders in bounded slices
   * (`runOrders`), giving the event loop a turn in between, then `finish`es
   * it. Between slices the orders' effects are only in the application's
   * write set: the cache and the batch hold nothing of them until `finish`,
   * so a reader of the cache (admission) never sees half a proposal. What
   * `begin` may change — a rotation, a settings change — moves no value. A
   * stale proposal is decided here and returned as a result, nothing open.
   * Applying in one go (`apply`) or in slices writes the same rows in the
   * same order and returns the same result.
   */
  begin(index: number, proposal: Proposal, batch: WriteBatch): ProposalApplication | ProposalResult {
    invariant(this.open === undefined, () => `apply of index ${index} while index ${this.open?.index} is still being applied`)
    invariant(index === this.applied + 1, () => `apply of index ${index} after ${this.applied}`)
    this.applied = index
    batch.put(metaKey(MetaKey.appliedIndex), Buffer.from(String(index)))
    // Step 2 first: staleness is judged against the generation the index is applied in.
    if (this.cache.enter(index, batch)) batch.put(metaKey(MetaKey.cacheState), encodeCacheState(this.cache.snapshot))
    const stale = this.staleness(index, proposal)
    if (stale !== undefined) return { index, outcome: 'stale', reason: stale }
    if (proposal.cacheSettings !== undefined && proposal.dryRun !== true) {
      this.cache.configure(proposal.cacheSettings)
      batch.put(metaKey(MetaKey.cacheState), encodeCacheState(this.cache.snapshot))
    }
    const seeds = decodeSeeds(proposal)
    this.open = new ProposalApplication(
      index,
      proposal,
      (position, writes) => this.runOrder(index, proposal, position, seeds.values, writes),
      (results) => this.complete(index, proposal, seeds, results, batch),
    )
    return this.open
  }

  /** Contract §2.2 step 1, plus the seed horizon (ADR 0002) and unforeseen rotations (ADR 0007). */
  private staleness(index: number, proposal: Proposal): string | undefined {
    if (proposal.predictedIndex !== index) return `planned for index ${proposal.predictedIndex}, logged at ${index}`
    if (proposal.cacheEpoch !== this.cache.epoch) return `planned for cache epoch ${proposal.cacheEpoch}, now ${this.cache.epoch}`
    let hasSeeds = false
    let hasHits = false
    for (const entry of proposal.coverage) {
      if (entry.seed === undefined) hasHits = true
      else hasSeeds = true
    }
    // Hits were classified for one generation: another one means a rotation the plan did not foresee.
    if (hasHits && proposal.cacheGeneration !== undefined && proposal.cacheGeneration !== this.cache.generation) {
      return `planned for cache generation ${proposal.cacheGeneration}, applied in ${this.cache.generation}`
    }
    if (hasSeeds && proposal.storeIndexAtLoad + 1 < this.cache.gen1FirstIndex) {
      return `seeds read at store index ${proposal.storeIndexAtLoad} are older than the cache horizon (index ${this.cache.gen1FirstIndex})`
    }
    return undefined
  }

  /**
   * Step 3: seeds fill the cache where neither generation holds the key (the
   * cache wins). Done when the proposal completes, just before its flush:
   * until then the gated scope serves the seeds itself where the cache has
   * nothing (absent rows, every seed of a dry run), which reads the same values.
   */
  private preload(proposal: Proposal, seeds: DecodedSeeds, batch: WriteBatch): void {
    // The rows came from the store: only the cache (and its mirror) needs them.
    if (proposal.dryRun === true) return
    for (const [key, attribute] of seeds.rows) this.cache.preload(key, attribute, batch)
  }

  /** Steps 3 and 5–6 once every order ran (or stopped): nothing of the proposal reached the cache or the batch before. */
  private complete(index: number, proposal: Proposal, seeds: DecodedSeeds, run: { results: OrderResult[]; writes: WriteSet }, batch: WriteBatch): ProposalResult {
    invariant(this.open?.index === index, () => `completion of index ${index}, which is not being applied`)
    this.open = undefined
    this.preload(proposal, seeds, batch)
    const results = run.results
    // A dry run executes everything and keeps nothing: no rows, no cache change, no audit entry.
    if (proposal.dryRun === true) return { index, outcome: 'applied', results }
    const failed = results.some((result) => result.status === 'failed')
    const committed = proposal.atomic && failed ? new WriteSet(undefined) : run.writes
    const finalResults = proposal.atomic && failed ? results.map(atomicRollback) : results
    this.flush(committed, batch)
    this.audit(index, proposal, finalResults, batch)
    return { index, outcome: 'applied', results: finalResults }
  }

  /** Step 4 for the order at `position`: through a gated scope, its effects stacked on the proposal's write set. */
  private runOrder(index: number, proposal: Proposal, position: number, seeds: ReadonlyMap<CanonicalKey, AttributeValue | null>, writes: WriteSet): OrderResult {
    const planned = proposal.orders[position]
    invariant(planned !== undefined, () => `order ${position} outside the proposal`)
    const allowed = new Set<CanonicalKey>()
    for (const i of planned.coverageIndexes) {
      const entry = proposal.coverage[i]
      invariant(entry !== undefined, () => `coverage index ${i} outside the plan`)
      allowed.add(entry.key)
    }
    const orderWrites = new WriteSet(writes)
    const scope = new GatedScope(proposal.date, planned.idempotencyKey, allowed, seeds, this.cache, orderWrites)
    const result = this.executePlanned(index, planned, scope, orderWrites)
    if (result.status === 'applied') orderWrites.mergeIntoParent()
    return result
  }

  private executePlanned(index: number, planned: PlannedOrder, scope: GatedScope, writes: WriteSet): OrderResult {
    try {
      const ledger = ledgerOfOrder(planned.order)
      // Idempotency records live in a ledger: an order about no ledger (an exporter) is never proposed with a key.
      invariant(planned.idempotencyKey === undefined || ledger !== undefined, 'an idempotency key on an order about no ledger')
      const ikKey = planned.idempotencyKey === undefined || ledger === undefined ? undefined : idempotencyKey(ledger, planned.idempotencyKey)
      if (ikKey !== undefined) {
        const previous = scope.read(ikKey)
        if (previous !== undefined) {
          invariant(previous.kind === 'i', 'idempotency key holds another kind')
          if (previous.value.requestHash !== planned.requestHash) {
            throw new TallyError({
              code: 'VALIDATION',
              kind: 'validation',
              message: `idempotency key ${JSON.stringify(planned.idempotencyKey)} was already used with a different request`,
            })
          }
          return { status: 'applied', output: previous.value.result as unknown as OrderOutput, idempotencyHit: true }
        }
      }
      const output = this.execute(scope, planned.order)
      if (ikKey !== undefined) {
        writes.values.set(ikKey, { kind: 'i', value: { requestHash: planned.requestHash ?? '', result: output as unknown as Json } })
      }
      return { status: 'applied', output, idempotencyHit: false }
    } catch (error) {
      if (!(error instanceof TallyError)) throw error // invariant violations stop the node
      if (error.code === 'COVERAGE_MISS') this.onCoverageMiss?.(error, index)
      return {
        status: 'failed',
        error: { code: error.code, kind: error.kind, message: error.message, ...(error.details ? { details: error.details } : {}) },
      }
    }
  }

  /**
   * Step 6: attribute rows and cache (with mirror) from the write set, then
   * v2 log rows. A deletion leaves a cache tombstone and removes the store
   * row, so the key reads as absent from either once the tombstone rotates out.
   */
  private flush(writes: WriteSet, batch: WriteBatch): void {
    invariant(writes.parent === undefined, 'only the proposal-level write set is flushed')
    for (const [key, value] of writes.values) {
      if (value === null) {
        this.cache.tombstone(key, batch)
        batch.del(attributeRowKey(key))
        continue
      }
      const attribute = encodeAttribute(value)
      this.cache.put(key, attribute, batch)
      batch.put(attributeRowKey(key), attribute.bytes)
    }
    for (const { ledger, log } of writes.logs) {
      batch.put(logRowKey(ledger, log.id), encodeLogRow(log))
      writeTransactionIndexes(ledger, log, batch)
    }
  }

  private audit(index: number, proposal: Proposal, results: readonly OrderResult[], batch: WriteBatch): void {
    const entry = chainEntry(this.clusterId, this.head, {
      index,
      date: proposal.date,
      proposalId: proposal.id,
      // Everything replay needs besides the plan (which a checker rebuilds from its own state).
      orders: proposal.orders.map(({ order, idempotencyKey, requestHash }) => ({
        order,
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
        ...(requestHash === undefined ? {} : { requestHash }),
      })) as unknown as Json,
      atomic: proposal.atomic,
      continueOnFailure: proposal.continueOnFailure,
      outcome: results.map(auditOutcome),
      idempotencyKeys: proposal.orders.flatMap((planned) => (planned.idempotencyKey === undefined ? [] : [planned.idempotencyKey])),
      ...(proposal.cacheSettings === undefined ? {} : { cacheSettings: cacheSettingsToJson(proposal.cacheSettings) }),
    })
    this.head = { seq: entry.seq, hash: entry.hash }
    batch.put(auditRowKey(entry.seq), entry.row)
    batch.put(metaKey(MetaKey.auditHead), Buffer.from(stringifyJson(this.head), 'utf8'))
  }
}

interface DecodedSeeds {
  /** What the gated scope serves where the cache holds nothing. */
  readonly values: ReadonlyMap<CanonicalKey, AttributeValue | null>
  /** The stored rows the cache takes at completion (absent rows seed nothing). */
  readonly rows: readonly (readonly [CanonicalKey, Attribute])[]
}

function decodeSeeds(proposal: Proposal): DecodedSeeds {
  const values = new Map<CanonicalKey, AttributeValue | null>()
  const rows: [CanonicalKey, Attribute][] = []
  for (const entry of proposal.coverage) {
    if (entry.seed === undefined) continue
    if (entry.seed === null) {
      values.set(entry.key, null)
      continue
    }
    const attribute = decodeAttribute(kindOf(entry.key), Buffer.from(entry.seed, 'base64'))
    values.set(entry.key, attribute.value)
    rows.push([entry.key, attribute])
  }
  return { values, rows }
}

/**
 * One proposal being applied (`LedgerStateMachine.begin`): its orders run in
 * sequence, in as many slices as the caller likes, into a proposal-level
 * write set; `finish` flushes and audits them. Pure like the FSM: slicing is
 * the caller's choice and changes no result and no row.
 */
export class ProposalApplication {
  private next = 0
  private stopped = false
  private finished = false
  private readonly results: OrderResult[] = []
  private readonly writes = new WriteSet(undefined)

  constructor(
    readonly index: number,
    private readonly proposal: Proposal,
    private readonly runOne: (position: number, writes: WriteSet) => OrderResult,
    private readonly completeWith: (run: { results: OrderResult[]; writes: WriteSet }) => ProposalResult,
  ) {}

  /** Orders of the proposal, all of them counted (a skipped one costs nothing, but is counted). */
  get orders(): number {
    return this.proposal.orders.length
  }

  /** Whether every order has run (or been skipped): `finish` may be called. */
  get done(): boolean {
    return this.next >= this.proposal.orders.length
  }

  /** Runs at most `ordersMax` more orders (at least one when any is left); returns `done`. */
  runOrders(ordersMax: number): boolean {
    invariant(!this.finished, () => `index ${this.index} already finished`)
    const end = Math.min(this.proposal.orders.length, this.next + Math.max(1, ordersMax))
    for (; this.next < end; this.next++) {
      if (this.stopped) {
        this.results.push({ status: 'skipped' })
        continue
      }
      const result = this.runOne(this.next, this.writes)
      this.results.push(result)
      if (result.status !== 'applied' && (this.proposal.atomic || !this.proposal.continueOnFailure)) this.stopped = true
    }
    return this.done
  }

  /** Steps 3, 5 and 6: seeds into the cache, the write set flushed, the audit entry; the proposal's result. */
  finish(): ProposalResult {
    invariant(this.done && !this.finished, () => `index ${this.index} finished before all its orders ran, or twice`)
    this.finished = true
    return this.completeWith({ results: this.results, writes: this.writes })
  }
}

function atomicRollback(result: OrderResult): OrderResult {
  if (result.status === 'failed') return result
  return {
    status: 'failed',
    error: { code: 'VALIDATION', kind: 'validation', message: 'not applied: another order of this atomic bulk failed' },
    rolledBack: true,
  }
}

/**
 * What the audit entry attests per order: the status, and for a success the
 * ids it produced (everything else is recomputed by replay; keeping entries
 * small keeps the apply loop fast).
 */
function auditOutcome(result: OrderResult): Json {
  switch (result.status) {
    case 'applied': {
      const output = result.output
      const ids: Record<string, Json> =
        output.type === 'TRANSACTION'
          ? { transactionId: (output.transaction as { id: bigint }).id, logId: output.logId }
          : (output.type === 'METADATA' && output.logId !== null) || output.type === 'SCHEMA'
            ? { logId: output.logId }
            : {}
      return { status: 'applied', idempotencyHit: result.idempotencyHit, ...ids }
    }
    case 'failed':
      return { status: 'failed', code: result.error.code, message: result.error.message }
    case 'skipped':
      return { status: 'skipped' }
    default: {
      const never: never = result
      throw new InvariantViolation(`unknown result ${JSON.stringify(never)}`)
    }
  }
}

/** The cache-state meta row: one encoding, written at creation, rotations and settings changes. */
export function encodeCacheState(state: CacheState): Buffer {
  return Buffer.from(
    stringifyJson({
      generation: state.generation,
      epoch: state.epoch,
      rotationThreshold: state.settings.rotationThreshold,
      generationBytesMax: state.settings.generationBytesMax,
      gen0FirstIndex: state.gen0FirstIndex,
      gen1FirstIndex: state.gen1FirstIndex,
    }),
    'utf8',
  )
}

/**
 * Reads the cache-state row back. Rows written before the byte budget hold
 * only `{generation, epoch, rotationThreshold}`: generations then started
 * every K indexes and nothing bounded bytes.
 */
export function decodeCacheState(row: Buffer): CacheState {
  const json = parseJson(row.toString('utf8'))
  invariant(isJsonObject(json), 'the cache state is not an object')
  const settings = cacheSettingsFromJson(json)
  const generation = Number(json.generation)
  const epoch = Number(json.epoch)
  invariant(Number.isSafeInteger(generation) && generation >= 0 && Number.isSafeInteger(epoch) && epoch >= 0, 'the cache state has a bad generation or epoch')
  const K = settings.rotationThreshold
  const gen0FirstIndex = json.gen0FirstIndex === undefined ? generation * K + 1 : Number(json.gen0FirstIndex)
  const gen1FirstIndex = json.gen1FirstIndex === undefined ? Math.max(1, (generation - 1) * K + 1) : Number(json.gen1FirstIndex)
  invariant(Number.isSafeInteger(gen0FirstIndex) && Number.isSafeInteger(gen1FirstIndex) && 1 <= gen1FirstIndex && gen1FirstIndex <= gen0FirstIndex, 'the cache state has bad generation bounds')
  return { settings, epoch, generation, gen0FirstIndex, gen1FirstIndex }
}
