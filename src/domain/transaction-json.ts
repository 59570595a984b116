import type { Keyed } from './keyed.ts'
import type { Json } from './json.ts'
import type { AggregatedVolumes } from './volumes.ts'
import { InvariantViolation, invariant } from './errors.ts'

/**
 * The v2 wire shape of a transaction (`V2Transaction`), printed field by
 * field: the one printer behind every place Tally answers with a
 * transaction (a write's answer, a `_bulk` element, a read, a list page, an
 * exported log). No view object is built and no key is looked up or quoted
 * at run time; the text is what the generic printer (`stringifyJson`) gives
 * for the object `transactionView` builds, in its key order:
 *
 *   id, postings [{source, destination, amount, asset}], timestamp,
 *   insertedAt, updatedAt, metadata, reverted, reference?, revertedAt?,
 *   template?, preCommitVolumes?, postCommitVolumes? (both or neither),
 *   preCommitEffectiveVolumes?, postCommitEffectiveVolumes?
 *
 * and volumes as `{account: {asset: {input, output, balance}}}`. That order
 * holds whatever the key order of the value given: a transaction read back
 * from a row packed in sorted key order (an idempotent replay's stored
 * answer, a stored record's volumes) prints the same bytes as a fresh one.
 * Metadata and volumes print in their maps' own order (canonical: keys
 * sorted when built, `metadata.ts`).
 */
export interface PrintableTransaction {
  readonly id: bigint
  readonly postings: readonly PrintablePosting[]
  readonly timestamp: string
  readonly insertedAt: string
  readonly updatedAt: string
  readonly metadata: Readonly<Keyed<string>>
  readonly reverted: boolean
  readonly reference?: string | undefined
  readonly revertedAt?: string | undefined
  readonly template?: string | undefined
  readonly preCommitVolumes?: AggregatedVolumes | undefined
  readonly postCommitVolumes?: AggregatedVolumes | undefined
}

export interface PrintablePosting {
  readonly source: string
  readonly destination: string
  readonly amount: bigint
  readonly asset: string
}

export interface TransactionPrintOptions {
  /** Print the commit volumes when the transaction has both (a write's answer, `expand=volumes`). */
  readonly volumes: boolean
  /** Effective volumes computed for a read (`expand=effectiveVolumes`), printed last. */
  readonly effectiveVolumes?: { readonly pre: AggregatedVolumes; readonly post: AggregatedVolumes }
}

/** `stringifyJson(transactionView(transaction, options))` (with any effective volumes appended), without the view. */
export function printTransaction(transaction: PrintableTransaction, options: TransactionPrintOptions): string {
  let text = `{"id":${integerJson(transaction.id)},"postings":[`
  const postings = transaction.postings
  for (let i = 0; i < postings.length; i++) {
    const posting = postings[i] as PrintablePosting
    text +=
      `${i === 0 ? '' : ','}{"source":${stringJson(posting.source)},"destination":${stringJson(posting.destination)}` +
      `,"amount":${integerJson(posting.amount)},"asset":${stringJson(posting.asset)}}`
  }
  text +=
    `],"timestamp":${stringJson(transaction.timestamp)},"insertedAt":${stringJson(transaction.insertedAt)}` +
    `,"updatedAt":${stringJson(transaction.updatedAt)},"metadata":${metadataJson(transaction.metadata)}` +
    `,"reverted":${booleanJson(transaction.reverted)}`
  if (transaction.reference !== undefined) text += `,"reference":${stringJson(transaction.reference)}`
  if (transaction.revertedAt !== undefined) text += `,"revertedAt":${stringJson(transaction.revertedAt)}`
  if (transaction.template !== undefined) text += `,"template":${stringJson(transaction.template)}`
  const pre = transaction.preCommitVolumes
  const post = transaction.postCommitVolumes
  if (options.volumes && pre !== undefined && post !== undefined) {
    text += `,"preCommitVolumes":${aggregatedVolumesJson(pre)},"postCommitVolumes":${aggregatedVolumesJson(post)}`
  }
  const effective = options.effectiveVolumes
  if (effective !== undefined) {
    text += `,"preCommitEffectiveVolumes":${aggregatedVolumesJson(effective.pre)},"postCommitEffectiveVolumes":${aggregatedVolumesJson(effective.post)}`
  }
  return `${text}}`
}

/**
 * A transaction as an order's output or a log's payload holds it (the
 * object `transactionView` built, or that object read back from a packed
 * row), checked for the fields the printer reads.
 */
export function printableTransaction(value: Json | undefined): PrintableTransaction {
  invariant(value !== null && typeof value === 'object' && !Array.isArray(value), 'a transaction is an object')
  invariant(typeof value.id === 'bigint' && Array.isArray(value.postings), 'a transaction has an id and postings')
  return value as unknown as PrintableTransaction
}

/**
 * A string as JSON prints it (`JSON.stringify`): printable ASCII other than
 * `"` and `\` is quoted as it is, without a call into the engine's
 * stringifier; anything else (control characters, non-ASCII, lone
 * surrogates) goes through `JSON.stringify`, which escapes it.
 */
export function stringJson(text: string): string {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit < 0x20 || unit > 0x7e || unit === 0x22 || unit === 0x5c) return JSON.stringify(text)
  }
  return `"${text}"`
}

/** An integer field (ids, amounts, volumes): a `bigint` as its digits; a safe integer `number` is accepted as JSON prints it. */
function integerJson(value: bigint | number): string {
  if (typeof value === 'bigint') return value.toString()
  if (!Number.isSafeInteger(value)) throw new InvariantViolation(`a transaction's integer field holds ${String(value)}`)
  return String(value)
}

function booleanJson(value: boolean): string {
  if (typeof value !== 'boolean') throw new InvariantViolation(`a transaction's boolean field holds ${String(value)}`)
  return value ? 'true' : 'false'
}

/** A string map (metadata) in its own key order, skipping what JSON skips (an undefined value). */
export function metadataJson(metadata: Readonly<Keyed<string>>): string {
  let text = '{'
  let first = true
  for (const key of Object.keys(metadata)) {
    const value = metadata[key]
    if (value === undefined) continue
    if (typeof value !== 'string') throw new InvariantViolation(`metadata ${JSON.stringify(key)} holds a ${typeof value}`)
    text += `${first ? '' : ','}${stringJson(key)}:${stringJson(value)}`
    first = false
  }
  return `${text}}`
}

/** Volumes by account and asset, each as v2 prints them: `{input, output, balance}`. */
export function aggregatedVolumesJson(volumes: AggregatedVolumes): string {
  let text = '{'
  let firstAccount = true
  for (const account of Object.keys(volumes)) {
    const byAsset = volumes[account]
    if (byAsset === undefined) continue
    text += `${firstAccount ? '' : ','}${stringJson(account)}:{`
    firstAccount = false
    let firstAsset = true
    for (const asset of Object.keys(byAsset)) {
      const moved = byAsset[asset]
      if (moved === undefined) continue
      text +=
        `${firstAsset ? '' : ','}${stringJson(asset)}:{"input":${integerJson(moved.input)}` +
        `,"output":${integerJson(moved.output)},"balance":${integerJson(moved.balance)}}`
      firstAsset = false
    }
    text += '}'
  }
  return `${text}}`
}
