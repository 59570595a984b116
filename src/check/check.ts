import { performance } from 'node:perf_hooks'
import type { CanonicalKey, Json } from '../domain/index.ts'
import { ATTRIBUTE_ROW_LAYOUT, InvariantViolation, decodeAttribute, invariant, isJsonObject, kindOf, parseJson, stringifyJson, unpackValue } from '../domain/index.ts'
import type { AuditCheckpoint, AuditEntry, AuditHead, NoteVerifier } from '../audit/index.ts'
import type { CacheSettings } from '../cache/index.ts'
import { cacheSettingsFromJson } from '../fsm/index.ts'
import { GENESIS, NoteError, checkpointOrigin, decodeAuditEntry, openCheckpoint, readCheckpoint, verifyEntry } from '../audit/index.ts'
import type { StoreReader } from '../store/index.ts'
import { IndexKind, MetaKey, Zone, attributeRowKey, decodeIndexRow, decodeLogRow, metaKey, rangeBatchesOf } from '../store/index.ts'
import type { Finding, FindingKind } from './findings.ts'
import {
  REPLAYED_META_KEYS,
  describeAttribute,
  describeAuditRow,
  describeCheckpointRow,
  describeIndexRow,
  describeLogRow,
  describeMetaRow,
  describeMirrorRow,
  zoneName,
} from './findings.ts'
import { Replayer } from './replay.ts'
import type { SpilledValue } from './spill.ts'
import { SpillDisk, SpillRows, checkMemoryBytesDefault } from './spill.ts'
import type { ComparedRows } from './compared-rows.ts'
import { InThreadRows, WorkerRows, workerInFlightBytesMin } from './compared-rows.ts'

export type CheckPhase = 'scan' | 'replay' | 'compare'

export interface CheckProgress {
  readonly phase: CheckPhase
  /** Audit entries replayed so far (scan: rows read). */
  readonly done: number
  /** Audit entries in the checked view (the audit head's sequence number). */
  readonly total: number
  readonly entriesPerSecond: number
  /** Remaining seconds at the current rate; null until there is a rate. */
  readonly etaSeconds: number | null
}

export interface CheckSummary {
  readonly ok: boolean
  readonly findings: number
  readonly findingsByKind: Readonly<Partial<Record<FindingKind, number>>>
  readonly appliedIndex: number
  readonly auditEntries: number
  readonly ordersReplayed: number
  readonly rowsCompared: number
  /** Times rows were moved from memory to the spill directory (0: everything fit in `memoryBytesMax`). */
  readonly spills: number
  readonly durationMs: number
  /** Signed checkpoints (stored or given) whose signature verified and whose size and hash the chain has. */
  readonly checkpointsVerified: number
  /** Stored checkpoints the chain agrees with, their signatures unchecked (no verifier key was given). */
  readonly checkpointsUnverified: number
  /** Size of the largest checkpoint the chain agrees with (verified when keys were given); null when none. */
  readonly latestCheckpoint: number | null
  /** Set when the replay could not run to the end (the projections were then not compared). */
  readonly stopped?: string
}

export interface CheckOptions {
  readonly onProgress?: (progress: CheckProgress) => void
  readonly onFinding?: (finding: Finding) => void
  /** Minimum time between two progress reports. */
  readonly progressIntervalMs?: number
  /** Longest stretch of synchronous replay before yielding to the event loop (a server keeps serving). */
  readonly sliceMs?: number
  /**
   * Public keys the audit checkpoints must be signed with (several while a
   * key is rotated). Without any, stored checkpoints are only compared with
   * the chain: that proves nothing against a writer of the store.
   */
  readonly verifierKeys?: readonly NoteVerifier[]
  /** Checkpoint notes kept outside the store (a file the server appended to, notes fetched earlier); need `verifierKeys`. */
  readonly externalCheckpoints?: readonly string[]
  /**
   * Bytes of rows (the store's live rows as digests, the replay's rows) the
   * check holds in memory; beyond, they spill to a temporary RocksDB under
   * `spillDirectory` and are compared from there. Default
   * `checkMemoryBytesDefault`. The replay's cache is bounded by the ledger's
   * own cache settings, not by this.
   */
  readonly memoryBytesMax?: number
  /** Where spilled rows go (a temporary directory inside, removed at the end); default the OS temp directory. */
  readonly spillDirectory?: string
  /**
   * Where rows are digested, held and compared: on a worker thread of their
   * own while this thread scans the store and replays the chain (default:
   * once more than an eighth of the memory bound, at least 2 MiB, of rows
   * was handed over; a smaller check compares on this thread, a thread's
   * start costing more), on a worker from the start (`worker`), or on this
   * thread (`main`). All run the same comparison and find the same.
   */
  readonly comparisonThread?: 'worker' | 'main'
}

