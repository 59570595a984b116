/**
 * Randomized runs: a seed picks the cluster shape (3–5 nodes, durability
 * mode, event order) and then one action per step (writes, crashes,
 * restarts with or without a new address, link failures, checkpoints, WAL
 * recycling, epoch bumps), each followed by one tick and the invariant
 * checks. The same seed always produces the same run, so a failing seed is
 * replayed with the trace switched on.
 */
import { InvariantViolation } from '../domain/index.ts'
import { Cluster, emptyClusterStats, reliableNetwork, type NetworkModel, type ClusterOptions, type ClusterStats, type DurabilityMode, type PlantedBugs } from './cluster.ts'
import type { Violation } from './checker.ts'
import { coordinatorId, type EventOrder, type NodeId } from './events.ts'
import { Prng } from './prng.ts'
import { noFaults, type ProtocolFaults } from '../replication/index.ts'
import type { LedgerOptions, LedgerReport } from './ledger-state.ts'

export interface RandomRunOptions {
  readonly seed: number
  readonly steps: number
  readonly trace?: boolean
  readonly plantedBugs?: PlantedBugs
  /** Test-only defects planted in the protocol modules (off by default). */
  readonly faults?: ProtocolFaults
  /** The network model (reliable by default). */
  readonly network?: NetworkModel
  /** Fixes parts of the cluster shape instead of drawing them from the seed. */
  readonly shape?: Partial<RunShape>
  /** After the faulty steps, heal and require every replica in sync within `livenessTicksMax` (default on). */
  readonly liveness?: boolean
  /** Run the ledger in the simulator: every node applies its committed entries through the FSM (off by default). */
  readonly ledger?: LedgerOptions
}

export interface RunShape {
  readonly nodeCount: number
  readonly durability: DurabilityMode
  readonly order: EventOrder
  /** `tight`: catch-up, reservation and budget limits drawn short, so each is sometimes the first to end a catch-up. */
  readonly timers: 'default' | 'tight'
  /** `faulty`: slow and failing fsyncs, slow interruptible base transfers, few pins (see `StorageModel`). */
  readonly storage: 'healthy' | 'faulty'
  /** `network`: connects are a handshake and a reply over the simulated network, polled by the driver. */
  readonly handshake: 'call' | 'network'
  /**
   * `partitioned`: leased primaries, and the primary is sometimes cut off
   * from the coordinator while it keeps running (it is replaced, serves on
   * deposed, and clients still write to it); see `partitionStep`.
   */
  readonly coordinatorLinks: 'reliable' | 'partitioned'
  /**
   * `suspicion` (partitioned runs only, when asked for): replicas that lose their primary
   * say so, and a quorum of them promotes without waiting for the lease —
   * over a primary that may still run and hold it (see
   * `ClusterOptions.suspectAfterTicks`); the primary is now and then cut off
   * from all its replicas but not from the coordinator (a false suspicion).
   */
  readonly detection: 'lease' | 'suspicion'
  /**
   * `restarting`: the coordinator process restarts now and then (it re-reads
   * the versioned assignment and resumes); the replaced process may act on
   * its old view for a few more ticks, its writes refused by
   * compare-and-swap; see `coordinatorStep`.
   */
  readonly coordinator: 'steady' | 'restarting'
  /**
   * `changing` (asked for, never drawn, so every seed's run stays what it
   * was): the assignment names voters and learners, the last node starts as
   * a spare when the mode allows, and an operator adds a node as a learner
   * or removes a member now and then (see `membershipStep`).
   */
  readonly membership: 'static' | 'changing'
}

export interface RunResult {
  readonly seed: number
  readonly shape: RunShape
  readonly stepsRun: number
  readonly violations: readonly Violation[]
  readonly stats: ClusterStats
  readonly committedLsn: number
  readonly trace: readonly string[]
  /** Ticks the healed cluster took to bring every replica in sync (undefined when not checked or not reached). */
  readonly settledAfterTicks: number | undefined
  /** What the ledger did, when it ran in the simulator. */
  readonly ledger: LedgerReport | undefined
}

