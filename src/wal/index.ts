/** Tally's write-ahead log: public surface. See docs/wal.md. */
export { Wal, datasyncHandle, resetWal, segmentBytesMaxDefault, groupBytesMaxDefault, pendingGroupsMax } from './wal.ts'
export type { WalRecord, WalOptions, WalRecovery, WalCounters, WalIo } from './wal.ts'
export { WalError, isWalError } from './errors.ts'
export type { WalErrorReason } from './errors.ts'
export { segmentFileName, parseSegmentFileName, entryOverheadBytes, entryHeaderBytes } from './format.ts'
