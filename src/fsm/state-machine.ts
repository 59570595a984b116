import type { Attribute, AttributeValue, CanonicalKey, Json } from '../domain/index.ts'
import {
  InvariantViolation,
  PackedItems,
  TallyError,
  decodeAttribute,
  encodeAttribute,
  idempotencyKey,
  invariant,
  isJsonObject,
  kindOf,
  packItems,
  parseJson,
  stringifyJson,
} from '../domain/index.ts'
import type { ErrorCode, ErrorKind } from '../domain/index.ts'
import type { AttributeCache, CacheState } from '../cache/index.ts'
import { cacheState } from '../cache/index.ts'
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
  /** What the open proposal's steps work on (set by `begin`, cleared at completion). */
  private context: OpenProposal | undefined
  /**
   * The steps every proposal's application calls, made once: they work on
   * `context`, so a proposal makes no closures of its own (tsx's `keepNames`
   * makes each named closure a `defineProperty` call besides).
   */
  private readonly steps: ApplicationSteps

  constructor(options: StateMachineOptions) {
    this.cache = options.cache
    this.clusterId = options.clusterId
    this.applied = options.appliedIndex
    this.head = options.auditHead
    this.onCoverageMiss = options.onCoverageMiss
    this.execute = options.execute ?? executeOrder
    this.steps = {
      runOrder: (position, writes) => {
        const context = this.opened()
        const { index, proposal } = context
        const planned = proposal.orders[position]
        if (planned === undefined) throw new InvariantViolation(`order ${position} outside the proposal`)
        let scope = context.scope
        if (scope === undefined) scope = context.scope = new GatedScope(proposal.date, planned.idempotencyKey, proposal.coverage, planned.coverageIndexes, context.seeds.values, this.cache, writes)
        else scope.nextOrder(planned.idempotencyKey, planned.coverageIndexes)
        return this.runOrder(index, proposal, planned, scope, writes)
      },
      stageValue: (key, value) => stageValue(key, value, this.opened().batch),
      stageLog: (entry) => stageLog(entry, this.opened().batch),
      // Step 3: seeds fill the cache where neither generation holds the key (the cache wins).
      preload: (key, attribute) => this.cache.preload(key, attribute, this.opened().batch),
      // Step 6, the cache's part. A deletion leaves a cache tombstone (its store row is deleted by the staged rows).
      cacheValue: (key, attribute) => (attribute === null ? this.cache.tombstone(key, this.opened().batch) : this.cache.put(key, attribute, this.opened().batch)),
      complete: (run) => {
        const { index, proposal, batch } = this.opened()
        return this.complete(index, proposal, run, batch)
      },
    }
  }

  /** The open proposal's context (a step outside an open proposal is a bug). */
  private opened(): OpenProposal {
    const context = this.context
    invariant(context !== undefined, 'a proposal step while no proposal is open')
    return context
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
    application.advance(Number.POSITIVE_INFINITY)
    return application.finish()
  }

  /**
   * A resumable apply of one proposal (docs/pipeline.md, "The apply loop and
   * the event loop"): the caller `advance`s it in bounded slices — its
   * orders, then the store rows of its effects — giving the event loop a
   * turn in between, then `finish`es it. Its effects reach the cache only in
   * the last phases (seeds, then values); while `cacheUnsettled` the caller
   * holds the cache's other reader (admission, `LedgerNode`), so nobody plans
   * on half a proposal. What `begin` may change — a rotation, a
   * settings change — moves no value. A stale proposal is decided here and
   * returned as a result, nothing open. Applying in one go (`apply`) or in
   * slices writes the same rows and returns the same result.
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
    // One gated scope for the proposal's orders, each in turn (made with the first order).
    this.context = { index, proposal, batch, seeds: decodeSeeds(proposal), scope: undefined }
    this.open = new ProposalApplication(index, proposal, this.context.seeds.rows, this.steps)
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

  /** The audit entry once everything else is done (its items packed ahead by the application); the proposal's result. */
  private complete(index: number, proposal: Proposal, run: CompletedRun, batch: WriteBatch): ProposalResult {
    invariant(this.open?.index === index, () => `completion of index ${index}, which is not being applied`)
    this.open = undefined
    this.context = undefined
    // A dry run executes everything and keeps nothing: no rows, no cache change, no audit entry.
    if (proposal.dryRun === true) return { index, outcome: 'applied', results: run.results }
    this.audit(index, proposal, run, batch)
    return { index, outcome: 'applied', results: run.results }
  }

  /** Step 4 for one order: through the proposal's gated scope (set to this order), its effects stacked on the proposal's write set. */
  private runOrder(index: number, proposal: Proposal, planned: PlannedOrder, scope: GatedScope, writes: WriteSet): OrderResult {
    for (const i of planned.coverageIndexes) {
      if (proposal.coverage[i] === undefined) throw new InvariantViolation(`coverage index ${i} outside the plan`)
    }
    writes.beginOrder()
    let result: OrderResult | undefined
    try {
      result = this.executePlanned(index, planned, scope, writes)
    } finally {
      // A failed order leaves nothing (an invariant violation stops the node: nothing to keep either).
      writes.endOrder(result?.status === 'applied')
    }
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
        writes.set(ikKey, { kind: 'i', value: { requestHash: planned.requestHash ?? '', result: output as unknown as Json } })
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

  private audit(index: number, proposal: Proposal, run: CompletedRun, batch: WriteBatch): void {
    const entry = chainEntry(this.clusterId, this.head, {
      index,
      date: proposal.date,
      proposalId: proposal.id,
      // Everything replay needs besides the plan (which a checker rebuilds from its own state):
      // `auditOrder` and `auditOutcome` of each order, packed ahead (the same bytes as in place).
      orders: run.auditOrders as unknown as Json,
      atomic: proposal.atomic,
      continueOnFailure: proposal.continueOnFailure,
      outcome: run.auditOutcomes as unknown as Json,
      idempotencyKeys: proposal.orders.flatMap((planned) => (planned.idempotencyKey === undefined ? [] : [planned.idempotencyKey])),
      ...(proposal.cacheSettings === undefined ? {} : { cacheSettings: cacheSettingsToJson(proposal.cacheSettings) }),
    })
    this.head = { seq: entry.seq, hash: entry.hash }
    batch.putNew(auditRowKey(entry.seq), entry.row)
    batch.put(metaKey(MetaKey.auditHead), Buffer.from(stringifyJson(this.head), 'utf8'))
  }
}

