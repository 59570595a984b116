import type { Json, Keyed } from '../domain/index.ts'
import { TallyError, describe, emptyKeyed, isJsonObject, ownEntries, ownValue, readInstant, validationError } from '../domain/index.ts'
import type { Resource } from './ast.ts'
import type { FieldType } from './fields.ts'
import { FIELDS } from './fields.ts'
import { parseFilter } from './parse.ts'

/**
 * Query templates' variables, as Formance's v2 ledger runs them
 * (`internal/queries`): a template declares typed variables and its filter
 * body names them with placeholders, filled in when the template runs.
 *
 * * In a value compared with a **string-like field** (addresses, `reference`,
 *   `type`, metadata values, the key of `$exists`), `$name` and `${name}` are
 *   replaced inside the string by the variable's text, anywhere and as often
 *   as written (`"users:${user}:main"`). A `$` always starts a placeholder:
 *   there is no escape, as in v2.
 * * In a value compared with a **date, integer or boolean field**, the whole
 *   value is one placeholder (`{"$gte": {"timestamp": "${since}"}}`), and the
 *   variable must have that field's type: it is replaced by the typed value.
 * * Keys (operators, field names such as `metadata[KEY]`) are never filled in.
 *
 * Variable types are v2's: `string`, `int`, `boolean`, `date`. Pure: no I/O.
 */
export const TEMPLATE_VARIABLE_TYPES = ['string', 'int', 'boolean', 'date'] as const
export type TemplateVariableType = (typeof TEMPLATE_VARIABLE_TYPES)[number]
export type TemplateValue = string | bigint | boolean

/** A name a placeholder can spell (v2's parser: lowercase letters, digits and `_`). */
const VARIABLE_NAME = /^[a-z_][a-z0-9_]{0,63}$/
const WHOLE_PLACEHOLDER = /^\$(?:\{([a-z_][a-z0-9_]*)\}|([a-z_][a-z0-9_]*))$/
const IDENTIFIER_HEAD = /[a-z_]/
const IDENTIFIER_TAIL = /[a-z0-9_]/
/** Most variables one template declares. */
export const templateVariablesMax = 64

/**
 * `vars` of a query template → its canonical form `{NAME: {type, default?}}`.
 * A declaration is `{type, default?}` or, as v2 also reads it, the type alone
 * (`"int"`). A default must already have its type (v2 checks it at insertion).
 */
export function parseTemplateVariables(value: Json, field: string): Keyed<Json> {
  if (!isJsonObject(value)) throw validationError(`${field}: expected variables by name, got ${describe(value)}`)
  const entries = ownEntries(value)
  if (entries.length > templateVariablesMax) throw validationError(`${field}: at most ${templateVariablesMax} variables`)
  const vars = emptyKeyed<Json>()
  for (const [name, declaration] of entries) {
    const at = `${field}[${JSON.stringify(name)}]`
    if (!VARIABLE_NAME.test(name)) throw validationError(`${at}: invalid variable name, expected ${VARIABLE_NAME.source} (what a $name placeholder can spell)`)
    const spec = typeof declaration === 'string' ? { type: declaration } : declaration
    if (!isJsonObject(spec)) throw validationError(`${at}: expected a type or {type, default?}, got ${describe(declaration)}`)
    for (const key of Object.keys(spec)) {
      if (key !== 'type' && key !== 'default') throw validationError(`${at}.${key}: unknown field, expected type or default`)
    }
    const type = parseVariableType(spec.type, `${at}.type`)
    const parsed = emptyKeyed<Json>()
    parsed.type = type
    if (spec.default !== undefined && spec.default !== null) parsed.default = strictValue(type, spec.default, `${at}.default`)
    vars[name] = parsed
  }
  return vars
}

function parseVariableType(value: unknown, field: string): TemplateVariableType {
  if (typeof value !== 'string' || !(TEMPLATE_VARIABLE_TYPES as readonly string[]).includes(value)) {
    throw validationError(`${field}: expected one of ${TEMPLATE_VARIABLE_TYPES.join(', ')}, got ${describe(value)}`)
  }
  return value as TemplateVariableType
}

/** A default, as v2 checks it: a JSON value of the declared type (a date is an RFC 3339 string). */
function strictValue(type: TemplateVariableType, value: Json, field: string): TemplateValue {
  switch (type) {
    case 'string':
      if (typeof value === 'string') return value
      break
    case 'int':
      if (typeof value === 'bigint') return value
      break
    case 'boolean':
      if (typeof value === 'boolean') return value
      break
    case 'date':
      if (typeof value === 'string') return checkedDate(value, field)
      break
    default: {
      const never: never = type
      throw validationError(`${field}: unknown type ${String(never)}`)
    }
  }
  throw validationError(`${field}: ${describe(value)} is not a value of type ${type}`)
}