/** A signed claim the chain must honour: at `size` entries, the head hash is `hash`. */
interface CheckpointClaim extends AuditCheckpoint {
  readonly key: string
  readonly verified: boolean
}

/** Findings kept in memory for the summary and the result; beyond, they are only streamed. */
export const findingsKeptMax = 10_000

export interface CheckResult extends CheckSummary {
  readonly findingsList: readonly Finding[]
}

/**
 * `tally check` (contract §3): proves the store is what the audit chain says.
 *
 * Consistency: everything is read through ONE store iterator over the whole
 * key space. A RocksDB iterator reads an implicit snapshot taken when it is
 * created, and every applied batch is one atomic write, so the meta rows
 * (applied index, audit head, cache state), the projections, the audit chain
 * and the cache mirror are all seen at the same applied index even while a
 * server keeps writing. Zones come in key order — meta, audit checkpoints,
 * v2 logs, attributes, audit, secondary indexes, mirror — so the signed
 * checkpoints are known before the chain they pin, and the live logs and
 * attributes are remembered (as digests) until the audit zone has been
 * replayed, then compared.
 *
 * The replay runs every audited proposal through the real FSM with a fresh
 * cache (see `Replayer`); stale proposals, which consume an index without an
 * audit entry, are re-applied as stale so the cache rotates at the same
 * indexes. Each replayed audit entry is compared with the stored one; the
 * chain's links and HMACs are verified independently, and so is every
 * checkpoint's claim on the chain (its signature with `verifierKeys`).
 */
export async function runCheck(store: StoreReader, options: CheckOptions = {}): Promise<CheckResult> {
  const disk = new SpillDisk(options.spillDirectory)
  let run: CheckRun | undefined
  try {
    run = new CheckRun(store, options, disk)
    return await run.execute()
  } finally {
    await run?.close()
    await disk.close()
  }
}

/** Bytes of store rows the scan reads at once. */
const checkScanBatchBytes = 1024 * 1024

/** An attribute's row key as the check's latin1 row id. */
const attributeId = (key: CanonicalKey): string => attributeRowKey(key).toString('latin1')

class CheckRun {
  private readonly started = performance.now()
  private readonly kept: Finding[] = []
  private readonly byKind: Partial<Record<FindingKind, number>> = {}
  private findingCount = 0
  private readonly meta = new Map<string, Buffer>()
  /**
   * The live rows of the compared zones (logs, attributes, indexes, mirror)
   * and every row the replay wrote but its meta rows and audit entries:
   * digested, held, spilled and compared (on a thread of their own by
   * default), each side within five sixteenths of the memory bound.
   */
  private readonly rows: ComparedRows
  /** The replay's attribute rows by latin1 key, whole: its seeds, read while planning; spilled beyond a quarter of the bound. */
  private readonly seeds: SpillRows
  /** The meta rows the replay wrote, by name, as the live ones are kept (`meta`). */
  private readonly replayedMeta = new Map<string, Buffer>()
  private replayer: Replayer | undefined
  private stopped: string | undefined
  private initialised = false
  private clusterId = ''
  private appliedIndex = 0
  private auditTotal = 0
  private entriesDone = 0
  private rowsRead = 0
  private previous: AuditHead = GENESIS
  /** Checkpoint claims by chain size, met (and removed) as the audit zone is read. */
  private readonly claims = new Map<bigint, CheckpointClaim[]>()
  private checkpointsVerified = 0
  private checkpointsUnverified = 0
  private latestCheckpoint: bigint | undefined
  private lastProgress = 0
  private sliceStart = performance.now()
  private replayStarted: number | undefined

