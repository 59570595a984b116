import { TallyError, type ErrorCode, type ErrorKind } from '../domain/index.ts'

/**
 * Why a WAL operation failed. Stable names: callers branch on them (the
 * replication layer maps `RECYCLED` to needs-rebuild, the pipeline maps
 * `RESOURCE_EXHAUSTED` to 503 + Retry-After).
 */
export type WalErrorReason =
  | 'CORRUPTION' // a segment is damaged outside the torn tail: refuse to open
  | 'FAILED' // a write or fsync failed; the WAL is unusable until reopened
  | 'CLOSED' // the WAL was closed
  | 'BUSY' // truncateAfter/reset in progress: appends are refused meanwhile
  | 'RECYCLED' // the requested index is at or below the tail
  | 'RESOURCE_EXHAUSTED' // the pending (not yet written) buffer is full
  | 'RECORD_TOO_LARGE' // one record does not fit a group or a segment
  | 'CONCURRENT_TRUNCATE' // a read raced with truncateAfter

const codeOf: Record<WalErrorReason, { code: ErrorCode; kind: ErrorKind }> = {
  CORRUPTION: { code: 'INTERNAL', kind: 'internal' },
  FAILED: { code: 'INTERNAL', kind: 'internal' },
  CLOSED: { code: 'INTERNAL', kind: 'unavailable' },
  BUSY: { code: 'RESOURCE_EXHAUSTED', kind: 'unavailable' },
  RECYCLED: { code: 'NOT_FOUND', kind: 'not_found' },
  RESOURCE_EXHAUSTED: { code: 'RESOURCE_EXHAUSTED', kind: 'unavailable' },
  RECORD_TOO_LARGE: { code: 'RESOURCE_EXHAUSTED', kind: 'too_large' },
  CONCURRENT_TRUNCATE: { code: 'INTERNAL', kind: 'unavailable' },
}

/** A TallyError raised by the WAL; `reason` says which WAL rule refused. */
export class WalError extends TallyError {
  readonly reason: WalErrorReason

  constructor(options: { reason: WalErrorReason; message: string; details?: Record<string, string>; cause?: unknown }) {
    const { code, kind } = codeOf[options.reason]
    super({
      code,
      kind,
      message: `wal: ${options.message}`,
      details: { reason: options.reason, ...(options.details ?? {}) },
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    })
    this.name = 'WalError'
    this.reason = options.reason
  }
}

/** Corruption found while scanning: names the file and the byte offset. */
export function corruption(file: string, offset: number, what: string): WalError {
  return new WalError({
    reason: 'CORRUPTION',
    message: `${file} at offset ${offset}: ${what}; refusing to open (acknowledged data may be damaged)`,
    details: { file, offset: String(offset) },
  })
}

export function isWalError(error: unknown, reason?: WalErrorReason): error is WalError {
  return error instanceof WalError && (reason === undefined || error.reason === reason)
}