/** The liveness bound: after faults stop, every replica is in sync within this many ticks. */
export const livenessTicksMax = 200

export const stepsMax = 1_000_000

const actions = [
  'write',
  'idle',
  'crash',
  'restart',
  'link_down',
  'link_up',
  'move_endpoint',
  'checkpoint',
  'recycle',
  'distrust_checkpoint',
  'epoch_bump',
] as const
type Action = (typeof actions)[number]
const actionWeights: Record<Action, number> = {
  write: 34,
  idle: 20,
  crash: 4,
  restart: 9,
  link_down: 4,
  link_up: 8,
  move_endpoint: 2,
  checkpoint: 7,
  recycle: 6,
  distrust_checkpoint: 1,
  epoch_bump: 1,
}
const weights = actions.map((action) => actionWeights[action])

export function shapeFor(seed: number, fixed: RandomRunOptions['shape'] = {}): RunShape {
  const prng = new Prng(seed ^ 0x51ab)
  const nodeCount = fixed.nodeCount ?? 3 + prng.int(3)
  const durabilities: DurabilityMode[] = ['sync_all', 'sync_quorum', 'best_effort']
  const durability = fixed.durability ?? prng.pick(durabilities)
  const order = fixed.order ?? (prng.chance(0.5) ? 'ordered' : 'shuffled')
  // Drawn apart, so adding them left the shapes above as they were for every seed.
  const profile = new Prng(seed ^ 0x7133)
  const timers = fixed.timers ?? (profile.chance(0.5) ? 'tight' : 'default')
  const storage = fixed.storage ?? (profile.chance(0.5) ? 'faulty' : 'healthy')
  const handshake = fixed.handshake ?? (profile.chance(0.5) ? 'network' : 'call')
  const coordinatorLinks = fixed.coordinatorLinks ?? (profile.chance(0.35) ? 'partitioned' : 'reliable')
  const coordinator = fixed.coordinator ?? (new Prng(seed ^ 0x636f6f72).chance(0.4) ? 'restarting' : 'steady')
  // Asked for (a shape), not drawn: every seed's run stays what it was, so the pinned seeds keep what they catch.
  const detection = coordinatorLinks === 'partitioned' ? (fixed.detection ?? 'lease') : 'lease'
  const membership = fixed.membership ?? 'static'
  return { nodeCount, durability, order, timers, storage, handshake, coordinatorLinks, coordinator, detection, membership }
}

/** The cluster options a shape stands for; the tight limits and the faulty disk are drawn from the seed. */
export function optionsFor(seed: number, shape: RunShape): Partial<ClusterOptions> {
  const prng = new Prng(seed ^ 0x7134)
  const options: { -readonly [K in keyof ClusterOptions]?: ClusterOptions[K] } = {
    nodeCount: shape.nodeCount,
    durability: shape.durability,
    order: shape.order,
    handshakeOverNetwork: shape.handshake === 'network',
    membership: shape.membership === 'changing',
  }
  // Drawn apart (and only for changing membership), so nothing else a seed draws moves.
  if (shape.membership === 'changing') options.learnerPassTicks = 1 + new Prng(seed ^ 0x6c726e).int(24)
  if (shape.coordinatorLinks === 'partitioned') {
    // Heartbeats every tick, a round trip of 2: the primary's lease (8 - 2 ticks from the send) outlives a lost heartbeat or two.
    options.primaryLease = leaseTermsPartitioned
    options.leaseTimeoutTicks = leaseTermsPartitioned.leaseTicks
    if (shape.detection === 'suspicion') options.suspectAfterTicks = 1 + new Prng(seed ^ 0x7375).int(4)
  }
  if (shape.timers === 'tight') {
    options.catchUpTimeoutTicks = 6 + prng.int(20)
    options.reservationTimeoutTicks = 6 + prng.int(25)
    options.catchUpBudget = {
      durationTicksMax: prng.pick([0, 12, 20]),
      entriesMax: prng.pick([0, 16, 40]),
      progressDeadlineTicks: prng.pick([0, 4, 8]),
    }
  }
  if (shape.storage === 'faulty') {
    options.storage = {
      slowFsyncPermille: 30,
      slowFsyncTicksMax: 4,
      failedFsyncPermille: 1,
      slowTransferPercent: 30,
      slowTransferTicksMax: 16,
      pinsMax: 2 + prng.int(3),
    }
  }
  return options
}