  constructor(
    private readonly store: StoreReader,
    private readonly options: CheckOptions,
    disk: SpillDisk,
  ) {
    // The bound, shared: a quarter for the seeds, five sixteenths for each compared side, an
    // eighth for the blocks on their way to the comparison thread.
    const bound = options.memoryBytesMax ?? checkMemoryBytesDefault
    const side = Math.max(1, Math.floor((bound * 5) / 16))
    this.seeds = new SpillRows(disk, 0x53, Math.max(1, Math.floor(bound / 4)), () => false)
    // A check whose rows fit in these blocks ends before a worker would have started: it compares them on this thread.
    const inFlight = Math.max(workerInFlightBytesMin, Math.floor(bound / 8))
    this.rows =
      options.comparisonThread === 'main'
        ? new InThreadRows(new SpillDisk(options.spillDirectory), side)
        : new WorkerRows(options.spillDirectory, side, inFlight, options.comparisonThread === 'worker' ? 0 : inFlight)
  }

  /** Stops the comparison (its thread, its spill directory). */
  async close(): Promise<void> {
    await this.rows.close()
  }

  async execute(): Promise<CheckResult> {
    // One iterator (one snapshot) read `nextv` a batch at a time, the next batch read on the thread
    // pool meanwhile: no native refill on this thread, no promise per row.
    for await (const batch of rangeBatchesOf(this.store, { gte: Buffer.of(Zone.meta), batchBytes: checkScanBatchBytes })) {
      for (const [key, value] of batch) {
        const entryDone = this.scanned(key, value)
        if (entryDone !== undefined) await entryDone
      }
      // Awaited only when there is something to wait for.
      if (this.paceDue()) await this.pace(false)
      if (this.rows.backlogged) await this.rows.settle()
    }
    if (!this.initialised) this.initialise()
    this.unmetClaims()
    if (this.stopped === undefined && this.replayer !== undefined) {
      this.replayer.fillTo(this.appliedIndex)
      this.progress('compare', true)
      await this.compare()
    }
    return this.result()
  }

  /** One row of the scan, in key order. Returns a promise only after an audit entry (its replay may call for a yield or a spill). */
  private scanned(key: Buffer, value: Buffer): Promise<void> | undefined {
    this.rowsRead++
    const zone = key[0] as number
    if (zone !== Zone.meta && !this.initialised) this.initialise()
    switch (zone) {
      case Zone.meta:
        this.meta.set(key.toString('utf8', 1), value)
        break
      case Zone.logs:
      case Zone.attributes:
      case Zone.indexes:
      case Zone.cacheMirror:
        this.rows.live(key, value)
        break
      case Zone.auditCheckpoints:
        this.checkpointRow(key, value)
        break
      case Zone.outputs:
        break // the pipelines' cursors: the node's I/O state, not ledger facts (exporters and pipelines are the `o` attribute, docs/pipelines.md)
      case Zone.audit:
        this.auditRow(key, value)
        return this.afterEntry()
      default:
        this.report({ kind: 'meta', key: `row=${key.toString('hex')}`, message: `row in ${zoneName(zone)}: no projection lives there` })
    }
    return undefined
  }

  /** After an audit entry's replay: a yield to the event loop, a spill of the seeds, a wait for the comparison, when due. */
  private async afterEntry(): Promise<void> {
    if (this.paceDue()) await this.pace(false)
    if (this.seeds.overBudget) await this.seeds.spill()
    if (this.rows.backlogged) await this.rows.settle()
  }

  // ---- setup ------------------------------------------------------------------------

