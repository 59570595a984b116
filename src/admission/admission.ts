import type { AttributeValue, CanonicalKey } from '../domain/index.ts'
import { InvariantViolation, PackedItems, TallyError, decodeAttribute, invariant, kindOf } from '../domain/index.ts'
import type { AttributeCache, CacheSettings } from '../cache/index.ts'
import type { KnownValue, ProposedOrder } from '../orders/index.ts'
import { needsReadValues } from '../orders/index.ts'
import { planRoundInSlices } from './speculation.ts'
import type { CoverageEntry, OrderResult, PlannedOrder, Proposal, ProposalResult } from '../fsm/index.ts'
import { coverageSeed, encodeProposal, planCoverage, packProposalOrders, proposalOrdersMax } from '../fsm/index.ts'
import type { ShortReader, StoreReader } from '../store/index.ts'
import { attributeRowKey } from '../store/index.ts'

/** Where admission appends: the log assigns indexes and reports apply results. */
export interface Sequencer {
  /** The index the next append will get. */
  nextIndex(): number
  /**
   * Synchronous: appends and returns the index, which equals `nextIndex()` at
   * call time. `proposal` is what `payload` encodes: the log may hand it to
   * the FSM instead of decoding its own bytes again (the bytes stay the
   * source of truth for replay and replicas).
   */
  append(payload: Buffer, proposal?: Proposal): number
  /** Resolves once `index` is durable, applied and stored. */
  result(index: number): Promise<ProposalResult>
  /**
   * `result` through a callback: `waiter` is called, exactly once, in the
   * stretch that delivers the result (synchronously if it is already known).
   * A gathering's members are answered there, with no promise turn between
   * the result and their answers: a single node sends them before it hands
   * the batch to the store (ADR 0005). Optional: `result` serves without it.
   */
  resultTo?(index: number, waiter: ResultWaiter): void
  /** Highest index whose effects are in the store (reads at least this state). */
  storeIndex(): number
  /** The largest payload one append accepts (the log's record bound). */
  payloadBytesMax(): number
}

/** Told a proposal's result, or why there is none (`Sequencer.resultTo`). Must not throw. */
export interface ResultWaiter {
  resolve(result: ProposalResult): void
  reject(error: Error): void
}

export interface AdmissionOptions {
  readonly cache: AttributeCache
  /** With `getManySync`, a load of at most `syncReadKeysMax` rows is read on the JavaScript thread. */
  readonly store: StoreReader & Partial<Pick<ShortReader, 'getManySync'>>
  readonly sequencer: Sequencer
  readonly now: () => number
  readonly newId: () => string
  /** Bound on proposals admitted but not yet applied. */
  readonly inFlightMax?: number
  /** Orders planned between two turns of the event loop (default `planSliceOrdersDefault`). */
  readonly planSliceOrders?: number
  /** Gives the event loop a turn (default: one `setImmediate`); tests may observe it. */
  readonly turn?: () => Promise<void>
  /**
   * While a proposal's effects are going into the cache in slices (the apply
   * loop, `ProposalApplication.cacheUnsettled`): a promise that settles when
   * they all are; undefined otherwise. Admission reads the cache only when
   * this is undefined, in the same synchronous stretch.
   */
  readonly cacheUnsettled?: () => Promise<void> | undefined
  /**
   * Bound on the orders gathered into one proposal from concurrent
   * single-order submits (default `gatherOrdersMaxDefault`; 1: every submit
   * is a proposal of its own). docs/pipeline.md, "Gathering single writes".
   */
  readonly gatherOrdersMax?: number
  /** Bound on a gathered proposal's log record: a larger one is planned again as two halves (default `gatherBytesMaxDefault`). */
  readonly gatherBytesMax?: number
  /**
   * Planning reads of at most this many rows (needs, seeds) are read on the
   * JavaScript thread when the store can (default `syncReadKeysMaxDefault`;
   * 0: always through the thread pool, with a turn of the event loop).
   */
  readonly syncReadKeysMax?: number
}