export const leaseTermsPartitioned = Object.freeze({ leaseTicks: 8, safetyMarginTicks: 2 })

/**
 * Coordinator partitions, drawn from their own PRNG so a seed's actions stay
 * the same: the primary is cut off from the coordinator (sometimes one way),
 * links to the coordinator come back, and a client still pointed at a
 * deposed primary writes there.
 */
function partitionStep(cluster: Cluster, prng: Prng): void {
  const primary = cluster.runtime?.nodeId
  if (primary !== undefined && prng.int(100) < 3) cluster.isolateFromCoordinator(primary, prng.chance(0.7))
  // A replica's own partition: cut off from the coordinator (it misses assignments, its reports go stale), sometimes from the primary too.
  const replicas = cluster.nodeIds.filter((id) => id !== primary)
  if (replicas.length > 0 && prng.int(100) < 3) {
    const replica = prng.pick(replicas)
    cluster.isolateFromCoordinator(replica, prng.chance(0.6))
    if (primary !== undefined && prng.chance(0.4)) cluster.linkDown(primary, replica, prng.chance(0.7))
  }
  // A false suspicion: the primary cut off from every replica, not from the coordinator (it keeps its lease).
  if (primary !== undefined && cluster.options.suspectAfterTicks !== undefined && prng.int(100) < 2) {
    for (const replica of replicas) cluster.linkDown(primary, replica, prng.chance(0.5))
  }
  const cut = cluster.linksDown().filter((link) => link.includes(coordinatorId))
  if (cut.length > 0 && prng.int(100) < 8) {
    const [from, to] = prng.pick(cut).split('>') as [NodeId, NodeId]
    cluster.linkUp(from, to, false)
  }
  if (cluster.deposed().length > 0 && prng.int(100) < 40) cluster.writeToDeposed()
}

/** Coordinator restarts, drawn from their own PRNG: the replaced process acts on, unaware, for 0–3 ticks. */
function coordinatorStep(cluster: Cluster, prng: Prng): void {
  if (prng.int(100) < 3) cluster.restartCoordinator(prng.int(4))
}

/**
 * Membership changes, drawn from their own PRNG so a seed's actions stay the
 * same: now and then an operator adds a node that is not a member (it joins
 * as a learner) or removes a member other than the primary; the rules may
 * refuse (below the durability mode, the primary, a member already named).
 */
function membershipStep(cluster: Cluster, prng: Prng): void {
  if (prng.int(100) >= 4) return
  const membership = cluster.membership()
  if (membership === undefined) return
  const members = [membership.primaryId, ...membership.replicaIds, ...membership.learnerIds]
  const spares = cluster.nodeIds.filter((id) => !members.includes(id))
  // Mostly add a spare when there is one; otherwise remove a member at random (the primary too: refused).
  if (spares.length > 0 && prng.chance(0.6)) cluster.changeMembership('add', prng.pick(spares))
  else cluster.changeMembership('remove', prng.pick(members))
}