  private initialise(): void {
    this.initialised = true
    const cluster = this.meta.get(MetaKey.clusterId)
    const applied = this.meta.get(MetaKey.appliedIndex)
    const head = this.meta.get(MetaKey.auditHead)
    this.appliedIndex = applied === undefined ? 0 : Number(applied.toString('utf8'))
    if (!Number.isSafeInteger(this.appliedIndex) || this.appliedIndex < 0) {
      this.stop({ kind: 'meta', key: MetaKey.appliedIndex, message: 'the applied index is not a non-negative integer', actual: applied?.toString('utf8') })
      return
    }
    if (head !== undefined) {
      const json = safeParse(head)
      if (isJsonObject(json) && typeof json.seq === 'bigint') this.auditTotal = Number(json.seq)
    }
    if (cluster === undefined) {
      if (this.appliedIndex > 0) this.stop({ kind: 'meta', key: MetaKey.clusterId, message: 'no cluster id: the audit chain cannot be verified (it is keyed by the cluster id)' })
      return
    }
    this.clusterId = cluster.toString('utf8')
    for (const [i, note] of (this.options.externalCheckpoints ?? []).entries()) this.claim(note, `external #${i + 1}`)
    const genesis = this.cacheGenesis()
    if (genesis === undefined) return
    const { rows, seeds, replayedMeta } = this
    this.replayer = new Replayer(
      this.clusterId,
      genesis.settings,
      (rowKey, rowValue) => {
        const zone = rowKey[0] as number
        if (zone === Zone.audit) return // compared entry by entry as they are replayed
        if (zone !== Zone.meta) rows.replayed(rowKey, rowValue)
        else if (rowValue === null) replayedMeta.delete(rowKey.toString('utf8', 1))
        else replayedMeta.set(rowKey.toString('utf8', 1), rowValue)
      },
      genesis.created,
      {
        get(key) {
          const row = seeds.get(attributeId(key))
          invariant(typeof row !== 'string', 'attribute rows are kept whole')
          return row
        },
        set(rowKey, row) {
          seeds.set(rowKey.toString('latin1'), row)
          rows.replayed(rowKey, row)
        },
      },
    )
    this.replayStarted = performance.now()
  }

  /**
   * The cache settings the replay starts from: those the data directory was
   * created with (ADR 0007; later changes are audited entries). A store from
   * before the genesis row: K from its cache state, none stored meaning no
   * rotation yet, which any K ≥ applied reproduces.
   */
  private cacheGenesis(): { settings: CacheSettings; created: boolean } | undefined {
    const genesisRow = this.meta.get(MetaKey.cacheGenesis)
    if (genesisRow !== undefined) {
      try {
        return { settings: cacheSettingsFromJson(parseJson(genesisRow.toString('utf8'))), created: true }
      } catch {
        this.stop({ kind: 'meta', key: MetaKey.cacheGenesis, message: 'the cache genesis settings do not decode', actual: genesisRow.toString('utf8') })
        return undefined
      }
    }
    const row = this.meta.get(MetaKey.cacheState)
    if (row === undefined) return { settings: { rotationThreshold: Math.max(1, this.appliedIndex), generationBytesMax: null }, created: false }
    const state = safeParse(row)
    if (!isJsonObject(state) || typeof state.rotationThreshold !== 'bigint' || typeof state.epoch !== 'bigint') {
      this.stop({ kind: 'meta', key: MetaKey.cacheState, message: 'the cache state does not decode', actual: row.toString('utf8') })
      return undefined
    }
    if (state.epoch !== 0n) {
      this.stop({
        kind: 'meta',
        key: MetaKey.cacheState,
        message:
          `the cache was reset (epoch ${state.epoch}, by a changed --cache-rotation-threshold before settings changes were logged): ` +
          'proposals after the reset were planned against another cache, so the chain cannot be replayed from genesis through one cache',
        actual: row.toString('utf8'),
      })
      return undefined
    }
    return { settings: { rotationThreshold: Number(state.rotationThreshold), generationBytesMax: null }, created: false }
  }

  // ---- the audit zone ---------------------------------------------------------------------