/** Orders planned between two turns of the event loop: a few ms of planning. */
export const planSliceOrdersDefault = 256
/** Single-order submits gathered into one proposal at most (one planning slice, one store batch's orders). */
export const gatherOrdersMaxDefault = 256
/** A gathered proposal's log record at most: ~4 KiB per order of a full gathering. */
export const gatherBytesMaxDefault = 1024 * 1024
/**
 * Planning loads of up to this many rows are read on the JavaScript thread:
 * a few µs each from the memtable or block cache, where a thread-pool round
 * trip costs two thread wake-ups and a turn of the event loop, a fixed cost
 * of every small proposal (docs/performance.md, "A proposal's fixed cost").
 * Larger loads (bulks) stay on the pool, off the event loop.
 */
export const syncReadKeysMaxDefault = 32

export interface SubmitOptions {
  readonly atomic: boolean
  readonly continueOnFailure: boolean
  /**
   * The proposal's date (RFC 3339, as `toISOString` prints it) instead of the
   * admission clock: a log import replays each log at its original date.
   */
  readonly date?: string
  /** Execute through the whole pipeline, apply and audit nothing (v2 `dryRun`). */
  readonly dryRun?: boolean
}

/** What admission reports for metrics (once per proposal, never per key). */
export interface AdmissionObserver {
  proposalAppended(orders: number, cacheHits: number, cacheMisses: number): void
  horizonRefused(): void
}

const unobserved: AdmissionObserver = { proposalAppended() {}, horizonRefused() {} }

/**
 * How a single-order submit made by `submitSingle` is answered: exactly once,
 * with its order's outcome or with the error that refused it. It must not
 * throw: the members of a gathering are answered one after another in one
 * synchronous stretch.
 */
export type SingleAnswer = (error: unknown, result?: OrderResult) => void

/** A single-order submit waiting in a gathering for its proposal. */
interface Gathered {
  readonly proposed: ProposedOrder
  readonly options: SubmitOptions
  readonly answer: SingleAnswer
  /** Counted in `inFlight` until answered (a `submitSingle`; a `submit` counts itself). */
  readonly counted: boolean
  answered: boolean
}

/**
 * A gathered proposal: its orders are each other's strangers, so none is
 * atomic with another and a failed one stops nothing (each keeps its own
 * outcome, as a proposal of its own would).
 */
const gatheredOptions: SubmitOptions = { atomic: false, continueOnFailure: true }

/** Bounds planning rounds: a Numscript chain of meta() lookups may need several loads. */
const planRoundsMax = 8
const staleRetriesMax = 8

/**
 * Admission (contract §2.1): turns validated orders into a proposal whose plan
 * declares every attribute the FSM will touch, with seeds for what the cache
 * will not hold, then appends it and waits for the FSM's result.
 */
export class Admission {
  private inFlight = 0
  private readonly inFlightMax: number
  /** Set by whoever exposes metrics; admission never depends on it. */
  observer: AdmissionObserver = unobserved
  /**
   * Debug (a latency trace, `src/server/latency-trace.ts`): told when a
   * gathering's proposal is appended, with when its first submit arrived
   * (`performance.now()`) and its orders. Undefined: one comparison per gathering.
   */
  onGatheringAppended: ((firstSubmitMs: number, orders: number) => void) | undefined = undefined

  private readonly planSliceOrders: number
  private readonly syncReadKeysMax: number
  private readonly turn: () => Promise<void>
  private readonly gatherOrdersMax: number
  private readonly gatherBytesMax: number
  /** Single-order submits of this turn, not yet proposed. */
  private gathering: Gathered[] = []
  private gatherScheduled = false
  /** When the current gathering's first submit arrived (only kept while `onGatheringAppended` is set). */
  private gatheringSinceMs = 0

  constructor(private readonly options: AdmissionOptions) {
    this.inFlightMax = options.inFlightMax ?? 16_384
    this.planSliceOrders = Math.max(1, options.planSliceOrders ?? planSliceOrdersDefault)
    this.turn = options.turn ?? nextTurn
    this.gatherOrdersMax = options.gatherOrdersMax ?? gatherOrdersMaxDefault
    this.gatherBytesMax = options.gatherBytesMax ?? gatherBytesMaxDefault
    this.syncReadKeysMax = options.store.getManySync === undefined ? 0 : (options.syncReadKeysMax ?? syncReadKeysMaxDefault)
    invariant(Number.isSafeInteger(this.gatherOrdersMax) && this.gatherOrdersMax >= 1, 'gatherOrdersMax is a positive integer')
    invariant(this.gatherOrdersMax <= proposalOrdersMax, 'a gathering fits in one proposal')
    invariant(Number.isSafeInteger(this.gatherBytesMax) && this.gatherBytesMax >= 1, 'gatherBytesMax is a positive integer')
  }

