/**
 * What clients ask of the simulated ledger: each simulated write becomes a
 * real proposal, drawn from the write's value (so the cluster's own PRNG
 * sequence is untouched) and planned the way admission plans it, against the
 * writing primary's cache and store — coverage-only keys the cache will still
 * hold at the predicted index, seeds read from the store for the rest — then
 * encoded with the FSM's own proposal encoder. The FSM decides everything
 * else (a plan gone stale, a refused order) as it does in production.
 *
 * The mix: transfers between a handful of accounts (from `world`, and from
 * user accounts that may lack the funds, which the FSM must refuse), one
 * Numscript source allowed a bounded overdraft, reverts, account metadata,
 * idempotency keys that repeat, multi-order bulks (atomic or not), and now
 * and then a change of the cache's replicated settings.
 */
import type { AccountAddress, Asset, AttributeValue, CanonicalKey, LedgerName } from '../domain/index.ts'
import { decodeAttribute, emptyKeyed, keyedFrom, kindOf, ledgerKey } from '../domain/index.ts'
import type { AttributeCache, CacheSettings } from '../cache/index.ts'
import type { CoverageEntry, Proposal } from '../fsm/index.ts'
import { coverageSeed, encodeProposal, planCoverage } from '../fsm/index.ts'
import type { CreateTransaction, KnownValue, Order, ProposedOrder } from '../orders/index.ts'
import { planRound } from '../admission/speculation.ts'
import { attributeRowKey } from '../store/layout.ts'
import { Prng } from './prng.ts'

export const simLedgerName = 'sim' as LedgerName
export const simAssets: readonly Asset[] = ['USD/2' as Asset, 'EUR/2' as Asset]
const users = ['users:1', 'users:2', 'users:3', 'users:4'] as AccountAddress[]
const merchants = ['merchants:1', 'merchants:2'] as AccountAddress[]

/** The one account the workload lets go below zero (besides `world`), and how far: a Numscript `allowing overdraft up to`. */
export const overdraftAccount = 'credit:line' as AccountAddress
export const overdraftAsset = 'USD/2' as Asset
export const overdraftLimit = 500n

/** The cache settings every simulated data directory is created with. */
export const genesisCacheSettings: CacheSettings = Object.freeze({ rotationThreshold: 8, generationBytesMax: null })
const settingsChoices: readonly CacheSettings[] = [
  { rotationThreshold: 4, generationBytesMax: null },
  { rotationThreshold: 8, generationBytesMax: null },
  { rotationThreshold: 16, generationBytesMax: 16_384 },
  { rotationThreshold: 32, generationBytesMax: 4_096 },
]

/** The writing node's view admission plans against: its cache, its store rows and applied index. */
export interface PlanningView {
  readonly cache: AttributeCache
  readonly appliedIndex: number
  read(key: Buffer): Buffer | undefined
}

/** The orders a write stands for; `undefined` orders: a cache settings change. */
interface Drawn {
  readonly orders: ProposedOrder[]
  readonly atomic: boolean
  readonly continueOnFailure: boolean
  readonly cacheSettings?: CacheSettings
}

function transfer(source: AccountAddress, destination: AccountAddress, amount: bigint, asset: Asset): CreateTransaction {
  return {
    type: 'CREATE_TRANSACTION',
    ledger: simLedgerName,
    postings: [{ source, destination, amount, asset }],
    metadata: emptyKeyed(),
    accountMetadata: emptyKeyed(),
    force: false,
  }
}

