export { LedgerNode } from './ledger-node.ts'
export type { LedgerNodeOptions } from './ledger-node.ts'
export { AuditCheckpoints, AuditKeyError, AuditHistoryRewritten, loadAuditCheckpointSettings, isInside, auditCheckpointEntriesDefault, auditCheckpointIntervalMsDefault } from './audit-checkpoints.ts'
export type { AuditCheckpointSettings } from './audit-checkpoints.ts'