  /**
   * Concurrent submits have no order among themselves: each is appended when
   * its planning is done, and a stale one is appended again after others
   * (contract §2.1). A caller that needs its writes in order — an import,
   * whose log ids must be the ledger's own — uses a `SubmitSequence`.
   */
  async submit(orders: readonly ProposedOrder[], options: SubmitOptions): Promise<readonly OrderResult[]> {
    this.admit(orders)
    this.inFlight++
    try {
      const [single] = orders
      if (orders.length === 1 && single !== undefined && this.gathers(options)) return [await this.gather(single, options)]
      return await this.proposeUntilSettled(orders, options, undefined)
    } finally {
      this.inFlight--
    }
  }

  /**
   * One order, answered through `answer` instead of a promise: what
   * `submit([proposed], options)` would resolve with (its one result) or
   * reject with. A gathered submit costs no promise of its own, and no turn
   * of the microtask queue between its proposal's result and its answer
   * (docs/performance.md, "Single writes at 64 connections").
   */
  submitSingle(proposed: ProposedOrder, options: SubmitOptions, answer: SingleAnswer): void {
    if (!this.gathers(options)) {
      this.submit([proposed], options).then(
        (results) => answer(undefined, results[0]),
        (error: unknown) => answer(error),
      )
      return
    }
    try {
      this.admit([proposed])
    } catch (error) {
      answer(error)
      return
    }
    this.inFlight++
    this.enterGathering({ proposed, options, answer, counted: true, answered: false })
  }

  /**
   * A new sequence of submits appended in the order they are made
   * (`SubmitSequence`): several may be planned at once, each is appended only
   * once the one before it was applied.
   */
  sequence(): SubmitSequence {
    return new SubmitSequence((orders, options, previous) => this.submitAfter(orders, options, previous))
  }

  /** A sequence's submit: `previous` settles true once the submit before it was applied, false if it failed. */
  private async submitAfter(orders: readonly ProposedOrder[], options: SubmitOptions, previous: Promise<boolean>): Promise<readonly OrderResult[]> {
    this.admit(orders)
    this.inFlight++
    try {
      // An order whose needs read values (a revert, a script) is planned on its predecessors' effects, applied.
      if (orders.some((proposed) => needsReadValues(proposed.order)) && !(await previous)) throw sequenceBroken()
      return await this.proposeUntilSettled(orders, options, previous)
    } finally {
      this.inFlight--
    }
  }

  /** The bounds every submit meets before anything is planned. */
  private admit(orders: readonly ProposedOrder[]): void {
    invariant(orders.length > 0, 'a proposal has at least one order')
    if (orders.length > proposalOrdersMax) {
      throw new TallyError({ code: 'BULK_SIZE_EXCEEDED', kind: 'validation', message: `more than ${proposalOrdersMax} orders` })
    }
    if (this.inFlight >= this.inFlightMax) {
      throw new TallyError({ code: 'RESOURCE_EXHAUSTED', kind: 'unavailable', message: 'too many writes in flight, retry' })
    }
  }

  /** Proposes until the proposal is applied (a stale one, or a script whose inputs moved, is proposed again). */
  private async proposeUntilSettled(orders: readonly ProposedOrder[], options: SubmitOptions, appendAfter: Promise<boolean> | undefined): Promise<readonly OrderResult[]> {
    for (let attempt = 0; attempt < staleRetriesMax; attempt++) {
      const index = await this.propose(orders, options, undefined, appendAfter)
      invariant(index !== 'split', 'only a gathering is split')
      const result = await this.options.sequencer.result(index)
      if (result.outcome !== 'applied') continue
      // A script whose inputs moved is retried whole when nothing else of the proposal was kept.
      const retryable = (options.atomic || orders.length === 1) && result.results.some(isStaleInputs)
      if (!retryable) return result.results
    }
    throw staleRepeatedly()
  }

