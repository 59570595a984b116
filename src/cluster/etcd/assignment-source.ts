/**
 * The engine's `AssignmentSource` over etcd: the current assignment, and
 * every newer one in epoch order as the watch delivers it (never an older
 * one, never the same epoch twice). Replica endpoints are the registered
 * ones at the time the assignment arrives; a member not registered yet gets
 * version 0, older than any registration, so its first registration reaches
 * the sender as an endpoint change.
 */
import type { Assignment, AssignmentSource } from '../../replication/index.ts'
import type { ClusterAssignment } from './codec.ts'
import type { AssignmentWatch, EtcdControlPlane, MemberView } from './control-plane.ts'
import { unknownEndpoint } from './operator.ts'

export class EtcdAssignmentSource implements AssignmentSource {
  readonly #control: EtcdControlPlane
  readonly #listeners = new Set<(assignment: Assignment) => void>()
  readonly #onError: (error: Error) => void
  #current: { readonly cluster: ClusterAssignment; readonly engine: Assignment } | undefined
  #watch: AssignmentWatch | undefined
  #queue: Promise<void> = Promise.resolve()

  private constructor(control: EtcdControlPlane, onError: (error: Error) => void) {
    this.#control = control
    this.#onError = onError
  }

  /** Reads the current assignment, then watches from just after its revision (no gap, no replay). */
  static async open(control: EtcdControlPlane, options: { readonly onError?: (error: Error) => void } = {}): Promise<EtcdAssignmentSource> {
    const source = new EtcdAssignmentSource(control, options.onError ?? (() => undefined))
    const [assignment, members] = await Promise.all([control.readAssignment(), control.members()])
    if (assignment !== undefined) source.#current = { cluster: assignment, engine: engineAssignment(assignment, members) }
    source.#watch = await control.watchAssignment(assignment?.revision ?? 0, (next) => source.#arrived(next), source.#onError)
    return source
  }

  current(): Assignment | undefined {
    return this.#current?.engine
  }

  /** The assignment as etcd holds it (primary, durability, commit, lineage resets). */
  currentCluster(): ClusterAssignment | undefined {
    return this.#current?.cluster
  }

  subscribe(listener: (assignment: Assignment) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  #arrived(next: ClusterAssignment): void {
    // Endpoints are read per arrival; arrivals are handled one at a time so delivery keeps their order.
    this.#queue = this.#queue.then(async () => {
      let members: MemberView[] = []
      try {
        members = await this.#control.members()
      } catch (error) {
        this.#onError(error as Error)
      }
      if (this.#current !== undefined && next.epoch <= this.#current.cluster.epoch) return
      const engine = engineAssignment(next, members)
      this.#current = { cluster: next, engine }
      for (const listener of this.#listeners) listener(engine)
    })
  }

  async close(): Promise<void> {
    await this.#watch?.cancel()
    await this.#queue
  }
}

function engineAssignment(assignment: ClusterAssignment, members: readonly MemberView[]): Assignment {
  const endpoints = new Map(members.map((member) => [member.nodeId, member.endpoint]))
  return {
    epoch: assignment.epoch,
    replicas: assignment.replicaIds.map((replicaId) => ({ replicaId, endpoint: endpoints.get(replicaId) ?? unknownEndpoint })),
  }
}
