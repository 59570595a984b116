export { LedgerNode } from './ledger-node.ts'
export type { LedgerNodeOptions } from './ledger-node.ts'
