import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Admission } from '../../src/admission/index.ts'
import type { Sequencer } from '../../src/admission/index.ts'
import { AttributeCache } from '../../src/cache/index.ts'
import type { OrderResult, Proposal, ProposalResult } from '../../src/fsm/index.ts'
import type { Order } from '../../src/orders/index.ts'
import type { StoreReader } from '../../src/store/index.ts'
import { attributeRowKey } from '../../src/store/index.ts'
import { TallyError, transactionKey } from '../../src/domain/index.ts'
import { MAIN, transfer } from '../support/ledger.ts'

/**
 * A `SubmitSequence` appends its submits in the order they were made
 * (src/admission/admission.ts): whatever the planning delays, stale
 * proposals proposed again and planning failures, the applied proposals of a
 * sequence are its submits in order, each once, and nothing after a failed
 * submit is logged. The log here is a model: it applies appended proposals in
 * index order after a drawn number of event-loop turns, and returns some of
 * them stale.
 */

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await turn()
}

/** Submit k is one transfer to `users:k`; a planning failure reads `users:fail-k`. */
function tagOf(proposal: Proposal): number {
  const order = proposal.orders[0]?.order
  if (order?.type !== 'CREATE_TRANSACTION') return -1
  const destination = order.postings[0]?.destination ?? ''
  return Number(destination.slice(destination.lastIndexOf(':') + 1).replace('fail-', ''))
}

interface Plan {
  /** Per submit: turns its store reads take, times its proposal comes back stale, whether its planning fails. */
  readonly submits: readonly { readonly loadTurns: number; readonly staleTimes: number; readonly fails: boolean }[]
  /** Turns the model log takes to apply each appended proposal, drawn in turn. */
  readonly applyTurns: readonly number[]
}

class ModelLog implements Sequencer {
  readonly appended: Proposal[] = []
  readonly outcomes: ('applied' | 'stale')[] = []
  private applied = 0
  private readonly waiting = new Map<number, (result: ProposalResult) => void>()
  /** Results decided before anybody asked (an apply within the append's stretch). */
  private readonly decided = new Map<number, ProposalResult>()
  private readonly staleLeft: Map<number, number>
  private draws = 0
  private applying = false

  constructor(private readonly plan: Plan) {
    this.staleLeft = new Map(plan.submits.map((submit, k) => [k, submit.staleTimes]))
  }

  nextIndex(): number {
    return this.appended.length + 1
  }

  append(_payload: Buffer, proposal?: Proposal): number {
    assert.ok(proposal !== undefined)
    this.appended.push(proposal)
    void this.applyAll()
    return this.appended.length
  }

  result(index: number): Promise<ProposalResult> {
    const decided = this.decided.get(index)
    if (decided !== undefined) return Promise.resolve(decided)
    return new Promise((resolve) => this.waiting.set(index, resolve))
  }

  storeIndex(): number {
    return this.applied
  }

  payloadBytesMax(): number {
    return 16 * 1024 * 1024
  }

  /** Applies appended proposals one at a time, in index order. */
  private async applyAll(): Promise<void> {
    if (this.applying) return
    this.applying = true
    while (this.applied < this.appended.length) {
      await turns(this.plan.applyTurns[this.draws++ % Math.max(1, this.plan.applyTurns.length)] ?? 0)
      const index = this.applied + 1
      const proposal = this.appended[index - 1] as Proposal
      const tag = tagOf(proposal)
      const staleLeft = this.staleLeft.get(tag) ?? 0
      this.applied = index
      let result: ProposalResult
      if (staleLeft > 0) {
        this.staleLeft.set(tag, staleLeft - 1)
        this.outcomes.push('stale')
        result = { index, outcome: 'stale', reason: 'the model says so' }
      } else {
        this.outcomes.push('applied')
        const applied: OrderResult = { status: 'applied', output: { type: 'METADATA', logId: BigInt(tag) }, idempotencyHit: false }
        result = { index, outcome: 'applied', results: proposal.orders.map(() => applied) }
      }
      const resolve = this.waiting.get(index)
      if (resolve === undefined) this.decided.set(index, result)
      else {
        this.waiting.delete(index)
        resolve(result)
      }
    }
    this.applying = false
  }
}

function modelStore(plan: Plan): StoreReader {
  return {
    async get() {
      return undefined
    },
    async getMany(keys) {
      const text = keys.map((key) => key.toString('latin1')).join(' ')
      const match = /users:(fail-)?(\d+)/.exec(text)
      const k = match === null ? 0 : Number(match[2])
      await turns(plan.submits[k]?.loadTurns ?? 0)
      if (match?.[1] !== undefined) throw new Error(`the store failed for submit ${k}`)
      return keys.map(() => undefined)
    },
    range() {
      throw new Error('not read')
    },
  }
}