function step(cluster: Cluster, prng: Prng): void {
  const action = actions[prng.weighted(weights)]
  const ids = cluster.nodeIds
  const running = ids.filter((id) => cluster.node(id).running)
  const crashed = ids.filter((id) => !cluster.node(id).running)
  const any = (list: readonly NodeId[]): NodeId | undefined => (list.length === 0 ? undefined : prng.pick(list))
  switch (action) {
    case 'write': {
      const count = 1 + prng.int(3)
      for (let index = 0; index < count; index += 1) cluster.write()
      break
    }
    case 'idle':
      break
    case 'crash': {
      const id = any(running)
      if (id !== undefined) cluster.crash(id)
      break
    }
    case 'restart': {
      const id = any(crashed)
      if (id !== undefined) cluster.restart(id, { changeEndpoint: prng.chance(0.25) })
      break
    }
    case 'link_down': {
      const from = prng.pick(ids)
      const to = prng.pick(ids.filter((id) => id !== from))
      cluster.linkDown(from, to, prng.chance(0.7))
      break
    }
    case 'link_up': {
      const down = cluster.linksDown()
      if (down.length > 0) {
        const [from, to] = prng.pick(down).split('>') as [NodeId, NodeId]
        cluster.linkUp(from, to, false)
      }
      break
    }
    case 'move_endpoint': {
      const id = any(running.filter((candidate) => candidate !== cluster.runtime?.nodeId))
      if (id !== undefined) cluster.moveEndpoint(id)
      break
    }
    case 'checkpoint': {
      const id = any(running)
      if (id !== undefined) cluster.checkpoint(id)
      break
    }
    case 'recycle': {
      const id = any(running)
      if (id !== undefined) cluster.recycle(id)
      break
    }
    case 'distrust_checkpoint': {
      const id = any(running)
      if (id !== undefined) cluster.distrustCheckpoint(id)
      break
    }
    case 'epoch_bump':
      cluster.bumpEpoch()
      break
    case undefined:
      throw new InvariantViolation('action index out of range')
    default: {
      const never: never = action
      throw new InvariantViolation(`unknown action ${String(never)}`)
    }
  }
}

/** One seeded run; stops at the first step that records a violation. */
export function runRandom(options: RandomRunOptions): RunResult {
  if (!Number.isSafeInteger(options.steps) || options.steps < 0 || options.steps > stepsMax) {
    throw new InvariantViolation(`steps must be in [0, ${stepsMax}]`)
  }
  const shape = shapeFor(options.seed, options.shape)
  const cluster = new Cluster({
    seed: options.seed,
    ...optionsFor(options.seed, shape),
    trace: options.trace === true,
    plantedBugs: options.plantedBugs ?? {},
    faults: options.faults ?? noFaults,
    network: options.network ?? reliableNetwork,
    ledger: options.ledger,
  })
  const prng = new Prng(options.seed ^ 0x7f4a7c15)
  const partitionPrng = shape.coordinatorLinks === 'partitioned' ? new Prng(options.seed ^ 0x70617274) : undefined
  const coordinatorPrng = shape.coordinator === 'restarting' ? new Prng(options.seed ^ 0x72737472) : undefined
  const membershipPrng = shape.membership === 'changing' ? new Prng(options.seed ^ 0x6d656d62) : undefined
  let stepsRun = 0
  let settledAfterTicks: number | undefined
  try {
    while (stepsRun < options.steps && cluster.violations.length === 0) {
      step(cluster, prng)
      if (partitionPrng !== undefined) partitionStep(cluster, partitionPrng)
      if (coordinatorPrng !== undefined) coordinatorStep(cluster, coordinatorPrng)
      if (membershipPrng !== undefined) membershipStep(cluster, membershipPrng)
      cluster.tick()
      stepsRun += 1
    }
    if (options.liveness !== false && cluster.violations.length === 0) settledAfterTicks = settle(cluster)
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
    cluster.recordViolation({ tick: cluster.now, kind: 'exception', detail: message })
  }
  return {
    seed: options.seed,
    shape,
    stepsRun,
    violations: cluster.violations,
    stats: cluster.stats,
    committedLsn: cluster.assignments.read().record.committedLsn,
    trace: options.trace === true ? cluster.traceLines() : [],
    settledAfterTicks,
    ledger: cluster.ledger?.report(),
  }
}

