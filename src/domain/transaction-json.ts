import type { Keyed } from './keyed.ts'
import type { Json } from './json.ts'
import type { AggregatedVolumes, VolumesMap } from './volumes.ts'
import { ListedVolumes } from './volumes.ts'
import { InvariantViolation, invariant } from './errors.ts'
import { JsonBytes, asciiText } from './json-bytes.ts'
import type { AsciiText } from './json-bytes.ts'

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
 * sorted when built, `metadata.ts`); volumes a write's apply built as a list
 * (`ListedVolumes`) print as the map of the same volumes does.
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

/** The printer's constant text (punctuation and field names), checked and encoded once. */
const text = {
  openId: asciiText('{"id":'),
  postings: asciiText(',"postings":['),
  destination: asciiText(',"destination":'),
  amount: asciiText(',"amount":'),
  firstSource: asciiText('{"source":'),
  nextSource: asciiText(',{"source":'),
  asset: asciiText(',"asset":'),
  close: asciiText('}'),
  timestamp: asciiText('],"timestamp":'),
  insertedAt: asciiText(',"insertedAt":'),
  updatedAt: asciiText(',"updatedAt":'),
  metadata: asciiText(',"metadata":'),
  reference: asciiText(',"reference":'),
  revertedAt: asciiText(',"revertedAt":'),
  template: asciiText(',"template":'),
  preCommitVolumes: asciiText(',"preCommitVolumes":'),
  postCommitVolumes: asciiText(',"postCommitVolumes":'),
  preCommitEffectiveVolumes: asciiText(',"preCommitEffectiveVolumes":'),
  postCommitEffectiveVolumes: asciiText(',"postCommitEffectiveVolumes":'),
  open: asciiText('{'),
  comma: asciiText(','),
  openAssets: asciiText(':{'),
  closeThenComma: asciiText('},'),
  input: asciiText(':{"input":'),
  output: asciiText(',"output":'),
  balance: asciiText(',"balance":'),
  colon: asciiText(':'),
  notReverted: asciiText(',"reverted":false'),
  reverted: asciiText(',"reverted":true'),
} as const

/** `stringifyJson(transactionView(transaction, options))` (with any effective volumes appended), without the view. */
export function printTransaction(transaction: PrintableTransaction, options: TransactionPrintOptions): string {
  const from = shared.length
  try {
    writeTransaction(shared, transaction, options)
    return shared.takeStringFrom(from)
  } finally {
    shared.discardFrom(from)
  }
}

/** Printing to a string goes through this writer, within one synchronous call (nested calls each take their own bytes). */
const shared = new JsonBytes()

