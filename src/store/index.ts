export { Store, STORAGE_SCHEMA_VERSION, SchemaVersionMismatch } from './store.ts'
export type { RangeOptions, StoreReader, StoreWriter } from './store.ts'
export * from './layout.ts'
