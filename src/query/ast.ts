import type { Asset } from '../domain/index.ts'
import type { AddressPattern } from './address.ts'
import type { Instant } from './instant.ts'
import type { LikePattern } from './like.ts'

/** The list/count endpoints a filter can be written for. */
export type Resource = 'accounts' | 'transactions' | 'logs' | 'volumes'

export const RESOURCES: readonly Resource[] = ['accounts', 'transactions', 'logs', 'volumes']

/** Leaf operators, as written on the wire. */
export type Operator = '$match' | '$in' | '$exists' | '$like' | '$lt' | '$gt' | '$lte' | '$gte'
export const OPERATORS: readonly Operator[] = ['$match', '$in', '$exists', '$like', '$lt', '$gt', '$lte', '$gte']

/** Operators that compare an ordered value (integers, amounts, instants). */
export type Comparison = '$match' | '$lt' | '$gt' | '$lte' | '$gte'

/** Canonical field names (aliases such as volumes' `account` resolve to these). */
export type FieldName =
  | 'address'
  | 'account'
  | 'source'
  | 'destination'
  | 'balance'
  | 'metadata'
  | 'first_usage'
  | 'insertion_date'
  | 'updated_at'
  | 'timestamp'
  | 'inserted_at'
  | 'date'
  | 'id'
  | 'reference'
  | 'type'
  | 'reverted'

export type AddressField = 'address' | 'account' | 'source' | 'destination'
export type DateField = 'first_usage' | 'insertion_date' | 'updated_at' | 'timestamp' | 'inserted_at' | 'date'
export type StringField = 'reference' | 'type'

export type StringTest =
  | { readonly operator: '$match'; readonly value: string }
  | { readonly operator: '$in'; readonly values: readonly string[] }
  | { readonly operator: '$like'; readonly pattern: LikePattern }

export type Leaf =
  | { readonly kind: 'address'; readonly field: AddressField; readonly pattern: AddressPattern }
  | { readonly kind: 'id'; readonly operator: Comparison; readonly value: bigint }
  | { readonly kind: 'date'; readonly field: DateField; readonly operator: Comparison; readonly value: Instant }
  /** `balance[ASSET]` when `asset` is set, plain `balance` otherwise. */
  | { readonly kind: 'balance'; readonly asset: Asset | undefined; readonly operator: Comparison; readonly value: bigint }
  | { readonly kind: 'string'; readonly field: StringField; readonly test: StringTest }
  | { readonly kind: 'metadata'; readonly key: string; readonly test: StringTest }
  /** `{"$exists": {"metadata": KEY}}`. */
  | { readonly kind: 'metadata_exists'; readonly key: string }
  | { readonly kind: 'reverted'; readonly value: boolean }

export type FilterNode =
  | { readonly kind: 'and'; readonly items: readonly FilterNode[] }
  | { readonly kind: 'or'; readonly items: readonly FilterNode[] }
  | { readonly kind: 'not'; readonly item: FilterNode }
  | Leaf

/** A validated filter for one resource; `root` undefined means "everything". */
export interface Filter<R extends Resource = Resource> {
  readonly resource: R
  readonly root: FilterNode | undefined
}

// ---------------------------------------------------------------------------
// The records a filter is evaluated against. Dates are RFC 3339 strings.

export type MetadataView = Readonly<Record<string, string>>

export interface AccountFilterRecord {
  readonly address: string
  readonly metadata: MetadataView
  /** One entry per asset the account has volumes in (a zero balance is an entry). */
  readonly balances: ReadonlyMap<string, bigint>
  readonly firstUsage: string
  readonly insertionDate: string
  readonly updatedAt: string
}

/** Structurally satisfied by the domain's `TransactionRecord`. */
export interface TransactionFilterRecord {
  readonly id: bigint
  readonly reference?: string | undefined
  readonly timestamp: string
  readonly insertedAt: string
  readonly reverted: boolean
  readonly postings: readonly { readonly source: string; readonly destination: string }[]
  readonly metadata: MetadataView
}

export interface LogFilterRecord {
  readonly id: bigint
  readonly type: string
  readonly date: string
}

/** One row of `/v2/{ledger}/volumes`: an (account, asset) pair. */
export interface VolumeFilterRecord {
  readonly address: string
  readonly asset: string
  readonly balance: bigint
  readonly metadata: MetadataView
  readonly firstUsage: string
}

export type RecordOf<R extends Resource> = R extends 'accounts'
  ? AccountFilterRecord
  : R extends 'transactions'
    ? TransactionFilterRecord
    : R extends 'logs'
      ? LogFilterRecord
      : VolumeFilterRecord
