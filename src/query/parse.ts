import type { Json } from '../domain/index.ts'
import {
  describe,
  invariant,
  isAsset,
  isJsonObject,
  metadataKeyLengthMax,
  metadataValueLengthMax,
  validationError,
  TallyError,
} from '../domain/index.ts'
import type { Comparison, Filter, FilterNode, Leaf, Operator, Resource, StringTest } from './ast.ts'
import { OPERATORS } from './ast.ts'
import { parseAddressPattern } from './address.ts'
import { readInstant } from './instant.ts'
import { compileLikePattern } from './like.ts'
import type { FieldSpec } from './fields.ts'
import { FIELDS, METADATA_EXISTS_OPERATORS, OPERATORS_BY_TYPE, describeFields } from './fields.ts'

/** Deepest nesting of `$and`/`$or`/`$not` accepted. */
export const filterDepthMax = 32
/** Most nodes (combinators and leaves) in one filter. */
export const filterNodesMax = 1000
/** Most values in one `$in` list. */
export const filterInValuesMax = 1000
/** Longest string value compared against a field. */
export const filterStringLengthMax = metadataValueLengthMax
/** Longest decimal integer accepted as a string (2^256 has 78 digits). */
const integerDigitsMax = 80
const INTEGER_TEXT = new RegExp(`^-?[0-9]{1,${integerDigitsMax}}$`)
const INDEXED_FIELD = /^([a-z_]+)\[([\s\S]*)\]$/

/**
 * Parses and validates a v2 filter body for one resource. `undefined`,
 * `null` and `{}` mean "no filter". Anything invalid throws a `VALIDATION`
 * TallyError whose message starts with the path of the bad part
 * (`filter.$and[1].$lt["balance[USD]"]`) and whose details carry `path`,
 * and where known `operator`, `field` and `value`.
 */
export function parseFilter<R extends Resource>(resource: R, input: unknown): Filter<R> {
  if (input === undefined || input === null) return { resource, root: undefined }
  if (!isJsonObject(input)) {
    throw fail('filter', `expected a JSON object, got ${describe(input)}`, {})
  }
  if (Object.keys(input).length === 0) return { resource, root: undefined }
  const parser = new Parser(resource)
  return { resource, root: parser.node(input, 'filter', 1) }
}

/** True when `error` is the validation error `parseFilter` throws. */
export function isFilterError(error: unknown): error is TallyError {
  return error instanceof TallyError && error.code === 'VALIDATION' && error.details?.path !== undefined
}

interface Where {
  readonly operator?: string
  readonly field?: string
  readonly value?: unknown
}

function fail(path: string, reason: string, where: Where): TallyError {
  const details: Record<string, string> = { path }
  if (where.operator !== undefined) details.operator = where.operator
  if (where.field !== undefined) details.field = where.field
  if ('value' in where) details.value = describe(where.value)
  return validationError(`invalid filter at ${path}: ${reason}`, details)
}

function isOperator(text: string): text is Operator {
  return (OPERATORS as readonly string[]).includes(text)
}

class Parser {
  private nodes = 0

  constructor(private readonly resource: Resource) {}

  node(value: unknown, path: string, depth: number): FilterNode {
    if (depth > filterDepthMax) throw fail(path, `nested deeper than ${filterDepthMax} levels`, {})
    this.nodes++
    if (this.nodes > filterNodesMax) throw fail(path, `more than ${filterNodesMax} nodes in one filter`, {})
    if (!isJsonObject(value)) {
      throw fail(path, `expected an object holding one operator, got ${describe(value)}`, { value })
    }
    const keys = Object.keys(value)
    if (keys.length !== 1) {
      throw fail(
        path,
        keys.length === 0 ? 'expected one operator, got an empty object' : `expected one operator, got ${keys.length}: ${keys.join(', ')}`,
        {},
      )
    }
    const operator = keys[0] as string
    const operand = value[operator] as Json
    const at = `${path}.${operator}`
    switch (operator) {
      case '$and':
      case '$or': {
        if (!Array.isArray(operand)) {
          throw fail(at, `${operator} expects an array of filters, got ${describe(operand)}`, { operator, value: operand })
        }
        const items = operand.map((item, index) => this.node(item, `${at}[${index}]`, depth + 1))
        return { kind: operator === '$and' ? 'and' : 'or', items }
      }
      case '$not':
        return { kind: 'not', item: this.node(operand, at, depth + 1) }
      default:
        if (!isOperator(operator)) {
          throw fail(
            path,
            `unknown operator ${JSON.stringify(operator)}, expected one of $and, $or, $not, ${OPERATORS.join(', ')}`,
            { operator },
          )
        }
        return this.leaf(operator, operand, at)
    }
  }

