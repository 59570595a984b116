/**
 * Where the control plane keeps its state in etcd, under one prefix per
 * cluster (`/tally/` by default; `etcd://HOST:PORT/PREFIX` picks another):
 *
 * | key | value | written by | lease |
 * |---|---|---|---|
 * | `assignment` | primary, replicas, durability mode, commit, lineage resets | the coordinator (CAS on its mod revision); the operator's desperate promotion | none |
 * | `committed` | the commit the current epoch's primary acknowledged | the primary, fenced by the assignment's revision | none |
 * | `nodes/<id>` | the node's endpoint | the node | the node's registration lease |
 * | `reports/<id>` | epoch, durable/safe/committed/applied LSNs, published replica states | the node | the node's registration lease |
 * | `coordinator` | who coordinates | the elected coordinator (created only if absent) | the coordinator's lease |
 * | `suspicions/<id>` | the epoch (and primary) whose primary the node lost its connection to | the node, while it suspects | the node's registration lease |
 *
 * The epoch of an assignment is the etcd mod revision of the `assignment`
 * key: every write makes a new, larger one, so it is the fencing token.
 */
import { ReplicaId } from '../../replication/index.ts'

export const defaultKeyPrefix = '/tally/'

export interface ClusterKeys {
  readonly prefix: string
  readonly assignment: string
  readonly committed: string
  readonly coordinator: string
  readonly nodesPrefix: string
  readonly reportsPrefix: string
  readonly suspicionsPrefix: string
  node(nodeId: ReplicaId): string
  report(nodeId: ReplicaId): string
  suspicion(nodeId: ReplicaId): string
  /** The node id a `nodes/` or `reports/` key names, or undefined for a key outside them (or a malformed id). */
  nodeIdOf(key: string, under: string): ReplicaId | undefined
}

export function clusterKeys(prefix = defaultKeyPrefix): ClusterKeys {
  if (!prefix.startsWith('/') || !prefix.endsWith('/')) throw new Error(`key prefix must start and end with '/': ${JSON.stringify(prefix)}`)
  const nodesPrefix = `${prefix}nodes/`
  const reportsPrefix = `${prefix}reports/`
  const suspicionsPrefix = `${prefix}suspicions/`
  return {
    prefix,
    assignment: `${prefix}assignment`,
    committed: `${prefix}committed`,
    coordinator: `${prefix}coordinator`,
    nodesPrefix,
    reportsPrefix,
    suspicionsPrefix,
    node: (nodeId) => `${nodesPrefix}${nodeId}`,
    report: (nodeId) => `${reportsPrefix}${nodeId}`,
    suspicion: (nodeId) => `${suspicionsPrefix}${nodeId}`,
    nodeIdOf(key, under) {
      if (!key.startsWith(under)) return undefined
      const id = key.slice(under.length)
      return isNodeId(id) ? (id as ReplicaId) : undefined
    },
  }
}

const nodeIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** Node ids are short names (letters, digits, `.`, `_`, `-`): they are etcd key segments and replica ids. */
export function isNodeId(value: string): boolean {
  return nodeIdPattern.test(value)
}

export function nodeIdOf(value: string): ReplicaId {
  if (!isNodeId(value)) throw new Error(`node id must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit: ${JSON.stringify(value.slice(0, 80))}`)
  return ReplicaId.of(value)
}
