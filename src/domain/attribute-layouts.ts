import { invariant } from './errors.ts'
import { emptyKeyed } from './keyed.ts'
import { decodeMetadata } from './metadata.ts'
import type { Posting } from './posting.ts'
import type { TransactionRecord } from './transaction.ts'
import type { AggregatedVolumes, Volumes } from './volumes.ts'
import { PackedShape, packedFields } from './packed.ts'
import type { PackedFields } from './packed.ts'
import type { Metadata } from './metadata.ts'
import type { AccountAddress, Asset } from './names.ts'

/**
 * Fixed per-kind layouts for the two attribute rows every transfer writes
 * (storage schema 5, docs/adr/0012): a volumes row and a transaction row
 * hold their fields at known places, without field names, object headers or
 * the commit volumes' balances (always `input - output`), and a transaction
 * row names each account and asset once. Every other attribute row, and a
 * value of a shape these layouts do not hold, is packed generically behind
 * `ATTRIBUTE_ROW_LAYOUT` (0x01); the first byte says which, and the one
 * decoder (`decodeAttribute`) reads all three.
 *
 * One canonical form: the encoders are pure functions of the value (the
 * generic one is used exactly when a fixed one refuses), so equal values give
 * equal bytes and replays stay byte-identical. Decoding gives the very record
 * the generic row of the same value decodes to, field order included
 * (`test/domain/attribute-layouts.property.test.ts`): readers, printers and
 * the log rows that embed a decoded record see no difference.
 *
 * Volumes row: `[0x07][input][output]`, each a bare LEB128 (`PackedShape.unsigned`).
 *
 * Transaction row:
 *
 *   [0x08][flags][id]
 *   [timestamp] [insertedAt, when not the timestamp] [updatedAt, when not insertedAt]
 *   [reference?] [revertedAt?] [template?]   string items, present as the flags say
 *   [metadata]                               one packed item, keys sorted
 *   [name count] [name]…                     each account and asset once, string items, in first use
 *   [posting count] ([source][destination][asset] name positions, [amount])…
 *   [pair count] ([account][asset] name positions, [pre input][pre output][post input][post output])…
 *                                            the commit volumes' (account, asset) pairs, sorted; with flag 16 only
 *
 * Counts, positions, the id and amounts are bare LEB128; flags: 1 reverted,
 * 2 reference, 4 revertedAt, 8 template, 16 commit volumes, 32 insertedAt
 * written, 64 updatedAt written.
 */
export const VOLUMES_ROW_LAYOUT = 0x07
export const TRANSACTION_ROW_LAYOUT = 0x08

const Flag = { reverted: 1, reference: 2, revertedAt: 4, template: 8, commitVolumes: 16, insertedAt: 32, updatedAt: 64 } as const
const FLAGS_ALL = 127

/** Transaction ids are below 2^64 (`transactionKey`). */
const ID_LIMIT = 1n << 64n

/** Past this many names the table's lookups go through a map (a transfer has three). */
const NAMES_LINEAR_MAX = 16

export function encodeVolumesRow(volumes: Volumes): Buffer | undefined {
  if (volumes.input < 0n || volumes.output < 0n) return undefined
  PackedShape.begin(VOLUMES_ROW_LAYOUT)
  PackedShape.unsigned(volumes.input)
  PackedShape.unsigned(volumes.output)
  return PackedShape.end()
}

export function decodeVolumesRow(row: Uint8Array): Volumes {
  const fields = packedFields(row, VOLUMES_ROW_LAYOUT)
  const input = fields.unsigned()
  const output = fields.unsigned()
  fields.end()
  return { input, output }
}

/** The fields of a record this layout holds, each known; any other makes the record generic. */
const TRANSACTION_FIELD_NAMES: ReadonlySet<string> = new Set(['id', 'postings', 'timestamp', 'insertedAt', 'updatedAt', 'reference', 'metadata', 'reverted', 'revertedAt', 'template', 'preCommitVolumes', 'postCommitVolumes'])

/** The account and asset names of one row, each written once; positions in first use. */
class NameTable {
  readonly names: string[] = []
  private byName: Map<string, number> | undefined

