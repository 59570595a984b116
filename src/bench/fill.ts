import { invariant } from '../domain/index.ts'
import { NetworkError, type HttpTransport } from './http.ts'
import { Random, deriveSeed } from './random.ts'
import type { WorkloadSettings } from './workload.ts'
import { amountMax, encodeTransaction, ledgerPath } from './workloads/postings.ts'
import { classifyBulk } from './workloads/responses.ts'

/**
 * Fills the bench ledger before the measured load, so reads find what they
 * ask for and scan what a used ledger holds: `transactions` funding
 * transactions `world → users:k` through non-atomic `_bulk` requests of the
 * run's bulk size. The first `accounts` of them fund `users:0`, `users:1`, …
 * in order, so every account a read workload draws exists; the rest go to
 * accounts drawn at random from the fill's own seeded stream. Not measured:
 * the run's meters start after it.
 */
export interface FillOptions {
  readonly transport: HttpTransport
  readonly settings: WorkloadSettings
  readonly transactions: number
  readonly seed: number
  /** Bulk requests in flight at once. */
  readonly concurrency?: number
  /** Called after each answered bulk with the transactions committed so far. */
  readonly onProgress?: (committed: number) => void
}

export interface FillResult {
  readonly transactions: number
  readonly elapsedMs: number
}

/** A fill that did not commit every transaction it sent. */
export class FillError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'FillError'
  }
}

export const fillConcurrencyDefault = 4
/** Named bound on `--fill`. */
export const fillTransactionsMax = 100_000_000

const elementPrefix = '{"action":"CREATE_TRANSACTION","data":'

export async function fillLedger(options: FillOptions): Promise<FillResult> {
  const { settings, transactions } = options
  invariant(Number.isSafeInteger(transactions) && transactions >= 0 && transactions <= fillTransactionsMax, `fill transactions must be in [0, ${fillTransactionsMax}]`)
  invariant(settings.bulkSize >= 1 && settings.accounts >= 1, 'a fill needs a bulk size and accounts')
  const concurrency = options.concurrency ?? fillConcurrencyDefault
  invariant(Number.isSafeInteger(concurrency) && concurrency >= 1, 'fill concurrency is a positive integer')
  // Its own stream (no workload has index 0xffff_ffff), so the measured run draws the same requests with or without a fill.
  const random = new Random(deriveSeed(options.seed, 0xffff_ffff, 0))
  const path = `${ledgerPath(settings.ledger)}/_bulk?atomic=false`
  const startedMs = performance.now()
  let next = 0
  let committed = 0

  const body = (from: number, count: number): string => {
    let text = '['
    for (let index = 0; index < count; index++) {
      const ordinal = from + index
      const destinationIndex = ordinal < settings.accounts ? ordinal : random.nextInt(settings.accounts)
      const amount = 1 + random.nextInt(amountMax)
      text += `${index === 0 ? '' : ','}${elementPrefix}${encodeTransaction({ sourceIndex: undefined, destinationIndex, amount })}}`
    }
    return `${text}]`
  }

  const client = async (): Promise<void> => {
    while (next < transactions) {
      const count = Math.min(settings.bulkSize, transactions - next)
      const request = { method: 'POST' as const, path, body: body(next, count), operations: count }
      next += count
      let response
      try {
        response = await options.transport.send(request)
      } catch (error) {
        if (error instanceof NetworkError) throw new FillError(`fill: a bulk got no answer (${error.code})`)
        throw error
      }
      const outcome = classifyBulk(response, count)
      if (!outcome.ok || outcome.transactions !== count) {
        const causes = outcome.failures.map((failure) => `${failure.key} × ${failure.operations}`).join(', ')
        throw new FillError(`fill: a bulk of ${count} committed ${outcome.transactions} (${causes})`)
      }
      committed += count
      options.onProgress?.(committed)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, client))
  invariant(committed === transactions, 'a finished fill committed every transaction it sent')
  return { transactions: committed, elapsedMs: performance.now() - startedMs }
}