  /**
   * Whether a single-order submit may share a proposal with others: never a
   * dry run (it would see the others' effects, or they its), nor one dated
   * by its caller (a proposal has one date).
   */
  private gathers(options: SubmitOptions): boolean {
    return this.gatherOrdersMax > 1 && options.dryRun !== true && options.date === undefined
  }

  /**
   * Single-order submits that arrive within one turn of the event loop go
   * into one proposal (up to `gatherOrdersMax` orders): one plan, one log
   * record, one audit entry, one result for all of them, each order keeping
   * its own outcome.
   */
  private gather(proposed: ProposedOrder, options: SubmitOptions): Promise<OrderResult> {
    return new Promise((resolve, reject) => {
      this.enterGathering({
        proposed,
        options,
        answer: (error, result) => (result === undefined ? reject(error) : resolve(result)),
        counted: false,
        answered: false,
      })
    })
  }

  private enterGathering(member: Gathered): void {
    if (this.gathering.length === 0 && this.onGatheringAppended !== undefined) this.gatheringSinceMs = performance.now()
    this.gathering.push(member)
    if (this.gathering.length >= this.gatherOrdersMax) this.closeGathering()
    else if (!this.gatherScheduled) {
      // After the poll phase: every request read in this turn has reached admission by then.
      this.gatherScheduled = true
      setImmediate(() => {
        this.gatherScheduled = false
        this.closeGathering()
      })
    }
  }

  /** Answers a member once; later answers (an error after its result) are ignored. */
  private answerGathered(member: Gathered, error: unknown, result?: OrderResult): void {
    if (member.answered) return
    member.answered = true
    if (member.counted) this.inFlight--
    try {
      member.answer(error, result)
    } catch (thrown) {
      // Not on this stack: the other members of the gathering are still answered. A caller's answer that throws is a defect.
      queueMicrotask(() => {
        throw new InvariantViolation(`a single submit's answer threw: ${thrown instanceof Error ? (thrown.stack ?? thrown.message) : String(thrown)}`)
      })
    }
  }

  private closeGathering(): void {
    const members = this.gathering
    if (members.length === 0) return
    this.gathering = []
    void this.settleGathered(members, this.gatheringSinceMs)
  }

  /** Answers every member, whatever happens (never rejects itself). */
  private async settleGathered(members: readonly Gathered[], sinceMs?: number): Promise<void> {
    try {
      await this.proposeGathered(members, sinceMs)
    } catch (error) {
      // Members already answered ignore this.
      for (const member of members) this.answerGathered(member, error)
    }
  }

  /**
   * A gathering of one is proposed as its submit asked, so its log record
   * and audit entry are those of an ungathered submit. A larger one is one
   * non-atomic proposal; afterwards, an order whose script inputs moved
   * (`STALE_INPUTS`: nothing of it was kept) is planned again with the
   * others that need it, each member within its own bound of attempts.
   */
  private async proposeGathered(members: readonly Gathered[], sinceMs?: number): Promise<void> {
    let pending = members
    for (let attempt = 0; attempt < staleRetriesMax; attempt++) {
      const [alone] = pending
      invariant(alone !== undefined, 'a gathering has a member')
      const options = pending.length === 1 ? alone.options : gatheredOptions
      let index: number | 'split'
      try {
        index = await this.propose(
          pending.map((member) => member.proposed),
          options,
          pending.length === 1 ? undefined : this.gatherBytesMax,
        )
      } catch (error) {
        if (pending.length === 1 || error instanceof InvariantViolation) throw error
        // Refused before it was logged (a planning error, 413, 503): each order
        // is proposed alone, so a refusal reaches only the request it is about.
        await Promise.all(pending.map((member) => this.settleGathered([member])))
        return
      }
      if (attempt === 0 && sinceMs !== undefined && index !== 'split') this.onGatheringAppended?.(sinceMs, pending.length)
      if (index === 'split') {
        const half = Math.ceil(pending.length / 2)
        await Promise.all([this.settleGathered(pending.slice(0, half)), this.settleGathered(pending.slice(half))])
        return
      }
      const again = await this.answerWhenApplied(index, pending)
      if (again === undefined) continue
      if (again.length === 0) return
      pending = again
    }
    throw staleRepeatedly()
  }

