/**
 * The ledger inside the simulator (issue #10 point 4). Every simulated node
 * applies its committed entries through the real FSM (`LedgerStateMachine`
 * with its cache) over an in-memory store (`MemoryStore`), following the
 * node's lifecycle:
 *
 *  - a primary's client write becomes a real proposal (`ledger-workload.ts`),
 *    planned on that primary's applied state, whose bytes travel with the
 *    WAL entry (keyed by the write's (epoch, LSN), which names one write);
 *  - after every tick each running node applies its WAL up to the LSN it
 *    knows is committed and holds durably (never beyond: applied state never
 *    needs undoing, and a truncation below it is reported, not undone);
 *  - a crash loses the in-memory state; a restart rebuilds it as the server
 *    boots: the checkpoint image's rows, the cache restored from its mirror
 *    rows, then the durable committed WAL replayed through the FSM;
 *  - a checkpoint, snapshot or full base carries the source node's store at
 *    its LSN, captured when the image is taken or pinned.
 *
 * After every tick the checker (`step`) verifies the ledger invariants on
 * every node whose store changed: Σ per asset = 0 over all accounts, no
 * negative balance where none is allowed, the audit chain intact (verified
 * with the audit module's `verifyEntry`, as `tally check` does), the meta
 * rows in step with the FSM, and — the replicas' agreement — every node's
 * state digest at an applied index equal to the digest the first node to
 * reach that index had (so nodes in sync hold byte-identical rows).
 */
import type { AccountAddress, Asset, CanonicalKey } from '../domain/index.ts'
import { canonicalDate, decodeRowValue, invariant, keyFields, parseJson, stringifyJson } from '../domain/index.ts'
import { balanceOf } from '../domain/volumes.ts'
import type { AuditHead } from '../audit/index.ts'
import { GENESIS, decodeAuditEntry, verifyEntry } from '../audit/index.ts'
import { AttributeCache, MIRROR_ZONE, initialCacheState } from '../cache/index.ts'
import { LedgerStateMachine, WriteBatch, cacheSettingsToJson, decodeCacheState, decodeProposal, encodeCacheState } from '../fsm/index.ts'
import { MetaKey, attributeRowKey, auditRowKey, metaKey } from '../store/layout.ts'
import { Lsn, type Epoch, type Tick } from '../replication/index.ts'
import type { Violation } from './checker.ts'
import type { NodeId } from './events.ts'
import { MemoryStore, type LedgerImage } from './ledger-store.ts'
import { genesisCacheSettings, overdraftAccount, overdraftAsset, overdraftLimit, simulatedProposal, type PlanningView } from './ledger-workload.ts'
import type { Image, NodeStateObserver, SimNode, WalEntry } from './node.ts'

/** Test-only ledger-level defects, off by default (see `test/sim/ledger.test.ts`). */
export interface LedgerFaults {
  /** A node applies every entry it holds, committed or not (and durable or not). */
  readonly applyUncommitted?: boolean
  /** A full base carries the source's state one entry short of the LSN it claims. */
  readonly fullBaseSkipsEntry?: boolean
}

export interface LedgerOptions {
  readonly faults?: LedgerFaults
}

export interface LedgerStats {
  /** Entries applied by some node (each node counts). */
  applied: number
  /** Entries whose proposal the FSM found stale (nothing applied, index consumed). */
  stale: number
  /** Orders applied, and orders the FSM refused (insufficient funds, unknown transaction, …). */
  ordersApplied: number
  ordersRefused: number
  /** In-memory states rebuilt from a checkpoint image and the WAL (restarts), and images installed (rebuilds). */
  rebuilt: number
  installed: number
}

/** A run's ledger: its counters and where each node ended (for determinism checks and reports). */
export interface LedgerReport extends LedgerStats {
  readonly nodes: readonly { readonly id: NodeId; readonly appliedIndex: number | undefined; readonly digest: string | undefined }[]
}

export const simClusterId = 'sim-cluster'

/** The rows a fresh data directory starts with (the server's creation batch, ADR 0007). */
function genesisImage(): LedgerImage {
  const store = new MemoryStore()
  store.write([
    { key: metaKey(MetaKey.clusterId), value: Buffer.from(simClusterId, 'utf8') },
    { key: metaKey(MetaKey.cacheGenesis), value: Buffer.from(stringifyJson(cacheSettingsToJson(genesisCacheSettings)), 'utf8') },
    { key: metaKey(MetaKey.cacheState), value: encodeCacheState(initialCacheState(genesisCacheSettings)) },
  ])
  return store.image(0)
}

