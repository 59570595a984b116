/**
 * What the pipeline reports as it works, for metrics. The node calls these
 * once per proposal, WAL group, store batch or checkpoint — never per row —
 * so an observer costs the write path a few additions. The pure cores (FSM,
 * cache) stay unaware of it: the node observes them from outside.
 */
export interface PipelineObserver {
  /** A proposal was appended to the WAL with the cache's answers for its keys at stamping. */
  proposalAppended(orders: number, cacheHits: number, cacheMisses: number): void
  /** A write was refused with 503 CACHE_HORIZON_EXCEEDED (a key would be unreachable). */
  horizonRefused(): void
  /** One WAL group became durable: its entry count, and how long its fdatasync took (0 without sync). */
  walGroupDurable(entries: number, fsyncSeconds: number): void
  /** One store batch was applied by the FSM and written. */
  batchApplied(proposals: number, seconds: number): void
  /** One proposal went from WAL append to applied and stored in this long (what a write waits after admission). */
  proposalCommitted(seconds: number): void
  /** The FSM found a key outside a proposal's declared coverage. */
  coverageMiss(): void
  /** A store checkpoint (a synced store write) took this long. */
  checkpointed(seconds: number): void
}

/** The observer a node starts with: counts nothing. */
export const silentObserver: PipelineObserver = {
  proposalAppended() {},
  horizonRefused() {},
  walGroupDurable() {},
  batchApplied() {},
  proposalCommitted() {},
  coverageMiss() {},
  checkpointed() {},
}