/** `printTransaction`, written into `out` as UTF-8. */
export function writeTransaction(out: JsonBytes, transaction: PrintableTransaction, options: TransactionPrintOptions): void {
  out.ascii(text.openId)
  out.integer(transaction.id)
  out.ascii(text.postings)
  const postings = transaction.postings
  for (let i = 0; i < postings.length; i++) {
    const posting = postings[i] as PrintablePosting
    out.ascii(i === 0 ? text.firstSource : text.nextSource)
    out.string(posting.source)
    out.ascii(text.destination)
    out.string(posting.destination)
    out.ascii(text.amount)
    out.integer(posting.amount)
    out.ascii(text.asset)
    out.string(posting.asset)
    out.ascii(text.close)
  }
  out.ascii(text.timestamp)
  out.string(transaction.timestamp)
  out.ascii(text.insertedAt)
  out.string(transaction.insertedAt)
  out.ascii(text.updatedAt)
  out.string(transaction.updatedAt)
  out.ascii(text.metadata)
  writeMetadata(out, transaction.metadata)
  out.ascii(revertedField(transaction.reverted))
  if (transaction.reference !== undefined) {
    out.ascii(text.reference)
    out.string(transaction.reference)
  }
  if (transaction.revertedAt !== undefined) {
    out.ascii(text.revertedAt)
    out.string(transaction.revertedAt)
  }
  if (transaction.template !== undefined) {
    out.ascii(text.template)
    out.string(transaction.template)
  }
  const pre = transaction.preCommitVolumes
  const post = transaction.postCommitVolumes
  if (options.volumes && pre !== undefined && post !== undefined) {
    out.ascii(text.preCommitVolumes)
    writeVolumes(out, pre)
    out.ascii(text.postCommitVolumes)
    writeVolumes(out, post)
  }
  const effective = options.effectiveVolumes
  if (effective !== undefined) {
    out.ascii(text.preCommitEffectiveVolumes)
    writeVolumes(out, effective.pre)
    out.ascii(text.postCommitEffectiveVolumes)
    writeVolumes(out, effective.post)
  }
  out.ascii(text.close)
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

/** A string as JSON prints it (`JSON.stringify`), through the same writer. */
export function stringJson(text: string): string {
  const from = shared.length
  try {
    shared.string(text)
    return shared.takeStringFrom(from)
  } finally {
    shared.discardFrom(from)
  }
}

function revertedField(value: boolean): AsciiText {
  if (typeof value !== 'boolean') throw new InvariantViolation(`a transaction's reverted field holds ${String(value)}`)
  return value ? text.reverted : text.notReverted
}

/** A string map (metadata) in its own key order, skipping what JSON skips (an undefined value). */
export function writeMetadata(out: JsonBytes, metadata: Readonly<Keyed<string>>): void {
  out.ascii(text.open)
  let first = true
  for (const key of Object.keys(metadata)) {
    const value = metadata[key]
    if (value === undefined) continue
    if (typeof value !== 'string') throw new InvariantViolation(`metadata ${JSON.stringify(key)} holds a ${typeof value}`)
    if (!first) out.ascii(text.comma)
    out.string(key)
    out.ascii(text.colon)
    out.string(value)
    first = false
  }
  out.ascii(text.close)
}

/**
 * Volumes by account and asset, each as v2 prints them: `{input, output,
 * balance}`; maps in their own key order, listed volumes in the order the
 * map of the same volumes lists its keys.
 */
export function writeVolumes(out: JsonBytes, volumes: AggregatedVolumes): void {
  if (volumes instanceof ListedVolumes) writeListedVolumes(out, volumes)
  else writeVolumesMap(out, volumes)
}

function writeVolumesMap(out: JsonBytes, volumes: VolumesMap): void {
  out.ascii(text.open)
  let firstAccount = true
  for (const account of Object.keys(volumes)) {
    const byAsset = volumes[account]
    if (byAsset === undefined) continue
    if (!firstAccount) out.ascii(text.comma)
    out.string(account)
    out.ascii(text.openAssets)
    firstAccount = false
    let firstAsset = true
    for (const asset of Object.keys(byAsset)) {
      const moved = byAsset[asset]
      if (moved === undefined) continue
      if (!firstAsset) out.ascii(text.comma)
      writeMoved(out, asset, moved.input, moved.output, moved.balance)
      firstAsset = false
    }
    out.ascii(text.close)
  }
  out.ascii(text.close)
}

/** Walks the pairs (sorted, or in `printOrder` when a name is an array index): no key list, no map. */
function writeListedVolumes(out: JsonBytes, volumes: ListedVolumes): void {
  const names = volumes.pairs.names
  const order = volumes.pairs.printOrder
  const amounts = volumes.amounts
  out.ascii(text.open)
  let account: string | undefined
  for (let k = 0; k < names.length; k += 2) {
    // The pair's position in the lists: the k-th in print order.
    const at = order === undefined ? k : 2 * (order[k / 2] as number)
    const name = names[at] as string
    if (name !== account) {
      if (account !== undefined) out.ascii(text.closeThenComma)
      account = name
      out.string(name)
      out.ascii(text.openAssets)
    } else {
      out.ascii(text.comma)
    }
    const input = amounts[at] as bigint
    const output = amounts[at + 1] as bigint
    writeMoved(out, names[at + 1] as string, input, output, input - output)
  }
  if (account !== undefined) out.ascii(text.close)
  out.ascii(text.close)
}

/** `"asset":{"input":…,"output":…,"balance":…}`: one asset of a volumes object (a transaction's, an account's). */
export function writeMoved(out: JsonBytes, asset: string, input: bigint, output: bigint, balance: bigint): void {
  out.string(asset)
  out.ascii(text.input)
  out.integer(input)
  out.ascii(text.output)
  out.integer(output)
  out.ascii(text.balance)
  out.integer(balance)
  out.ascii(text.close)
}