function checkedDate(text: string, field: string): string {
  const read = readInstant(text)
  if ('error' in read) throw validationError(`${field}: ${describe(text)} is not a date: ${read.error}`)
  return text
}

/**
 * A run's value for a variable of `type`. The v2 document sends a run's
 * variables as strings (Formance's SDK types them so), so an `int`,
 * `boolean` or `date` variable also takes the string that spells it
 * (`"42"`, `"true"`, `"2024-01-01T00:00:00Z"`); a JSON value of the type is
 * taken as is.
 */
function runValue(type: TemplateVariableType, value: Json, field: string): TemplateValue {
  if (typeof value === 'string') {
    switch (type) {
      case 'string':
        return value
      case 'int':
        if (/^-?[0-9]{1,80}$/.test(value)) return BigInt(value)
        throw validationError(`${field}: ${describe(value)} is not an int (decimal digits, optionally signed)`)
      case 'boolean':
        if (value === 'true') return true
        if (value === 'false') return false
        throw validationError(`${field}: ${describe(value)} is not a boolean (true or false)`)
      case 'date':
        return checkedDate(value, field)
    }
  }
  return strictValue(type, value, field)
}

/**
 * The values a run fills the template with: each declared variable's default,
 * overridden by the run's `vars`. A value of the wrong type, or a variable
 * the template does not declare (a misspelt name would otherwise run a
 * different query), is a 400 naming it.
 */
export function templateValues(declared: Readonly<Keyed<Json>>, given: unknown, field = 'vars'): Map<string, TemplateValue> {
  const values = new Map<string, TemplateValue>()
  for (const [name, spec] of ownEntries(declared)) {
    if (!isJsonObject(spec)) continue
    const type = parseVariableType(spec.type, `${field}[${JSON.stringify(name)}].type`)
    if (spec.default !== undefined && spec.default !== null) values.set(name, strictValue(type, spec.default, `query template default of ${name}`))
  }
  if (given === undefined || given === null) return values
  if (!isJsonObject(given)) throw validationError(`${field}: expected an object, got ${describe(given)}`)
  for (const [name, value] of ownEntries(given)) {
    const at = `${field}[${JSON.stringify(name)}]`
    const spec = ownValue(declared, name)
    if (!isJsonObject(spec)) throw validationError(`${at}: the query template declares no such variable (it declares ${Object.keys(declared).join(', ') || 'none'})`)
    values.set(name, runValue(parseVariableType(spec.type, `${at}.type`), value, at))
  }
  return values
}

// ---- placeholders -------------------------------------------------------------------

type Piece = { readonly text: string } | { readonly variable: string }

/** A string value's literal parts and placeholders; a `$` that starts no placeholder is a 400. */
function pieces(text: string, field: string): Piece[] {
  const result: Piece[] = []
  let literal = ''
  let index = 0
  while (index < text.length) {
    const character = text[index] as string
    if (character !== '$') {
      literal += character
      index++
      continue
    }
    if (literal !== '') result.push({ text: literal })
    literal = ''
    index++
    const braced = text[index] === '{'
    if (braced) index++
    const start = index
    if (index >= text.length || !IDENTIFIER_HEAD.test(text[index] as string)) {
      throw validationError(`${field}: ${describe(text)}: a $ starts a variable ($name or \${name}, name in lowercase letters, digits and _) at offset ${start}`)
    }
    while (index < text.length && IDENTIFIER_TAIL.test(text[index] as string)) index++
    const variable = text.slice(start, index)
    if (braced) {
      if (text[index] !== '}') throw validationError(`${field}: ${describe(text)}: \${${variable} is not closed by }`)
      index++
    }
    result.push({ variable })
  }
  if (literal !== '') result.push({ text: literal })
  return result
}

/** The template type of values compared with a field (v2's field types). */
function templateTypeOf(type: FieldType): TemplateVariableType {
  switch (type) {
    case 'address':
    case 'string':
    case 'metadata':
      return 'string'
    case 'integer':
    case 'balance':
      return 'int'
    case 'date':
      return 'date'
    case 'boolean':
      return 'boolean'
    default: {
      const never: never = type
      throw validationError(`unknown field type ${String(never)}`)
    }
  }
}

/** The field a leaf compares (`metadata[KEY]` → metadata), or undefined for one the filter parser will refuse. */
function fieldTypeOf(resource: Resource, operator: string, field: string): TemplateVariableType | undefined {
  if (operator === '$exists') return 'string'
  const bracket = field.indexOf('[')
  const base = bracket === -1 ? field : field.slice(0, bracket)
  const spec = FIELDS[resource].get(base)
  return spec === undefined ? undefined : templateTypeOf(spec.type)
}

