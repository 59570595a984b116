import type { AccountAddress, Asset, LedgerName, Posting, Volumes } from '../domain/index.ts'
import { TallyError, WORLD, addInput, addOutput, balanceOf, compareDates, emptyKeyed, fitsVolume, invariant, mergeMetadata, ownValue, storedMetadata } from '../domain/index.ts'
import type { Keyed, Metadata } from '../domain/index.ts'
import type { Scope } from './scope.ts'
import { readAccount, readVolumes, writeAccount, writeVolumes } from './scope.ts'
import type { AggregatedVolumes } from './output.ts'
import { addAggregated } from './output.ts'

interface Moved {
  readonly account: AccountAddress
  readonly asset: Asset
  readonly pre: Volumes
  post: Volumes
}

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
  const moved = new Map<string, Moved>()
  const touch = (account: AccountAddress, asset: Asset): Moved => {
    const id = `${account}\u0000${asset}`
    let entry = moved.get(id)
    if (entry === undefined) {
      const volumes = readVolumes(scope, ledger, account, asset)
      entry = { account, asset, pre: volumes, post: volumes }
      moved.set(id, entry)
    }
    return entry
  }
  for (const posting of postings) {
    invariant(posting.amount >= 0n, 'posting amounts are validated non-negative')
    const source = touch(posting.source, posting.asset)
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
    const destination = touch(posting.destination, posting.asset)
    if (!fitsVolume(destination.post.input, posting.amount)) throw volumeLimitReached(posting, posting.destination, 'input', destination.post.input)
    destination.post = addInput(destination.post, posting.amount)
  }
  const pre: AggregatedVolumes = emptyKeyed()
  const post: AggregatedVolumes = emptyKeyed()
  for (const entry of moved.values()) {
    writeVolumes(scope, ledger, entry.account, entry.asset, entry.post)
    addAggregated(pre, entry.account, entry.asset, entry.pre)
    addAggregated(post, entry.account, entry.asset, entry.post)
  }
  return { pre, post }
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
  metadataByAccount: Readonly<Keyed<Metadata>> = emptyKeyed(),
): bigint {
  let created = 0n
  for (const address of new Set(accounts)) {
    const existing = readAccount(scope, ledger, address)
    const metadata = ownValue(metadataByAccount, address)
    if (existing === undefined) {
      created++
      writeAccount(scope, ledger, {
        address,
        metadata: storedMetadata(metadata ?? emptyKeyed()),
        insertionDate: scope.date,
        updatedAt: scope.date,
        firstUsage: usedAt,
      })
    } else if (metadata !== undefined || compareDates(usedAt, existing.firstUsage) < 0) {
      // Dates compare as instants: `….123Z` is earlier than `….123456Z`, though not as text.
      writeAccount(scope, ledger, {
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
  const accounts: AccountAddress[] = []
  for (const posting of postings) accounts.push(posting.source, posting.destination)
  return accounts
}
