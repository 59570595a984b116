export { chainEntry, entryHash, verifyEntry, decodeAuditEntry, GENESIS } from './chain.ts'
export type { AuditHead, AuditBody, AuditEntry, EncodedAuditEntry, EntryVerdict } from './chain.ts'
export { v2LogHash } from './v2-log-hash.ts'
