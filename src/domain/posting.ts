import type { AccountAddress, Asset } from './names.ts'
import { isAccountAddress, isAsset, parseAccountAddress, parseAsset, describe } from './names.ts'
import type { Amount } from './amount.ts'
import { isAmount, parseAmount } from './amount.ts'
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
  return parsePostingAt(value, field, -1)
}

/**
 * `parsePosting` of `field[index]` (of `field` itself when `index` is -1).
 * A field's name is spelled out only for a refusal: a bulk parses thousands
 * of postings that need none.
 */
function parsePostingAt(value: unknown, field: string, index: number): Posting {
  if (!isJsonObject(value)) throw validationError(`${postingField(field, index)}: expected an object, got ${describe(value)}`)
  for (const key of Object.keys(value)) {
    if (key !== 'source' && key !== 'destination' && key !== 'amount' && key !== 'asset') {
      throw validationError(`${postingField(field, index)}: unknown field ${JSON.stringify(key)}`)
    }
  }
  const { source, destination, amount, asset } = value
  return {
    source: isAccountAddress(source) ? source : parseAccountAddress(source, `${postingField(field, index)}.source`),
    destination: isAccountAddress(destination) ? destination : parseAccountAddress(destination, `${postingField(field, index)}.destination`),
    amount: isAmount(amount) ? amount : parseAmount(amount, `${postingField(field, index)}.amount`),
    asset: isAsset(asset) ? asset : parseAsset(asset, `${postingField(field, index)}.asset`),
  }
}

function postingField(field: string, index: number): string {
  return index < 0 ? field : `${field}[${index}]`
}

export function parsePostings(value: unknown, field = 'postings'): Posting[] {
  if (!Array.isArray(value)) throw validationError(`${field}: expected an array, got ${describe(value)}`)
  if (value.length > postingsPerTransactionMax) {
    throw validationError(`${field}: more than ${postingsPerTransactionMax} postings`)
  }
  const postings: Posting[] = []
  for (let i = 0; i < value.length; i++) postings.push(parsePostingAt(value[i], field, i))
  return postings
}