  /**
   * Answers the members of a gathering from its proposal's result, in the
   * stretch that delivers it (`Sequencer.resultTo`), not a promise turn
   * later. Resolves with the members whose script inputs moved
   * (`STALE_INPUTS`, to be planned again), or undefined when the proposal
   * was not applied (stale: all of them are).
   */
  private answerWhenApplied(index: number, pending: readonly Gathered[]): Promise<Gathered[] | undefined> {
    const sequencer = this.options.sequencer
    return new Promise((resolve, reject) => {
      const waiter: ResultWaiter = {
        resolve: (result) => {
          try {
            if (result.outcome !== 'applied') return resolve(undefined)
            invariant(result.results.length === pending.length, () => `${pending.length} orders gathered, ${result.results.length} results`)
            const again: Gathered[] = []
            for (let i = 0; i < pending.length; i++) {
              const member = pending[i] as Gathered
              const outcome = result.results[i] as OrderResult
              invariant(outcome.status !== 'skipped', 'a gathered order is never skipped')
              if (isStaleInputs(outcome)) again.push(member)
              else this.answerGathered(member, undefined, outcome)
            }
            resolve(again)
          } catch (error) {
            reject(error)
          }
        },
        reject,
      }
      if (sequencer.resultTo === undefined) sequencer.result(index).then(waiter.resolve, waiter.reject)
      else sequencer.resultTo(index, waiter)
    })
  }

  /**
   * Plans, stamps and appends one proposal; returns its index. `groupBytesMax`
   * (a gathering of several orders): a record over it is not appended, and
   * 'split' is returned instead.
   */
  private async propose(orders: readonly ProposedOrder[], options: SubmitOptions, groupBytesMax?: number, appendAfter?: Promise<boolean>): Promise<number | 'split'> {
    const known = new Map<CanonicalKey, AttributeValue | null>()
    const date = options.date ?? new Date(this.options.now()).toISOString()
    const resolved = await this.resolveNeeds(orders, known, date)
    // Every key once, in the order the orders first name it: these are the plan's positions.
    const plan = planCoverage(resolved.map((needs) => needs.keys))
    const allKeys = plan.keys
    // A large bulk's orders are packed for the log here, a slice at a time, before the
    // synchronous stamping: that step then only copies them.
    let planned: PlannedOrder[]
    let packedOrders: PackedItems | undefined
    // Anonymous callbacks: a named closure made per proposal costs a `name` property definition under tsx (keepNames).
    if (orders.length <= this.planSliceOrders) planned = orders.map((proposed, i) => plannedOrder(proposed, resolved, plan.coverageIndexes, i))
    else {
      planned = []
      const chunks: Buffer[] = []
      for (let at = 0; at < orders.length; at += this.planSliceOrders) {
        if (at > 0) await this.turn()
        const slice = orders.slice(at, at + this.planSliceOrders).map((proposed, j) => plannedOrder(proposed, resolved, plan.coverageIndexes, at + j))
        planned.push(...slice)
        chunks.push(packProposalOrders(slice))
      }
      packedOrders = new PackedItems(orders.length, chunks)
    }
    // In a sequence: planned alongside the submits before it, appended after them. Seeds are
    // read from here on, so none is older than the predecessor's effects.
    if (appendAfter !== undefined && !(await appendAfter)) throw sequenceBroken()
    const seeds = new Map<CanonicalKey, Uint8Array | null>()
    let storeIndexAtLoad = this.options.sequencer.storeIndex()
    for (let round = 0; round < planRoundsMax; round++) {
      for (let unsettled = this.cacheUnsettled(); unsettled !== undefined; unsettled = this.cacheUnsettled()) await unsettled
      const cache = this.options.cache
      const guess = this.options.sequencer.nextIndex()
      let hits = this.checkAll(allKeys, guess)
      const toLoad = allKeys.filter((key, i) => !hits[i] && !seeds.has(key))
      let awaited = false
      if (toLoad.length > 0) {
        const loaded = this.loadSeeds(toLoad, seeds)
        if (loaded !== true) {
          awaited = true
          await loaded
          for (let unsettled = this.cacheUnsettled(); unsettled !== undefined; unsettled = this.cacheUnsettled()) await unsettled
        }
      }
      // Stamping: synchronous from here to the append, so no other proposal
      // takes the index in between (the predicted index is exact).
      const index = this.options.sequencer.nextIndex()
      // Nothing awaited since the check above (no seed, or seeds read at once): the cache and the index are as it saw them.
      if (awaited) hits = this.checkAll(allKeys, index)
      else invariant(index === guess, 'the next index moved without a turn of the event loop')
      const coverage: CoverageEntry[] = []
      let missing = false
      let hitCount = 0
      for (let i = 0; i < allKeys.length; i++) {
        const key = allKeys[i] as CanonicalKey
        if (hits[i] === true) {
          hitCount++
          coverage.push({ key })
        } else if (seeds.has(key)) coverage.push({ key, seed: seeds.get(key) as Uint8Array | null })
        else missing = true
      }
      const usesSeeds = coverage.some((entry) => entry.seed !== undefined)
      const seedsTooOld = usesSeeds && !cache.seedsHold(storeIndexAtLoad, index)
      if (missing || seedsTooOld) {
        if (seedsTooOld) {
          seeds.clear()
          storeIndexAtLoad = this.options.sequencer.storeIndex()
        }
        continue
      }
      invariant(coverage.length === allKeys.length, 'a proposal covers every key of its plan')
      const proposal: Proposal = {
        id: this.options.newId(),
        date,
        predictedIndex: index,
        cacheEpoch: cache.epoch,
        cacheGeneration: cache.generationAt(index),
        storeIndexAtLoad,
        coverage,
        orders: planned,
        atomic: options.atomic,
        continueOnFailure: options.continueOnFailure,
        ...(options.dryRun === true ? { dryRun: true } : {}),
      }
      const payload = encodeProposal(proposal, packedOrders)
      if (groupBytesMax !== undefined && orders.length > 1 && payload.byteLength > Math.min(groupBytesMax, this.options.sequencer.payloadBytesMax())) return 'split'
      this.checkFits(payload, coverage)
      const appended = this.options.sequencer.append(payload, proposal)
      invariant(appended === index, () => `predicted index ${index}, appended at ${appended}`)
      this.observer.proposalAppended(orders.length, hitCount, coverage.length - hitCount)
      return index
    }
    throw new TallyError({ code: 'STALE_PROPOSAL', kind: 'unavailable', message: 'could not plan against a moving cache, retry' })
  }

