/** A real node's I/O adapters for cluster mode (contract §4), and the runtime that wires them to a `LedgerNode`. */
export * from './etcd/index.ts'
export { ClusterNode, AcknowledgementGate, clusterTickMsDefault, formatAddress } from './cluster-node.ts'
export type { ClusterNodeOptions, ClusterRole } from './cluster-node.ts'
export { sharedClusterId, clusterIdKey } from './cluster-id.ts'
export { PrimaryRecovery, recoveryTuningDefault, recoveryTuningFrom, recoverySecondsMax, repeatedLinesWindowMs } from './recovery-runtime.ts'
export type { RecoveryLimits, RecoveryTuning, RecoveryMember } from './recovery-runtime.ts'
