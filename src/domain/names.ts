import { validationError } from './errors.ts'

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
  if (!isLedgerName(value)) {
    throw validationError(`${field}: invalid ledger name ${describe(value)}, expected ${LEDGER_NAME_PATTERN.source}`)
  }
  return value
}

export function parseAccountAddress(value: unknown, field = 'address'): AccountAddress {
  if (!isAccountAddress(value)) {
    throw validationError(`${field}: invalid account address ${describe(value)}, expected ${ACCOUNT_ADDRESS_PATTERN.source}`)
  }
  return value
}

export function parseAsset(value: unknown, field = 'asset'): Asset {
  if (!isAsset(value)) {
    throw validationError(`${field}: invalid asset ${describe(value)}, expected ${ASSET_PATTERN.source}`)
  }
  return value
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)
  if (typeof value === 'bigint') return value.toString()
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : String(value)
}