  position(name: string): number {
    const names = this.names
    if (this.byName === undefined) {
      for (let i = 0; i < names.length; i++) if (names[i] === name) return i
      names.push(name)
      if (names.length > NAMES_LINEAR_MAX) this.byName = new Map(names.map((known, i) => [known, i]))
      return names.length - 1
    }
    const known = this.byName.get(name)
    if (known !== undefined) return known
    names.push(name)
    this.byName.set(name, names.length - 1)
    return names.length - 1
  }
}

/** One commit volumes pair in the row's order, checked for the layout. */
interface Pair {
  readonly account: string
  readonly asset: string
  readonly pre: Volumes
  readonly post: Volumes
}

/**
 * The transaction row in its fixed layout; undefined when `record` holds
 * something the layout does not (an unknown field, a posting or a commit
 * volume of another shape, a balance that is not input − output, pre and
 * post volumes over different pairs): the caller packs it generically.
 */
export function encodeTransactionRow(record: TransactionRecord): Buffer | undefined {
  const flags = transactionFlags(record)
  if (flags === undefined) return undefined
  const pairs = (flags & Flag.commitVolumes) === 0 ? [] : commitPairs(record.preCommitVolumes as AggregatedVolumes, record.postCommitVolumes as AggregatedVolumes)
  if (pairs === undefined) return undefined
  const postings = record.postings
  if (!Array.isArray(postings)) return undefined
  for (const posting of postings) if (!fixedPosting(posting)) return undefined
  const names = new NameTable()
  // Positions first (the table is written before the postings and pairs that use it).
  const postingPositions: number[] = []
  for (const posting of postings) postingPositions.push(names.position(posting.source), names.position(posting.destination), names.position(posting.asset))
  const pairPositions: number[] = []
  for (const pair of pairs) pairPositions.push(names.position(pair.account), names.position(pair.asset))

  PackedShape.begin(TRANSACTION_ROW_LAYOUT)
  PackedShape.count(flags)
  PackedShape.unsigned(record.id)
  PackedShape.string(record.timestamp)
  if ((flags & Flag.insertedAt) !== 0) PackedShape.string(record.insertedAt)
  if ((flags & Flag.updatedAt) !== 0) PackedShape.string(record.updatedAt)
  if ((flags & Flag.reference) !== 0) PackedShape.string(record.reference as string)
  if ((flags & Flag.revertedAt) !== 0) PackedShape.string(record.revertedAt as string)
  if ((flags & Flag.template) !== 0) PackedShape.string(record.template as string)
  PackedShape.item(record.metadata, true)
  PackedShape.count(names.names.length)
  for (const name of names.names) PackedShape.string(name)
  PackedShape.count(postings.length)
  for (let i = 0; i < postings.length; i++) {
    PackedShape.count(postingPositions[3 * i] as number)
    PackedShape.count(postingPositions[3 * i + 1] as number)
    PackedShape.count(postingPositions[3 * i + 2] as number)
    PackedShape.unsigned((postings[i] as Posting).amount)
  }
  if ((flags & Flag.commitVolumes) !== 0) {
    PackedShape.count(pairs.length)
    for (let i = 0; i < pairs.length; i++) {
      const pair = pairs[i] as Pair
      PackedShape.count(pairPositions[2 * i] as number)
      PackedShape.count(pairPositions[2 * i + 1] as number)
      PackedShape.unsigned(pair.pre.input)
      PackedShape.unsigned(pair.pre.output)
      PackedShape.unsigned(pair.post.input)
      PackedShape.unsigned(pair.post.output)
    }
  }
  return PackedShape.end()
}