  /**
   * A proposal travels in one log record, with the rows it seeds: one that
   * would not fit is refused here, before anything is logged, naming the
   * bound (413). Rows are bounded (metadata per entity, postings per
   * transaction), so a single order on ordinary rows always fits; a write
   * touching many large rows (or a large bulk) is split by the client.
   */
  private checkFits(payload: Buffer, coverage: readonly CoverageEntry[]): void {
    const bytesMax = this.options.sequencer.payloadBytesMax()
    if (payload.byteLength <= bytesMax) return
    let seeded = 0
    let seedBytes = 0
    for (const entry of coverage) {
      if (entry.seed === undefined || entry.seed === null) continue
      seeded++
      seedBytes += entry.seed.byteLength
    }
    throw new TallyError({
      code: 'VALIDATION',
      kind: 'too_large',
      message:
        `this write would be logged as ${payload.byteLength} bytes (its orders, and ${seeded} stored rows of ${seedBytes} bytes it reads), ` +
        `over the log's record limit of ${bytesMax} bytes: send it as smaller writes (fewer bulk elements, or fewer accounts per transaction)`,
    })
  }

  /**
   * Logs a change of the cache's replicated settings (ADR 0007): a proposal
   * without orders, applied by the FSM at its index on every node and in
   * every replay, recorded in the audit chain.
   */
  async changeCacheSettings(settings: CacheSettings): Promise<void> {
    for (let attempt = 0; attempt < staleRetriesMax; attempt++) {
      for (let unsettled = this.cacheUnsettled(); unsettled !== undefined; unsettled = this.cacheUnsettled()) await unsettled
      const index = this.options.sequencer.nextIndex()
      const proposal: Proposal = {
        id: this.options.newId(),
        date: new Date(this.options.now()).toISOString(),
        predictedIndex: index,
        cacheEpoch: this.options.cache.epoch,
        storeIndexAtLoad: this.options.sequencer.storeIndex(),
        coverage: [],
        orders: [],
        atomic: true,
        continueOnFailure: false,
        cacheSettings: settings,
      }
      const appended = this.options.sequencer.append(encodeProposal(proposal), proposal)
      invariant(appended === index, () => `predicted index ${index}, appended at ${appended}`)
      const result = await this.options.sequencer.result(index)
      if (result.outcome === 'applied') return
    }
    throw new TallyError({ code: 'STALE_PROPOSAL', kind: 'unavailable', message: 'the cache settings change went stale repeatedly, retry' })
  }

