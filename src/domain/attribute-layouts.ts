import { invariant } from './errors.ts'
import { emptyKeyed } from './keyed.ts'
import { decodeMetadata } from './metadata.ts'
import type { Posting } from './posting.ts'
import type { TransactionRecord } from './transaction.ts'
import type { AggregatedVolumes, Volumes, VolumesMap } from './volumes.ts'
import { ListedVolumes, volumesMap } from './volumes.ts'
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
 *   [posting count] ([source][destination][asset] names, [amount])…
 *   [account count] ([account] name, [asset count] ([asset] name, [pre input][pre output][post input][post output])…)…
 *                                            the commit volumes, accounts and their assets sorted; with flag 16 only
 *
 * A name (an account or an asset) is written once per row: a bare LEB128
 * position among the names met so far, or the next position followed by the
 * new name's string item.
 *
 * Counts, positions, the id and amounts are bare LEB128; flags: 1 reverted,
 * 2 reference, 4 revertedAt, 8 template, 16 commit volumes, 32 insertedAt
 * written, 64 updatedAt written.
 */
export const VOLUMES_ROW_LAYOUT = 0x07
export const TRANSACTION_ROW_LAYOUT = 0x08

/** The transaction row's flags (its second item); exported for the printer that copies a row as JSON (`src/api/transaction-row-json.ts`). */
export const TransactionRowFlag = { reverted: 1, reference: 2, revertedAt: 4, template: 8, commitVolumes: 16, insertedAt: 32, updatedAt: 64 } as const
const Flag = TransactionRowFlag
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

/** The account and asset names of one row, each written once: the writer's side of a name reference. */
class NameTable {
  private readonly names: string[] = []
  private byName: Map<string, number> | undefined

  /** Writes `name`'s position, and the name itself the first time. */
  write(name: string): void {
    const known = this.positionOf(name)
    if (known >= 0) {
      PackedShape.count(known)
      return
    }
    const names = this.names
    PackedShape.count(names.length)
    PackedShape.string(name)
    names.push(name)
    if (this.byName !== undefined) this.byName.set(name, names.length - 1)
    else if (names.length > NAMES_LINEAR_MAX) this.byName = new Map(names.map((each, i) => [each, i]))
  }

  private positionOf(name: string): number {
    if (this.byName !== undefined) return this.byName.get(name) ?? -1
    const names = this.names
    for (let i = 0; i < names.length; i++) if (names[i] === name) return i
    return -1
  }
}

/**
 * The transaction row in its fixed layout; undefined when `record` holds
 * something the layout does not (an unknown field, a posting or a commit
 * volume of another shape, a balance that is not input − output, pre and
 * post volumes over different pairs): the caller packs it generically (a
 * row half written here is dropped: every pack begins afresh).
 */