/** The row's flags, or undefined when a field is not what this layout holds. */
function transactionFlags(record: TransactionRecord): number | undefined {
  let fields = 0
  for (const field in record) {
    if (!TRANSACTION_FIELD_NAMES.has(field)) return undefined
    if ((record as unknown as Record<string, unknown>)[field] !== undefined) fields++
  }
  if (typeof record.id !== 'bigint' || record.id < 0n || record.id >= ID_LIMIT) return undefined
  if (typeof record.timestamp !== 'string' || typeof record.insertedAt !== 'string' || typeof record.updatedAt !== 'string') return undefined
  if (typeof record.reverted !== 'boolean') return undefined
  const metadata = record.metadata as unknown
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return undefined
  let flags = record.reverted ? Flag.reverted : 0
  // Defined fields expected: id, postings, timestamp, insertedAt, updatedAt, metadata, reverted, and the optional ones present.
  let expected = 7
  if (record.reference !== undefined) {
    if (typeof record.reference !== 'string') return undefined
    flags |= Flag.reference
    expected++
  }
  if (record.revertedAt !== undefined) {
    if (typeof record.revertedAt !== 'string') return undefined
    flags |= Flag.revertedAt
    expected++
  }
  if (record.template !== undefined) {
    if (typeof record.template !== 'string') return undefined
    flags |= Flag.template
    expected++
  }
  const pre = record.preCommitVolumes
  const post = record.postCommitVolumes
  if ((pre === undefined) !== (post === undefined)) return undefined
  if (pre !== undefined) {
    flags |= Flag.commitVolumes
    expected += 2
  }
  if (record.postings === undefined || fields !== expected) return undefined
  if (record.insertedAt !== record.timestamp) flags |= Flag.insertedAt
  if (record.updatedAt !== record.insertedAt) flags |= Flag.updatedAt
  return flags
}

function fixedPosting(posting: Posting): boolean {
  if (typeof posting !== 'object' || posting === null) return false
  let fields = 0
  for (const field in posting) {
    if (field !== 'amount' && field !== 'asset' && field !== 'destination' && field !== 'source') return false
    fields++
  }
  return fields === 4 && typeof posting.amount === 'bigint' && posting.amount >= 0n && typeof posting.asset === 'string' && typeof posting.destination === 'string' && typeof posting.source === 'string'
}

/** Pre and post commit volumes as one sorted list of pairs; undefined when they do not fit the layout. */
function commitPairs(pre: AggregatedVolumes, post: AggregatedVolumes): Pair[] | undefined {
  if (typeof pre !== 'object' || pre === null || typeof post !== 'object' || post === null) return undefined
  const accounts = PackedShape.sortedKeys(pre)
  if (Object.keys(post).length !== accounts.length) return undefined
  const pairs: Pair[] = []
  for (const account of accounts) {
    if (!Object.hasOwn(post, account)) return undefined
    const preAssets = pre[account]
    const postAssets = post[account]
    if (typeof preAssets !== 'object' || preAssets === null || typeof postAssets !== 'object' || postAssets === null) return undefined
    const assets = PackedShape.sortedKeys(preAssets)
    if (Object.keys(postAssets).length !== assets.length) return undefined
    for (const asset of assets) {
      if (!Object.hasOwn(postAssets, asset)) return undefined
      const before = fixedVolumes(preAssets[asset])
      const after = fixedVolumes(postAssets[asset])
      if (before === undefined || after === undefined) return undefined
      pairs.push({ account, asset, pre: before, post: after })
    }
  }
  return pairs
}

/** `{input, output, balance}` with balance = input − output and both volumes not negative; undefined otherwise. */
function fixedVolumes(moved: unknown): Volumes | undefined {
  if (typeof moved !== 'object' || moved === null) return undefined
  const { input, output, balance } = moved as { input: unknown; output: unknown; balance: unknown }
  if (typeof input !== 'bigint' || typeof output !== 'bigint' || typeof balance !== 'bigint') return undefined
  if (input < 0n || output < 0n || balance !== input - output || Object.keys(moved).length !== 3) return undefined
  return { input, output }
}

/**
 * A transaction row of the fixed layout, as `decodeAttribute` of its
 * generic row gives it (the same fields in the same order). Without
 * `withVolumes`, the commit volumes are read (checked) but not built.
 */
