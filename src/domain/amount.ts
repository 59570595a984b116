import { validationError } from './errors.ts'
import { describe } from './names.ts'

/** An unsigned amount, 0 ≤ a < 2^256. Always a bigint, never a JS number. */
export type Amount = bigint

export const AMOUNT_LIMIT = 1n << 256n

export function isAmount(value: unknown): value is Amount {
  return typeof value === 'bigint' && value >= 0n && value < AMOUNT_LIMIT
}

/**
 * v2 amounts are JSON integers in the asset's smallest unit, and nothing
 * else: the lossless codec yields a bigint for those only. A string
 * (`"100"`), a decimal (`100.0`) or an exponent (`1e3`) is refused with a
 * message naming the form, so a client learns what to send rather than
 * having its value reinterpreted.
 */
export function parseAmount(value: unknown, field = 'amount'): Amount {
  if (typeof value === 'bigint') {
    if (value < 0n) throw validationError(`${field}: amount ${value} is negative; amounts are non-negative integers`)
    if (value >= AMOUNT_LIMIT) throw validationError(`${field}: amount exceeds 2^256 - 1, the largest amount`)
    return value
  }
  if (typeof value === 'number') {
    // The codec turns every JSON number with a fraction or an exponent into a `number`.
    if (Number.isInteger(value)) {
      throw validationError(`${field}: written with a decimal point or an exponent (${describe(value)}); amounts are JSON integers, digits only`)
    }
    throw validationError(`${field}: ${describe(value)} is not a whole number; amounts are JSON integers in the asset's smallest unit`)
  }
  if (typeof value === 'string') {
    throw validationError(`${field}: got a string (${describe(value)}); amounts are JSON integers, not strings`)
  }
  throw validationError(`${field}: expected a non-negative JSON integer, got ${describe(value)}`)
}