export function encodeTransactionRow(record: TransactionRecord): Buffer | undefined {
  const flags = transactionFlags(record)
  if (flags === undefined) return undefined
  const postings = record.postings
  if (!Array.isArray(postings)) return undefined
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
  const names = new NameTable()
  PackedShape.count(postings.length)
  for (const posting of postings) {
    if (!fixedPosting(posting)) return undefined
    names.write(posting.source)
    names.write(posting.destination)
    names.write(posting.asset)
    PackedShape.unsigned(posting.amount)
  }
  if ((flags & Flag.commitVolumes) !== 0 && !writeCommitVolumes(record.preCommitVolumes as AggregatedVolumes, record.postCommitVolumes as AggregatedVolumes, names)) return undefined
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

/** Pre and post commit volumes, sorted; false when they do not fit the layout (not over the same pairs, or of another shape). */
function writeCommitVolumes(pre: AggregatedVolumes, post: AggregatedVolumes, names: NameTable): boolean {
  if (pre instanceof ListedVolumes && post instanceof ListedVolumes && pre.pairs === post.pairs) return writeListedVolumes(pre, post, names)
  if (typeof pre !== 'object' || pre === null || typeof post !== 'object' || post === null) return false
  return writeVolumesMaps(volumesMap(pre), volumesMap(post), names)
}

/**
 * Listed pre and post volumes over one pair list: already sorted, each pair
 * once (`PairList` checks it), walked in place. False when an amount is
 * negative (the generic row holds it).
 */
function writeListedVolumes(pre: ListedVolumes, post: ListedVolumes, names: NameTable): boolean {
  const pairs = pre.pairs.names
  const preAmounts = pre.amounts
  const postAmounts = post.amounts
  PackedShape.count(pre.pairs.accountCount)
  for (let i = 0; i < pairs.length; ) {
    const account = pairs[i] as string
    let end = i + 2
    while (end < pairs.length && pairs[end] === account) end += 2
    names.write(account)
    PackedShape.count((end - i) / 2)
    for (; i < end; i += 2) {
      names.write(pairs[i + 1] as string)
      const preInput = preAmounts[i] as bigint
      const preOutput = preAmounts[i + 1] as bigint
      const postInput = postAmounts[i] as bigint
      const postOutput = postAmounts[i + 1] as bigint
      if (preInput < 0n || preOutput < 0n || postInput < 0n || postOutput < 0n) return false
      PackedShape.unsigned(preInput)
      PackedShape.unsigned(preOutput)
      PackedShape.unsigned(postInput)
      PackedShape.unsigned(postOutput)
    }
  }
  return true
}

function writeVolumesMaps(pre: VolumesMap, post: VolumesMap, names: NameTable): boolean {
  const accounts = PackedShape.sortedKeys(pre)
  if (Object.keys(post).length !== accounts.length) return false
  PackedShape.count(accounts.length)
  for (const account of accounts) {
    if (!Object.hasOwn(post, account)) return false
    const preAssets = pre[account]
    const postAssets = post[account]
    if (typeof preAssets !== 'object' || preAssets === null || typeof postAssets !== 'object' || postAssets === null) return false
    const assets = PackedShape.sortedKeys(preAssets)
    if (assets.length === 0 || Object.keys(postAssets).length !== assets.length) return false
    names.write(account)
    PackedShape.count(assets.length)
    for (const asset of assets) {
      if (!Object.hasOwn(postAssets, asset)) return false
      names.write(asset)
      if (!writeVolumes(preAssets[asset]) || !writeVolumes(postAssets[asset])) return false
    }
  }
  return true
}

/** Writes `{input, output, balance}`'s input and output; false unless balance = input − output and both are not negative. */
function writeVolumes(moved: unknown): boolean {
  if (typeof moved !== 'object' || moved === null) return false
  const { input, output, balance } = moved as { input: unknown; output: unknown; balance: unknown }
  if (typeof input !== 'bigint' || typeof output !== 'bigint' || typeof balance !== 'bigint') return false
  if (input < 0n || output < 0n || balance !== input - output || Object.keys(moved).length !== 3) return false
  PackedShape.unsigned(input)
  PackedShape.unsigned(output)
  return true
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
  const names: string[] = []
  const postingCount = fields.count()
  invariant(postingCount <= row.length, 'transaction row with more postings than bytes')
  const postings: Posting[] = []
  for (let i = 0; i < postingCount; i++) {
    const source = readName(fields, names) as AccountAddress
    const destination = readName(fields, names) as AccountAddress
    const asset = readName(fields, names) as Asset
    const amount = fields.unsigned()
    postings.push({ amount, asset, destination, source } as Posting)
  }
  let pre: AggregatedVolumes | undefined
  let post: AggregatedVolumes | undefined
  if ((flags & Flag.commitVolumes) !== 0) {
    const volumes = readCommitVolumes(fields, names, withVolumes)
    if (volumes !== undefined) ({ pre, post } = volumes)
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

/** A name reference: a known position, or the next one followed by the new name. */
function readName(fields: PackedFields, names: string[]): string {
  const position = fields.count()
  if (position < names.length) return names[position] as string
  invariant(position === names.length, () => `transaction row names position ${position} of ${names.length}`)
  const name = fields.string()
  names.push(name)
  return name
}

/** Accounts ascending, each one's assets ascending; as maps without prototype in that order (or only checked). */
function readCommitVolumes(fields: PackedFields, names: string[], build: boolean): { pre: VolumesMap; post: VolumesMap } | undefined {
  const accountCount = fields.count()
  const pre: VolumesMap | undefined = build ? emptyKeyed() : undefined
  const post: VolumesMap | undefined = build ? emptyKeyed() : undefined
  let previousAccount: string | undefined
  for (let i = 0; i < accountCount; i++) {
    const account = readName(fields, names)
    invariant(previousAccount === undefined || account > previousAccount, 'transaction row commit volumes accounts out of order')
    previousAccount = account
    const assetCount = fields.count()
    invariant(assetCount > 0, 'transaction row commit volumes account without assets')
    const preAssets: VolumesMap[string] | undefined = build ? emptyKeyed() : undefined
    const postAssets: VolumesMap[string] | undefined = build ? emptyKeyed() : undefined
    let previousAsset: string | undefined
    for (let j = 0; j < assetCount; j++) {
      const asset = readName(fields, names)
      invariant(previousAsset === undefined || asset > previousAsset, 'transaction row commit volumes assets out of order')
      previousAsset = asset
      const preInput = fields.unsigned()
      const preOutput = fields.unsigned()
      const postInput = fields.unsigned()
      const postOutput = fields.unsigned()
      if (preAssets === undefined || postAssets === undefined) continue
      preAssets[asset] = { balance: preInput - preOutput, input: preInput, output: preOutput }
      postAssets[asset] = { balance: postInput - postOutput, input: postInput, output: postOutput }
    }
    if (pre === undefined || post === undefined) continue
    pre[account] = preAssets as VolumesMap[string]
    post[account] = postAssets as VolumesMap[string]
  }
  return pre === undefined || post === undefined ? undefined : { pre, post }
}