type Fill = (variable: string, at: string) => TemplateValue

/**
 * The body with every placeholder replaced through `fill`; `declaredType`
 * checks a whole-value placeholder's variable against its field's type.
 */
function fillBody(resource: Resource, body: Json, fill: Fill, declaredType: (variable: string) => TemplateVariableType | undefined, path: string): Json {
  if (Array.isArray(body)) return body.map((item, index) => fillBody(resource, item, fill, declaredType, `${path}[${index}]`))
  if (!isJsonObject(body)) return body
  const result = emptyKeyed<Json>()
  for (const [key, value] of ownEntries(body)) {
    const at = `${path}.${key}`
    if (key === '$and' || key === '$or' || key === '$not') {
      result[key] = fillBody(resource, value, fill, declaredType, at)
    } else if (key.startsWith('$') && isJsonObject(value)) {
      const leaf = emptyKeyed<Json>()
      for (const [field, operand] of ownEntries(value)) {
        const type = fieldTypeOf(resource, key, field)
        const fieldAt = `${at}[${JSON.stringify(field)}]`
        leaf[field] = Array.isArray(operand)
          ? operand.map((item, index) => fillValue(type, item, fill, declaredType, `${fieldAt}[${index}]`))
          : fillValue(type, operand, fill, declaredType, fieldAt)
      }
      result[key] = leaf
    } else {
      result[key] = value
    }
  }
  return result
}

function fillValue(type: TemplateVariableType | undefined, value: Json, fill: Fill, declaredType: (variable: string) => TemplateVariableType | undefined, at: string): Json {
  if (typeof value !== 'string' || type === undefined) return value
  if (type === 'string') {
    return pieces(value, at)
      .map((piece) => ('text' in piece ? piece.text : textOf(fill(piece.variable, at))))
      .join('')
  }
  if (!value.startsWith('$')) return value
  const match = WHOLE_PLACEHOLDER.exec(value)
  if (match === null) throw validationError(`${at}: a ${type} field takes a literal value or one whole placeholder (\${name}), got ${describe(value)}`)
  const variable = (match[1] ?? match[2]) as string
  const declared = declaredType(variable)
  if (declared !== undefined && declared !== type) throw validationError(`${at}: variable ${variable} is a ${declared}, this field needs a ${type}`)
  return fill(variable, at)
}

function textOf(value: TemplateValue): string {
  return typeof value === 'string' ? value : String(value)
}

/** A sample value of each type: what insertion fills a body with to check it parses as a filter. */
function sampleOf(type: TemplateVariableType): TemplateValue {
  switch (type) {
    case 'string':
      return '0'
    case 'int':
      return 0n
    case 'boolean':
      return true
    case 'date':
      return '1970-01-01T00:00:00Z'
  }
}

function typeOfDeclared(declared: Readonly<Keyed<Json>>): (variable: string) => TemplateVariableType | undefined {
  return (variable) => {
    const spec = ownValue(declared, variable)
    return isJsonObject(spec) && typeof spec.type === 'string' ? (spec.type as TemplateVariableType) : undefined
  }
}

/**
 * Checks a template's body at insertion, as v2 does: every placeholder names
 * a declared variable, a whole-value placeholder's variable has its field's
 * type, and the body filled with each variable's default (or a sample of its
 * type) is a valid filter for the resource. Throws a 400 naming the place.
 */
export function checkTemplateBody(resource: Resource, body: Json, declared: Readonly<Keyed<Json>>, field: string): void {
  const typeOf = typeOfDeclared(declared)
  const filled = fillBody(
    resource,
    body,
    (variable, at) => {
      const spec = ownValue(declared, variable)
      if (!isJsonObject(spec)) throw validationError(`${at}: variable ${variable} is not declared in vars`)
      const type = spec.type as TemplateVariableType
      return spec.default !== undefined && spec.default !== null ? (spec.default as TemplateValue) : sampleOf(type)
    },
    typeOf,
    field,
  )
  try {
    parseFilter(resource, filled)
  } catch (error) {
    if (error instanceof TallyError) throw new TallyError({ code: error.code, kind: error.kind, message: `${field}: ${error.message}`, ...(error.details === undefined ? {} : { details: error.details }) })
    throw error
  }
}

/** The body a run filters with: every placeholder filled from `values`; a variable with no value and no default is a 400. */
export function fillTemplate(resource: Resource, body: Json, declared: Readonly<Keyed<Json>>, values: ReadonlyMap<string, TemplateValue>): Json {
  return fillBody(
    resource,
    body,
    (variable) => {
      const value = values.get(variable)
      if (value === undefined) throw validationError(`vars[${JSON.stringify(variable)}]: required by the query template (no value given and no default)`)
      return value
    },
    typeOfDeclared(declared),
    'body',
  )
}
