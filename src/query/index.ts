/**
 * The v2 filter language of list and count endpoints, as a pure module:
 * parse and validate per resource, evaluate on plain records with v2's
 * semantics, and a little static analysis for store-backed scans.
 * See docs/query.md.
 */
export type {
  Resource,
  Operator,
  Comparison,
  FieldName,
  AddressField,
  DateField,
  StringField,
  StringTest,
  Leaf,
  FilterNode,
  Filter,
  MetadataView,
  AccountFilterRecord,
  TransactionFilterRecord,
  LogFilterRecord,
  VolumeFilterRecord,
  RecordOf,
} from './ast.ts'
export { RESOURCES, OPERATORS } from './ast.ts'
export type { AddressPattern } from './address.ts'
export { parseAddressPattern, matchesAddressPattern, addressPatternPrefix, addressPatternLengthMax } from './address.ts'
export type { Instant } from './instant.ts'
export { parseInstant } from './instant.ts'
export type { LikePattern } from './like.ts'
export { compileLikePattern, matchesLike, likePatternLengthMax } from './like.ts'
export type { FieldSpec, FieldType } from './fields.ts'
export { FIELDS, OPERATORS_BY_TYPE } from './fields.ts'
export { parseFilter, isFilterError, filterDepthMax, filterNodesMax, filterInValuesMax, filterStringLengthMax } from './parse.ts'
export type { Truth } from './evaluate.ts'
export { matches, evaluate } from './evaluate.ts'
export { addressPrefix, fieldsUsed } from './analysis.ts'
export type { FilterRequest } from './transport.ts'
export { filterInputOf, parseRequestFilter, FILTER_QUERY_PARAMETER, filterQueryParameterLengthMax } from './transport.ts'
export type { TemplateVariableType, TemplateValue } from './template.ts'
export { TEMPLATE_VARIABLE_TYPES, templateVariablesMax, parseTemplateVariables, templateValues, checkTemplateBody, fillTemplate } from './template.ts'
