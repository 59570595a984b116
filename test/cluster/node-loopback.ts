/**
 * A tiny in-process loopback between `LedgerNode`s in replicated mode, for
 * the node's own tests: not a second protocol implementation. The primary's
 * durable entries are read back from its WAL and handed to each connected
 * replica's `appendReplicated`; the flushed LSN a replica answers is fed to
 * the protocol's pure `CommitTracker` with the primary's own durable LSN,
 * and the committed LSN it yields goes to the primary and to the replicas
 * (`advanceCommitted`). Connect matches logs by (index, epoch), walking down
 * from the replica's flushed LSN (the peer transport does this for real).
 */
import { CommitTracker, Lsn, ReplicaId } from '../../src/replication/index.ts'
import type { DurabilityMode } from '../../src/replication/index.ts'
import type { LedgerNode, ReplicatedEntry } from '../../src/server/index.ts'

/** Entries per shipped batch (small, so batches interleave with new writes). */
const shipBatchMax = 16

interface Link {
  readonly node: LedgerNode
  /** Highest LSN handed to the replica on this connection. */
  shipped: number
  running: boolean
  again: boolean
  connected: boolean
}

export class Loopback {
  readonly tracker: CommitTracker
  private readonly links = new Map<string, Link>()
  private stopFlushed: (() => void) | undefined
  /** The first shipping failure (a test asserts there is none). */
  failure: unknown

  constructor(
    private primary: LedgerNode,
    options: { mode: DurabilityMode; memberCount: number },
  ) {
    this.tracker = new CommitTracker({ mode: options.mode, memberCount: options.memberCount, committedLsn: Lsn.of(primary.clusterStatus().committedLsn) })
    this.attachPrimary()
  }

  private attachPrimary(): void {
    this.stopFlushed = this.primary.onFlushed((flushed) => {
      this.tracker.recordPrimaryDurable(Lsn.of(flushed))
      this.advance()
      for (const link of this.links.values()) this.pump(link)
    })
  }

  /** A new primary (after a failover): a new tracker lineage, replicas connect again. */
  switchPrimary(primary: LedgerNode): void {
    this.stopFlushed?.()
    for (const link of this.links.values()) link.connected = false
    this.links.clear()
    this.primary = primary
    this.tracker.clearAcks()
    this.tracker.recordPrimaryDurable(Lsn.of(primary.clusterStatus().flushedLsn))
    this.attachPrimary()
  }

  /** Connects a replica: finds where its log matches the primary's, then ships from there. */
  async connect(id: string, node: LedgerNode): Promise<void> {
    let match = Math.min(node.clusterStatus().flushedLsn, this.primary.clusterStatus().flushedLsn)
    const floor = node.clusterStatus().appliedIndex
    while (match > floor) {
      const [mine, theirs] = await Promise.all([node.entryEpoch(match), this.primary.entryEpoch(match)])
      if (mine !== undefined && mine === theirs) break
      match -= 1
    }
    const link: Link = { node, shipped: match, running: false, again: false, connected: true }
    this.links.set(id, link)
    this.tracker.resetAck(ReplicaId.of(id), Lsn.of(match))
    node.advanceCommitted(this.tracker.committedLsn)
    this.pump(link)
  }

  /** Stops shipping to a replica (its process died, or the link is cut). */
  disconnect(id: string): void {
    const link = this.links.get(id)
    if (link !== undefined) link.connected = false
    this.links.delete(id)
  }

  private advance(): void {
    if (this.tracker.advance() === undefined) return
    const committed = this.tracker.committedLsn
    this.primary.advanceCommitted(committed)
    for (const link of this.links.values()) if (link.connected) link.node.advanceCommitted(committed)
  }

  private pump(link: Link): void {
    if (!link.connected) return
    if (link.running) {
      link.again = true
      return
    }
    link.running = true
    void this.drain(link).finally(() => {
      link.running = false
    })
  }

  private async drain(link: Link): Promise<void> {
    const primary = this.primary
    try {
      for (;;) {
        link.again = false
        const target = primary.clusterStatus().flushedLsn
        while (link.connected && link.shipped < target) {
          const batch: ReplicatedEntry[] = []
          for await (const entry of primary.readLog(link.shipped + 1, Math.min(target, link.shipped + shipBatchMax))) batch.push(entry)
          if (!link.connected) return
          const flushed = await link.node.appendReplicated(batch)
          link.shipped = batch.at(-1)?.index ?? link.shipped
          if (!link.connected || primary !== this.primary) return
          this.tracker.recordAck(ReplicaId.of(idOf(this.links, link)), Lsn.of(flushed))
          this.advance()
          link.node.advanceCommitted(this.tracker.committedLsn)
        }
        if (!link.again || !link.connected) return
      }
    } catch (error) {
      if (link.connected) this.failure ??= error
    }
  }

  /** Resolves once every connected replica applied what the primary applied (or rejects after `timeoutMs`). */
  async settle(timeoutMs = 20_000): Promise<void> {
    const target = this.primary.storeIndex()
    for (const [id, link] of this.links) {
      if (!(await link.node.waitForApplied(target, timeoutMs))) {
        throw new Error(`replica ${id} did not reach applied index ${target} (status ${JSON.stringify(link.node.clusterStatus())}; failure ${String(this.failure)})`)
      }
    }
  }

  close(): void {
    this.stopFlushed?.()
    for (const link of this.links.values()) link.connected = false
    this.links.clear()
  }
}

function idOf(links: ReadonlyMap<string, Link>, wanted: Link): string {
  for (const [id, link] of links) if (link === wanted) return id
  throw new Error('an unknown link')
}