/** The proposal `begin` opened: what its steps need besides the application's own state. */
interface OpenProposal {
  readonly index: number
  readonly proposal: Proposal
  readonly batch: WriteBatch
  readonly seeds: DecodedSeeds
  /** The proposal's one gated scope, made for its first order and set to each next one. */
  scope: GatedScope | undefined
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
    const seed: unknown = entry.seed
    // A seed is the stored row's bytes (a bytes item of the record); anything else is a record this build did not write.
    invariant(seed instanceof Uint8Array, () => `seed of ${JSON.stringify(entry.key)} is not a stored row`)
    const attribute = decodeAttribute(kindOf(entry.key), Buffer.isBuffer(seed) ? seed : Buffer.from(seed.buffer, seed.byteOffset, seed.byteLength))
    values.set(entry.key, attribute.value)
    rows.push([entry.key, attribute])
  }
  return { values, rows }
}

/**
 * Step 6, the store's part, for one written key: its attribute row (put, or
 * deleted) into the batch; returns the encoded attribute the cache takes at
 * completion (null: a deletion).
 */
function stageValue(key: CanonicalKey, value: AttributeValue | null, batch: WriteBatch): Attribute | null {
  if (value === null) {
    batch.del(attributeRowKey(key))
    return null
  }
  const attribute = encodeAttribute(value)
  batch.put(attributeRowKey(key), attribute.bytes)
  return attribute
}

/** Step 6 for one v2 log: its row and the transaction's secondary index rows. */
function stageLog({ ledger, log }: WriteSet['logs'][number], batch: WriteBatch): void {
  // A log id is used once: its row and its index rows are new rows of the batch.
  batch.putNew(logRowKey(ledger, log.id), encodeLogRow(log))
  writeTransactionIndexes(ledger, log, batch)
}

/** What a proposal's application hands to its completion. */
interface CompletedRun {
  /** Final per-order results (an atomic proposal that failed: every order failed or rolled back). */
  readonly results: OrderResult[]
  /** The audit body's `orders` and `outcome` items (`auditOrder`, `auditOutcome`), packed canonically. */
  readonly auditOrders: PackedItems
  readonly auditOutcomes: PackedItems
}

