export { Store, rangeBatchesOf, groupedRows, scanBatchBytes, STORAGE_SCHEMA_VERSION, cumulativeStallSeconds, SchemaVersionMismatch, shortRangeRowsMax, shortRangeBatchBytesMax } from './store.ts'
export type { BatchedRangeOptions, BatchedRangeReader, RangeOptions, ShortRange, ShortReader, StoreReader, StoreTuning, StoreWriter, WriteSlices } from './store.ts'
export * from './layout.ts'
export { RowGenerations } from './row-generations.ts'