  private leaf(operator: Operator, operand: Json, at: string): Leaf {
    if (!isJsonObject(operand)) {
      throw fail(at, `${operator} expects {"FIELD": VALUE}, got ${describe(operand)}`, { operator, value: operand })
    }
    const keys = Object.keys(operand)
    if (keys.length !== 1) {
      throw fail(
        at,
        `${operator} expects exactly one field, got ${keys.length === 0 ? 'none' : `${keys.length}: ${keys.join(', ')}`}`,
        { operator },
      )
    }
    const written = keys[0] as string
    const value = operand[written] as Json
    const path = `${at}[${JSON.stringify(written)}]`
    const where: Where = { operator, field: written, value }
    const indexed = INDEXED_FIELD.exec(written)
    const name = indexed === null ? written : (indexed[1] as string)
    const index = indexed === null ? undefined : (indexed[2] as string)
    const spec = FIELDS[this.resource].get(name)
    if (spec === undefined) {
      throw fail(path, `unknown field ${JSON.stringify(written)} on ${this.resource} (fields: ${describeFields(this.resource)})`, where)
    }
    if (spec.type === 'metadata') return this.metadataLeaf(operator, index, value, path, where)
    if (index !== undefined && spec.type !== 'balance') {
      throw fail(path, `field ${JSON.stringify(name)} takes no [index]`, where)
    }
    this.checkOperator(spec, operator, path, where)
    switch (spec.type) {
      case 'address': {
        if (typeof value !== 'string') throw fail(path, `expected an address pattern string, got ${describe(value)}`, where)
        const pattern = parseAddressPattern(value)
        if ('error' in pattern) throw fail(path, `invalid address pattern ${describe(value)}: ${pattern.error}`, where)
        return { kind: 'address', field: spec.name, pattern }
      }
      case 'date': {
        const instant = typeof value === 'string' ? readInstant(value) : undefined
        if (instant === undefined || ('error' in instant && instant.shape)) {
          throw fail(path, `expected an RFC 3339 date-time such as "2024-01-31T12:00:00Z", got ${describe(value)}`, where)
        }
        if ('error' in instant) throw fail(path, `${describe(value)} is not a date: ${instant.error}`, where)
        return { kind: 'date', field: spec.name, operator: comparisonOf(operator), value: instant }
      }
      case 'integer':
        return { kind: 'id', operator: comparisonOf(operator), value: integerOf(value, path, where) }
      case 'balance': {
        if (index !== undefined && !isAsset(index)) {
          throw fail(path, `invalid asset ${describe(index)} in balance[ASSET]`, where)
        }
        return { kind: 'balance', asset: index, operator: comparisonOf(operator), value: integerOf(value, path, where) }
      }
      case 'string':
        return { kind: 'string', field: spec.name, test: stringTestOf(operator, value, path, where) }
      case 'boolean':
        if (typeof value !== 'boolean') throw fail(path, `expected true or false, got ${describe(value)}`, where)
        return { kind: 'reverted', value }
      default: {
        const never: never = spec
        throw fail(path, `unsupported field ${JSON.stringify(never)}`, where)
      }
    }
  }

  private metadataLeaf(operator: Operator, key: string | undefined, value: Json, path: string, where: Where): Leaf {
    if (key === undefined) {
      if (!METADATA_EXISTS_OPERATORS.includes(operator)) {
        throw fail(path, `bare "metadata" accepts only $exists with a key, e.g. {"$exists": {"metadata": "KEY"}}; use "metadata[KEY]" with ${operator}`, where)
      }
      return { kind: 'metadata_exists', key: metadataKeyOf(value, path, where) }
    }
    if (operator === '$exists') {
      throw fail(path, `$exists takes the key as its value: {"$exists": {"metadata": ${JSON.stringify(key)}}}`, where)
    }
    this.checkOperator({ name: 'metadata', type: 'metadata' }, operator, path, where)
    return { kind: 'metadata', key: metadataKeyOf(key, path, where), test: stringTestOf(operator, value, path, where) }
  }

  private checkOperator(spec: FieldSpec, operator: Operator, path: string, where: Where): void {
    const allowed = OPERATORS_BY_TYPE[spec.type]
    if (!allowed.includes(operator)) {
      throw fail(path, `operator ${operator} does not apply to ${spec.type} field ${JSON.stringify(where.field)} (accepts ${allowed.join(', ')})`, where)
    }
  }
}

/** Called after `checkOperator` admitted `operator` for an ordered field. */
function comparisonOf(operator: Operator): Comparison {
  invariant(
    operator === '$match' || operator === '$lt' || operator === '$gt' || operator === '$lte' || operator === '$gte',
    () => `${operator} is not a comparison`,
  )
  return operator
}

function metadataKeyOf(value: unknown, path: string, where: Where): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > metadataKeyLengthMax) {
    throw fail(path, `expected a metadata key of 1..${metadataKeyLengthMax} characters, got ${describe(value)}`, where)
  }
  return value
}

function integerOf(value: unknown, path: string, where: Where): bigint {
  if (typeof value === 'bigint') {
    if (value.toString().replace('-', '').length > integerDigitsMax) throw fail(path, `integer has more than ${integerDigitsMax} digits`, where)
    return value
  }
  // Postgres coerces a quoted integer in v2; clients without big integers send them so.
  if (typeof value === 'string' && INTEGER_TEXT.test(value)) return BigInt(value)
  throw fail(path, `expected an integer, got ${describe(value)}`, where)
}

function stringOf(value: unknown, path: string, where: Where): string {
  if (typeof value !== 'string') throw fail(path, `expected a string, got ${describe(value)}`, where)
  if (value.length > filterStringLengthMax) throw fail(path, `string longer than ${filterStringLengthMax} characters`, where)
  return value
}

function stringTestOf(operator: Operator, value: Json, path: string, where: Where): StringTest {
  switch (operator) {
    case '$match':
      return { operator, value: stringOf(value, path, where) }
    case '$like': {
      const pattern = compileLikePattern(stringOf(value, path, where))
      if ('error' in pattern) throw fail(path, `invalid $like pattern: ${pattern.error}`, where)
      return { operator, pattern }
    }
    case '$in': {
      if (!Array.isArray(value)) throw fail(path, `$in expects an array of strings, got ${describe(value)}`, where)
      if (value.length > filterInValuesMax) throw fail(path, `$in lists more than ${filterInValuesMax} values`, where)
      return { operator, values: value.map((entry, index) => stringOf(entry, `${path}[${index}]`, { ...where, value: entry })) }
    }
    default:
      throw fail(path, `operator ${operator} does not apply to strings (accepts $match, $like, $in)`, where)
  }
}
