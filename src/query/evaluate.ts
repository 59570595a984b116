import { InvariantViolation } from '../domain/index.ts'
import type {
  AccountFilterRecord,
  Comparison,
  DateField,
  Filter,
  FilterNode,
  Leaf,
  LogFilterRecord,
  MetadataView,
  RecordOf,
  Resource,
  StringTest,
  TransactionFilterRecord,
  VolumeFilterRecord,
} from './ast.ts'
import { matchesAddressPattern } from './address.ts'
import { parseInstant } from './instant.ts'
import { matchesLike } from './like.ts'

/**
 * SQL's three-valued logic, which v2 inherits from Postgres: a comparison
 * with a missing value (a transaction without reference, an account without
 * volumes in the asset) is `undefined` — unknown — and stays unknown under
 * `$not`. A record is selected only when the whole filter is `true`.
 */
export type Truth = boolean | undefined

/** True when `record` is selected by `filter` (no filter selects everything). */
export function matches<R extends Resource>(filter: Filter<R>, record: RecordOf<R>): boolean {
  return evaluate(filter, record) === true
}

/** The three-valued result of `filter` on `record`. */
export function evaluate<R extends Resource>(filter: Filter<R>, record: RecordOf<R>): Truth {
  const root = filter.root
  if (root === undefined) return true
  // `RecordOf<R>` is tied to `filter.resource` by the signature; TypeScript
  // cannot narrow a generic through it, hence the casts.
  const resource: Resource = filter.resource
  switch (resource) {
    case 'accounts':
      return node(root, record as AccountFilterRecord, accountLeaf)
    case 'transactions':
      return node(root, record as TransactionFilterRecord, transactionLeaf)
    case 'logs':
      return node(root, record as LogFilterRecord, logLeaf)
    case 'volumes':
      return node(root, record as VolumeFilterRecord, volumeLeaf)
    default: {
      const never: never = resource
      throw new InvariantViolation(`unknown filter resource ${String(never)}`)
    }
  }
}

type LeafEvaluator<Rec> = (leaf: Leaf, record: Rec) => Truth

function node<Rec>(filter: FilterNode, record: Rec, leaf: LeafEvaluator<Rec>): Truth {
  switch (filter.kind) {
    case 'and': {
      // Empty $and and empty $or are both true: v2 builds "1 = 1" for an empty set.
      let result: Truth = true
      for (const item of filter.items) {
        const truth = node(item, record, leaf)
        if (truth === false) return false
        if (truth === undefined) result = undefined
      }
      return result
    }
    case 'or': {
      if (filter.items.length === 0) return true
      let result: Truth = false
      for (const item of filter.items) {
        const truth = node(item, record, leaf)
        if (truth === true) return true
        if (truth === undefined) result = undefined
      }
      return result
    }
    case 'not': {
      const truth = node(filter.item, record, leaf)
      return truth === undefined ? undefined : !truth
    }
    default:
      return leaf(filter, record)
  }
}

// ---------------------------------------------------------------------------
// Per-resource leaves. The parser only builds leaves whose field exists on
// the resource; any other leaf here is a bug, not a client error.

function accountLeaf(leaf: Leaf, account: AccountFilterRecord): Truth {
  switch (leaf.kind) {
    case 'address':
      return matchesAddressPattern(leaf.pattern, account.address)
    case 'balance':
      if (leaf.asset !== undefined) {
        const balance = account.balances.get(leaf.asset)
        return balance === undefined ? undefined : compare(leaf.operator, balance, leaf.value)
      }
      return anyBalance(account.balances, leaf.operator, leaf.value)
    case 'metadata':
      return metadataTest(account.metadata, leaf.key, leaf.test)
    case 'metadata_exists':
      return Object.hasOwn(account.metadata, leaf.key)
    case 'date':
      return dateTest(leaf.field, accountDate(account, leaf.field), leaf.operator, leaf.value.nanos)
    default:
      throw misplaced('accounts', leaf)
  }
}

function accountDate(account: AccountFilterRecord, field: DateField): string {
  switch (field) {
    case 'first_usage':
      return account.firstUsage
    case 'insertion_date':
      return account.insertionDate
    case 'updated_at':
      return account.updatedAt
    default:
      throw new InvariantViolation(`accounts have no date field ${field}`)
  }
}

/**
 * Plain `balance` on an account: true when some asset's balance satisfies
 * the comparison, unknown when the account has no volumes at all. (v2 runs a
 * scalar subquery over all the account's assets, which is only well defined
 * for one asset; "any asset" is what it means there.)
 */
function anyBalance(balances: ReadonlyMap<string, bigint>, operator: Comparison, value: bigint): Truth {
  if (balances.size === 0) return undefined
  for (const balance of balances.values()) if (compare(operator, balance, value)) return true
  return false
}

