import { TallyError } from '../../domain/index.ts'
import { EtcdLeaseInvalidError } from 'etcd3'

/**
 * etcd could not be reached (or did not answer within the call deadline).
 * Retryable: nothing was decided, so a write gated on the control plane is
 * answered 503 with Retry-After (kind `unavailable`) and is not applied.
 */
export class ControlPlaneUnavailable extends TallyError {
  constructor(operation: string, endpoints: readonly string[], cause: unknown) {
    super({
      code: 'CONTROL_PLANE_UNAVAILABLE',
      kind: 'unavailable',
      message: `etcd at ${endpoints.join(',')} is unreachable (${operation}): ${causeText(cause)}`,
      details: { operation },
      cause,
    })
    this.name = 'ControlPlaneUnavailable'
  }
}

function causeText(cause: unknown): string {
  const text = cause instanceof Error ? cause.message : String(cause)
  // gRPC messages can be long and multi-line; an operator needs the first line.
  return (text.split('\n')[0] ?? '').slice(0, 200)
}

/** etcd answered that a lease no longer exists (expired or revoked), as opposed to not answering at all. */
export function isLeaseGone(error: unknown): boolean {
  const cause = error instanceof ControlPlaneUnavailable ? error.cause : error
  return cause instanceof EtcdLeaseInvalidError || (cause instanceof Error && cause.message === leaseExpiredMessage)
}

/** The message of the error raised when a keep-alive answers with a TTL of 0. */
export const leaseExpiredMessage = 'lease expired'
