import { TallyError, type ErrorCode, type ErrorKind } from '../../domain/index.ts'

/**
 * Why the peer transport refused a frame, a message or a session. Stable
 * names: they travel in ERROR frames and appear in recovery-log reasons.
 */
export type PeerErrorReason =
  | 'FRAME_TOO_LARGE' // a declared frame length beyond the receiver's bound
  | 'FRAME_TOO_SMALL' // a declared frame length below the fixed header
  | 'FRAME_CRC' // the CRC-32 does not match: a corrupted byte
  | 'FRAME_VERSION' // a protocol version this node does not speak
  | 'FRAME_TYPE' // an unknown message type
  | 'FRAME_TRUNCATED' // the stream ended inside a frame
  | 'MALFORMED' // a well-framed payload that does not decode
  | 'STALE_EPOCH' // the sender's epoch is older than the receiver's
  | 'FUTURE_EPOCH' // a frame of a newer epoch where only a hello may bring one
  | 'PROTOCOL' // a message out of order (entries before the handshake, an ack beyond what was sent …)
  | 'GAP' // shipped entries do not continue the replica's log
  | 'TRUNCATE_BELOW_COMMITTED' // asked to drop entries the replica knows are committed
  | 'REBUILD_REQUIRED' // the replica's store is of a lost lineage
  | 'TIMEOUT' // handshake or idle timeout
  | 'CLOSED' // the connection or the link was closed
  | 'UNREACHABLE' // dialing failed
  | 'INTERNAL' // the replica's WAL failed

const codeOf: Record<PeerErrorReason, { code: ErrorCode; kind: ErrorKind }> = {
  FRAME_TOO_LARGE: { code: 'RESOURCE_EXHAUSTED', kind: 'too_large' },
  FRAME_TOO_SMALL: { code: 'VALIDATION', kind: 'validation' },
  FRAME_CRC: { code: 'VALIDATION', kind: 'validation' },
  FRAME_VERSION: { code: 'VALIDATION', kind: 'validation' },
  FRAME_TYPE: { code: 'VALIDATION', kind: 'validation' },
  FRAME_TRUNCATED: { code: 'VALIDATION', kind: 'validation' },
  MALFORMED: { code: 'VALIDATION', kind: 'validation' },
  STALE_EPOCH: { code: 'PRECONDITION_FAILED', kind: 'precondition' },
  FUTURE_EPOCH: { code: 'PRECONDITION_FAILED', kind: 'precondition' },
  PROTOCOL: { code: 'VALIDATION', kind: 'validation' },
  GAP: { code: 'PRECONDITION_FAILED', kind: 'precondition' },
  TRUNCATE_BELOW_COMMITTED: { code: 'INTERNAL', kind: 'internal' },
  REBUILD_REQUIRED: { code: 'PRECONDITION_FAILED', kind: 'precondition' },
  TIMEOUT: { code: 'TIMEOUT', kind: 'unavailable' },
  CLOSED: { code: 'INTERNAL', kind: 'unavailable' },
  UNREACHABLE: { code: 'INTERNAL', kind: 'unavailable' },
  INTERNAL: { code: 'INTERNAL', kind: 'internal' },
}

export const peerErrorReasons: readonly PeerErrorReason[] = Object.keys(codeOf) as PeerErrorReason[]

export function isPeerErrorReason(value: string): value is PeerErrorReason {
  return (peerErrorReasons as readonly string[]).includes(value)
}

/** A TallyError raised by the peer transport; `reason` says which rule refused. */
export class PeerError extends TallyError {
  readonly reason: PeerErrorReason
  /** The epoch the refusing peer stamped on its ERROR frame, when the refusal came from the peer. */
  readonly peerEpoch: number | undefined

  constructor(options: { reason: PeerErrorReason; message: string; cause?: unknown; peerEpoch?: number }) {
    const { code, kind } = codeOf[options.reason]
    super({
      code,
      kind,
      message: `peer: ${options.message}`,
      details: { reason: options.reason },
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    })
    this.name = 'PeerError'
    this.reason = options.reason
    this.peerEpoch = options.peerEpoch
  }
}

export function isPeerError(error: unknown): error is PeerError {
  return error instanceof PeerError
}