export function decodeTransactionRow(row: Uint8Array, withVolumes: boolean): TransactionRecord {
  const fields = packedFields(row, TRANSACTION_ROW_LAYOUT)
  const flags = fields.count()
  invariant(flags <= FLAGS_ALL, () => `transaction row with unknown flags ${flags}`)
  const id = fields.unsigned()
  invariant(id < ID_LIMIT, 'transaction row with an id past 2^64')
  const timestamp = fields.string()
  const insertedAt = (flags & Flag.insertedAt) !== 0 ? fields.string() : timestamp
  const updatedAt = (flags & Flag.updatedAt) !== 0 ? fields.string() : insertedAt
  const reference = (flags & Flag.reference) !== 0 ? fields.string() : undefined
  const revertedAt = (flags & Flag.revertedAt) !== 0 ? fields.string() : undefined
  const template = (flags & Flag.template) !== 0 ? fields.string() : undefined
  const metadata: Metadata = decodeMetadata(fields.item(), 'transaction')
  const names = readNames(fields)
  const postingCount = fields.count()
  invariant(postingCount <= row.length, 'transaction row with more postings than bytes')
  const postings: Posting[] = []
  for (let i = 0; i < postingCount; i++) {
    const source = nameAt(names, fields.count()) as AccountAddress
    const destination = nameAt(names, fields.count()) as AccountAddress
    const asset = nameAt(names, fields.count()) as Asset
    const amount = fields.unsigned()
    postings.push({ amount, asset, destination, source } as Posting)
  }
  let pre: AggregatedVolumes | undefined
  let post: AggregatedVolumes | undefined
  if ((flags & Flag.commitVolumes) !== 0) {
    const volumes = readPairs(fields, names, withVolumes)
    if (withVolumes) ({ pre, post } = volumes as { pre: AggregatedVolumes; post: AggregatedVolumes })
  }
  fields.end()
  // The generic row's order: its fields sorted, as `decodeAttribute` spreads them.
  const record: { -readonly [K in keyof TransactionRecord]: TransactionRecord[K] } = { id, insertedAt, metadata } as TransactionRecord
  if (post !== undefined) record.postCommitVolumes = post
  record.postings = postings
  if (pre !== undefined) record.preCommitVolumes = pre
  if (reference !== undefined) record.reference = reference
  record.reverted = (flags & Flag.reverted) !== 0
  if (revertedAt !== undefined) record.revertedAt = revertedAt
  if (template !== undefined) record.template = template
  record.timestamp = timestamp
  record.updatedAt = updatedAt
  return record
}

function readNames(fields: PackedFields): string[] {
  const count = fields.count()
  const names: string[] = []
  for (let i = 0; i < count; i++) names.push(fields.string())
  return names
}

function nameAt(names: readonly string[], position: number): string {
  const name = names[position]
  invariant(name !== undefined, () => `transaction row names position ${position} of ${names.length}`)
  return name
}

/** The pairs, strictly ascending by (account, asset), as maps without prototype in that order (or only checked). */
function readPairs(fields: PackedFields, names: readonly string[], build: boolean): { pre: AggregatedVolumes; post: AggregatedVolumes } | undefined {
  const count = fields.count()
  const pre: AggregatedVolumes | undefined = build ? emptyKeyed() : undefined
  const post: AggregatedVolumes | undefined = build ? emptyKeyed() : undefined
  let account: string | undefined
  let asset: string | undefined
  let preAssets = undefined as unknown as AggregatedVolumes[string]
  let postAssets = undefined as unknown as AggregatedVolumes[string]
  for (let i = 0; i < count; i++) {
    const nextAccount = nameAt(names, fields.count())
    const nextAsset = nameAt(names, fields.count())
    const preInput = fields.unsigned()
    const preOutput = fields.unsigned()
    const postInput = fields.unsigned()
    const postOutput = fields.unsigned()
    const ascending = account === undefined || nextAccount > account || (nextAccount === account && nextAsset > (asset as string))
    invariant(ascending, 'transaction row commit volumes out of order')
    if (nextAccount !== account && pre !== undefined && post !== undefined) {
      preAssets = emptyKeyed()
      postAssets = emptyKeyed()
      pre[nextAccount] = preAssets
      post[nextAccount] = postAssets
    }
    account = nextAccount
    asset = nextAsset
    if (pre === undefined) continue
    preAssets[nextAsset] = { balance: preInput - preOutput, input: preInput, output: preOutput }
    postAssets[nextAsset] = { balance: postInput - postOutput, input: postInput, output: postOutput }
  }
  return pre === undefined || post === undefined ? undefined : { pre, post }
}
