import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Outputs, PipelineState } from '../outputs/index.ts'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { LedgerNode, LoopStall, LoopStallObserver, PipelineObserver } from '../server/index.ts'
import type { ClusterRuntimeView } from '../cluster/runtime-status.ts'
import { CountingHistogram } from './histogram.ts'

/**
 * Prometheus metrics of one server (`GET /_/metrics`, text format 0.0.4).
 * Labels are bounded: HTTP routes are the registered route templates
 * (`/v2/:ledger/transactions`), never a raw URL, a ledger name or an
 * address; everything else is labelled by a closed set of values.
 * The pipeline reports through `PipelineObserver` (once per proposal, WAL
 * group, store batch or checkpoint); gauges are read at scrape time.
 */
export class ServerMetrics implements PipelineObserver, LoopStallObserver {
  readonly registry = new Registry()
  /** Histograms observed per request or per proposal count with a few additions (`CountingHistogram`); the rare ones are prom-client's. */
  private counting(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []): CountingHistogram {
    const histogram = new CountingHistogram(name, help, buckets, labelNames)
    this.registry.registerMetric(histogram as unknown as Parameters<Registry['registerMetric']>[0])
    return histogram
  }

  private readonly httpSeconds = this.counting(
    'tally_http_request_duration_seconds',
    'HTTP requests by method, route template and status, with their latency.',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    ['method', 'route', 'status'],
  )
  private readonly proposals = new Counter({ name: 'tally_proposals_total', help: 'Proposals appended to the WAL.', registers: [this.registry] })
  private readonly orders = new Counter({ name: 'tally_orders_total', help: 'Orders in the proposals appended to the WAL.', registers: [this.registry] })
  private readonly ordersPerProposal = this.counting(
    'tally_proposal_orders',
    'Orders per proposal.',
    [1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000],
  )
  private readonly cacheLookups = new Counter({
    name: 'tally_cache_lookups_total',
    help: "Keys of admitted proposals by the cache's answer at stamping: hit, miss (seeded from the store), unreachable (refused).",
    labelNames: ['result'] as const,
    registers: [this.registry],
  })
  private readonly horizonRefusals = new Counter({
    name: 'tally_cache_horizon_refusals_total',
    help: 'Writes refused with 503 CACHE_HORIZON_EXCEEDED.',
    registers: [this.registry],
  })
  private readonly walGroupEntries = this.counting(
    'tally_wal_group_entries',
    'Entries per durable WAL group (group commit).',
    [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
  )
  private readonly walFsyncSeconds = this.counting(
    'tally_wal_fsync_duration_seconds',
    'fdatasync latency per WAL group (0 when the WAL runs without sync).',
    // Fine below a millisecond: an fdatasync that commits no journal takes 0.1–0.3 ms on a quiet disk.
    [0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  )
  private readonly applySeconds = this.counting(
    'tally_apply_batch_duration_seconds',
    'FSM apply plus store write per store batch.',
    [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
  )
  private readonly commitSeconds = this.counting(
    'tally_commit_duration_seconds',
    'Per proposal, from WAL append to applied and stored: group commit, fsync, apply and store write.',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  )
  private readonly appliedProposals = new Counter({ name: 'tally_applied_proposals_total', help: 'Proposals applied by the FSM and stored.', registers: [this.registry] })
  private readonly coverageMisses = new Counter({
    name: 'tally_coverage_misses_total',
    help: "Keys the FSM touched outside a proposal's declared coverage (a bug in admission's plan: alert on any).",
    registers: [this.registry],
  })
  private readonly checkpointSeconds = new Histogram({
    name: 'tally_store_checkpoint_duration_seconds',
    help: "Store checkpoints: the audit checkpoint's flush and the synced store write (on the JavaScript thread), not the WAL recycling after it.",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  })
  private readonly loopStalls = new Histogram({
    name: 'tally_event_loop_stall_seconds',
    help: 'Event-loop stalls of 100 ms or more (the watch threshold), by length.',
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  })
  private readonly loopStallParts = new Counter({
    name: 'tally_event_loop_stall_thread_seconds_total',
    help: "The JavaScript thread's time in stalled windows: on_cpu, waiting_for_cpu (runnable, not scheduled), blocked (a system call, or asleep); the three add up to the windows.",
    labelNames: ['state'] as const,
    registers: [this.registry],
  })
  private readonly loopStallActivities = new Counter({
    name: 'tally_event_loop_stall_activity_seconds_total',
    help: 'Wall-clock time in stalled windows spent in gc pauses, in the FSM apply, and in store_write (row copies and RocksDB writes, a RocksDB write stall included).',
    labelNames: ['activity'] as const,
    registers: [this.registry],
  })
  private readonly storeWriteStalls = new Counter({
    name: 'tally_rocksdb_write_stall_seconds_total',
    help: "Time RocksDB delayed or stopped writes (its cumulative stall), each spent on the JavaScript thread.",
    registers: [this.registry],
  })

  /**
   * Each pipeline's lag (logs stored, not yet confirmed by its sink) and
   * whether it runs, read at scrape time (docs/pipelines.md). Labelled by
   * ledger and pipeline id: both bounded (at most 1000 pipelines).
   */
  observeOutputs(outputs: Outputs): void {
    const registers = [this.registry]
    let states: Promise<readonly PipelineState[]> | undefined
    // One read of the states per scrape serves both gauges.
    const read = (): Promise<readonly PipelineState[]> => {
      states ??= outputs.states().finally(() => setImmediate(() => (states = undefined)))
      return states
    }
    new Gauge({
      name: 'tally_pipeline_lag_logs',
      help: 'Logs stored after the last one the sink confirmed, per pipeline.',
      labelNames: ['ledger', 'pipeline'] as const,
      registers,
      async collect() {
        this.reset()
        for (const state of await read()) this.set({ ledger: state.ledger, pipeline: state.id }, Number(state.lag))
      },
    })
    new Gauge({
      name: 'tally_pipeline_running',
      help: '1 while the pipeline runs, 0 when stopped.',
      labelNames: ['ledger', 'pipeline'] as const,
      registers,
      async collect() {
        this.reset()
        for (const state of await read()) this.set({ ledger: state.ledger, pipeline: state.id }, state.enabled ? 1 : 0)
      },
    })
  }

  /**
   * The cluster runtime's figures, read at scrape time: per-replica lag
   * (labelled by replica id: at most the assignment's 64 members) and the
   * primary changes this node followed.
   */
  observeCluster(view: () => ClusterRuntimeView | undefined): void {
    const registers = [this.registry]
    new Gauge({
      name: 'tally_cluster_replica_lag_entries',
      help: "On a primary, per replica: entries durable here and not yet acknowledged durable by the replica.",
      labelNames: ['replica'] as const,
      registers,
      collect() {
        this.reset()
        for (const replica of view()?.replicas ?? []) this.set({ replica: replica.replicaId }, replica.lagEntries)
      },
    })
    new Gauge({
      name: 'tally_cluster_replica_connected',
      help: 'On a primary, per replica: 1 while its link is matched (shipping), 0 otherwise.',
      labelNames: ['replica'] as const,
      registers,
      collect() {
        this.reset()
        for (const replica of view()?.replicas ?? []) this.set({ replica: replica.replicaId }, replica.link === 'matched' ? 1 : 0)
      },
    })
    new Counter({
      name: 'tally_cluster_failovers_total',
      help: 'Assignments this node followed whose primary differs from the one before (since the process started).',
      registers,
      collect() {
        this.reset()
        this.inc(view()?.primaryChanges ?? 0)
      },
    })
  }

  constructor(node: LedgerNode) {
    const registers = [this.registry]
    new Gauge({
      name: 'tally_cluster_role',
      help: "1 for this node's replication role (single, primary or replica), 0 for the others.",
      labelNames: ['role'] as const,
      registers,
      collect() {
        const role = node.clusterStatus().role
        for (const candidate of ['single', 'primary', 'replica'] as const) this.set({ role: candidate }, candidate === role ? 1 : 0)
      },
    })
    new Gauge({ name: 'tally_cluster_epoch', help: 'The highest epoch this node adopted (0 for a single node).', registers, collect() { this.set(node.clusterStatus().epoch) } })
    new Gauge({ name: 'tally_cluster_committed_lsn', help: 'The highest LSN this node knows committed.', registers, collect() { this.set(node.clusterStatus().committedLsn) } })
    new Gauge({ name: 'tally_cluster_applied_lsn', help: 'The highest LSN applied and stored here (reads reflect at least this).', registers, collect() { this.set(node.clusterStatus().appliedIndex) } })
    new Gauge({ name: 'tally_applied_index', help: 'Highest log index applied by the FSM.', registers, collect() { this.set(node.fsm.appliedIndex) } })
    new Gauge({ name: 'tally_durable_index', help: 'Highest log index fsynced in the WAL.', registers, collect() { this.set(node.wal.durable) } })
    new Gauge({
      name: 'tally_apply_lag_entries',
      help: 'Durable but not yet applied entries (durable index − applied index).',
      registers,
      collect() { this.set(Math.max(0, node.wal.durable - node.fsm.appliedIndex)) },
    })
    new Gauge({
      name: 'tally_cache_entries',
      help: 'Entries in each cache generation.',
      labelNames: ['generation'] as const,
      registers,
      collect() {
        const size = node.cache.size
        this.set({ generation: 'gen0' }, size.gen0)
        this.set({ generation: 'gen1' }, size.gen1)
      },
    })
    new Gauge({
      name: 'tally_cache_bytes',
      help: "Counted bytes of each cache generation (keys, encoded values, 200 per entry).",
      labelNames: ['generation'] as const,
      registers,
      collect() {
        const bytes = node.cache.bytes
        this.set({ generation: 'gen0' }, bytes.gen0)
        this.set({ generation: 'gen1' }, bytes.gen1)
      },
    })
    new Gauge({ name: 'tally_cache_generation', help: "The cache's current generation number.", registers, collect() { this.set(node.cache.generation) } })
    const rocksdb = (name: string, help: string, property: string): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const value = node.store.numericProperty(property)
          if (value !== undefined) this.set(value)
        },
      })
    }
    new Counter({
      name: 'tally_store_log_syncs_ahead_total',
      help: "fdatasyncs of RocksDB's log files on libuv's pool, between store checkpoints and before each (latency only), by outcome.",
      labelNames: ['outcome'] as const,
      registers,
      collect() {
        const figures = node.store.logSyncAheadFigures
        this.reset()
        this.inc({ outcome: 'synced' }, figures.syncs)
        this.inc({ outcome: 'failed' }, figures.failures)
      },
    })
    new Counter({
      name: 'tally_store_log_sync_ahead_seconds_total',
      help: "Wall-clock seconds those fdatasyncs of RocksDB's log took, on libuv's pool (not the JavaScript thread).",
      registers,
      collect() {
        this.reset()
        this.inc(node.store.logSyncAheadFigures.seconds)
      },
    })
    rocksdb('tally_rocksdb_memtable_bytes', 'RocksDB memtables, all column families (rocksdb.cur-size-all-mem-tables).', 'rocksdb.cur-size-all-mem-tables')
    rocksdb('tally_rocksdb_pending_compaction_bytes', 'RocksDB estimate of bytes compaction must rewrite (rocksdb.estimate-pending-compaction-bytes).', 'rocksdb.estimate-pending-compaction-bytes')
    rocksdb('tally_rocksdb_running_compactions', 'RocksDB compactions running (rocksdb.num-running-compactions).', 'rocksdb.num-running-compactions')
    rocksdb('tally_rocksdb_level0_files', 'RocksDB files at level 0; writes slow down at 20 and stop at 36 (rocksdb.num-files-at-level0).', 'rocksdb.num-files-at-level0')
    rocksdb('tally_rocksdb_immutable_memtables', 'RocksDB memtables waiting to be flushed (rocksdb.num-immutable-mem-table).', 'rocksdb.num-immutable-mem-table')
    rocksdb('tally_rocksdb_running_flushes', 'RocksDB flushes running (rocksdb.num-running-flushes).', 'rocksdb.num-running-flushes')
    rocksdb('tally_rocksdb_delayed_write_rate_bytes', 'RocksDB write rate while it delays writes, bytes/s; 0 when not delaying (rocksdb.actual-delayed-write-rate).', 'rocksdb.actual-delayed-write-rate')
    rocksdb('tally_rocksdb_write_stopped', '1 while RocksDB stops writes (rocksdb.is-write-stopped).', 'rocksdb.is-write-stopped')
    rocksdb('tally_rocksdb_background_errors', 'RocksDB background errors since open (rocksdb.background-errors).', 'rocksdb.background-errors')
    rocksdb('tally_rocksdb_live_data_bytes', 'RocksDB estimate of live data (rocksdb.estimate-live-data-size).', 'rocksdb.estimate-live-data-size')
  }

  // ---- PipelineObserver ------------------------------------------------------------

  proposalAppended(orders: number, cacheHits: number, cacheMisses: number): void {
    this.proposals.inc()
    this.orders.inc(orders)
    this.ordersPerProposal.observe(orders)
    if (cacheHits > 0) this.cacheLookups.inc({ result: 'hit' }, cacheHits)
    if (cacheMisses > 0) this.cacheLookups.inc({ result: 'miss' }, cacheMisses)
  }

  horizonRefused(): void {
    this.horizonRefusals.inc()
    this.cacheLookups.inc({ result: 'unreachable' })
  }

  walGroupDurable(entries: number, fsyncSeconds: number): void {
    this.walGroupEntries.observe(entries)
    this.walFsyncSeconds.observe(fsyncSeconds)
  }

  batchApplied(proposals: number, seconds: number): void {
    this.appliedProposals.inc(proposals)
    this.applySeconds.observe(seconds)
  }

  proposalCommitted(seconds: number): void {
    this.commitSeconds.observe(seconds)
  }

  coverageMiss(): void {
    this.coverageMisses.inc()
  }

  checkpointed(seconds: number): void {
    this.checkpointSeconds.observe(seconds)
  }

  // ---- LoopStallObserver -----------------------------------------------------------

  loopStalled(stall: LoopStall): void {
    this.loopStalls.observe(stall.delayMs / 1000)
    if (stall.onCpuMs !== undefined) this.loopStallParts.inc({ state: 'on_cpu' }, stall.onCpuMs / 1000)
    if (stall.waitingForCpuMs !== undefined) this.loopStallParts.inc({ state: 'waiting_for_cpu' }, stall.waitingForCpuMs / 1000)
    if (stall.blockedMs !== undefined) this.loopStallParts.inc({ state: 'blocked' }, stall.blockedMs / 1000)
    this.loopStallActivities.inc({ activity: 'gc' }, stall.gcMs / 1000)
    this.loopStallActivities.inc({ activity: 'store_write' }, stall.storeWritesMs / 1000)
    this.loopStallActivities.inc({ activity: 'apply' }, stall.applyMs / 1000)
  }

  storeWriteStalled(seconds: number): void {
    this.storeWriteStalls.inc(seconds)
  }

  // ---- HTTP ------------------------------------------------------------------------

  /** Counts each answered request under its route template (`unmatched` for a 404 no route took). */
  requestAnswered(request: FastifyRequest, reply: FastifyReply, elapsedMs: number = reply.elapsedTime): void {
    const route = request.routeOptions.url ?? 'unmatched'
    const method = httpMethods.has(request.method) ? request.method : 'OTHER'
    const status = reply.statusCode
    // The key is one-to-one with the label values: the method and status hold no space.
    this.httpSeconds.seriesFor(`${method} ${status} ${route}`, () => [method, route, String(status)]).observe(elapsedMs / 1000)
  }

  /** This server's metrics, then the process's (shared by every server of the process). */
  async text(): Promise<string> {
    return (await this.registry.metrics()) + (await processRegistry().metrics())
  }

  /** The same metrics as v2's `getMetrics` shape: a JSON object by metric name. */
  async json(): Promise<Record<string, unknown>> {
    const metrics = [...(await this.registry.getMetricsAsJSON()), ...(await processRegistry().getMetricsAsJSON())]
    return Object.fromEntries(metrics.map((metric) => [metric.name, { type: metric.type, help: metric.help, values: metric.values }]))
  }
}

const httpMethods: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

let processMetrics: Registry | undefined

/** prom-client's process and Node.js metrics (CPU, memory, event loop lag, GC), registered once per process. */
function processRegistry(): Registry {
  if (processMetrics === undefined) {
    processMetrics = new Registry()
    collectDefaultMetrics({ register: processMetrics })
  }
  return processMetrics
}

/**
 * `GET /_/metrics`: the Prometheus text exposition format, or — for a
 * client that accepts JSON and not text, as Formance's SDKs do — v2's JSON
 * object of metrics by name.
 */
export function metricsRoutes(app: FastifyInstance, metrics: ServerMetrics): void {
  app.get('/_/metrics', async (request, reply) => {
    const accept = request.headers.accept ?? ''
    if (accept.includes('application/json') && !accept.includes('text/plain')) return reply.send(await metrics.json())
    return reply.header('Content-Type', metrics.registry.contentType).send(await metrics.text())
  })
}
