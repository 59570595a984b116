export { Store, STORAGE_SCHEMA_VERSION, SchemaVersionMismatch, shortRangeRowsMax, shortRangeBatchBytesMax } from './store.ts'
export type { BatchedRangeOptions, BatchedRangeReader, RangeOptions, ShortRange, ShortReader, StoreReader, StoreWriter, WriteSlices } from './store.ts'
export * from './layout.ts'