/** One node's ledger: the FSM and its cache over the node's in-memory store. */
export class NodeLedger implements PlanningView {
  readonly store: MemoryStore
  readonly cache: AttributeCache
  readonly fsm: LedgerStateMachine

  /** Opens a store image as the server boots: meta rows, then the cache from its mirror segments and the attribute rows. */
  constructor(image: LedgerImage) {
    this.store = new MemoryStore(image)
    const applied = Number(this.store.read(metaKey(MetaKey.appliedIndex))?.toString('utf8') ?? '0')
    const headRow = this.store.read(metaKey(MetaKey.auditHead))
    const head = headRow === undefined ? GENESIS : (parseJson(headRow.toString('utf8')) as unknown as AuditHead)
    const stateRow = this.store.read(metaKey(MetaKey.cacheState))
    invariant(stateRow !== undefined, 'a simulated store always holds its cache state')
    this.cache = AttributeCache.restoring(decodeCacheState(stateRow), applied)
    this.cache.restoreSync(this.store.sortedRange(Buffer.of(MIRROR_ZONE), undefined), (key) => this.store.read(attributeRowKey(key)))
    this.fsm = new LedgerStateMachine({ cache: this.cache, clusterId: simClusterId, appliedIndex: applied, auditHead: { seq: head.seq, hash: head.hash } })
  }

  get appliedIndex(): number {
    return this.fsm.appliedIndex
  }

  read(key: Buffer): Buffer | undefined {
    return this.store.read(key)
  }

  /** Applies the entry at the next index through the FSM and writes its batch. */
  apply(index: number, payload: Buffer, stats: LedgerStats): void {
    const batch = new WriteBatch()
    const result = this.fsm.apply(index, decodeProposal(payload), batch)
    this.store.write(batch.rows())
    stats.applied += 1
    if (result.outcome === 'stale') {
      stats.stale += 1
      return
    }
    for (const order of result.results) {
      if (order.status === 'applied') stats.ordersApplied += 1
      else if (order.status === 'failed') stats.ordersRefused += 1
    }
  }

  image(): LedgerImage {
    return this.store.image(this.appliedIndex)
  }
}

const writeKey = (entry: Pick<WalEntry, 'epoch' | 'lsn'>): string => `${entry.epoch}:${entry.lsn}`

/** Proposal dates: one simulated second per tick from 2026-01-01T00:00:00Z (no clock: calendar arithmetic). */
const dateOriginSeconds = 1_767_225_600n
function dateAt(tick: Tick): string {
  const date = canonicalDate((dateOriginSeconds + BigInt(tick)) * 1_000_000_000n)
  invariant(date !== undefined, () => `no date at tick ${tick}`)
  return date
}

type LedgerViolationKind = 'ledger_diverged' | 'ledger_unbalanced' | 'ledger_negative_balance' | 'audit_chain_broken' | 'applied_entry_undone' | 'ledger_entry_missing' | 'ledger_meta_mismatch'

/**
 * The cluster-wide side: the proposals written so far, each node's ledger
 * (undefined while it is down), its checkpoint image, the images pinned for
 * transfers, and the digest of the committed lineage at each applied index.
 */
export class SimLedger {
  readonly stats: LedgerStats = { applied: 0, stale: 0, ordersApplied: 0, ordersRefused: 0, rebuilt: 0, installed: 0 }
  readonly #faults: LedgerFaults
  readonly #nodes: ReadonlyMap<NodeId, SimNode>
  readonly #now: () => Tick
  readonly #payloads = new Map<string, Buffer>()
  readonly #ledgers = new Map<NodeId, NodeLedger | undefined>()
  readonly #checkpoints = new Map<NodeId, LedgerImage>()
  readonly #pinned = new WeakMap<Image, LedgerImage>()
  /** The digest of the state at each applied index, as the first node to reach it had it. */
  readonly #lineage = new Map<number, { digest: bigint; nodeId: NodeId }>()
  /** Per node: the store last checked and the audit head verified in it. */
  readonly #checked = new Map<NodeId, { store: MemoryStore; version: number; head: AuditHead }>()
  /** Violations found in hooks, reported at the next check. */
  #pending: { kind: LedgerViolationKind; detail: string }[] = []
  /**
   * Committed entries above `keptLsn` were declared lost by a desperate
   * promotion at `epoch`: nodes may drop what they applied there, and what
   * they apply there from older epochs (the lost entries) is not the lineage.
   */
  #loss: { keptLsn: number; epoch: number } | undefined

