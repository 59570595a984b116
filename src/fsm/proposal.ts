import type { CanonicalKey, Json } from '../domain/index.ts'
import { invariant, isJsonObject, packItems, packRecord, parseJson, unpackRecord } from '../domain/index.ts'
import type { PackedItems } from '../domain/index.ts'
import type { CacheSettings } from '../cache/index.ts'
import { cacheSettings, validateCacheSettings } from '../cache/index.ts'
import type { ProposedOrder } from '../orders/index.ts'

/**
 * One plan entry (contract §2.1 step 4): authorises the FSM to read `key`.
 * `seed` absent = coverage-only (the cache holds the key at apply time);
 * `seed: null` = the store had no row; bytes = the store row read by
 * admission, as stored (packed, `ATTRIBUTE_ROW_LAYOUT`, or a fixed layout:
 * docs/adr/0012), which the record
 * carries as a bytes item (`packRecord`).
 */
export interface CoverageEntry {
  readonly key: CanonicalKey
  readonly seed?: Uint8Array | null
}

/**
 * The one form of a coverage seed (admission, the checker's replay, the
 * simulator): the store row as read (undefined: no row). Not copied: a row
 * read from the store is never written into.
 */
export function coverageSeed(row: Uint8Array | undefined): Uint8Array | null {
  return row === undefined ? null : row
}

export interface PlannedOrder extends ProposedOrder {
  /**
   * The order's coverage: the set of `Proposal.coverage` entries it may read,
   * as ascending positions. A sparse set rather than a bitset: a bitset per
   * order is as wide as the whole plan, so a 1000-order bulk would carry (and
   * the FSM decode) a million bits.
   */
  readonly coverageIndexes: readonly number[]
}

/** A batch of orders plus everything needed to apply them without reading the store. */
export interface Proposal {
  readonly id: string
  readonly date: string
  readonly predictedIndex: number
  readonly cacheEpoch: number
  /**
   * The cache generation admission classified coverage-only entries against
   * (the generation it predicted for `predictedIndex`). A rotation admission
   * could not foresee (Gen0's byte budget filled by proposals still in
   * flight) makes the FSM's generation larger: the plan is then stale, never
   * a coverage miss. Absent in proposals logged before it existed.
   */
  readonly cacheGeneration?: number
  /**
   * Store index observed before admission's loads started. A seed is only
   * trustworthy while every write since then is still cached, i.e. while
   * gen(index) ≤ gen(storeIndexAtLoad + 1) + 1; later it is stale.
   */
  readonly storeIndexAtLoad: number
  readonly coverage: readonly CoverageEntry[]
  readonly orders: readonly PlannedOrder[]
  readonly atomic: boolean
  readonly continueOnFailure: boolean
  /** Run every order and keep nothing (v2 `dryRun`). */
  readonly dryRun?: boolean
  /**
   * A change of the cache's replicated settings (ADR 0007), carried by a
   * proposal without orders: every node applies it at the same index, and
   * the audit chain records it so that a replay applies it too.
   */
  readonly cacheSettings?: CacheSettings
}

export const proposalOrdersMax = 10_000
export const proposalCoverageMax = 200_000

export const WAL_TYPE_PROPOSAL = 1

/**
 * Layout byte of a packed proposal record (`domain/packed.ts`, docs/adr/0009).
 * Records logged before it are JSON text, which starts with `{` (0x7b).
 */
export const PROPOSAL_LAYOUT = 0x04
const JSON_TEXT_FIRST_BYTE = 0x7b

/**
 * `packedOrders`: the proposal's orders already packed (`packProposalOrders`,
 * a slice at a time), written in their place: the same bytes.
 */
export function encodeProposal(proposal: Proposal, packedOrders?: PackedItems): Buffer {
  invariant(proposal.orders.length <= proposalOrdersMax, 'too many orders in one proposal')
  invariant(packedOrders === undefined || packedOrders.count === proposal.orders.length, 'packed orders of another proposal')
  // Not canonical: the logged bytes are the source of truth, nothing re-encodes them.
  return packRecord(packedOrders === undefined ? proposal : { ...proposal, orders: packedOrders }, PROPOSAL_LAYOUT)
}

/** Packs planned orders for `encodeProposal`: one chunk per call, in order. */
export function packProposalOrders(orders: readonly PlannedOrder[]): Buffer {
  return packItems(orders, false)
}

/**
 * The WAL is CRC-checked and written by us: decoding restores integer widths
 * only (seeds come back as bytes). A JSON-text record (an older WAL) still
 * decodes, to the same value: its seeds are base64 text, turned into bytes here.
 */