  /**
   * While a proposal's effects are going into the cache in slices: what to
   * wait for before reading the cache. Callers loop until it is undefined and
   * read the cache in that same synchronous stretch (an await in between,
   * even of a settled promise, would let the apply loop run first).
   */
  private cacheUnsettled(): Promise<void> | undefined {
    return this.options.cacheUnsettled?.()
  }

  /** Per key of the plan, whether the cache will hold it at `index`; Δ ≥ 2 generations: the proposal would outlive the cache (503, retry). */
  private checkAll(keys: readonly CanonicalKey[], index: number): boolean[] {
    const hits = this.options.cache.checkAll(keys, index)
    if (hits === 'unreachable') {
      this.observer.horizonRefused()
      throw new TallyError({
        code: 'CACHE_HORIZON_EXCEEDED',
        kind: 'unavailable',
        message: 'too many proposals in flight for the cache horizon, retry',
      })
    }
    return hits
  }

  /** What planning knows of `key`: a value read before, the cache's, or 'unknown' (noted in `unknown`, read before the next round). */
  private lookupKnown(key: CanonicalKey, known: Map<CanonicalKey, AttributeValue | null>, unknown: Set<CanonicalKey>): KnownValue {
    if (known.has(key)) return known.get(key) as AttributeValue | null
    const cached = this.options.cache.get(key)
    if (cached.state === 'absent') {
      unknown.add(key)
      return 'unknown'
    }
    // Kept for the later rounds: the cache may rotate the key out while
    // they await the store, and planning must not chase it round after
    // round. A value that moves before apply is the FSM's to refuse
    // (STALE_INPUTS), as for any planned value.
    const value = cached.state === 'live' ? cached.attribute.value : null
    known.set(key, value)
    return value
  }

  /** Needs in rounds: some depend on values (a revert's postings). */
  /**
   * Orders are planned in sequence on a speculative overlay of the earlier
   * orders' effects (`speculate`), so an order that depends on an earlier one
   * of the same proposal declares what it will really read.
   */
  private async resolveNeeds(
    orders: readonly ProposedOrder[],
    known: Map<CanonicalKey, AttributeValue | null>,
    date: string,
  ): Promise<{ keys: readonly CanonicalKey[]; order: ProposedOrder['order'] }[]> {
    for (let round = 0; round < planRoundsMax; round++) {
      const unknown = new Set<CanonicalKey>()
      // A large bulk is planned a slice at a time, with a turn of the event loop between slices.
      const steps = planRoundInSlices(orders, date, (key) => this.lookupKnown(key, known, unknown), this.planSliceOrders)
      for (let unsettled = this.cacheUnsettled(); unsettled !== undefined; unsettled = this.cacheUnsettled()) await unsettled
      let step = steps.next()
      while (step.done !== true) {
        await this.turn()
        for (let unsettled = this.cacheUnsettled(); unsettled !== undefined; unsettled = this.cacheUnsettled()) await unsettled
        step = steps.next()
      }
      const perOrder = step.value
      if (perOrder.every((needs) => needs.complete)) return perOrder
      const keys = [...unknown]
      const read = this.readRows(keys)
      const rows = Array.isArray(read) ? read : await read
      keys.forEach((key, i) => {
        const row = rows[i]
        known.set(key, row === undefined ? null : decodeAttribute(kindOf(key), row).value)
      })
    }
    // Each round settles every key it found unknown, so only a chain of value
    // dependencies deeper than the rounds gets here: a planner defect.
    throw new TallyError({ code: 'INTERNAL', kind: 'internal', message: `the needs of this write did not resolve in ${planRoundsMax} planning rounds` })
  }

