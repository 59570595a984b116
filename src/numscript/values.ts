/**
 * Runtime values of Numscript, exact rationals for portions, and the asset
 * and account helpers shared by the checker, the interpreter and the runner.
 */
import { ACCOUNT_ADDRESS_PATTERN, ASSET_PATTERN, invariant } from '../domain/index.ts'
import type { VariableType } from './ast.ts'

/** An exact non-normalised-free rational: `denominator > 0`, gcd(|n|, d) = 1. */
export interface Rational {
  readonly numerator: bigint
  readonly denominator: bigint
}

export type Value =
  | { readonly type: 'number'; readonly value: bigint }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'asset'; readonly value: string }
  | { readonly type: 'account'; readonly value: string }
  | { readonly type: 'portion'; readonly value: Rational }
  | { readonly type: 'monetary'; readonly asset: string; readonly amount: bigint }

function abs(n: bigint): bigint {
  return n < 0n ? -n : n
}

export function gcd(a: bigint, b: bigint): bigint {
  let x = abs(a)
  let y = abs(b)
  while (y !== 0n) {
    const t = x % y
    x = y
    y = t
  }
  return x
}

export function rational(numerator: bigint, denominator: bigint): Rational {
  invariant(denominator !== 0n, 'rational with a zero denominator')
  const sign = denominator < 0n ? -1n : 1n
  const divisor = gcd(numerator, denominator)
  const safeDivisor = divisor === 0n ? 1n : divisor
  return { numerator: (sign * numerator) / safeDivisor, denominator: abs(denominator) / safeDivisor }
}

export const ZERO: Rational = { numerator: 0n, denominator: 1n }
export const ONE: Rational = { numerator: 1n, denominator: 1n }

export function addRational(a: Rational, b: Rational): Rational {
  return rational(a.numerator * b.denominator + b.numerator * a.denominator, a.denominator * b.denominator)
}

export function subRational(a: Rational, b: Rational): Rational {
  return rational(a.numerator * b.denominator - b.numerator * a.denominator, a.denominator * b.denominator)
}

export function compareRational(a: Rational, b: Rational): number {
  const left = a.numerator * b.denominator
  const right = b.numerator * a.denominator
  return left < right ? -1 : left > right ? 1 : 0
}

/** floor(portion × amount) for portion ≥ 0 and amount ≥ 0. */
export function floorMultiply(portion: Rational, amount: bigint): bigint {
  invariant(portion.numerator >= 0n, 'floorMultiply: negative portion')
  invariant(amount >= 0n, 'floorMultiply: negative amount')
  return (portion.numerator * amount) / portion.denominator
}

export function minBigint(a: bigint, b: bigint): bigint {
  return a < b ? a : b
}

export function maxBigint(a: bigint, b: bigint): bigint {
  return a > b ? a : b
}

/** The metadata form of a value, as Formance prints it. */
export function valueToString(value: Value): string {
  switch (value.type) {
    case 'number':
      return value.value.toString()
    case 'string':
    case 'asset':
    case 'account':
      return value.value
    case 'portion':
      return `${value.value.numerator}/${value.value.denominator}`
    case 'monetary':
      return `${value.asset} ${value.amount}`
    default: {
      const never: never = value
      return String(never)
    }
  }
}

export function describeValue(value: Value): string {
  return value.type === 'string' ? JSON.stringify(value.value) : `${value.type} ${valueToString(value)}`
}

/** Numscript's asset syntax (also the ledger's): `[A-Z][A-Z0-9]{0,16}(_[A-Z]{1,16})?(/\d{1,6})?`. */
export function isValidAsset(asset: string): boolean {
  return ASSET_PATTERN.test(asset)
}

export function isValidAccount(address: string): boolean {
  return ACCOUNT_ADDRESS_PATTERN.test(address)
}

export const COLOR_PATTERN = /^[A-Z]*$/

/**
 * The ledger asset of a colored balance: `COIN` + `RED` → `COIN_RED`,
 * `USD/4` + `COL` → `USD_COL/4`; the empty color is the plain asset.
 */
export function coloredAsset(asset: string, color: string): string {
  if (color === '') return asset
  const slash = asset.indexOf('/')
  if (slash < 0) return `${asset}_${color}`
  return `${asset.slice(0, slash)}_${color}${asset.slice(slash)}`
}

/** `EUR/2` → { base: 'EUR', scale: 2 }, `EUR` → { base: 'EUR', scale: 0 }. */
export function assetScale(asset: string): { base: string; scale: number } {
  const slash = asset.indexOf('/')
  if (slash < 0) return { base: asset, scale: 0 }
  const scale = Number.parseInt(asset.slice(slash + 1), 10)
  return { base: asset.slice(0, slash), scale: Number.isFinite(scale) ? scale : 0 }
}

export function scaledAsset(base: string, scale: number): string {
  return scale === 0 ? base : `${base}/${scale}`
}

const INTEGER = /^-?[0-9]+$/
const PERCENT = /^([0-9]+)(?:\.([0-9]+))?%$/
const FRACTION = /^([0-9]+)\s?\/\s?([0-9]+)$/

/** Parses `12%`, `12.5%` or `1/3`; undefined when malformed or outside [0, 1]. */
export function parsePortion(text: string): Rational | undefined {
  let result: Rational | undefined
  const percent = PERCENT.exec(text)
  if (percent !== null) {
    const integral = percent[1] ?? '0'
    const fractional = percent[2] ?? ''
    result = rational(BigInt(integral + fractional), 100n * 10n ** BigInt(fractional.length))
  } else {
    const fraction = FRACTION.exec(text)
    if (fraction !== null) {
      const denominator = BigInt(fraction[2] ?? '0')
      if (denominator === 0n) return undefined
      result = rational(BigInt(fraction[1] ?? '0'), denominator)
    }
  }
  if (result === undefined) return undefined
  if (compareRational(result, ZERO) < 0 || compareRational(result, ONE) > 0) return undefined
  return result
}

/**
 * Parses a variable's string form (as in specs files and the v2 API `vars`)
 * into a value of the declared type; returns an error message when malformed.
 */
export function parseVariableValue(type: VariableType, raw: string): Value | string {
  switch (type) {
    case 'monetary': {
      const parts = raw.split(' ')
      const asset = parts[0] ?? ''
      const amount = parts[1] ?? ''
      if (parts.length !== 2) return `expected a monetary like "USD/2 100", got ${JSON.stringify(raw)}`
      if (!isValidAsset(asset)) return `invalid asset ${JSON.stringify(asset)}`
      if (!INTEGER.test(amount)) return `invalid amount ${JSON.stringify(amount)}`
      return { type: 'monetary', asset, amount: BigInt(amount) }
    }
    case 'account':
      if (!isValidAccount(raw)) return `invalid account address ${JSON.stringify(raw)}`
      return { type: 'account', value: raw }
    case 'portion': {
      const portion = parsePortion(raw)
      if (portion === undefined) return `invalid portion ${JSON.stringify(raw)} (expected "N%", "N.M%" or "a/b" between 0 and 1)`
      return { type: 'portion', value: portion }
    }
    case 'asset':
      if (!isValidAsset(raw)) return `invalid asset ${JSON.stringify(raw)}`
      return { type: 'asset', value: raw }
    case 'number':
      if (!INTEGER.test(raw)) return `invalid number ${JSON.stringify(raw)}`
      return { type: 'number', value: BigInt(raw) }
    case 'string':
      return { type: 'string', value: raw }
    default: {
      const never: never = type
      return String(never)
    }
  }
}