  private auditRow(rowKey: Buffer, value: Buffer): void {
    const key = describeAuditRow(rowKey)
    let entry: AuditEntry
    try {
      entry = decodeAuditEntry(value)
      if (typeof entry.seq !== 'bigint' || !Number.isSafeInteger(entry.index) || !Array.isArray(entry.orders) || !Array.isArray(entry.outcome)) {
        throw new Error('fields of the wrong type')
      }
    } catch (error) {
      this.report({ kind: 'audit', key, message: `the entry does not decode (${(error as Error).message}); the replay stops here`, actual: printable(value) })
      this.stop(undefined, `audit entry ${key} does not decode`)
      return
    }
    const keySeq = rowKey.length === 9 ? rowKey.readBigUInt64BE(1) : -1n
    // Without a cluster id (already reported) no hash can be recomputed.
    const chainOk = this.clusterId !== '' && this.verifyLink(key, keySeq, entry)
    this.meetClaims(keySeq, entry)
    this.previous = { seq: entry.seq, hash: entry.hash }
    this.entriesDone++
    if (this.replayer === undefined || this.stopped !== undefined) return
    // An entry beyond the stored applied index is still replayed: the applied-index meta row is then reported.
    if (entry.index <= this.replayer.appliedIndex) {
      this.report({
        kind: 'audit',
        key,
        message: `index ${entry.index} is out of order (the previous entry is at index ${this.replayer.appliedIndex}); the replay stops here`,
      })
      this.stop(undefined, `audit entry ${key} is out of index order`)
      return
    }
    let replayed: ReturnType<Replayer['replay']>
    try {
      replayed = this.replayer.replay(entry)
    } catch (error) {
      this.report({ kind: 'audit', key, message: `the replay of this entry failed: ${(error as Error).message}; the replay stops here` })
      this.stop(undefined, `the replay of ${key} failed`)
      return
    }
    if (!chainOk) return // already reported: the stored entry is not what was hashed
    if (replayed.result.outcome !== 'applied' || replayed.auditRow === undefined) {
      this.report({ kind: 'audit', key, message: `the replay found the proposal stale (${replayed.result.outcome === 'stale' ? replayed.result.reason : 'no entry'}), yet it is audited` })
      return
    }
    if (!replayed.auditRow.equals(value)) {
      const expected = decodeAuditEntry(replayed.auditRow)
      this.report({
        kind: 'audit',
        key,
        message: 'the replay through the FSM produced another entry than the stored one (its outcome or hash differs)',
        expected: printable(Buffer.from(JSON.stringify({ outcome: show(expected.outcome), hash: expected.hash }))),
        actual: printable(Buffer.from(JSON.stringify({ outcome: show(entry.outcome), hash: entry.hash }))),
      })
    }
  }

  /** Row key, then sequence, link and HMAC against the previous stored entry (one verdict, from the audit module). */
  private verifyLink(key: string, keySeq: bigint, entry: AuditEntry): boolean {
    if (keySeq !== entry.seq) {
      this.report({ kind: 'audit', key, message: `the entry says seq ${entry.seq}, its row key says ${keySeq}` })
      return false
    }
    const verdict = verifyEntry(this.clusterId, this.previous, entry)
    switch (verdict) {
      case 'ok':
        return true
      case 'sequence':
        this.report({ kind: 'audit', key, message: `sequence gap: expected seq ${this.previous.seq + 1n} after ${this.previous.seq}` })
        return false
      case 'link':
        this.report({ kind: 'audit', key, message: `the entry does not link to seq ${this.previous.seq} (previousHash differs)`, expected: this.previous.hash, actual: entry.previousHash })
        return false
      case 'hash':
        this.report({ kind: 'audit', key, message: 'hash mismatch: the HMAC of the stored body is not the stored hash (the entry was altered)' })
        return false
      default: {
        const never: never = verdict
        throw new InvariantViolation(`unknown audit verdict ${String(never)}`)
      }
    }
  }

  // ---- signed checkpoints ---------------------------------------------------------------------

