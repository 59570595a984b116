import type { AccountAddress, Asset } from './names.ts'
import { parseAccountAddress, parseAsset, describe } from './names.ts'
import type { Amount } from './amount.ts'
import { parseAmount } from './amount.ts'
import { validationError } from './errors.ts'
import { isJsonObject } from './json.ts'

export interface Posting {
  readonly source: AccountAddress
  readonly destination: AccountAddress
  readonly amount: Amount
  readonly asset: Asset
}

export const postingsPerTransactionMax = 1000

export function parsePosting(value: unknown, field: string): Posting {
  if (!isJsonObject(value)) throw validationError(`${field}: expected an object, got ${describe(value)}`)
  for (const key of Object.keys(value)) {
    if (key !== 'source' && key !== 'destination' && key !== 'amount' && key !== 'asset') {
      throw validationError(`${field}: unknown field ${JSON.stringify(key)}`)
    }
  }
  return {
    source: parseAccountAddress(value.source, `${field}.source`),
    destination: parseAccountAddress(value.destination, `${field}.destination`),
    amount: parseAmount(value.amount, `${field}.amount`),
    asset: parseAsset(value.asset, `${field}.asset`),
  }
}

export function parsePostings(value: unknown, field = 'postings'): Posting[] {
  if (!Array.isArray(value)) throw validationError(`${field}: expected an array, got ${describe(value)}`)
  if (value.length > postingsPerTransactionMax) {
    throw validationError(`${field}: more than ${postingsPerTransactionMax} postings`)
  }
  return value.map((entry, i) => parsePosting(entry, `${field}[${i}]`))
}
