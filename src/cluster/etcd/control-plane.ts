/**
 * The control plane's I/O on etcd: reads and compare-and-swap writes of the
 * assignment, the commit mark, the registered nodes and their reports, and
 * a watch of the assignment. Decisions (who to promote, when) are the pure
 * modules' (`src/replication/`); this adapter only moves values, and checks
 * what it reads (`codec.ts`).
 *
 * Fencing: the assignment is written only by a transaction that compares
 * its mod revision with the one the writer read, so a writer acting on an
 * old view is refused and sees the newer assignment instead. The epoch IS
 * that mod revision: etcd's revisions only grow, so every new assignment has
 * a larger epoch than any before it, whoever wrote it (etcd's own advice:
 * the revision is the fencing token). A coordinator's writes also compare
 * the create revision of its election key: a coordinator whose lease lapsed
 * while it was paused cannot write, even with a current view.
 *
 * Every call has a deadline; a failure to reach etcd is a
 * `ControlPlaneUnavailable` (503 + Retry-After at the API).
 */
import { Etcd3, type IKeyValue, type IOptions, type ITxnResponse, type Lease } from 'etcd3'
import type { Epoch, Endpoint, Lsn, ReplicaId } from '../../replication/index.ts'
import {
  ControlPlaneDataError,
  decodeAssignment,
  decodeCommitted,
  decodeEndpoint,
  decodeReport,
  encodeAssignment,
  encodeCommitted,
  valueBytesMax,
  type AssignmentProposal,
  type ClusterAssignment,
  type CommittedMark,
  type NodeReport,
} from './codec.ts'
import { ControlPlaneUnavailable } from './errors.ts'
import { clusterKeys, defaultKeyPrefix, type ClusterKeys } from './keys.ts'

export const callTimeoutMsDefault = 2_000
/** Bounds how many registered nodes a listing reads. */
export const nodesListedMax = 256

export interface EtcdConnectionOptions {
  /** Client endpoints, `host:port` each. */
  readonly endpoints: readonly string[]
  /** Key prefix of this cluster's state (default `/tally/`). */
  readonly prefix?: string
  /** Deadline of each call to etcd. */
  readonly callTimeoutMs?: number
}

/** `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]` → endpoints and key prefix. */
export function parseClusterUrl(url: string): { readonly endpoints: string[]; readonly prefix: string } {
  const match = /^etcd:\/\/([^/]+)(\/.*)?$/.exec(url)
  if (match === null) throw new Error(`expected etcd://HOST:PORT[,HOST:PORT...][/PREFIX], got ${JSON.stringify(url.slice(0, 200))}`)
  const endpoints = (match[1] as string).split(',')
  for (const endpoint of endpoints) {
    const hostPort = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(endpoint)
    if (hostPort === null || Number(hostPort[2]) < 1 || Number(hostPort[2]) > 65535) throw new Error(`expected HOST:PORT in the etcd URL, got ${JSON.stringify(endpoint.slice(0, 100))}`)
  }
  const path = match[2]
  const prefix = path === undefined || path === '/' ? defaultKeyPrefix : path.endsWith('/') ? path : `${path}/`
  return { endpoints, prefix }
}

/** What a compare-and-swap of the assignment did. */
export type AssignmentSwap =
  | { readonly ok: true; readonly assignment: ClusterAssignment }
  | { readonly ok: false; readonly reason: 'revision_mismatch'; readonly current: ClusterAssignment | undefined }
  | { readonly ok: false; readonly reason: 'not_coordinator' }
  /** The commit mark changed since it was read: the new assignment would carry a commit lower than the one recorded. */
  | { readonly ok: false; readonly reason: 'commit_moved' }

/**
 * A membership change carries the acknowledged commit into the new
 * assignment; it is written only if the commit mark is still the one it
 * read (its mod revision, 0 when absent), so a commit recorded meanwhile is
 * never left behind (a promotion after it would not keep that entry).
 */
export interface CommittedGuard {
  readonly committedRevision: number
}

/** The elected coordinator's proof: the create revision of its election key. */
export interface CoordinatorFence {
  readonly createRevision: number
}

/** A registered node: its endpoint (versioned by the registration's mod revision) and its last report. */
export interface MemberView {
  readonly nodeId: ReplicaId
  /** Undefined when the node's registration is gone (its lease expired) but a report lingers, or the reverse. */
  readonly endpoint: Endpoint | undefined
  readonly report: NodeReport | undefined
}

export type CommitReport = 'recorded' | 'not_newer' | 'stale_epoch'

/** A watch of the assignment; `cancel` ends it. */
export interface AssignmentWatch {
  cancel(): Promise<void>
}

export class EtcdControlPlane {
  readonly keys: ClusterKeys
  readonly endpoints: readonly string[]
  readonly callTimeoutMs: number
  readonly #client: Etcd3
  #closed = false

