export { chainEntry, entryHash, verifyEntry, decodeAuditEntry, auditRow, GENESIS, AUDIT_ROW_LAYOUT, AUDIT_BODY_LAYOUT } from './chain.ts'
export type { AuditHead, AuditBody, AuditEntry, EncodedAuditEntry, EntryVerdict } from './chain.ts'
export { v2LogHash } from './v2-log-hash.ts'
export { NoteError, parseVerifierKey, parseSignerKey, formatSignerKey, seedOf, signNote, openNote, isValidKeyName, keyHashOf } from './note.ts'
export type { NoteSigner, NoteVerifier, OpenedNote } from './note.ts'
export {
  checkpointOrigin,
  checkpointText,
  signCheckpoint,
  openCheckpoint,
  readCheckpoint,
  parseCheckpointText,
  splitCheckpointNotes,
  checkpointFileBytesMax,
} from './checkpoint.ts'
export type { AuditCheckpoint } from './checkpoint.ts'
