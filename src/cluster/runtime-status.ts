/**
 * What a cluster node's runtime shows operators (`/_/cluster`, `/_/metrics`,
 * `tally cluster status`; docs/cluster.md, "Watching a cluster"): its role
 * and assignment, and on a primary each replica's positions and link, plus
 * the recent recovery log — a bounded ring of the runtime's own events
 * (role changes, leases, promotions, links deposed), newest last.
 */
import type { DurabilityMode, ReplicaId, ReplicaState } from '../replication/index.ts'
import type { NodeClusterStatus, NodeLogLevel } from '../server/index.ts'

/** How a primary's link to one replica stands: no link (no address registered), or the link's phase. */
export type ReplicaLinkPhase = 'none' | 'idle' | 'dialing' | 'hello' | 'truncating' | 'matched'

/** One replica as its primary sees it. LSNs are absent when unknown (no matched link, no report yet). */
export interface ReplicaView {
  readonly replicaId: ReplicaId
  /** `voter` counts for the commit quorum; a `learner` receives the log and counts for nothing yet. */
  readonly membership: 'voter' | 'learner'
  readonly state: ReplicaState
  readonly link: ReplicaLinkPhase
  /** The replica's peer address as registered in etcd. */
  readonly address: string | undefined
  /** Highest LSN shipped on the current link: the replica's head once it arrives. */
  readonly headLsn: number | undefined
  /** Highest LSN the replica acknowledged durable (its flushed LSN) on the current link. */
  readonly flushedLsn: number | undefined
  /** The replica's committed and applied LSNs, from its last report in etcd (a tick or so old). */
  readonly committedLsn: number | undefined
  readonly appliedLsn: number | undefined
  /** Entries the primary holds durable that the replica has not acknowledged (the primary's durable LSN when nothing is acknowledged). */
  readonly lagEntries: number
  /** Connections the link opened since this node became primary. */
  readonly connections: number
  readonly lastError: string | undefined
}

export interface RecoveryLogLine {
  /** Wall-clock time, ISO 8601 (for the operator; nothing orders by it). */
  readonly at: string
  readonly level: NodeLogLevel
  readonly message: string
}

export interface ClusterRuntimeView {
  readonly runtime: 'starting' | 'primary' | 'replica' | 'stopped'
  readonly assignment:
    | {
        readonly epoch: number
        readonly primaryId: ReplicaId
        readonly replicaIds: readonly ReplicaId[]
        readonly learnerIds: readonly ReplicaId[]
        readonly durability: DurabilityMode
        readonly committedLsn: number
      }
    | undefined
  /** On a primary: its lease (`holding`, `lapsed`, `deposed`) and the commit point recorded in etcd. */
  readonly lease: string | undefined
  readonly recordedCommitLsn: number | undefined
  /** On a primary, one per replica of the assignment; empty otherwise. */
  readonly replicas: readonly ReplicaView[]
  /** Assignments this node followed whose primary differs from the one before (since the process started). */
  readonly primaryChanges: number
  readonly recoveryLog: readonly RecoveryLogLine[]
}

/** What `GET /_/cluster` answers: the node's own positions, and in cluster mode the runtime's view. */
export type ClusterStatusView = NodeClusterStatus & { readonly replication?: ClusterRuntimeView }

export const recoveryLogLinesMax = 100
const recoveryLogLineBytesMax = 500

/** The last `recoveryLogLinesMax` lines, each cut to a bounded length. */
export class RecoveryLogRing {
  readonly #lines: RecoveryLogLine[] = []

  constructor(private readonly capacity = recoveryLogLinesMax) {}

  add(level: NodeLogLevel, message: string, at: Date): void {
    const text = message.length > recoveryLogLineBytesMax ? `${message.slice(0, recoveryLogLineBytesMax)}…` : message
    this.#lines.push({ at: at.toISOString(), level, message: text })
    if (this.#lines.length > this.capacity) this.#lines.splice(0, this.#lines.length - this.capacity)
  }

  lines(): readonly RecoveryLogLine[] {
    return [...this.#lines]
  }
}