export function decodeProposal(bytes: Uint8Array): Proposal {
  const text = bytes[0] === JSON_TEXT_FIRST_BYTE
  const json = text ? parseJson(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) : unpackRecord(bytes, PROPOSAL_LAYOUT)
  invariant(json !== null && typeof json === 'object' && !Array.isArray(json) && !Buffer.isBuffer(json), 'proposal is not an object')
  const raw = json as unknown as Record<string, unknown>
  const proposal = raw as unknown as Proposal
  return {
    ...proposal,
    ...(text ? { coverage: proposal.coverage.map(seedFromText) } : {}),
    predictedIndex: Number(raw.predictedIndex),
    cacheEpoch: Number(raw.cacheEpoch),
    storeIndexAtLoad: Number(raw.storeIndexAtLoad),
    ...(raw.cacheGeneration === undefined ? {} : { cacheGeneration: Number(raw.cacheGeneration) }),
    ...(raw.cacheSettings === undefined ? {} : { cacheSettings: cacheSettingsFromJson(raw.cacheSettings as Json) }),
    orders: proposal.orders.map((planned) => ({ ...planned, coverageIndexes: planned.coverageIndexes.map(Number) })),
  }
}

/** A JSON-text record's coverage entry: its seed was the row in base64. */
function seedFromText(entry: CoverageEntry): CoverageEntry {
  const seed = entry.seed as unknown
  if (typeof seed !== 'string') return entry
  return { key: entry.key, seed: Buffer.from(seed, 'base64') }
}

/** A proposal's plan positions: every key once, in the order the orders first name it. */
export interface CoveragePlan {
  readonly keys: readonly CanonicalKey[]
  /** Per order, the positions of its keys in `keys`, ascending, each once. */
  readonly coverageIndexes: readonly number[][]
}

/**
 * The plan's keys and each order's coverage positions, in one pass over the
 * orders' keys (one map of positions for the proposal): admission, the
 * check's replay and the simulator plan with it alike.
 */
export function planCoverage(perOrderKeys: readonly (readonly CanonicalKey[])[]): CoveragePlan {
  const keys: CanonicalKey[] = []
  const position = new Map<CanonicalKey, number>()
  const coverageIndexes: number[][] = []
  for (const orderKeys of perOrderKeys) {
    const indexes: number[] = []
    for (const key of orderKeys) {
      let index = position.get(key)
      if (index === undefined) {
        index = keys.length
        keys.push(key)
        position.set(key, index)
      }
      indexes.push(index)
    }
    coverageIndexes.push(ascendingOnce(indexes))
  }
  return { keys, coverageIndexes }
}

/** Up to this many positions are sorted in place by insertion (an order's few keys); past it, by `Array#sort`. */
const INSERTION_SORT_MAX = 32

/**
 * `indexes` sorted ascending with repeats dropped, in place. An order's keys
 * are few and mostly ascending already (keys new to the plan take the next
 * positions), so an insertion sort does it without the copy `Array#sort`
 * makes.
 */
function ascendingOnce(indexes: number[]): number[] {
  if (indexes.length > INSERTION_SORT_MAX) indexes.sort((a, b) => a - b)
  else {
    for (let i = 1; i < indexes.length; i++) {
      const value = indexes[i] as number
      let at = i - 1
      for (; at >= 0 && (indexes[at] as number) > value; at--) indexes[at + 1] = indexes[at] as number
      indexes[at + 1] = value
    }
  }
  let kept = 0
  for (let i = 0; i < indexes.length; i++) {
    if (kept === 0 || indexes[i] !== indexes[kept - 1]) indexes[kept++] = indexes[i] as number
  }
  indexes.length = kept
  return indexes
}

/** Settings as JSON (the WAL, the audit chain, the cache-state row): one form, integers as numbers. */
export function cacheSettingsToJson(settings: CacheSettings): Json {
  return { rotationThreshold: settings.rotationThreshold, generationBytesMax: settings.generationBytesMax }
}

/** Settings parsed back (integers arrive as bigints); fails loudly on anything else. */
export function cacheSettingsFromJson(json: Json): CacheSettings {
  invariant(isJsonObject(json), 'cache settings are not an object')
  const threshold = json.rotationThreshold
  const bytes = json.generationBytesMax
  invariant(typeof threshold === 'bigint' || typeof threshold === 'number', 'cache settings without a rotation threshold')
  invariant(bytes === undefined || bytes === null || typeof bytes === 'bigint' || typeof bytes === 'number', 'cache settings with a bad byte budget')
  const settings = cacheSettings(Number(threshold), bytes === undefined || bytes === null ? null : Number(bytes))
  validateCacheSettings(settings)
  return settings
}
