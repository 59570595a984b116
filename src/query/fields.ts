import type { AddressField, DateField, FieldName, Operator, Resource, StringField } from './ast.ts'

/**
 * The value type of a field, which decides the operators it accepts. This
 * follows Formance v2's typed schema (`internal/queries/resources.go`) and
 * its list handlers (`internal/storage/ledger/resource_*.go`): addresses take
 * only `$match` (`validateAddressFilter`), metadata values are strings, and
 * bare `metadata` takes only `$exists`.
 */
export type FieldSpec =
  | { readonly type: 'address'; readonly name: AddressField }
  | { readonly type: 'date'; readonly name: DateField }
  | { readonly type: 'integer'; readonly name: 'id' }
  | { readonly type: 'balance'; readonly name: 'balance' }
  | { readonly type: 'string'; readonly name: StringField }
  | { readonly type: 'metadata'; readonly name: 'metadata' }
  | { readonly type: 'boolean'; readonly name: 'reverted' }

export type FieldType = FieldSpec['type']

export const OPERATORS_BY_TYPE: Readonly<Record<FieldType, readonly Operator[]>> = {
  address: ['$match'],
  date: ['$match', '$lt', '$gt', '$lte', '$gte'],
  integer: ['$match', '$lt', '$gt', '$lte', '$gte'],
  balance: ['$match', '$lt', '$gt', '$lte', '$gte'],
  string: ['$match', '$like', '$in'],
  /** For `metadata[KEY]`; bare `metadata` takes `$exists` alone. */
  metadata: ['$match', '$like', '$in'],
  boolean: ['$match'],
}

export const METADATA_EXISTS_OPERATORS: readonly Operator[] = ['$exists']

function table(specs: readonly FieldSpec[], aliases: Readonly<Record<string, FieldName>> = {}): ReadonlyMap<string, FieldSpec> {
  const byName = new Map<string, FieldSpec>(specs.map((spec) => [spec.name, spec]))
  for (const [alias, name] of Object.entries(aliases)) {
    const spec = byName.get(name)
    if (spec !== undefined) byName.set(alias, spec)
  }
  return byName
}

/** Every field name (and alias) a filter may use, per resource. */
export const FIELDS: Readonly<Record<Resource, ReadonlyMap<string, FieldSpec>>> = {
  accounts: table([
    { name: 'address', type: 'address' },
    { name: 'balance', type: 'balance' },
    { name: 'metadata', type: 'metadata' },
    { name: 'first_usage', type: 'date' },
    { name: 'insertion_date', type: 'date' },
    { name: 'updated_at', type: 'date' },
  ]),
  transactions: table([
    { name: 'id', type: 'integer' },
    { name: 'reference', type: 'string' },
    { name: 'timestamp', type: 'date' },
    { name: 'inserted_at', type: 'date' },
    { name: 'reverted', type: 'boolean' },
    { name: 'account', type: 'address' },
    { name: 'source', type: 'address' },
    { name: 'destination', type: 'address' },
    { name: 'metadata', type: 'metadata' },
  ]),
  logs: table([
    { name: 'date', type: 'date' },
    { name: 'id', type: 'integer' },
    { name: 'type', type: 'string' },
  ]),
  // v2 accepts `account` as an alias of `address` on volumes.
  volumes: table(
    [
      { name: 'address', type: 'address' },
      { name: 'balance', type: 'balance' },
      { name: 'metadata', type: 'metadata' },
      { name: 'first_usage', type: 'date' },
    ],
    { account: 'address' },
  ),
}

/** Field names for error messages, aliases included, indexable ones shown with their index. */
export function describeFields(resource: Resource): string {
  return [...FIELDS[resource].entries()]
    .map(([written, spec]) => {
      if (spec.type === 'balance') return `${written}, ${written}[ASSET]`
      if (spec.type === 'metadata') return `${written}[KEY]`
      return written
    })
    .join(', ')
}