/** A primary serves and every other node's sender is in sync. */
function inSyncEverywhere(cluster: Cluster): boolean {
  const runtime = cluster.runtime
  if (runtime === undefined) return false
  return members(cluster).every((id) => id === runtime.nodeId || runtime.registry.sender(id)?.state === 'in_sync')
}

/** The nodes the assignment names (every node without membership changes): a spare is never brought in sync. */
function members(cluster: Cluster): readonly NodeId[] {
  const membership = cluster.membership()
  if (membership === undefined) return cluster.nodeIds
  return cluster.nodeIds.filter((id) => id === membership.primaryId || membership.replicaIds.includes(id) || membership.learnerIds.includes(id))
}

/**
 * Liveness: faults stop (crashed nodes restart at their address, links come
 * back, the network stops losing, delaying and duplicating), then the cluster must bring every replica in sync within
 * `livenessTicksMax` ticks, with the invariants still checked every tick.
 * Returns the ticks it took; a cluster stuck past the bound is a violation.
 */
function settle(cluster: Cluster): number | undefined {
  cluster.healNetwork()
  cluster.healStorage()
  for (const id of cluster.nodeIds) if (!cluster.node(id).running) cluster.restart(id)
  for (const link of cluster.linksDown()) {
    const [from, to] = link.split('>') as [NodeId, NodeId]
    cluster.linkUp(from, to, false)
  }
  for (let ticks = 1; ticks <= livenessTicksMax && cluster.violations.length === 0; ticks += 1) {
    cluster.tick()
    if (inSyncEverywhere(cluster)) return ticks
  }
  if (cluster.violations.length > 0) return undefined
  const runtime = cluster.runtime
  const states = members(cluster).map((id) => `${id}:${id === runtime?.nodeId ? 'primary' : (runtime?.registry.sender(id)?.state ?? 'no_primary')}`)
  const detail = `not every replica in sync ${livenessTicksMax} ticks after faults stopped: ${states.join(' ')}`
  cluster.recordViolation({ tick: cluster.now, kind: 'liveness', detail })
  return undefined
}

export interface SeedsSummary {
  readonly runs: number
  readonly steps: number
  readonly failures: readonly RunResult[]
  readonly totals: ClusterStats
}

/** Runs `count` seeds starting at `firstSeed`; `onRun` sees each result (for progress). */
export function runSeeds(options: {
  readonly firstSeed: number
  readonly count: number
  readonly steps: number
  readonly plantedBugs?: PlantedBugs
  readonly faults?: ProtocolFaults
  readonly network?: NetworkModel
  readonly shape?: RandomRunOptions['shape']
  readonly ledger?: LedgerOptions
  readonly onRun?: (result: RunResult, index: number) => void
}): SeedsSummary {
  const failures: RunResult[] = []
  const totals: ClusterStats = emptyClusterStats()
  let steps = 0
  for (let index = 0; index < options.count; index += 1) {
    const result = runRandom({
      seed: options.firstSeed + index,
      steps: options.steps,
      ...(options.plantedBugs === undefined ? {} : { plantedBugs: options.plantedBugs }),
      ...(options.faults === undefined ? {} : { faults: options.faults }),
      ...(options.network === undefined ? {} : { network: options.network }),
      ...(options.shape === undefined ? {} : { shape: options.shape }),
      ...(options.ledger === undefined ? {} : { ledger: options.ledger }),
    })
    steps += result.stepsRun
    for (const key of Object.keys(totals) as Array<keyof ClusterStats>) totals[key] += result.stats[key]
    if (result.violations.length > 0) failures.push(result)
    options.onRun?.(result, index)
  }
  return { runs: options.count, steps, failures, totals }
}