interface ApplicationSteps {
  runOrder(position: number, writes: WriteSet): OrderResult
  stageValue(key: CanonicalKey, value: AttributeValue | null): Attribute | null
  stageLog(entry: WriteSet['logs'][number]): void
  preload(key: CanonicalKey, attribute: Attribute): void
  cacheValue(key: CanonicalKey, attribute: Attribute | null): void
  complete(run: CompletedRun): ProposalResult
}

type Phase = 'orders' | 'rows' | 'seeds' | 'cache' | 'audit' | 'done'

/**
 * One proposal being applied (`LedgerStateMachine.begin`), one unit of work
 * at a time, in as many slices as the caller likes:
 *
 *  1. `orders`: each order runs (step 4) into the proposal's write set;
 *  2. `rows`: the store rows of what is kept (attribute, log and index rows)
 *     are staged into the batch, which nobody reads before it is written;
 *  3. `seeds`, `cache`: the seeds, then the kept effects, go into the cache
 *     (steps 3 and 6). While this phase is under way (`cacheUnsettled`) the
 *     cache holds part of the proposal: the caller keeps readers of the
 *     cache waiting until it ends;
 *  4. `audit`: the audit body's items are packed;
 *
 * then `finish` writes the audit entry and returns the result. Pure like the
 * FSM: slicing is the caller's choice and changes no result and no row.
 */
export class ProposalApplication {
  private phase: Phase = 'orders'
  private cursor = 0
  private stopped = false
  private results: OrderResult[] = []
  private readonly writes = new WriteSet()
  private kept: WriteSet = this.writes
  /** The kept write set's keys, in its order (values read from it as they are staged). */
  private keptKeys: CanonicalKey[] = []
  private readonly staged: (Attribute | null)[] = []
  private readonly auditOrders: Buffer[] = []
  private readonly auditOutcomes: Buffer[] = []
  private finished = false

  constructor(
    readonly index: number,
    private readonly proposal: Proposal,
    private readonly seedRows: readonly (readonly [CanonicalKey, Attribute])[],
    private readonly steps: ApplicationSteps,
  ) {}

  /** Whether only `finish` is left. */
  get done(): boolean {
    return this.phase === 'done'
  }

  /** Whether the cache holds part of the proposal's effects (seeds or values) but not all of them yet. */
  get cacheUnsettled(): boolean {
    return (this.phase === 'seeds' && this.cursor > 0) || this.phase === 'cache'
  }

  /** Does at most `unitsMax` more units of work (at least one when any is left); returns `done`. */
  advance(unitsMax: number): boolean {
    invariant(!this.finished, () => `index ${this.index} already finished`)
    let budget = Math.max(1, unitsMax)
    while (budget > 0 && this.phase !== 'done') budget = this.step(budget)
    return this.done
  }

  /** Steps 5 and 6 are done: the audit entry; the proposal's result. */
  finish(): ProposalResult {
    invariant(this.done && !this.finished, () => `index ${this.index} finished before all its work was done, or twice`)
    this.finished = true
    return this.steps.complete({
      results: this.results,
      auditOrders: new PackedItems(this.proposal.orders.length, this.auditOrders),
      auditOutcomes: new PackedItems(this.results.length, this.auditOutcomes),
    })
  }