  /** Seeds for `keys`; true when they were read without an await (the cache and the next index have not moved). */
  private loadSeeds(keys: readonly CanonicalKey[], seeds: Map<CanonicalKey, Uint8Array | null>): true | Promise<false> {
    const read = this.readRows(keys)
    if (Array.isArray(read)) {
      setSeeds(keys, seeds, read)
      return true
    }
    return read.then((rows) => {
      setSeeds(keys, seeds, rows)
      return false
    })
  }

  /** The attribute rows of `keys`: at once (an array) when few, else through the thread pool. */
  private readRows(keys: readonly CanonicalKey[]): (Buffer | undefined)[] | Promise<(Buffer | undefined)[]> {
    const rowKeys = keys.map(attributeRowKey)
    const getManySync = this.options.store.getManySync
    if (getManySync !== undefined && rowKeys.length <= this.syncReadKeysMax) return getManySync.call(this.options.store, rowKeys)
    return this.options.store.getMany(rowKeys)
  }
}

type SequencedSubmit = (orders: readonly ProposedOrder[], options: SubmitOptions, previous: Promise<boolean>) => Promise<readonly OrderResult[]>

/**
 * Submits appended to the log in the order they are made, for a caller that
 * keeps several in flight (`Admission.sequence`). Precisely: the proposal of
 * the k-th submit is appended only once the (k-1)-th submit was applied — its
 * stale proposals proposed again and applied first —, so the applied
 * proposals of a sequence are in submit order, each exactly once. Planning
 * overlaps: a submit's needs are resolved while the ones before it are in
 * flight, unless an order's needs read values (a revert, a script), which
 * then waits for its predecessor's effects. A submit whose predecessor failed
 * fails too without being logged (`PRECONDITION_FAILED`), and so do the ones
 * after it: the sequence ends at its first failure. Never gathered with other
 * submits, whatever their size.
 */
export class SubmitSequence {
  /** Settles true once the last submit made was applied, false if it failed (never rejects). */
  private last: Promise<boolean> = Promise.resolve(true)

  constructor(private readonly submitAfter: SequencedSubmit) {}

  /**
   * `accept` runs once the submit was applied, before the next one is
   * appended; if it throws, the submit fails with its error and the sequence
   * ends there (a caller's own check of the results, e.g. an import's log ids).
   */
  submit(orders: readonly ProposedOrder[], options: SubmitOptions, accept?: (results: readonly OrderResult[]) => void | Promise<void>): Promise<readonly OrderResult[]> {
    const previous = this.last
    const applied = this.submitAfter(orders, options, previous)
    const submitted =
      accept === undefined
        ? applied
        : applied.then(async (results) => {
            await accept(results)
            return results
          })
    this.last = submitted.then(
      () => true,
      () => false,
    )
    return submitted
  }
}

function sequenceBroken(): TallyError {
  return new TallyError({ code: 'PRECONDITION_FAILED', kind: 'conflict', message: 'an earlier write of this sequence failed: this one was not logged' })
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

function staleRepeatedly(): TallyError {
  return new TallyError({ code: 'STALE_PROPOSAL', kind: 'unavailable', message: 'the plan (or a script\'s inputs) went stale repeatedly, retry' })
}

function isStaleInputs(result: OrderResult): boolean {
  return result.status === 'failed' && result.error.code === 'STALE_INPUTS'
}

/** A proposed order with what planning resolved for it: its order (a revert's postings filled in) and its coverage positions. */
export function plannedOrder(proposed: ProposedOrder, resolved: readonly { order: ProposedOrder['order'] }[], coverageIndexes: readonly (readonly number[])[], i: number): PlannedOrder {
  const order = (resolved[i] as { order: ProposedOrder['order'] }).order
  const indexes = coverageIndexes[i] as number[]
  // The packed log record follows the key order: the proposed order's keys, then the coverage. The
  // common shapes as literals (a spread copies through a slow path, once per order of every bulk).
  if (!('idempotencyKey' in proposed) && !('requestHash' in proposed)) return { order, coverageIndexes: indexes }
  return { ...proposed, order, coverageIndexes: indexes }
}

/** Each key's coverage seed, from its row (read in `keys`' order). */
function setSeeds(keys: readonly CanonicalKey[], seeds: Map<CanonicalKey, Uint8Array | null>, rows: readonly (Buffer | undefined)[]): void {
  for (let i = 0; i < keys.length; i++) seeds.set(keys[i] as CanonicalKey, coverageSeed(rows[i]))
}
