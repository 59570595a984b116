import { validationError } from './errors.ts'
import { describe } from './names.ts'

/** An unsigned amount, 0 ≤ a < 2^256. Always a bigint, never a JS number. */
export type Amount = bigint

export const AMOUNT_LIMIT = 1n << 256n

export function isAmount(value: unknown): value is Amount {
  return typeof value === 'bigint' && value >= 0n && value < AMOUNT_LIMIT
}

/**
 * Accepts what the lossless JSON codec yields for an amount: a bigint (JSON
 * integer) or a decimal string of digits (some clients send big amounts as
 * strings). Rejects negative, fractional, non-numeric and out-of-range values.
 */
export function parseAmount(value: unknown, field = 'amount'): Amount {
  let amount: bigint
  if (typeof value === 'bigint') {
    amount = value
  } else if (typeof value === 'string' && /^[0-9]{1,78}$/.test(value)) {
    amount = BigInt(value)
  } else if (typeof value === 'number') {
    throw validationError(`${field}: ${describe(value)} is not a non-negative integer amount`)
  } else {
    throw validationError(`${field}: expected a non-negative integer, got ${describe(value)}`)
  }
  if (amount < 0n) throw validationError(`${field}: amount ${amount} is negative`)
  if (amount >= AMOUNT_LIMIT) throw validationError(`${field}: amount exceeds 2^256 - 1`)
  return amount
}
