/**
 * The Numscript syntax tree. Every node carries the source range it was
 * parsed from so that type and runtime errors can point at the code.
 */

/** A point in the source: 1-based line and column, 0-based UTF-16 offset. */
export interface Position {
  readonly line: number
  readonly column: number
  readonly offset: number
}

/** A half-open range [start, end) of the source text. */
export interface Range {
  readonly start: Position
  readonly end: Position
}

export type BinaryOperator = '+' | '-' | '/'

/** One `:`-separated segment of an account literal: text or `$var` (interpolation). */
export type AccountSegment =
  | { readonly kind: 'text'; readonly text: string; readonly range: Range }
  | { readonly kind: 'variable'; readonly name: string; readonly range: Range }

export type Expr =
  | { readonly kind: 'number'; readonly value: bigint; readonly range: Range }
  | { readonly kind: 'string'; readonly value: string; readonly range: Range }
  | { readonly kind: 'asset'; readonly value: string; readonly range: Range }
  | { readonly kind: 'account'; readonly segments: readonly AccountSegment[]; readonly range: Range }
  | { readonly kind: 'variable'; readonly name: string; readonly range: Range }
  /** `N%` or `N.M%`: an exact rational numerator/denominator. */
  | { readonly kind: 'percent'; readonly numerator: bigint; readonly denominator: bigint; readonly range: Range }
  | { readonly kind: 'monetary'; readonly asset: Expr; readonly amount: Expr; readonly range: Range }
  | { readonly kind: 'binary'; readonly op: BinaryOperator; readonly left: Expr; readonly right: Expr; readonly range: Range }
  | { readonly kind: 'negate'; readonly operand: Expr; readonly range: Range }
  | CallExpr

export interface CallExpr {
  readonly kind: 'call'
  readonly name: string
  readonly nameRange: Range
  readonly args: readonly Expr[]
  readonly range: Range
}

/** What a `send`/`save` moves: a monetary expression or `[ASSET *]`. */
export type SentValue =
  | { readonly kind: 'amount'; readonly monetary: Expr; readonly range: Range }
  | { readonly kind: 'all'; readonly asset: Expr; readonly range: Range }

export type Source =
  | { readonly kind: 'account'; readonly address: Expr; readonly color: Expr | undefined; readonly range: Range }
  /** `bound === undefined` is `allowing unbounded overdraft`. */
  | {
      readonly kind: 'overdraft'
      readonly address: Expr
      readonly color: Expr | undefined
      readonly bound: Expr | undefined
      readonly range: Range
    }
  | { readonly kind: 'scaling'; readonly address: Expr; readonly through: Expr; readonly range: Range }
  | { readonly kind: 'inorder'; readonly sources: readonly Source[]; readonly range: Range }
  | { readonly kind: 'oneof'; readonly sources: readonly Source[]; readonly range: Range }
  | { readonly kind: 'allotment'; readonly items: readonly SourceAllotmentItem[]; readonly range: Range }
  | { readonly kind: 'capped'; readonly cap: Expr; readonly from: Source; readonly range: Range }

export type AllotmentPortion =
  | { readonly kind: 'portion'; readonly expr: Expr; readonly range: Range }
  | { readonly kind: 'remaining'; readonly range: Range }

export interface SourceAllotmentItem {
  readonly portion: AllotmentPortion
  readonly from: Source
  readonly range: Range
}

export type KeptOrDestination =
  | { readonly kind: 'kept'; readonly range: Range }
  | { readonly kind: 'to'; readonly destination: Destination; readonly range: Range }

export interface DestinationAllotmentItem {
  readonly portion: AllotmentPortion
  readonly to: KeptOrDestination
  readonly range: Range
}

export interface DestinationCappedClause {
  readonly cap: Expr
  readonly to: KeptOrDestination
  readonly range: Range
}

export type Destination =
  | { readonly kind: 'account'; readonly address: Expr; readonly range: Range }
  | { readonly kind: 'allotment'; readonly items: readonly DestinationAllotmentItem[]; readonly range: Range }
  | {
      readonly kind: 'inorder'
      readonly clauses: readonly DestinationCappedClause[]
      readonly remaining: KeptOrDestination
      readonly range: Range
    }
  | {
      readonly kind: 'oneof'
      readonly clauses: readonly DestinationCappedClause[]
      readonly remaining: KeptOrDestination
      readonly range: Range
    }

export type Statement =
  | {
      readonly kind: 'send'
      readonly sent: SentValue
      readonly source: Source
      readonly destination: Destination
      readonly range: Range
    }
  | { readonly kind: 'save'; readonly sent: SentValue; readonly account: Expr; readonly range: Range }
  | { readonly kind: 'call'; readonly call: CallExpr; readonly range: Range }

export const VARIABLE_TYPES = ['monetary', 'account', 'portion', 'asset', 'number', 'string'] as const
export type VariableType = (typeof VARIABLE_TYPES)[number]

export interface VarDeclaration {
  readonly type: string
  readonly typeRange: Range
  readonly name: string
  readonly nameRange: Range
  readonly origin: Expr | undefined
  readonly range: Range
}

/** `#![feature("a", "b")]`: feature flags the script turns on for itself. */
export interface Pragma {
  readonly name: string
  readonly args: readonly string[]
  readonly range: Range
}

export interface Program {
  readonly pragmas: readonly Pragma[]
  readonly vars: readonly VarDeclaration[]
  readonly statements: readonly Statement[]
  readonly range: Range
}