  private constructor(options: EtcdConnectionOptions) {
    if (options.endpoints.length === 0) throw new Error('no etcd endpoint')
    this.keys = clusterKeys(options.prefix ?? defaultKeyPrefix)
    this.endpoints = [...options.endpoints]
    this.callTimeoutMs = options.callTimeoutMs ?? callTimeoutMsDefault
    const callTimeoutMs = this.callTimeoutMs
    const clientOptions: IOptions = {
      hosts: this.endpoints.map((endpoint) => `http://${endpoint}`),
      dialTimeout: callTimeoutMs,
      defaultCallOptions: () => ({ deadline: new Date(Date.now() + callTimeoutMs) }),
    }
    this.#client = new Etcd3(clientOptions)
  }

  static connect(options: EtcdConnectionOptions): EtcdControlPlane {
    return new EtcdControlPlane(options)
  }

  /** The etcd client, for the registration and election adapters of this module. */
  get client(): Etcd3 {
    return this.#client
  }

  /** Runs one etcd call; any failure to talk to etcd becomes `ControlPlaneUnavailable`. */
  async call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (error) {
      if (error instanceof ControlPlaneDataError || error instanceof ControlPlaneUnavailable) throw error
      throw new ControlPlaneUnavailable(operation, this.endpoints, error)
    }
  }

  /** A lease that this process keeps alive itself (no background keep-alive: the caller counts from when it asked). */
  lease(ttlSeconds: number): Lease {
    return this.#client.lease(ttlSeconds, { autoKeepAlive: false })
  }

  async readAssignment(): Promise<ClusterAssignment | undefined> {
    const response = await this.call('read assignment', () => this.#client.get(this.keys.assignment).exec())
    const kv = response.kvs[0]
    return kv === undefined ? undefined : this.#assignmentOf(kv)
  }

  /** Writes the first assignment, only if none exists. */
  async createAssignment(proposal: AssignmentProposal, fence?: CoordinatorFence): Promise<AssignmentSwap> {
    return this.#swap('create assignment', 'Create', 0, proposal, fence)
  }

  /** Writes `proposal` only if the assignment is still at `expectedRevision` (and, with a fence, the coordinator is still elected). */
  async swapAssignment(expectedRevision: number, proposal: AssignmentProposal, fence?: CoordinatorFence, guard?: CommittedGuard): Promise<AssignmentSwap> {
    return this.#swap('swap assignment', 'Mod', expectedRevision, proposal, fence, guard)
  }

  async #swap(operation: string, column: 'Create' | 'Mod', expected: number, proposal: AssignmentProposal, fence: CoordinatorFence | undefined, guard?: CommittedGuard): Promise<AssignmentSwap> {
    const value = encodeAssignment(proposal)
    const client = this.#client
    const response: ITxnResponse = await this.call(operation, () => {
      let txn = client.if(this.keys.assignment, column, '==', expected)
      if (fence !== undefined) txn = txn.and(this.keys.coordinator, 'Create', '==', fence.createRevision)
      if (guard !== undefined) txn = txn.and(this.keys.committed, 'Mod', '==', guard.committedRevision)
      return txn.then(client.put(this.keys.assignment).value(value)).else(client.get(this.keys.assignment)).commit()
    })
    if (response.succeeded) {
      const revision = revisionOf(response.header.revision)
      return { ok: true, assignment: decodeAssignment(this.keys.assignment, value, revision) }
    }
    const kv = response.responses[0]?.response_range?.kvs[0]
    const current = kv === undefined ? undefined : this.#assignmentOf(kv)
    const currentRevision = current?.revision ?? 0
    if (column === 'Mod' ? currentRevision !== expected : current !== undefined) return { ok: false, reason: 'revision_mismatch', current }
    // The assignment is as read: the commit mark moved (the primary recorded a newer commit), or the election did.
    if (guard !== undefined && fence === undefined) return { ok: false, reason: 'commit_moved' }
    if (guard !== undefined) {
      const mark = await this.readCommittedVersioned()
      if ((mark?.revision ?? 0) !== guard.committedRevision) return { ok: false, reason: 'commit_moved' }
    }
    return { ok: false, reason: 'not_coordinator' }
  }

  /**
   * Watches the assignment from after `afterRevision`: `onAssignment`
   * receives each newer assignment in revision order and never one at or
   * below a revision it already received (a watch that reconnects may replay).
   */
  async watchAssignment(afterRevision: number, onAssignment: (assignment: ClusterAssignment) => void, onError: (error: Error) => void): Promise<AssignmentWatch> {
    let delivered = afterRevision
    const watcher = await this.call('watch assignment', () =>
      this.#client.watch().key(this.keys.assignment).startRevision(String(afterRevision + 1)).create(),
    )
    watcher.on('put', (kv) => {
      let assignment: ClusterAssignment
      try {
        assignment = this.#assignmentOf(kv)
      } catch (error) {
        onError(error as Error)
        return
      }
      if (assignment.revision <= delivered) return
      delivered = assignment.revision
      onAssignment(assignment)
    })
    watcher.on('error', (error) => onError(error))
    return { cancel: () => watcher.cancel() }
  }

  /** Registered nodes (endpoint and report), in node-id order. */
  async members(): Promise<MemberView[]> {
    const client = this.#client
    const [nodes, reports] = await this.call('list nodes', () =>
      Promise.all([
        client.getAll().prefix(this.keys.nodesPrefix).limit(nodesListedMax).exec(),
        client.getAll().prefix(this.keys.reportsPrefix).limit(nodesListedMax).exec(),
      ]),
    )
    const byId = new Map<ReplicaId, { endpoint?: Endpoint; report?: NodeReport }>()
    for (const kv of nodes.kvs) {
      const key = kv.key.toString('utf8')
      const nodeId = this.keys.nodeIdOf(key, this.keys.nodesPrefix)
      if (nodeId === undefined) continue
      const value = decodeEndpoint(key, textOf(key, kv))
      byId.set(nodeId, { ...byId.get(nodeId), endpoint: { ...value, version: revisionOf(kv.mod_revision) } })
    }
    for (const kv of reports.kvs) {
      const key = kv.key.toString('utf8')
      const nodeId = this.keys.nodeIdOf(key, this.keys.reportsPrefix)
      if (nodeId === undefined) continue
      byId.set(nodeId, { ...byId.get(nodeId), report: decodeReport(key, textOf(key, kv)) })
    }
    return [...byId.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([nodeId, view]) => ({ nodeId, endpoint: view.endpoint, report: view.report }))
  }

  async readCommitted(): Promise<CommittedMark | undefined> {
    return (await this.readCommittedVersioned())?.mark
  }

  /** The commit mark and its mod revision (what a `CommittedGuard` names). */
  async readCommittedVersioned(): Promise<{ readonly mark: CommittedMark; readonly revision: number } | undefined> {
    const response = await this.call('read commit', () => this.#client.get(this.keys.committed).exec())
    const kv = response.kvs[0]
    return kv === undefined ? undefined : { mark: decodeCommitted(this.keys.committed, textOf(this.keys.committed, kv)), revision: revisionOf(kv.mod_revision) }
  }

  /**
   * The primary of `epoch` records the commit it acknowledged. Fenced: it is
   * written only while the assignment is still at `epoch` (a deposed primary
   * records nothing), and only forward within an epoch.
   */
  async reportCommitted(epoch: Epoch, committedLsn: Lsn): Promise<CommitReport> {
    const client = this.#client
    for (let attempt = 0; attempt < 8; attempt++) {
      const response = await this.call('read commit', () => client.get(this.keys.committed).exec())
      const kv = response.kvs[0]
      const current = kv === undefined ? undefined : decodeCommitted(this.keys.committed, textOf(this.keys.committed, kv))
      if (current !== undefined && current.epoch > epoch) return 'stale_epoch'
      if (current !== undefined && current.epoch === epoch && current.committedLsn >= committedLsn) return 'not_newer'
      const readRevision = kv === undefined ? 0 : revisionOf(kv.mod_revision)
      const value = encodeCommitted({ epoch, committedLsn })
      const txn = await this.call('record commit', () =>
        client
          .if(this.keys.assignment, 'Mod', '==', epoch)
          .and(this.keys.committed, 'Mod', '==', readRevision)
          .then(client.put(this.keys.committed).value(value))
          .else(client.get(this.keys.assignment))
          .commit(),
      )
      if (txn.succeeded) return 'recorded'
      const assignmentKv = txn.responses[0]?.response_range?.kvs[0]
      if (assignmentKv === undefined || revisionOf(assignmentKv.mod_revision) !== epoch) return 'stale_epoch'
      // Only the commit mark moved (a late write of the same primary): read again.
    }
    return 'not_newer'
  }

  /** Who coordinates now, if anyone. */
  async coordinator(): Promise<{ readonly holder: string; readonly createRevision: number } | undefined> {
    const response = await this.call('read coordinator', () => this.#client.get(this.keys.coordinator).exec())
    const kv = response.kvs[0]
    if (kv === undefined) return undefined
    return { holder: textOf(this.keys.coordinator, kv), createRevision: revisionOf(kv.create_revision) }
  }

  #assignmentOf(kv: IKeyValue): ClusterAssignment {
    return decodeAssignment(this.keys.assignment, textOf(this.keys.assignment, kv), revisionOf(kv.mod_revision))
  }

  get closed(): boolean {
    return this.#closed
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#client.close()
  }
}

/** etcd revisions travel as decimal strings (int64); ours stay below 2^53. */
export function revisionOf(value: string | number): number {
  const revision = Number(value)
  if (!Number.isSafeInteger(revision) || revision < 0) throw new ControlPlaneDataError('(revision)', `revision ${String(value).slice(0, 32)} is not a safe integer`)
  return revision
}

function textOf(key: string, kv: IKeyValue): string {
  if (kv.value.length > valueBytesMax) throw new ControlPlaneDataError(key, `value larger than ${valueBytesMax} bytes`)
  return kv.value.toString('utf8')
}