function drawOrder(prng: Prng): ProposedOrder {
  const roll = prng.int(100)
  const asset = prng.pick(simAssets)
  const amount = BigInt(1 + prng.int(400))
  if (roll < 30) return { order: transfer('world' as AccountAddress, prng.pick(users), amount, asset) }
  if (roll < 60) return { order: transfer(prng.pick(users), prng.pick([...users, ...merchants]), amount, asset) }
  if (roll < 68) return { order: transfer(prng.pick(merchants), prng.pick(users), amount, asset) }
  if (roll < 76) {
    const plain = `send [${overdraftAsset} ${amount}] ( source = @${overdraftAccount} allowing overdraft up to [${overdraftAsset} ${overdraftLimit}] destination = @${prng.pick(users)} )`
    return { order: { ...transfer(overdraftAccount, prng.pick(users), amount, asset), postings: [], script: { plain, vars: emptyKeyed() } } }
  }
  if (roll < 84) return { order: { type: 'REVERT_TRANSACTION', ledger: simLedgerName, id: BigInt(prng.int(24)), force: false, atEffectiveDate: false, metadata: emptyKeyed() } }
  if (roll < 92) {
    return { order: { type: 'SAVE_ACCOUNT_METADATA', ledger: simLedgerName, address: prng.pick(users), metadata: keyedFrom([['tier', prng.pick(['gold', 'silver', 'bronze'])]]) } }
  }
  // An idempotency key from a small pool: repeats hit (same request) or are refused (another one).
  const key = `k${prng.int(4)}`
  const amountByKey = BigInt(1 + prng.int(2))
  return { order: transfer('world' as AccountAddress, prng.pick(users), amountByKey, 'USD/2' as Asset), idempotencyKey: key, requestHash: `h${amountByKey}` }
}

function draw(value: number, ledgerExists: boolean): Drawn {
  const prng = new Prng(value)
  if (!ledgerExists) {
    return { orders: [{ order: { type: 'CREATE_LEDGER', ledger: simLedgerName, bucket: '_default', metadata: emptyKeyed(), features: emptyKeyed() } }], atomic: false, continueOnFailure: false }
  }
  if (prng.int(100) < 4) return { orders: [], atomic: true, continueOnFailure: false, cacheSettings: prng.pick(settingsChoices) }
  const count = prng.weighted([70, 20, 10]) + 1
  const orders = Array.from({ length: count }, () => drawOrder(prng))
  const atomic = count > 1 && prng.chance(0.5)
  return { orders, atomic, continueOnFailure: !atomic && prng.chance(0.5) }
}

/**
 * The proposal a simulated client write becomes at `index`, planned on
 * `view` as admission plans (needs by `planRound`, each order on the
 * speculative effects of the earlier ones; coverage-only where the cache
 * will hold the key at `index`, seeded from the store otherwise). Where
 * admission would refuse (the cache horizon) or re-plan (seeds too old), the
 * proposal is logged anyway: the FSM must then find it stale.
 */
export function simulatedProposal(view: PlanningView, value: number, index: number, id: string, date: string): Buffer {
  const known = new Map<CanonicalKey, AttributeValue | null>()
  const lookup = (key: CanonicalKey): KnownValue => {
    const cached = known.get(key)
    if (cached !== undefined) return cached
    const inCache = view.cache.get(key)
    let found: AttributeValue | null
    if (inCache.state === 'live') found = inCache.attribute.value
    else if (inCache.state === 'deleted') found = null
    else {
      const row = view.read(attributeRowKey(key))
      found = row === undefined ? null : decodeAttribute(kindOf(key), row).value
    }
    known.set(key, found)
    return found
  }
  const drawn = draw(value, lookup(ledgerKey(simLedgerName)) !== null)
  const planned = planRound(drawn.orders, date, lookup)
  const plan = planCoverage(planned.map((needs) => needs.keys))
  const allKeys = plan.keys
  const horizonExceeded = allKeys.some((key) => view.cache.check(key, index) === 'unreachable')
  const coverage: CoverageEntry[] = allKeys.map((key) => {
    if (!horizonExceeded && view.cache.check(key, index) === 'hit') return { key }
    const row = view.read(attributeRowKey(key))
    return { key, seed: coverageSeed(row) }
  })
  const proposal: Proposal = {
    id,
    date,
    predictedIndex: index,
    cacheEpoch: view.cache.epoch,
    ...(drawn.cacheSettings === undefined ? { cacheGeneration: view.cache.generationAt(index) } : {}),
    storeIndexAtLoad: view.appliedIndex,
    coverage,
    orders: drawn.orders.map((proposed, i) => ({
      ...proposed,
      order: (planned[i] as { order: Order }).order,
      coverageIndexes: plan.coverageIndexes[i] as number[],
    })),
    atomic: drawn.atomic,
    continueOnFailure: drawn.continueOnFailure,
    ...(drawn.cacheSettings === undefined ? {} : { cacheSettings: drawn.cacheSettings }),
  }
  return encodeProposal(proposal)
}
