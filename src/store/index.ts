export { Store, STORAGE_SCHEMA_VERSION, SchemaVersionMismatch } from './store.ts'
export type { BatchedRangeOptions, BatchedRangeReader, RangeOptions, StoreReader, StoreWriter, WriteSlices } from './store.ts'
export * from './layout.ts'