  /** Works within `budget` units in the current phase; returns the budget left. */
  private step(budget: number): number {
    switch (this.phase) {
      case 'orders': {
        const orders = this.proposal.orders
        for (; this.cursor < orders.length && budget > 0; this.cursor++, budget--) {
          if (this.stopped) {
            this.results.push({ status: 'skipped' })
            continue
          }
          const result = this.steps.runOrder(this.cursor, this.writes)
          this.results.push(result)
          if (result.status !== 'applied' && (this.proposal.atomic || !this.proposal.continueOnFailure)) this.stopped = true
        }
        if (this.cursor === orders.length) this.decide()
        return budget
      }
      case 'rows': {
        const keys = this.keptKeys
        const values = this.kept.values
        for (; this.cursor < keys.length && budget > 0; this.cursor++, budget--) {
          const key = keys[this.cursor] as CanonicalKey
          const value = values.get(key)
          invariant(value !== undefined, 'a kept key has a value (or a deletion)')
          this.staged.push(this.steps.stageValue(key, value))
        }
        const logs = this.kept.logs
        for (; this.cursor >= keys.length && this.cursor - keys.length < logs.length && budget > 0; this.cursor++, budget--) {
          this.steps.stageLog(logs[this.cursor - keys.length] as WriteSet['logs'][number])
        }
        if (this.cursor === keys.length + logs.length) this.enter('seeds')
        return budget
      }
      case 'seeds': {
        for (; this.cursor < this.seedRows.length && budget > 0; this.cursor++, budget--) {
          const [key, attribute] = this.seedRows[this.cursor] as readonly [CanonicalKey, Attribute]
          this.steps.preload(key, attribute)
        }
        if (this.cursor === this.seedRows.length) this.enter('cache')
        return budget
      }
      case 'cache': {
        const keys = this.keptKeys
        for (; this.cursor < keys.length && budget > 0; this.cursor++, budget--) {
          this.steps.cacheValue(keys[this.cursor] as CanonicalKey, this.staged[this.cursor] as Attribute | null)
        }
        if (this.cursor === keys.length) this.enter('audit')
        return budget
      }
      case 'audit': {
        // Orders, then outcomes, a slice of items per unit of budget's worth.
        const orders = this.proposal.orders
        const total = orders.length + this.results.length
        const end = Math.min(total, this.cursor + budget)
        if (this.cursor < orders.length) {
          const to = Math.min(end, orders.length)
          this.auditOrders.push(packItems(orders.slice(this.cursor, to).map(auditOrder), true))
          budget -= to - this.cursor
          this.cursor = to
        }
        if (this.cursor >= orders.length && this.cursor < end) {
          const from = this.cursor - orders.length
          const to = end - orders.length
          this.auditOutcomes.push(packItems(this.results.slice(from, to).map(auditOutcome), true))
          budget -= to - from
          this.cursor = end
        }
        if (this.cursor === total) this.enter('done')
        return budget
      }
      case 'done':
        return budget
      default: {
        const never: never = this.phase
        throw new InvariantViolation(`unknown phase ${String(never)}`)
      }
    }
  }

  /** Once every order ran: what is kept (nothing of an atomic proposal with a failure), and the final results. */
  private decide(): void {
    const failed = this.results.some((result) => result.status === 'failed')
    const rolledBack = this.proposal.atomic && failed
    this.kept = rolledBack ? new WriteSet() : this.writes
    this.keptKeys = [...this.kept.values.keys()]
    // A dry run keeps its results as they ran, and nothing else: no rows, no cache change, no audit entry.
    if (this.proposal.dryRun === true) {
      this.enter('done')
      return
    }
    if (rolledBack) this.results = this.results.map(atomicRollback)
    this.enter('rows')
  }

  private enter(phase: Phase): void {
    this.phase = phase
    this.cursor = 0
  }
}

/** An order as the audit body records it: everything replay needs besides the plan (which a checker rebuilds from its own state). Exported for its test. */
export function auditOrder({ order, idempotencyKey, requestHash }: PlannedOrder): Json {
  // Absent fields left out (the audit body packs keys sorted, so their order changes no byte).
  const entry: { order: Order; idempotencyKey?: string; requestHash?: string } = { order }
  if (idempotencyKey !== undefined) entry.idempotencyKey = idempotencyKey
  if (requestHash !== undefined) entry.requestHash = requestHash
  return entry as unknown as Json
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
 * small keeps the apply loop fast). Exported for its test.
 */
export function auditOutcome(result: OrderResult): Json {
  switch (result.status) {
    case 'applied': {
      // Built whole, without a spread of the ids (the audit body packs keys sorted).
      const output = result.output
      if (output.type === 'TRANSACTION') {
        return { status: 'applied', idempotencyHit: result.idempotencyHit, transactionId: (output.transaction as { id: bigint }).id, logId: output.logId }
      }
      if ((output.type === 'METADATA' && output.logId !== null) || output.type === 'SCHEMA') {
        return { status: 'applied', idempotencyHit: result.idempotencyHit, logId: output.logId as bigint }
      }
      return { status: 'applied', idempotencyHit: result.idempotencyHit }
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
  return cacheState(settings, epoch, generation, gen0FirstIndex, gen1FirstIndex)
}
