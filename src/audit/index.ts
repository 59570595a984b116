export { chainEntry, verifyEntry, GENESIS } from './chain.ts'
export type { AuditHead, AuditBody, AuditEntry } from './chain.ts'
export { v2LogHash } from './v2-log-hash.ts'