  constructor(nodes: ReadonlyMap<NodeId, SimNode>, now: () => Tick, options: LedgerOptions) {
    this.#nodes = nodes
    this.#now = now
    this.#faults = options.faults ?? {}
    const genesis = genesisImage()
    this.#lineage.set(0, { digest: genesis.digest, nodeId: 'genesis' as NodeId })
    for (const node of nodes.values()) {
      this.#ledgers.set(node.id, new NodeLedger(genesis))
      this.#checkpoints.set(node.id, genesis)
      node.observer = this.#observerFor(node)
    }
  }

  report(): LedgerReport {
    const nodes = [...this.#nodes.keys()].map((id) => {
      const ledger = this.#ledgers.get(id)
      return { id, appliedIndex: ledger?.appliedIndex, digest: ledger?.store.digest.toString(16) }
    })
    return { ...this.stats, nodes }
  }

  /** A node's ledger (undefined while it is down). */
  ledgerOf(id: NodeId): NodeLedger | undefined {
    return this.#ledgers.get(id)
  }

  /** Pins `image` of `source` for a transfer: the ledger state it carries is taken now. */
  capture(source: SimNode, image: Image, kind: 'snapshot' | 'full_base'): Image {
    if (kind === 'snapshot') {
      const checkpoint = this.#checkpoints.get(source.id)
      invariant(checkpoint !== undefined && checkpoint.lsn === image.lsn, () => `${source.id}: snapshot at ${image.lsn} is not its checkpoint`)
      this.#pinned.set(image, checkpoint)
      return image
    }
    const short = this.#faults.fullBaseSkipsEntry === true && image.lsn > 0 && this.#canImage(source, image.lsn - 1)
    const state = this.#imageAt(source, short ? image.lsn - 1 : image.lsn)
    this.#pinned.set(image, short ? { ...state, lsn: image.lsn } : state)
    return image
  }

  /** A desperate promotion at `epoch` declared the committed entries above `keptLsn` lost. */
  declareLoss(keptLsn: Lsn, epoch: Epoch): void {
    this.#loss = { keptLsn: Math.min(this.#loss?.keptLsn ?? keptLsn, keptLsn), epoch }
    for (const index of [...this.#lineage.keys()]) if (index > keptLsn) this.#lineage.delete(index)
  }

  /** Applies what each running node may, then checks the ledger invariants; returns the violations. */
  step(): Violation[] {
    for (const node of this.#nodes.values()) if (node.running) this.#advance(node)
    for (const node of this.#nodes.values()) if (node.running) this.#check(node)
    const tick = this.#now()
    const violations = this.#pending.map(({ kind, detail }) => ({ tick, kind, detail }))
    this.#pending = []
    return violations
  }

  // ------------------------------------------------------------------ hooks

  #observerFor(node: SimNode): NodeStateObserver {
    return {
      written: (entry) => this.#written(node, entry),
      truncated: (toLsn) => this.#truncated(node, toLsn),
      crashed: () => {
        const applied = this.#ledgers.get(node.id)?.appliedIndex ?? 0
        if (applied > node.durableLsn) {
          this.#pending.push({ kind: 'applied_entry_undone', detail: `${node.id} crashed durable to ${node.durableLsn} below its applied index ${applied}` })
        }
        this.#ledgers.set(node.id, undefined)
        this.#checked.delete(node.id)
      },
      restarted: () => this.#rebuild(node),
      checkpointed: (lsn) => this.#checkpoints.set(node.id, this.#imageAt(node, lsn)),
      installed: (image) => this.#installed(node, image),
    }
  }

  /** A primary wrote an entry: its proposal, planned on that primary's applied state. */
  #written(node: SimNode, entry: WalEntry): void {
    const ledger = this.#ledgers.get(node.id)
    invariant(ledger !== undefined, () => `${node.id} writes while down`)
    const key = writeKey(entry)
    invariant(!this.#payloads.has(key), () => `two writes at epoch ${entry.epoch} lsn ${entry.lsn}`)
    const date = dateAt(this.#now())
    this.#payloads.set(key, simulatedProposal(ledger, entry.value, entry.lsn, `sim-e${entry.epoch}-l${entry.lsn}`, date))
  }

  /** Applied state is never undone: a truncation below it loses applied (so committed) entries. */
  #truncated(node: SimNode, toLsn: Lsn): void {
    const ledger = this.#ledgers.get(node.id)
    if (ledger === undefined || ledger.appliedIndex <= toLsn) return
    if (this.#loss !== undefined && toLsn >= this.#loss.keptLsn) {
      // Entries declared lost: the node goes back to its checkpoint and the WAL it keeps.
      this.#rebuild(node)
      return
    }
    this.#pending.push({ kind: 'applied_entry_undone', detail: `${node.id} truncated to ${toLsn} below its applied index ${ledger.appliedIndex}` })
    this.#rebuild(node)
  }

  #installed(node: SimNode, image: Image): void {
    const state = image.lsn === 0 ? genesisImage() : this.#pinned.get(image)
    invariant(state !== undefined, () => `${node.id}: installed an image at ${image.lsn} that carries no ledger state`)
    const ledger = new NodeLedger(state)
    this.#ledgers.set(node.id, ledger)
    this.#checkpoints.set(node.id, state)
    this.#checked.delete(node.id)
    this.stats.installed += 1
    this.#compareWithLineage(node.id, image.lsn, state.digest, 'installed')
    if (ledger.appliedIndex !== image.lsn) {
      this.#pending.push({ kind: 'ledger_diverged', detail: `${node.id} installed an image at ${image.lsn} whose store is at applied index ${ledger.appliedIndex}` })
    }
  }

  /** As the server boots: the checkpoint image, then the durable committed WAL above it. */
  #rebuild(node: SimNode): void {
    const checkpoint = this.#checkpoints.get(node.id)
    invariant(checkpoint !== undefined && checkpoint.lsn === node.checkpoint.lsn, () => `${node.id}: the ledger checkpoint is not at the node's checkpoint ${node.checkpoint.lsn}`)
    const ledger = new NodeLedger(checkpoint)
    this.#ledgers.set(node.id, ledger)
    this.#checked.delete(node.id)
    this.stats.rebuilt += 1
    this.#compareWithLineage(node.id, checkpoint.lsn, checkpoint.digest, 'checkpoint')
    this.#advance(node)
  }

  // ------------------------------------------------------------------ apply

  /** The highest index a node may apply: what it knows is committed and holds durably. */
  #applyBound(node: SimNode): Lsn {
    if (this.#faults.applyUncommitted === true) return node.headLsn
    return Lsn.min(node.knownCommittedLsn, node.durableLsn)
  }

  #advance(node: SimNode, bound: Lsn = this.#applyBound(node)): void {
    const ledger = this.#ledgers.get(node.id)
    if (ledger === undefined) return
    this.#applyTo(node, ledger, bound, true)
  }

  /** Applies `node`'s WAL into `ledger` up to `bound`; `record`: compare with (and extend) the lineage. */
  #applyTo(node: SimNode, ledger: NodeLedger, bound: number, record: boolean): boolean {
    while (ledger.appliedIndex < bound) {
      const index = ledger.appliedIndex + 1
      const entry = node.entry(Lsn.of(index))
      if (entry === undefined || index <= node.tailLsn) {
        this.#pending.push({ kind: 'ledger_entry_missing', detail: `${node.id} must apply ${index} (bound ${bound}) but its WAL holds (${node.tailLsn}, ${node.headLsn}]` })
        return false
      }
      const payload = this.#payloads.get(writeKey(entry))
      invariant(payload !== undefined, () => `no proposal for epoch ${entry.epoch} lsn ${entry.lsn}`)
      ledger.apply(index, payload, this.stats)
      const lost = this.#loss !== undefined && index > this.#loss.keptLsn && entry.epoch < this.#loss.epoch
      if (record && !lost) this.#compareWithLineage(node.id, index, ledger.store.digest, 'applied')
    }
    return true
  }

  /**
   * The node's store at `lsn`: its current state once applied up to what it
   * may; built on a scratch copy from there (or from its checkpoint when it
   * is past `lsn`) through its WAL otherwise, so the node itself never
   * applies beyond its bound.
   */
  #imageAt(node: SimNode, lsn: number): LedgerImage {
    const current = this.#ledgers.get(node.id)
    invariant(current !== undefined, () => `${node.id}: an image taken while down`)
    if (current.appliedIndex < lsn) this.#advance(node)
    if (current.appliedIndex === lsn) return current.image()
    // Past what the node may apply itself (a full base at a commit it does not hold durably yet), or behind it.
    const checkpoint = this.#checkpoints.get(node.id)
    const base = current.appliedIndex < lsn ? current.image() : checkpoint
    invariant(base !== undefined && base.lsn <= lsn, () => `${node.id}: no image at ${lsn} (applied ${current.appliedIndex}, checkpoint ${checkpoint?.lsn})`)
    const scratch = new NodeLedger(base)
    invariant(this.#applyTo(node, scratch, lsn, false) && scratch.appliedIndex === lsn, () => `${node.id}: cannot rebuild its state at ${lsn}`)
    return scratch.image()
  }

  /** Whether `#imageAt(node, lsn)` can be built (the planted fault only). */
  #canImage(node: SimNode, lsn: number): boolean {
    const applied = this.#ledgers.get(node.id)?.appliedIndex
    return applied !== undefined && (applied <= lsn || (this.#checkpoints.get(node.id)?.lsn ?? Infinity) <= lsn)
  }

  #compareWithLineage(nodeId: NodeId, index: number, digest: bigint, how: string): void {
    const known = this.#lineage.get(index)
    if (known === undefined) {
      this.#lineage.set(index, { digest, nodeId })
      return
    }
    if (known.digest !== digest) {
      this.#pending.push({
        kind: 'ledger_diverged',
        detail: `${nodeId} (${how}) holds state ${digest.toString(16).slice(0, 12)} at applied index ${index}, ${known.nodeId} held ${known.digest.toString(16).slice(0, 12)}`,
      })
    }
  }

  // ------------------------------------------------------------------ checks

  #check(node: SimNode): void {
    const ledger = this.#ledgers.get(node.id)
    if (ledger === undefined) return
    const previous = this.#checked.get(node.id)
    if (previous !== undefined && previous.store === ledger.store && previous.version === ledger.store.version) return
    const problem = (kind: LedgerViolationKind, detail: string) => this.#pending.push({ kind, detail: `${node.id} at applied index ${ledger.appliedIndex}: ${detail}` })
    const head = this.#verifyAudit(ledger, previous?.store === ledger.store ? previous.head : GENESIS, (detail) => problem('audit_chain_broken', detail))
    this.#checked.set(node.id, { store: ledger.store, version: ledger.store.version, head })
    const storedHead = ledger.read(metaKey(MetaKey.auditHead))
    const fsmHead = ledger.fsm.auditHead
    if (fsmHead.seq !== head.seq || fsmHead.hash !== head.hash || (head.seq > 0n && storedHead?.toString('utf8') !== stringifyJson(head))) {
      problem('ledger_meta_mismatch', `audit head row ${storedHead?.toString('utf8')} / FSM seq ${fsmHead.seq}, chain verified to seq ${head.seq}`)
    }
    const applied = ledger.read(metaKey(MetaKey.appliedIndex))?.toString('utf8') ?? '0'
    if (applied !== String(ledger.appliedIndex)) problem('ledger_meta_mismatch', `applied-index row ${applied}`)
    this.#checkBalances(ledger, problem)
  }

  /** Verifies the audit rows after `from`, in sequence, with the audit module's own verdict; returns the head reached. */
  #verifyAudit(ledger: NodeLedger, from: AuditHead, report: (detail: string) => void): AuditHead {
    let head = from
    for (;;) {
      const row = ledger.read(auditRowKey(head.seq + 1n))
      if (row === undefined) return head
      let verdict: string
      let next: AuditHead = head
      try {
        const entry = decodeAuditEntry(row)
        verdict = verifyEntry(simClusterId, head, entry)
        next = { seq: entry.seq, hash: entry.hash }
      } catch (error) {
        verdict = `undecodable (${(error as Error).message})`
      }
      if (verdict !== 'ok') {
        report(`audit entry ${head.seq + 1n}: ${verdict}`)
        return head
      }
      head = next
    }
  }

  /** Σ per asset over all accounts is 0; only `world` (unbounded) and the overdraft account (bounded) go below 0. */
  #checkBalances(ledger: NodeLedger, problem: (kind: LedgerViolationKind, detail: string) => void): void {
    const sums = new Map<string, bigint>()
    for (const [rowKey, row] of ledger.store.volumesRows()) {
      const [ledgerName, account, asset] = keyFields(rowKey.toString('utf8', 1) as CanonicalKey) as [string, AccountAddress, Asset]
      const balance = balanceOf(decodeRowValue('v', row))
      const sumKey = `${ledgerName}/${asset}`
      sums.set(sumKey, (sums.get(sumKey) ?? 0n) + balance)
      const floor = account === 'world' ? undefined : account === overdraftAccount && asset === overdraftAsset ? -overdraftLimit : 0n
      if (floor !== undefined && balance < floor) problem('ledger_negative_balance', `${account} holds ${balance} ${asset} (floor ${floor})`)
    }
    for (const [sumKey, sum] of sums) if (sum !== 0n) problem('ledger_unbalanced', `Σ balances of ${sumKey} = ${sum}`)
  }
}