function transactionLeaf(leaf: Leaf, transaction: TransactionFilterRecord): Truth {
  switch (leaf.kind) {
    case 'id':
      return compare(leaf.operator, transaction.id, leaf.value)
    case 'string':
      if (leaf.field !== 'reference') throw misplaced('transactions', leaf)
      // A transaction without reference has SQL NULL there: unknown.
      return transaction.reference === undefined ? undefined : stringTest(leaf.test, transaction.reference)
    case 'date':
      if (leaf.field === 'timestamp') return dateTest(leaf.field, transaction.timestamp, leaf.operator, leaf.value.nanos)
      if (leaf.field === 'inserted_at') return dateTest(leaf.field, transaction.insertedAt, leaf.operator, leaf.value.nanos)
      throw misplaced('transactions', leaf)
    case 'reverted':
      return transaction.reverted === leaf.value
    case 'address': {
      const bySource = leaf.field === 'account' || leaf.field === 'source'
      const byDestination = leaf.field === 'account' || leaf.field === 'destination'
      if (!bySource && !byDestination) throw misplaced('transactions', leaf)
      for (const posting of transaction.postings) {
        if (bySource && matchesAddressPattern(leaf.pattern, posting.source)) return true
        if (byDestination && matchesAddressPattern(leaf.pattern, posting.destination)) return true
      }
      return false
    }
    case 'metadata':
      return metadataTest(transaction.metadata, leaf.key, leaf.test)
    case 'metadata_exists':
      return Object.hasOwn(transaction.metadata, leaf.key)
    default:
      throw misplaced('transactions', leaf)
  }
}

function logLeaf(leaf: Leaf, log: LogFilterRecord): Truth {
  switch (leaf.kind) {
    case 'id':
      return compare(leaf.operator, log.id, leaf.value)
    case 'date':
      if (leaf.field !== 'date') throw misplaced('logs', leaf)
      return dateTest(leaf.field, log.date, leaf.operator, leaf.value.nanos)
    case 'string':
      if (leaf.field !== 'type') throw misplaced('logs', leaf)
      return stringTest(leaf.test, log.type)
    default:
      throw misplaced('logs', leaf)
  }
}

function volumeLeaf(leaf: Leaf, volume: VolumeFilterRecord): Truth {
  switch (leaf.kind) {
    case 'address':
      return matchesAddressPattern(leaf.pattern, volume.address)
    case 'balance':
      // A volumes row is one (account, asset): balance[ASSET] also selects the asset.
      if (leaf.asset !== undefined && volume.asset !== leaf.asset) return false
      return compare(leaf.operator, volume.balance, leaf.value)
    case 'metadata':
      return metadataTest(volume.metadata, leaf.key, leaf.test)
    case 'metadata_exists':
      return Object.hasOwn(volume.metadata, leaf.key)
    case 'date':
      if (leaf.field !== 'first_usage') throw misplaced('volumes', leaf)
      return dateTest(leaf.field, volume.firstUsage, leaf.operator, leaf.value.nanos)
    default:
      throw misplaced('volumes', leaf)
  }
}

// ---------------------------------------------------------------------------

function compare(operator: Comparison, left: bigint, right: bigint): boolean {
  switch (operator) {
    case '$match':
      return left === right
    case '$lt':
      return left < right
    case '$gt':
      return left > right
    case '$lte':
      return left <= right
    case '$gte':
      return left >= right
    default: {
      const never: never = operator
      throw new InvariantViolation(`unknown comparison ${String(never)}`)
    }
  }
}

function dateTest(field: DateField, text: string, operator: Comparison, value: bigint): boolean {
  const instant = parseInstant(text)
  if (instant === undefined) throw new InvariantViolation(`record field ${field} is not an RFC 3339 date-time: ${JSON.stringify(text)}`)
  return compare(operator, instant.nanos, value)
}

function stringTest(test: StringTest, value: string): boolean {
  switch (test.operator) {
    case '$match':
      return value === test.value
    case '$in':
      return test.values.includes(value)
    case '$like':
      return matchesLike(test.pattern, value)
    default: {
      const never: never = test
      throw new InvariantViolation(`unknown string test ${JSON.stringify(never)}`)
    }
  }
}

/**
 * `metadata[KEY]`: a missing key is false, never unknown. v2 tests
 * `metadata @> {"KEY": VALUE}`, which is false (not NULL) when the key is
 * absent, so `$not` of it selects records without the key.
 */
function metadataTest(metadata: MetadataView, key: string, test: StringTest): boolean {
  if (!Object.hasOwn(metadata, key)) return false
  return stringTest(test, metadata[key] as string)
}

function misplaced(resource: Resource, leaf: Leaf): InvariantViolation {
  return new InvariantViolation(`a ${leaf.kind} leaf cannot apply to ${resource}`)
}
