import { validationError } from './errors.ts'
import type { TallyError } from './errors.ts'

/** Branded strings: values that must not be mixed up with one another. */
export type LedgerName = string & { readonly __brand: 'LedgerName' }
export type AccountAddress = string & { readonly __brand: 'AccountAddress' }
export type Asset = string & { readonly __brand: 'Asset' }

export const LEDGER_NAME_PATTERN = /^[a-zA-Z0-9_-]{1,63}$/
export const ACCOUNT_ADDRESS_PATTERN = /^[a-zA-Z0-9_-]+(:[a-zA-Z0-9_-]+)*$/
export const ASSET_PATTERN = /^[A-Z][A-Z0-9]{0,16}(_[A-Z]{1,16})?(\/\d{1,6})?$/

/** The unbounded source of every asset. */
export const WORLD = 'world' as AccountAddress

/** Longest address we accept; bounds key sizes in the store. */
export const accountAddressLengthMax = 1024
/** The limits `LEDGER_NAME_PATTERN` and `ASSET_PATTERN` encode, named so that a refusal can say which one was passed. */
export const ledgerNameLengthMax = 63
export const assetCodeLengthMax = 17
export const assetSuffixLengthMax = 16
export const assetPrecisionDigitsMax = 6

/**
 * A value over a length limit is refused saying so (and by how much), not
 * as a malformed value: the client's fix is to shorten it, not to change
 * its characters. Every length-limited field goes through here.
 */
export function lengthLimitError(field: string, what: string, length: number, lengthMax: number): TallyError {
  return validationError(`${field}: ${what} of ${length} characters is longer than the limit of ${lengthMax}`)
}

export function isLedgerName(value: unknown): value is LedgerName {
  return typeof value === 'string' && LEDGER_NAME_PATTERN.test(value)
}

export function isAccountAddress(value: unknown): value is AccountAddress {
  return (
    typeof value === 'string' && value.length <= accountAddressLengthMax && ACCOUNT_ADDRESS_PATTERN.test(value)
  )
}

export function isAsset(value: unknown): value is Asset {
  return typeof value === 'string' && ASSET_PATTERN.test(value)
}

export function parseLedgerName(value: unknown, field = 'ledger'): LedgerName {
  if (typeof value === 'string' && value.length > ledgerNameLengthMax) throw lengthLimitError(field, 'ledger name', value.length, ledgerNameLengthMax)
  if (!isLedgerName(value)) {
    throw validationError(`${field}: invalid ledger name ${describe(value)}, expected ${LEDGER_NAME_PATTERN.source}`)
  }
  return value
}

export function parseAccountAddress(value: unknown, field = 'address'): AccountAddress {
  if (typeof value === 'string' && value.length > accountAddressLengthMax) {
    throw lengthLimitError(field, 'account address', value.length, accountAddressLengthMax)
  }
  if (!isAccountAddress(value)) {
    throw validationError(`${field}: invalid account address ${describe(value)}, expected ${ACCOUNT_ADDRESS_PATTERN.source}`)
  }
  return value
}

/** `ASSET_PATTERN` without its length bounds: a value of this shape that is not an asset is too long somewhere. */
const ASSET_SHAPE = /^([A-Z][A-Z0-9]*)(?:_([A-Z]+))?(?:\/(\d+))?$/

export function parseAsset(value: unknown, field = 'asset'): Asset {
  // The common case first: the shape's parts are matched only to explain a refusal.
  if (isAsset(value)) return value
  const shape = typeof value === 'string' ? ASSET_SHAPE.exec(value) : null
  if (shape !== null) {
    const [, code = '', suffix = '', precision = ''] = shape
    if (code.length > assetCodeLengthMax) throw lengthLimitError(field, 'asset code', code.length, assetCodeLengthMax)
    if (suffix.length > assetSuffixLengthMax) throw lengthLimitError(field, 'asset suffix (after _)', suffix.length, assetSuffixLengthMax)
    if (precision.length > assetPrecisionDigitsMax) throw lengthLimitError(field, 'asset precision (after /)', precision.length, assetPrecisionDigitsMax)
  }
  throw validationError(`${field}: invalid asset ${describe(value)}, expected ${ASSET_PATTERN.source}`)
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)
  if (typeof value === 'bigint') return value.toString()
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : String(value)
}