async function runSequence(plan: Plan): Promise<{ log: ModelLog; settled: PromiseSettledResult<readonly OrderResult[]>[] }> {
  const log = new ModelLog(plan)
  const admission = new Admission({ cache: new AttributeCache(1_000_000), store: modelStore(plan), sequencer: log, now: () => Date.UTC(2026, 0, 1), newId: () => 'p' })
  const sequence = admission.sequence()
  const submitted = plan.submits.map((submit, k) =>
    sequence.submit([{ order: transfer('world', submit.fails ? `users:fail-${k}` : `users:${k}`, BigInt(k + 1)) }], { atomic: false, continueOnFailure: false }),
  )
  return { log, settled: await Promise.allSettled(submitted) }
}

const planArbitrary: fc.Arbitrary<Plan> = fc.record({
  submits: fc.array(fc.record({ loadTurns: fc.nat(6), staleTimes: fc.nat(2), fails: fc.constant(false) }), { minLength: 1, maxLength: 8 }),
  applyTurns: fc.array(fc.nat(4), { maxLength: 8 }),
})

test('a sequence appends and applies its submits in the order they were made, across planning delays and stale proposals', async () => {
  await fc.assert(
    fc.asyncProperty(
      planArbitrary.map((plan) => ({ ...plan, submits: plan.submits.map((submit) => ({ ...submit, fails: false })) })),
      async (plan) => {
        const { log, settled } = await runSequence(plan)
        for (const [k, outcome] of settled.entries()) {
          assert.equal(outcome.status, 'fulfilled', `submit ${k}`)
          assert.equal((outcome as PromiseFulfilledResult<readonly OrderResult[]>).value.length, 1)
        }
        const appliedTags = log.appended.filter((_, i) => log.outcomes[i] === 'applied').map(tagOf)
        assert.deepEqual(appliedTags, plan.submits.map((_, k) => k))
        // A stale proposal is proposed again before anything after it is appended: the log's tags never go back.
        const appendedTags = log.appended.map(tagOf)
        for (let i = 1; i < appendedTags.length; i++) assert.ok((appendedTags[i] as number) >= (appendedTags[i - 1] as number), `log order ${appendedTags.join(',')}`)
        const staleTotal = plan.submits.reduce((sum, submit) => sum + submit.staleTimes, 0)
        assert.equal(log.appended.length, plan.submits.length + staleTotal)
      },
    ),
    { numRuns: 150 },
  )
})

test('a sequence ends at its first failure: the submits before it are applied in order, none after it is logged', async () => {
  await fc.assert(
    fc.asyncProperty(
      planArbitrary.chain((plan) =>
        fc.nat(plan.submits.length - 1).map((failing) => ({ ...plan, submits: plan.submits.map((submit, k) => ({ ...submit, fails: k === failing })) })),
      ),
      async (plan) => {
        const failing = plan.submits.findIndex((submit) => submit.fails)
        const { log, settled } = await runSequence(plan)
        for (const [k, outcome] of settled.entries()) {
          if (k < failing) assert.equal(outcome.status, 'fulfilled', `submit ${k} before the failure`)
          else {
            assert.equal(outcome.status, 'rejected', `submit ${k} from the failure on`)
            const reason = (outcome as PromiseRejectedResult).reason as Error
            if (k > failing) assert.ok(reason instanceof TallyError && reason.code === 'PRECONDITION_FAILED', `submit ${k}: ${reason.message}`)
          }
        }
        const appendedTags = log.appended.map(tagOf)
        assert.ok(appendedTags.every((tag) => tag < failing), `logged after the failure: ${appendedTags.join(',')}`)
        assert.deepEqual(
          log.appended.filter((_, i) => log.outcomes[i] === 'applied').map(tagOf),
          plan.submits.slice(0, failing).map((_, k) => k),
        )
      },
    ),
    { numRuns: 100 },
  )
})

test('a submit whose needs read values (a revert) is planned only once the submit before it was applied', async () => {
  const plan: Plan = { submits: [{ loadTurns: 3, staleTimes: 1, fails: false }], applyTurns: [2] }
  const log = new ModelLog(plan)
  const readsBeforeApplied: number[] = []
  const revertedRow = attributeRowKey(transactionKey(MAIN, 0n))
  const store: StoreReader = {
    ...modelStore(plan),
    async getMany(keys) {
      if (keys.some((key) => key.equals(revertedRow))) readsBeforeApplied.push(log.storeIndex())
      return modelStore(plan).getMany(keys)
    },
  }
  const admission = new Admission({ cache: new AttributeCache(1_000_000), store, sequencer: log, now: () => Date.UTC(2026, 0, 1), newId: () => 'p' })
  const sequence = admission.sequence()
  const first = sequence.submit([{ order: transfer('world', 'users:0', 1n) }], { atomic: false, continueOnFailure: false })
  const revert: Order = { type: 'REVERT_TRANSACTION', ledger: MAIN, id: 0n, force: true, atEffectiveDate: false, metadata: {} }
  const second = sequence.submit([{ order: revert }], { atomic: false, continueOnFailure: false }).catch((error: unknown) => error)
  await first
  await second
  // The first submit went stale once: its second proposal (index 2) was applied before the revert read anything.
  assert.ok(readsBeforeApplied.length > 0, 'the revert read its transaction')
  assert.ok(readsBeforeApplied.every((storeIndex) => storeIndex >= 2), `the revert read at store index ${readsBeforeApplied.join(',')}`)
})
