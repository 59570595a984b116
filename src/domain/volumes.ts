import type { Amount } from './amount.ts'
import { AMOUNT_LIMIT } from './amount.ts'
import { invariant } from './errors.ts'
import type { Keyed } from './keyed.ts'
import { emptyKeyed } from './keyed.ts'

/** Per (account, asset): everything received and everything sent. */
export interface Volumes {
  readonly input: Amount
  readonly output: Amount
}

export const ZERO_VOLUMES: Volumes = Object.freeze({ input: 0n, output: 0n })

export function balanceOf(volumes: Volumes): bigint {
  return volumes.input - volumes.output
}

/** Whether `volume + amount` stays an amount (below 2^256): callers refuse the posting when not. */
export function fitsVolume(volume: Amount, amount: Amount): boolean {
  return volume + amount < AMOUNT_LIMIT
}

export function addInput(volumes: Volumes, amount: Amount): Volumes {
  invariant(amount >= 0n, 'posting amount is negative')
  invariant(fitsVolume(volumes.input, amount), 'input volume past 2^256 - 1: the posting should have been refused')
  return { input: volumes.input + amount, output: volumes.output }
}

export function addOutput(volumes: Volumes, amount: Amount): Volumes {
  invariant(amount >= 0n, 'posting amount is negative')
  invariant(fitsVolume(volumes.output, amount), 'output volume past 2^256 - 1: the posting should have been refused')
  return { input: volumes.input, output: volumes.output + amount }
}

/** Per account, per asset volumes as v2 prints them (`V2AggregatedVolumes`); maps without prototype (`keyed.ts`). */
export type VolumesMap = Keyed<Keyed<{ input: bigint; output: bigint; balance: bigint }>>

/**
 * Per account, per asset volumes, in either form: maps (decoded from JSON or
 * from a stored row, built by a read) or a list (`ListedVolumes`, what an
 * apply builds). Printers, encoders and packers read both, to the same bytes.
 */
export type AggregatedVolumes = VolumesMap | ListedVolumes

/** One (account, asset) pair a transaction moved: its volumes before and after. */
export interface MovedVolumes {
  readonly account: string
  readonly asset: string
  readonly pre: Volumes
  readonly post: Volumes
}

/**
 * A transaction's pre and post commit volumes in their one canonical form:
 * its (account, asset) pairs sorted by account, then asset (UTF-16 code
 * units, as `Array#sort` orders strings), each pair once. That is the order
 * of its stored row, so the answer a write gives, a read of the transaction,
 * and an idempotent replay (from the cache, from a restored cache, or from
 * the store as a seed) print the same bytes.
 *
 * Built as two `ListedVolumes` sharing one list of pairs: two arrays of
 * amounts instead of six maps without prototype (which V8 keeps as
 * dictionaries) and four `{input, output, balance}` objects per transfer,
 * walked by the row encoder and the answer's printer without asking a map
 * for its keys.
 *
 * Sorts `moved` in place (by account, then asset).
 */
export function commitVolumes(moved: MovedVolumes[]): { pre: ListedVolumes; post: ListedVolumes } {
  sortByPair(moved)
  const pairs = new Array<string>(moved.length * 2)
  const preAmounts = new Array<bigint>(moved.length * 2)
  const postAmounts = new Array<bigint>(moved.length * 2)
  for (let i = 0; i < moved.length; i++) {
    const entry = moved[i] as MovedVolumes
    pairs[2 * i] = entry.account
    pairs[2 * i + 1] = entry.asset
    preAmounts[2 * i] = entry.pre.input
    preAmounts[2 * i + 1] = entry.pre.output
    postAmounts[2 * i] = entry.post.input
    postAmounts[2 * i + 1] = entry.post.output
  }
  const listed = new PairList(pairs)
  return { pre: new ListedVolumes(listed, preAmounts), post: new ListedVolumes(listed, postAmounts) }
}

/**
 * The (account, asset) pairs of commit volumes, sorted (by account, then
 * asset, UTF-16 code units), each once, checked when made; shared by a
 * transaction's pre and post volumes.
 */
export class PairList {
  /** Account, asset, account, asset…: the pairs in sorted order. */
  readonly names: readonly string[]
  /** How many distinct accounts the pairs name. */
  readonly accountCount: number
  /**
   * The pairs' positions in the order a JS object built from them lists
   * its keys (accounts, then each account's assets): integer-like names
   * (array indices, `10`) first, by value, then the rest in sorted order.
   * Undefined when that is the sorted order itself (no name is an array
   * index: every asset, and nearly every account).
   */
  readonly printOrder: readonly number[] | undefined

  constructor(names: readonly string[]) {
    invariant(names.length % 2 === 0, 'a pair list holds accounts and assets in pairs')
    let accountCount = 0
    let indexLike = false
    for (let i = 0; i < names.length; i += 2) {
      const account = names[i] as string
      const asset = names[i + 1] as string
      if (i === 0 || account !== names[i - 2]) {
        invariant(i === 0 || account > (names[i - 2] as string), 'commit volumes list their accounts sorted')
        accountCount++
      } else {
        invariant(asset > (names[i - 1] as string), 'commit volumes list each account\'s assets sorted, each once')
      }
      if (arrayIndexOf(account) >= 0 || arrayIndexOf(asset) >= 0) indexLike = true
    }
    this.names = names
    this.accountCount = accountCount
    this.printOrder = indexLike ? objectKeyOrder(names) : undefined
  }
}

