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
 * One transaction's random choices: `world → users:k` funding, or — with
 * probability `forceRatio` — a `users:i → users:j` transfer (i ≠ j) with
 * `force: true`, which the ledger must accept even when `users:i` would go
 * negative. Transfers touch two hot accounts, so they exercise admission's
 * conflict handling in a way funding from `world` does not. Drawn once and
 * rendered either as an object or straight as wire text, so both forms come
 * from the same draws.
 */
export interface TransactionDraw {
  /** Undefined for funding from `world`. */
  readonly sourceIndex: number | undefined
  readonly destinationIndex: number
  readonly amount: number
}

export function drawTransaction(settings: WorkloadSettings, random: Random): TransactionDraw {
  invariant(settings.accounts >= 1, 'at least one account')
  const amount = 1 + random.nextInt(amountMax)
  invariant(amount > 0 && amount <= amountMax, 'bench amounts are positive and bounded')
  const transfer = settings.forceRatio > 0 && settings.accounts >= 2 && random.nextFloat() < settings.forceRatio
  if (!transfer) return { sourceIndex: undefined, destinationIndex: random.nextInt(settings.accounts), amount }
  const sourceIndex = random.nextInt(settings.accounts)
  const destinationIndex = (sourceIndex + 1 + random.nextInt(settings.accounts - 1)) % settings.accounts
  invariant(sourceIndex !== destinationIndex, 'a transfer moves money between two different accounts')
  return { sourceIndex, destinationIndex, amount }
}

/** The next transaction of a client as a `V2PostTransaction` object. */
export function nextTransactionData(settings: WorkloadSettings, random: Random): BenchTransactionData {
  return transactionDataOf(drawTransaction(settings, random))
}

export function transactionDataOf(draw: TransactionDraw): BenchTransactionData {
  const destination = userAccount(draw.destinationIndex)
  const amount = BigInt(draw.amount)
  if (draw.sourceIndex === undefined) return { postings: [{ source: 'world', destination, amount, asset: benchAsset }], metadata: {} }
  return { postings: [{ source: userAccount(draw.sourceIndex), destination, amount, asset: benchAsset }], metadata: {}, force: true }
}

/**
 * The same transaction as wire text, written directly: the load generator
 * must cost little beside the server, and going through objects and the
 * lossless codec cost ~3 µs per transaction. Account names and the asset are
 * fixed ASCII without quotes or backslashes, so they need no escaping; a test
 * holds this text equal to `stringifyJson(transactionDataOf(draw))`.
 */
export function encodeTransaction(draw: TransactionDraw): string {
  const source = draw.sourceIndex === undefined ? 'world' : userAccount(draw.sourceIndex)
  const posting = `{"source":"${source}","destination":"users:${draw.destinationIndex}","amount":${draw.amount},"asset":"${benchAsset}"}`
  return draw.sourceIndex === undefined ? `{"postings":[${posting}],"metadata":{}}` : `{"postings":[${posting}],"metadata":{},"force":true}`
}

export function ledgerPath(ledger: string): string {
  return `/v2/${encodeURIComponent(ledger)}`
}
