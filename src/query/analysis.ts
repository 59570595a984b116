import type { FieldName, Filter, FilterNode, Leaf } from './ast.ts'
import { addressPatternPrefix } from './address.ts'

/**
 * A prefix every selected address starts with, for a store scan to start at:
 * found when the filter is a conjunction (a leaf or nested `$and`s) holding a
 * `$match` on `address` whose first segment is literal. `users:` and
 * `users:...` give `users:`, an exact address gives itself. With several such
 * conjuncts the longest prefix wins (all of them must hold). Conjuncts under
 * `$or` or `$not` are ignored, so the result is always safe: the caller still
 * runs `matches` on what the scan yields.
 */
export function addressPrefix(filter: Filter<'accounts' | 'volumes'>): string | undefined {
  if (filter.root === undefined) return undefined
  let best: string | undefined
  for (const leaf of conjuncts(filter.root)) {
    if (leaf.kind !== 'address' || leaf.field !== 'address') continue
    const prefix = addressPatternPrefix(leaf.pattern)
    if (prefix !== undefined && (best === undefined || prefix.length > best.length)) best = prefix
  }
  return best
}

function* conjuncts(node: FilterNode): Generator<Leaf> {
  if (node.kind === 'and') {
    for (const item of node.items) yield* conjuncts(item)
  } else if (node.kind !== 'or' && node.kind !== 'not') {
    yield node
  }
}

/**
 * The canonical fields a filter reads, anywhere in it: `balance` for
 * `balance` and `balance[ASSET]`, `metadata` for `metadata[KEY]` and
 * `$exists`. Tells a caller whether it must load volumes or metadata.
 */
export function fieldsUsed(filter: Filter): ReadonlySet<FieldName> {
  const fields = new Set<FieldName>()
  if (filter.root !== undefined) collect(filter.root, fields)
  return fields
}

function collect(node: FilterNode, fields: Set<FieldName>): void {
  switch (node.kind) {
    case 'and':
    case 'or':
      for (const item of node.items) collect(item, fields)
      return
    case 'not':
      collect(node.item, fields)
      return
    case 'address':
    case 'date':
    case 'string':
      fields.add(node.field)
      return
    case 'id':
      fields.add('id')
      return
    case 'balance':
      fields.add('balance')
      return
    case 'metadata':
    case 'metadata_exists':
      fields.add('metadata')
      return
    case 'reverted':
      fields.add('reverted')
      return
    default: {
      const never: never = node
      throw new Error(`unknown filter node ${JSON.stringify(never)}`)
    }
  }
}
