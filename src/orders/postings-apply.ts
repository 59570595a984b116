import type { AccountAddress, Asset, CanonicalKey, LedgerName, Posting, Volumes } from '../domain/index.ts'
import { TallyError, WORLD, accountKey, addInput, canonicalAccountMetadata, addOutput, balanceOf, commitVolumes, compareDates, emptyKeyed, fitsVolume, invariant, isSharedEmptyAccountMetadata, mergeMetadata, ownValue, storedMetadata, volumesKey } from '../domain/index.ts'
import type { Keyed, Metadata } from '../domain/index.ts'
import type { Scope } from './scope.ts'
import { readAccountAt, readVolumesAt, writeAccountAt, writeVolumesAt } from './scope.ts'
import type { AggregatedVolumes } from './output.ts'

interface Moved {
  readonly account: AccountAddress
  readonly asset: Asset
  /** Its volumes key, built once for the read and the write. */
  readonly key: CanonicalKey
  readonly pre: Volumes
  post: Volumes
}

/**
 * Up to this many postings, the (account, asset) pairs a transaction moves
 * are found by comparing in place (a transfer moves two); past it, through a
 * map, so the work stays linear.
 */
const PAIR_SCAN_POSTINGS_MAX = 8

/**
 * Applies postings in order, as v2 does (each posting is a `send` checked
 * against the balance left by the ones before it). A source other than
 * `world` may not go below zero unless `force`. Writes volumes and returns
 * pre/post commit volumes of every touched account.
 */
export function applyPostings(
  scope: Scope,
  ledger: LedgerName,
  postings: readonly Posting[],
  force: boolean,
): { pre: AggregatedVolumes; post: AggregatedVolumes } {
  // Pairs in the order first moved (the order of their writes).
  const moved: Moved[] = []
  const byPair = postings.length > PAIR_SCAN_POSTINGS_MAX ? new Map<string, Moved>() : undefined
  for (const posting of postings) {
    invariant(posting.amount >= 0n, 'posting amounts are validated non-negative')
    const source = touch(scope, ledger, moved, byPair, posting.source, posting.asset)
    if (posting.source !== WORLD && !force) {
      const available = balanceOf(source.post)
      if (available < posting.amount) {
        throw new TallyError({
          code: 'INSUFFICIENT_FUND',
          kind: 'business',
          message: `account ${posting.source} had insufficient funds: balance ${available} ${posting.asset}, needed ${posting.amount}`,
          details: { account: posting.source, asset: posting.asset, needed: String(posting.amount), available: String(available) },
        })
      }
    }
    if (!fitsVolume(source.post.output, posting.amount)) throw volumeLimitReached(posting, posting.source, 'output', source.post.output)
    source.post = addOutput(source.post, posting.amount)
    const destination = touch(scope, ledger, moved, byPair, posting.destination, posting.asset)
    if (!fitsVolume(destination.post.input, posting.amount)) throw volumeLimitReached(posting, posting.destination, 'input', destination.post.input)
    destination.post = addInput(destination.post, posting.amount)
  }
  for (const entry of moved) writeVolumesAt(scope, entry.key, entry.post)
  // Written in the order first moved; answered in the canonical order (the stored row's).
  return commitVolumes(moved)
}

/** The pair's entry, its volumes read on first touch. */
function touch(scope: Scope, ledger: LedgerName, moved: Moved[], byPair: Map<string, Moved> | undefined, account: AccountAddress, asset: Asset): Moved {
  const pair = byPair === undefined ? undefined : `${account}\u0000${asset}`
  if (pair === undefined) {
    for (const entry of moved) if (entry.account === account && entry.asset === asset) return entry
  } else {
    const found = byPair?.get(pair)
    if (found !== undefined) return found
  }
  const key = volumesKey(ledger, account, asset)
  const volumes = readVolumesAt(scope, key)
  const entry: Moved = { account, asset, key, pre: volumes, post: volumes }
  moved.push(entry)
  if (pair !== undefined) byPair?.set(pair, entry)
  return entry
}

/**
 * Volumes are amounts, so they stop at 2^256 - 1 like any amount (stored,
 * printed and summed exactly): the posting that would pass the bound is
 * refused here, in the apply path, so every replica refuses the same one.
 */
function volumeLimitReached(posting: Posting, account: AccountAddress, side: 'input' | 'output', volume: bigint): TallyError {
  return new TallyError({
    code: 'VALIDATION',
    kind: 'business',
    message: `account ${account}: its ${side} volume of ${posting.asset} (${volume}) plus ${posting.amount} would pass 2^256 - 1, the largest volume`,
    details: { account, asset: posting.asset, side, volume: String(volume), amount: String(posting.amount) },
  })
}

/** Accounts exist from first use: creates missing records, moves firstUsage back on a backdated use. */
export function touchAccounts(
  scope: Scope,
  ledger: LedgerName,
  accounts: Iterable<AccountAddress>,
  usedAt: string,
  // None given (a revert): the shared empty map, which the loop below recognises.
  metadataByAccount: Readonly<Keyed<Metadata>> = canonicalAccountMetadata([]),
): bigint {
  let created = 0n
  // A write naming no account metadata (most) has the shared empty map: no lookup per account.
  const noMetadata = isSharedEmptyAccountMetadata(metadataByAccount)
  for (const address of distinct(accounts)) {
    const key = accountKey(ledger, address)
    const existing = readAccountAt(scope, key)
    const metadata = noMetadata ? undefined : ownValue(metadataByAccount, address)
    if (existing === undefined) {
      created++
      writeAccountAt(scope, key, {
        address,
        metadata: storedMetadata(metadata ?? emptyKeyed()),
        insertionDate: scope.date,
        updatedAt: scope.date,
        firstUsage: usedAt,
      })
    } else if (metadata !== undefined || compareDates(usedAt, existing.firstUsage) < 0) {
      // Dates compare as instants: `….123Z` is earlier than `….123456Z`, though not as text.
      writeAccountAt(scope, key, {
        ...existing,
        metadata: metadata === undefined ? existing.metadata : mergeMetadata(existing.metadata, metadata),
        updatedAt: metadata === undefined ? existing.updatedAt : scope.date,
        firstUsage: compareDates(usedAt, existing.firstUsage) < 0 ? usedAt : existing.firstUsage,
      })
    }
  }
  return created
}

export function accountsOf(postings: readonly Posting[]): AccountAddress[] {
  // A transfer's two accounts in a list of their size, not one grown by pushes.
  if (postings.length === 1) return [(postings[0] as Posting).source, (postings[0] as Posting).destination]
  const accounts: AccountAddress[] = []
  for (const posting of postings) accounts.push(posting.source, posting.destination)
  return accounts
}

/** Up to this many accounts, repeats are found by comparing in place; past it, through a set. */
const DISTINCT_SCAN_MAX = 16

/** `accounts` once each, first occurrences in order. */
function distinct(accounts: Iterable<AccountAddress>): Iterable<AccountAddress> {
  if (!Array.isArray(accounts) || accounts.length > DISTINCT_SCAN_MAX) return new Set(accounts)
  const list = accounts as readonly AccountAddress[]
  // No repeat (a transfer between two accounts): the list itself, read only, no copy.
  if (!hasRepeat(list)) return list
  const once: AccountAddress[] = []
  for (const account of list) if (!once.includes(account)) once.push(account)
  return once
}

function hasRepeat(list: readonly AccountAddress[]): boolean {
  for (let i = 1; i < list.length; i++) {
    for (let j = 0; j < i; j++) if (list[j] === list[i]) return true
  }
  return false
}
