// Helpers for scripted simulator scenarios: a traced cluster, trace queries
// and the reference comparison every scenario ends with.
import assert from 'node:assert/strict'
import { Cluster, formatTraceEvent } from '../../src/sim/index.ts'
import { ReplicaId } from '../../src/replication/index.ts'
import type { ClusterOptions, TraceEvent, TraceKind } from '../../src/sim/index.ts'

export function traced(options: Partial<ClusterOptions> = {}): Cluster {
  return new Cluster({ seed: 7, trace: true, ...options })
}

export function writes(cluster: Cluster, count: number): void {
  for (let index = 0; index < count; index += 1) cluster.write()
}

/** n3 misses entries past the primary's recycled WAL, then comes back: a snapshot (7) + tail (to 10) rebuild. */
export function replicaBehindRetention(options: Partial<ClusterOptions> = {}): Cluster {
  const cluster = traced(options)
  cluster.run(3)
  writes(cluster, 3)
  cluster.run(5)
  cluster.crash(ReplicaId.of('n3'))
  writes(cluster, 4)
  cluster.run(6)
  cluster.checkpoint(ReplicaId.of('n1'))
  cluster.recycle(ReplicaId.of('n1'))
  writes(cluster, 3)
  cluster.run(5)
  cluster.restart(ReplicaId.of('n3'))
  return cluster
}

/** Trace events of `kind` whose text contains every fragment. */
export function events(cluster: Cluster, kind: TraceKind, ...fragments: string[]): TraceEvent[] {
  return cluster.trace().filter((event) => event.kind === kind && fragments.every((fragment) => event.text.includes(fragment)))
}

export function expectEvent(cluster: Cluster, kind: TraceKind, ...fragments: string[]): TraceEvent {
  const found = events(cluster, kind, ...fragments)[0]
  assert.ok(found !== undefined, `expected a ${kind} event with ${JSON.stringify(fragments)}\n${dump(cluster)}`)
  return found
}

export function expectNoEvent(cluster: Cluster, kind: TraceKind, ...fragments: string[]): void {
  const found = events(cluster, kind, ...fragments)
  assert.equal(found.length, 0, `unexpected ${kind} event: ${found.map(formatTraceEvent).join('\n')}`)
}

/** Index of the first matching event (for ordering assertions). */
export function indexOf(cluster: Cluster, kind: TraceKind, ...fragments: string[]): number {
  return indexAfter(cluster, -1, kind, ...fragments)
}

/** Index of the first matching event after index `after`, or -1. */
export function indexAfter(cluster: Cluster, after: number, kind: TraceKind, ...fragments: string[]): number {
  const trace = cluster.trace()
  for (let index = after + 1; index < trace.length; index += 1) {
    const event = trace[index]
    if (event !== undefined && event.kind === kind && fragments.every((fragment) => event.text.includes(fragment))) return index
  }
  return -1
}

export function expectClean(cluster: Cluster): void {
  assert.deepEqual(cluster.violations, [], dump(cluster))
}

/** The node's state at the committed LSN equals the reference's. */
export function expectMatchesReference(cluster: Cluster, id: string): void {
  const committed = cluster.assignments.read().record.committedLsn
  assert.equal(cluster.node(ReplicaId.of(id)).digestAt(committed), cluster.reference.digestAt(committed), `${id} differs from the reference at ${committed}`)
}

export function dump(cluster: Cluster): string {
  return cluster
    .trace()
    .filter((event) => event.kind !== 'timeout_ignored')
    .slice(-150)
    .map(formatTraceEvent)
    .join('\n')
}