  private checkpointRow(rowKey: Buffer, value: Buffer): void {
    const key = describeCheckpointRow(rowKey)
    const claim = this.claim(value.toString('utf8'), key)
    if (claim !== undefined && rowKey.length === 9 && rowKey.readBigUInt64BE(1) !== claim.size) {
      this.report({ kind: 'checkpoint', key, message: `the row is keyed by size ${rowKey.readBigUInt64BE(1)}, the checkpoint says ${claim.size}` })
    }
  }

  /**
   * Reads one checkpoint note (stored, or `external #n`) into a claim on the
   * chain: its signature verified with the given keys when there are any,
   * its origin this cluster's audit chain.
   */
  private claim(note: string, source: string): CheckpointClaim | undefined {
    const keys = this.options.verifierKeys ?? []
    let checkpoint: AuditCheckpoint
    try {
      checkpoint = keys.length > 0 ? openCheckpoint(note, keys) : readCheckpoint(note)
    } catch (error) {
      if (!(error instanceof NoteError)) throw error
      const key = source
      const forged = keys.length > 0 ? 'it does not verify with the given verifier key(s) (forged, or signed by a key not given)' : 'it does not parse'
      this.report({ kind: 'checkpoint', key, message: `${forged}: ${error.message}`, actual: note.slice(0, 2000) })
      return undefined
    }
    const key = source.startsWith('external') ? `external size=${checkpoint.size}` : source
    if (this.clusterId !== '' && checkpoint.origin !== checkpointOrigin(this.clusterId)) {
      this.report({ kind: 'checkpoint', key, message: 'the checkpoint is of another log (its origin is not this cluster\'s audit chain)', expected: checkpointOrigin(this.clusterId), actual: checkpoint.origin })
      return undefined
    }
    const claim: CheckpointClaim = { origin: checkpoint.origin, size: checkpoint.size, hash: checkpoint.hash, key, verified: keys.length > 0 }
    const atSize = this.claims.get(claim.size)
    if (atSize === undefined) this.claims.set(claim.size, [claim])
    else atSize.push(claim)
    return claim
  }

  /** The entry stored at `seq` against every checkpoint of that size. */
  private meetClaims(seq: bigint, entry: AuditEntry): void {
    const claims = this.claims.get(seq)
    if (claims === undefined) return
    this.claims.delete(seq)
    for (const claim of claims) {
      if (claim.hash !== entry.hash) {
        this.report({
          kind: 'checkpoint',
          key: claim.key,
          message: `the chain was rewritten: its entry at seq ${seq} hashes to another value than the signed checkpoint of size ${claim.size}`,
          expected: claim.hash,
          actual: entry.hash,
        })
        continue
      }
      if (claim.verified) this.checkpointsVerified++
      else this.checkpointsUnverified++
      if (this.latestCheckpoint === undefined || seq > this.latestCheckpoint) this.latestCheckpoint = seq
    }
  }

  /** Checkpoints no stored entry met: the chain was cut short (rolled back) or an entry deleted. */
  private unmetClaims(): void {
    const end = this.previous.seq
    for (const [size, claims] of [...this.claims].sort(([left], [right]) => (left < right ? -1 : 1))) {
      for (const claim of claims) {
        this.report({
          kind: 'checkpoint',
          key: claim.key,
          message:
            size > end
              ? `the checkpoint of size ${size} is ahead of the chain, which ends at seq ${end}: entries were removed or the store was rolled back`
              : `no entry is stored at seq ${size}, which the checkpoint of size ${size} covers`,
          expected: claim.hash,
        })
      }
    }
    this.claims.clear()
    if ((this.options.verifierKeys ?? []).length > 0 && end > 0n && this.checkpointsVerified === 0) {
      this.report({
        kind: 'checkpoint',
        key: 'latest',
        message: 'no checkpoint signed by the given key(s) agrees with the chain: nothing proves it was not rewritten by a holder of the store',
      })
    }
  }

  // ---- comparison -------------------------------------------------------------------------

