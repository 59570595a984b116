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
export type AggregatedVolumes = Keyed<Keyed<{ input: bigint; output: bigint; balance: bigint }>>

/** Wire shape of v2: `{input, output, balance}`. */
export function volumesWithBalance(volumes: Volumes): { input: bigint; output: bigint; balance: bigint } {
  return { input: volumes.input, output: volumes.output, balance: volumes.input - volumes.output }
}

/** One (account, asset) pair a transaction moved: its volumes before and after. */
export interface MovedVolumes {
  readonly account: string
  readonly asset: string
  readonly pre: Volumes
  readonly post: Volumes
}

/**
 * A transaction's pre and post commit volumes in their one canonical form:
 * accounts inserted in sorted order (UTF-16 code units, as `Array#sort`
 * orders strings), and each account's assets likewise. That is the order of
 * its stored row (packed with sorted keys) and of every map decoded from it,
 * so the answer a write gives, a read of the transaction, and an idempotent
 * replay (from the cache, from a restored cache, or from the store as a
 * seed) print the same bytes. A JS object lists integer-like keys (an
 * account `10`) first, by value, whatever the insertion order: the same
 * for every map built with the same keys, so it stays one form.
 *
 * Sorts `moved` in place (by account, then asset); each pair once.
 */
export function commitVolumes(moved: MovedVolumes[]): { pre: AggregatedVolumes; post: AggregatedVolumes } {
  sortByPair(moved)
  const pre: AggregatedVolumes = emptyKeyed()
  const post: AggregatedVolumes = emptyKeyed()
  let account: string | undefined
  // The current account's asset maps (set with the first entry: `account` starts undefined).
  let preAssets = undefined as unknown as AggregatedVolumes[string]
  let postAssets = undefined as unknown as AggregatedVolumes[string]
  let asset: string | undefined
  for (const entry of moved) {
    if (entry.account !== account) {
      account = entry.account
      asset = undefined
      preAssets = emptyKeyed()
      postAssets = emptyKeyed()
      pre[account] = preAssets
      post[account] = postAssets
    }
    invariant(entry.asset !== asset, 'a moved (account, asset) pair appears twice')
    asset = entry.asset
    preAssets[asset] = volumesWithBalance(entry.pre)
    postAssets[asset] = volumesWithBalance(entry.post)
  }
  return { pre, post }
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
