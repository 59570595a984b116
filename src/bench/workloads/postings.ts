import { invariant } from '../../domain/index.ts'
import type { Random } from '../random.ts'
import type { WorkloadSettings } from '../workload.ts'

export const benchAsset = 'USD/2'
/** Amounts are drawn uniformly from [1, amountMax] minor units. */
export const amountMax = 10_000

export interface BenchPosting {
  readonly source: string
  readonly destination: string
  readonly amount: bigint
  readonly asset: string
}

/** A `V2PostTransaction` body; `amount` stays a bigint so the lossless codec prints it as an integer. */
export interface BenchTransactionData {
  readonly postings: BenchPosting[]
  readonly metadata: Record<string, string>
  readonly force?: true
}

export function userAccount(index: number): string {
  return `users:${index}`
}

/**
 * The next transaction of a client: `world → users:k` funding, or — with
 * probability `forceRatio` — a `users:i → users:j` transfer (i ≠ j) with
 * `force: true`, which the ledger must accept even when `users:i` would go
 * negative. Transfers touch two hot accounts, so they exercise admission's
 * conflict handling in a way funding from `world` does not.
 */
export function nextTransactionData(settings: WorkloadSettings, random: Random): BenchTransactionData {
  invariant(settings.accounts >= 1, 'at least one account')
  const amount = BigInt(1 + random.nextInt(amountMax))
  invariant(amount > 0n, 'bench amounts are positive')
  const transfer = settings.forceRatio > 0 && settings.accounts >= 2 && random.nextFloat() < settings.forceRatio
  if (!transfer) {
    const destination = userAccount(random.nextInt(settings.accounts))
    return { postings: [{ source: 'world', destination, amount, asset: benchAsset }], metadata: {} }
  }
  const sourceIndex = random.nextInt(settings.accounts)
  const destinationIndex = (sourceIndex + 1 + random.nextInt(settings.accounts - 1)) % settings.accounts
  invariant(sourceIndex !== destinationIndex, 'a transfer moves money between two different accounts')
  return {
    postings: [{ source: userAccount(sourceIndex), destination: userAccount(destinationIndex), amount, asset: benchAsset }],
    metadata: {},
    force: true,
  }
}

export function ledgerPath(ledger: string): string {
  return `/v2/${encodeURIComponent(ledger)}`
}