  /**
   * Both sides walked once, in store key order (memory and spilled rows
   * merged): every replayed row against the live digest, every live row
   * nothing replayed. Findings come out in key order.
   */
  private async compare(): Promise<void> {
    if (this.previous.seq !== BigInt(this.auditTotal)) {
      this.report({ kind: 'meta', key: MetaKey.auditHead, message: `the audit head says seq ${this.auditTotal}, the last stored entry is seq ${this.previous.seq}` })
    }
    for await (const mismatches of this.rows.mismatches()) {
      for (const { key, expected, present } of mismatches) {
        // An attribute row is shown from the seeds (whole); the comparison holds its digest.
        const shown = expected !== undefined && key[0] === Zone.attributes ? this.seeds.get(key.toString('latin1')) : expected
        await this.reportRow(key, shown ?? expected, present)
      }
      if (this.paceDue()) await this.pace(true)
    }
    this.compareMeta()
  }

  /** `expected` is the replayed row, or only its digest for logs and indexes (then not printed). */
  private async reportRow(rowKey: Buffer, expectedRow: SpilledValue | undefined, present: boolean): Promise<void> {
    const expected = typeof expectedRow === 'string' ? undefined : expectedRow
    // Display only: a point read (the digest comparison above used the snapshot).
    const actual = present ? await this.store.get(rowKey) : undefined
    const message =
      expectedRow === undefined
        ? 'in the store, but no audited proposal wrote it'
        : !present
          ? 'missing from the store: the replay of the audit chain wrote it'
          : 'differs from the replay of the audit chain'
    const zone = rowKey[0] as number
    let kind: FindingKind
    let key: string
    if (zone === Zone.attributes) {
      ;({ kind, key } = describeAttribute(rowKey.toString('utf8', 1) as CanonicalKey))
    } else if (zone === Zone.logs) {
      kind = 'log'
      key = describeLogRow(rowKey)
    } else if (zone === Zone.indexes) {
      kind = 'index'
      key = describeIndexRow(rowKey)
    } else {
      kind = 'cache-mirror'
      key = describeMirrorRow(rowKey, expected, actual)
    }
    const shown = (row: Buffer): string =>
      zone === Zone.cacheMirror
        ? row.toString('hex')
        : zone === Zone.attributes
          ? printableAttribute(row, rowKey.toString('utf8', 1) as CanonicalKey)
          : zone === Zone.logs
            ? printableLogRow(row)
            : zone === Zone.indexes && rowKey[1] !== IndexKind.schemas && row.length > 0
              ? printableIndexRow(row)
              : printable(row)
    this.report({
      kind,
      key,
      message,
      ...(expected === undefined ? {} : { expected: shown(expected) }),
      ...(actual === undefined ? {} : { actual: shown(actual) }),
    })
  }

  private compareMeta(): void {
    for (const name of REPLAYED_META_KEYS) {
      const expected = this.replayedMeta.get(name)
      const actual = this.meta.get(name)
      if (expected === undefined && actual === undefined) continue
      if (expected !== undefined && actual !== undefined && expected.equals(actual)) continue
      this.report({
        kind: 'meta',
        key: describeMetaRow(metaKey(name)),
        message: 'differs from the replay of the audit chain',
        ...(expected === undefined ? {} : { expected: printable(expected) }),
        ...(actual === undefined ? {} : { actual: printable(actual) }),
      })
    }
  }

  // ---- reporting --------------------------------------------------------------------------

  private report(finding: Finding): void {
    this.findingCount++
    this.byKind[finding.kind] = (this.byKind[finding.kind] ?? 0) + 1
    if (this.kept.length < findingsKeptMax) this.kept.push(finding)
    this.options.onFinding?.(finding)
  }

  private stop(finding: Finding | undefined, reason?: string): void {
    if (finding !== undefined) this.report(finding)
    this.stopped ??= reason ?? finding?.message ?? 'stopped'
  }

