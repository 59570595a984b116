/**
 * One error type for the whole server. `code` is a stable UPPER_SNAKE reason
 * (Formance v2 codes where one exists) that is never renamed: it is part of
 * the audit chain's hashed outcomes and of the wire format.
 */
export type ErrorKind =
  | 'validation' // the request is malformed: 400
  | 'not_found' // 404
  | 'conflict' // 409 (reference/idempotency clash)
  | 'business' // a well-formed order the ledger refuses (insufficient funds…): 400
  | 'precondition' // 412
  | 'unauthenticated' // no valid bearer token: 401
  | 'forbidden' // a valid token without the scope or the ledger: 403
  | 'unavailable' // retryable: 503 + Retry-After
  | 'too_large' // 413
  | 'internal' // 500

export type ErrorCode =
  | 'VALIDATION'
  | 'NOT_FOUND'
  | 'LEDGER_NOT_FOUND'
  | 'LEDGER_ALREADY_EXISTS'
  | 'SCHEMA_ALREADY_EXISTS'
  | 'SCHEMA_NOT_SPECIFIED'
  | 'CONFLICT'
  | 'INSUFFICIENT_FUND'
  | 'ALREADY_REVERT'
  | 'NO_POSTINGS'
  | 'METADATA_OVERRIDE'
  | 'BULK_SIZE_EXCEEDED'
  | 'COMPILATION_FAILED'
  | 'INTERPRETER_PARSE'
  | 'INTERPRETER_RUNTIME'
  | 'IMPORT'
  | 'TIMEOUT'
  | 'INTERNAL'
  | 'CACHE_HORIZON_EXCEEDED'
  | 'STALE_PROPOSAL'
  | 'STALE_INPUTS'
  | 'COVERAGE_MISS'
  | 'RESOURCE_EXHAUSTED'
  | 'NOT_IMPLEMENTED'
  | 'PRECONDITION_FAILED'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  /** A write reached a replica (the message and `details.primary` name the primary when known). */
  | 'NOT_PRIMARY'
  /** A read asked for an applied index this node did not reach within the wait. */
  | 'NOT_CAUGHT_UP'
  /** A replica refused shipped entries (a gap, an epoch it has not adopted, a store that needs a rebuild). */
  | 'REPLICATION_REFUSED'
  /** The cluster's control plane (etcd) cannot be reached: retry later (503 + Retry-After). */
  | 'CONTROL_PLANE_UNAVAILABLE'

export class TallyError extends Error {
  readonly code: ErrorCode
  readonly kind: ErrorKind
  readonly details: Readonly<Record<string, string>> | undefined

  constructor(options: {
    code: ErrorCode
    kind: ErrorKind
    message: string
    details?: Record<string, string>
    cause?: unknown
  }) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'TallyError'
    this.code = options.code
    this.kind = options.kind
    this.details = options.details
  }
}

/**
 * A state the contract says cannot happen. Never caught by request handlers
 * as a business outcome: it means the code or the store is wrong.
 */
export class InvariantViolation extends Error {
  constructor(message: string) {
    super(`invariant violated: ${message}`)
    this.name = 'InvariantViolation'
  }
}

export function invariant(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new InvariantViolation(typeof message === 'string' ? message : message())
  }
}

export function validationError(message: string, details?: Record<string, string>): TallyError {
  return new TallyError({ code: 'VALIDATION', kind: 'validation', message, ...(details ? { details } : {}) })
}

export function notFound(message: string): TallyError {
  return new TallyError({ code: 'NOT_FOUND', kind: 'not_found', message })
}

export function ledgerNotFound(ledger: string): TallyError {
  return new TallyError({ code: 'LEDGER_NOT_FOUND', kind: 'not_found', message: `ledger ${ledger} not found` })
}

/** HTTP status for each kind: the single exhaustive mapping. */
export function httpStatusOf(kind: ErrorKind): number {
  switch (kind) {
    case 'validation':
      return 400
    case 'business':
      return 400
    case 'not_found':
      return 404
    case 'conflict':
      return 409
    case 'precondition':
      return 412
    case 'unauthenticated':
      return 401
    case 'forbidden':
      return 403
    case 'too_large':
      return 413
    case 'unavailable':
      return 503
    case 'internal':
      return 500
    default: {
      const never: never = kind
      throw new InvariantViolation(`unknown error kind ${String(never)}`)
    }
  }
}
