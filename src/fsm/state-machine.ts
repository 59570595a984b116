import type { AttributeValue, CanonicalKey, Json } from '../domain/index.ts'
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

    const seeds = this.preload(proposal, batch)
    const proposalWrites = new WriteSet(undefined)
    const results = this.runOrders(index, proposal, seeds, proposalWrites)
    // A dry run executes everything and keeps nothing: no rows, no cache change, no audit entry.
    if (proposal.dryRun === true) return { index, outcome: 'applied', results }
    const failed = results.some((result) => result.status === 'failed')
    const committed = proposal.atomic && failed ? new WriteSet(undefined) : proposalWrites
    const finalResults = proposal.atomic && failed ? results.map(atomicRollback) : results
    this.flush(committed, batch)
    this.audit(index, proposal, finalResults, batch)
    return { index, outcome: 'applied', results: finalResults }
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
   * cache wins). Returns the seeds for the gated scope, which serves them only
   * where the cache has nothing: absent rows, and every seed of a dry run,
   * which leaves the cache untouched.
   */
  private preload(proposal: Proposal, batch: WriteBatch): Map<CanonicalKey, AttributeValue | null> {
    const seeds = new Map<CanonicalKey, AttributeValue | null>()
    for (const entry of proposal.coverage) {
      if (entry.seed === undefined) continue
      if (entry.seed === null) {
        seeds.set(entry.key, null)
        continue
      }
      const attribute = decodeAttribute(kindOf(entry.key), Buffer.from(entry.seed, 'base64'))
      seeds.set(entry.key, attribute.value)
      // The row came from the store: only the cache (and its mirror) needs it.
      if (proposal.dryRun !== true) this.cache.preload(entry.key, attribute, batch)
    }
    return seeds
  }

  private runOrders(index: number, proposal: Proposal, seeds: ReadonlyMap<CanonicalKey, AttributeValue | null>, writes: WriteSet): OrderResult[] {
    const results: OrderResult[] = []
    let stopped = false
    for (const planned of proposal.orders) {
      if (stopped) {
        results.push({ status: 'skipped' })
        continue
      }
      const allowed = new Set<CanonicalKey>()
      for (const i of planned.coverageIndexes) {
        const entry = proposal.coverage[i]
        invariant(entry !== undefined, () => `coverage index ${i} outside the plan`)
        allowed.add(entry.key)
      }
      const orderWrites = new WriteSet(writes)
      const scope = new GatedScope(proposal.date, planned.idempotencyKey, allowed, seeds, this.cache, orderWrites)
      const result = this.runOrder(index, planned, scope, orderWrites)
      results.push(result)
      if (result.status === 'applied') orderWrites.mergeIntoParent()
      else if (proposal.atomic || !proposal.continueOnFailure) stopped = true
    }
    return results
  }

  private runOrder(index: number, planned: PlannedOrder, scope: GatedScope, writes: WriteSet): OrderResult {
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