  /** Whether `pace` has anything to do now (a progress line or a yield is due). */
  private paceDue(): boolean {
    const now = performance.now()
    return now - this.lastProgress >= (this.options.progressIntervalMs ?? 250) || now - this.sliceStart >= (this.options.sliceMs ?? 20)
  }

  /** Progress at most every `progressIntervalMs`, and a yield to the event loop every `sliceMs`. */
  private async pace(comparing: boolean): Promise<void> {
    const now = performance.now()
    if (now - this.lastProgress >= (this.options.progressIntervalMs ?? 250)) this.progress(comparing ? 'compare' : this.entriesDone > 0 ? 'replay' : 'scan', false)
    if (now - this.sliceStart >= (this.options.sliceMs ?? 20)) {
      await new Promise<void>((resolve) => setImmediate(resolve))
      this.sliceStart = performance.now()
    }
  }

  private progress(phase: CheckPhase, force: boolean): void {
    const now = performance.now()
    if (!force && now - this.lastProgress < (this.options.progressIntervalMs ?? 250)) return
    this.lastProgress = now
    const elapsedSeconds = this.replayStarted === undefined ? 0 : (now - this.replayStarted) / 1000
    const rate = elapsedSeconds > 0 ? this.entriesDone / elapsedSeconds : 0
    const remaining = Math.max(0, this.auditTotal - this.entriesDone)
    this.options.onProgress?.({
      phase,
      done: phase === 'scan' ? this.rowsRead : this.entriesDone,
      total: this.auditTotal,
      entriesPerSecond: Math.round(rate),
      etaSeconds: phase === 'compare' ? 0 : rate > 0 ? Math.round(remaining / rate) : null,
    })
  }

  private result(): CheckResult {
    this.progress('compare', true)
    return {
      ok: this.findingCount === 0,
      findings: this.findingCount,
      findingsByKind: { ...this.byKind },
      appliedIndex: this.appliedIndex,
      auditEntries: this.entriesDone,
      ordersReplayed: this.replayer?.ordersReplayed ?? 0,
      rowsCompared: this.rowsRead,
      spills: this.seeds.spills + this.rows.spills,
      durationMs: Math.round(performance.now() - this.started),
      checkpointsVerified: this.checkpointsVerified,
      checkpointsUnverified: this.checkpointsUnverified,
      latestCheckpoint: this.latestCheckpoint === undefined ? null : Number(this.latestCheckpoint),
      ...(this.stopped === undefined ? {} : { stopped: this.stopped }),
      findingsList: this.kept,
    }
  }
}

function safeParse(row: Buffer): unknown {
  try {
    return parseJson(row.toString('utf8'))
  } catch {
    return undefined
  }
}

/** A stored row as JSON for a finding, through its decoder; hex when it does not decode; cut at 2,000 characters. */
function printableDecoded(row: Buffer, decode: (row: Buffer) => Json): string {
  let text: string
  try {
    text = stringifyJson(decode(row))
  } catch {
    text = `hex:${row.toString('hex')}`
  }
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text
}

/** A v2 log row, through the one decoder (either layout). */
const printableLogRow = (row: Buffer): string => printableDecoded(row, decodeLogRow)

/** A secondary index row (any of its layouts). */
const printableIndexRow = (row: Buffer): string => printableDecoded(row, decodeIndexRow)

/**
 * An attribute row: a row of a fixed layout (docs/adr/0012) through the one
 * decoder, a generic one as packed (docs/adr/0009).
 */
function printableAttribute(row: Buffer, key: CanonicalKey): string {
  if (row[0] === ATTRIBUTE_ROW_LAYOUT) return printableDecoded(row, (bytes) => unpackValue(bytes, ATTRIBUTE_ROW_LAYOUT))
  return printableDecoded(row, (bytes) => decodeAttribute(kindOf(key), bytes).value.value as unknown as Json)
}

/** Row text for a finding, bounded: findings are read by people. */
function printable(value: Buffer): string {
  const text = value.toString('utf8')
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text
}

function show(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_key, entry: unknown) => (typeof entry === 'bigint' ? entry.toString() : entry)))
}
