/** A real node's I/O adapters for cluster mode (contract §4). */
export * from './etcd/index.ts'