/**
 * One side (pre or post) of a transaction's commit volumes as a list: for
 * each pair of `pairs.names`, its input and output (the balance is their
 * difference). Immutable. Prints, packs and encodes as the map of the same
 * volumes (`toMap`) does.
 */
export class ListedVolumes {
  readonly pairs: PairList
  /** Input, output, input, output…: two per pair, in the pairs' order. */
  readonly amounts: readonly bigint[]

  constructor(pairs: PairList, amounts: readonly bigint[]) {
    invariant(amounts.length === pairs.names.length, 'listed volumes hold an input and an output per pair')
    this.pairs = pairs
    this.amounts = amounts
  }

  /** The same volumes as maps without prototype, built in sorted order (so listed as `printOrder` says). */
  toMap(): VolumesMap {
    const map: VolumesMap = emptyKeyed()
    const names = this.pairs.names
    const amounts = this.amounts
    let assets = undefined as unknown as VolumesMap[string]
    for (let i = 0; i < names.length; i += 2) {
      const account = names[i] as string
      if (i === 0 || account !== names[i - 2]) {
        assets = emptyKeyed()
        map[account] = assets
      }
      const input = amounts[i] as bigint
      const output = amounts[i + 1] as bigint
      assets[names[i + 1] as string] = { input, output, balance: input - output }
    }
    return map
  }
}

/** The volumes as maps, whichever form they hold (a copy for listed volumes, the maps themselves otherwise). */
export function volumesMap(volumes: AggregatedVolumes): VolumesMap {
  return volumes instanceof ListedVolumes ? volumes.toMap() : volumes
}

/** The largest array index: a JS object lists keys `0` to `2^32 - 2` first, by value. */
const ARRAY_INDEX_MAX = 2 ** 32 - 2

/** `name` as an array index (its canonical decimal text), or -1. */
export function arrayIndexOf(name: string): number {
  const first = name.charCodeAt(0)
  // Every array index starts with a digit; only `0` itself starts with 0.
  if (!(first >= 0x30 && first <= 0x39) || name.length > 10 || (first === 0x30 && name.length > 1)) return -1
  for (let i = 1; i < name.length; i++) {
    const unit = name.charCodeAt(i)
    if (unit < 0x30 || unit > 0x39) return -1
  }
  const value = Number(name)
  return value <= ARRAY_INDEX_MAX ? value : -1
}

/**
 * The pairs' positions in a JS object's key order, for sorted pairs
 * (`PairList.names`): accounts that are array indices first, by value, then
 * the others as they come; within each account its assets by the same rule.
 */
function objectKeyOrder(names: readonly string[]): number[] {
  // Each account's first pair position and its pairs' count, in sorted order.
  const accounts: { readonly name: string; readonly from: number; count: number }[] = []
  for (let i = 0; i < names.length; i += 2) {
    const last = accounts[accounts.length - 1]
    if (last !== undefined && last.name === names[i]) last.count++
    else accounts.push({ name: names[i] as string, from: i / 2, count: 1 })
  }
  const order: number[] = []
  for (const account of keyOrder(accounts, (entry) => entry.name)) {
    const pairs = Array.from({ length: account.count }, (_, k) => account.from + k)
    for (const pair of keyOrder(pairs, (position) => names[2 * position + 1] as string)) order.push(pair)
  }
  return order
}

/** `items` (given in sorted order of their names) as an object would list their names: array indices first, by value. */
function keyOrder<T>(items: readonly T[], nameOf: (item: T) => string): T[] {
  const indices = items.filter((item) => arrayIndexOf(nameOf(item)) >= 0)
  indices.sort((a, b) => arrayIndexOf(nameOf(a)) - arrayIndexOf(nameOf(b)))
  return [...indices, ...items.filter((item) => arrayIndexOf(nameOf(item)) < 0)]
}

/** Past this many pairs the generic sort; below, an insertion sort (a transfer moves two pairs). */
const PAIR_INSERTION_SORT_MAX = 16

function sortByPair(moved: MovedVolumes[]): void {
  if (moved.length > PAIR_INSERTION_SORT_MAX) {
    moved.sort((a, b) => (pairBefore(a, b) ? -1 : pairBefore(b, a) ? 1 : 0))
    return
  }
  for (let i = 1; i < moved.length; i++) {
    const entry = moved[i] as MovedVolumes
    let j = i - 1
    while (j >= 0 && pairBefore(entry, moved[j] as MovedVolumes)) {
      moved[j + 1] = moved[j] as MovedVolumes
      j--
    }
    moved[j + 1] = entry
  }
}

function pairBefore(a: MovedVolumes, b: MovedVolumes): boolean {
  return a.account < b.account || (a.account === b.account && a.asset < b.asset)
}
